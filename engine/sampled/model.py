"""The national run's linear tail as a vectorised function of sweep parameters: the model a
sweep evaluates (:class:`NationalModel`), which builds the shared arrays once."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

import numpy as np
import pandas as pd

from engine import pipeline as pl
from engine.errors import InputError
from engine.sampled.keys import (CARBON_OUTPUTS, EMISSION_SECTORS, NOT_S, OUTPUTS, KeyInfo,
                                 _plain, config_key_info, suggest)
from engine.sampled.tables import (HealthTable, SampleTables, _carbon_base, _carbon_row, _fixed_co2,
                                   _season_weights)

__all__ = ["NationalModel"]



class NationalModel:
    """The national run's linear tail as a vectorised function of sweep parameters.

    Built once per sweep (configuration, data, one ``S`` per distinct dispersion level);
    :func:`evaluate_chunk` on :meth:`tables` takes a table of parameter values (one row per
    sample) and returns the outputs of :data:`OUTPUTS` with a leading ``sample`` axis.

    Parameters
    ----------
    spec : engine.sensitivity.spec.SweepSpec (or any object with ``config``, ``cities``,
        ``scenario``, ``outputs``, ``parameters`` and ``path``)
    data : engine.data.dataset.NationalData, optional
        A data set in memory (default: ``[data] dir`` of the configuration).
    carbon_fn : callable(cfg, data) -> carbon result, optional
        A fixed carbon stage instead of the engine's (then ``carbon.*`` and ``emissions.*``
        parameters are not available).
    age_population_fn : callable(data, city_ids) -> DataFrame, optional
        Population by age (default: the 2010 census, :func:`engine.health.impact.age_population`).
    use_cache, workers, scheduler, client, quiet, kernel_fn :
        As :func:`engine.pipeline.sr_matrix` (used for each dispersion level).
    sr_fn : callable(prep) -> Dataset with ``S(city, source)``, optional
        Replaces :func:`engine.pipeline.sr_matrix` (tests; a precomputed matrix).
    """

    def __init__(self, spec, *, data=None, carbon_fn=None, age_population_fn=None, use_cache=True, workers=None,
                 scheduler=None, client=None, quiet=False, kernel_fn=None, footprints=None, population=None,
                 sr_fn=None):
        self.spec = spec
        self.sr_fn = sr_fn
        self._sr_kw = dict(use_cache=use_cache, workers=workers, scheduler=scheduler, client=client, quiet=quiet,
                           kernel_fn=kernel_fn)
        self._prep_kw = dict(data=data, footprints=footprints, population=population)
        try:
            cfg = pl.as_config(list(spec.config) or None, spec.cities, [spec.scenario])
        except InputError as exc:
            raise InputError(f"{spec.path}: {exc}") from None
        base = pl.base_scenario(cfg)
        if base == spec.scenario:
            raise InputError(f"{spec.path}: [sweep] scenario = {spec.scenario!r} is the base scenario; choose a "
                             f"scenario to compare with it (one of {', '.join(n for n in cfg.scenario_names if n != base)})")
        if cfg.dispersion.emission_heights == "ground" and any(
                p.key == "dispersion.emission_heights" for p in spec.parameters):
            # the height classes and their shares come from the base configuration: a "ground" base
            # has none, so a "sector" level could not be superposed correctly
            raise InputError(f"{spec.path}: [sweep] parameter dispersion.emission_heights needs [dispersion] "
                             "emission_heights = \"sector\" in the sweep's configuration (the base holds the "
                             "height classes; \"ground\" levels then use the ground matrix in every class)")
        self.cfg = cfg
        self.base = base
        self.carbon_fn = carbon_fn
        self.age_population_fn = age_population_fn
        self.timings = {}
        bad = [o for o in spec.outputs if o not in OUTPUTS]
        if bad:
            raise InputError(f"{spec.path}: [sweep] outputs: {bad[0]!r} is not an output{suggest(bad[0], OUTPUTS)} "
                             f"(known: {', '.join(OUTPUTS)})")
        self._prep = None
        self._level_preps = {}

    @property
    def prep(self):
        """The pipeline's :class:`engine.pipeline.Prepared` (data, geometry, met), built on first use."""
        if self._prep is None:
            t0 = time.perf_counter()
            try:
                self._prep = pl.prepare(self.cfg, **self._prep_kw)
            except InputError as exc:  # name the sweep file whose configuration this is
                raise InputError(f"{self.spec.path}: {exc}") from None
            self.timings["prepare_s"] = time.perf_counter() - t0
        return self._prep

    @property
    def needs_dispersion(self):
        """Whether an output needs concentrations (else no S and no health are computed)."""
        return not all(o in CARBON_OUTPUTS for o in self.spec.outputs)

    # ------------------------------------------------------------------ keys
    @property
    def scenario_carbon(self):
        return dict((s.name, c) for s, c in self.cfg.scenarios)[self.spec.scenario]

    def key_info(self, key):
        """:class:`KeyInfo` of a sweepable key; ``KeyError`` with the reason otherwise."""
        from engine import config as C
        from engine.health import CRF_NAMES

        sec, _, name = key.partition(".")
        if sec == "carbon":
            if self.carbon_fn is not None:
                raise KeyError("carbon keys need the engine's carbon stage (this sweep has a fixed carbon stage)")
            if name == "new_dh_urban_core_only":
                raise KeyError("carbon.new_dh_urban_core_only is not used by the carbon stage; nothing to sweep")
            return config_key_info(C.CarbonConfig, name, self.scenario_carbon)
        if sec == "emissions":
            sub, _, sector = name.partition(".")
            if sub != "pm25_multiplier" or sector not in EMISSION_SECTORS:
                raise KeyError(f"unknown key; emission keys are emissions.pm25_multiplier.<sector>, sectors "
                               f"{', '.join(EMISSION_SECTORS)}{suggest(sector, EMISSION_SECTORS) if sub == 'pm25_multiplier' else ''}")
            if self.carbon_fn is not None:
                raise KeyError("emission-factor multipliers need the engine's carbon stage (this sweep has a fixed "
                               "carbon stage)")
            return KeyInfo("float", 0.0, 10.0, default=1.0)
        if sec == "health":
            h = self.cfg.health
            if name == "crf":
                return KeyInfo("choice", choices=CRF_NAMES, default=h.crf)
            if name == "draw":
                if h.draws < 1:
                    raise KeyError("[health] draws = 0: there is no parameter draw to sample; set draws >= 1")
                return KeyInfo("int", 0, h.draws - 1, default=-1)
            if name == "baseline_rate_multiplier":
                return KeyInfo("float", 0.0, 10.0, lo_open=True, default=1.0)
            known = ("crf", "draw", "baseline_rate_multiplier")
            raise KeyError(f"unknown health key{suggest(name, known)}; sweepable: {', '.join('health.' + k for k in known)}")
        if sec in ("dispersion", "met"):
            cls = C.DispersionConfig if sec == "dispersion" else C.MetConfig
            if name in NOT_S:
                raise KeyError(f"{key} does not change the source-receptor matrix or any output")
            return config_key_info(cls, name, getattr(self.cfg, sec), levels_only=True)
        known = ("carbon.<key>", "emissions.pm25_multiplier.<sector>", "health.crf", "health.draw",
                 "health.baseline_rate_multiplier", "dispersion.<key>", "met.<key>")
        raise KeyError(f"unknown key{suggest(sec, ('carbon', 'emissions', 'health', 'dispersion', 'met'))}; "
                       f"sweepable keys: {', '.join(known)}")

    def identity(self):
        """Hash of what the chunks depend on besides the sweep file: the resolved configuration,
        the data tables and any stage replaced by a callable (so a changed scenario file or data
        set never reuses old chunks)."""
        from engine.config import config_to_dict

        h = hashlib.sha256(json.dumps(config_to_dict(self.cfg), sort_keys=True, default=str).encode())
        d = self.prep.data
        for name in ("cities", "provinces", "rop", "grids"):
            t = getattr(d, name, None)
            if isinstance(t, pd.DataFrame):
                h.update(pd.util.hash_pandas_object(t, index=True).to_numpy().tobytes())
        for fn in (self.carbon_fn, self.age_population_fn, self.sr_fn, self._sr_kw.get("kernel_fn")):
            h.update(repr(getattr(fn, "__qualname__", fn)).encode())
        return h.hexdigest()[:12]

    def defaults(self):
        """One sample at every parameter's default (the scenario's configuration; draws averaged)."""
        df = pd.DataFrame({p.key: np.array([self._default_of(p.key)],
                                           dtype=object if isinstance(self._default_of(p.key), str) else None)
                           for p in self.spec.parameters})
        df.index.name = "sample"
        return df

    # ------------------------------------------------------------------ setup
    def _level_keys(self):
        return tuple(p.key for p in self.spec.parameters if p.key.split(".")[0] in ("dispersion", "met"))

    def _level_of(self, values):
        keys = self._level_keys()
        if not keys:
            return [()] * len(values)
        return [tuple(_plain(v) for v in row) for row in values[list(keys)].itertuples(index=False)]

    def _level_prep(self, level):
        """The :class:`engine.pipeline.Prepared` of a dispersion level (its configuration, met and
        geometry checked), built once."""
        keys = self._level_keys()
        cfg = self.cfg
        for k, v in zip(keys, level):
            sec, _, name = k.partition(".")
            cfg = cfg.replace(**{sec: dataclasses.replace(getattr(cfg, sec), **{name: v})})
        if cfg == self.cfg:
            return self.prep
        if level not in self._level_preps:
            try:
                self._level_preps[level] = pl.prepare(cfg, **self._prep_kw)
            except InputError as exc:
                raise InputError(f"{self.spec.path}: dispersion level {dict(zip(keys, level))}: {exc}") from None
        return self._level_preps[level]

    def _levels_needed(self, values):
        if not self.needs_dispersion:
            return []  # CO2 only: no dispersion, no health
        return sorted(set(self._level_of(values)) | {tuple(_plain(self._default_of(k)) for k in self._level_keys())},
                      key=repr)

    def precheck(self):
        """Everything that can fail without dispersion work, before any: every dispersion level's
        configuration, met files and geometry (each level of the parameters, not only those
        sampled), the health functions, rates and ``[health] background`` of every CRF a sample
        can use. Raises :class:`InputError` naming the input."""
        if not self.needs_dispersion:
            return
        from engine.health import expected as ex

        keys = self._level_keys()
        levels = {()}
        if keys:
            import itertools

            lv = [p.levels for k in keys for p in self.spec.parameters if p.key == k]
            levels = set(itertools.product(*lv))
        for level in sorted(levels, key=repr):
            try:
                self._level_prep(tuple(_plain(v) for v in level))
            except InputError as exc:  # name the sweep file that selected these inputs
                raise InputError(f"{self.spec.path}: {exc}") from None
        h = self.cfg.health
        if h.functions_file and h.crf != "user":
            raise InputError(f"{self.spec.path}: [health] functions_file = {h.functions_file!r} is given but crf = "
                             f"{h.crf!r}; user functions need crf = 'user'")
        crfs = {h.crf} | {lv for p in self.spec.parameters if p.key == "health.crf" for lv in p.levels}
        pop = self._population()
        for crf in sorted(crfs):
            try:
                ex.curves_and_weights(h, crf, pop)
            except InputError as exc:
                raise InputError(f"{self.spec.path}: [health] with crf = {crf!r}: {exc}") from None
        self._background()

    def health_summary(self):
        """What the health outputs are (for ``summary.json``)."""
        h = self.cfg.health
        return {"crf": h.crf, "draws": h.draws, "avoided_method": h.avoided_method,
                "background": h.background or None,
                "per_sample": ("the sampled parameter draw (health.draw)"
                               if any(p.key == "health.draw" for p in self.spec.parameters) else
                               f"the mean over the {h.draws} parameter draws (as the run's *_mean)" if h.draws else
                               "the central parameters ([health] draws = 0)"),
                "draw_mean_method": ("directly over the draws (avoided_method = 'pif')" if h.avoided_method == "pif"
                                     else "tabulated once per city (engine.health.expected.DrawMeanTable; within "
                                          "1e-6 relative of the direct mean)"),
                "percentiles_over_draws": "not reported per sample: sample health.draw to carry the parameter "
                                          "uncertainty into the sweep's distribution"}

    def _population(self):
        from engine.health import age_population

        sel = self.prep.selected
        if self.age_population_fn is None:
            return age_population(sel).loc[sel]
        return self.age_population_fn(self.prep.data, sel).loc[sel]

    def _sr_for_level(self, level):
        keys = self._level_keys()
        prep = self._level_prep(level)
        S = pl.sr_matrix(prep, **self._sr_kw) if self.sr_fn is None else self.sr_fn(prep)
        Sa = S["S"].reindex(city=self.prep.selected).reindex(source=self.prep.source_labels, fill_value=0.0)
        Ss = None
        if self.prep.heights is not None:
            return np.ascontiguousarray(Sa.values, dtype=np.float64), self._height_terms(S, Sa, keys, level), \
                S.attrs.get("timings_s", {})
        if "S_season" in S:
            if tuple(S["season"].values) != tuple(self.prep.seasons):
                raise InputError(f"dispersion level {dict(zip(keys, level))}: seasons {tuple(S['season'].values)} "
                                 f"differ from the sweep's base seasons {self.prep.seasons}; sweep met keys that "
                                 "keep the met seasonal (or set [met] seasonal_emissions = false)")
            Ss = np.ascontiguousarray(S["S_season"].reindex(city=self.prep.selected).reindex(
                source=self.prep.source_labels, fill_value=0.0).values, dtype=np.float64)
        elif self.prep.seasons != ("annual",):
            raise InputError(f"dispersion level {dict(zip(keys, level))} has annual met while the sweep's base met "
                             "is seasonal; sweep met keys that keep the met seasonal (or set [met] "
                             "seasonal_emissions = false)")
        return np.ascontiguousarray(Sa.values, dtype=np.float64), Ss, S.attrs.get("timings_s", {})

    def _height_terms(self, S, Sa, keys, level):
        """(n_term, n_city, n_source) matrices of the superposition terms, one per (season, height
        class), season-major, as :func:`_season_weights`' shares. A level without height classes
        (``[dispersion] emission_heights = "ground"``) has the ground matrix in every class."""
        where = dict(zip(keys, level))
        if "S_season" in S and tuple(S["season"].values) != tuple(self.prep.seasons):
            raise InputError(f"dispersion level {where}: seasons {tuple(S['season'].values)} differ from the "
                             f"sweep's base seasons {self.prep.seasons}")
        if ("S_season" in S) != (self.prep.seasons != ("annual",)):
            raise InputError(f"dispersion level {where}: its met and the sweep's base met differ in being seasonal")

        def aligned(name):
            return np.asarray(S[name].reindex(city=self.prep.selected).reindex(
                source=self.prep.source_labels, fill_value=0.0).values, dtype=np.float64)

        nh = len(self.prep.height_classes)
        if "S_height" in S:
            if tuple(S["height"].values) != tuple(self.prep.height_classes):
                raise InputError(f"dispersion level {where}: emission-height classes {tuple(S['height'].values)} "
                                 f"differ from the sweep's {self.prep.height_classes}")
            m = aligned("S_season_height") if "S_season" in S else aligned("S_height")
        else:  # every class at the ground: S_{s,h} = S_s
            g = aligned("S_season") if "S_season" in S else Sa.values[None]
            m = np.repeat(np.asarray(g, dtype=np.float64)[:, None], nh, axis=1)
        return np.ascontiguousarray(m.reshape((-1,) + Sa.shape))

    def tables(self, values):
        """Build the shared arrays: carbon structure, health tables, one S per level in ``values``."""
        prep = self.prep
        sel = prep.selected
        ct = prep.city_table.set_index("city_id").loc[sel]
        levels = self._levels_needed(values)
        t0 = time.perf_counter()
        health = self._health_tables(values) if levels else None  # before S: a bad input fails in seconds
        background = self._background() if levels else None
        self.timings["health_setup_s"] = time.perf_counter() - t0
        tb = SampleTables(city=np.array(sel, dtype=np.int64), population=ct["population"].to_numpy(float), S={},
                          level_keys=self._level_keys(), S_season={})
        t0 = time.perf_counter()
        if self.carbon_fn is None:
            from engine.carbon.accounting import prepare as cprep
            from engine.carbon.efficiency import LEVELS
            from engine.carbon.parameters import load_parameters

            params = load_parameters()
            cp = cprep(prep.data, params)
            places = cp.places
            lookup = {(k, int(i)): j for j, (k, i) in enumerate(zip(places["kind"],
                      np.where(places["kind"] == "city", places["city_id"], places["province_id"]).astype(np.int64)))}
            tb.source_place = np.array([lookup.get((s.kind, int(s.id)), -1) for s in prep.sources], dtype=np.int64)
            missing = [prep.sources[k].label for k in np.nonzero(tb.source_place < 0)[0] if prep.sources[k].kind == "city"]
            if missing:
                raise InputError(f"carbon stage has no place for source(s) {missing[:5]}")
            tb.area_km2 = places["area_km2"].to_numpy(float)
            tb.carbon, tb.carbon_params = cp, params
            cb = dict((s.name, c) for s, c in self.cfg.scenarios)[self.base]
            tb.carbon_rows = {"base": _carbon_row(cb, LEVELS), "scenario": _carbon_row(self.scenario_carbon, LEVELS)}
            tb.carbon_base = _carbon_base(cp, params, tb.carbon_rows["base"])
            if not any(p.key.startswith("carbon.") for p in self.spec.parameters):
                # no scenario knob sampled: the scenario is a fixed basis too (PM2.5 linear in the factors)
                tb.carbon_scen = _carbon_base(cp, params, tb.carbon_rows["scenario"])
                tb.carbon_scen["twin_co2_total_mt"] = _carbon_base(
                    cp, params, dict(tb.carbon_rows["scenario"], symbiosis=0.0))["co2_total_mt"]
            if prep.seasons != ("annual",) or prep.heights is not None:
                tb.season_weights, tb.season_weights_base = _season_weights(cp, prep.seasons, prep.heights)
        else:
            cres = pl.carbon(prep, carbon_fn=self.carbon_fn)
            em = pl.emissions(prep, cres).sel(scenario=[self.base, self.spec.scenario]).reindex(
                source=prep.source_labels)
            tb.q_fixed = np.ascontiguousarray(em["q"].values, dtype=np.float64)
            if "season_height_share" in em:
                tb.share_fixed = np.ascontiguousarray(em["season_height_share"].transpose(
                    "season", "height", "scenario", "source").values, dtype=np.float64).reshape(
                    (-1, 2, len(prep.sources)))
            elif "height_share" in em:
                tb.share_fixed = np.ascontiguousarray(
                    em["height_share"].transpose("height", "scenario", "source").values, dtype=np.float64)
            elif "season_share" in em:
                tb.share_fixed = np.ascontiguousarray(
                    em["season_share"].transpose("season", "scenario", "source").values, dtype=np.float64)
            tb.co2_fixed = _fixed_co2(cres, self.base, self.spec.scenario)
        self.timings["carbon_setup_s"] = time.perf_counter() - t0
        t_sr = []
        for lv in levels:  # the dispersion work, last
            t0 = time.perf_counter()
            tb.S[lv], Ss, tt = self._sr_for_level(lv)
            # the terms as sparse matrices: a city sees its province's sources only (~5 % of S)
            tb.S_season[lv] = None if Ss is None else tuple(_csr(m) for m in Ss)
            t_sr.append({"level": dict(zip(self._level_keys(), lv)), "wall_s": time.perf_counter() - t0, **tt})
        self.timings["sr_matrix"] = t_sr
        tb.health, tb.background = health, background
        tb.health_default = {"crf": self.cfg.health.crf}
        return tb

    def _default_of(self, key):
        for p in self.spec.parameters:
            if p.key == key and p.default is not None:
                return p.default
        return self.key_info(key).default

    def _health_tables(self, values):
        """One :class:`HealthTable` per concentration-response function the samples use; the
        draw-mean table only where some sample averages over draws (``health.draw`` not sampled)."""
        from engine.health import expected as ex

        h = self.cfg.health
        pop = self._population()
        crfs = {h.crf}
        if "health.crf" in values:
            crfs |= set(values["health.crf"].astype(str))
        mean_needed = "health.draw" not in values or (values["health.draw"].to_numpy(np.int64) < 0).any()
        out = {}
        for crf in sorted(crfs):
            model, params, weight = ex.curves_and_weights(h, crf, pop)
            pif = h.avoided_method == "pif"
            t0 = time.perf_counter()
            mean = ex.DrawMeanTable(model, params, weight, cache=self._table_cache()) if mean_needed and not pif \
                else None
            self.timings[f"draw_mean_table_{crf}_s"] = time.perf_counter() - t0
            out[crf] = HealthTable(model, params, weight, pif, mean)
        return out

    def _table_cache(self):
        """Folder of the draw-mean tables' bases (``$COBENEFITS_CACHE_DIR/health``), or None
        without the cache (``use_cache = False``)."""
        if not self._sr_kw["use_cache"]:
            return None
        from engine.dispersion.fields import cache_dir

        return cache_dir("health")

    def _background(self):
        """``[health] background`` per selected city [ug m-3], or None."""
        h = self.cfg.health
        if not h.background:
            return None
        from engine.health.expected import background_values

        try:
            return background_values(h.background, self.prep.selected)
        except InputError as exc:
            raise InputError(f"{self.spec.path}: [health] background: {exc}") from None


def _csr(m):
    from scipy.sparse import csr_matrix

    return csr_matrix(m)

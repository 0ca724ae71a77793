"""The national run's stages with a leading sample axis: what a sensitivity sweep evaluates.

The stages are :mod:`engine.pipeline`'s; here they take many parameter sets at once. Once the
source-receptor matrix ``S`` of a dispersion level exists (:func:`engine.pipeline.sr_matrix`,
computed once per distinct level and cached), a chunk of ``n`` samples costs:

1. :func:`carbon_samples`: the carbon stage vectorised over samples
   (:func:`engine.carbon.accounting.evaluate`, rows ``base``, the scenario and its
   efficiency-only twin) -> emission intensities ``q[n, 2, source]`` [g m-2 s-1] mapped to the
   sources as :func:`engine.pipeline.emissions` maps them, their seasonal shares, national CO2;
2. :func:`concentrations`: :func:`engine.pipeline.superpose_arrays`, the one place ``C = S @ q``
   (and its season sum) is written, per dispersion level;
3. :func:`health_samples`: deaths per sample and city, one parameter draw per sample
   (:func:`kernels.sweep.impact_per_sample`) or the mean over draws at the cost of one curve
   (:class:`engine.health.expected.DrawMeanTable`), with the ``[health] background`` applied as
   :func:`engine.health.impact.health_impact` applies it.

:class:`NationalModel` builds the shared arrays once (:meth:`NationalModel.tables`) and says
which keys can be swept (:meth:`NationalModel.key_info`); :func:`evaluate_chunk` chains the
three stages. Sampling, chunking and indices live in :mod:`engine.sensitivity`.

Sweepable keys
--------------
=====================================  ===================================================
``carbon.<key>``                       numeric ``[carbon]`` keys of the scenario (ranges from
                                       :mod:`engine.config`); ``efficiency_level`` and
                                       ``symbiosis`` as a choice
``emissions.pm25_multiplier.<sector>`` multiplier [1] of a PM2.5 emission factor, sectors
                                       :data:`EMISSION_SECTORS`; range [0, 10]
``health.crf``                         concentration-response function (choice)
``health.draw``                        parameter-draw index (integer, ``0 .. draws-1``);
                                       not sampled = mean over the ``[health] draws``
``health.baseline_rate_multiplier``    multiplier [1] of every baseline death rate; (0, 10]
``dispersion.<key>``, ``met.<key>``    keys that change the source-receptor matrix, as a
                                       finite list of levels (``dist = "choice"``)
=====================================  ===================================================
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import time
import typing

import numpy as np
import pandas as pd

from engine import pipeline as pl
from engine.errors import InputError

__all__ = ["KeyInfo", "NationalModel", "SampleTables", "HealthTable", "evaluate_chunk", "carbon_samples",
           "concentrations", "health_samples", "config_key_info", "suggest", "OUTPUTS", "CARBON_OUTPUTS",
           "DEFAULT_OUTPUTS", "EMISSION_SECTORS", "CARBON_ARGS", "NOT_S"]

#: outputs of the national model: name -> (dims, units, long name)
OUTPUTS = {
    "national_co2_cut_mt": (("sample",), "Mt CO2 yr-1", "national CO2 cut, base minus scenario (all cities and rests "
                                                        "of province)"),
    "national_symbiosis_co2_cut_mt": (("sample",), "Mt CO2 yr-1",
                                      "national CO2 cut by symbiosis: efficiency-only twin minus scenario "
                                      "(Table 2 total)"),
    "national_avoided_deaths": (("sample",), "deaths yr-1", "premature deaths avoided, sum over the cities"),
    "national_deaths_base": (("sample",), "deaths yr-1", "premature deaths attributable to PM2.5 in the base "
                                                         "scenario, sum over the cities"),
    "pop_weighted_conc_reduction_ug_m3": (("sample",), "ug m-3", "population-weighted reduction of primary PM2.5 "
                                                                 "exposure, base minus scenario"),
    "city_avoided_deaths": (("sample", "city"), "deaths yr-1", "premature deaths avoided in the city"),
    "city_conc_reduction_pct": (("sample", "city"), "%", "reduction of the city's primary PM2.5 exposure, "
                                                         "100 (base - scenario) / base"),
    "city_conc_base_ug_m3": (("sample", "city"), "ug m-3", "primary PM2.5 exposure of the city, base"),
    "city_conc_scenario_ug_m3": (("sample", "city"), "ug m-3", "primary PM2.5 exposure of the city, scenario"),
}
#: outputs of the carbon stage alone (a sweep asking only for these computes no S and no health)
CARBON_OUTPUTS = ("national_co2_cut_mt", "national_symbiosis_co2_cut_mt")
DEFAULT_OUTPUTS = ("national_co2_cut_mt", "national_avoided_deaths", "city_avoided_deaths", "city_conc_reduction_pct")

#: PM2.5 emission-factor keys of the carbon parameters (engine/data/carbon_parameters.csv), per sector
EMISSION_SECTORS = {
    "power": "power_pm25_g_per_kg_coal", "steel": "pm25_steel", "cement": "pm25_cement",
    "industrial_boiler": "pm25_industrial_boiler", "other_industry": "pm25_other_industry",
    "heating_des": "pm25_heating_des", "heating_individual": "pm25_heating_individual",
    "cooking": "pm25_cooking", "other": "pm25_other",
}
#: carbon keys the carbon stage takes per scenario (the arguments of engine.carbon.accounting.evaluate)
CARBON_ARGS = {"seasonality_fraction": "seasonality", "heat_availability_high": "avail_high",
               "heat_availability_medium": "avail_medium", "heat_availability_low": "avail_low",
               "orc_efficiency": "orc_efficiency", "fly_ash_saturation": "fly_ash_saturation",
               "slag_saturation": "slag_saturation"}
#: [dispersion] keys that do not change S (they shape files only)
NOT_S = {"mosaic_resolution_deg"}


def suggest(key, valid):
    """``"; did you mean 'x'?"`` for the closest of ``valid``, or ``""``."""
    m = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.6)
    return f"; did you mean '{m[0]}'?" if m else ""


@dataclasses.dataclass(frozen=True)
class KeyInfo:
    """What a sweepable key accepts: numeric range (closed unless open flags) or choices."""

    kind: str                      # "float", "int" or "choice"
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple = ()
    default: object = None
    levels_only: bool = False      # dispersion/met: a finite list of levels

    def describe(self):
        if self.kind == "choice":
            return "one of " + ", ".join(map(repr, self.choices)) if self.choices else "any value of its type"
        lb = "(" if self.lo_open else "["
        rb = ")" if self.hi_open else "]"
        return f"{lb}{self.lo}, {self.hi}{rb}"

    def contains(self, v):
        if self.kind == "choice":
            return not self.choices or v in self.choices
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        if self.kind == "int" and float(v) != int(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        if self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi):
            return False
        return True


def config_key_info(section_cls, name, cfg_section, *, levels_only=False):
    """:class:`KeyInfo` of a configuration key (its type and range from :mod:`engine.config`)."""
    from engine.config import field_type

    fields = {f.name: f for f in dataclasses.fields(section_cls) if not f.metadata.get("internal")}
    if name not in fields:
        raise KeyError(f"unknown key{suggest(name, fields)} (keys of this section: {', '.join(fields)})")
    f = fields[name]
    tp = field_type(section_cls, name)
    default = getattr(cfg_section, name)
    if typing.get_origin(tp) is typing.Literal:
        return KeyInfo("choice", choices=typing.get_args(tp), default=default, levels_only=levels_only)
    if tp is bool:
        return KeyInfo("choice", choices=(True, False), default=default, levels_only=levels_only)
    if tp is str:
        return KeyInfo("choice", default=default, levels_only=True)
    md = f.metadata
    return KeyInfo("int" if tp is int else "float", md.get("lo"), md.get("hi"), md.get("lo_open", False),
                   md.get("hi_open", False), default=default, levels_only=levels_only)


@dataclasses.dataclass
class HealthTable:
    """One concentration-response function's arrays for the health stage of a sweep."""

    model: int                        # kernels.crf.MODEL_*
    params: np.ndarray                # (n_curve, n_draw, N_PARAMS) draws (or the central parameters)
    weight: np.ndarray                # (n_city, n_curve) population x baseline rate [deaths yr-1]
    pif: bool                         # avoided deaths as potential impact fraction
    mean: object = None               # engine.health.expected.DrawMeanTable, or None (draws sampled / pif)


@dataclasses.dataclass
class SampleTables:
    """The arrays a chunk needs (picklable: shipped once to every worker)."""

    city: np.ndarray                  # (n_city,) receptor city ids
    population: np.ndarray            # (n_city,) persons, for population weighting
    S: dict                           # level key -> (n_city, n_source) [ug m-3 per g m-2 s-1]
    S_season: dict = None             # level key -> (n_season, n_city, n_source) c_s S_s, or None (annual met)
    season_weights: dict = None       # season -> (n_sector_key, n_place) share of each sector's emission in it
    season_weights_base: dict = None  # season -> (len(EMISSION_SECTORS), n_place), for the base basis
    share_fixed: np.ndarray = None    # (n_season, 2, n_source) seasonal shares when the carbon stage is fixed
    level_keys: tuple = ()            # dispersion/met parameter keys, in order
    carbon: object = None             # accounting.Prepared, or None (fixed emissions)
    carbon_params: dict = None
    carbon_rows: dict = None          # base / scenario CarbonConfig fields as arrays
    carbon_base: dict = None          # base scenario: national CO2 [Mt], PM2.5 by sector (n_sector, P) [t]
    carbon_scen: dict = None          # the same for the scenario at its configured knobs (and its twin's CO2)
    source_place: np.ndarray = None   # (n_source,) place index or -1
    area_km2: np.ndarray = None       # (n_place,)
    q_fixed: np.ndarray = None        # (2, n_source) [g m-2 s-1] when the carbon stage is fixed
    co2_fixed: tuple = None           # (cut, symbiosis cut) [Mt] when fixed
    health: dict = None               # crf -> HealthTable
    health_default: dict = None
    background: np.ndarray = None     # (n_city,) total PM2.5 [ug m-3] ([health] background), or None


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
            tb.S[lv], tb.S_season[lv], tt = self._sr_for_level(lv)
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
            mean = ex.DrawMeanTable(model, params, weight) if mean_needed and not pif else None
            self.timings[f"draw_mean_table_{crf}_s"] = time.perf_counter() - t0
            out[crf] = HealthTable(model, params, weight, pif, mean)
        return out

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


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def _carbon_row(c, levels):
    return {"level": levels.index(c.efficiency_level), "symbiosis": float(c.symbiosis),
            **{arg: float(getattr(c, key)) for key, arg in CARBON_ARGS.items()}}


def _carbon_base(cprep, params, row):
    """The base scenario once: national CO2 [Mt] and PM2.5 [t] of each place from each sector's
    emission factor alone (a basis over :data:`EMISSION_SECTORS`: ``evaluate`` with the factors as
    an identity matrix on a leading axis)."""
    from engine.carbon.accounting import evaluate

    ns = len(EMISSION_SECTORS)
    p = dict(params)
    for j, key in enumerate(EMISSION_SECTORS.values()):
        e = np.zeros((ns, 1, 1))
        e[j] = params[key]
        p[key] = e
    args = {arg: np.array([[row[arg]]], dtype=np.int64 if arg == "level" else float)
            for arg in ("level", "symbiosis", *(CARBON_ARGS.values()))}
    res = evaluate(cprep, p, **args)
    pm = np.broadcast_to(res["pm25_t"], (ns, 1, res["pm25_t"].shape[-1]))[:, 0, :]
    co2 = np.asarray(res["co2_mt"])
    return {"co2_total_mt": float(co2.reshape(-1, co2.shape[-1])[0].sum()),
            "pm25_by_sector_t": np.ascontiguousarray(pm)}


def _season_weights(cp, seasons, heights=None):
    """Share of each sector's emission in each superposition term, at every place.

    A term is a season (its province's climate region's share,
    :func:`engine.dispersion.climatology.seasonal_emission_shares`; ``annual``: 1), and with
    emission heights (``heights``, :class:`engine.dispersion.plumerise.EmissionHeights`) a
    (season, height class) pair, season-major: the season's share times the sector's share in
    the class. Returns ``({term: {sector: (P,)}}, {term: (len(EMISSION_SECTORS), P)})``: the
    first for the carbon stage's ``pm25_by_sector_t`` keys (``power`` and the fuel sectors), the
    second for the base scenario's basis over :data:`EMISSION_SECTORS`.
    """
    from engine.dispersion import climatology as clim
    from engine.carbon.accounting import PM_KEY

    regions = np.array([clim.climate_region_of(p) for p in cp.places["province_id"].to_numpy()])
    uniq = sorted(set(regions))
    sectors = ["power", *PM_KEY]
    classes = heights.classes if heights is not None else ("ground",)

    def weights(sector):
        if seasons == ("annual",):
            return {"annual": np.ones(len(regions))}
        table = {r: clim.seasonal_emission_shares(sector, r) for r in uniq}
        return {s: np.array([table[r][s] for r in regions]) for s in seasons}

    def share(sector, c):
        return 1.0 if heights is None else heights.sector_share(sector, c)

    terms = [(s, c) for s in seasons for c in classes]
    by = {k: weights(k) for k in sectors}
    basis = {k: weights(k) for k in EMISSION_SECTORS}
    return ({t: {k: by[k][t[0]] * share(k, t[1]) for k in sectors} for t in terms},
            {t: np.stack([basis[k][t[0]] * share(k, t[1]) for k in EMISSION_SECTORS]) for t in terms})


def _seasonal_place_shares(tb, mult, pm_base, res, pm):
    """``share[term] (n, 2, P)``: each place's share of its PM2.5 emitted in each superposition
    term (:func:`_season_weights`), for the base row (the sector basis times the multipliers)
    and the scenario row (the carbon stage's sectors); a place that emits nothing gets the flat
    season (days / 365) at the ground."""
    from engine.dispersion import climatology as clim

    out = {}
    n = pm.shape[0]
    keys = list(res["pm25_by_sector_t"])
    by_sector = np.stack([np.broadcast_to(_row0(res["pm25_by_sector_t"][k]), pm.shape[::2])
                          for k in keys], axis=1)                                              # (n, K, P)
    for t, w in tb.season_weights.items():
        s, c = t
        base_s = mult @ (tb.season_weights_base[t] * tb.carbon_base["pm25_by_sector_t"])      # (n, P)
        wk = np.stack([np.broadcast_to(w[k], by_sector.shape[-1:]) for k in keys])            # (K, P)
        scen_s = np.einsum("nkp,kp->np", by_sector, wk)                                          # (n, P)
        num = np.stack([base_s, scen_s], axis=1)                                                # (n, 2, P)
        flat = (1.0 if s == "annual" else clim.SEASON_DAYS[s] / 365.0) * (c == "ground")
        out[t] = np.divide(num, pm, out=np.full((n, 2, pm.shape[-1]), flat), where=pm > 0)
    return out


def _row0(a):
    """The first scenario row of a carbon-stage array ``(..., R, P)`` (a ``(P,)`` array that no
    scenario argument touched is returned as is)."""
    a = np.asarray(a)
    return a[..., 0, :] if a.ndim >= 2 else a


def _fixed_co2(cres, base, scen):
    nat = getattr(cres, "national", None)
    if nat is not None and "item" in nat:
        t = nat[nat["item"] == "national_co2"].set_index("scenario")["co2_mt"]
        sym = nat[nat["item"] == "symbiosis_total"].set_index("scenario")["co2_mt"]
        return float(t[base] - t[scen]), float(sym.get(scen, np.nan))
    tot = 0.0
    for tab in (cres.cities, cres.rop):
        if "co2_t" in tab:
            g = tab.groupby("scenario")["co2_t"].sum()
            tot += float(g.get(base, 0.0) - g.get(scen, 0.0))
    return tot / 1e6, float("nan")


# --------------------------------------------------------------------------- the stages with a sample axis
def carbon_samples(tb, values, outputs):
    """The carbon and emission stages for every sample.

    Returns
    -------
    co2 : dict  ``national_co2_cut_mt`` and ``national_symbiosis_co2_cut_mt`` (n,) [Mt CO2 yr-1]
    q : (n, 2, n_source) float64  emission intensity of the base and the scenario [g m-2 s-1],
        per source as :func:`engine.pipeline.emissions` (PM2.5 [t yr-1] of the source's place
        over its area, per second)
    share : (n_season, n, 2, n_source) float64 or None  seasonal shares of each source's
        emission (as :func:`engine.pipeline.emissions`' ``season_share``), None with annual met
    """

    n = len(values)
    cols = set(values.columns)
    if tb.carbon is None:
        q = np.broadcast_to(tb.q_fixed, (n,) + tb.q_fixed.shape)
        share = None if tb.share_fixed is None else tb.share_fixed[:, None]  # (n_season, 1, 2, n_source)
        co2 = {"national_co2_cut_mt": np.full(n, tb.co2_fixed[0]),
               "national_symbiosis_co2_cut_mt": np.full(n, tb.co2_fixed[1])}
        return co2, q, share
    from engine.carbon.accounting import evaluate
    from engine.carbon.efficiency import LEVELS

    p = dict(tb.carbon_params)
    mult = np.ones((n, len(EMISSION_SECTORS)))
    for j, (sector, key) in enumerate(EMISSION_SECTORS.items()):
        k = f"emissions.pm25_multiplier.{sector}"
        if k in cols:
            mult[:, j] = values[k].to_numpy(float)
            p[key] = p[key] * mult[:, j, None, None]
    # the base scenario does not depend on the scenario knobs and its PM2.5 is linear in the
    # emission factors: pm_base = sum over sectors of multiplier x (base PM2.5 of that sector
    # alone), from one evaluation at tables() time; CO2 does not depend on the factors
    pm_base = mult @ tb.carbon_base["pm25_by_sector_t"]                       # (n, P)
    if tb.carbon_scen is not None:
        return _fixed_knobs(tb, mult, pm_base, n)
    twin = "national_symbiosis_co2_cut_mt" in outputs
    rows = [tb.carbon_rows["scenario"]] + ([dict(tb.carbon_rows["scenario"], symbiosis=0.0)] if twin else [])
    # an argument not sampled stays (1, R, 1): what depends only on such arguments (the
    # efficiency stage when the level is fixed, the material exchange) is computed once
    args = {arg: np.array([[r[arg]] for r in rows], dtype=np.int64 if arg == "level" else float)[None]
            for arg in ("level", "symbiosis", *(CARBON_ARGS.values()))}                      # (1, R, 1)
    for key, arg in CARBON_ARGS.items():
        k = f"carbon.{key}"
        if k in cols:
            args[arg] = np.repeat(args[arg], n, axis=0)
            args[arg][:, :, 0] = values[k].to_numpy(float)[:, None]
    if "carbon.efficiency_level" in cols:
        lv = np.array([LEVELS.index(x) for x in values["carbon.efficiency_level"]], dtype=np.int64)
        args["level"] = np.repeat(args["level"], n, axis=0)
        args["level"][:, :, 0] = lv[:, None]
    if "carbon.symbiosis" in cols:
        args["symbiosis"] = np.repeat(args["symbiosis"], n, axis=0)
        args["symbiosis"][:, 0, 0] = values["carbon.symbiosis"].to_numpy(float)
    res = evaluate(tb.carbon, p, **args)
    tot = np.broadcast_to(res["co2_mt"].sum(axis=-1), (n, len(rows)))  # national CO2 [Mt], as run_carbon's
    co2 = {"national_co2_cut_mt": tb.carbon_base["co2_total_mt"] - tot[:, 0],
           "national_symbiosis_co2_cut_mt": tot[:, 1] - tot[:, 0] if twin else np.full(n, np.nan)}
    if tb.S is None or not tb.S:
        return co2, None, None
    pm = np.stack([pm_base, np.broadcast_to(_row0(res["pm25_t"]), pm_base.shape)], axis=1)  # (n, 2, P)
    q, share = _place_to_sources(tb, pm)
    if tb.season_weights is not None:
        sp = np.maximum(tb.source_place, 0)
        share = np.stack([v[..., sp] for v in _seasonal_place_shares(tb, mult, pm_base, res, pm).values()])
    return co2, q, share


def _fixed_knobs(tb, mult, pm_base, n):
    """:func:`carbon_samples` when no carbon knob is sampled: both rows are linear in the
    emission-factor multipliers (a basis evaluated once), CO2 does not depend on them."""
    sc = tb.carbon_scen
    co2 = {"national_co2_cut_mt": np.full(n, tb.carbon_base["co2_total_mt"] - sc["co2_total_mt"]),
           "national_symbiosis_co2_cut_mt": np.full(n, sc["twin_co2_total_mt"] - sc["co2_total_mt"])}
    if not tb.S:
        return co2, None, None
    pm = np.stack([pm_base, mult @ sc["pm25_by_sector_t"]], axis=1)             # (n, 2, P)
    q, share = _place_to_sources(tb, pm)
    if tb.season_weights is not None:
        sp = np.maximum(tb.source_place, 0)
        out = []
        for s, wb in tb.season_weights_base.items():
            num = np.stack([mult @ (wb * tb.carbon_base["pm25_by_sector_t"]),
                            mult @ (wb * sc["pm25_by_sector_t"])], axis=1)            # (n, 2, P)
            fs = np.divide(num, pm, out=np.full(pm.shape, _flat_share(s)), where=pm > 0)  # s: (season, class)
            out.append(fs[..., sp])
        share = np.stack(out)
    return co2, q, share


def _flat_share(term):
    """Share of a place that emits nothing in a (season, height class) term: the season's days
    at the ground."""
    from engine.dispersion import climatology as clim

    season, cls = term
    return (1.0 if season == "annual" else clim.SEASON_DAYS[season] / 365.0) * (cls == "ground")


def _place_to_sources(tb, pm):
    """PM2.5 [t yr-1] of the places ``(..., P)`` -> emission intensity of the sources
    ``(..., n_source)`` [g m-2 s-1] (as :func:`engine.pipeline.emissions`: t km-2 = g m-2, per second)."""
    from engine.constants import SECONDS_PER_YEAR

    area = tb.area_km2
    q_place = np.divide(pm, area, out=np.zeros_like(pm), where=area > 0) / SECONDS_PER_YEAR
    return np.where(tb.source_place >= 0, q_place[..., np.maximum(tb.source_place, 0)], 0.0), None


def _levels(tb, values):
    if not tb.level_keys:
        return [()] * len(values)
    return [tuple(_plain(v) for v in r) for r in values[list(tb.level_keys)].itertuples(index=False)]


def concentrations(tb, values, q, share):
    """City exposure of the base and the scenario for every sample, through
    :func:`engine.pipeline.superpose_arrays` with each sample's dispersion level.

    Returns ``(n, 2, n_city)`` float64 [ug m-3] (base, scenario)."""
    n = len(values)
    C = np.empty((n, 2, len(tb.city)))
    lv = _levels(tb, values)
    for level in sorted(set(lv), key=repr):
        idx = np.array([i for i, x in enumerate(lv) if x == level], dtype=np.int64)
        Ss = tb.S_season.get(level) if tb.S_season else None
        if Ss is not None and share is None:
            raise ValueError("seasonal S needs seasonal emission shares")
        sh = None
        if Ss is not None:
            sh = np.broadcast_to(share, (share.shape[0], n) + share.shape[2:])[:, idx]
        C[idx] = pl.superpose_arrays(tb.S[level], q[idx], S_season=Ss, share=sh)
    return C


def health_samples(tb, values, conc_base, conc_scenario):
    """Deaths per sample and city: base, scenario and avoided ``(n, n_city)`` [deaths yr-1].

    The health functions see the exposure as :func:`engine.health.impact.health_impact` does:
    the primary concentrations, or with ``[health] background`` the background (base) and the
    background minus the primary change, floored at 0 (scenario). Per sample: the sampled
    ``health.draw``, else the mean over the ``[health] draws`` (a
    :class:`engine.health.expected.DrawMeanTable`; with ``avoided_method = "pif"`` directly over
    the draws), times ``health.baseline_rate_multiplier``.
    """
    from kernels.sweep import impact_per_sample

    n, n_city = conc_base.shape
    cols = set(values.columns)
    if tb.background is not None:
        zb = np.broadcast_to(tb.background, (n, n_city))
        zs = np.maximum(zb - (conc_base - conc_scenario), 0.0)
    else:
        zb, zs = conc_base, conc_scenario
    crf = values["health.crf"].astype(str).to_numpy() if "health.crf" in cols else np.full(n, tb.health_default["crf"])
    draw = values["health.draw"].to_numpy(np.int64) if "health.draw" in cols else np.full(n, -1, dtype=np.int64)
    scale = values["health.baseline_rate_multiplier"].to_numpy(float) if "health.baseline_rate_multiplier" in cols \
        else np.ones(n)
    Db, Ds, Da = (np.empty((n, n_city)) for _ in range(3))
    for name in sorted(set(crf)):
        ht = tb.health[name]
        idx = np.nonzero(crf == name)[0]
        d = np.where(draw[idx] >= 0, np.minimum(draw[idx], ht.params.shape[1] - 1), -1)
        b, s_ = np.ascontiguousarray(zb[idx]), np.ascontiguousarray(zs[idx])
        by_table = (d < 0) & (ht.mean is not None)
        if by_table.any():
            t = np.nonzero(by_table)[0]
            mb, ms = ht.mean(b[t]), ht.mean(s_[t])
            sc = scale[idx[t], None]
            Db[idx[t]], Ds[idx[t]], Da[idx[t]] = sc * mb, sc * ms, sc * (mb - ms)
        rest = np.nonzero(~by_table)[0]
        if rest.size:
            ob, os_, oa = (np.empty((rest.size, n_city)) for _ in range(3))
            impact_per_sample(ht.model, np.ascontiguousarray(b[rest]), np.ascontiguousarray(s_[rest]), ht.params,
                              np.ascontiguousarray(d[rest], dtype=np.int64), ht.weight,
                              np.ascontiguousarray(scale[idx[rest]]), ht.pif, ob, os_, oa)
            Db[idx[rest]], Ds[idx[rest]], Da[idx[rest]] = ob, os_, oa
    return Db, Ds, Da


def evaluate_chunk(tb, values, outputs):
    """Outputs of the national model for a table of parameter values (one row per sample):
    :func:`carbon_samples` -> :func:`concentrations` -> :func:`health_samples`.

    Parameters
    ----------
    tb : SampleTables from :meth:`NationalModel.tables`
    values : pandas.DataFrame  parameter values, columns = keys
    outputs : sequence of output names (:data:`OUTPUTS`)

    Returns
    -------
    dict {name: ndarray (n,) or (n, n_city)}
    """
    out, q, share = carbon_samples(tb, values, outputs)
    if tb.health is None:
        return {k: out[k] for k in outputs}
    C = concentrations(tb, values, q, share)
    Cb, Cs = C[:, 0], C[:, 1]
    Db, _, Da = health_samples(tb, values, Cb, Cs)
    pop = tb.population
    out["national_avoided_deaths"] = Da.sum(axis=1)
    out["national_deaths_base"] = Db.sum(axis=1)
    # row-wise sums (not a BLAS matrix-vector product) so a sample's value does not depend on its chunk
    out["pop_weighted_conc_reduction_ug_m3"] = ((Cb - Cs) * pop).sum(axis=1) / pop.sum()
    out["city_avoided_deaths"] = Da
    out["city_conc_reduction_pct"] = np.divide(100.0 * (Cb - Cs), Cb, out=np.full(Cb.shape, np.nan), where=Cb > 0)
    out["city_conc_base_ug_m3"] = np.ascontiguousarray(Cb)
    out["city_conc_scenario_ug_m3"] = np.ascontiguousarray(Cs)
    return {k: out[k] for k in outputs}

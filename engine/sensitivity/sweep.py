"""Sensitivity sweeps of the national run: sampling, chunked evaluation, global sensitivity indices.

A sweep file (TOML, ``config/sweeps/*.toml``) names a scenario, a sampling method and the
uncertain parameters; every sample is one national evaluation of the scenario against the base
scenario. Concentration is linear in emissions, so once the source-receptor matrix ``S`` of a
dispersion level exists (:func:`engine.pipeline.sr_matrix`, computed once per distinct level and
cached), a chunk of ``n`` samples costs:

1. the carbon stage with a sample axis (:func:`engine.carbon.accounting.evaluate`, scenario
   rows ``base``, the scenario and its efficiency-only twin) -> emissions ``Q[n, scenario, source]``
   [g m-2 s-1] and national CO2 [Mt];
2. one matrix product per scenario, ``C = Q @ S.T`` [ug m-3] (the formula of
   :func:`engine.pipeline.superpose`); with seasonal met, one per scenario and season,
   ``C = sum_s (share_s * Q) @ S_s.T``, the shares from each sample's PM2.5 by sector;
3. the health kernels with a sample axis (:func:`kernels.sweep.impact_per_sample`), one
   parameter draw per sample (or the mean over draws when the draw is not sampled).

Methods: ``sobol`` (Saltelli/Sobol' sequence, ``N(D+2)`` evaluations, ``N(2D+2)`` with second
order; indices with bootstrap confidence intervals), ``morris`` (elementary effects, ``N(D+1)``),
``lhs`` and ``mc`` (first-order indices by RBD-FAST), ``grid`` (every level
combination; no indices). Sampling and indices are SALib's (Herman and Usher 2017, JOSS 2:97;
Saltelli et al. 2010 CPC 181:259; Morris 1991; Plischke 2010).

Parameters are sampled on the unit hypercube and mapped to their distribution by the inverse
CDF (uniform, normal with optional truncation, triangular, choice, integer), so every method
handles every distribution alike; Morris elementary effects are therefore per unit of the
parameter's probability scale.

Sweepable keys (national model)
-------------------------------
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

Example
-------
>>> import engine
>>> ds = engine.sensitivity.sweep("config/sweeps/avoided_deaths_drivers.toml", samples=64)   # doctest: +SKIP
>>> ds.national_avoided_deaths.to_series().describe()                            # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import json
import logging
import math
import tempfile
import time
import tomllib
import typing
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import InputError

__all__ = [
    "KeyInfo",
    "Parameter",
    "SweepSpec",
    "check_parameters",
    "evaluate_chunk",
    "expected_count",
    "NationalModel",
    "load_spec",
    "parse_spec",
    "sample",
    "sweep",
    "analyze",
    "METHODS",
    "DISTRIBUTIONS",
    "OUTPUTS",
    "EMISSION_SECTORS",
]

log = logging.getLogger("cobenefits")

METHODS = ("sobol", "morris", "lhs", "grid", "mc")
DISTRIBUTIONS = ("uniform", "normal", "triangular", "choice", "integer")

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
#: carbon keys the carbon stage takes per scenario (engine.carbon.accounting._scenario_arrays)
_CARBON_ARGS = {"seasonality_fraction": "seasonality", "heat_availability_high": "avail_high",
                "heat_availability_medium": "avail_medium", "heat_availability_low": "avail_low",
                "orc_efficiency": "orc_efficiency", "fly_ash_saturation": "fly_ash_saturation",
                "slag_saturation": "slag_saturation"}
#: [dispersion] keys that do not change S (they shape files only)
_NOT_S = {"mosaic_resolution_deg"}

_SWEEP_KEYS = ("method", "samples", "seed", "scenario", "config", "cities", "outputs", "chunk_size",
               "second_order", "num_levels", "grid_points", "conf_level", "num_resamples", "parameter")
_PARAM_KEYS = ("key", "dist", "bounds", "levels", "mean", "sd")


def _suggest(key, valid):
    m = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.6)
    return f"; did you mean '{m[0]}'?" if m else ""


# --------------------------------------------------------------------------- spec
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


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One uncertain input of a sweep.

    ``dist``: ``uniform`` (``bounds = [lo, hi]``), ``normal`` (``mean``, ``sd``, optional
    truncation ``bounds = [lo, hi]``), ``triangular`` (``bounds = [lo, mode, hi]``), ``choice``
    (``levels``, equally likely), ``integer`` (``bounds = [lo, hi]``, every integer equally likely).
    """

    key: str
    dist: str
    bounds: tuple = ()
    levels: tuple = ()
    mean: float | None = None
    sd: float | None = None
    default: object = None

    @property
    def is_discrete(self):
        return self.dist in ("choice", "integer")

    def from_unit(self, u):
        """Values of the parameter at unit-hypercube coordinates ``u`` (inverse CDF)."""
        u = np.asarray(u, dtype=float)
        if self.dist == "uniform":
            lo, hi = self.bounds
            return lo + u * (hi - lo)
        if self.dist == "integer":
            lo, hi = int(self.bounds[0]), int(self.bounds[1])
            return lo + np.minimum(np.floor(u * (hi - lo + 1)), hi - lo).astype(np.int64)
        if self.dist == "choice":
            k = len(self.levels)
            idx = np.minimum(np.floor(u * k), k - 1).astype(np.int64)
            lv = np.asarray(self.levels, dtype=object)
            out = lv[idx]
            if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in self.levels):
                return out.astype(float)
            return out
        from scipy import stats

        if self.dist == "normal":
            if self.bounds:
                a, b = stats.norm.cdf([(self.bounds[0] - self.mean) / self.sd, (self.bounds[1] - self.mean) / self.sd])
                return self.mean + self.sd * stats.norm.ppf(a + u * (b - a))
            return self.mean + self.sd * stats.norm.ppf(np.clip(u, 1e-12, 1.0 - 1e-12))
        lo, mode, hi = self.bounds  # triangular
        return stats.triang.ppf(u, (mode - lo) / (hi - lo), loc=lo, scale=hi - lo)

    def grid(self, points):
        """Levels of a ``grid`` sweep: every level of a discrete parameter, else ``points``
        values (evenly spaced for uniform, at the quantiles (i + 1/2)/points otherwise)."""
        if self.dist == "choice":
            return self.from_unit((np.arange(len(self.levels)) + 0.5) / len(self.levels))
        if self.dist == "integer":
            lo, hi = int(self.bounds[0]), int(self.bounds[1])
            return np.arange(lo, hi + 1, dtype=np.int64)
        if self.dist == "uniform":
            return np.linspace(self.bounds[0], self.bounds[1], points) if points > 1 else \
                np.array([0.5 * (self.bounds[0] + self.bounds[1])])
        return self.from_unit((np.arange(points) + 0.5) / points)

    def as_dict(self):
        d = {"key": self.key, "dist": self.dist}
        if self.bounds:
            d["bounds"] = list(self.bounds)
        if self.levels:
            d["levels"] = list(self.levels)
        if self.mean is not None:
            d["mean"], d["sd"] = self.mean, self.sd
        d["default"] = self.default
        return d


@dataclasses.dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file (see the module docstring and ``config/sweeps/``)."""

    method: str = "sobol"
    samples: int = 1024
    seed: int = 1
    scenario: str = "fyp_symbiosis"
    config: tuple = ()
    cities: str | None = None
    outputs: tuple = DEFAULT_OUTPUTS
    parameters: tuple = ()
    chunk_size: int = 500
    second_order: bool = False
    num_levels: int = 4
    grid_points: int = 3
    conf_level: float = 0.95
    num_resamples: int = 100
    path: str = "<sweep>"

    @property
    def keys(self):
        return [p.key for p in self.parameters]

    def replace(self, **kw):
        return dataclasses.replace(self, **{k: v for k, v in kw.items() if v is not None})

    def as_dict(self):
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("parameters", "path")}
        d["config"] = list(self.config)
        d["outputs"] = list(self.outputs)
        d["parameters"] = [p.as_dict() for p in self.parameters]
        d["path"] = self.path
        return d

    def digest(self):
        """Content hash of everything that decides the samples and their values."""
        d = self.as_dict()
        d.pop("path")
        d.pop("chunk_size")  # chunks are re-cut from the same sample matrix: see _chunk_bounds
        from engine._version import __version__

        # the code that computes a chunk is part of its identity: a changed model never reuses old chunks
        code = hashlib.sha256()
        for f in (Path(__file__), Path(__file__).parents[2] / "kernels" / "sweep.py"):
            with contextlib.suppress(OSError):
                code.update(f.read_bytes())
        blob = json.dumps({"spec": d, "engine": __version__, "code": code.hexdigest()}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _num(v, where, what="a number"):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise InputError(f"{where} = {v!r} must be {what}")
    return float(v)


def parse_spec(table, *, source="<sweep>", base_dir=None):
    """Validate a parsed sweep file (the TOML document) into a :class:`SweepSpec`.

    Checks the ``[sweep]`` keys and the form of every ``[[sweep.parameter]]``; whether a key
    exists and its range are checked against a model by :func:`check_parameters`.
    """
    if not isinstance(table, dict) or "sweep" not in table:
        raise InputError(f"{source}: no [sweep] table (see config/sweeps/ for examples)")
    extra = [k for k in table if k != "sweep"]
    if extra:
        raise InputError(f"{source}: unknown section [{extra[0]}]; a sweep file has one [sweep] table "
                         "and [[sweep.parameter]] entries")
    t = table["sweep"]
    for k in t:
        if k not in _SWEEP_KEYS:
            raise InputError(f"{source}: unknown key '{k}' in [sweep]{_suggest(k, _SWEEP_KEYS)} "
                             f"(allowed: {', '.join(_SWEEP_KEYS)})")
    kw = {"path": str(source)}
    method = t.get("method", "sobol")
    if method not in METHODS:
        raise InputError(f"{source}: [sweep] method = {method!r} is not allowed; choose one of "
                         f"{', '.join(map(repr, METHODS))}")
    kw["method"] = method
    for key, lo, hi in (("samples", 1, 10**8), ("seed", 0, 2**32 - 1), ("chunk_size", 1, 10**6),
                        ("num_levels", 2, 100), ("grid_points", 1, 1000), ("num_resamples", 10, 100000)):
        if key in t:
            v = t[key]
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise InputError(f"{source}: [sweep] {key} = {v!r} must be an integer in [{lo}, {hi}]")
            kw[key] = v
    if "conf_level" in t:
        v = _num(t["conf_level"], f"{source}: [sweep] conf_level")
        if not 0.0 < v < 1.0:
            raise InputError(f"{source}: [sweep] conf_level = {v!r} is outside the allowed range (0, 1)")
        kw["conf_level"] = v
    if "second_order" in t:
        if not isinstance(t["second_order"], bool):
            raise InputError(f"{source}: [sweep] second_order = {t['second_order']!r} must be true or false")
        kw["second_order"] = t["second_order"]
    if "scenario" in t:
        if not isinstance(t["scenario"], str) or not t["scenario"]:
            raise InputError(f"{source}: [sweep] scenario must be a scenario name (a string)")
        kw["scenario"] = t["scenario"]
    if "cities" in t:
        if not isinstance(t["cities"], str):
            raise InputError(f"{source}: [sweep] cities = {t['cities']!r} must be a string ('all', ids, names "
                             "or provinces, comma-separated)")
        kw["cities"] = t["cities"]
    if "config" in t:
        c = t["config"]
        c = [c] if isinstance(c, str) else c
        if not isinstance(c, list) or not all(isinstance(x, str) for x in c):
            raise InputError(f"{source}: [sweep] config must be a list of scenario TOML paths")
        folder = Path(base_dir) if base_dir is not None else Path.cwd()
        kw["config"] = tuple(str(x if Path(x).is_absolute() else (folder / x).resolve()) for x in c)
    if "outputs" in t:
        o = t["outputs"]
        if not isinstance(o, list) or not o or not all(isinstance(x, str) for x in o):
            raise InputError(f"{source}: [sweep] outputs must be a non-empty list of output names")
        kw["outputs"] = tuple(o)
    raw = t.get("parameter", [])
    if not isinstance(raw, list) or not raw:
        raise InputError(f"{source}: no [[sweep.parameter]] entries; a sweep needs at least one parameter")
    params, seen = [], set()
    for i, p in enumerate(raw):
        params.append(_parse_parameter(p, f"{source}: [[sweep.parameter]] #{i + 1}"))
        if params[-1].key in seen:
            raise InputError(f"{source}: parameter '{params[-1].key}' appears more than once")
        seen.add(params[-1].key)
    kw["parameters"] = tuple(params)
    return SweepSpec(**kw)


def _parse_parameter(p, where):
    if not isinstance(p, dict):
        raise InputError(f"{where} must be a table (key, dist, bounds or levels)")
    for k in p:
        if k not in _PARAM_KEYS:
            raise InputError(f"{where}: unknown field '{k}'{_suggest(k, _PARAM_KEYS)} (allowed: {', '.join(_PARAM_KEYS)})")
    key = p.get("key")
    if not isinstance(key, str) or not key:
        raise InputError(f"{where}: 'key' (e.g. \"carbon.heat_availability_low\") is required")
    where = f"{where.split(': ')[0]}: parameter '{key}'"
    dist = p.get("dist", "choice" if "levels" in p else "uniform")
    if dist not in DISTRIBUTIONS:
        raise InputError(f"{where}: dist = {dist!r} is not allowed; choose one of {', '.join(map(repr, DISTRIBUTIONS))}")
    b = p.get("bounds", [])
    if not isinstance(b, list):
        raise InputError(f"{where}: bounds must be a list of numbers")
    bounds = tuple(_num(x, f"{where}: bounds element") for x in b)
    kw = {"key": key, "dist": dist}
    if dist in ("uniform", "integer"):
        if len(bounds) != 2 or not bounds[0] < bounds[1]:
            raise InputError(f"{where}: dist = '{dist}' needs bounds = [lo, hi] with lo < hi (got {b!r})")
        if dist == "integer" and any(x != int(x) for x in bounds):
            raise InputError(f"{where}: dist = 'integer' needs integer bounds (got {b!r})")
        kw["bounds"] = bounds
    elif dist == "triangular":
        if len(bounds) != 3 or not (bounds[0] <= bounds[1] <= bounds[2] and bounds[0] < bounds[2]):
            raise InputError(f"{where}: dist = 'triangular' needs bounds = [lo, mode, hi] with lo <= mode <= hi, "
                             f"lo < hi (got {b!r})")
        kw["bounds"] = bounds
    elif dist == "normal":
        if "mean" not in p or "sd" not in p:
            raise InputError(f"{where}: dist = 'normal' needs mean and sd (and optional truncation bounds = [lo, hi])")
        kw["mean"] = _num(p["mean"], f"{where}: mean")
        kw["sd"] = _num(p["sd"], f"{where}: sd")
        if kw["sd"] <= 0:
            raise InputError(f"{where}: sd = {kw['sd']!r} must be > 0")
        if bounds:
            if len(bounds) != 2 or not bounds[0] < bounds[1]:
                raise InputError(f"{where}: normal truncation bounds must be [lo, hi] with lo < hi (got {b!r})")
            kw["bounds"] = bounds
    else:  # choice
        lv = p.get("levels")
        if not isinstance(lv, list) or not lv:
            raise InputError(f"{where}: dist = 'choice' needs a non-empty list levels = [...]")
        if len(set(map(repr, lv))) != len(lv):
            raise InputError(f"{where}: levels {lv!r} repeat a value")
        kw["levels"] = tuple(lv)
    if dist != "choice" and "levels" in p:
        raise InputError(f"{where}: levels are only for dist = 'choice'")
    return Parameter(**kw)


def load_spec(path, **overrides):
    """Read and validate a sweep file; ``overrides`` (``samples``, ``seed``, ...) replace its values."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            table = tomllib.load(fh)
    except FileNotFoundError:
        raise InputError(f"sweep file {path} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"sweep file {path} is a folder") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
    spec = parse_spec(table, source=str(path), base_dir=path.resolve().parent)
    return _apply_overrides(spec, overrides)


def _apply_overrides(spec, overrides):
    ov = {k: v for k, v in (overrides or {}).items() if v is not None}
    for k, v in ov.items():
        if k in ("samples", "seed", "chunk_size") and (isinstance(v, bool) or not isinstance(v, int) or v < (0 if k == "seed" else 1)):
            raise InputError(f"--{k.replace('_', '-')} = {v!r} must be a positive integer")
    return spec.replace(**ov)


def check_parameters(spec, keyinfo):
    """Check every parameter against what the model accepts; fill defaults.

    ``keyinfo(key) -> KeyInfo`` raises ``KeyError`` with a message for unknown keys.
    Errors name the sweep file, the parameter and the allowed range.
    """
    out = []
    for p in spec.parameters:
        where = f"{spec.path}: parameter '{p.key}'"
        try:
            info = keyinfo(p.key)
        except KeyError as exc:
            raise InputError(f"{where}: {exc.args[0]}") from None
        if info.levels_only and p.dist != "choice":
            raise InputError(f"{where}: this key changes the source-receptor matrix; give a finite list of levels "
                             f"(dist = \"choice\", levels = [...]); allowed values {info.describe()}")
        if info.kind == "choice" and p.dist != "choice":
            raise InputError(f"{where}: a key with named values takes dist = \"choice\" with levels from "
                             f"{info.describe()}")
        if info.kind == "int" and p.dist not in ("integer", "choice"):
            raise InputError(f"{where}: an integer key takes dist = \"integer\" (bounds = [lo, hi]) or \"choice\"; "
                             f"allowed range {info.describe()}")
        if p.dist == "choice":
            bad = [v for v in p.levels if not info.contains(v)]
            if bad:
                raise InputError(f"{where}: level {bad[0]!r} is outside the allowed range {info.describe()}")
        elif p.dist == "normal":
            bounded = info.lo is not None or info.hi is not None
            if not p.bounds and bounded:
                raise InputError(f"{where}: a normal distribution is unbounded but the key's allowed range is "
                                 f"{info.describe()}; give truncation bounds = [lo, hi] inside it")
            if p.bounds and not (info.contains(p.bounds[0]) and info.contains(p.bounds[1])):
                raise InputError(f"{where}: bounds {list(p.bounds)} are outside the allowed range {info.describe()}")
        else:
            ends = (p.bounds[0], p.bounds[-1])
            if not all(info.contains(v) for v in ends):
                raise InputError(f"{where}: bounds {list(p.bounds)} are outside the allowed range {info.describe()}")
        out.append(dataclasses.replace(p, default=info.default))
    return dataclasses.replace(spec, parameters=tuple(out))


# --------------------------------------------------------------------------- sampling
def _problem(spec):
    return {"num_vars": len(spec.parameters), "names": spec.keys, "bounds": [[0.0, 1.0]] * len(spec.parameters)}


def sample(spec):
    """The sample design on the unit hypercube and in parameter values.

    Returns
    -------
    unit : (n, D) float64   coordinates in [0, 1] (``None`` for a grid)
    values : pandas.DataFrame  one row per sample, one column per parameter (its values)
    """
    D = len(spec.parameters)
    N = spec.samples
    if spec.method == "grid":
        import itertools

        axes = [p.grid(spec.grid_points) for p in spec.parameters]
        rows = list(itertools.product(*[range(len(a)) for a in axes]))
        vals = {p.key: [axes[j][r[j]] for r in rows] for j, p in enumerate(spec.parameters)}
        return None, _frame(spec, vals)
    if spec.method == "mc":
        unit = np.random.default_rng(spec.seed).random((N, D))
    elif spec.method == "lhs":
        from SALib.sample import latin

        unit = latin.sample(_problem(spec), N, seed=spec.seed)
    elif spec.method == "morris":
        from SALib.sample import morris

        unit = morris.sample(_problem(spec), N, num_levels=spec.num_levels, seed=spec.seed)
    else:  # sobol
        import warnings

        from SALib.sample import sobol

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SALib's note that N is not a power of 2; said in summary.json
            unit = sobol.sample(_problem(spec), N, calc_second_order=spec.second_order, seed=spec.seed)
    unit = np.ascontiguousarray(unit, dtype=np.float64)
    vals = {p.key: p.from_unit(unit[:, j]) for j, p in enumerate(spec.parameters)}
    return unit, _frame(spec, vals)


def _frame(spec, vals):
    df = pd.DataFrame({k: (np.asarray(v, dtype=object) if np.asarray(v).dtype == object else np.asarray(v))
                       for k, v in vals.items()})
    df.index.name = "sample"
    return df


def expected_count(spec):
    """Number of evaluations of a method: Saltelli N(D+2) or N(2D+2), Morris N(D+1), else N."""
    D = len(spec.parameters)
    if spec.method == "sobol":
        return spec.samples * (2 * D + 2 if spec.second_order else D + 2)
    if spec.method == "morris":
        return spec.samples * (D + 1)
    if spec.method == "grid":
        return int(np.prod([len(p.grid(spec.grid_points)) for p in spec.parameters]))
    return spec.samples


# --------------------------------------------------------------------------- national model
def _config_key_info(section_cls, name, cfg_section, *, levels_only=False):
    from engine.config import _TYPE_HINTS

    fields = {f.name: f for f in dataclasses.fields(section_cls) if not f.metadata.get("internal")}
    if name not in fields:
        raise KeyError(f"unknown key{_suggest(name, fields)} (keys of this section: {', '.join(fields)})")
    f = fields[name]
    tp = _TYPE_HINTS[section_cls.__name__][name]
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
class _Tables:
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
    source_place: np.ndarray = None   # (n_source,) place index or -1
    area_km2: np.ndarray = None       # (n_place,)
    q_fixed: np.ndarray = None        # (2, n_source) [g m-2 s-1] when the carbon stage is fixed
    co2_fixed: tuple = None           # (cut, symbiosis cut) [Mt] when fixed
    health: dict = None               # crf -> (model, params, weight, pif)
    health_default: dict = None


class NationalModel:
    """The national run's linear tail as a vectorised function of sweep parameters.

    Built once per sweep (configuration, data, one ``S`` per distinct dispersion level);
    :meth:`evaluate` takes a table of parameter values (one row per sample) and returns the
    outputs of :data:`OUTPUTS` with a leading ``sample`` axis.

    Parameters
    ----------
    spec : SweepSpec
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
        from engine import pipeline as pl

        self.spec = spec
        self.sr_fn = sr_fn
        self._sr_kw = dict(use_cache=use_cache, workers=workers, scheduler=scheduler, client=client, quiet=quiet,
                           kernel_fn=kernel_fn)
        self._prep_kw = dict(data=data, footprints=footprints, population=population)
        try:
            cfg = pl._as_config(list(spec.config) or None, spec.cities, [spec.scenario])
        except InputError as exc:
            raise InputError(f"{spec.path}: {exc}") from None
        base = pl.base_scenario(cfg)
        if base == spec.scenario:
            raise InputError(f"{spec.path}: [sweep] scenario = {spec.scenario!r} is the base scenario; choose a "
                             f"scenario to compare with it (one of {', '.join(n for n in cfg.scenario_names if n != base)})")
        self.cfg = cfg
        self.base = base
        self.carbon_fn = carbon_fn
        self.age_population_fn = age_population_fn
        self.timings = {}
        self.spec = check_parameters(spec, self.key_info)
        bad = [o for o in self.spec.outputs if o not in OUTPUTS]
        if bad:
            raise InputError(f"{spec.path}: [sweep] outputs: {bad[0]!r} is not an output{_suggest(bad[0], OUTPUTS)} "
                             f"(known: {', '.join(OUTPUTS)})")
        self._prep = None

    @property
    def prep(self):
        """The pipeline's :class:`engine.pipeline.Prepared` (data, geometry, met), built on first use."""
        if self._prep is None:
            from engine import pipeline as pl

            t0 = time.perf_counter()
            self._prep = pl.prepare(self.cfg, **self._prep_kw)
            self.timings["prepare_s"] = time.perf_counter() - t0
        return self._prep

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
            return _config_key_info(C.CarbonConfig, name, self.scenario_carbon)
        if sec == "emissions":
            sub, _, sector = name.partition(".")
            if sub != "pm25_multiplier" or sector not in EMISSION_SECTORS:
                raise KeyError(f"unknown key; emission keys are emissions.pm25_multiplier.<sector>, sectors "
                               f"{', '.join(EMISSION_SECTORS)}{_suggest(sector, EMISSION_SECTORS) if sub == 'pm25_multiplier' else ''}")
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
            raise KeyError(f"unknown health key{_suggest(name, known)}; sweepable: {', '.join('health.' + k for k in known)}")
        if sec in ("dispersion", "met"):
            cls = C.DispersionConfig if sec == "dispersion" else C.MetConfig
            if name in _NOT_S:
                raise KeyError(f"{key} does not change the source-receptor matrix or any output")
            return _config_key_info(cls, name, getattr(self.cfg, sec), levels_only=True)
        known = ("carbon.<key>", "emissions.pm25_multiplier.<sector>", "health.crf", "health.draw",
                 "health.baseline_rate_multiplier", "dispersion.<key>", "met.<key>")
        raise KeyError(f"unknown key{_suggest(sec, ('carbon', 'emissions', 'health', 'dispersion', 'met'))}; "
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
        return _frame(self.spec, {p.key: np.array([p.default], dtype=object if isinstance(p.default, str) else None)
                                  for p in self.spec.parameters})

    # ------------------------------------------------------------------ setup
    def _level_keys(self):
        return tuple(p.key for p in self.spec.parameters if p.key.split(".")[0] in ("dispersion", "met"))

    def _level_of(self, values):
        keys = self._level_keys()
        if not keys:
            return [()] * len(values)
        return [tuple(_plain(v) for v in row) for row in values[list(keys)].itertuples(index=False)]

    def _sr_for_level(self, level):
        from engine import pipeline as pl

        keys = self._level_keys()
        cfg = self.cfg
        for k, v in zip(keys, level):
            sec, _, name = k.partition(".")
            cfg = cfg.replace(**{sec: dataclasses.replace(getattr(cfg, sec), **{name: v})})
        prep = self.prep if cfg == self.cfg else pl.prepare(cfg, **self._prep_kw)
        S = pl.sr_matrix(prep, **self._sr_kw) if self.sr_fn is None else self.sr_fn(prep)
        Sa = S["S"].reindex(city=self.prep.selected).reindex(source=self.prep.source_labels, fill_value=0.0)
        Ss = None
        if "S_height" not in S and self.prep.heights is not None:
            # a level with every class at the ground ([dispersion] emission_heights = "ground"): each
            # class's matrix is the ground one, S_{s,h} = S_s
            nh = len(self.prep.height_classes)
            if "S_season" in S:
                if tuple(S["season"].values) != tuple(self.prep.seasons):
                    raise InputError(f"dispersion level {dict(zip(keys, level))}: seasons {tuple(S['season'].values)} "
                                     f"differ from the sweep's base seasons {self.prep.seasons}")
                Sg = S["S_season"].reindex(city=self.prep.selected).reindex(source=self.prep.source_labels,
                                                                            fill_value=0.0).values
            elif self.prep.seasons != ("annual",):
                raise InputError(f"dispersion level {dict(zip(keys, level))} has annual met while the sweep's base "
                                 "met is seasonal")
            else:
                Sg = Sa.values[None]
            Ss = np.ascontiguousarray(np.repeat(np.asarray(Sg, dtype=np.float64)[:, None], nh, axis=1)
                                      ).reshape((-1,) + Sa.shape)
            return np.ascontiguousarray(Sa.values, dtype=np.float64), Ss, S.attrs.get("timings_s", {})
        if "S_height" in S:
            # emission heights: one matrix per (season, height class) term, season-major, as the
            # shares of _season_weights (engine.pipeline.superpose writes the same sum)
            if tuple(S["height"].values) != tuple(self.prep.height_classes):
                raise InputError(f"dispersion level {dict(zip(keys, level))}: emission-height classes "
                                 f"{tuple(S['height'].values)} differ from the sweep's {self.prep.height_classes}; "
                                 "a sweep over [dispersion] emission_heights needs \"sector\" as its default")
            name = "S_season_height" if "S_season_height" in S else "S_height"
            Sx = S[name].reindex(city=self.prep.selected).reindex(source=self.prep.source_labels, fill_value=0.0)
            if name == "S_season_height" and tuple(S["season"].values) != tuple(self.prep.seasons):
                raise InputError(f"dispersion level {dict(zip(keys, level))}: seasons {tuple(S['season'].values)} "
                                 f"differ from the sweep's base seasons {self.prep.seasons}")
            Ss = np.ascontiguousarray(Sx.values, dtype=np.float64).reshape((-1,) + Sa.shape)
            return np.ascontiguousarray(Sa.values, dtype=np.float64), Ss, S.attrs.get("timings_s", {})
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

    def tables(self, values):
        """Build the shared arrays: carbon structure, health tables, one S per level in ``values``."""
        from engine import pipeline as pl

        prep = self.prep
        sel = prep.selected
        ct = prep.city_table.set_index("city_id").loc[sel]
        levels = sorted(set(self._level_of(values)) | {tuple(_plain(self._default_of(k)) for k in self._level_keys())},
                        key=repr)
        if all(o in CARBON_OUTPUTS for o in self.spec.outputs):
            levels = []  # CO2 only: no dispersion, no health
        S, Ss, t_sr = {}, {}, []
        for lv in levels:
            t0 = time.perf_counter()
            S[lv], Ss[lv], tt = self._sr_for_level(lv)
            t_sr.append({"level": dict(zip(self._level_keys(), lv)), "wall_s": time.perf_counter() - t0, **tt})
        self.timings["sr_matrix"] = t_sr
        tb = _Tables(city=np.array(sel, dtype=np.int64), population=ct["population"].to_numpy(float), S=S,
                     level_keys=self._level_keys(), S_season=Ss)
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
        t0 = time.perf_counter()
        tb.health = self._health_tables(values) if levels else None
        tb.health_default = {"crf": self.cfg.health.crf}
        self.timings["health_setup_s"] = time.perf_counter() - t0
        return tb

    def _default_of(self, key):
        for p in self.spec.parameters:
            if p.key == key:
                return p.default
        return self.key_info(key).default

    def _health_tables(self, values):
        from engine.health import AGE_GROUPS, age_population, curve_set, load_rates, rates_matrix as _rates_matrix

        h = self.cfg.health
        sel = self.prep.selected
        if self.age_population_fn is None:
            pop = age_population(sel).loc[sel]
        else:
            pop = self.age_population_fn(self.prep.data, sel).loc[sel]
        from engine.health import population_matrix as _population_matrix

        p = _population_matrix(pop)
        crfs = {h.crf}
        if "health.crf" in values:
            crfs |= set(values["health.crf"].astype(str))
        out = {}
        for crf in sorted(crfs):
            cs = curve_set(crf, cohort=h.cohort, draws=h.draws, seed=h.seed)
            rates = h.rates_file or None
            y = _rates_matrix(load_rates(rates), cs, "baseline rates" if rates is None else f"rates file {rates}")
            A = np.zeros((len(AGE_GROUPS), len(cs.curve_label)))
            for ci in range(len(cs.causes)):
                for ai in range(len(AGE_GROUPS)):
                    k = cs.age_curve[ci, ai]
                    if k >= 0:
                        A[ai, k] += y[ci, ai]
            params = cs.params_draws if cs.params_draws.shape[1] > 0 else cs.params_central
            out[crf] = (int(cs.model), np.ascontiguousarray(params), np.ascontiguousarray(p @ A),
                        h.avoided_method == "pif")
        return out


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def _carbon_row(c, levels):
    return {"level": levels.index(c.efficiency_level), "symbiosis": float(c.symbiosis),
            **{arg: float(getattr(c, key)) for key, arg in _CARBON_ARGS.items()}}


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
            for arg in ("level", "symbiosis", *(_CARBON_ARGS.values()))}
    res = evaluate(cprep, p, **args)
    pm = np.broadcast_to(res["pm25_t"], (ns, 1, res["pm25_t"].shape[-1]))[:, 0, :]
    co2 = np.asarray(res["co2_mt"])
    return {"co2_total_mt": float(co2.reshape(-1, co2.shape[-1])[0].sum()),
            "pm25_by_sector_t": np.ascontiguousarray(pm)}


def _season_weights(cp, seasons, heights=None):
    """Share of each sector's emission in each superposition term, at every place.

    A term is a season (its province's climate region's share,
    :func:`engine.dispersion.climatology.seasonal_emission_shares`; ``annual``: 1) or, with
    emission heights (``heights``, :class:`engine.dispersion.plumerise.EmissionHeights`), a
    (season, height class) pair, season-major: the season's share times the sector's share in
    the class. Returns ``({term: {sector: (P,)}}, {term: (len(EMISSION_SECTORS), P)})``: the
    first for the carbon stage's ``pm25_by_sector_t`` keys (``power`` and the fuel sectors),
    the second for the base scenario's basis over :data:`EMISSION_SECTORS`.
    """
    from engine.dispersion import climatology as clim
    from engine.carbon.accounting import _PM_KEY

    regions = np.array([clim.climate_region_of(p) for p in cp.places["province_id"].to_numpy()])
    uniq = sorted(set(regions))
    sectors = ["power", *_PM_KEY]
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
    and the scenario row (the carbon stage's sectors); a place that emits nothing gets the
    flat season (days / 365) at the ground."""
    from engine.dispersion import climatology as clim

    out = {}
    for t, w in tb.season_weights.items():
        s, c = t
        base_s = mult @ (tb.season_weights_base[t] * tb.carbon_base["pm25_by_sector_t"])      # (n, P)
        scen_s = sum(np.broadcast_to(v, res["pm25_t"].shape)[:, 0, :] * w[k]
                     for k, v in res["pm25_by_sector_t"].items())                            # (n, P)
        num = np.stack([base_s, scen_s], axis=1)                                                # (n, 2, P)
        flat = (1.0 if s == "annual" else clim.SEASON_DAYS[s] / 365.0) * (c == "ground")
        out[t] = np.divide(num, pm, out=np.full(pm.shape, flat), where=pm > 0)
    return out


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


# --------------------------------------------------------------------------- evaluation of a chunk
def evaluate_chunk(tb, values, outputs):
    """Outputs of the national model for a table of parameter values (one row per sample).

    Parameters
    ----------
    tb : _Tables from :meth:`NationalModel.tables`
    values : pandas.DataFrame  parameter values, columns = keys
    outputs : sequence of output names (:data:`OUTPUTS`)

    Returns
    -------
    dict {name: ndarray (n,) or (n, n_city)}
    """
    from engine.constants import SECONDS_PER_YEAR

    n = len(values)
    cols = set(values.columns)
    out = {}
    # 1. carbon -> Q (n, 2, n_source) [g m-2 s-1], national CO2 cuts [Mt]
    if tb.carbon is None:
        Q = np.broadcast_to(tb.q_fixed, (n,) + tb.q_fixed.shape)
        share = None if tb.share_fixed is None else tb.share_fixed[:, None]  # (n_season, 1, 2, n_source)
        out["national_co2_cut_mt"] = np.full(n, tb.co2_fixed[0])
        out["national_symbiosis_co2_cut_mt"] = np.full(n, tb.co2_fixed[1])
    else:
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
        twin = "national_symbiosis_co2_cut_mt" in outputs
        rows = [tb.carbon_rows["scenario"]] + ([dict(tb.carbon_rows["scenario"], symbiosis=0.0)] if twin else [])
        args = {}
        for arg in ("level", "symbiosis", *(_CARBON_ARGS.values())):
            a = np.array([[r[arg]] for r in rows], dtype=np.int64 if arg == "level" else float)[None]  # (1, R, 1)
            args[arg] = np.repeat(a, n, axis=0)
        for key, arg in _CARBON_ARGS.items():
            k = f"carbon.{key}"
            if k in cols:
                args[arg][:, :, 0] = values[k].to_numpy(float)[:, None]
        if "carbon.efficiency_level" in cols:
            lv = np.array([LEVELS.index(x) for x in values["carbon.efficiency_level"]], dtype=np.int64)
            args["level"][:, :, 0] = lv[:, None]
        if "carbon.symbiosis" in cols:
            args["symbiosis"][:, 0, 0] = values["carbon.symbiosis"].to_numpy(float)
        res = evaluate(tb.carbon, p, **args)
        tot = res["co2_mt"].sum(axis=-1)  # (n, R) national CO2 [Mt], as run_carbon's national_co2
        out["national_co2_cut_mt"] = tb.carbon_base["co2_total_mt"] - tot[:, 0]
        out["national_symbiosis_co2_cut_mt"] = tot[:, 1] - tot[:, 0] if twin else np.full(n, np.nan)
        pm = np.stack([pm_base, res["pm25_t"][:, 0, :]], axis=1)                  # (n, 2, P)
        area = tb.area_km2
        # t km-2 = g m-2; / seconds per year -> g m-2 s-1 (as run_carbon's q_g_m2_s)
        q_place = np.divide(pm, area, out=np.zeros_like(pm), where=area > 0) / SECONDS_PER_YEAR
        Q = np.where(tb.source_place >= 0, q_place[..., np.maximum(tb.source_place, 0)], 0.0)
        share = None
        if tb.season_weights is not None:
            sp = np.maximum(tb.source_place, 0)
            share = np.stack([v[..., sp] for v in _seasonal_place_shares(tb, mult, pm_base, res, pm).values()])
        del res
    if tb.health is None:
        return {k: out[k] for k in outputs}
    # 2. superposition per dispersion level: C = Q @ S.T  (engine.pipeline.superpose)
    n_city = len(tb.city)
    Cb = np.empty((n, n_city))
    Cs = np.empty((n, n_city))
    if tb.level_keys:
        lv = [tuple(_plain(v) for v in r) for r in values[list(tb.level_keys)].itertuples(index=False)]
    else:
        lv = [()] * n
    for level in sorted(set(lv), key=repr):
        idx = np.array([i for i, x in enumerate(lv) if x == level], dtype=np.int64)
        Ss = tb.S_season.get(level) if tb.S_season else None
        if Ss is None:
            S = tb.S[level]
            Cb[idx] = Q[idx, 0, :] @ S.T
            Cs[idx] = Q[idx, 1, :] @ S.T
        else:  # seasonal met: sum over seasons of (share_s * q) @ S_s.T
            if share is None:
                raise ValueError("seasonal S needs seasonal emission shares")
            sh = np.broadcast_to(share, (share.shape[0], n) + share.shape[2:])
            Cb[idx] = sum((Q[idx, 0, :] * sh[j][idx, 0, :]) @ Ss[j].T for j in range(Ss.shape[0]))
            Cs[idx] = sum((Q[idx, 1, :] * sh[j][idx, 1, :]) @ Ss[j].T for j in range(Ss.shape[0]))
    # 3. health per CRF
    from kernels.sweep import impact_per_sample

    crf = values["health.crf"].astype(str).to_numpy() if "health.crf" in cols else np.full(n, tb.health_default["crf"])
    draw = values["health.draw"].to_numpy(np.int64) if "health.draw" in cols else np.full(n, -1, dtype=np.int64)
    scale = values["health.baseline_rate_multiplier"].to_numpy(float) if "health.baseline_rate_multiplier" in cols \
        else np.ones(n)
    Db = np.empty((n, n_city))
    Ds = np.empty((n, n_city))
    Da = np.empty((n, n_city))
    for name in sorted(set(crf)):
        model, params, weight, pif = tb.health[name]
        idx = np.nonzero(crf == name)[0]
        d = draw[idx]
        if params.shape[1] > 0:
            d = np.where(d >= 0, np.minimum(d, params.shape[1] - 1), -1)
        b, s_, a = (np.empty((len(idx), n_city)) for _ in range(3))
        impact_per_sample(model, np.ascontiguousarray(Cb[idx]), np.ascontiguousarray(Cs[idx]), params,
                          np.ascontiguousarray(d, dtype=np.int64), weight, np.ascontiguousarray(scale[idx]),
                          pif, b, s_, a)
        Db[idx], Ds[idx], Da[idx] = b, s_, a
    pop = tb.population
    out["national_avoided_deaths"] = Da.sum(axis=1)
    out["national_deaths_base"] = Db.sum(axis=1)
    # row-wise sums (not a BLAS matrix-vector product) so a sample's value does not depend on its chunk
    out["pop_weighted_conc_reduction_ug_m3"] = ((Cb - Cs) * pop).sum(axis=1) / pop.sum()
    out["city_avoided_deaths"] = Da
    out["city_conc_reduction_pct"] = np.divide(100.0 * (Cb - Cs), Cb, out=np.full(Cb.shape, np.nan), where=Cb > 0)
    out["city_conc_base_ug_m3"] = Cb
    out["city_conc_scenario_ug_m3"] = Cs
    return {k: out[k] for k in outputs}


# --------------------------------------------------------------------------- chunked driver
def _chunk_task(item, shared):
    start, stop = item
    ev = shared["evaluator"]
    vals = shared["values"].iloc[start:stop]
    return ev(vals)


class _TableEvaluator:
    """Picklable evaluator of the national model on its shared tables."""

    def __init__(self, tables, outputs, carbon_chunk=256):
        self.tables = tables
        self.outputs = tuple(outputs)
        self.carbon_chunk = carbon_chunk

    def __call__(self, values):
        parts = [evaluate_chunk(self.tables, values.iloc[s:s + self.carbon_chunk], self.outputs)
                 for s in range(0, len(values), self.carbon_chunk)]
        return {k: np.concatenate([p[k] for p in parts], axis=0) for k in self.outputs}


def _save_chunk(path, arrays):
    from engine.output.writers import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def _load_chunk(path, outputs, n):
    try:
        with np.load(path) as z:
            arr = {k: z[k] for k in outputs}
    except (OSError, KeyError, ValueError):
        return None
    if any(a.shape[0] != n for a in arr.values()):
        return None
    return arr


def _run_chunks(evaluator, values, outputs, chunk_dir, chunk_size, *, workers=None, scheduler=None, client=None,
                quiet=False):
    """Evaluate every chunk not already saved in ``chunk_dir``; returns (n computed, n reused)."""
    from engine.parallel import Progress, available_cores, run_tasks

    n = len(values)
    bounds = [(s, min(n, s + chunk_size)) for s in range(0, n, chunk_size)]
    todo = []
    reused = 0
    for i, (s, e) in enumerate(bounds):
        f = chunk_dir / f"chunk_{s:09d}_{e:09d}.npz"
        if f.exists() and _load_chunk(f, outputs, e - s) is not None:
            reused += 1
        else:
            todo.append((i, s, e, f))
    prog = Progress(len(bounds), desc="sweep chunks", quiet=quiet, log_every=max(1, len(bounds) // 20))
    prog.update(reused)
    nw = workers if workers and workers > 0 else available_cores()
    batch = max(1, 2 * nw) if not (scheduler or client) else max(4, 4 * nw)
    shared = {"evaluator": evaluator, "values": values}
    cl = client
    own = False
    if cl is None and scheduler:
        from engine.parallel import connect

        cl, own = connect(scheduler), True
    try:
        for b0 in range(0, len(todo), batch):
            part = todo[b0:b0 + batch]
            res = run_tasks(_chunk_task, [(i, (s, e)) for i, s, e, _ in part], shared=shared, workers=nw,
                            client=cl, quiet=True, desc="sweep chunks")
            for i, s, e, f in part:
                _save_chunk(f, res[i])
                prog.update()
    finally:
        if own:
            cl.close()
    return len(todo), reused, bounds


def _values_for_output(values):
    """samples.csv / NetCDF coordinates: choices as strings, numbers as floats."""
    out = {}
    for k in values.columns:
        v = values[k]
        if pd.api.types.is_bool_dtype(v):
            out[k] = v.to_numpy(dtype=bool)
        elif not pd.api.types.is_numeric_dtype(v):
            if all(isinstance(x, (bool, np.bool_)) for x in v):
                out[k] = v.astype(bool).to_numpy()
            elif all(isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) for x in v):
                out[k] = v.astype(float).to_numpy()
            else:
                out[k] = np.array([str(x) for x in v], dtype=str)
        else:
            out[k] = v.to_numpy()
    return out


def _write_netcdf(path, spec, values, chunk_dir, bounds, outputs, city, dims, attrs, extra=None):
    """DIR/sweep.nc (CF-1.8, NetCDF-4), written chunk by chunk (memory bounded by a chunk)."""
    import netCDF4

    from engine.output.writers import atomic_path

    n = len(values)
    with atomic_path(path) as tmp:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as nc:
            nc.Conventions = "CF-1.8"
            for k, v in attrs.items():
                setattr(nc, k, v)
            nc.createDimension("sample", n)
            vs = nc.createVariable("sample", "i8", ("sample",))
            vs[:] = np.arange(n)
            vs.long_name = "index of the sample (row of samples.csv)"
            if city is not None:
                nc.createDimension("city", len(city))
                vc = nc.createVariable("city", "i8", ("city",))
                vc[:] = city
                vc.long_name = "city id (2010 administrative code)"
            coords = ["sample"]
            for j, (k, v) in enumerate(_values_for_output(values).items()):
                name = f"param_{j}"
                if v.dtype.kind in "US":
                    var = nc.createVariable(name, str, ("sample",))
                    var[:] = v.astype(object)
                elif v.dtype.kind == "b":
                    var = nc.createVariable(name, "i1", ("sample",))
                    var[:] = v.astype(np.int8)
                else:
                    var = nc.createVariable(name, "f8", ("sample",))
                    var[:] = v.astype(float)
                var.long_name = f"sweep parameter {k}"
                var.sweep_key = k
                coords.append(name)
            for o in outputs:
                dd = dims[o]
                var = nc.createVariable(o, "f8", dd, zlib=True, complevel=1,
                                        chunksizes=(min(n, 4096),) + ((min(len(city), 64),) if len(dd) == 2 else ()),
                                        fill_value=np.nan)
                meta = OUTPUTS.get(o)
                var.units = meta[1] if meta else "1"
                var.long_name = meta[2] if meta else o
                var.coordinates = " ".join(coords[1:])
            for s, e in bounds:
                arr = _load_chunk(chunk_dir / f"chunk_{s:09d}_{e:09d}.npz", outputs, e - s)
                for o in outputs:
                    nc.variables[o][s:e] = arr[o]
            for name, (dd, data, meta) in (extra or {}).items():
                for dname, size in zip(dd, np.shape(data)):
                    if dname not in nc.dimensions:
                        nc.createDimension(dname, size)
                if np.asarray(data).dtype.kind in "US":
                    var = nc.createVariable(name, str, dd)
                    var[:] = np.asarray(data, dtype=object)
                else:
                    var = nc.createVariable(name, "f8", dd, fill_value=np.nan)
                    var[:] = np.asarray(data, dtype=float)
                for a, b in meta.items():
                    setattr(var, a, b)


def _open_sweep(path, spec):
    import xarray as xr

    ds = xr.open_dataset(path)
    ren = {}
    for v in list(ds.variables):
        key = ds[v].attrs.get("sweep_key")
        if key:
            ren[v] = key
    ds = ds.rename(ren).set_coords(list(ren.values()))
    return ds


# --------------------------------------------------------------------------- indices
def analyze(spec, unit, values, Y):
    """Sensitivity indices of one scalar output ``Y`` (n,) for the sweep's method.

    Returns a DataFrame with one row per parameter: sobol -> ``S1, S1_conf, ST, ST_conf``;
    morris -> ``mu, mu_star, mu_star_conf, sigma``; lhs/mc -> ``S1, S1_conf`` (RBD-FAST, Tarantola et al.
    2006; Plischke 2010);
    grid -> None. Rows with a constant output get zeros (SALib's convention).
    """
    import warnings

    prob = _problem(spec)
    Y = np.asarray(Y, dtype=float)
    if not np.isfinite(Y).all():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.method == "sobol":
            from SALib.analyze import sobol

            r = sobol.analyze(prob, Y, calc_second_order=spec.second_order, num_resamples=spec.num_resamples,
                              conf_level=spec.conf_level, seed=spec.seed)
            cols = ["S1", "S1_conf", "ST", "ST_conf"]
        elif spec.method == "morris":
            from SALib.analyze import morris

            r = morris.analyze(prob, unit, Y, num_resamples=spec.num_resamples, conf_level=spec.conf_level,
                               num_levels=spec.num_levels, seed=spec.seed)
            cols = ["mu", "mu_star", "mu_star_conf", "sigma"]
        elif spec.method in ("lhs", "mc"):
            from SALib.analyze import rbd_fast

            r = rbd_fast.analyze(prob, unit, Y, num_resamples=spec.num_resamples, conf_level=spec.conf_level,
                                 seed=spec.seed)
            cols = ["S1", "S1_conf"]
        else:
            return None
    df = pd.DataFrame({c: np.asarray(r[c], dtype=float) for c in cols})
    df.insert(0, "parameter", spec.keys)
    if spec.method == "sobol" and spec.second_order:
        df.attrs["S2"] = np.asarray(r["S2"], dtype=float)
        df.attrs["S2_conf"] = np.asarray(r["S2_conf"], dtype=float)
    return df


def _sobol_city_indices(spec, Y):
    """First-order and total Sobol' indices per city (Saltelli 2010 / Jansen estimators, no bootstrap)."""
    from SALib.analyze.sobol import first_order, total_order

    D = len(spec.parameters)
    step = 2 * D + 2 if spec.second_order else D + 2
    Yr = Y.reshape(-1, step, Y.shape[1])
    A, B = Yr[:, 0], Yr[:, -1]
    # standardise per city over all evaluations, as SALib's sobol.analyze does for a scalar output
    mu, sd = Y.mean(axis=0), Y.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    A, B = (A - mu) / sd, (B - mu) / sd
    S1 = np.empty((D, Y.shape[1]))
    ST = np.empty((D, Y.shape[1]))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for j in range(D):
            AB = (Yr[:, 1 + j] - mu) / sd
            S1[j] = first_order(A, AB, B)
            ST[j] = total_order(A, AB, B)
    return S1, ST


def _city_indices(spec, nc_path, names, max_bytes=2**27):
    """Sobol' S1 and ST of every city for the per-city outputs, read from ``sweep.nc`` in blocks
    of cities (memory: at most ``max_bytes`` of one output at a time, whatever the sample count)."""
    import netCDF4

    frames = []
    with netCDF4.Dataset(nc_path) as nc:
        city = nc.variables["city"][:]
        n = nc.dimensions["sample"].size
        step = max(1, min(len(city), max_bytes // (8 * max(n, 1))))
        for o in names:
            for c0 in range(0, len(city), step):
                c1 = min(len(city), c0 + step)
                Y = np.asarray(nc.variables[o][:, c0:c1].filled(np.nan), dtype=float)
                ok = np.isfinite(Y).all(axis=0)
                S1 = np.full((len(spec.keys), c1 - c0), np.nan)
                ST = np.full_like(S1, np.nan)
                if ok.any():
                    S1[:, ok], ST[:, ok] = _sobol_city_indices(spec, Y[:, ok])
                for j, k in enumerate(spec.keys):
                    frames.append(pd.DataFrame({"output": o, "city": city[c0:c1], "parameter": k, "S1": S1[j],
                                                "ST": ST[j]}))
    if not frames:
        return None
    df = pd.concat(frames, ignore_index=True)
    # one row order whatever the block size: output, parameter, then city as in the file
    order = {"output": {o: i for i, o in enumerate(names)}, "parameter": {k: i for i, k in enumerate(spec.keys)},
             "city": {int(c): i for i, c in enumerate(city)}}
    key = df[["output", "parameter", "city"]].apply(lambda col: col.map(lambda v: order[col.name][v]))
    return df.iloc[np.lexsort((key["city"], key["parameter"], key["output"]))].reset_index(drop=True)


# --------------------------------------------------------------------------- entry point
def sweep(spec, *, out=None, samples=None, seed=None, chunk_size=None, workers=None, scheduler=None, client=None,
          quiet=True, evaluator=None, data=None, carbon_fn=None, age_population_fn=None, use_cache=True,
          kernel_fn=None, sr_fn=None):
    """Run a sensitivity sweep.

    Parameters
    ----------
    spec : path, SweepSpec or dict (a parsed sweep file)
    out : path, optional
        Output folder: ``samples.csv``, ``sweep.nc``, ``indices.csv``, ``summary.json`` and
        ``chunks/`` (finished chunks; a re-run with the same spec, configuration and data reuses
        them; stages replaced by callables are recognised by name only). Default: a
        temporary folder, removed after the result is loaded into memory.
    samples, seed, chunk_size : int, optional
        Override the sweep file's values.
    workers, scheduler, client :
        Local Dask threads (0 = all cores), or a ``dask.distributed`` scheduler address/client.
    evaluator : callable, optional
        Replaces the national model: ``evaluator(values: DataFrame) -> {output: array (n,)}``
        with attributes ``outputs`` (names) and ``key_info(key) -> KeyInfo`` (used to test the
        machinery, e.g. on the Ishigami function).
    data, carbon_fn, age_population_fn, use_cache, kernel_fn :
        As :func:`engine.run`.
    sr_fn : callable(prep) -> Dataset, optional
        Replaces :func:`engine.pipeline.sr_matrix` (see :class:`NationalModel`).

    Returns
    -------
    xarray.Dataset
        Dimensions ``sample`` (and ``city``): every output of the sweep file, every parameter as
        a coordinate on ``sample``; national indices as ``S1(output, parameter)`` ... (by method);
        ``attrs['summary']`` (JSON): method, counts, seed, timings, resolved spec.
    """
    from engine._version import __version__
    from engine.output.writers import versions, write_csv, write_json

    t_all = time.perf_counter()
    if isinstance(spec, SweepSpec):
        spec = _apply_overrides(spec, {"samples": samples, "seed": seed, "chunk_size": chunk_size})
    elif isinstance(spec, dict):
        spec = _apply_overrides(parse_spec(spec), {"samples": samples, "seed": seed, "chunk_size": chunk_size})
    else:
        spec = load_spec(spec, samples=samples, seed=seed, chunk_size=chunk_size)
    timings = {}
    t0 = time.perf_counter()
    if evaluator is None:
        model = NationalModel(spec, data=data, carbon_fn=carbon_fn, age_population_fn=age_population_fn,
                              use_cache=use_cache, workers=workers, scheduler=scheduler, client=client, quiet=quiet,
                              kernel_fn=kernel_fn, sr_fn=sr_fn)
        spec = model.spec
        outputs = spec.outputs
        city = np.array(model.prep.selected, dtype=np.int64)
    else:
        spec = check_parameters(spec, evaluator.key_info)
        outputs = tuple(evaluator.outputs)
        spec = dataclasses.replace(spec, outputs=outputs)
        city = None
    timings["setup_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    unit, values = sample(spec)
    timings["sampling_s"] = time.perf_counter() - t0
    n = len(values)
    if evaluator is None:
        t0 = time.perf_counter()
        tables = model.tables(values)
        timings.update(model.timings)
        timings["sr_and_tables_s"] = time.perf_counter() - t0
        ev = _TableEvaluator(tables, outputs)
        dims = {o: OUTPUTS[o][0] for o in outputs}
    else:
        ev = evaluator
        dims = {o: ("sample",) for o in outputs}
    tmpdir = None
    if out is None:
        tmpdir = tempfile.TemporaryDirectory(prefix="cobenefits-sweep-")
        out_dir = Path(tmpdir.name)
    else:
        out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        digest = spec.digest() + "-" + (model.identity() if evaluator is None else type(evaluator).__name__)
        chunk_dir = out_dir / "chunks" / digest
        chunk_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        n_comp, n_reused, bounds = _run_chunks(ev, values, outputs, chunk_dir, spec.chunk_size, workers=workers,
                                               scheduler=scheduler, client=client, quiet=quiet)
        timings["evaluate_s"] = time.perf_counter() - t0
        timings["samples_per_s"] = n / timings["evaluate_s"] if n_comp == len(bounds) and timings["evaluate_s"] > 0 \
            else None
        # indices of the national (scalar) outputs
        t0 = time.perf_counter()
        rows = []
        nat = [o for o in outputs if dims[o] == ("sample",)]
        Yn = {}
        for o in nat:
            Yn[o] = np.concatenate([_load_chunk(chunk_dir / f"chunk_{s:09d}_{e:09d}.npz", [o], e - s)[o]
                                    for s, e in bounds])
            df = analyze(spec, unit, values, Yn[o])
            if df is not None:
                df.insert(0, "output", o)
                rows.append(df)
        indices = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["output", "parameter"])
        extra = {}
        if not indices.empty:
            outs = list(dict.fromkeys(indices["output"]))
            for c in indices.columns[2:]:
                tab = indices.pivot(index="output", columns="parameter", values=c).reindex(index=outs,
                                                                                        columns=spec.keys)
                extra[f"index_{c}"] = (("output", "parameter"), tab.to_numpy(float),
                                       {"long_name": f"sensitivity index {c} of the national output",
                                        "units": "1"})
            extra["output"] = (("output",), np.array(outs, dtype=str), {"long_name": "national output"})
            extra["parameter"] = (("parameter",), np.array(spec.keys, dtype=str), {"long_name": "sweep parameter"})
        timings["indices_s"] = time.perf_counter() - t0
        timings["total_s"] = time.perf_counter() - t_all
        summary = {
            "method": spec.method, "samples_base": spec.samples, "evaluations": n,
            "evaluations_expected": expected_count(spec),
            "count_rule": {"sobol": f"Saltelli N({'2D+2' if spec.second_order else 'D+2'}) with N = {spec.samples}, "
                                    f"D = {len(spec.parameters)}",
                           "morris": f"N(D+1) with N = {spec.samples} trajectories, D = {len(spec.parameters)}",
                           "grid": "product of the parameters' levels",
                           "lhs": "N", "mc": "N"}[spec.method],
            "n_parameters": len(spec.parameters), "seed": spec.seed,
            "sobol_n_power_of_two": bool(spec.samples & (spec.samples - 1) == 0) if spec.method == "sobol" else None,
            "chunks": len(bounds), "chunks_computed": n_comp, "chunks_reused": n_reused,
            "chunk_size": spec.chunk_size, "n_cities": 0 if city is None else int(len(city)),
            "outputs": {o: {"dims": list(dims[o]), "units": OUTPUTS[o][1] if o in OUTPUTS else "1"} for o in outputs},
            "spec": spec.as_dict(), "spec_digest": digest,
            "versions": {**versions(), "engine": __version__, "SALib": _salib_version()},
            "timings_s": timings,
        }
        if evaluator is None:
            summary["scenario"] = spec.scenario
            summary["base_scenario"] = model.base
            summary["dispersion_levels"] = len(tables.S)
        nat_summary = {o: {"mean": float(np.mean(y)), "sd": float(np.std(y)), "p2_5": float(np.percentile(y, 2.5)),
                           "p97_5": float(np.percentile(y, 97.5))} for o, y in Yn.items() if np.isfinite(y).all()}
        summary["national_distribution"] = nat_summary
        # files
        vout = _values_for_output(values)
        sdf = pd.DataFrame(vout)
        sdf.insert(0, "sample", np.arange(n))
        write_csv(sdf, out_dir / "samples.csv", float_format="%.17g")
        write_csv(indices, out_dir / "indices.csv", float_format="%.6g")
        if spec.method == "sobol" and spec.second_order and rows:
            s2 = []
            for df in rows:
                for a in range(len(spec.keys)):
                    for b in range(a + 1, len(spec.keys)):
                        s2.append({"output": df["output"].iloc[0], "parameter_1": spec.keys[a],
                                   "parameter_2": spec.keys[b], "S2": df.attrs["S2"][a, b],
                                   "S2_conf": df.attrs["S2_conf"][a, b]})
            write_csv(pd.DataFrame(s2), out_dir / "indices_s2.csv", float_format="%.6g")
        attrs = {"title": "cobenefits sensitivity sweep", "source": f"cobenefits {__version__} engine.sensitivity.sweep",
                 "sweep_method": spec.method, "sweep_spec": json.dumps(spec.as_dict(), default=str),
                 "seed": spec.seed}
        _write_netcdf(out_dir / "sweep.nc", spec, values, chunk_dir, bounds, outputs, city, dims, attrs, extra)
        if spec.method == "sobol" and city is not None:
            t0 = time.perf_counter()
            city_idx = _city_indices(spec, out_dir / "sweep.nc", [o for o in outputs if dims[o] == ("sample", "city")])
            if city_idx is not None:
                write_csv(city_idx, out_dir / "city_indices.csv", float_format="%.6g")
            timings["city_indices_s"] = time.perf_counter() - t0
        write_json(summary, out_dir / "summary.json")
        ds = _open_sweep(out_dir / "sweep.nc", spec)
        if tmpdir is not None:
            ds = ds.load()
            ds.close()
        ds.attrs["summary"] = json.dumps(summary, default=str)
        return ds
    finally:
        if tmpdir is not None:
            with contextlib.suppress(OSError):
                tmpdir.cleanup()


def _salib_version():
    try:
        from importlib.metadata import version

        return version("SALib")
    except Exception:  # noqa: BLE001 - version lookup only
        return "unknown"


class _CallableModule(type(json)):
    """``engine.sensitivity.sweep`` is both this module and its entry point: ``engine.sensitivity.sweep(spec)``."""

    def __call__(self, *args, **kwargs):
        return sweep(*args, **kwargs)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _CallableModule

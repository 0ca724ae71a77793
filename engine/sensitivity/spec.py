"""The sweep file: parsing, distributions and the sample design.

A sweep file (TOML, ``config/sweeps/*.toml``) names a scenario, a sampling method and the
uncertain parameters (``[[sweep.parameter]]``). This module validates it (:func:`parse_spec`,
:func:`load_spec`), checks every parameter against what the model accepts
(:func:`check_parameters`, with :class:`engine.sampled.KeyInfo` from the model) and draws the
sample design on the unit hypercube, mapped to each parameter's distribution by the inverse CDF
(:func:`sample`). Sampling is SALib's (Herman and Usher 2017, JOSS 2:97).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import InputError
from engine.sampled import DEFAULT_OUTPUTS, KeyInfo, suggest as _suggest

__all__ = ["METHODS", "DISTRIBUTIONS", "KeyInfo", "Parameter", "SweepSpec", "parse_spec", "load_spec",
           "apply_overrides", "check_parameters", "check_size", "sample", "expected_count", "problem", "values_frame"]

METHODS = ("sobol", "morris", "lhs", "grid", "mc")
DISTRIBUTIONS = ("uniform", "normal", "triangular", "choice", "integer")

_SWEEP_KEYS = ("method", "samples", "seed", "scenario", "config", "cities", "outputs", "chunk_size",
               "second_order", "num_levels", "grid_points", "conf_level", "num_resamples", "parameter")
_PARAM_KEYS = ("key", "dist", "bounds", "levels", "mean", "sd")

#: allowed ranges of the integer [sweep] keys (and of --samples, --seed, --chunk-size)
INT_RANGES = {"samples": (1, 10**8), "seed": (0, 2**32 - 1), "chunk_size": (1, 10**6), "num_levels": (2, 100),
              "grid_points": (1, 1000), "num_resamples": (10, 100000)}
#: most evaluations a sweep may have (samples x the method's factor, or a grid's product of levels):
#: the sample table alone is 8 bytes x parameters per evaluation
MAX_EVALUATIONS = 10**8
#: fewest samples of a Monte Carlo or Latin-hypercube sweep (one sample has no spread)
MIN_SAMPLES_RANDOM = 2
#: least probability mass [1] a truncated normal distribution must keep inside its bounds
MIN_TRUNCATED_MASS = 1e-12

_ROOT = Path(__file__).resolve().parents[2]
#: the code that computes a chunk (its hash is part of a chunk's identity: a changed model never
#: reuses old chunks)
CODE_FILES = tuple(_ROOT / p for p in (
    "engine/sensitivity/spec.py", "engine/pipeline.py", "engine/health/expected.py", "kernels/sweep.py",
    "kernels/crf.py")) + tuple(sorted((_ROOT / "engine" / "sampled").glob("*.py")))


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
                za, zb = (self.bounds[0] - self.mean) / self.sd, (self.bounds[1] - self.mean) / self.sd
                if za > 0.0:  # upper tail: mirror into the lower tail, where the CDF keeps its precision
                    a, b = stats.norm.cdf([-zb, -za])
                    return self.mean - self.sd * stats.norm.ppf(b - u * (b - a))
                a, b = stats.norm.cdf([za, zb])
                return self.mean + self.sd * stats.norm.ppf(a + u * (b - a))
            return self.mean + self.sd * stats.norm.ppf(np.clip(u, 1e-12, 1.0 - 1e-12))
        lo, mode, hi = self.bounds  # triangular
        return stats.triang.ppf(u, (mode - lo) / (hi - lo), loc=lo, scale=hi - lo)

    def n_grid(self, points):
        """Number of levels of a ``grid`` sweep (:meth:`grid`) without building them."""
        if self.dist == "choice":
            return len(self.levels)
        if self.dist == "integer":
            return int(self.bounds[1]) - int(self.bounds[0]) + 1
        return points if self.dist != "uniform" or points > 1 else 1

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
        for f in CODE_FILES:
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
    for key, (lo, hi) in INT_RANGES.items():
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
            mass = _normal_mass(kw["mean"], kw["sd"], bounds)
            if not mass >= MIN_TRUNCATED_MASS:
                raise InputError(f"{where}: a normal distribution (mean {kw['mean']:g}, sd {kw['sd']:g}) truncated "
                                 f"to bounds {list(bounds)} has probability mass {mass:.3g} there (at least "
                                 f"{MIN_TRUNCATED_MASS:g} needed); move the bounds or the mean so that they overlap")
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


def _normal_mass(mean, sd, bounds):
    """Probability of a normal distribution inside ``bounds`` (tails computed where precise)."""
    from scipy import stats

    za, zb = (bounds[0] - mean) / sd, (bounds[1] - mean) / sd
    if za > 0.0:
        return float(stats.norm.sf(za) - stats.norm.sf(zb))
    return float(stats.norm.cdf(zb) - stats.norm.cdf(za))


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
    except UnicodeDecodeError as exc:
        raise InputError(f"sweep file {path} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it as "
                         "UTF-8 TOML") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise InputError(f"sweep file {path}: cannot be read ({exc.strerror})") from None
    spec = parse_spec(table, source=str(path), base_dir=path.resolve().parent)
    return apply_overrides(spec, overrides)


def apply_overrides(spec, overrides):
    """``spec`` with the command-line values ``samples``, ``seed``, ``chunk_size`` (None = the
    file's), each checked against the range of its ``[sweep]`` key."""
    ov = {k: v for k, v in (overrides or {}).items() if v is not None}
    for k, v in ov.items():
        lo, hi = INT_RANGES[k]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise InputError(f"--{k.replace('_', '-')} {v!r} must be an integer in [{lo}, {hi}] (as [sweep] {k})")
    spec = spec.replace(**{k: int(v) for k, v in ov.items()})
    if spec.method in ("mc", "lhs") and spec.samples < MIN_SAMPLES_RANDOM:
        raise InputError(f"{spec.path}: method = {spec.method!r} with samples = {spec.samples}: a sweep of one "
                         f"sample has no spread; give samples >= {MIN_SAMPLES_RANDOM} ([sweep] samples or --samples)")
    return spec


def check_size(spec):
    """Refuse a sweep of more than :data:`MAX_EVALUATIONS` evaluations before anything is sampled."""
    n = expected_count(spec)
    if n > MAX_EVALUATIONS:
        how = ("the product of the parameters' levels (grid_points and the choice/integer levels)"
               if spec.method == "grid" else f"samples = {spec.samples} times the {spec.method} factor")
        raise InputError(f"{spec.path}: {n:,} evaluations ({how}) exceed the limit of {MAX_EVALUATIONS:,}; give "
                         "fewer samples ([sweep] samples or --samples), fewer grid_points or fewer levels")
    return n


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
def problem(spec):
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
        return None, values_frame(spec, vals)
    if spec.method == "mc":
        unit = np.random.default_rng(spec.seed).random((N, D))
    elif spec.method == "lhs":
        from SALib.sample import latin

        unit = latin.sample(problem(spec), N, seed=spec.seed)
    elif spec.method == "morris":
        from SALib.sample import morris

        unit = morris.sample(problem(spec), N, num_levels=spec.num_levels, seed=spec.seed)
    else:  # sobol
        import warnings

        from SALib.sample import sobol

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SALib's note that N is not a power of 2; said in summary.json
            unit = sobol.sample(problem(spec), N, calc_second_order=spec.second_order, seed=spec.seed)
    unit = np.ascontiguousarray(unit, dtype=np.float64)
    vals = {p.key: p.from_unit(unit[:, j]) for j, p in enumerate(spec.parameters)}
    return unit, values_frame(spec, vals)


def values_frame(spec, vals):
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
        return math.prod(p.n_grid(spec.grid_points) for p in spec.parameters)
    return spec.samples


"""Health inputs: readers and validators of what a user gives the health stage — baseline rates,
user-defined functions, total-PM2.5 background, the exposure table of ``cobenefits health``,
population matrices — and the 2010 census age structure of cities and provinces.

Every bad value raises :class:`engine.errors.InputError` naming the file, line and column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from engine.errors import InputError

from .checks import check_user_function
from .parameters import (AGE_GROUPS, CAUSES, POPULATION_COLUMNS, USER_FORMS, USER_FUNCTION_OPTIONAL,
                         USER_FUNCTION_REQUIRED, check_choice, data_path, read_health_table)

__all__ = ["UserFunction", "read_user_functions", "read_rates", "load_rates", "first_data_line", "as_float_array",
           "PM25_PLAUSIBLE_MAX_UG_M3", "check_concentration", "population_matrix", "aligned_values",
           "read_background", "background_values", "read_exposure_table", "age_population",
           "rest_of_province_population", "check_health_config"]

@dataclass(frozen=True)
class UserFunction:
    """One row of a user-defined functions file (see :func:`read_user_functions`)."""

    label: str
    form: str
    cause: str
    beta: float
    beta_se: float
    min_age: int
    max_age: float            # inf = no upper bound (80plus included)
    zcf: float
    incidence_per_100k: float  # NaN = from the rates table
    line: int = 0


def read_user_functions(path):
    """Read and validate a user-defined concentration-response functions CSV.

    Columns (``#`` lines are comments): ``form`` (log_linear | log_log | linear), ``cause``,
    ``beta`` [(ug m-3)^-1 for log-linear; 1 for log-log; deaths person-1 yr-1 (ug m-3)^-1 for
    linear], ``beta_se`` (standard error of beta, >= 0), ``min_age`` [years, multiple of 5,
    0..80]; optional ``function`` (label), ``max_age`` [years; 4, 9, ..., 79 or >= 99 = 80plus
    included; blank = no upper bound], ``zcf`` [ug m-3; default 0, > 0 for log-log],
    ``incidence_per_100k`` [deaths per 100,000 per year for every age group of the row; blank =
    the baseline rates table by cause and age group; ignored by the linear form].

    Returns a list of :class:`UserFunction`. Raises :class:`InputError` naming the file, line and
    column of the first bad value.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path, comment="#", dtype=str, keep_default_na=False, skip_blank_lines=True)
    except FileNotFoundError:
        raise InputError(f"functions file {path} does not exist") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"functions file {path}: not a readable CSV ({exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    where = f"functions file {path}"
    missing = [c for c in USER_FUNCTION_REQUIRED if c not in df.columns]
    if missing:
        raise InputError(f"{where}: missing column(s) {', '.join(missing)}; required "
                         f"{', '.join(USER_FUNCTION_REQUIRED)}, optional {', '.join(USER_FUNCTION_OPTIONAL)}")
    unknown = [c for c in df.columns if c not in USER_FUNCTION_REQUIRED + USER_FUNCTION_OPTIONAL]
    if unknown:
        raise InputError(f"{where}: unknown column(s) {', '.join(unknown)}; allowed "
                         f"{', '.join(USER_FUNCTION_REQUIRED + USER_FUNCTION_OPTIONAL)}")
    if len(df) == 0:
        raise InputError(f"{where}: no function rows")
    first = first_data_line(path)
    out = []
    for i, row in enumerate(df.to_dict("records")):
        line = first + i
        at = f"{where} line {line}"

        def num(col, default=None, *, lo=None, lo_open=False, what=""):
            raw = str(row.get(col, "")).strip()
            if raw == "":
                if default is not None:
                    return default
                raise InputError(f"{at}, column {col}: missing value; expected {what}")
            try:
                v = float(raw)
            except ValueError:
                raise InputError(f"{at}, column {col}: {raw!r} is not a number; expected {what}") from None
            if not math.isfinite(v) or (lo is not None and (v <= lo if lo_open else v < lo)):
                raise InputError(f"{at}, column {col}: {raw}; expected {what}")
            return v

        form = str(row["form"]).strip()
        if form not in USER_FORMS:
            raise InputError(f"{at}, column form: {form!r}; expected one of {', '.join(USER_FORMS)}")
        cause = str(row["cause"]).strip()
        if not cause:
            raise InputError(f"{at}, column cause: empty; expected a cause name (rates-table causes: "
                             f"{', '.join(CAUSES)})")
        beta = num("beta", what="a finite number")
        se = num("beta_se", lo=0.0, what="a standard error >= 0")
        lo = num("min_age", lo=0.0, what="a multiple of 5 in 0..80 years")
        if lo != int(lo) or int(lo) % 5 or lo > 80:
            raise InputError(f"{at}, column min_age: {row['min_age']}; expected a multiple of 5 in 0..80 years "
                             "(the lower bound of a 5-year age group)")
        hi = num("max_age", math.inf, lo=0.0, what="4, 9, ..., 79, or >= 99 years (80plus included)")
        if math.isfinite(hi) and not (hi >= 99 or (hi == int(hi) and (int(hi) + 1) % 5 == 0 and hi <= 79)):
            raise InputError(f"{at}, column max_age: {row['max_age']}; expected the upper bound of a 5-year age "
                             "group (4, 9, ..., 79), >= 99 (80plus included) or blank")
        hi = math.inf if hi >= 99 else hi
        if hi < lo + 4:
            raise InputError(f"{at}, columns min_age/max_age: {lo:g}..{hi:g} covers no whole 5-year age group")
        zcf = num("zcf", 0.0, lo=0.0, what="a counterfactual concentration >= 0 ug m-3")
        if form == "log_log" and zcf <= 0:
            raise InputError(f"{at}, column zcf: {zcf:g}; the log_log form needs a counterfactual "
                             "concentration > 0 ug m-3 (RR = (z/zcf)^beta)")
        inc = num("incidence_per_100k", math.nan, lo=0.0, what="deaths per 100,000 per year >= 0")
        if form != "linear" and not math.isfinite(inc) and cause not in CAUSES:
            raise InputError(f"{at}, column incidence_per_100k: blank, and cause {cause!r} is not in the rates "
                             f"table ({', '.join(CAUSES)}); give the incidence rate")
        label = str(row.get("function", "")).strip() or f"{cause} {form} line {line}"
        uf = UserFunction(label, form, cause, beta, se, int(lo), hi, zcf, inc, line)
        check_user_function(uf, at)  # sign and size of beta and SE, incidence against population
        out.append(uf)
    # the same cause may not be counted twice in an age group
    for a in range(len(out)):
        for b in range(a + 1, len(out)):
            fa, fb = out[a], out[b]
            if fa.cause == fb.cause and fa.min_age <= fb.max_age and fb.min_age <= fa.max_age:
                raise InputError(f"{where} lines {fa.line} and {fb.line}: both apply to cause {fa.cause!r} at "
                                 "overlapping ages (deaths would be counted twice)")
    return out


def read_rates(path):
    """Read and validate a baseline-rates CSV (``cause,age_group,rate_per_100k``).

    Lines starting with ``#`` are comments. Causes: ihd, stroke, copd, lc, lri, ncd_lri; age
    groups as :data:`AGE_GROUPS`. Raises :class:`InputError` naming the file, line and column.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path, comment="#", dtype={"cause": str, "age_group": str}, skip_blank_lines=True)
    except FileNotFoundError:
        raise InputError(f"rates file {path} does not exist") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"rates file {path}: not a readable CSV ({exc})") from None
    # line numbers: count header comment lines to report file lines
    first = first_data_line(path)
    return _validate_rates(df, f"rates file {path}", first)


def first_data_line(path):
    """1-based file line of the first data row of a CSV (after ``#`` comments and the header)."""
    n = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            n += 1
            if line.strip() and not line.lstrip().startswith("#"):
                return n + 1  # header is line n; first data row is n + 1
    return 2


def _validate_rates(df, where, first_line=2):
    need = ["cause", "age_group", "rate_per_100k"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise InputError(f"{where}: missing column(s) {', '.join(missing)}; expected columns "
                         f"{', '.join(need)}")
    df = df[need].copy()
    for i, row in enumerate(df.itertuples(index=False)):
        line = first_line + i
        cause = str(row.cause).strip()
        age = str(row.age_group).strip()
        if cause not in CAUSES:
            raise InputError(f"{where} line {line}, column cause: {row.cause!r} is not a known cause; "
                             f"expected one of {', '.join(CAUSES)}")
        if age not in AGE_GROUPS:
            raise InputError(f"{where} line {line}, column age_group: {row.age_group!r} is not a known age "
                             f"group; expected one of {', '.join(AGE_GROUPS)}")
        try:
            v = float(row.rate_per_100k)
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v) or v < 0:
            raise InputError(f"{where} line {line} ({cause}, {age}), column rate_per_100k: "
                             f"{row.rate_per_100k!r} must be a finite number >= 0 (deaths per 100,000 per year)")
    df["cause"] = df["cause"].str.strip()
    df["age_group"] = df["age_group"].str.strip()
    df["rate_per_100k"] = df["rate_per_100k"].astype(float)
    dup = df.duplicated(["cause", "age_group"], keep="first")
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(f"{where} line {first_line + i}: duplicate rate for ({df.cause.iloc[i]}, "
                         f"{df.age_group.iloc[i]})")
    return df.reset_index(drop=True)


def load_rates(rates=None):
    """Baseline death rates as a DataFrame ``cause, age_group, rate_per_100k``.

    ``None`` gives the default China 2010 rates (GBD 2019 round; engine/data/health); a path
    reads and validates a CSV; a DataFrame is validated.
    """
    if rates is None:
        return read_health_table("baseline_rates_china_2010.csv")[["cause", "age_group", "rate_per_100k"]].copy()
    if isinstance(rates, pd.DataFrame):
        return _validate_rates(rates.reset_index(drop=True), "rates table")
    return read_rates(rates)


def as_float_array(x, name):
    """``x`` as a 1-D float64 array; :class:`InputError` naming ``name`` if it is not numbers."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numbers") from None
    return np.atleast_1d(a).ravel()


#: highest plausible annual-mean PM2.5 [ug m-3]: about 4x the highest annual means measured (Delhi,
#: ~200-250 ug m-3; WHO ambient air quality database 2022); above it the input is in the wrong unit
PM25_PLAUSIBLE_MAX_UG_M3 = 1000.0


def check_concentration(z, labels, name):
    """:class:`InputError` naming the region unless every ``z`` [ug m-3] is finite and in
    [0, :data:`PM25_PLAUSIBLE_MAX_UG_M3`]."""
    bad = ~np.isfinite(z) | (z < 0) | (z > PM25_PLAUSIBLE_MAX_UG_M3)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        unit = " (more than any annual mean measured: wrong unit, e.g. ng m-3?)" if z[i] > PM25_PLAUSIBLE_MAX_UG_M3 else ""
        raise InputError(f"{name} of region {labels[i]!r} is {float(z[i]):g} ug m-3{unit}; expected a finite annual-mean "
                         f"concentration in [0, {PM25_PLAUSIBLE_MAX_UG_M3:g}] ug m-3 ({int(bad.sum())} region(s) affected)")


def population_matrix(pop, where="pop_by_age"):
    """(n_region, 17) population [persons] of a DataFrame (or DataArray) with the columns
    :data:`POPULATION_COLUMNS`, validated (finite, >= 0)."""
    if isinstance(pop, xr.DataArray):
        pop = pop.transpose("region", "age").to_pandas()
        pop.columns = [c if c.startswith("pop_") else f"pop_{c}" for c in pop.columns]
    if not isinstance(pop, pd.DataFrame):
        raise InputError(f"{where} must be a pandas DataFrame with columns {', '.join(POPULATION_COLUMNS)}")
    extra = [c for c in pop.columns if str(c).startswith("pop_") and c not in POPULATION_COLUMNS]
    if extra:
        raise InputError(f"{where}: unknown population column(s) {', '.join(map(str, extra))}; accepted: "
                         f"{', '.join(POPULATION_COLUMNS)}")
    missing = [c for c in POPULATION_COLUMNS if c not in pop.columns]
    if missing:
        raise InputError(f"{where}: missing population column(s) {', '.join(missing)}; all of "
                         f"{', '.join(POPULATION_COLUMNS)} are required")
    p = pop[list(POPULATION_COLUMNS)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(p) | (p < 0)
    if bad.any():
        r, c = (int(v[0]) for v in np.nonzero(bad))
        raise InputError(f"{where}: region {pop.index[r]!r}, column {POPULATION_COLUMNS[c]}: "
                         f"{pop.iloc[r][POPULATION_COLUMNS[c]]!s} must be a finite number >= 0 persons")
    return p


def aligned_values(conc, index, name):
    """Concentrations [ug m-3] in the order of ``index`` (a Series is aligned by label, an array
    must have one value per region); None stays None."""
    if conc is None:
        return None
    if isinstance(conc, (pd.Series, xr.DataArray)):
        s = conc.to_series() if isinstance(conc, xr.DataArray) else conc
        missing = [r for r in index if r not in s.index]
        if missing:
            raise InputError(f"{name} has no value for region(s) {', '.join(map(repr, missing[:5]))}")
        return as_float_array(s.reindex(index).to_numpy(), name)
    a = as_float_array(conc, name)
    if a.size != len(index):
        raise InputError(f"{name} has {a.size} value(s) for {len(index)} region(s)")
    return a


def _read_region_csv(path, what):
    """A CSV with a text ``region`` column (``#`` comments, column names stripped); a missing
    or unreadable file is an :class:`InputError` naming it as ``what``."""
    try:
        df = pd.read_csv(path, comment="#", dtype={"region": str})
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} {path}: not a readable CSV ({exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def read_background(path):
    """Read a total-PM2.5 background CSV: columns ``region`` and ``pm25_total_ug_m3`` [ug m-3].

    Returns a Series indexed by region (strings). Raises :class:`InputError` naming file, line
    and column.
    """
    path = Path(path)
    df = _read_region_csv(path, "background file")
    for col in ("region", "pm25_total_ug_m3"):
        if col not in df.columns:
            raise InputError(f"background file {path}: missing column {col!r}; expected region, pm25_total_ug_m3")
    first = first_data_line(path)
    v = pd.to_numeric(df["pm25_total_ug_m3"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(v) | (v < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"background file {path} line {first + i} (region {df.region.iloc[i]!r}), column "
                         f"pm25_total_ug_m3: {df['pm25_total_ug_m3'].iloc[i]!s}; expected a concentration >= 0 ug m-3")
    dup = df["region"].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(f"background file {path} line {first + i}, column region: {df.region.iloc[i]!r} appears twice")
    return pd.Series(v, index=df["region"].str.strip().values, name=str(path))


def background_values(background, index):
    """Background per region of ``index`` and a description of where it came from."""
    if isinstance(background, (str, Path)):
        background = read_background(background)
    if isinstance(background, (int, float, np.floating)) and not isinstance(background, bool):
        return np.full(len(index), float(background)), f"uniform {float(background):g} ug m-3"
    if isinstance(background, (pd.Series, xr.DataArray)):
        ser = background.to_series() if isinstance(background, xr.DataArray) else background
        by_str = {str(k): float(v) for k, v in ser.items()}
        missing = [r for r in index if str(r) not in by_str]
        if missing:
            src = f"background file {ser.name}" if ser.name else "background"
            raise InputError(f"{src}: no value for region(s) {', '.join(map(repr, missing[:5]))}"
                             + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else "")
                             + "; give one row per region of the exposure table")
        return np.array([by_str[str(r)] for r in index]), f"per region, {ser.name or 'user series'}"
    a = as_float_array(background, "background")
    if a.size != len(index):
        raise InputError(f"background has {a.size} value(s) for {len(index)} region(s)")
    return a, "per region, user array"


def read_exposure_table(path):
    """Read the ``cobenefits health`` input CSV.

    Columns: ``region``, ``pm25`` [ug m-3], optional ``pm25_scenario`` [ug m-3], and
    :data:`POPULATION_COLUMNS` [persons]. Returns ``(conc_base, conc_scenario or None, pop)``
    indexed by region. Raises :class:`InputError` naming the file, line and column.
    """
    path = Path(path)
    df = _read_region_csv(path, "input file")
    first = first_data_line(path)
    where = f"input file {path}"
    for col in ("region", "pm25"):
        if col not in df.columns:
            raise InputError(f"{where}: missing column {col!r}; expected region, pm25, optional "
                             f"pm25_scenario and {', '.join(POPULATION_COLUMNS)}")
    allowed = {"region", "pm25", "pm25_scenario", *POPULATION_COLUMNS}
    unknown = [c for c in df.columns if c not in allowed]
    if unknown:
        raise InputError(f"{where}: unknown column(s) {', '.join(unknown)}; population columns must be "
                         f"5-year groups named {', '.join(POPULATION_COLUMNS)}")
    missing = [c for c in POPULATION_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{where}: missing population column(s) {', '.join(missing)}; all of "
                         f"{', '.join(POPULATION_COLUMNS)} are required")
    if len(df) == 0:
        raise InputError(f"{where}: no data rows")
    for i, reg in enumerate(df["region"]):
        if pd.isna(reg) or not str(reg).strip():
            raise InputError(f"{where} line {first + i}, column region: empty region name")
    dup = df["region"].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(f"{where} line {first + i}, column region: region {df.region.iloc[i]!r} appears twice")
    num_cols = ["pm25"] + (["pm25_scenario"] if "pm25_scenario" in df.columns else []) + list(POPULATION_COLUMNS)
    for col in num_cols:
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(v) | (v < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            what = "a concentration >= 0 ug m-3" if col.startswith("pm25") else "a population >= 0 persons"
            raw = df[col].iloc[i]
            raise InputError(f"{where} line {first + i} (region {df.region.iloc[i]!r}), column {col}: "
                             f"{'missing value' if pd.isna(raw) else str(raw)}; expected {what}")
        df[col] = v
    df = df.set_index("region")
    scen = df["pm25_scenario"] if "pm25_scenario" in df.columns else None
    return df["pm25"], scen, df[list(POPULATION_COLUMNS)]


_CENSUS = {}


def _age_table():
    if "city_age" not in _CENSUS:
        t = pd.read_csv(data_path("city_age_2010.csv"), comment="#")
        _CENSUS["city_age"] = t
    return _CENSUS["city_age"]


def age_population(city_ids=None, *, region_type: Literal["city", "province"] = "city"):
    """Population by 5-year age group (2010 census) for cities or provinces.

    Parameters
    ----------
    city_ids : iterable of int, optional
        2010 admin codes (``city_id``; province codes when ``region_type='province'``);
        None = all 654 cities (or all 31 provinces).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``region_id`` in the order asked, columns :data:`POPULATION_COLUMNS` [persons].
    """
    check_choice("region_type", region_type, ("city", "province"))
    t = _age_table()
    t = t[t["region_type"] == region_type].set_index("region_id")
    if city_ids is None:
        out = t
    else:
        ids = [int(i) for i in city_ids]
        missing = [i for i in ids if i not in t.index]
        if missing:
            raise InputError(f"no census age structure for {region_type} id(s) "
                             f"{', '.join(map(str, missing[:10]))}{' ...' if len(missing) > 10 else ''}")
        out = t.loc[ids]
    out = out[list(POPULATION_COLUMNS)].astype(np.int64)
    out.index.name = "region_id"
    return out


def rest_of_province_population(city_ids=None):
    """Population by age of each province minus its cities among ``city_ids`` (None = all 654).

    Returns a DataFrame indexed by ``province_id`` (all 31 provinces) with
    :data:`POPULATION_COLUMNS` [persons], every value >= 0.
    """
    cities = age_population(city_ids)
    prov = age_population(region_type="province")
    by_prov = cities.groupby((cities.index // 10000) * 10000).sum()
    rop = prov.subtract(by_prov.reindex(prov.index, fill_value=0))
    if (rop < 0).any().any():  # cannot happen with census units nested in provinces
        raise InputError("a province has fewer people in an age group than its cities")
    rop.index.name = "province_id"
    return rop


def check_health_config(health_cfg):
    """Read and check the files of a ``[health]`` configuration before any dispersion work.

    ``functions_file`` needs ``crf = "user"`` and the reverse; the functions, background and
    rates files are read with the readers the health stage uses (same messages).
    """
    crf = getattr(health_cfg, "crf", None)
    functions = getattr(health_cfg, "functions_file", "") or ""
    if functions and crf != "user":
        raise InputError(f"[health] functions_file = {functions!r} with crf = {crf!r}: user functions are used only "
                         "with crf = \"user\"; set crf = \"user\" or remove functions_file")
    if crf == "user" and not functions:
        raise InputError("[health] crf = \"user\" needs functions_file (a CSV of user-defined functions)")
    if functions:
        read_user_functions(functions)
    if getattr(health_cfg, "background", ""):
        read_background(health_cfg.background)
    if getattr(health_cfg, "rates_file", ""):
        read_rates(health_cfg.rates_file)

"""Health impact of PM2.5: relative risks, attributable and avoided premature deaths.

Deaths attributable to annual-mean PM2.5 exposure ``z`` in region r, for cause c and age group a,
per parameter draw d (Burnett et al. 2014; GBD; see engine/data/health/README.md):

.. math::
    D_{r,c,a,d} = P_{r,a}\\, y_{c,a}\\, (1 - 1/RR_{c,a,d}(z_r))

with P the population [persons], y the baseline death rate [deaths person-1 yr-1]. Deaths avoided
between a base and a scenario concentration are, by default, the difference of the two burdens
(``avoided_method="subtraction"``: :math:`P y (1/RR_s - 1/RR_b)`), or the potential impact fraction
(``"pif"``: :math:`P y (1 - RR_s/RR_b)`, BenMAP's form for log-linear functions).

Uncertainty: every draw of the concentration-response parameters is evaluated for every region
with the **same draw index**, so sums over regions (national totals) keep the right correlation.
Summaries are ``central`` (the function at its central parameters), ``mean`` over draws and the
2.5 % / 97.5 % percentiles over draws (linear interpolation, as numpy's default and R type 7).

Glossary (names used in the API, with units)

========================  =========================================================
``concentration``         annual-mean PM2.5 [ug m-3] (population exposure of a region)
``population``            persons by 5-year age group ``pop_0_4 .. pop_75_79, pop_80plus``
``baseline_rate``         deaths per 100,000 persons per year, by cause and age group
``deaths``                premature deaths per year attributable to PM2.5 [deaths yr-1]
``avoided``               deaths per year avoided between base and scenario [deaths yr-1]
``paf``                   population attributable fraction 1 - 1/RR [1]
========================  =========================================================

Example
-------
>>> import pandas as pd
>>> pop = pd.DataFrame([[1e5] * 17], index=["A"], columns=POPULATION_COLUMNS)
>>> ds = health_impact([60.0], pop, conc_scenario=[50.0], draws=200)
>>> float(ds.avoided_all_mean.sel(region="A")) > 0
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from engine.constants import CRF_NAMES
from engine.errors import InputError
from kernels import crf as _k

__all__ = [
    "AGE_GROUPS", "POPULATION_COLUMNS", "CAUSES", "CRF_NAMES", "COHORTS", "AVOIDED_METHODS",
    "CRF_PARAMETERS", "health_impact", "national_totals", "impact_table",
    "load_rates", "read_rates", "read_exposure_table", "age_population",
    "rest_of_province_population", "relative_risk", "curve_set",
    "USER_FORMS", "UserFunction", "read_user_functions", "read_background", "benmap_table",
    "BENMAP_PERCENTILES",
]

#: the 17 age groups of the population and rate tables
AGE_GROUPS = ("0_4", "5_9", "10_14", "15_19", "20_24", "25_29", "30_34", "35_39", "40_44",
              "45_49", "50_54", "55_59", "60_64", "65_69", "70_74", "75_79", "80plus")
AGE_LOWER = tuple(5 * i for i in range(17))
POPULATION_COLUMNS = tuple(f"pop_{g}" for g in AGE_GROUPS)
#: causes of death known to the engine (rates file names)
CAUSES = ("ihd", "stroke", "copd", "lc", "lri", "ncd_lri")
CAUSE_LONG_NAMES = {
    "ihd": "ischaemic heart disease", "stroke": "stroke",
    "copd": "chronic obstructive pulmonary disease", "lc": "lung cancer",
    "lri": "lower respiratory infections",
    "ncd_lri": "non-communicable diseases and lower respiratory infections",
}
#: forms of user-defined functions (BenMAP-CE function forms, kernels.crf)
USER_FORMS = {"log_linear": _k.FORM_LOGLINEAR, "log_log": _k.FORM_LOGLOG, "linear": _k.FORM_LINEAR}
#: columns of a user-defined functions file (required first, then optional)
USER_FUNCTION_REQUIRED = ("form", "cause", "beta", "beta_se", "min_age")
USER_FUNCTION_OPTIONAL = ("function", "max_age", "zcf", "incidence_per_100k")
#: the percentiles of the BenMAP-style table: BenMAP's 20 (2.5, 7.5, ..., 97.5)
BENMAP_PERCENTILES = tuple(2.5 + 5.0 * i for i in range(20))
COHORTS = ("with_china", "without_china")
AVOIDED_METHODS = ("subtraction", "pif")

def _data_path(*parts):
    """Path of a file in the embedded data set (engine/data)."""
    return Path(str(resources.files("engine").joinpath("data", *parts)))


#: named parameter tables (STYLE 7): name -> (file under engine/data/health, description)
CRF_PARAMETERS = {
    "ier2010": ("ier_draws_gbd2010.csv",
                "IER, Burnett et al. 2014 EHP 122:397; 1000 GBD 2010 parameter draws per cause x age"),
    "gemm_ncd_lri": ("gemm_params_2018.csv",
                     "GEMM NCD+LRI, Burnett et al. 2018 PNAS 115:9592; theta ~ Normal(theta, SE)"),
    "gemm_5cod": ("gemm_params_2018.csv",
                  "GEMM 5 causes (IHD, stroke, COPD, LC, LRI), Burnett et al. 2018; theta ~ Normal(theta, SE)"),
    "loglinear_krewski2009": ("loglinear_params.csv",
                              "log-linear, Krewski et al. 2009 ACS all-cause (BenMAP form), ages 30+; "
                              "beta ~ Normal(beta, SE)"),
    "user": ("", "user-defined functions (BenMAP-CE forms log-linear, log-log, linear); beta ~ Normal(beta, SE)"),
}

_CACHE = {}


def _read_table(name):
    if name not in _CACHE:
        _CACHE[name] = pd.read_csv(_data_path("health", name), comment="#",
                                   dtype={"age": str, "age_group": str})
    return _CACHE[name]


def _check_choice(name, value, choices):
    if value not in choices:
        raise InputError(f"{name} = {value!r} is not one of {', '.join(map(repr, choices))}")


# --------------------------------------------------------------------------- curve sets
@dataclass(frozen=True)
class CurveSet:
    """The relative-risk curves of one concentration-response function.

    A *curve* is one parameter set (per draw) that applies to one cause and one or more age
    groups. ``age_curve[c, a]`` is the curve index for cause c and age group a, -1 where the
    function does not apply (no deaths attributed).
    """

    crf: str
    model: int
    causes: tuple
    curve_cause: np.ndarray        # (n_curve,) int64
    curve_label: tuple             # e.g. "ihd 25_29", "copd 25+"
    age_curve: np.ndarray          # (n_cause, n_age) int64
    params_central: np.ndarray     # (n_curve, 1, N_PARAMS)
    params_draws: np.ndarray       # (n_curve, n_draw, N_PARAMS)
    central_definition: str
    #: (n_cause, n_age) baseline rate [deaths person-1 yr-1] given by the function itself (user
    #: functions' incidence_per_100k; 1 for the linear form); NaN = from the rates table
    rate_override: np.ndarray = None


def _age_index(lo):
    return AGE_LOWER.index(lo)


def _ier_curves(draws, adult_min_age, age_specific):
    tab = _read_table("ier_draws_gbd2010.csv")
    n_avail = int(tab.groupby(["cause", "age"]).size().min())
    if draws > n_avail:
        raise InputError(f"draws = {draws}: the GBD 2010 IER has {n_avail} published parameter draws; "
                         f"choose 0 .. {n_avail}")
    causes = ("ihd", "stroke", "copd", "lc", "lri")
    groups = {key: g.sort_values("sim") for key, g in tab.groupby(["cause", "age"])}
    curves = []  # (cause index, label, strata rows, ages)
    adult = [a for a in AGE_LOWER if a >= adult_min_age]
    for ci, cause in enumerate(causes[:2]):
        if age_specific:
            for lo in adult:
                age = "80plus" if lo == 80 else f"{lo}_{lo + 4}"
                curves.append((ci, f"{cause} {age}", groups[(cause, age)], [lo]))
        else:
            curves.append((ci, f"{cause} all-age {adult_min_age}+", groups[(cause, "all")], adult))
    curves.append((2, f"copd {adult_min_age}+", groups[("copd", "all")], adult))
    curves.append((3, f"lc {adult_min_age}+", groups[("lc", "all")], adult))
    curves.append((4, "lri 0_4", groups[("lri", "all")], [0]))
    n_curve = len(curves)
    central = np.zeros((n_curve, 1, _k.N_PARAMS))
    drawn = np.zeros((n_curve, draws, _k.N_PARAMS))
    age_curve = np.full((len(causes), len(AGE_GROUPS)), -1, dtype=np.int64)
    for k, (ci, _, g, ages) in enumerate(curves):
        p = g[["alpha", "gamma", "delta", "zcf"]].to_numpy(dtype=np.float64)
        central[k, 0, :4] = p.mean(axis=0)
        drawn[k, :, :4] = p[:draws]
        for lo in ages:
            age_curve[ci, _age_index(lo)] = k
    return CurveSet("ier2010", _k.MODEL_IER, causes,
                    np.array([c[0] for c in curves], dtype=np.int64), tuple(c[1] for c in curves),
                    age_curve, central, drawn,
                    "IER evaluated at the mean of the 1000 GBD 2010 parameter draws (note: this "
                    "over-states RR by 5-20 % relative to the mean over draws)")


def _gemm_curves(crf, cohort, draws, rng_normals, adult_min_age, age_specific):
    tab = _read_table("gemm_params_2018.csv")
    tab = tab[tab["cohort"] == cohort]
    causes = ("ncd_lri",) if crf == "gemm_ncd_lri" else ("ihd", "stroke", "copd", "lc", "lri")
    adult = [a for a in AGE_LOWER if a >= adult_min_age]
    curves = []  # (cause index, label, param row, ages)
    for ci, cause in enumerate(causes):
        t = tab[tab["cause"] == cause].set_index("age")
        # COPD, LC, LRI are not age-specific in GEMM (same theta in every age row): one curve
        same = np.allclose(t["theta"].to_numpy(), t["theta"].iloc[0])
        if age_specific and not same:
            for lo in adult:
                age = "80plus" if lo == 80 else f"{lo}_{lo + 4}"
                curves.append((ci, f"{cause} {age}", t.loc[age], [lo]))
        else:
            curves.append((ci, f"{cause} {adult_min_age}+", t.loc["25plus"], adult))
    n_curve = len(curves)
    central = np.zeros((n_curve, 1, _k.N_PARAMS))
    drawn = np.zeros((n_curve, draws, _k.N_PARAMS))
    age_curve = np.full((len(causes), len(AGE_GROUPS)), -1, dtype=np.int64)
    z = rng_normals(len(CAUSES), draws)  # one standard normal per (cause, draw); see below
    for k, (ci, _, row, ages) in enumerate(curves):
        fixed = [row["alpha"], row["mu"], row["nu"], row["zcf"]]
        central[k, 0] = [row["theta"], *fixed]
        # theta ~ Normal(theta, SE); the age-specific thetas of one cause are derived from one
        # fit, so one normal deviate per cause and draw serves all its ages (perfect correlation)
        drawn[k, :, 0] = row["theta"] + row["theta_se"] * z[CAUSES.index(causes[ci])]
        drawn[k, :, 1:] = fixed
        for lo in ages:
            age_curve[ci, _age_index(lo)] = k
    return CurveSet(crf, _k.MODEL_GEMM, causes,
                    np.array([c[0] for c in curves], dtype=np.int64), tuple(c[1] for c in curves),
                    age_curve, central, drawn, "GEMM at the published theta")


def _loglinear_curves(draws, rng_normals, adult_min_age):
    row = _read_table("loglinear_params.csv").set_index("function").loc["krewski2009"]
    lo_min = max(int(row["min_age"]), adult_min_age)
    ages = [a for a in AGE_LOWER if a >= lo_min]
    causes = (row["cause"],)
    central = np.zeros((1, 1, _k.N_PARAMS))
    central[0, 0, :2] = [row["beta"], row["zcf"]]
    drawn = np.zeros((1, draws, _k.N_PARAMS))
    z = rng_normals(len(CAUSES), draws)
    drawn[0, :, 0] = row["beta"] + row["beta_se"] * z[CAUSES.index(row["cause"])]
    drawn[0, :, 1] = row["zcf"]
    age_curve = np.full((1, len(AGE_GROUPS)), -1, dtype=np.int64)
    age_curve[0, [_age_index(a) for a in ages]] = 0
    return CurveSet("loglinear_krewski2009", _k.MODEL_LOGLINEAR, causes, np.zeros(1, dtype=np.int64),
                    (f"{causes[0]} {lo_min}+",), age_curve, central, drawn, "log-linear at the published beta")


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
    first = _first_data_line(path)
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
        out.append(UserFunction(label, form, cause, beta, se, int(lo), hi, zcf, inc, line))
    # the same cause may not be counted twice in an age group
    for a in range(len(out)):
        for b in range(a + 1, len(out)):
            fa, fb = out[a], out[b]
            if fa.cause == fb.cause and fa.min_age <= fb.max_age and fb.min_age <= fa.max_age:
                raise InputError(f"{where} lines {fa.line} and {fb.line}: both apply to cause {fa.cause!r} at "
                                 "overlapping ages (deaths would be counted twice)")
    return out


def _user_curves(functions, draws, rng_normals, source):
    if isinstance(functions, (str, Path)):
        source = str(functions)
        functions = read_user_functions(functions)
    if not functions:
        raise InputError("crf = 'user' needs a functions file (--functions FILE / [health] functions_file)")
    causes = tuple(dict.fromkeys(f.cause for f in functions))
    extra = [c for c in causes if c not in CAUSES]
    n_k = len(functions)
    central = np.zeros((n_k, 1, _k.N_PARAMS))
    drawn = np.zeros((n_k, draws, _k.N_PARAMS))
    # one deviate per (cause, draw): rows 0-5 are the built-in causes in CAUSES order (the same
    # deviates the built-in log-linear/GEMM functions use), then the user's other causes
    z = rng_normals(len(CAUSES) + len(extra), draws)
    age_curve = np.full((len(causes), len(AGE_GROUPS)), -1, dtype=np.int64)
    override = np.full(age_curve.shape, np.nan)
    for k, f in enumerate(functions):
        form = float(USER_FORMS[f.form])
        central[k, 0, :3] = [f.beta, f.zcf, form]
        row = CAUSES.index(f.cause) if f.cause in CAUSES else len(CAUSES) + extra.index(f.cause)
        drawn[k, :, 0] = f.beta + f.beta_se * z[row]
        drawn[k, :, 1] = f.zcf
        drawn[k, :, 2] = form
        ci = causes.index(f.cause)
        for ai, lo in enumerate(AGE_LOWER):
            hi = math.inf if lo == 80 else lo + 4
            if lo >= f.min_age and hi <= f.max_age:
                age_curve[ci, ai] = k
                if f.form == "linear":
                    override[ci, ai] = 1.0  # the linear form's beta is itself a rate per person
                elif math.isfinite(f.incidence_per_100k):
                    override[ci, ai] = f.incidence_per_100k / 1e5
    labels = tuple(f"{f.label} ({f.cause} {f.min_age}-{'' if math.isinf(f.max_age) else int(f.max_age)})"
                   for f in functions)
    return CurveSet("user", _k.MODEL_USER, causes, np.array([causes.index(f.cause) for f in functions], dtype=np.int64),
                    labels, age_curve, central, drawn, f"user functions ({source}) at their published beta",
                    rate_override=override)


def curve_set(crf="ier2010", *, cohort="with_china", draws=1000, seed=20170901,
              adult_min_age=25, age_specific=True, functions=None):
    """The curves and parameter draws of a concentration-response function.

    Parameters
    ----------
    crf : {'ier2010', 'gemm_ncd_lri', 'gemm_5cod', 'loglinear_krewski2009'}
    cohort : {'with_china', 'without_china'}
        GEMM cohort set (ignored by the other functions).
    draws : int
        Parameter draws (0 = central parameters only). IER: the first ``draws`` of the 1000
        published GBD 2010 draws (no randomness). GEMM/log-linear: Normal(theta, SE) with ``seed``.
    seed : int
        Seed of ``numpy.random.default_rng`` for the GEMM/log-linear draws.
    adult_min_age : int
        Lower bound [years] of the adult causes (IHD, stroke, COPD, LC; GEMM causes);
        a multiple of 5 in [25, 80]. The log-linear function starts at max(30, adult_min_age).
    age_specific : bool
        Use the age-specific IHD/stroke curves (IER, GEMM); False = the all-age curve.
    functions : path or list of UserFunction, optional
        The user-defined functions of ``crf='user'`` (:func:`read_user_functions`); their own age
        ranges apply (``adult_min_age`` and ``age_specific`` are not used).
    """
    _check_choice("crf", crf, CRF_NAMES)
    if functions is not None and crf != "user":
        raise InputError(f"a functions file is given but crf = {crf!r}; use crf = 'user' with a functions file")
    _check_choice("cohort", cohort, COHORTS)
    if isinstance(draws, bool) or not isinstance(draws, (int, np.integer)) or draws < 0:
        raise InputError(f"draws = {draws!r} must be an integer >= 0")
    if adult_min_age not in range(25, 81, 5):
        raise InputError(f"adult_min_age = {adult_min_age!r} must be a multiple of 5 in [25, 80] years")
    draws = int(draws)

    def normals(n_cause, n_draw):
        return np.random.default_rng(seed).standard_normal((n_cause, n_draw))

    if crf == "ier2010":
        return _ier_curves(draws, adult_min_age, age_specific)
    if crf.startswith("gemm"):
        return _gemm_curves(crf, cohort, draws, normals, adult_min_age, age_specific)
    if crf == "user":
        return _user_curves(functions, draws, normals, "list")
    return _loglinear_curves(draws, normals, adult_min_age)


def relative_risk(concentration, crf="ier2010", *, cohort="with_china", draws=1000, seed=20170901,
                  adult_min_age=25, age_specific=True, functions=None):
    """Relative risk of every curve of a function, per concentration and draw.

    Returns
    -------
    xarray.Dataset
        ``rr(concentration, curve, draw)`` and ``rr_central(concentration, curve)`` [1].
    """
    z = _as_float_array(concentration, "concentration")
    cs = curve_set(crf, cohort=cohort, draws=draws, seed=seed, adult_min_age=adult_min_age,
                   age_specific=age_specific, functions=functions)
    out = np.empty((z.size, len(cs.curve_label), cs.params_draws.shape[1]))
    _k.relative_risk(cs.model, z, cs.params_draws, out)
    cen = np.empty((z.size, len(cs.curve_label), 1))
    _k.relative_risk(cs.model, z, cs.params_central, cen)
    coords = {"concentration": z, "curve": list(cs.curve_label)}
    return xr.Dataset({
        "rr": (("concentration", "curve", "draw"), out, {"units": "1", "long_name": "relative risk per draw"}),
        "rr_central": (("concentration", "curve"), cen[..., 0],
                       {"units": "1", "long_name": "relative risk at the central parameters"}),
    }, coords=coords, attrs={"crf": crf})


# --------------------------------------------------------------------------- rates
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
    first = _first_data_line(path)
    return _validate_rates(df, f"rates file {path}", first)


def _first_data_line(path):
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
        return _read_table("baseline_rates_china_2010.csv")[["cause", "age_group", "rate_per_100k"]].copy()
    if isinstance(rates, pd.DataFrame):
        return _validate_rates(rates.reset_index(drop=True), "rates table")
    return read_rates(rates)


def _rates_matrix(rates_df, cs, where):
    """(n_cause, n_age) rates [deaths person-1 yr-1] for the cells where the function applies."""
    table = {(c, a): v for c, a, v in rates_df[["cause", "age_group", "rate_per_100k"]].itertuples(index=False)}
    out = np.zeros(cs.age_curve.shape)
    gaps = []
    for ci, cause in enumerate(cs.causes):
        for ai, age in enumerate(AGE_GROUPS):
            if cs.age_curve[ci, ai] < 0:
                continue
            if cs.rate_override is not None and np.isfinite(cs.rate_override[ci, ai]):
                out[ci, ai] = cs.rate_override[ci, ai]
                continue
            v = table.get((cause, age))
            if v is None:
                gaps.append(f"{cause} {age}")
            else:
                out[ci, ai] = v / 1e5
    if gaps:
        raise InputError(f"{where}: no baseline rate for {len(gaps)} cause/age group(s) that {cs.crf} needs: "
                         f"{', '.join(gaps)} (rows cause,age_group,rate_per_100k required for each)")
    return out


# --------------------------------------------------------------------------- inputs
def _as_float_array(x, name):
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be numbers") from None
    return np.atleast_1d(a).ravel()


#: highest plausible annual-mean PM2.5 [ug m-3]: about 4x the highest annual means measured (Delhi,
#: ~200-250 ug m-3; WHO ambient air quality database 2022); above it the input is in the wrong unit
PM25_PLAUSIBLE_MAX_UG_M3 = 1000.0


def _check_concentration(z, labels, name):
    bad = ~np.isfinite(z) | (z < 0) | (z > PM25_PLAUSIBLE_MAX_UG_M3)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        unit = " (more than any annual mean measured: wrong unit, e.g. ng m-3?)" if z[i] > PM25_PLAUSIBLE_MAX_UG_M3 else ""
        raise InputError(f"{name} of region {labels[i]!r} is {float(z[i]):g} ug m-3{unit}; expected a finite annual-mean "
                         f"concentration in [0, {PM25_PLAUSIBLE_MAX_UG_M3:g}] ug m-3 ({int(bad.sum())} region(s) affected)")


def _population_matrix(pop, where="pop_by_age"):
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


def _aligned(conc, index, name):
    if conc is None:
        return None
    if isinstance(conc, (pd.Series, xr.DataArray)):
        s = conc.to_series() if isinstance(conc, xr.DataArray) else conc
        missing = [r for r in index if r not in s.index]
        if missing:
            raise InputError(f"{name} has no value for region(s) {', '.join(map(repr, missing[:5]))}")
        return _as_float_array(s.reindex(index).to_numpy(), name)
    a = _as_float_array(conc, name)
    if a.size != len(index):
        raise InputError(f"{name} has {a.size} value(s) for {len(index)} region(s)")
    return a


# --------------------------------------------------------------------------- main entry
def health_impact(conc_base, pop_by_age, *, conc_scenario=None,
                  crf: Literal["ier2010", "gemm_ncd_lri", "gemm_5cod", "loglinear_krewski2009", "user"] = "ier2010",
                  cohort: Literal["with_china", "without_china"] = "with_china",
                  rates=None, draws=1000, seed=20170901,
                  avoided_method: Literal["subtraction", "pif"] = "subtraction",
                  adult_min_age=25, age_specific=True, keep_age_draws=False, chunk_size=None,
                  functions=None, background=None):
    """Attributable deaths (and deaths avoided by a scenario) for many regions, over draws.

    Parameters
    ----------
    conc_base : array-like (n_region,) or pandas Series indexed like ``pop_by_age`` [ug m-3]
        Annual-mean PM2.5 exposure of each region in the base case.
    pop_by_age : pandas.DataFrame
        One row per region (the index gives the region labels), columns
        :data:`POPULATION_COLUMNS` [persons].
    conc_scenario : array-like or Series, optional [ug m-3]
        Scenario exposure; when given, scenario burdens and avoided deaths are added.
    crf : {'ier2010', 'gemm_ncd_lri', 'gemm_5cod', 'loglinear_krewski2009'}
    cohort : {'with_china', 'without_china'}
        GEMM cohort set.
    rates : None, path or DataFrame
        Baseline death rates ``cause, age_group, rate_per_100k``; None = China 2010 (GBD 2019).
    draws : int
        Parameter draws (0 = central parameters only; IER at most 1000).
    seed : int
        Seed of the GEMM/log-linear Normal draws.
    avoided_method : {'subtraction', 'pif'}
    adult_min_age : int
        Lower age bound [years] of the adult causes (default 25).
    age_specific : bool
        Age-specific IHD/stroke curves (default) or the all-age curve.
    keep_age_draws : bool
        Also return ``deaths_age_draws(region, cause, age, draw)`` (memory: 8 bytes x all four).
    chunk_size : int, optional
        Regions per kernel call (bounds memory); the results do not depend on it.
    functions : path or list of UserFunction, optional
        User-defined functions for ``crf='user'`` (:func:`read_user_functions`).
    background : float, array-like, Series or path, optional [ug m-3]
        Total (all-source) annual-mean PM2.5 of each region (a path: CSV read by
        :func:`read_background`). Given, the health functions are evaluated at the total:
        base exposure = background, scenario exposure = background - (conc_base - conc_scenario)
        (the primary-PM2.5 change applied on top of the total; floored at 0, counted in
        ``attrs['background_floored']``); ``deaths`` are then attributable to total PM2.5.
        Without it, the exposure is the primary concentration itself. ``attrs['concentration_method']``
        states which.

    Returns
    -------
    xarray.Dataset
        Dimensions ``region, cause, age, draw``. Per-draw totals ``deaths_draws(region, cause,
        draw)``; ``deaths_central`` and ``deaths_mean`` by (region, cause, age); percentiles
        ``deaths_p2_5``/``deaths_p97_5`` by (region, cause); all-cause ``deaths_all_*`` by region.
        With a scenario, the same for ``deaths_scenario_*`` and ``avoided_*``.
    """
    _check_choice("avoided_method", avoided_method, AVOIDED_METHODS)
    p = _population_matrix(pop_by_age)
    labels = list(pop_by_age.index)
    if len(set(labels)) != len(labels):
        dup = pd.Index(labels)[pd.Index(labels).duplicated()][0]
        raise InputError(f"pop_by_age: region {dup!r} appears more than once")
    zb = _aligned(conc_base, pop_by_age.index, "conc_base")
    _check_concentration(zb, labels, "conc_base")
    has_scen = conc_scenario is not None
    zs = _aligned(conc_scenario, pop_by_age.index, "conc_scenario") if has_scen else zb.copy()
    _check_concentration(zs, labels, "conc_scenario")
    primary_b, primary_s = zb, zs
    n_floor = 0
    if background is None:
        method = "primary: the health functions are evaluated at the modelled primary PM2.5 concentration"
    else:
        bg, bg_source = _background_values(background, pop_by_age.index)
        _check_concentration(bg, labels, "background")
        zs = bg - (primary_b - primary_s)
        n_floor = int((zs < 0).sum())
        zs = np.maximum(zs, 0.0)
        zb = bg
        method = ("background: the health functions are evaluated at the total PM2.5 background "
                  f"({bg_source}); scenario = background - (primary base - primary scenario), floored at 0; "
                  "deaths are attributable to total PM2.5, avoided deaths to the primary change")
    cs = curve_set(crf, cohort=cohort, draws=draws, seed=seed, adult_min_age=adult_min_age,
                   age_specific=age_specific, functions=functions)
    rates_df = load_rates(rates)
    y = _rates_matrix(rates_df, cs, "baseline rates" if rates is None or isinstance(rates, pd.DataFrame)
                      else f"rates file {rates}")

    n_r, n_c, n_a, n_k = len(labels), len(cs.causes), len(AGE_GROUPS), len(cs.curve_label)
    n_d = cs.params_draws.shape[1]
    # W[r, k] = sum over the ages a of curve k of P[r, a] y[c(k), a]
    A = np.zeros((n_a, n_k))
    for ci in range(n_c):
        for ai in range(n_a):
            k = cs.age_curve[ci, ai]
            if k >= 0:
                A[ai, k] += y[ci, ai]
    weight = p @ A
    pif = avoided_method == "pif"

    def run(params, nd):
        base = np.empty((n_r, n_c, nd))
        scen = np.empty((n_r, n_c, nd))
        avd = np.empty((n_r, n_c, nd))
        fsum = np.empty((n_r, n_k, 3))
        step = n_r if not chunk_size else max(1, int(chunk_size))
        for s in range(0, n_r, step):
            e = min(n_r, s + step)
            _k.impact_over_draws(cs.model, np.ascontiguousarray(zb[s:e]), np.ascontiguousarray(zs[s:e]),
                                 params, np.ascontiguousarray(weight[s:e]), cs.curve_cause, pif,
                                 base[s:e], scen[s:e], avd[s:e], fsum[s:e], has_scen)
        return base, scen, avd, fsum

    # by-age deaths: P[r, a] y[c, a] x (fraction of curve age_curve[c, a])
    valid = cs.age_curve >= 0
    kidx = np.where(valid, cs.age_curve, 0)
    py = p[:, None, :] * y[None, :, :] * valid[None]          # (r, c, a)

    def by_age(frac_rk):                                     # frac (r, k) -> (r, c, a)
        return py * frac_rk[:, kidx]

    cb, csn, ca, cf = run(cs.params_central, 1)
    coords = {"region": labels, "cause": list(cs.causes), "age": list(AGE_GROUPS),
              "draw": np.arange(n_d)}
    dd = ("region", "cause", "draw")
    rca = ("region", "cause", "age")
    rc = ("region", "cause")
    u = "deaths yr-1"
    data = {
        "concentration": ("region", zb, {"units": "ug m-3", "long_name": "annual-mean PM2.5 exposure, base",
                                         "standard_name": "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"}),
        "population": (("region", "age"), p, {"units": "1", "long_name": "population by age group"}),
        "baseline_rate": (("cause", "age"), y * 1e5, {"units": "(100000 yr)-1",
                                                       "long_name": "baseline death rate per 100,000 where the function applies (0 elsewhere)"}),
        "applies": (("cause", "age"), valid, {"long_name": "the function applies to this cause and age group"}),
    }
    if has_scen:
        data["concentration_scenario"] = ("region", zs, {**data["concentration"][2],
                                                         "long_name": "annual-mean PM2.5 exposure, scenario"})
    if background is not None:
        data["primary_concentration"] = ("region", primary_b, {"units": "ug m-3",
                                                               "long_name": "modelled primary PM2.5, base"})
        if has_scen:
            data["primary_concentration_scenario"] = ("region", primary_s, {
                "units": "ug m-3", "long_name": "modelled primary PM2.5, scenario"})
    prefixes = [("deaths", 0, "premature deaths attributable to PM2.5, base")]
    if has_scen:
        prefixes += [("deaths_scenario", 1, "premature deaths attributable to PM2.5, scenario"),
                     ("avoided", 2, f"premature deaths avoided, scenario vs base ({avoided_method})")]
    central_arrays = (cb, csn, ca)
    for name, j, long in prefixes:
        data[f"{name}_central"] = (rca, by_age(cf[..., j]), {"units": u, "long_name": f"{long}; central parameters"})
        data[f"{name}_all_central"] = ("region", central_arrays[j][..., 0].sum(axis=1),
                                       {"units": u, "long_name": f"{long}, all causes; central parameters"})
    if n_d > 0:
        db, ds_, da, fs = run(cs.params_draws, n_d)
        for name, j, long in prefixes:
            arr = (db, ds_, da)[j]
            data[f"{name}_draws"] = (dd, arr, {"units": u, "long_name": f"{long}; per parameter draw"})
            data[f"{name}_mean"] = (rca, by_age(fs[..., j] / n_d), {"units": u, "long_name": f"{long}; mean over draws"})
            lo, hi = np.percentile(arr, [2.5, 97.5], axis=-1)
            data[f"{name}_p2_5"] = (rc, lo, {"units": u, "long_name": f"{long}; 2.5th percentile over draws"})
            data[f"{name}_p97_5"] = (rc, hi, {"units": u, "long_name": f"{long}; 97.5th percentile over draws"})
            tot = arr.sum(axis=1)
            data[f"{name}_all_mean"] = ("region", tot.mean(axis=-1), {"units": u, "long_name": f"{long}, all causes; mean over draws"})
            lo, hi = np.percentile(tot, [2.5, 97.5], axis=-1)
            data[f"{name}_all_p2_5"] = ("region", lo, {"units": u, "long_name": f"{long}, all causes; 2.5th percentile"})
            data[f"{name}_all_p97_5"] = ("region", hi, {"units": u, "long_name": f"{long}, all causes; 97.5th percentile"})
        if keep_age_draws:
            fb = np.empty((n_r, n_k, n_d))
            _k.fractions_over_draws(cs.model, zb, cs.params_draws, fb)
            data["deaths_age_draws"] = (("region", "cause", "age", "draw"), py[..., None] * fb[:, kidx, :],
                                        {"units": u, "long_name": "premature deaths attributable to PM2.5, base; per draw"})
            if has_scen:
                fsc = np.empty((n_r, n_k, n_d))
                _k.fractions_over_draws(cs.model, zs, cs.params_draws, fsc)
                # PIF 1 - RR_s/RR_b = (PAF_b - PAF_s)/(1 - PAF_s), since RR = 1/(1 - PAF)
                fa = (fb - fsc) / (1.0 - fsc) if pif else fb - fsc
                data["avoided_age_draws"] = (("region", "cause", "age", "draw"), py[..., None] * fa[:, kidx, :],
                                             {"units": u, "long_name": "premature deaths avoided; per draw"})
    ds = xr.Dataset(data, coords=coords)
    ds["cause"].attrs["long_name"] = "cause of death: " + "; ".join(
        f"{c} = {CAUSE_LONG_NAMES.get(c, c)}" for c in cs.causes)
    ds["age"].attrs["long_name"] = "5-year age group (80plus = 80 and over)"
    ds["draw"].attrs["long_name"] = "index of the parameter draw (the same for every region)"
    ds.attrs.update({
        "crf": crf, "crf_source": CRF_PARAMETERS[crf][1] + (f"; {cs.central_definition}" if crf == "user" else ""),
        "cohort": cohort if crf.startswith("gemm") else "",
        "concentration_method": method, "background_floored": n_floor,
        "draws": n_d, "seed": seed, "avoided_method": avoided_method, "adult_min_age": adult_min_age,
        "age_specific": int(bool(age_specific)), "central": cs.central_definition,
        "percentiles": "2.5 and 97.5 over draws, linear interpolation",
        "curves": "; ".join(cs.curve_label),
        "sd": "standard deviation over draws with ddof = 1",
        "rates": "China 2010, GBD 2019 round (engine/data/health)" if rates is None else str(
            "user table" if isinstance(rates, pd.DataFrame) else rates),
    })
    return ds


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
    first = _first_data_line(path)
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


def _background_values(background, index):
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
            raise InputError(f"background has no value for region(s) {', '.join(map(repr, missing[:5]))}")
        return np.array([by_str[str(r)] for r in index]), f"per region, {ser.name or 'user series'}"
    a = _as_float_array(background, "background")
    if a.size != len(index):
        raise InputError(f"background has {a.size} value(s) for {len(index)} region(s)")
    return a, "per region, user array"


def benmap_table(ds, *, percentiles=BENMAP_PERCENTILES):
    """BenMAP-style result table: one row per region and cause (plus ``all``).

    Columns: ``region, endpoint`` ("avoided" with a scenario, else "attributable"), ``cause``,
    ``function`` (crf), ``start_age, end_age`` [years], ``population`` [persons in the ages the
    function applies to], ``baseline_deaths`` [deaths yr-1: population x baseline rate, or for
    the linear user form population], ``base_concentration``, ``control_concentration``,
    ``delta_concentration`` [ug m-3; exposure, i.e. total PM2.5 with a background], ``point_estimate``
    (central curve), ``mean`` and ``sd`` (over draws, ddof = 1), ``percentile_2_5`` ...
    ``percentile_97_5`` (BenMAP's 20) [deaths yr-1], ``concentration_method``.
    """
    has_scen = "avoided_central" in ds
    name = "avoided" if has_scen else "deaths"
    regions = list(ds["region"].values)
    causes = list(ds["cause"].values)
    applies = ds["applies"].values                              # (c, a)
    pop = ds["population"].values                               # (r, a)
    rate = ds["baseline_rate"].values / 1e5                     # (c, a)
    zb = ds["concentration"].values
    zs = ds["concentration_scenario"].values if has_scen else zb
    has_draws = f"{name}_draws" in ds
    rows = []
    for ri, r in enumerate(regions):
        per_cause_draws = ds[f"{name}_draws"].values[ri] if has_draws else None  # (c, d)
        for ci, c in enumerate(list(causes) + ["all"]):
            if c == "all":
                mask = applies.any(axis=0)
                cen = float(ds[f"{name}_all_central"].values[ri])
                dr = per_cause_draws.sum(axis=0) if has_draws else None
                base_deaths = float((pop[ri][None, :] * rate * applies).sum())
            else:
                mask = applies[ci]
                cen = float(ds[f"{name}_central"].values[ri, ci].sum())
                dr = per_cause_draws[ci] if has_draws else None
                base_deaths = float((pop[ri] * rate[ci] * applies[ci]).sum())
            ages = np.flatnonzero(mask)
            row = {"region": r, "endpoint": "avoided" if has_scen else "attributable", "cause": c,
                   "function": ds.attrs.get("crf", ""),
                   "start_age": AGE_LOWER[ages[0]] if ages.size else np.nan,
                   "end_age": (99 if ages.size and ages[-1] == len(AGE_LOWER) - 1 else
                               (AGE_LOWER[ages[-1]] + 4 if ages.size else np.nan)),
                   "population": float(pop[ri, mask].sum()), "baseline_deaths": base_deaths,
                   "base_concentration": float(zb[ri]), "control_concentration": float(zs[ri]),
                   "delta_concentration": float(zb[ri] - zs[ri]), "point_estimate": cen}
            if dr is not None and dr.size:
                row["mean"] = float(dr.mean())
                row["sd"] = float(dr.std(ddof=1)) if dr.size > 1 else np.nan
                qs = np.percentile(dr, list(percentiles))
            else:
                row["mean"] = row["sd"] = np.nan
                qs = np.full(len(percentiles), np.nan)
            for p, q in zip(percentiles, qs):
                row[f"percentile_{p:g}".replace(".", "_")] = float(q)
            row["concentration_method"] = ds.attrs.get("concentration_method", "")
            rows.append(row)
    return pd.DataFrame(rows)


def national_totals(ds, dim="region"):
    """Sum a :func:`health_impact` result over ``dim`` per draw and recompute the summaries.

    Returns a Dataset with, per cause and for all causes, ``*_central``, ``*_mean``, ``*_p2_5``
    and ``*_p97_5`` [deaths yr-1]; percentiles come from the summed draws (same draw index).
    """
    out = {}
    for name in ("deaths", "deaths_scenario", "avoided"):
        if f"{name}_central" not in ds:
            continue
        u = {"units": "deaths yr-1"}
        out[f"{name}_central"] = (ds[f"{name}_central"].sum(dim=(dim, "age"))).assign_attrs(u)
        out[f"{name}_all_central"] = ds[f"{name}_all_central"].sum(dim=dim).assign_attrs(u)
        if f"{name}_draws" in ds:
            d = ds[f"{name}_draws"].sum(dim=dim)
            out[f"{name}_draws"] = d.assign_attrs(u)
            out[f"{name}_mean"] = d.mean("draw").assign_attrs(u)
            out[f"{name}_p2_5"] = d.quantile(0.025, dim="draw").drop_vars("quantile").assign_attrs(u)
            out[f"{name}_p97_5"] = d.quantile(0.975, dim="draw").drop_vars("quantile").assign_attrs(u)
            t = d.sum("cause")
            out[f"{name}_all_mean"] = t.mean("draw").assign_attrs(u)
            out[f"{name}_all_p2_5"] = t.quantile(0.025, dim="draw").drop_vars("quantile").assign_attrs(u)
            out[f"{name}_all_p97_5"] = t.quantile(0.975, dim="draw").drop_vars("quantile").assign_attrs(u)
    res = xr.Dataset(out)
    res.attrs.update(ds.attrs)
    return res


def impact_table(ds):
    """One row per region and cause (plus ``all``): the table ``cobenefits health`` writes.

    Columns ``region, cause, deaths_central, deaths_mean, deaths_p2_5, deaths_p97_5`` and, with a
    scenario, the same for ``avoided_`` (central curve and mean over draws side by side), then
    ``concentration_method``. Without draws the mean/percentile columns are NaN.
    """
    regions = list(ds["region"].values)
    causes = list(ds["cause"].values)
    rows_region = np.repeat(regions, len(causes) + 1)
    rows_cause = np.tile(causes + ["all"], len(regions))
    table = {"region": rows_region, "cause": rows_cause}
    nr = len(regions)
    for name in ("deaths", "avoided"):
        if f"{name}_central" not in ds:
            continue
        cols = {}
        cen = ds[f"{name}_central"].sum("age").transpose("region", "cause").values
        cols["central"] = np.column_stack([cen, ds[f"{name}_all_central"].values])
        if f"{name}_draws" in ds:
            mean = ds[f"{name}_mean"].sum("age").transpose("region", "cause").values
            cols["mean"] = np.column_stack([mean, ds[f"{name}_all_mean"].values])
            for q in ("p2_5", "p97_5"):
                cols[q] = np.column_stack([ds[f"{name}_{q}"].transpose("region", "cause").values,
                                           ds[f"{name}_all_{q}"].values])
        else:
            for q in ("mean", "p2_5", "p97_5"):
                cols[q] = np.full((nr, len(causes) + 1), np.nan)
        for q in ("central", "mean", "p2_5", "p97_5"):
            table[f"{name}_{q}"] = cols[q].reshape(-1)
    table["concentration_method"] = ds.attrs.get("concentration_method", "")
    return pd.DataFrame(table)


def read_exposure_table(path):
    """Read the ``cobenefits health`` input CSV.

    Columns: ``region``, ``pm25`` [ug m-3], optional ``pm25_scenario`` [ug m-3], and
    :data:`POPULATION_COLUMNS` [persons]. Returns ``(conc_base, conc_scenario or None, pop)``
    indexed by region. Raises :class:`InputError` naming the file, line and column.
    """
    path = Path(path)
    df = _read_region_csv(path, "input file")
    first = _first_data_line(path)
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


# --------------------------------------------------------------------------- census ages
def _age_table():
    if "city_age" not in _CACHE:
        t = pd.read_csv(_data_path("city_age_2010.csv"), comment="#")
        _CACHE["city_age"] = t
    return _CACHE["city_age"]


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
    _check_choice("region_type", region_type, ("city", "province"))
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

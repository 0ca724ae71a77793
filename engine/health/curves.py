"""Concentration-response curves: the :class:`CurveSet` (curves, parameter draws and which cause
and age group each applies to) of every named function (IER 2010, GEMM 2018, log-linear
Krewski 2009, user-defined BenMAP forms), and relative risks from them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from engine.errors import InputError
from kernels import crf as _k

from .inputs import as_float_array, read_user_functions
from .parameters import (AGE_GROUPS, AGE_LOWER, CAUSES, COHORTS, CRF_NAMES, USER_FORMS, age_index, check_choice,
                         read_health_table)

__all__ = ["CurveSet", "curve_set", "relative_risk"]

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


def _ier_curves(draws, adult_min_age, age_specific):
    tab = read_health_table("ier_draws_gbd2010.csv")
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
            age_curve[ci, age_index(lo)] = k
    return CurveSet("ier2010", _k.MODEL_IER, causes,
                    np.array([c[0] for c in curves], dtype=np.int64), tuple(c[1] for c in curves),
                    age_curve, central, drawn,
                    "IER evaluated at the mean of the 1000 GBD 2010 parameter draws (note: this "
                    "over-states RR by 5-20 % relative to the mean over draws)")


def _gemm_curves(crf, cohort, draws, rng_normals, adult_min_age, age_specific):
    tab = read_health_table("gemm_params_2018.csv")
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
            age_curve[ci, age_index(lo)] = k
    return CurveSet(crf, _k.MODEL_GEMM, causes,
                    np.array([c[0] for c in curves], dtype=np.int64), tuple(c[1] for c in curves),
                    age_curve, central, drawn, "GEMM at the published theta")


def _loglinear_curves(draws, rng_normals, adult_min_age):
    row = read_health_table("loglinear_params.csv").set_index("function").loc["krewski2009"]
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
    age_curve[0, [age_index(a) for a in ages]] = 0
    return CurveSet("loglinear_krewski2009", _k.MODEL_LOGLINEAR, causes, np.zeros(1, dtype=np.int64),
                    (f"{causes[0]} {lo_min}+",), age_curve, central, drawn, "log-linear at the published beta")


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
    check_choice("crf", crf, CRF_NAMES)
    if functions is not None and crf != "user":
        raise InputError(f"a functions file is given but crf = {crf!r}; use crf = 'user' with a functions file")
    check_choice("cohort", cohort, COHORTS)
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
    z = as_float_array(concentration, "concentration")
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

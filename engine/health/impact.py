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

from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from engine.constants import PM25_STANDARD_NAME
from engine.errors import InputError
from kernels import crf as _k

from .curves import curve_set
from .checks import check_background
from .inputs import aligned_values, background_values, check_concentration, load_rates, population_matrix
from .parameters import (AGE_GROUPS, AGE_LOWER, AVOIDED_METHODS, BENMAP_PERCENTILES, CAUSE_LONG_NAMES,
                         CRF_PARAMETERS, check_choice)

__all__ = ["health_impact", "rates_matrix", "curve_weights", "benmap_table", "national_totals", "impact_table"]

#: dimensions and units of the result variables
_DD = ("region", "cause", "draw")
_RCA = ("region", "cause", "age")
_RC = ("region", "cause")
_U = "deaths yr-1"


def rates_matrix(rates_df, cs, where):
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
    check_choice("avoided_method", avoided_method, AVOIDED_METHODS)
    ex = _exposure(conc_base, pop_by_age, conc_scenario, background)
    cs = curve_set(crf, cohort=cohort, draws=draws, seed=seed, adult_min_age=adult_min_age,
                   age_specific=age_specific, functions=functions)
    y = rates_matrix(load_rates(rates), cs, "baseline rates" if rates is None or isinstance(rates, pd.DataFrame)
                     else f"rates file {rates}")
    weight = curve_weights(cs, y, ex.population)
    pif = avoided_method == "pif"
    n_d = cs.params_draws.shape[1]
    # by-age deaths: P[r, a] y[c, a] x (fraction of curve age_curve[c, a])
    valid = cs.age_curve >= 0
    kidx = np.where(valid, cs.age_curve, 0)
    py = ex.population[:, None, :] * y[None, :, :] * valid[None]          # (r, c, a)

    def by_age(frac_rk):                                     # frac (r, k) -> (r, c, a)
        return py * frac_rk[:, kidx]

    data = _input_variables(ex, y, valid)
    prefixes = [("deaths", 0, "premature deaths attributable to PM2.5, base")]
    if ex.has_scenario:
        prefixes += [("deaths_scenario", 1, "premature deaths attributable to PM2.5, scenario"),
                     ("avoided", 2, f"premature deaths avoided, scenario vs base ({avoided_method})")]
    central = _impact_over_draws(cs, ex, cs.params_central, weight, pif, chunk_size)
    _central_variables(data, prefixes, central, by_age)
    if n_d > 0:
        drawn = _impact_over_draws(cs, ex, cs.params_draws, weight, pif, chunk_size)
        _draw_variables(data, prefixes, drawn, by_age, n_d)
        if keep_age_draws:
            _age_draw_variables(data, cs, ex, py, kidx, pif)
    coords = {"region": ex.labels, "cause": list(cs.causes), "age": list(AGE_GROUPS), "draw": np.arange(n_d)}
    ds = xr.Dataset(data, coords=coords)
    _describe(ds, cs, ex, crf=crf, cohort=cohort, seed=seed, avoided_method=avoided_method,
              adult_min_age=adult_min_age, age_specific=age_specific, rates=rates)
    return ds


class _Exposure(NamedTuple):
    """The exposures of :func:`health_impact` after validation (concentrations in ug m-3)."""

    labels: list                 # region labels
    population: np.ndarray       # (n_region, 17) [persons]
    base: np.ndarray             # exposure the functions are evaluated at, base
    scenario: np.ndarray         # exposure, scenario (= base without a scenario)
    primary_base: np.ndarray     # modelled primary PM2.5, base
    primary_scenario: np.ndarray
    has_scenario: bool
    n_floored: int               # scenario exposures floored at 0 (background method)
    method: str                  # attrs['concentration_method']


def _exposure(conc_base, pop_by_age, conc_scenario, background):
    """Validate the population and concentrations; with a background, the exposures are the total
    PM2.5 (scenario = background - primary change, floored at 0)."""
    p = population_matrix(pop_by_age)
    labels = list(pop_by_age.index)
    if len(set(labels)) != len(labels):
        dup = pd.Index(labels)[pd.Index(labels).duplicated()][0]
        raise InputError(f"pop_by_age: region {dup!r} appears more than once")
    zb = aligned_values(conc_base, pop_by_age.index, "conc_base")
    check_concentration(zb, labels, "conc_base")
    has_scen = conc_scenario is not None
    zs = aligned_values(conc_scenario, pop_by_age.index, "conc_scenario") if has_scen else zb.copy()
    check_concentration(zs, labels, "conc_scenario")
    primary_b, primary_s = zb, zs
    n_floor = 0
    if background is None:
        method = "primary: the health functions are evaluated at the modelled primary PM2.5 concentration"
    else:
        bg, bg_source = background_values(background, pop_by_age.index)
        check_concentration(bg, labels, "background")
        check_background(bg, primary_b, labels, where=f"background ({bg_source})")
        zs = bg - (primary_b - primary_s)
        n_floor = int((zs < 0).sum())
        zs = np.maximum(zs, 0.0)
        zb = bg
        method = ("background: the health functions are evaluated at the total PM2.5 background "
                  f"({bg_source}); scenario = background - (primary base - primary scenario), floored at 0; "
                  "deaths are attributable to total PM2.5, avoided deaths to the primary change")
    return _Exposure(labels, p, zb, zs, primary_b, primary_s, has_scen, n_floor, method)


def curve_weights(cs, y, p):
    """W[r, k] = sum over the ages a of curve k of P[r, a] y[c(k), a] [deaths yr-1]."""
    n_c, n_a, n_k = len(cs.causes), len(AGE_GROUPS), len(cs.curve_label)
    A = np.zeros((n_a, n_k))
    for ci in range(n_c):
        for ai in range(n_a):
            k = cs.age_curve[ci, ai]
            if k >= 0:
                A[ai, k] += y[ci, ai]
    return p @ A


def _impact_over_draws(cs, ex, params, weight, pif, chunk_size):
    """Base, scenario and avoided deaths (region, cause, draw) and the per-curve fraction sums
    (region, curve, 3) of one parameter set (:func:`kernels.crf.impact_over_draws`), in chunks
    of ``chunk_size`` regions."""
    n_r, n_c, n_k, nd = len(ex.labels), len(cs.causes), len(cs.curve_label), params.shape[1]
    zb, zs = ex.base, ex.scenario
    base = np.empty((n_r, n_c, nd))
    scen = np.empty((n_r, n_c, nd))
    avd = np.empty((n_r, n_c, nd))
    fsum = np.empty((n_r, n_k, 3))
    step = n_r if not chunk_size else max(1, int(chunk_size))
    for s in range(0, n_r, step):
        e = min(n_r, s + step)
        _k.impact_over_draws(cs.model, np.ascontiguousarray(zb[s:e]), np.ascontiguousarray(zs[s:e]),
                             params, np.ascontiguousarray(weight[s:e]), cs.curve_cause, pif,
                             base[s:e], scen[s:e], avd[s:e], fsum[s:e], ex.has_scenario)
    return base, scen, avd, fsum


def _input_variables(ex, y, valid):
    """Variables of the inputs: exposures, population, baseline rates, where the function applies."""
    data = {
        "concentration": ("region", ex.base, {"units": "ug m-3", "long_name": "annual-mean PM2.5 exposure, base",
                                              "standard_name": PM25_STANDARD_NAME}),
        "population": (("region", "age"), ex.population, {"units": "1", "long_name": "population by age group"}),
        "baseline_rate": (("cause", "age"), y * 1e5, {"units": "(100000 yr)-1",
                                                       "long_name": "baseline death rate per 100,000 where the function applies (0 elsewhere)"}),
        "applies": (("cause", "age"), valid, {"long_name": "the function applies to this cause and age group"}),
    }
    if ex.has_scenario:
        data["concentration_scenario"] = ("region", ex.scenario, {**data["concentration"][2],
                                                                  "long_name": "annual-mean PM2.5 exposure, scenario"})
    if ex.method.startswith("background"):
        data["primary_concentration"] = ("region", ex.primary_base, {"units": "ug m-3",
                                                                     "long_name": "modelled primary PM2.5, base"})
        if ex.has_scenario:
            data["primary_concentration_scenario"] = ("region", ex.primary_scenario, {
                "units": "ug m-3", "long_name": "modelled primary PM2.5, scenario"})
    return data


def _central_variables(data, prefixes, central, by_age):
    """``<name>_central`` by (region, cause, age) and ``<name>_all_central`` by region."""
    cb, csn, ca, cf = central
    central_arrays = (cb, csn, ca)
    for name, j, long in prefixes:
        data[f"{name}_central"] = (_RCA, by_age(cf[..., j]), {"units": _U, "long_name": f"{long}; central parameters"})
        data[f"{name}_all_central"] = ("region", central_arrays[j][..., 0].sum(axis=1),
                                       {"units": _U, "long_name": f"{long}, all causes; central parameters"})


def _draw_variables(data, prefixes, drawn, by_age, n_d):
    """Per-draw deaths, their mean by age and the 2.5/97.5 percentiles, per cause and all causes."""
    db, ds_, da, fs = drawn
    for name, j, long in prefixes:
        arr = (db, ds_, da)[j]
        data[f"{name}_draws"] = (_DD, arr, {"units": _U, "long_name": f"{long}; per parameter draw"})
        data[f"{name}_mean"] = (_RCA, by_age(fs[..., j] / n_d), {"units": _U, "long_name": f"{long}; mean over draws"})
        lo, hi = np.percentile(arr, [2.5, 97.5], axis=-1)
        data[f"{name}_p2_5"] = (_RC, lo, {"units": _U, "long_name": f"{long}; 2.5th percentile over draws"})
        data[f"{name}_p97_5"] = (_RC, hi, {"units": _U, "long_name": f"{long}; 97.5th percentile over draws"})
        tot = arr.sum(axis=1)
        data[f"{name}_all_mean"] = ("region", tot.mean(axis=-1), {"units": _U, "long_name": f"{long}, all causes; mean over draws"})
        lo, hi = np.percentile(tot, [2.5, 97.5], axis=-1)
        data[f"{name}_all_p2_5"] = ("region", lo, {"units": _U, "long_name": f"{long}, all causes; 2.5th percentile"})
        data[f"{name}_all_p97_5"] = ("region", hi, {"units": _U, "long_name": f"{long}, all causes; 97.5th percentile"})


def _age_draw_variables(data, cs, ex, py, kidx, pif):
    """``deaths_age_draws`` (and ``avoided_age_draws``) by (region, cause, age, draw)."""
    n_r, n_k, n_d = len(ex.labels), len(cs.curve_label), cs.params_draws.shape[1]
    fb = np.empty((n_r, n_k, n_d))
    _k.fractions_over_draws(cs.model, ex.base, cs.params_draws, fb)
    data["deaths_age_draws"] = (("region", "cause", "age", "draw"), py[..., None] * fb[:, kidx, :],
                                {"units": _U, "long_name": "premature deaths attributable to PM2.5, base; per draw"})
    if ex.has_scenario:
        fsc = np.empty((n_r, n_k, n_d))
        _k.fractions_over_draws(cs.model, ex.scenario, cs.params_draws, fsc)
        # PIF 1 - RR_s/RR_b = (PAF_b - PAF_s)/(1 - PAF_s), since RR = 1/(1 - PAF)
        fa = (fb - fsc) / (1.0 - fsc) if pif else fb - fsc
        data["avoided_age_draws"] = (("region", "cause", "age", "draw"), py[..., None] * fa[:, kidx, :],
                                     {"units": _U, "long_name": "premature deaths avoided; per draw"})


def _describe(ds, cs, ex, *, crf, cohort, seed, avoided_method, adult_min_age, age_specific, rates):
    """Coordinate long names and the attributes that record how ``ds`` was computed."""
    ds["cause"].attrs["long_name"] = "cause of death: " + "; ".join(
        f"{c} = {CAUSE_LONG_NAMES.get(c, c)}" for c in cs.causes)
    ds["age"].attrs["long_name"] = "5-year age group (80plus = 80 and over)"
    ds["draw"].attrs["long_name"] = "index of the parameter draw (the same for every region)"
    ds.attrs.update({
        "crf": crf, "crf_source": CRF_PARAMETERS[crf][1] + (f"; {cs.central_definition}" if crf == "user" else ""),
        "cohort": cohort if crf.startswith("gemm") else "",
        "concentration_method": ex.method, "background_floored": ex.n_floored,
        "draws": cs.params_draws.shape[1], "seed": seed, "avoided_method": avoided_method,
        "adult_min_age": adult_min_age,
        "age_specific": int(bool(age_specific)), "central": cs.central_definition,
        "percentiles": "2.5 and 97.5 over draws, linear interpolation",
        "curves": "; ".join(cs.curve_label),
        "sd": "standard deviation over draws with ddof = 1",
        "rates": "China 2010, GBD 2019 round (engine/data/health)" if rates is None else str(
            "user table" if isinstance(rates, pd.DataFrame) else rates),
    })


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

"""Targeted adoption: which units adopt which actions to avoid the most deaths at a given CO2 cut.

Linearised by the co-benefit intensities (:mod:`engine.marginal.intensity`: each option's CO2
cut :math:`c_i` and deaths avoided :math:`a_i` when adopted alone), the choice is the integer
programme

.. math:: \\max_x \\sum_i a_i x_i \\quad \\text{s.t.} \\quad T \\le \\sum_i c_i x_i \\le T (1 + \\tau),
          \\quad \\sum_{i \\in g} x_i \\le 1 \\ \\forall g, \\quad x_i \\in \\{0, 1\\}

(g: the two efficiency levels of one sector at one place), solved by HiGHS's branch and bound
through :func:`scipy.optimize.milp` to a proven relative gap (default 1e-4; 0 = exact). The chosen adoption is then run through the whole pipeline
(carbon -> emissions -> superpose -> health -> metrics), so the headline numbers are the
pipeline's, not the linearisation's; the difference is reported as the linearisation error.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pandas as pd
import xarray as xr

from engine import pipeline as pl
from engine.errors import InputError
from engine.marginal.actions import ACTIONS, EFFICIENCY_SECTORS, ActionModel, reference_scenario
from engine.marginal.intensity import cobenefit_intensity
from engine.marginal.stages import run_stages

__all__ = ["solve_allocation", "target", "exclusive_groups", "adoption_of", "TARGETED"]

#: scenario name of the targeted adoption in the re-evaluation
TARGETED = "targeted"


def solve_allocation(co2_cut_mt, avoided_deaths, co2_target_mt, *, groups=None, tolerance=0.01, time_limit_s=120.0,
                     mip_rel_gap=1e-4):
    """The 0/1 choice of options that avoids the most deaths with a CO2 cut in
    ``[T, T (1 + tolerance)]``.

    Parameters
    ----------
    co2_cut_mt, avoided_deaths : (n,) float   per option [Mt yr-1], [deaths yr-1]
    co2_target_mt : float  T [Mt yr-1]
    groups : (n,) int, optional   options sharing a non-negative group id exclude each other
        (-1: no group)
    tolerance : float   relative width of the CO2 band above T (an exact T is rarely reachable
        with whole options)
    mip_rel_gap : float   HiGHS stops when the objective is proven within this relative gap of the
        optimum (reported as ``mip_gap``)

    Returns
    -------
    x : (n,) bool   the options adopted
    info : dict     objective, CO2 cut, HiGHS status, MIP gap
    """
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import csr_matrix

    c = np.asarray(co2_cut_mt, dtype=float)
    a = np.asarray(avoided_deaths, dtype=float)
    n = c.size
    if not (np.isfinite(c).all() and np.isfinite(a).all()):
        raise InputError("targeting: CO2 cuts and avoided deaths of the options must be finite")
    if not np.isfinite(co2_target_mt) or co2_target_mt <= 0:
        raise InputError(f"--co2-cut-mt {co2_target_mt}: must be a CO2 cut > 0 Mt yr-1")
    if not 0 <= tolerance <= 1:
        raise InputError(f"tolerance {tolerance}: must be in [0, 1]")
    reach = c[c > 0].sum()
    if co2_target_mt > reach:
        raise InputError(f"--co2-cut-mt {co2_target_mt:g}: more than every option together can cut "
                         f"({reach:.1f} Mt yr-1 when adopted alone, summed); choose 0 < X <= {reach:.1f}")
    cons = [LinearConstraint(c[None, :], co2_target_mt, co2_target_mt * (1.0 + tolerance))]
    if groups is not None:
        g = np.asarray(groups)
        ids, inv = np.unique(g[g >= 0], return_inverse=True)
        if ids.size:
            cols = np.nonzero(g >= 0)[0]
            M = csr_matrix((np.ones(cols.size), (inv, cols)), shape=(ids.size, n))
            cons.append(LinearConstraint(M, 0, 1))
    t = time.perf_counter()
    res = milp(-a, constraints=cons, integrality=np.ones(n), bounds=Bounds(0, 1),
               options={"time_limit": float(time_limit_s), "mip_rel_gap": float(mip_rel_gap)})
    if res.x is None:
        raise InputError(f"targeting: no allocation reaches a CO2 cut in [{co2_target_mt:g}, "
                         f"{co2_target_mt * (1 + tolerance):g}] Mt yr-1 ({res.message}); widen the tolerance")
    x = res.x > 0.5
    return x, {"objective_deaths": float(a[x].sum()), "co2_cut_mt": float(c[x].sum()), "status": int(res.status),
               "message": str(res.message), "mip_gap": float(getattr(res, "mip_gap", np.nan) or 0.0),
               "solve_s": time.perf_counter() - t, "n_options": int(n), "n_adopted": int(x.sum())}


def exclusive_groups(intensity):
    """Group ids of the options that exclude each other: the levels of one efficiency sector
    at one place; -1 for the others."""
    key = [f"{k}:{i}:{a.rsplit('_', 1)[0]}" if a.startswith("eff_") else None
           for k, i, a in zip(intensity["unit_kind"].values, intensity["unit_id"].values, intensity["action"].values)]
    ids = {k: j for j, k in enumerate(sorted({k for k in key if k is not None}))}
    return np.array([ids[k] if k is not None else -1 for k in key], dtype=np.int64)


def adoption_of(am, intensity, x):
    """The adoption (:meth:`ActionModel.empty` layout, one row) of the chosen options."""
    a = am.empty(1)
    by_name = {act.name: act for act in ACTIONS}
    place = {(k, int(i)): j for j, (k, i) in enumerate(zip(am.kind, am.place_id))}
    prov = {int(p): j for j, p in enumerate(np.asarray(am.cp.provinces))}
    for i in np.nonzero(x)[0]:
        act = by_name[str(intensity["action"].values[i])]
        kind, uid = str(intensity["unit_kind"].values[i]), int(intensity["unit_id"].values[i])
        j = prov[uid] if act.unit == "province" else place[(kind, uid)]
        a[act.key][0, j] = max(a[act.key][0, j], act.level)
    return a


def _targeted_carbon(stages, am, res, ref_name):
    """The carbon result with a ``targeted`` scenario added from an evaluated adoption: the base
    rows with the adoption's CO2 and PM2.5 (the pipeline's emissions stage reads these)."""
    from engine.constants import SECONDS_PER_YEAR

    cres = stages.carbon
    base = stages.base
    out = {}
    for tab_name, kind, idcol in (("cities", "city", "city_id"), ("rop", "rop", "province_id")):
        tab = getattr(cres, tab_name)
        b = tab[tab["scenario"] == base].copy()
        pos = {int(i): j for j, i in enumerate(am.place_id) if am.kind[j] == kind}
        cols = np.array([pos[int(i)] for i in b[idcol]])
        b["scenario"] = TARGETED
        b["co2_t"] = np.asarray(res["co2_mt"])[0, cols] * 1e6
        pm = np.asarray(res["pm25_t"])[0, cols]
        b["pm25_t"] = pm
        for k, v in res["pm25_by_sector_t"].items():
            b[f"pm25_{k}_t"] = np.asarray(v)[0, cols]
        area = am.area_km2[cols]
        b["pm25_intensity_g_m2_yr"] = np.divide(pm, area, out=np.zeros_like(pm), where=area > 0)
        b["q_g_m2_s"] = b["pm25_intensity_g_m2_yr"] / SECONDS_PER_YEAR
        if "co2_base_t" in b and "co2_reduction_pct" in b:
            cb = b["co2_base_t"].to_numpy(float)
            b["co2_reduction_pct"] = 100.0 * np.divide(cb - b["co2_t"].to_numpy(float), cb, out=np.zeros_like(cb),
                                                       where=cb > 0)
        keep = tab[tab["scenario"].isin([base, ref_name])]
        out[tab_name] = pd.concat([keep, b], ignore_index=True)
    nat = cres.national
    if nat is not None and "item" in nat:
        nat = nat[nat["scenario"].isin([base, ref_name])]
        row = pd.DataFrame([{"scenario": TARGETED, "item": "national_co2",
                             "co2_mt": float(np.asarray(res["co2_mt"]).sum()), "quantity": np.nan,
                             "unit": "Mt CO2 (scenario total)"}])
        nat = pd.concat([nat, row], ignore_index=True)
    return dataclasses.replace(cres, cities=out["cities"], rop=out["rop"], national=nat) \
        if dataclasses.is_dataclass(cres) else type(cres)(cities=out["cities"], rop=out["rop"], national=nat)


def _high_high(cities_out, scen, base):
    """Cities in the High-High class of :func:`engine.pipeline.metrics` (percentage CO2 cut and
    percentage deaths reduction both above the means over the cities)."""
    b = cities_out[cities_out.scenario == base].set_index("city_id")
    s = cities_out[cities_out.scenario == scen].set_index("city_id").reindex(b.index)
    pco2 = 100.0 * (b["co2_t"] - s["co2_t"]) / b["co2_t"].where(b["co2_t"] > 0)
    pd_ = 100.0 * s["avoided_deaths_mean"] / b["deaths_mean"].where(b["deaths_mean"] > 0)
    ok = pco2.notna() & pd_.notna()
    return sorted(int(i) for i in b.index[(pco2 > pco2[ok].mean()) & (pd_ > pd_[ok].mean()) & ok])


def _allocate(am, intensity, T, tolerance, time_limit_s, max_resolve):
    """Solve, evaluate the adoption with the carbon stage; re-solve while its cut is short of T.

    The options' cuts do not add exactly (efficiency leaves less waste heat to cascade, pooled
    savings meet a lower heat rate), so the linear target is scaled by T / (the carbon stage's
    cut of the chosen adoption), aiming at the middle of the band, until that cut reaches T.
    """
    groups = exclusive_groups(intensity)
    T_lin, tries = T, []
    for _ in range(max_resolve + 1):
        x, info = solve_allocation(intensity["co2_cut_mt"].values, intensity["avoided_deaths_central"].values,
                                   T_lin, groups=groups, tolerance=tolerance, time_limit_s=time_limit_s)
        res = am.evaluate(adoption_of(am, intensity, x))
        got_cut = float(am.co2_cut_mt(res)[0])
        tries.append({"linear_target_mt": T_lin, "co2_cut_mt": got_cut})
        if got_cut >= T * (1.0 - 1e-9):
            break
        T_lin *= (T / got_cut) * (1.0 + 0.5 * tolerance)
    info["resolves"] = tries
    return x, info, res


def _reevaluate(stages, cres, ref_name, T, age_population_fn):
    """The base, the reference and the targeted scenario through emissions -> superpose ->
    health -> metrics (:mod:`engine.pipeline`)."""
    from engine.config import CarbonConfig, ScenarioConfig

    prep = stages.prep
    keep = [sc for sc in prep.cfg.scenarios if sc[0].name in (stages.base, ref_name)]
    cfg = prep.cfg.replace(scenarios=tuple(keep) + ((ScenarioConfig(
        name=TARGETED, description=f"targeted adoption at a CO2 cut of {T:g} Mt yr-1"), CarbonConfig()),))
    prep2 = dataclasses.replace(prep, cfg=cfg)
    conc = pl.superpose(stages.S, pl.emissions(prep2, cres))
    hres = pl.health(prep2, conc, age_population_fn=age_population_fn)
    return pl.metrics(prep2, cres, conc, hres, stages.S)


def _result_dataset(intensity, x, cities_out, national, co2_cut, scen, sel):
    """The options with ``adopted``, per-city and national results of the re-evaluation."""
    ds = intensity.copy()
    ds["adopted"] = ("option", x, {"long_name": "the option is adopted in the targeted allocation"})
    for col, units, long in (("avoided_deaths_mean", "deaths yr-1", "deaths avoided in the city, mean over draws"),
                             ("avoided_deaths_central", "deaths yr-1", "deaths avoided in the city, central curve"),
                             ("co2_t", "t yr-1", "CO2 emission of the city"),
                             ("conc_ug_m3", "ug m-3", "primary PM2.5 exposure of the city")):
        arr = np.stack([cities_out[cities_out.scenario == s].set_index("city_id").reindex(sel)[col].to_numpy(float)
                        for s in scen])
        ds[f"city_{col}"] = (("scenario", "city"), arr, {"units": units, "long_name": long})
    for k in ("central", "mean", "p2_5", "p97_5"):
        ds[f"national_avoided_deaths_{k}"] = ("scenario", [float(national.loc[s, f"avoided_deaths_{k}"])
                                                           for s in scen], {"units": "deaths yr-1",
                                                                            "long_name": f"national deaths avoided, {k}"})
    ds["national_co2_cut_mt"] = ("scenario", [co2_cut[s] for s in scen],
                                 {"units": "Mt yr-1", "long_name": "national CO2 cut from the Base-Case"})
    return ds.assign_coords(scenario=scen, city=np.array(sel, dtype=np.int64))


def target(config=None, *, co2_cut_mt=None, reference=None, tolerance=0.01, stages=None, intensity=None,
           age_population_fn=None, time_limit_s=120.0, max_resolve=4, quiet=True, **stage_kw):
    """Choose who adopts what to avoid the most deaths at a national CO2 cut, and evaluate it.

    Parameters
    ----------
    config : scenario files or Config (see :func:`engine.pipeline.prepare`)
    co2_cut_mt : float, optional
        National CO2 cut [Mt yr-1]; default: the reference scenario's (FYP + symbiosis).
    reference : str, optional   the uniform scenario compared with (default ``fyp_symbiosis``)
    tolerance : float           the CO2 band [T, T (1 + tolerance)]
    max_resolve : int           re-solves with a scaled linear target while the pipeline's CO2 cut of
                                the chosen adoption is below T
    intensity : xarray.Dataset, optional   :func:`engine.marginal.cobenefit_intensity`'s result

    Returns
    -------
    xarray.Dataset
        ``adopted(option)`` with the options' coordinates; per ``(scenario, city)`` (scenarios:
        base, the reference, ``targeted``) avoided deaths and CO2; national
        ``avoided_deaths_{central,mean,p2_5,p97_5}(scenario)`` and ``co2_cut_mt(scenario)``
        from the full pipeline; ``attrs['summary']`` (JSON): the comparison, the High-High
        cities of each, the linearisation error.
    """
    import json

    t0 = time.perf_counter()
    if stages is None:
        stages = run_stages(config, quiet=quiet, **stage_kw)
    prep = stages.prep
    ref_name, ref = reference_scenario(prep.cfg, reference)
    if ref_name not in prep.cfg.scenario_names:
        raise InputError(f"reference scenario {ref_name!r} is not run")
    if intensity is None:
        intensity = cobenefit_intensity(stages=stages, reference=ref_name, age_population_fn=age_population_fn)
    am = ActionModel(prep, ref)
    nat = stages.carbon.national
    uniform_res = am.evaluate(am.uniform(1))
    uniform_cut = float(am.co2_cut_mt(uniform_res)[0])
    T = uniform_cut if co2_cut_mt is None else float(co2_cut_mt)
    x, info, res = _allocate(am, intensity, T, tolerance, time_limit_s, max_resolve)
    cres = _targeted_carbon(stages, am, res, ref_name)
    cities_out, national, summary = _reevaluate(stages, cres, ref_name, T, age_population_fn)
    national = national.set_index("scenario")
    scen = [stages.base, ref_name, TARGETED]
    # national CO2 of every place (cities and rests of province, selected or not) [Mt yr-1]
    co2_tot = {s: float(np.asarray(r["co2_mt"]).sum()) for s, r in
               ((stages.base, am.base), (ref_name, uniform_res), (TARGETED, res))}
    hh = {s: _high_high(cities_out, s, stages.base) for s in (ref_name, TARGETED)}
    pred = info["objective_deaths"]
    got = float(national.loc[TARGETED, "avoided_deaths_central"])
    summ = {
        "co2_target_mt": T, "co2_tolerance": tolerance, "reference_scenario": ref_name,
        "uniform": {"co2_cut_mt": co2_tot[stages.base] - co2_tot[ref_name],
                    **{f"avoided_deaths_{k}": float(national.loc[ref_name, f"avoided_deaths_{k}"])
                       for k in ("central", "mean", "p2_5", "p97_5")},
                    "high_high_cities": hh[ref_name]},
        "targeted": {"co2_cut_mt": co2_tot[stages.base] - co2_tot[TARGETED],
                     "co2_cut_linearised_mt": info["co2_cut_mt"],
                     **{f"avoided_deaths_{k}": float(national.loc[TARGETED, f"avoided_deaths_{k}"])
                        for k in ("central", "mean", "p2_5", "p97_5")},
                     "avoided_deaths_linearised": pred,
                     "linearisation_error_pct": 100.0 * (pred - got) / got if got else float("nan"),
                     "high_high_cities": hh[TARGETED],
                     "n_options_adopted": info["n_adopted"],
                     "cities_adopting": int(len({int(i) for i, k in zip(intensity["unit_id"].values[x],
                                                                          intensity["unit_kind"].values[x])
                                                 if k == "city"}))},
        "high_high": {"uniform": len(hh[ref_name]), "targeted": len(hh[TARGETED]),
                      "joined": sorted(set(hh[TARGETED]) - set(hh[ref_name])),
                      "left": sorted(set(hh[ref_name]) - set(hh[TARGETED]))},
        "solver": info, "timings_s": {"total_s": time.perf_counter() - t0},
        "pipeline_summary": summary,
    }
    if nat is not None and "item" in nat:
        t = nat[nat["item"] == "national_co2"].set_index("scenario")["co2_mt"]
        summ["uniform"]["co2_cut_carbon_stage_mt"] = float(t[stages.base] - t[ref_name])
    co2_cut = {s: co2_tot[stages.base] - co2_tot[s] for s in scen}
    ds = _result_dataset(intensity, x, cities_out, national, co2_cut, scen, prep.selected)
    ds.attrs["summary"] = json.dumps(summ, default=float)
    return ds

"""Co-benefit intensity of every action of every place: CO2 cut and deaths avoided nationally if
that place (or province) alone adopts it from the Base-Case.

All (unit, action) pairs are one sample axis: the carbon stage on per-place adoptions
(:class:`engine.marginal.actions.ActionModel`), their emissions, one
:func:`engine.pipeline.superpose` over the samples, and the full nonlinear health functions at
the central parameters (:func:`kernels.avoided.avoided_per_sample`). Beside it the first-order
estimate from the marginal damages, :math:`\\sum_j MD_j \\Delta E_j`.
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr

from engine import pipeline as pl
from engine.marginal.actions import ACTIONS, ActionModel, reference_scenario
from engine.marginal.damages import damages_at
from engine.marginal.stages import health_model, kt_per_q, run_stages

__all__ = ["cobenefit_intensity", "national_avoided"]


def _unit_rows(rows, am, prep, act, units):
    """Append the labels of ``units`` taking ``act`` to ``rows``."""
    if act.unit == "province":
        ids = np.asarray(am.cp.provinces)[units]
        pv = prep.data.provinces
        pn = pv["name_en"] if "name_en" in pv else pv["name"] if "name" in pv else None
        rows["unit_kind"] += ["province"] * len(units)
        rows["unit_id"] += [int(i) for i in ids]
        rows["unit_name"] += [str(pn.loc[i]) if pn is not None else str(i) for i in ids]
        rows["province_id"] += [int(i) for i in ids]
    else:
        rows["unit_kind"] += list(am.kind[units])
        rows["unit_id"] += [int(i) for i in am.place_id[units]]
        rows["unit_name"] += list(am.place_name[units])
        rows["province_id"] += [int(i) for i in am.place_province[units]]
    rows["action"] += [act.name] * len(units)
    rows["action_kind"] += [act.kind] * len(units)


def national_avoided(hm, conc_base, conc):
    """Deaths avoided nationally by each sample [deaths yr-1], central parameters, with the
    full functions: ``conc`` (n_sample, n_city) primary PM2.5 against ``conc_base`` (n_city,)
    (:func:`kernels.avoided.avoided_per_sample`)."""
    from kernels.avoided import avoided_per_sample

    conc = np.atleast_2d(np.asarray(conc, dtype=float))
    zb = np.ascontiguousarray(hm.exposure(conc_base, conc_base))
    zs = np.ascontiguousarray(hm.exposure(conc_base, conc))
    out = np.empty(conc.shape[0])
    avoided_per_sample(hm.model, zb, zs, hm.params_central, hm.weight, hm.pif, out)
    return out


def cobenefit_intensity(config=None, *, stages=None, reference=None, actions=None, md=None, hm=None,
                        age_population_fn=None, chunk_size=128, quiet=True, **stage_kw):
    """CO2 cut and deaths avoided of every (unit, action) adopted alone from the Base-Case.

    Parameters
    ----------
    config : scenario files or Config (see :func:`engine.pipeline.prepare`)
    stages : engine.marginal.stages.Stages, optional   the first stages, already run
    reference : str, optional
        Scenario whose ``[carbon]`` parameters (availabilities, ORC efficiency, saturations)
        the actions use (default ``fyp_symbiosis``).
    actions : sequence of engine.marginal.actions.Action, optional (default all)
    md : xarray.Dataset, optional   base-case marginal damages (:func:`engine.marginal.damages.damages_at`)
    chunk_size : int   rows of the carbon evaluation at once (memory, speed; not the results)

    Returns
    -------
    xarray.Dataset over ``option``: ``unit_kind`` (city | rop | province), ``unit_id``,
    ``unit_name``, ``province_id``, ``action``, ``action_kind``; ``co2_cut_mt`` [Mt yr-1],
    ``pm25_cut_t`` [t yr-1], ``avoided_deaths_central`` (full functions) and
    ``avoided_deaths_md`` (sum_j MD_j dE_j) [deaths yr-1], ``deaths_per_mt_co2``.
    """
    t0 = time.perf_counter()
    if stages is None:
        stages = run_stages(config, quiet=quiet, **stage_kw)
    prep, S = stages.prep, stages.S
    ref_name, ref = reference_scenario(prep.cfg, reference)
    am = ActionModel(prep, ref)
    q_base = am.emissions(am.base)
    conc_b = pl.superpose(S, q_base, parts=False)["conc_ug_m3"].values[0]
    if hm is None:
        hm = health_model(prep, conc_b, age_population_fn=age_population_fn)
    if md is None:
        md = damages_at(stages, stages.base, hm)
    md_c = md["md_central"].reindex(source=am.source_labels).values
    kt = kt_per_q(prep)
    t_setup = time.perf_counter() - t0
    rows = {k: [] for k in ("unit_kind", "unit_id", "unit_name", "province_id", "action", "action_kind")}
    cut, pm_cut, qs, shares, hshares = [], [], [], [], {"height_share": [], "season_height_share": []}
    t = time.perf_counter()
    for act in (actions or ACTIONS):
        units = am.units(act)
        for s0 in range(0, len(units), chunk_size):
            u = units[s0:s0 + chunk_size]
            res = am.evaluate(am.single(act, u))
            qa = am.emissions(res)
            qs.append(qa["q"].values)
            if "season_share" in qa:
                shares.append(qa["season_share"].values)
            for name in hshares:
                if name in qa:
                    hshares[name].append(qa[name].values)
            cut.append(am.co2_cut_mt(res))
            pm_cut.append(float(np.asarray(am.base["pm25_t"]).sum()) - np.asarray(res["pm25_t"]).sum(axis=1))
        _unit_rows(rows, am, prep, act, units)
    # the base is sample 0 of the same product, so that a city no option reaches gets bitwise
    # the base exposure (and is skipped by the health kernel)
    Q = np.concatenate(qs)
    q_all = xr.Dataset({"q": (("sample", "source"), np.concatenate([q_base["q"].values, Q]))},
                       coords={"source": am.source_labels})
    if shares:
        q_all["season_share"] = (("season", "sample", "source"),
                                 np.concatenate([q_base["season_share"].values] + shares, axis=1))
        q_all = q_all.assign_coords(season=list(am.seasons))
    for name, parts in hshares.items():  # emission heights: the sample axis is second to last
        if parts:
            dims = ("season", "height", "sample", "source") if name == "season_height_share" else \
                ("height", "sample", "source")
            q_all[name] = (dims, np.concatenate([q_base[name].values] + parts, axis=-2))
            q_all = q_all.assign_coords(height=list(am.heights.classes))
    t_carbon = time.perf_counter() - t
    t = time.perf_counter()
    conc, terms = _superpose_samples(S, q_all)
    conc_b, conc = conc[0], conc[1:]
    t_disp = time.perf_counter() - t
    t = time.perf_counter()
    avoided = national_avoided(hm, conc_b, conc)
    est = _first_order(*terms, md, am.source_labels, kt, q_all["q"].values, md_c)
    t_health = time.perf_counter() - t
    cut, pm_cut = np.concatenate(cut), np.concatenate(pm_cut)
    n = len(cut)
    ds = xr.Dataset(
        {"co2_cut_mt": ("option", cut, {"units": "Mt yr-1", "long_name": "national CO2 cut from the Base-Case"}),
         "pm25_cut_t": ("option", pm_cut, {"units": "t yr-1", "long_name": "national primary PM2.5 emission cut"}),
         "avoided_deaths_central": ("option", avoided, {
             "units": "deaths yr-1", "long_name": "premature deaths avoided in the receptor cities, full health "
                                                  "functions at the central parameters"}),
         "avoided_deaths_md": ("option", est, {
             "units": "deaths yr-1", "long_name": "first-order estimate: base-case marginal damages x emission "
                                                  "change of every source (central parameters)"}),
         "deaths_per_mt_co2": ("option", np.divide(avoided, cut, out=np.full(n, np.nan), where=cut > 1e-9), {
             "units": "deaths (Mt CO2)-1", "long_name": "co-benefit intensity: deaths avoided per Mt CO2 cut"})},
        coords={"option": np.arange(n), **{k: ("option", np.asarray(v)) for k, v in rows.items()}})
    ds.attrs.update({"reference_scenario": ref_name, "base_scenario": stages.base, "crf": hm.crf,
                     "timings_s": f"setup {t_setup:.2f}, carbon {t_carbon:.2f}, superpose {t_disp:.2f}, "
                                  f"health {t_health:.2f}, total {time.perf_counter() - t0:.2f}"})
    return ds


def _superpose_samples(S, q_all):
    """``(conc (sample, city), (share, q_s, order))``: the superposition's terms built once
    (:func:`engine.pipeline.superpose_terms`) for the concentrations, as :func:`engine.pipeline.superpose`
    computes them, and for the parts' emissions of :func:`_first_order`; in S's source order ``order``."""
    order = S["S"]["source"].values
    mats, share, _ = pl.superpose_terms(S, q_all, ("sample",))
    q_s = q_all["q"].reindex(source=order, fill_value=0.0).transpose("sample", "source").values
    conc = pl.superpose_arrays(np.asarray(S["S"].values, dtype=float), q_s, S_season=mats, share=share)
    return conc, (share, q_s, order)


def _first_order(share, q_s, order, md, labels, kt, q, md_c):
    """``sum_j sum_p dE_jp MD_jp`` of every sample after the first (the base) [deaths yr-1]: the
    emission change of each source in each (season, height class) part times that part's marginal
    damage (``md_part_central``, :func:`engine.marginal.damages.part_responses`), so that an action
    that moves a source's mix (one sector, at its own height and season) is weighed by where its
    emissions leave. ``share`` (n_part, sample, source) and ``q_s`` (sample, source) are in S's
    source order ``order``; ``kt``, ``q`` and ``md_c`` in ``labels``'. Without part damages: the
    change of the total times the MD of the present mix."""
    if share is None or "md_part_central" not in md:
        return np.nan_to_num((q[0] - q[1:]) * kt) @ np.nan_to_num(md_c)
    pos = {lab: k for k, lab in enumerate(labels)}
    kt = np.asarray(kt)[[pos[lab] for lab in order]]
    mdp = md["md_part_central"].reindex(source=order).values               # (source, part)
    est = np.zeros(q_s.shape[0] - 1)
    for p in range(share.shape[0]):
        e = q_s * share[p] * kt                                              # (sample, source) [kt yr-1]
        est += np.nan_to_num(e[0] - e[1:]) @ np.nan_to_num(mdp[:, p])
    return est

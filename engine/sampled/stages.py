"""The national run's stages with a leading sample axis (:func:`carbon_samples`,
:func:`concentrations`, :func:`health_samples`, chained by :func:`evaluate_chunk`) on the arrays
of :meth:`engine.sampled.model.NationalModel.tables`."""

from __future__ import annotations

import numpy as np

from engine import pipeline as pl
from engine.sampled.model import CARBON_ARGS, EMISSION_SECTORS, _plain

__all__ = ["carbon_samples", "concentrations", "health_samples", "evaluate_chunk"]


def _seasonal_place_shares(tb, mult, pm_base, res, pm):
    """``share[season] (n, 2, P)``: each place's share of its PM2.5 emitted in each season, for
    the base row (the sector basis times the multipliers) and the scenario row (the carbon
    stage's sectors); flat (days / 365) where a place emits nothing."""
    from engine.dispersion import climatology as clim

    out = {}
    n = pm.shape[0]
    keys = list(res["pm25_by_sector_t"])
    by_sector = np.stack([np.broadcast_to(res["pm25_by_sector_t"][k], res["pm25_t"].shape)[:, 0, :]
                          for k in keys], axis=1)                                              # (n, K, P)
    for s, w in tb.season_weights.items():
        base_s = mult @ (tb.season_weights_base[s] * tb.carbon_base["pm25_by_sector_t"])      # (n, P)
        wk = np.stack([np.broadcast_to(w[k], by_sector.shape[-1:]) for k in keys])            # (K, P)
        scen_s = np.einsum("nkp,kp->np", by_sector, wk)                                          # (n, P)
        num = np.stack([base_s, scen_s], axis=1)                                                # (n, 2, P)
        out[s] = np.divide(num, pm, out=np.full((n, 2, pm.shape[-1]), clim.SEASON_DAYS[s] / 365.0), where=pm > 0)
    return out


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
    args = {}
    for arg in ("level", "symbiosis", *(CARBON_ARGS.values())):
        a = np.array([[r[arg]] for r in rows], dtype=np.int64 if arg == "level" else float)[None]  # (1, R, 1)
        args[arg] = np.repeat(a, n, axis=0)
    for key, arg in CARBON_ARGS.items():
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
    co2 = {"national_co2_cut_mt": tb.carbon_base["co2_total_mt"] - tot[:, 0],
           "national_symbiosis_co2_cut_mt": tot[:, 1] - tot[:, 0] if twin else np.full(n, np.nan)}
    if tb.S is None or not tb.S:
        return co2, None, None
    pm = np.stack([pm_base, res["pm25_t"][:, 0, :]], axis=1)                  # (n, 2, P)
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
            fs = np.divide(num, pm, out=np.full(pm.shape, _flat_share(s)), where=pm > 0)
            out.append(fs[..., sp])
        share = np.stack(out)
    return co2, q, share


def _flat_share(season):
    from engine.dispersion import climatology as clim

    return clim.SEASON_DAYS[season] / 365.0


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

    Samples of one level with the same emissions (a sweep of health keys only) share one
    product: it is computed once and copied.

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
        qi = q[idx]
        if len(idx) > 1 and (qi == qi[:1]).all() and (sh is None or (sh == sh[:, :1]).all()):
            C[idx] = pl.superpose_arrays(tb.S[level], qi[:1], S_season=Ss, share=None if sh is None else sh[:, :1])
        else:
            C[idx] = pl.superpose_arrays(tb.S[level], qi, S_season=Ss, share=sh)
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

"""The carbon and emission stages with a sample axis: emission intensities of the sources
(and their seasonal / emission-height shares) and national CO2 for every sample."""

from __future__ import annotations

import numpy as np

from engine.sampled.keys import CARBON_ARGS, EMISSION_SECTORS, sector_factor_keys

__all__ = ["carbon_samples", "CARBON_BLOCK"]

#: samples per call of the carbon stage when carbon knobs are sampled (its per-place
#: intermediates, ``CARBON_BLOCK x P`` float64, stay in cache; carbon-knob benchmark, one
#: thread: 0.143 CPU s per 1,024 samples in blocks of 128, 0.172 s in one block of 1,024)
CARBON_BLOCK = 128


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

    With carbon knobs sampled the carbon stage runs on blocks of :data:`CARBON_BLOCK` samples (its
    ``(n, P)`` intermediates then stay in cache); with none, both scenario rows are bases
    evaluated once (:func:`_fixed_knobs`) and samples with the same emission-factor multipliers
    share one result.
    """
    n = len(values)
    if tb.carbon is not None and tb.carbon_scen is None and n > CARBON_BLOCK:
        parts = [_carbon_block(tb, values.iloc[s:s + CARBON_BLOCK], outputs) for s in range(0, n, CARBON_BLOCK)]
        co2 = {k: np.concatenate([c[k] for c, _, _ in parts]) for k in parts[0][0]}
        if parts[0][1] is None:
            return co2, None, None
        q = np.concatenate([x for _, x, _ in parts])
        share = None if parts[0][2] is None else np.concatenate([x for _, _, x in parts], axis=1)
        return co2, q, share
    return _carbon_block(tb, values, outputs)


def _carbon_block(tb, values, outputs):
    """:func:`carbon_samples` on one block of samples."""
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
    for j, sector in enumerate(EMISSION_SECTORS):
        k = f"emissions.pm25_multiplier.{sector}"
        if k in cols:
            mult[:, j] = values[k].to_numpy(float)
            for key in sector_factor_keys(sector, p):
                p[key] = p[key] * mult[:, j, None, None]
    # the base scenario does not depend on the scenario knobs and its PM2.5 is linear in the
    # emission factors: pm_base = sum over sectors of multiplier x (base PM2.5 of that sector
    # alone), from one evaluation at tables() time; CO2 does not depend on the factors
    pm_base = mult @ tb.carbon_base["pm25_by_sector_t"]                       # (n, P)
    if tb.carbon_scen is not None:
        u, inv = np.unique(mult, axis=0, return_inverse=True)
        if len(u) == n:
            return _fixed_knobs(tb, mult, pm_base, n)
        # samples with the same multipliers (health or dispersion keys only) share one result
        co2, q, share = _fixed_knobs(tb, u, u @ tb.carbon_base["pm25_by_sector_t"], len(u))
        co2 = {k: np.full(n, v[0]) for k, v in co2.items()}
        if q is None:
            return co2, None, None
        inv = inv.reshape(-1)
        if len(u) == 1:
            return co2, np.broadcast_to(q, (n,) + q.shape[1:]), \
                None if share is None else np.broadcast_to(share, share.shape[:1] + (n,) + share.shape[2:])
        return co2, q[inv], None if share is None else share[:, inv]
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

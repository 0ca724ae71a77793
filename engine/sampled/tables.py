"""The arrays a chunk of samples needs, built once per sweep (:class:`SampleTables`), and the
one-off evaluations behind them: the carbon stage's sector bases, the seasonal and
emission-height shares of each sector."""

from __future__ import annotations

import dataclasses

import numpy as np

from engine.sampled.keys import CARBON_ARGS, EMISSION_SECTORS, sector_factor_keys

__all__ = ["HealthTable", "SampleTables"]


@dataclasses.dataclass
class HealthTable:
    """One concentration-response function's arrays for the health stage of a sweep."""

    model: int                        # kernels.crf.MODEL_*
    params: np.ndarray                # (n_curve, n_draw, N_PARAMS) draws (or the central parameters)
    weight: np.ndarray                # (n_city, n_curve) population x baseline rate [deaths yr-1]
    pif: bool                         # avoided deaths as potential impact fraction
    mean: object = None               # engine.health.expected.DrawMeanTable, or None (draws sampled / pif)


@dataclasses.dataclass
class SampleTables:
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
    carbon_scen: dict = None          # the same for the scenario at its configured knobs (and its twin's CO2)
    source_place: np.ndarray = None   # (n_source,) place index or -1
    area_km2: np.ndarray = None       # (n_place,)
    q_fixed: np.ndarray = None        # (2, n_source) [g m-2 s-1] when the carbon stage is fixed
    co2_fixed: tuple = None           # (cut, symbiosis cut) [Mt] when fixed
    health: dict = None               # crf -> HealthTable
    health_default: dict = None
    background: np.ndarray = None     # (n_city,) total PM2.5 [ug m-3] ([health] background), or None


def _carbon_row(c, levels):
    return {"level": levels.index(c.efficiency_level), "symbiosis": float(c.symbiosis),
            **{arg: float(getattr(c, key)) for key, arg in CARBON_ARGS.items()}}


def _carbon_base(cprep, params, row):
    """The base scenario once: national CO2 [Mt] and PM2.5 [t] of each place from each sector's
    emission factor alone (a basis over :data:`EMISSION_SECTORS`: ``evaluate`` with the factors as
    an identity matrix on a leading axis)."""
    from engine.carbon.accounting import evaluate

    ns = len(EMISSION_SECTORS)
    p = dict(params)
    for j, sector in enumerate(EMISSION_SECTORS):
        for key in sector_factor_keys(sector, params):
            e = np.zeros((ns, 1, 1))
            e[j] = params[key]
            p[key] = e
    args = {arg: np.array([[row[arg]]], dtype=np.int64 if arg == "level" else float)
            for arg in ("level", "symbiosis", *(CARBON_ARGS.values()))}
    res = evaluate(cprep, p, **args)
    pm = np.broadcast_to(res["pm25_t"], (ns, 1, res["pm25_t"].shape[-1]))[:, 0, :]
    co2 = np.asarray(res["co2_mt"])
    return {"co2_total_mt": float(co2.reshape(-1, co2.shape[-1])[0].sum()),
            "pm25_by_sector_t": np.ascontiguousarray(pm)}


def _season_weights(cp, seasons, heights=None):
    """Share of each sector's emission in each superposition term, at every place.

    A term is a season (its province's climate region's share,
    :func:`engine.dispersion.climatology.seasonal_emission_shares`; ``annual``: 1), and with
    emission heights (``heights``, :class:`engine.dispersion.plumerise.EmissionHeights`) a
    (season, height class) pair, season-major: the season's share times the sector's share in
    the class. Returns ``({term: {sector: (P,)}}, {term: (len(EMISSION_SECTORS), P)})``: the
    first for the carbon stage's ``pm25_by_sector_t`` keys (``power`` and the fuel sectors), the
    second for the base scenario's basis over :data:`EMISSION_SECTORS`.
    """
    from engine.dispersion import climatology as clim
    from engine.carbon.accounting import PM_KEY

    regions = np.array([clim.climate_region_of(p) for p in cp.places["province_id"].to_numpy()])
    uniq = sorted(set(regions))
    sectors = ["power", *PM_KEY]
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

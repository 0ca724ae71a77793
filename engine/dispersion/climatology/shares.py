"""Seasonal emission shares: how much of each sector's (and each source's) annual emission is
emitted in each season, for the seasonal superposition of :func:`.spec.load_seasonal_met`."""

from __future__ import annotations

import numpy as np

from .classes import SEASON_DAYS, SEASONS
from .regions import CLIMATE_REGIONS
from .tables import read_met_table, region_season

__all__ = ["seasonal_emission_shares", "seasonal_source_shares"]


def seasonal_emission_shares(sector, region):
    """Share of a sector's annual emission emitted in each season ``{season: share}`` [1].

    .. math:: \\mathrm{share}_s = (1 - h)\\,\\frac{\\mathrm{days}_s}{365} + h\\,[s = \\mathrm{heating}]

    with h the sector's heat-driven share (engine/data/met/seasonal_emission_profiles.csv; 0 for
    a sector not listed, or where the row applies only to central-heating regions and the region
    has none). Shares sum to 1.
    """
    if region not in CLIMATE_REGIONS:
        raise ValueError(f"unknown climate region {region!r}; valid: {', '.join(CLIMATE_REGIONS)}")
    h = 0.0
    for row in read_met_table("seasonal_emission_profiles.csv"):
        if row["sector"] == sector:
            applies = row["applies_in"] == "all" or (
                row["applies_in"] == "central_heating"
                and region_season(region, SEASONS[0])["central_heating"] == "1")
            h = float(row["heat_driven_share"]) if applies else 0.0
    flat = {s: SEASON_DAYS[s] / 365.0 for s in SEASONS}
    return {s: (1.0 - h) * flat[s] + (h if s == SEASONS[0] else 0.0) for s in SEASONS}

def seasonal_source_shares(pm25_by_sector, regions):
    """Share of each source's annual PM2.5 emission emitted in each season.

    Parameters
    ----------
    pm25_by_sector : dict sector -> array (n_source,) [any mass unit yr-1]
        Annual emission of every source by sector (sector names as the carbon stage's, e.g.
        ``power``, ``heating_des``, ``heating_individual``, ``steel``).
    regions : sequence of str (n_source,)
        Climate region of each source (:func:`climate_region_of`).

    Returns
    -------
    dict season -> ndarray (n_source,) [1]
        :math:`\\sum_k e_k \\mathrm{share}_{k,s} / \\sum_k e_k` over sectors k
        (:func:`seasonal_emission_shares`); a source with no emission gets the flat shares.
        The shares of a source sum to 1 over the seasons.
    """
    regions = np.asarray(regions).astype(str)
    n = regions.shape[0]
    total = np.zeros(n)
    acc = {s: np.zeros(n) for s in SEASONS}
    cache = {}
    for sector, e in pm25_by_sector.items():
        e = np.broadcast_to(np.asarray(e, dtype=float), (n,))
        if (~np.isfinite(e) | (e < 0)).any():
            raise ValueError(f"pm25_by_sector[{sector!r}]: emissions must be finite and >= 0")
        total += e
        for r in np.unique(regions):
            if (sector, r) not in cache:
                cache[(sector, r)] = seasonal_emission_shares(sector, r)
            sel = regions == r
            for s in SEASONS:
                acc[s][sel] += e[sel] * cache[(sector, r)][s]
    flat = {s: SEASON_DAYS[s] / 365.0 for s in SEASONS}
    return {s: np.where(total > 0, acc[s] / np.where(total > 0, total, 1.0), flat[s]) for s in SEASONS}

"""The met-site settings tables of engine/data/met: surface characteristics by AERMET season and
moisture, and each climate region's seasons (temperature, AERMET season, central heating)."""

from __future__ import annotations

import csv
from pathlib import Path

from .classes import SEASONS
from .regions import CLIMATE_REGIONS

__all__ = ["MET_DATA_DIR", "read_met_table", "region_season", "surface_characteristics"]

#: folder of the met tables (engine/data/met)

MET_DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "met"


def read_met_table(name):
    """Rows (dicts of str) of the CSV table ``name`` of :data:`MET_DATA_DIR`, ``#`` lines skipped."""
    path = MET_DATA_DIR / name
    with open(path) as fh:
        rows = [r for r in csv.DictReader(ln for ln in fh if not ln.startswith("#"))]
    return rows


def surface_characteristics(region, season):
    """Met-site albedo [1], Bowen ratio [1] and z0 [m] of a region and season.

    From AERMET's user's guide tables for grassland (engine/data/met/aermet_surface_characteristics.csv)
    at the AERMET season and moisture of engine/data/met/climate_region_seasons.csv.
    """
    rs = region_season(region, season)
    row = next(r for r in read_met_table("aermet_surface_characteristics.csv")
               if r["aermet_season"] == rs["aermet_season"])
    return {"albedo": float(row["albedo"]), "bowen_ratio": float(row[f"bowen_ratio_{rs['moisture']}"]),
            "roughness_length_m": float(row["roughness_length_m"])}


def region_season(region, season):
    """The row of engine/data/met/climate_region_seasons.csv of a region and season (ValueError if none)."""
    for r in read_met_table("climate_region_seasons.csv"):
        if r["region"] == region and r["season"] == season:
            return r
    raise ValueError(f"no met-site settings for region {region!r}, season {season!r}; regions: "
                     f"{', '.join(CLIMATE_REGIONS)}; seasons: {', '.join(SEASONS)}")

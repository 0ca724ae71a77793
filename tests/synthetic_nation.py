"""A small synthetic nation for the run tests: 4 cities in two provinces, fixed emissions.

Province 130000 (a disc of 6,000 km2) has a central city and a border city; province 410000
(5,000 km2) likewise. Met: the small STAR table ``tests/data/star_small.txt`` (B, D, F
classes, 4 directions, 2 speeds) so that kernels take well under a second.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.dataset import NationalData
from engine.health import POPULATION_COLUMNS

DATA = Path(__file__).parent / "data"
STAR = DATA / "star_small.txt"

CITIES = pd.DataFrame({
    "city_id": [130100, 130200, 410100, 410200],
    "name": ["Central-A", "Border-A", "Central-B", "Border-B"],
    "province_id": [130000, 130000, 410000, 410000],
    "province": ["PA", "PA", "PB", "PB"],
    "centroid_lat": [38.0, 38.34, 35.0, 34.70],
    "centroid_lon": [115.0, 115.0, 114.0, 114.05],
    "area_km2": [300.0, 200.0, 250.0, 150.0],
    "population": [3_000_000, 1_000_000, 12_000_000, 500_000],
})
PROVINCES = pd.DataFrame({
    "province_id": [130000, 410000], "name": ["PA", "PB"], "name_en": ["Province A", "Province B"],
    "centroid_lat": [38.0, 35.0], "centroid_lon": [115.0, 114.0], "area_km2": [6000.0, 5000.0],
    "population": [8_000_000, 20_000_000],
})


def nation():
    c = CITIES.set_index("city_id", drop=True)
    p = PROVINCES.set_index("province_id")
    rop = p[["area_km2"]] - c.groupby("province_id")[["area_km2"]].sum()
    return NationalData(cities=c, provinces=p, rop=rop, grids=pd.DataFrame({"grid_region": ["G"]}), source="synthetic")


@dataclasses.dataclass
class FakeCarbon:
    cities: pd.DataFrame
    rop: pd.DataFrame
    national: pd.DataFrame


def carbon_fn(scale=1.0, rop_scale=1.0):
    """A carbon stage with fixed PM2.5 intensities [g m-2 yr-1]: 'base' and 'cut' scenarios."""
    def fn(cfg, data):
        rows, rrows = [], []
        for s, f in (("base", 1.0), ("cut", 0.7)):
            for i, cid in enumerate(CITIES.city_id):
                q = scale * f * (10.0 + 2.0 * i)
                rows.append({"scenario": s, "city_id": cid, "co2_t": 1e6 * f * (1 + i),
                             "pm25_t": q * CITIES.area_km2[i], "pm25_intensity_g_m2_yr": q})
            for j, pid in enumerate(PROVINCES.province_id):
                rrows.append({"scenario": s, "province_id": pid, "co2_t": 5e6 * f, "pm25_t": 0.0,
                              "pm25_intensity_g_m2_yr": rop_scale * scale * (2.0 + j) * (0.9 if s == "cut" else 1.0)})
        c = pd.DataFrame(rows)
        names = list(cfg.scenario_names)
        c = c[c.scenario.isin(names)]
        r = pd.DataFrame(rrows)
        r = r[r.scenario.isin(names)]
        nat = c.groupby("scenario", as_index=False)[["co2_t"]].sum().rename(columns={"co2_t": "co2_t_total"})
        return FakeCarbon(c, r, nat)
    return fn


def age_population_fn(data, city_ids):
    """Population by age: each city's population split evenly over the 17 age groups."""
    pop = data.cities.loc[list(city_ids), "population"].astype(float)
    return pd.DataFrame(np.repeat(pop.values[:, None] / 17.0, 17, axis=1), index=list(city_ids),
                        columns=list(POPULATION_COLUMNS))


def write_configs(folder, *, draws=20, extra_met=None, workers=1, urban=False, emission_heights="ground"):
    """Two scenario files (base, cut) using the small STAR met; returns their paths.

    ``urban``: ``[dispersion] urban`` written into the files (default false: the synthetic
    nations carry no urban_population, which the default "auto" needs); None leaves it out.
    ``emission_heights`` defaults to ``"ground"`` (one height class: the synthetic carbon stage
    has no PM2.5 by sector, so every source would be all ground anyway, and the stack classes'
    kernels would only cost time); tests of the height classes pass ``"sector"``.
    The ``[dispersion]`` table comes last.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    met = extra_met if extra_met is not None else f'star_file = "{STAR}"'
    common = f"""
[met]
{met}

[health]
draws = {draws}

[run]
workers = {workers}
""" + f'\n[dispersion]\nemission_heights = "{emission_heights}"\n' + (
        "" if urban is None else f"urban = {str(urban).lower()}\n")
    paths = []
    for name, level in (("base", "none"), ("cut", "fyp")):
        p = folder / f"{name}.toml"
        p.write_text(f'[scenario]\nname = "{name}"\n\n[carbon]\nefficiency_level = "{level}"\n' + common)
        paths.append(p)
    return paths

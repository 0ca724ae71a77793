"""Regenerate the embedded health data from the project's research folder (``--shared DIR``).

Run from the repository root::

    python engine/data/build_health_data.py [--shared DIR]

Writes (each CSV starts with ``#`` lines naming its source):

* ``engine/data/health/ier_draws_gbd2010.csv``      GBD 2010 IER parameter draws (1000 per stratum)
* ``engine/data/health/gemm_params_2018.csv``       Burnett 2018 GEMM fit parameters
* ``engine/data/health/loglinear_params.csv``       Krewski 2009 log-linear coefficient (BenMAP)
* ``engine/data/health/baseline_rates_china_2010.csv``  China 2010 death rates by cause and age
* ``engine/data/health/china_age_2010.csv``         China 2010 census population by age group
* ``engine/data/city_age_2010.csv``                 population by 5-year age group per city and province
* ``tests/data/ier_rr_testvectors_gbd2010.csv``     published IER relative-risk test vectors

Only this script needs ``openpyxl`` (to read the census workbook); the package never does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
HEALTH_OUT = ROOT / "engine" / "data" / "health"

AGE_GROUPS = ("0_4", "5_9", "10_14", "15_19", "20_24", "25_29", "30_34", "35_39", "40_44",
              "45_49", "50_54", "55_59", "60_64", "65_69", "70_74", "75_79", "80plus")

#: causes as named in the shared research tables -> engine names
CAUSE_NAMES = {"IHD": "ihd", "Stroke": "stroke", "COPD": "copd", "LC": "lc", "LRI": "lri",
               "ALRI": "lri", "NCD+LRI": "ncd_lri"}


def _write(df, path, header_lines, float_format=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        for line in header_lines:
            fh.write(f"# {line}\n")
        df.to_csv(fh, index=False, float_format=float_format, lineterminator="\n")
    print(f"wrote {path.relative_to(ROOT)} ({len(df)} rows)")


def _age_label(lo):
    """Engine age-group label from a lower age bound (80 -> 80plus)."""
    lo = int(lo)
    return "80plus" if lo >= 80 else f"{lo}_{lo + 4}"


def build_ier(shared):
    src = shared / "data" / "health" / "ier_param_draws_gbd2010.csv"
    d = pd.read_csv(src, dtype={"age": str})
    d["cause"] = d["cause"].map(CAUSE_NAMES)
    d["age"] = d["age"].map(lambda a: "all" if a == "all" else _age_label(a))
    d = d[["cause", "age", "sim", "alpha", "gamma", "delta", "zcf"]]
    # raw text of the numbers is kept: read back as float64 they are the published values
    raw = pd.read_csv(src, dtype=str)
    for c in ("alpha", "gamma", "delta", "zcf"):
        d[c] = raw[c]
    _write(d, HEALTH_OUT / "ier_draws_gbd2010.csv", [
        "GBD 2010 integrated exposure-response (IER) parameter draws, Burnett et al. 2014 EHP 122:397.",
        "1000 jointly fitted draws (sim) per cause x age stratum; RR = 1 + alpha*(1-exp(-gamma*(z-zcf)^delta)), z > zcf.",
        "gamma is Burnett's gamma (the original file's 'beta'); age 'all' = the all-age curve; 80plus = 80+.",
        "Source: evanliu3594/PM2.5-attr-mort @ca48c506 Data/CRF_coefficients/IER2010_parameters.csv,",
        "identified with IHME GHDx IHME_CRCurve_parameters.csv (see engine/data/health/README.md).",
        "Values copied verbatim; only columns renamed. Built by engine/data/build_health_data.py.",
    ])


def build_gemm(shared):
    g = pd.read_csv(shared / "data" / "health" / "gemm_params.csv")
    g["cohort"] = g["cohort_set"].map({"including_china": "with_china", "excluding_china": "without_china"})
    g["cause"] = g["cause"].map(CAUSE_NAMES)
    g["age"] = g["age_group"].map(lambda a: "25plus" if a == "25+" else _age_label(a.split("-")[0].rstrip("+")))
    g = g[["cohort", "cause", "age", "theta", "theta_se", "alpha", "mu", "nu", "zcf"]]
    _write(g, HEALTH_OUT / "gemm_params_2018.csv", [
        "Global Exposure Mortality Model (GEMM), Burnett et al. 2018 PNAS 115:9592, fit parameters.",
        "z = max(0, PM2.5 - zcf); RR = exp(theta * ln(1 + z/alpha) / (1 + exp(-(z - mu)/nu))).",
        "cohort with_china = including the Chinese male cohort; age 25plus = the all-adult function.",
        "Source: mszyszkowicz/DataGEMM @c0640d86 'GEMM Calculator (PNAS)_ab.xlsx', sheet 'GEMM fit parameters'",
        "(calculator's '30-35' row = 30-34). Built by engine/data/build_health_data.py.",
    ])


def build_loglinear():
    # BenMAPCE/BenMAP-CE @14ef628 BenMAP/Tools/GBDRollbackKrewskiFunction.cs lines 25-26 and 41:
    # beta = ln(1.06)/10 per ug m-3 (Krewski et al. 2009, ACS all-cause, Table 11), SE as BenMAP.
    df = pd.DataFrame([{"function": "krewski2009", "cause": "ncd_lri", "min_age": 30,
                        "beta": 0.005826891, "beta_se": 0.000962763, "zcf": 0.0}])
    _write(df, HEALTH_OUT / "loglinear_params.csv", [
        "Log-linear concentration-response, BenMAP form: RR = exp(beta * max(0, z - zcf)).",
        "krewski2009: Krewski et al. 2009 (HEI Research Report 140), ACS cohort, all-cause, ages 30+;",
        "beta = ln(1.06)/10 per ug m-3, SE as in BenMAPCE/BenMAP-CE @14ef628",
        "BenMAP/Tools/GBDRollbackKrewskiFunction.cs lines 25-26. zcf = 0 (BenMAP applies no threshold).",
        "Applied to NCD+LRI baseline rates as the available proxy of non-accidental deaths.",
    ])


def _census_age(shared):
    a = pd.read_csv(shared / "data" / "health" / "china_age_2010.csv")
    lo = a["age_group"].str.extract(r"^(\d+)")[0].astype(int)
    pop = a["population_census2010"].astype(np.int64)
    return lo, pop


def build_rates(shared):
    b = pd.read_csv(shared / "data" / "health" / "baseline_mortality_china.csv")
    b = b[(b["dataset"] == "evan_GBD2019") & (b["year"] == 2010) & ~b["age_group"].str.contains("derived")]
    b = b[b["cause"].isin(["IHD", "Stroke", "COPD", "LC", "LRI", "NCD+LRI"])].copy()
    lo_c, pop_c = _census_age(shared)
    w80 = {  # census 2010 weights of the GBD 80-84, 85-89, 90-94, 95+ bands
        80: pop_c[lo_c == 80].sum(), 85: pop_c[lo_c == 85].sum(),
        90: pop_c[lo_c == 90].sum(), 95: pop_c[lo_c >= 95].sum()}
    rows = []
    for cause, g in b.groupby("cause"):
        g = g.set_index("age_lo")["rate_per_100k"]
        for lo in range(0, 80, 5):
            rows.append((CAUSE_NAMES[cause], _age_label(lo), float(g.loc[lo])))
        # 80+ = census-weighted mean of the four GBD bands (identity: deaths add, populations add)
        r80 = sum(w80[k] * g.loc[k] for k in w80) / sum(w80.values())
        rows.append((CAUSE_NAMES[cause], "80plus", float(r80)))
    df = pd.DataFrame(rows, columns=["cause", "age_group", "rate_per_100k"])
    order = {c: i for i, c in enumerate(["ihd", "stroke", "copd", "lc", "lri", "ncd_lri"])}
    df = df.sort_values(["cause", "age_group"], key=lambda s: s.map(order) if s.name == "cause"
                        else s.map({a: i for i, a in enumerate(AGE_GROUPS)})).reset_index(drop=True)
    _write(df, HEALTH_OUT / "baseline_rates_china_2010.csv", [
        "China, both sexes, year 2010, deaths per 100,000 population by cause and 5-year age group.",
        "Source: GBD 2019 round, evanliu3594/PM2.5-attr-mort @8feb935 Data/GBD_incidence_China_2000-2019.csv",
        "(built by its Code/Process_IHME_Data.R from IHME-GBD_2019_DATA-25efb80c-1.csv).",
        "80plus = mean of the GBD 80-84, 85-89, 90-94, 95+ rates weighted by the 2010 census population.",
        "lri 0_4 is per 100,000 children under 5 (all lower-respiratory infections).",
    ], float_format="%.6g")


def build_china_age(shared):
    lo, pop = _census_age(shared)
    groups = [_age_label(min(v, 80)) for v in lo]
    df = pd.DataFrame({"age_group": groups, "population": pop}).groupby("age_group", sort=False).sum()
    df = df.reindex(list(AGE_GROUPS)).reset_index()
    _write(df, HEALTH_OUT / "china_age_2010.csv", [
        "China (31 mainland provinces) 6th population census, 1 Nov 2010, population by age group;",
        "80plus = 80-84 + 85-89 + 90-94 + 95-99 + 100+. Total 1,332,810,869.",
        "Source: NBS Tabulation on the 2010 Population Census of the PRC, Table 3-1 (as transcribed in",
        "the research data's health/china_age_2010.csv). Built by engine/data/build_health_data.py.",
    ])


# census workbook column positions (0-based) of the age counts, male/female interleaved
_AGE_COLS = {  # engine group -> list of workbook column indices
    "0_4": [19, 20, 21, 22]}
for _i, _g in enumerate(AGE_GROUPS[1:16]):
    _AGE_COLS[_g] = [23 + 2 * _i, 24 + 2 * _i]
_AGE_COLS["80plus"] = [53, 54, 55, 56]


def build_city_age(shared):
    """Population by age for the 654 candidate cities and the 31 provinces.

    City units follow the research data's cities/provenance/build_cities.py: municipality proper = the
    province's 01xx districts (code % 100 <= 20); prefecture-level city proper = its districts
    (code % 100 <= 20, name ending in 区), or the whole prefecture if it had none in 2010;
    county-level city = its own row.
    """
    x = pd.read_excel(shared / "data" / "cities" / "provenance" / "census_county_2010_v1.xlsx", header=0)
    heads = list(x.columns)
    assert heads[19].startswith("0岁") and heads[55].startswith("85岁及以上"), "census layout changed"
    ages = pd.DataFrame({g: x.iloc[:, cols].apply(pd.to_numeric, errors="coerce").sum(axis=1, min_count=len(cols))
                         for g, cols in _AGE_COLS.items()})
    t = pd.DataFrame({"name": x.iloc[:, 0], "code": x.iloc[:, 1], "total": x.iloc[:, 2]}).join(ages)
    t = t[t["name"].notna() & t["code"].notna()].copy()
    t["name"] = t["name"].astype(str).str.strip().str.replace("巿", "市")  # source typo U+5DFF
    t["code"] = t["code"].astype(int)
    t = t.set_index("code")
    prov = t[t.index % 10000 == 0]
    pref = t[(t.index % 100 == 0) & (t.index % 10000 != 0)]
    cty = t[t.index % 100 != 0]

    cand = pd.read_csv(shared / "data" / "cities" / "cities_candidates.csv")
    rows = []
    for _, c in cand.iterrows():
        code, level = int(c["code2010"]), c["admin_level"]
        p2 = code // 10000
        if level == "municipality_proper":
            units = cty[(cty.index // 10000 == p2) & ((cty.index // 100) % 100 == 1) & (cty.index % 100 <= 20)]
        elif level == "prefecture_city_proper":
            units = cty[(cty.index // 100 == code // 100) & (cty.index % 100 <= 20) & cty["name"].str.endswith("区")]
            if len(units) == 0:
                units = pref.loc[[code]]
        else:
            units = cty.loc[[code]]
        if len(units) != int(c["n_units_2010"]) and not (len(units) == 1 and int(c["n_units_2010"]) == 0):
            raise SystemExit(f"unit count mismatch for {code} {c['name']}: {len(units)} vs {c['n_units_2010']}")
        s = units[list(AGE_GROUPS)].sum()
        if units[list(AGE_GROUPS)].isna().any().any():
            raise SystemExit(f"missing age counts in a unit of {code} {c['name']}")
        rows.append({"region_type": "city", "region_id": code, "name": c["name"],
                     "province_id": int(c["province_code"]), "total_census": int(units["total"].sum()),
                     **{f"pop_{g}": int(s[g]) for g in AGE_GROUPS}})
    for code, p in prov.iterrows():
        rows.append({"region_type": "province", "region_id": code, "name": p["name"], "province_id": code,
                     "total_census": int(p["total"]), **{f"pop_{g}": int(p[g]) for g in AGE_GROUPS}})
    df = pd.DataFrame(rows)
    pops = df[[f"pop_{g}" for g in AGE_GROUPS]].sum(axis=1)
    off = df[pops != df["total_census"]]
    tot = df[df.region_type == "province"][[f"pop_{g}" for g in AGE_GROUPS]].to_numpy().sum()
    print(f"provinces: age sum {tot:,}; rows whose age sum differs from the census total: "
          f"{off[['region_id', 'name', 'total_census']].assign(age_sum=pops[off.index]).values.tolist()}")
    _write(df, ROOT / "engine" / "data" / "city_age_2010.csv", [
        "Population by 5-year age group (6th census, 1 Nov 2010) for the 654 candidate cities",
        "(region_type=city, region_id = 2010 admin code, as code2010 in the cities table) and the 31",
        "provinces (region_type=province, region_id = province code). Rest of province = province minus",
        "the sum of its selected cities. City = sum of its 2010 census units (urban districts of a",
        "prefecture-level city or municipality; the county-level city itself), as in the cities table.",
        "total_census = the census total of the same units (the age columns sum to it except where the",
        "source has a typo; see engine/data/health/README.md).",
        "Source: github leiii/census (MIT) census_county_2010_v1.xlsx, age columns 0 .. 85+ (male+female);",
        "cite Dong, Du & Liu 2022, SSRN 4049338. Built by engine/data/build_health_data.py.",
    ])


def build_testvectors(shared):
    t = pd.read_csv(shared / "data" / "health" / "ier_rr_testvectors_gbd2010.csv", dtype=str)
    t = t[["cause", "age_group", "pm25", "rr_mean", "rr_p2_5", "rr_p97_5"]]
    _write(t, ROOT / "tests" / "data" / "ier_rr_testvectors_gbd2010.csv", [
        "IER relative risk over the 1000 GBD 2010 draws: mean, 2.5 % and 97.5 % (6 significant digits).",
        "Source: the research data's health/ier_rr_testvectors_gbd2010.csv; identical to evanliu3594/PM2.5-attr-mort",
        "Data/RR_index/IER2010_Lookup_Table_Build_220601.xlsx (independent computation from the same draws).",
    ])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared",
                    help="the research folder with data/health and data/cities")
    args = ap.parse_args(argv)
    if not (args.shared / "data" / "health").is_dir():
        raise SystemExit(f"{args.shared}/data/health not found; pass --shared")
    build_ier(args.shared)
    build_gemm(args.shared)
    build_loglinear()
    build_rates(args.shared)
    build_china_age(args.shared)
    build_city_age(args.shared)
    build_testvectors(args.shared)


if __name__ == "__main__":
    main()

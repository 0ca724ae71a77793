"""Calibrate the carbon parameters marked "calibrated" so the default data set reproduces the
paper's national totals for FYP-Efficiency-plus-Symbiosis (Ramaswami et al. 2017, Tables 1-2).

Usage: ``python -m engine.carbon.calibrate`` (rewrites the calibrated rows of
``engine/data/carbon_parameters.csv``). Each calibrated parameter has one target:

=====================================  =============================================
parameter                              target (FYP-Efficiency-plus-Symbiosis)
=====================================  =============================================
k_eff_steel, _cement, _industrial_     Table 1 rows 66.3, 44.3, 93, 11.6, 197 Mt
boiler, _buildings, _other_industry
wh_scale_high                          A: 14.6 TWh from ORC
sink_b_share                           B: 6.2 Mtce displaced in the four sink industries
wh_scale_medium                        C + C': 22.9 + 12.5 Mt
des_waste_heat_share                   C: 7.3 Mtce in existing DES
urban_core_share                       D: 48.3 Mtce displaced by new 4GDH
wh_scale_low                           E: 203 Mt (unutilised heat as coal)
fly_ash_t_per_t_coal                   54 Mt cement avoided by fly ash
fly_ash_cement_energy_displacement     9.2 Mt
slag_cement_energy_displacement        39.4 Mt (with 19.57 TWh of slag-heat power)
power_nonelectric_fuel_share           national 2010 base CO2 8,800 Mt
=====================================  =============================================
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from engine.carbon.accounting import run_carbon
from engine.carbon.parameters import load_parameters
from engine.config import load_config
from engine.data.dataset import load_dataset

TARGETS = {
    "steel": 66.3, "cement": 44.3, "industrial_boiler": 93.0, "buildings": 11.6, "other_industry": 197.0,
    "high_grade_orc_twh": 14.6, "b_mtce": 6.2, "c_plus_c_mt": 22.9 + 12.5, "c_mtce": 7.3, "d_mtce": 48.3, "d_mt": 152.0, "e_mt": 203.0,
    "fly_ash_mt": 54.0, "national_base": 8800.0, "fly_ash_co2": 9.2, "slag_co2": 39.4,
}
INITIAL = {
    "k_eff_steel": 0.5, "k_eff_cement": 0.5, "k_eff_industrial_boiler": 0.7, "k_eff_buildings": 0.1,
    "k_eff_other_industry": 1.0, "wh_scale_high": 1.0, "wh_scale_medium": 1.0, "wh_scale_low": 1.0,
    "sink_b_share": 0.05, "urban_core_share": 0.5, "fly_ash_t_per_t_coal": 0.2,
    "fly_ash_cement_energy_displacement": 0.3, "slag_cement_energy_displacement": 0.2,
    "power_nonelectric_fuel_share": 0.05, "des_waste_heat_share": 0.5,
}
DOC = {
    "k_eff_steel": "Table 1 steel 66.3 Mt", "k_eff_cement": "Table 1 cement 44.3 Mt",
    "k_eff_industrial_boiler": "Table 1 industrial boilers 93 Mt", "k_eff_buildings": "Table 1 buildings 11.6 Mt",
    "k_eff_other_industry": "Table 1 other key industry 197 Mt", "wh_scale_high": "Table 2 ORC 14.6 TWh",
    "wh_scale_medium": "Table 2 cascades 2+3: 22.9 + 12.5 Mt", "wh_scale_low": "Table 2 unutilised low-grade 203 Mt (coal)",
    "sink_b_share": "Table 2 cascade 1: 6.2 Mtce", "urban_core_share": "Table 2 new 4GDH 48.3 Mtce",
    "fly_ash_t_per_t_coal": "Table 2 fly ash 54 Mt cement", "fly_ash_cement_energy_displacement": "Table 2 fly ash 9.2 Mt",
    "slag_cement_energy_displacement": "Table 2 slag 39.4 Mt",
    "power_nonelectric_fuel_share": "national 2010 base CO2 8,800 Mt (R17 Methods)",
    "des_waste_heat_share": "Table 2 cascade 2: 7.3 Mtce in existing DES",
}
UNITS = {"des_waste_heat_share": "share of existing DES heat", "fly_ash_t_per_t_coal": "t fly ash / t coal", "sink_b_share": "share of sink-industry fuel",
         "urban_core_share": "share of urban floor area"}


def _items(params, cfg, data):
    res = run_carbon(cfg, data, params=params)
    n = res.national.set_index("item")
    co2 = n["co2_mt"].copy()
    co2["base_national"] = res.cities["co2_base_t"].sum() / 1e6 + res.rop["co2_base_t"].sum() / 1e6
    return co2, n["quantity"]


def calibrate(rounds=30):
    data = load_dataset()
    cfg = load_config()
    cfg = cfg.replace(scenarios=tuple(s for s in cfg.scenarios if s[0].name == "fyp_symbiosis"))
    p = load_parameters()
    p.update({k: v for k, v in INITIAL.items()})

    def ratio_update(key, got, want):
        if got > 0:
            p[key] = p[key] * want / got

    for _ in range(rounds):
        co2, q = _items(p, cfg, data)
        for s in ("steel", "cement", "industrial_boiler", "buildings", "other_industry"):
            ratio_update(f"k_eff_{s}", co2[s], TARGETS[s])
        ratio_update("wh_scale_high", q["high_grade_orc"], TARGETS["high_grade_orc_twh"])
        ratio_update("sink_b_share", q["medium_cascade1_industry"], TARGETS["b_mtce"])
        ratio_update("wh_scale_medium", co2["medium_cascade2_existing_des"] + co2["medium_cascade3_orc"],
                     TARGETS["c_plus_c_mt"])
        ratio_update("des_waste_heat_share", q["medium_cascade2_existing_des"], TARGETS["c_mtce"])
        p["des_waste_heat_share"] = min(p["des_waste_heat_share"], 1.0)
        ratio_update("urban_core_share", q["low_grade_new_4gdh"], TARGETS["d_mtce"])
        p["urban_core_share"] = min(p["urban_core_share"], 1.0)
        ratio_update("wh_scale_low", co2["unutilized_low_grade_coal"] + co2["low_grade_new_4gdh"],
                     TARGETS["e_mt"] + TARGETS["d_mt"])
        # non-electric power-plant CO2 is linear in its share: solve for the national base
        per_share = data.provinces["power_generation_twh"].sum() * p["heat_rate_none"] * 1e-3 * p["power_co2_t_per_t_coal"]
        nonel = p["power_nonelectric_fuel_share"] * per_share
        p["power_nonelectric_fuel_share"] = max(0.0, (nonel + TARGETS["national_base"] - co2["base_national"]) / per_share)
        ratio_update("fly_ash_t_per_t_coal", q["fly_ash_cement"], TARGETS["fly_ash_mt"])
        ratio_update("fly_ash_cement_energy_displacement", co2["fly_ash_cement"], TARGETS["fly_ash_co2"])
        # the slag line = cement energy displaced + slag-heat electricity (not calibrated)
        elec_co2 = q["steel_slag_cement"] * p["slag_electricity_mwh_per_t"] * p["heat_rate_fyp"] * 2.2e-3
        ratio_update("slag_cement_energy_displacement", co2["steel_slag_cement"] - elec_co2,
                     TARGETS["slag_co2"] - elec_co2)
    return p, _items(p, cfg, data)


def write(p, path=None):
    path = Path(path) if path else Path(str(resources.files("engine") / "data" / "carbon_parameters.csv"))
    lines = [ln for ln in path.read_text().splitlines() if not ln.split(",")[0] in INITIAL]
    for k in INITIAL:
        lines.append(f'{k},{p[k]:.6g},{UNITS.get(k, "-")},"calibrated (engine/carbon/calibrate.py): {DOC[k]}"')
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)


def main():
    p, (co2, q) = calibrate()
    write(p)
    for k in INITIAL:
        print(f"{k:40s} {p[k]:.6g}")
    print(co2.round(2).to_string())


if __name__ == "__main__":
    main()

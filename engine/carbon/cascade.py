"""Energy cascading A-E (Ramaswami et al. 2017, Methods c; Table 2), per city, vectorised.

Waste heat is a share of each industry's primary fuel (after efficiency), by grade; only the
available part (high 100 %, medium 25 %, low 80 % by default) is exchanged:

* **A** high-grade heat -> electricity by ORC (``orc_efficiency``);
* **B** medium-grade heat -> the four sink industries (food/beverage, textiles, pulp & paper,
  chemicals), up to their medium-temperature heat demand;
* **C** remaining medium heat -> existing district heating (DES), up to its heat demand;
* **C'** medium heat still left -> electricity by ORC;
* **D** low-grade heat -> new 4th-generation DES in the urban core not covered by DES, displacing
  individual stoves and boilers;
* **E** low-grade heat left over: reported as coal or gas it could displace in future buildings.

Heat quantities are in Mtce of heat; fuel displaced = heat / efficiency of the displaced boiler.
Seasonality (``seasonality_fraction`` s): the existing DES (C) can use only s of the annual
medium-grade flow (it has no storage); new 4th-generation DH (D) integrates seasonal thermal
storage (Lund et al. 2014, the paper's ref. 13) and industrial sinks and ORC run all year, so
they are not limited. Medium heat the DES cannot take goes to ORC (C').
"""

from __future__ import annotations

import numpy as np

__all__ = ["waste_heat", "cascade"]

_SINKS = ("chemicals", "food_beverage", "textiles", "pulp_paper")


def waste_heat(fuels, params, avail_high, avail_medium, avail_low):
    """Available waste heat by grade [Mtce of heat], shape of the fuel arrays."""
    p = params
    high = (p["wh_high_steel"] * fuels["steel"] + p["wh_high_cement"] * fuels["cement"]
            + p["wh_high_chemicals"] * fuels["chemicals"] + p["wh_high_other_key"] * fuels["other_key"])
    med = (p["wh_med_steel"] * fuels["steel"] + p["wh_med_cement"] * fuels["cement"]
           + p["wh_med_chemicals"] * fuels["chemicals"] + p["wh_med_other_key"] * fuels["other_key"])
    low = (p["wh_low_steel"] * fuels["steel"] + p["wh_low_cement"] * fuels["cement"]
           + p["wh_low_chemicals"] * fuels["chemicals"] + p["wh_low_other_key"] * fuels["other_key"]
           + p["wh_low_sink_industries"] * (fuels["food_beverage"] + fuels["textiles"] + fuels["pulp_paper"])
           + p["wh_low_industrial_boiler"] * fuels["industrial_boiler"])
    return (high * p["wh_scale_high"] * avail_high,
            med * p["wh_scale_medium"] * avail_medium,
            low * p["wh_scale_low"] * avail_low)


def cascade(fuels, act, params, *, enabled, seasonality, avail_high, avail_medium, avail_low,
            orc_efficiency, is_city):
    """Run cascades A-E. Scenario arguments broadcast as ``(..., S, 1)``; ``is_city`` ``(P,)``.

    Returns a dict of ``(..., S, P)`` arrays: ``orc_high_twh``, ``disp_b_mtce``, ``disp_c_mtce``,
    ``orc_medium_twh``, ``disp_d_mtce``, ``floor_d_m2``, ``unused_low_heat_mtce``,
    ``source_sink_ratio``, ``fully_supplied`` and the per-sink-industry fuel displaced.
    """
    p = params
    city = np.asarray(is_city, dtype=float)
    on = np.asarray(enabled, dtype=float) * city
    W_h, W_m, W_l = waste_heat(fuels, p, avail_high, avail_medium, avail_low)
    # city indicators use the potential, whether or not the scenario exchanges heat
    pot_m, pot_l = W_m * city, W_l * city
    W_h, W_m, W_l = W_h * on, W_m * on, W_l * on
    kwh = p["kgce_per_kwh_heat"]  # 1 Mtce of heat = 1/0.1229 TWh

    # A: high-grade heat -> electricity
    orc_a = W_h * orc_efficiency / kwh
    # B: medium heat -> sink industries (their medium-temperature process heat)
    sink_fuel = sum(fuels[s] for s in _SINKS)
    sink_b = p["sink_b_share"] * sink_fuel * p["eta_industrial_boiler"]
    used_b = np.minimum(W_m, sink_b)
    disp_b = used_b / p["eta_industrial_boiler"]
    rem_m = W_m - used_b
    # C: existing DES (seasonal)
    # only part of the 2010 DES heat can be replaced (networks fed by CHP, far from industry)
    sink_c = fuels["heating_des"] * p["eta_des_boiler"] * p["des_waste_heat_share"]
    used_c = np.minimum(seasonality * rem_m, sink_c)
    disp_c = used_c / p["eta_des_boiler"]
    # C': what is left of the medium heat -> electricity
    orc_c = (rem_m - used_c) * orc_efficiency / kwh
    # D: low-grade heat -> new 4GDH in the urban core not yet covered by DES (seasonal)
    urban, des = act["urban_floor_area_m2"], act["des_floor_area_m2"]
    indiv_floor = np.maximum(urban - des, 0.0)
    core_uncovered = np.maximum(p["urban_core_share"] * urban - des, 0.0)
    core_frac = np.divide(core_uncovered, indiv_floor, out=np.zeros_like(urban), where=indiv_floor > 0)
    fuel_d = fuels["heating_individual"] * core_frac
    sink_d = fuel_d * p["eta_individual_heating"]
    # 4th-generation DH integrates seasonal thermal storage (Lund et al. 2014, R17 ref. 13), so
    # seasonality limits only the existing DES (C); see docs/commands.md, "Seasonality"
    used_d = np.minimum(W_l, sink_d)
    disp_d = used_d / p["eta_individual_heating"]
    fuel_per_m2 = np.divide(fuels["heating_individual"], indiv_floor,
                            out=np.zeros(np.broadcast(fuels["heating_individual"], indiv_floor).shape),
                            where=indiv_floor > 0)
    floor_d = np.divide(disp_d, fuel_per_m2, out=np.zeros_like(disp_d), where=fuel_per_m2 > 0)
    # E: low-grade heat left (as fuel of a future boiler it could displace)
    unused = (W_l - used_d) / p["eta_future_boiler"]
    # city indicators (annual basis): can waste heat cover all building heating?
    heat_demand = fuels["heating_des"] * p["eta_des_boiler"] + fuels["heating_individual"] * p["eta_individual_heating"]
    sources = pot_m + pot_l
    sinks = heat_demand + sink_b
    ratio = np.divide(sources, sinks, out=np.full(np.broadcast(sources, sinks).shape, np.nan), where=sinks > 0)
    pot_rem_m = pot_m - np.minimum(pot_m, sink_b)
    fully = (pot_rem_m + pot_l >= heat_demand) & (heat_demand > 0) & (city > 0)
    share = {s: np.divide(fuels[s], sink_fuel, out=np.zeros(np.broadcast(fuels[s], sink_fuel).shape),
                          where=sink_fuel > 0) for s in _SINKS}
    return {
        "orc_high_twh": orc_a, "disp_b_mtce": disp_b, "disp_c_mtce": disp_c, "orc_medium_twh": orc_c,
        "disp_d_mtce": disp_d, "floor_d_m2": floor_d, "unused_low_heat_mtce": unused,
        "source_sink_ratio": ratio, "fully_supplied": fully,
        "disp_b_by_sink": {s: disp_b * share[s] for s in _SINKS},
        "available_high_mtce": W_h, "available_medium_mtce": W_m, "available_low_mtce": W_l,
    }

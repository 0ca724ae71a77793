"""Carbon front stage: efficiency -> cascading -> materials -> grid pooling -> CO2 and PM2.5.

Everything is vectorised over places (cities then rest-of-province, ``P``) and scenarios
(``S``); scenario parameters may carry leading sample dimensions ``(..., S, 1)`` so that a
sweep evaluates thousands of parameter sets in one call (:func:`evaluate`).

Accounting rules (Ramaswami et al. 2017, Methods d): heat exchange cuts fuel burned in the city
(Scope 1); electricity saved or generated is pooled per grid region and cuts every generator of
the region alike; material exchange is settled per province.

Units: fuel Mtce, electricity TWh, CO2 Mt (t in the tables), PM2.5 t.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from engine.carbon.cascade import cascade
from engine.carbon.efficiency import LEVELS, apply_efficiency, base_fuels
from engine.carbon.grid import pool_savings
from engine.carbon.materials import material_exchange
from engine.carbon.parameters import load_parameters
from engine.constants import SECONDS_PER_YEAR

__all__ = ["CarbonResult", "run_carbon", "evaluate", "prepare", "LINE_ITEMS", "TYPOLOGY_THRESHOLDS", "PM_KEY"]

#: paper's typology thresholds on GDP shares (Ramaswami et al. 2017)
TYPOLOGY_THRESHOLDS = {"commercial_tertiary_share": 0.491, "industrial_secondary_share": 0.644}

#: national line items (Tables 1 and 2) with the unit of their physical quantity
LINE_ITEMS = {
    "steel": "Mt crude steel", "power": "TWh", "cement": "Mt cement", "buildings": "Mtce heating",
    "industrial_boiler": "Mtce", "other_industry": "Mtce", "single_sector_total": "% of national CO2",
    "high_grade_orc": "TWh", "medium_cascade1_industry": "Mtce", "medium_cascade2_existing_des": "Mtce",
    "medium_cascade3_orc": "TWh", "low_grade_new_4gdh": "Mtce", "fly_ash_cement": "Mt cement avoided",
    "steel_slag_cement": "Mt cement avoided", "symbiosis_total": "% of national CO2",
    "unutilized_low_grade_coal": "Mtce coal displaceable", "unutilized_low_grade_gas": "Mtce gas displaceable",
    "national_co2": "Mt CO2 (scenario total)",
}

_FUEL_GROUP = {
    "steel": "steel", "cement": "cement", "industrial_boiler": "industrial_boiler",
    "chemicals": "other_industry", "food_beverage": "other_industry", "textiles": "other_industry",
    "pulp_paper": "other_industry", "other_key": "other_industry",
    "heating_des": "heating", "heating_individual": "heating", "cooking": "cooking", "other": "other",
}
PM_KEY = {
    "steel": "pm25_steel", "cement": "pm25_cement", "industrial_boiler": "pm25_industrial_boiler",
    "chemicals": "pm25_other_industry", "food_beverage": "pm25_other_industry",
    "textiles": "pm25_other_industry", "pulp_paper": "pm25_other_industry",
    "other_key": "pm25_other_industry", "heating_des": "pm25_heating_des",
    "heating_individual": "pm25_heating_individual", "cooking": "pm25_cooking", "other": "pm25_other",
}


def emission_factors(p):
    """CO2 factor [t CO2/tce] of each fuel group from its fuel mix (one cited table)."""
    c, o, g = p["ef_co2_coal"], p["ef_co2_oil"], p["ef_co2_gas"]

    def mix(coal, oil=0.0):
        return coal * c + oil * o + (1.0 - coal - oil) * g

    return {
        "steel": mix(p["mix_coal_steel"]),
        "cement": mix(p["mix_coal_cement"]),
        "industrial_boiler": mix(p["mix_coal_industrial_boiler"]),
        "other_industry": mix(p["mix_coal_other_industry"], 0.1),
        "heating": mix(p["mix_coal_heating"]),
        "cooking": mix(p["mix_coal_cooking"]),
        "other": mix(p["mix_coal_other"], p["mix_oil_other"]),
    }


def pm25_factor(p, sector, act):
    """PM2.5 emission factor [g PM2.5 / kgce] of a fuel sector, per place where it varies.

    Individual space heating burns coal in stoves and small boilers inside the central-heating
    zone (``pm25_heating_individual``); outside it, urban homes heat with electric heaters,
    air-conditioner heat pumps and gas (IEA 2024, *The Future of Heat Pumps in China*, climate-zone
    table; Guo et al. 2015, *Build. Environ.* 94:532-542, a 1,800-household survey of the
    hot-summer/cold-winter zone), which emit no PM2.5 where the heat is used
    (``pm25_heating_individual_south``). The heat demand itself, and its CO2, are not changed.
    """
    if sector != "heating_individual":
        return p[PM_KEY[sector]]
    return np.where(act["heating_zone"] > 0, p["pm25_heating_individual"], p["pm25_heating_individual_south"])


@dataclasses.dataclass
class Prepared:
    """Place-level arrays and structure matrices, built once per data set."""

    places: pd.DataFrame
    act: dict
    is_city: np.ndarray
    grid_onehot: np.ndarray
    prov_onehot: np.ndarray
    provinces: pd.Index
    reuse_rate: np.ndarray


def prepare(data, params):
    """Arrays of the data set used by :func:`evaluate` (cities first, then ROPs)."""
    places = data.places
    act = {k: places[k].to_numpy(float) for k in places.columns
           if k.endswith(("_mt", "_mtce", "_twh", "_m2", "_km2")) or k in ("population", "urban_population")}
    # 1 inside China's central-heating zone (north of the Qinling-Huaihe line), 0 outside:
    # selects the PM2.5 factor of individual space heating (pm25_heating_individual[_south])
    act["heating_zone"] = places["heating_zone"].to_numpy(float)
    grids = sorted(places["grid_region"].unique())
    G = (places["grid_region"].to_numpy()[:, None] == np.array(grids)[None, :]).astype(float)
    provinces = data.provinces.index
    R = (places["province_id"].to_numpy()[:, None] == provinces.to_numpy()[None, :]).astype(float)
    # fly-ash reuse rate by province: 50 % (lowest GDP per person) ... 90 % (highest), by rank
    gdp = data.provinces[["gdp_primary_100m_cny", "gdp_secondary_100m_cny", "gdp_tertiary_100m_cny"]].sum(axis=1)
    gpp = (gdp / data.provinces["population"]).to_numpy()
    rank = gpp.argsort().argsort() / max(len(gpp) - 1, 1)
    reuse = params["fly_ash_reuse_min"] + rank * (params["fly_ash_reuse_max"] - params["fly_ash_reuse_min"])
    return Prepared(places=places, act=act, is_city=(places["kind"] == "city").to_numpy(),
                    grid_onehot=G, prov_onehot=R, provinces=provinces, reuse_rate=reuse)


def evaluate(prep, params, *, level, symbiosis, seasonality, avail_high, avail_medium, avail_low,
             orc_efficiency, fly_ash_saturation, slag_saturation, heat_rate_level=None, materials_enabled=None):
    """Evaluate scenarios. Scenario arguments broadcast as ``(..., S, 1)``.

    They may also be given per place, ``(..., S, P)``, to let some places act and not others
    (:mod:`engine.marginal`): ``level`` (or a mapping sector -> level, see
    :func:`engine.carbon.efficiency.saving_fractions`) sets the sectors' efficiency, ``heat_rate_level`` (default
    ``level``) the power plants' heat rate, and ``materials_enabled`` (default ``symbiosis``;
    per province ``(..., S, R)`` when given per place) the material exchange of each province.

    Returns a dict of arrays ``(..., S, P)`` (and ``(..., S, R)`` for provincial materials):
    CO2 [Mt] and PM2.5 [t] by place (``pm25_by_sector_t``: by sector, ``power`` and the fuel
    sectors, summing to ``pm25_t``), and every quantity needed for the line items.
    """
    p = params
    act = prep.act
    if isinstance(level, dict) and heat_rate_level is None:
        raise ValueError("level given per sector: heat_rate_level is required")
    level = level if isinstance(level, dict) else np.asarray(level)
    fuels, elec = base_fuels(act, p)
    fa, ea, sth, sel = apply_efficiency(fuels, elec, p, level)
    hr_level = level if heat_rate_level is None else np.asarray(heat_rate_level)
    hr = np.array([p["heat_rate_none"], p["heat_rate_fyp"], p["heat_rate_high"]])[hr_level]  # g coal/kWh
    ci = hr * p["power_co2_t_per_t_coal"] * 1e-3  # Mt CO2 per TWh

    cas = cascade(fa, act, p, enabled=symbiosis, seasonality=seasonality, avail_high=avail_high,
                  avail_medium=avail_medium, avail_low=avail_low, orc_efficiency=orc_efficiency,
                  is_city=prep.is_city)
    fs = dict(fa)
    for s, d in cas["disp_b_by_sink"].items():
        fs[s] = np.maximum(fs[s] - d, 0.0)
    fs["heating_des"] = np.maximum(fa["heating_des"] - cas["disp_c_mtce"], 0.0)
    fs["heating_individual"] = np.maximum(fa["heating_individual"] - cas["disp_d_mtce"], 0.0)

    gen = act["power_generation_twh"]
    coal_pre = gen * hr * 1e-3  # Mt raw coal before pooling
    mat = material_exchange(coal_pre, act["cement_mt"], act["pig_iron_mt"],
                            prep.prov_onehot, prep.reuse_rate, p,
                            enabled=symbiosis if materials_enabled is None else materials_enabled,
                            fly_ash_saturation=fly_ash_saturation, slag_saturation=slag_saturation)
    red = mat["cement_reduction"]
    fs["cement"] = fa["cement"] * (1.0 - red)
    cement_el_saved = ea["cement"] * red

    saved_el_eff = sum(sel.values())
    savings = saved_el_eff + cas["orc_high_twh"] + cas["orc_medium_twh"] + mat["slag_electricity_twh"] + cement_el_saved
    gen_after, cut = pool_savings(savings, gen, prep.grid_onehot)
    coal_after = gen_after * hr * 1e-3

    ef = emission_factors(p)
    # non-electric fuel of power plants (own use, heat for sale): a fixed share of the base
    # coal burn, untouched by the actions (calibrated so national base CO2 = 8,800 Mt)
    coal_nonel = gen * p["heat_rate_none"] * 1e-3 * p["power_nonelectric_fuel_share"]
    co2 = (coal_after + coal_nonel) * p["power_co2_t_per_t_coal"]
    pm = (coal_after + coal_nonel) * p["power_pm25_g_per_kg_coal"] * 1e3
    co2_by = {"power": co2}
    pm_by = {"power": pm}
    for name, f in fs.items():
        c = f * ef[_FUEL_GROUP[name]]
        co2 = co2 + c
        co2_by[name] = c
        pm_by[name] = f * pm25_factor(p, name, act) * 1e3
        pm = pm + pm_by[name]
    # electricity use after all actions (consumption side; for net import status)
    use_after = sum(ea.values()) - cement_el_saved
    return {
        "co2_mt": co2, "pm25_t": pm, "pm25_by_sector_t": pm_by, "co2_by_fuel_mt": co2_by, "ci_mt_per_twh": ci, "hr": hr,
        "fuels_base": fuels, "fuels_eff": fa, "fuels_final": fs, "elec_base": elec, "elec_eff": ea,
        "saved_el_by_sector": sel, "cascade": cas, "materials": mat, "cement_el_saved_twh": cement_el_saved,
        "generation_twh": gen_after, "grid_cut": cut, "ef": ef, "electricity_use_twh": use_after,
    }


def _scenario_arrays(scenarios):
    """Scenario parameters as (S, 1) arrays from a sequence of (ScenarioConfig, CarbonConfig)."""
    cs = [c for _, c in scenarios]
    col = lambda f: np.array([f(c) for c in cs], dtype=float)[:, None]  # noqa: E731
    return dict(
        level=np.array([LEVELS.index(c.efficiency_level) for c in cs])[:, None],
        symbiosis=col(lambda c: c.symbiosis),
        seasonality=col(lambda c: c.seasonality_fraction),
        avail_high=col(lambda c: c.heat_availability_high),
        avail_medium=col(lambda c: c.heat_availability_medium),
        avail_low=col(lambda c: c.heat_availability_low),
        orc_efficiency=col(lambda c: c.orc_efficiency),
        fly_ash_saturation=col(lambda c: c.fly_ash_saturation),
        slag_saturation=col(lambda c: c.slag_saturation),
    )


def line_items(res, prep, S):
    """National Table 1/2 line items for S scenarios: dict item -> (co2_mt (S,), quantity (S,))."""
    p_ef = res["ef"]
    ci = res["ci_mt_per_twh"][..., 0] if np.ndim(res["ci_mt_per_twh"]) else res["ci_mt_per_twh"]
    fb, fe = res["fuels_base"], res["fuels_eff"]
    act = prep.act
    out = {}

    def tot(x):
        return np.asarray(x).sum(axis=-1) if np.ndim(x) else np.full(S, float(x))

    def fuel_cut(names):
        return sum(tot(fb[n] - fe[n]) * p_ef[_FUEL_GROUP[n]] for n in names)

    sel = res["saved_el_by_sector"]
    hr = res["hr"][..., 0]
    gen0 = act["power_generation_twh"].sum()
    out["steel"] = (fuel_cut(["steel"]) + tot(sel["steel"]) * ci, np.full(S, act["steel_mt"].sum()))
    out["power"] = (gen0 * (res["hr_none"] - hr) * 1e-3 * res["params"]["power_co2_t_per_t_coal"], np.full(S, gen0))
    out["cement"] = (fuel_cut(["cement"]) + tot(sel["cement"]) * ci, np.full(S, act["cement_mt"].sum()))
    out["buildings"] = (fuel_cut(["heating_des", "heating_individual", "cooking"]),
                        np.full(S, act["heating_mtce"].sum()))
    out["industrial_boiler"] = (fuel_cut(["industrial_boiler"]), np.full(S, act["industrial_boiler_mtce"].sum()))
    oi = ["chemicals", "food_beverage", "textiles", "pulp_paper", "other_key"]
    out["other_industry"] = (fuel_cut(oi) + tot(sel["other_industry"]) * ci,
                             np.full(S, sum(act[f"fuel_{n}_mtce"].sum() for n in oi)))
    single = sum(out[k][0] for k in ("steel", "power", "cement", "buildings", "industrial_boiler", "other_industry"))
    base_total = res["base_total_mt"]
    out["single_sector_total"] = (single, 100.0 * single / base_total)
    cas, mat = res["cascade"], res["materials"]
    out["high_grade_orc"] = (tot(cas["orc_high_twh"]) * ci, tot(cas["orc_high_twh"]))
    b = sum(tot(v) for v in cas["disp_b_by_sink"].values())
    out["medium_cascade1_industry"] = (b * p_ef["other_industry"], b)
    out["medium_cascade2_existing_des"] = (tot(cas["disp_c_mtce"]) * p_ef["heating"], tot(cas["disp_c_mtce"]))
    out["medium_cascade3_orc"] = (tot(cas["orc_medium_twh"]) * ci, tot(cas["orc_medium_twh"]))
    out["low_grade_new_4gdh"] = (tot(cas["disp_d_mtce"]) * p_ef["heating"], tot(cas["disp_d_mtce"]))
    # materials: split the cement reduction between the two pathways by their energy shares
    fa_e = mat["fly_ash_cement_mt"] * res["params"]["fly_ash_cement_energy_displacement"]
    sl_e = mat["slag_cement_mt"] * res["params"]["slag_cement_energy_displacement"]
    both = fa_e + sl_e
    fa_share_p = np.divide(fa_e, both, out=np.zeros_like(both), where=both > 0) @ prep.prov_onehot.T
    cem_cut = (fe["cement"] - res["fuels_final"]["cement"]) * p_ef["cement"] + res["cement_el_saved_twh"] * res["ci_mt_per_twh"]
    fa_co2 = tot(cem_cut * fa_share_p)
    sl_co2 = tot(cem_cut * (1.0 - fa_share_p)) + tot(mat["slag_electricity_twh"]) * ci
    out["fly_ash_cement"] = (fa_co2, tot(mat["fly_ash_cement_mt"]))
    out["steel_slag_cement"] = (sl_co2, tot(mat["slag_cement_mt"]))
    sym = sum(out[k][0] for k in ("high_grade_orc", "medium_cascade1_industry", "medium_cascade2_existing_des",
                                  "medium_cascade3_orc", "low_grade_new_4gdh", "fly_ash_cement", "steel_slag_cement"))
    out["symbiosis_total"] = (sym, 100.0 * sym / base_total)
    un = tot(cas["unused_low_heat_mtce"])
    out["unutilized_low_grade_coal"] = (un * res["params"]["ef_co2_coal"], un)
    out["unutilized_low_grade_gas"] = (un * res["params"]["ef_co2_gas"], un)
    out["national_co2"] = (tot(res["co2_mt"]), tot(res["co2_mt"]))
    return out


@dataclasses.dataclass
class CarbonResult:
    """Tables of the carbon stage (see ``cobenefits carbon``)."""

    national: pd.DataFrame
    cities: pd.DataFrame
    rop: pd.DataFrame
    raw: dict
    scenario_names: tuple


def typology(places):
    g = places[["gdp_primary_100m_cny", "gdp_secondary_100m_cny", "gdp_tertiary_100m_cny"]]
    tot = g.sum(axis=1).replace(0, np.nan)
    tert, sec = g["gdp_tertiary_100m_cny"] / tot, g["gdp_secondary_100m_cny"] / tot
    t = np.where(tert > TYPOLOGY_THRESHOLDS["commercial_tertiary_share"], "commercial",
                 np.where(sec > TYPOLOGY_THRESHOLDS["industrial_secondary_share"], "industrial", "mixed"))
    return pd.Series(t, index=places.index)


def run_carbon(cfg, data, *, params=None):
    """Carbon stage for every scenario of ``cfg`` on data set ``data``.

    A Base-Case reference (no efficiency, no symbiosis) is always evaluated alongside, so
    ``co2_reduction_pct`` is relative to the Base-Case whatever scenarios are asked for.
    """
    from engine.config import CarbonConfig, ScenarioConfig

    params = params if params is not None else load_parameters()
    prep = prepare(data, params)
    scen = list(cfg.scenarios) + [(ScenarioConfig(name="__reference_base"), CarbonConfig())]
    # efficiency-only twins measure the symbiosis items against the same efficiency level
    twins = [(s, dataclasses.replace(c, symbiosis=False)) for s, c in cfg.scenarios]
    allsc = scen + twins
    arr = _scenario_arrays(allsc)
    res = evaluate(prep, params, **arr)
    S = len(cfg.scenarios)
    names = tuple(s.name for s, _ in cfg.scenarios)
    co2 = res["co2_mt"]
    base_co2 = co2[S]
    base_total = base_co2.sum()

    # line items: efficiency items from scenario rows; symbiosis items are zero without symbiosis
    sub = _take(res, slice(0, S))
    sub["base_total_mt"] = base_total
    sub["hr_none"] = params["heat_rate_none"]
    sub["params"] = params
    items = line_items(sub, prep, S)
    rows = []
    for si, name in enumerate(names):
        for item, unit in LINE_ITEMS.items():
            c, q = items[item]
            rows.append((name, item, float(c[si]), float(q[si]), unit))
    national = pd.DataFrame(rows, columns=["scenario", "item", "co2_mt", "quantity", "unit"])

    places = prep.places
    typ = typology(places)
    area = places["area_km2"].to_numpy()
    use0 = sum(res["elec_base"].values())
    prov_name = data.provinces["name"].reindex(places["province_id"].to_numpy()).to_numpy()
    frames = []
    for si, name in enumerate(names):
        c = co2[si]
        f = pd.DataFrame({
            "scenario": name,
            "kind": places["kind"].to_numpy(),
            "city_id": places["city_id"].to_numpy(),
            "province_id": places["province_id"].to_numpy(),
            "province": prov_name,
            "name": places["name"].to_numpy(),
            "grid_region": places["grid_region"].to_numpy(),
            "typology": typ.to_numpy(),
            "population": places["population"].to_numpy(),
            "area_km2": area,
            "co2_t": c * 1e6,
            "co2_base_t": base_co2 * 1e6,
            "co2_reduction_pct": 100.0 * np.divide(base_co2 - c, base_co2, out=np.zeros_like(c), where=base_co2 > 0),
            "pm25_t": res["pm25_t"][si],
            **{f"pm25_{k}_t": np.broadcast_to(v, res["pm25_t"].shape)[si]
               for k, v in res["pm25_by_sector_t"].items()},
            "pm25_intensity_g_m2_yr": np.divide(res["pm25_t"][si], area, out=np.zeros_like(area), where=area > 0),
            "q_g_m2_s": np.divide(res["pm25_t"][si], area, out=np.zeros_like(area), where=area > 0) / SECONDS_PER_YEAR,
            "electricity_use_twh": res["electricity_use_twh"][si],
            "power_generation_twh": res["generation_twh"][si],
            "net_electricity_importer": use0 > places["power_generation_twh"].to_numpy(),
            "heat_source_sink_ratio": res["cascade"]["source_sink_ratio"][si],
            "heating_fully_supplied": res["cascade"]["fully_supplied"][si],
            "new_4gdh_floor_area_m2": res["cascade"]["floor_d_m2"][si],
        })
        frames.append(f)
    allp = pd.concat(frames, ignore_index=True)
    cities = allp[allp["kind"] == "city"].drop(columns=["kind"]).reset_index(drop=True)
    cities["city_id"] = cities["city_id"].astype(int)
    rop = allp[allp["kind"] == "rop"].drop(columns=["kind", "city_id", "typology"]).reset_index(drop=True)
    return CarbonResult(national=national, cities=cities, rop=rop, raw=res, scenario_names=names)


def _take(res, sl):
    """Slice the scenario axis (second to last) of every array in a result dict."""
    out = {}
    for k, v in res.items():
        if isinstance(v, dict):
            out[k] = _take(v, sl)
        elif isinstance(v, np.ndarray) and v.ndim >= 2:
            out[k] = v[..., sl, :]
        else:
            out[k] = v
    return out

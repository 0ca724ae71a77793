"""Single-sector efficiency (Ramaswami et al. 2017, Table 1).

All functions broadcast: activity arrays have shape ``(P,)`` (places), scenario parameters
``(..., S, 1)``; results are ``(..., S, P)``. A leading sample dimension therefore evaluates
thousands of parameter sets in one call.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SECTORS", "LEVELS", "saving_fractions", "base_fuels", "apply_efficiency"]

#: sectors with a Table 1 efficiency action
SECTORS = ("steel", "cement", "industrial_boiler", "buildings", "other_industry")
#: efficiency levels, in the order of ``level`` indices
LEVELS = ("none", "fyp", "high")


def saving_fractions(params, level):
    """Thermal and electricity saving fractions per sector for integer ``level`` array.

    .. math:: f = k_s \\cdot f^{nominal}_{s,level}

    ``k_s`` (``k_eff_<sector>``) scales the paper's nominal targets so the national cut equals
    Table 1 (calibrated; see docs/paper.md). Returns two dicts sector -> array like ``level``.
    ``level`` may also be a mapping sector -> level array (each sector its own level, e.g. per
    place: :mod:`engine.marginal`); a sector it lacks stays at level 0 (none).
    """
    per_sector = level if isinstance(level, dict) else None
    th, el = {}, {}
    for s in SECTORS:
        level = np.asarray(per_sector.get(s, 0) if per_sector is not None else level)
        k = params[f"k_eff_{s}"]
        nom_th = np.array([0.0, params[f"saving_th_nominal_fyp_{s}"], params[f"saving_th_nominal_high_{s}"]])
        nom_el = np.array([0.0, params.get(f"saving_el_nominal_fyp_{s}", 0.0),
                           params.get(f"saving_el_nominal_high_{s}", 0.0)])
        th[s] = np.minimum(k * nom_th[level], 0.95)
        el[s] = np.minimum(k * nom_el[level], 0.95)
    return th, el


def base_fuels(act, params):
    """Base-year direct (thermal) fuel by sector [Mtce] and electricity use [TWh] per place.

    Steel and cement intensities include electricity at its calorific equivalent
    (``kgce_per_kwh_heat``), which is subtracted to leave the thermal fuel:

    .. math:: F_{steel} = e_{steel} M_{steel} - 0.1229\\,E_{steel}
    """
    kwh = params["kgce_per_kwh_heat"]
    steel = np.maximum(act["steel_mt"] * params["steel_energy_tce_per_t"] - act["elec_steel_twh"] * kwh, 0.0)
    cement = np.maximum(act["cement_mt"] * params["cement_energy_tce_per_t"] - act["elec_cement_twh"] * kwh, 0.0)
    urban = act["urban_floor_area_m2"]
    des_share = np.divide(act["des_floor_area_m2"], urban, out=np.zeros_like(urban), where=urban > 0)
    des_share = np.clip(des_share, 0.0, 1.0)
    fuels = {
        "steel": steel,
        "cement": cement,
        "industrial_boiler": act["industrial_boiler_mtce"],
        "chemicals": act["fuel_chemicals_mtce"],
        "food_beverage": act["fuel_food_beverage_mtce"],
        "textiles": act["fuel_textiles_mtce"],
        "pulp_paper": act["fuel_pulp_paper_mtce"],
        "other_key": act["fuel_other_key_mtce"],
        "heating_des": act["heating_mtce"] * des_share,
        "heating_individual": act["heating_mtce"] * (1.0 - des_share),
        "cooking": act["cooking_mtce"],
        "other": act["fuel_other_mtce"],
    }
    elec = {
        "steel": act["elec_steel_twh"],
        "cement": act["elec_cement_twh"],
        "other_industry": act["elec_other_industry_twh"],
        "buildings": act["elec_buildings_twh"],
        "other": act["elec_other_twh"],
    }
    return fuels, elec


_FUEL_SECTOR = {
    "steel": "steel", "cement": "cement", "industrial_boiler": "industrial_boiler",
    "chemicals": "other_industry", "food_beverage": "other_industry", "textiles": "other_industry",
    "pulp_paper": "other_industry", "other_key": "other_industry",
    "heating_des": "buildings", "heating_individual": "buildings", "cooking": "buildings",
}
_ELEC_SECTOR = {"steel": "steel", "cement": "cement", "other_industry": "other_industry"}


def apply_efficiency(fuels, elec, params, level):
    """Fuel and electricity after efficiency, and what each Table 1 sector saved.

    Returns
    -------
    fuels_after : dict name -> (..., S, P) Mtce
    elec_after : dict name -> (..., S, P) TWh
    saved_th : dict sector -> (..., S, P) Mtce thermal fuel saved
    saved_el : dict sector -> (..., S, P) TWh electricity saved
    """
    th, el = saving_fractions(params, level)
    fa, ea, sth, sel = {}, {}, {s: 0.0 for s in SECTORS}, {s: 0.0 for s in SECTORS}
    for name, f in fuels.items():
        sec = _FUEL_SECTOR.get(name)
        frac = th[sec] if sec else 0.0
        fa[name] = f * (1.0 - frac)
        if sec:
            sth[sec] = sth[sec] + f * frac
    for name, e in elec.items():
        sec = _ELEC_SECTOR.get(name)
        frac = el[sec] if sec else 0.0
        ea[name] = e * (1.0 - frac)
        if sec:
            sel[sec] = sel[sec] + e * frac
    return fa, ea, sth, sel

"""What a sweep can sample and report: the outputs of the national model, the sweepable keys
and their ranges (:class:`KeyInfo`, from :mod:`engine.config`)."""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing

import numpy as np

__all__ = ["OUTPUTS", "CARBON_OUTPUTS", "DEFAULT_OUTPUTS", "EMISSION_SECTORS", "SECTOR_EXTRA_KEYS",
           "sector_factor_keys", "CARBON_ARGS", "NOT_S", "suggest",
           "KeyInfo", "config_key_info"]

#: outputs of the national model: name -> (dims, units, long name)
OUTPUTS = {
    "national_co2_cut_mt": (("sample",), "Mt CO2 yr-1", "national CO2 cut, base minus scenario (all cities and rests "
                                                        "of province)"),
    "national_symbiosis_co2_cut_mt": (("sample",), "Mt CO2 yr-1",
                                      "national CO2 cut by symbiosis: efficiency-only twin minus scenario "
                                      "(Table 2 total)"),
    "national_avoided_deaths": (("sample",), "deaths yr-1", "premature deaths avoided, sum over the cities"),
    "national_deaths_base": (("sample",), "deaths yr-1", "premature deaths attributable to PM2.5 in the base "
                                                         "scenario, sum over the cities"),
    "pop_weighted_conc_reduction_ug_m3": (("sample",), "ug m-3", "population-weighted reduction of primary PM2.5 "
                                                                 "exposure, base minus scenario"),
    "city_avoided_deaths": (("sample", "city"), "deaths yr-1", "premature deaths avoided in the city"),
    "city_conc_reduction_pct": (("sample", "city"), "%", "reduction of the city's primary PM2.5 exposure, "
                                                         "100 (base - scenario) / base"),
    "city_conc_base_ug_m3": (("sample", "city"), "ug m-3", "primary PM2.5 exposure of the city, base"),
    "city_conc_scenario_ug_m3": (("sample", "city"), "ug m-3", "primary PM2.5 exposure of the city, scenario"),
}
#: outputs of the carbon stage alone (a sweep asking only for these computes no S and no health)
CARBON_OUTPUTS = ("national_co2_cut_mt", "national_symbiosis_co2_cut_mt")
DEFAULT_OUTPUTS = ("national_co2_cut_mt", "national_avoided_deaths", "city_avoided_deaths", "city_conc_reduction_pct")

#: PM2.5 emission-factor keys of the carbon parameters (engine/data/carbon_parameters.csv), per sector
EMISSION_SECTORS = {
    "power": "power_pm25_g_per_kg_coal", "steel": "pm25_steel", "cement": "pm25_cement",
    "industrial_boiler": "pm25_industrial_boiler", "other_industry": "pm25_other_industry",
    "heating_des": "pm25_heating_des", "heating_individual": "pm25_heating_individual",
    "cooking": "pm25_cooking", "other": "pm25_other",
}
#: further PM2.5 factor keys that a sector's multiplier scales with its own (individual heating
#: outside the central-heating zone: engine.carbon.accounting.pm25_factor)
SECTOR_EXTRA_KEYS = {"heating_individual": ("pm25_heating_individual_south",)}


def sector_factor_keys(sector, params):
    """The carbon parameters a sector's ``emissions.pm25_multiplier`` scales (those in ``params``)."""
    return tuple(k for k in (EMISSION_SECTORS[sector], *SECTOR_EXTRA_KEYS.get(sector, ())) if k in params)


#: carbon keys the carbon stage takes per scenario (the arguments of engine.carbon.accounting.evaluate)
CARBON_ARGS = {"seasonality_fraction": "seasonality", "heat_availability_high": "avail_high",
               "heat_availability_medium": "avail_medium", "heat_availability_low": "avail_low",
               "orc_efficiency": "orc_efficiency", "fly_ash_saturation": "fly_ash_saturation",
               "slag_saturation": "slag_saturation"}
#: [dispersion] keys that do not change S (they shape files only)
NOT_S = {"mosaic_resolution_deg"}


def suggest(key, valid):
    """``"; did you mean 'x'?"`` for the closest of ``valid``, or ``""``."""
    m = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.6)
    return f"; did you mean '{m[0]}'?" if m else ""


@dataclasses.dataclass(frozen=True)
class KeyInfo:
    """What a sweepable key accepts: numeric range (closed unless open flags) or choices."""

    kind: str                      # "float", "int" or "choice"
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple = ()
    default: object = None
    levels_only: bool = False      # dispersion/met: a finite list of levels

    def describe(self):
        if self.kind == "choice":
            return "one of " + ", ".join(map(repr, self.choices)) if self.choices else "any value of its type"
        lb = "(" if self.lo_open else "["
        rb = ")" if self.hi_open else "]"
        return f"{lb}{self.lo}, {self.hi}{rb}"

    def contains(self, v):
        if self.kind == "choice":
            return not self.choices or v in self.choices
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        if self.kind == "int" and float(v) != int(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        if self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi):
            return False
        return True


def config_key_info(section_cls, name, cfg_section, *, levels_only=False):
    """:class:`KeyInfo` of a configuration key (its type and range from :mod:`engine.config`)."""
    from engine.config import field_type

    fields = {f.name: f for f in dataclasses.fields(section_cls) if not f.metadata.get("internal")}
    if name not in fields:
        raise KeyError(f"unknown key{suggest(name, fields)} (keys of this section: {', '.join(fields)})")
    f = fields[name]
    tp = field_type(section_cls, name)
    default = getattr(cfg_section, name)
    if typing.get_origin(tp) is typing.Literal:
        return KeyInfo("choice", choices=typing.get_args(tp), default=default, levels_only=levels_only)
    if tp is bool:
        return KeyInfo("choice", choices=(True, False), default=default, levels_only=levels_only)
    if tp is str:
        return KeyInfo("choice", default=default, levels_only=True)
    md = f.metadata
    return KeyInfo("int" if tp is int else "float", md.get("lo"), md.get("hi"), md.get("lo_open", False),
                   md.get("hi_open", False), default=default, levels_only=levels_only)


def _plain(v):
    """A numpy scalar as its Python value (level keys compare equal whatever their dtype)."""
    return v.item() if isinstance(v, np.generic) else v


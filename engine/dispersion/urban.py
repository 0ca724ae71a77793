"""Urban or rural: which city sources AERMOD would model with its urban boundary layer (URBANOPT).

EPA's Guideline on Air Quality Models (40 CFR Part 51, Appendix W, 2017 revision, section
7.2.1.1(b)) classifies the area around a source as urban or rural by one of two procedures:

* **land use** (Auer 1978, J. Appl. Meteor. 17:636-643): urban if land-use types I1, I2, C1,
  R2 and R3 (heavy and light industry, commercial, compact residential) cover 50 % or more of
  the area within 3 km of the source;
* **population density**: urban if the average population density in that area exceeds
  **750 people per km2**. The Guideline calls this the less definitive of the two but allows
  it, and notes that it should not be applied to highly industrialised areas with few
  residents (there the land-use procedure decides).

The data set carries no land-use map, so ``[dispersion] urban = "auto"`` applies the
population-density procedure to each city source. A city source is an area source that covers
the whole city footprint, so the area of the criterion is the footprint itself and the
density is the city's census population over its area (``population / area_km2`` of the
cities table). A rest of province is the province minus its cities, rural by construction: it
stays rural in every mode, as AERMOD treats sources outside an urban area.

The URBANOPT population of an urban city is its ``urban_population`` (persons living in the
city's urban area, census 2010): AERMOD's urban boundary layer is that of the urbanised area
the source lies in, and the AERMOD Implementation Guide (EPA, section 5.2) asks for the
population of the contiguous area above 750 km-2 around the source (or of its metropolitan
area), not of an administrative unit. The urban boundary layer goes with ``P**0.25``, so the
choice matters little (a factor 2 in P is 19 % in the urban mixing height).

Units: population [persons], area [km2], density [persons km-2].
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from engine.errors import InputError

__all__ = ["URBAN_DENSITY_THRESHOLD_KM2", "URBAN_MODES", "classify_cities"]

#: population density above which an area is urban [persons km-2] (40 CFR 51 App. W 7.2.1.1(b)(ii))
URBAN_DENSITY_THRESHOLD_KM2 = 750.0
#: values of ``[dispersion] urban``
URBAN_MODES = ("auto", True, False)


def classify_cities(cities, mode, *, source="the cities table"):
    """Urban or rural per city, and the URBANOPT population of the urban ones.

    Parameters
    ----------
    cities : DataFrame indexed by city_id
        Columns ``population`` [persons] and ``area_km2`` [km2] (mode ``"auto"``) and
        ``urban_population`` [persons] (modes ``"auto"`` and True).
    mode : "auto", True or False
        ``[dispersion] urban`` (module docstring).
    source : str
        Where the table came from, for error messages.

    Returns
    -------
    DataFrame indexed by city_id with columns ``population_density_km2``, ``urban`` (bool),
    ``urbanopt_population`` (persons; 0 for a rural city) and ``criterion`` (why).

    Raises
    ------
    InputError
        A needed column is missing, or an urban city's urban_population is not a number > 0.
    """
    if mode not in URBAN_MODES or not isinstance(mode, (bool, str)):
        raise InputError(f"[dispersion] urban = {mode!r}; allowed: 'auto', true, false")
    need = {"auto": ("population", "area_km2", "urban_population"), True: ("urban_population",), False: ()}[mode]
    for col in need:
        if col not in cities:
            raise InputError(f"[dispersion] urban = {_spell(mode)} needs the column {col} in {source} "
                             f"(cities table; {_COLUMN_DOC[col]})")
    out = pd.DataFrame(index=cities.index.copy())
    if "population" in cities and "area_km2" in cities:
        dens = (pd.to_numeric(cities["population"], errors="coerce")
                / pd.to_numeric(cities["area_km2"], errors="coerce")).to_numpy(dtype=float)
    else:
        dens = np.full(len(cities), np.nan)
    out["population_density_km2"] = dens
    if mode is False:
        urban = np.zeros(len(cities), dtype=bool)
        why = ["urban = false"] * len(cities)
    elif mode is True:
        urban = np.ones(len(cities), dtype=bool)
        why = ["urban = true"] * len(cities)
    else:
        urban = np.isfinite(dens) & (dens > URBAN_DENSITY_THRESHOLD_KM2)
        why = [f"density {d:.0f} km-2 {'>' if u else '<='} {URBAN_DENSITY_THRESHOLD_KM2:g} km-2"
               for d, u in zip(dens, urban)]
    pop = np.zeros(len(cities))
    if "urban_population" in cities:
        raw = pd.to_numeric(cities["urban_population"], errors="coerce").to_numpy(dtype=float)
        for k, cid in enumerate(cities.index):
            if not urban[k]:
                continue
            p = raw[k]
            if mode is True and p == 0.0:
                urban[k] = False  # nobody in an urban area: the city stays rural (as before "auto")
                why[k] = "urban = true, but urban_population = 0"
                continue
            if not (math.isfinite(p) and p > 0.0):
                raise InputError(f"{source}: city_id {cid}: urban_population = {cities['urban_population'].iloc[k]!r}"
                                 f" for an urban city ({why[k]}); allowed: a number of persons > 0")
            pop[k] = p
    out["urban"] = urban
    out["urbanopt_population"] = pop
    out["criterion"] = why
    return out


_COLUMN_DOC = {"population": "persons, 2010 census", "area_km2": "city area [km2]",
               "urban_population": "persons living in the city's urban area, AERMOD's URBANOPT population"}


def _spell(mode):
    return {True: "true", False: "false"}.get(mode, repr(mode))

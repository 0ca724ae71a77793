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

Urban transfer kernels, cheaply
--------------------------------
AERMOD's urban boundary layer changes only the *urban hours* (stable hours, and convective
hours of the morning transition whose convective mixing height is below the urban one); every
other hour of an urban source is computed as rural (``kernels.plume._urban_boundary_layer``).
A period kernel is a weighted sum over hours, so :func:`split_period_kernel` computes the urban
kernel of population P as the rural kernel over the hours P leaves rural plus the urban kernel
over P's urban hours. Which hours are urban is read off the per-hour tables themselves (an
hour whose ln g, ln sigma-y and wind-direction rows equal the rural ones contributes the same),
so the split is exact to round-off by construction. The rural part is shared: a larger
population has more urban hours, so the rural hours of one node contain those of the next
larger one, and each node adds only the hours between them (:func:`_rural_part`).

Cities do not each get their own kernel: kernels are computed at **node populations**
``10**k`` (:data:`URBAN_NODES_PER_DECADE` per decade) and a city of population P takes the
linear interpolation in ``log10 P`` between the two nodes that bracket it
(:func:`urban_node_weights`). The source-receptor matrix is linear in the kernel, so a receptor
city needs one sensitivity map per node its sources touch, whatever the number of distinct
city populations. Measured on the default met (Beijing, both seasons, 1 km cells;
docs/dispersion.md): interpolation between decade nodes is within 1.1 % of the exact kernel at
the cell itself and 0.7 % summed over 11 x 11 km, smaller than the error of the former
population classes (4 per decade, each city at its class centre: 1.9 % and 1.5 %). The error
does not shrink with more nodes: the morning-transition hours switch on at population
thresholds, so the kernel is piecewise smooth in P, with steps of about 1 %.

Units: population [persons], area [km2], density [persons km-2].
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from engine.errors import InputError

__all__ = ["URBAN_DENSITY_THRESHOLD_KM2", "URBAN_MODES", "URBAN_NODES_PER_DECADE", "URBAN_ROUGHNESS_M",
           "classify_cities", "urban_node_weights", "urban_hours", "urban_candidate_hours", "split_period_kernel",
           "tables_differ", "weighted_kernel"]

#: population density above which an area is urban [persons km-2] (40 CFR 51 App. W 7.2.1.1(b)(ii))
URBAN_DENSITY_THRESHOLD_KM2 = 750.0
#: values of ``[dispersion] urban``
URBAN_MODES = ("auto", True, False)
#: urban kernel nodes per decade of population (module docstring)
URBAN_NODES_PER_DECADE = 1
#: urban roughness length [m] of the urban kernels (AERMOD URBANOPT default, URBROUGH 1 m)
URBAN_ROUGHNESS_M = 1.0


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
                raise InputError(f"{source}: city_id {cid}: urban_population = {cities['urban_population'].iloc[k]}"
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


# --------------------------------------------------------------------------- urban kernels
def urban_node_weights(population):
    """Node populations and weights whose combination is the urban kernel of ``population``.

    Nodes are ``10**(k / n)`` (n = :data:`URBAN_NODES_PER_DECADE`); a population between nodes
    ``a < b`` gets ``((a, 1 - t), (b, t))`` with ``t = (log10 P - log10 a) / (log10 b - log10 a)``,
    a population on a node that node alone.

    Returns
    -------
    tuple of (node_population [persons], weight) pairs, weights summing to 1

    Raises
    ------
    ValueError
        ``population`` is not a finite number > 0.
    """
    p = float(population)
    if not (math.isfinite(p) and p > 0.0):
        raise ValueError(f"urban population = {population!r}; allowed: a number of persons > 0")
    n = URBAN_NODES_PER_DECADE
    x = math.log10(p) * n
    k = math.floor(x)
    t = x - k
    lo = float(round(10.0 ** (k / n), 1))
    if t < 1e-12:
        return ((lo, 1.0),)
    return ((lo, 1.0 - t), (float(round(10.0 ** ((k + 1) / n), 1)), t))


def tables_differ(a, b):
    """Per hour, whether the tables ``a`` and ``b`` (ln g, ln sigma-y, wind direction) differ."""
    lng_a, lnsy_a, wd_a = a
    lng_b, lnsy_b, wd_b = b
    same_wd = (wd_a == wd_b) | (np.isnan(wd_a) & np.isnan(wd_b))
    return (lng_a != lng_b).any(axis=1) | (lnsy_a != lnsy_b).any(axis=1) | ~same_wd


def urban_hours(met, population, *, release_height_m=0.0, initial_sigma_z_m=0.0,
                urban_roughness_m=URBAN_ROUGHNESS_M):
    """Mask of the hours whose tables the urban boundary layer of ``population`` changes."""
    from engine.dispersion.area import hour_tables

    rural = hour_tables(met, release_height_m, initial_sigma_z_m)
    urban = hour_tables(met, release_height_m, initial_sigma_z_m, 0.0, float(population), float(urban_roughness_m))
    return tables_differ(urban, rural)


#: AERMOD's urban mixing height at the reference population [m] and that population [persons]
#: (modules.f REFPOP; metext.f URBCALC REFZI), as in ``kernels.hour_setup``
_URBAN_REF_ZI_M = 400.0
_URBAN_REF_POPULATION = 2.0e6


def urban_candidate_hours(met, population):
    """Hours whose tables the urban boundary layer of ``population`` *may* change (a superset).

    AERMOD's urban boundary layer (metext.f URBCALC; ``kernels.hour_setup._urban_boundary_layer``)
    touches only stable hours (L > 0) and convective hours of the morning transition, whose
    convective mixing height is at most the urban one ``400 m (P / 2e6)**0.25``; every other hour
    is computed exactly as rural. The test here is that one with a 1e-9 relative margin (and a
    missing z_ic counted in), so an hour outside the mask has the rural tables bit for bit: the
    urban tables need only be built for the hours inside it (:func:`engine.dispersion.fields.compute_kernels`).

    Returns
    -------
    (n,) bool
    """
    zi_urban_m = _URBAN_REF_ZI_M * (float(population) / _URBAN_REF_POPULATION) ** 0.25
    stable = np.asarray(met.monin_obukhov_length_m) > 0.0
    zic = np.asarray(met.conv_mixing_height_m, dtype=float)
    with np.errstate(invalid="ignore"):
        return stable | ~(zic > zi_urban_m * (1.0 + 1e-9))


def weighted_kernel(met_tables, weights, cell, spacing, n_half, inner=-1):
    """Kernel (half width ``n_half``) of a square cell summed over the rows of ``met_tables``
    (ln g, ln sigma-y, wind direction) with ``weights`` (exact lateral CDF); zeros if none weigh."""
    from engine.dispersion.symmetry import square_kernel

    return square_kernel(met_tables, weights, cell, spacing, n_half, inner=inner)


def split_period_kernel(met, *, cell_size_m, spacing_m, n_half, release_height_m=0.0, initial_sigma_z_m=0.0,
                        urban_population, urban_roughness_m=URBAN_ROUGHNESS_M):
    """:func:`engine.dispersion.area.period_kernel` of an urban source, computed by hour groups.

    The same kernel (to round-off: the hours are summed in another order) at the cost of the
    urban hours of ``urban_population`` plus the rural hours not already summed for a larger
    population on the same met and lattice (module docstring; compute nodes from the largest
    population down). Arguments as ``period_kernel`` (exact lateral CDF, the national run's).
    """
    from engine.dispersion.area import hour_tables

    hs, sz = float(release_height_m), float(initial_sigma_z_m)
    pop, z0u = float(urban_population), float(urban_roughness_m)
    if not (math.isfinite(pop) and pop > 0.0):
        raise ValueError(f"urban population = {urban_population!r}; allowed: a number of persons > 0")
    rural = hour_tables(met, hs, sz)
    urban = hour_tables(met, hs, sz, 0.0, pop, z0u)
    u = tables_differ(urban, rural)
    w = np.where(met.valid, met.weight, 0.0)
    tot = w.sum()
    if tot <= 0:
        return np.zeros((2 * int(n_half) + 1,) * 2)
    w = w / tot
    key = (met.digest(), hs, sz, z0u, float(cell_size_m), float(spacing_m), int(n_half))
    k_rest = _rural_part(rural, w, ~u, key, cell_size_m, spacing_m, int(n_half))
    return k_rest + weighted_kernel(urban, np.where(u, w, 0.0), cell_size_m, spacing_m, n_half)


#: rural kernels over sets of hours, per met and lattice: [(hour mask, kernel)], most recent last
_RURAL_PARTS = {}
_MAX_PARTS = 64


def _rural_part(rural, w, hours, key, cell, spacing, n_half):
    """The rural kernel over ``hours`` (weights ``w``), from the largest cached part over a subset
    of them plus the hours it lacks. Nodes' rural hours are nested (a larger population has more
    urban hours), so each node costs only the hours between it and the last one computed."""
    parts = _RURAL_PARTS.setdefault(key, [])
    best = None
    for mask, k in parts:
        if not (mask & ~hours).any() and (best is None or mask.sum() > best[0].sum()):
            best = (mask, k)
    if best is None:
        out = weighted_kernel(rural, np.where(hours, w, 0.0), cell, spacing, n_half)
    else:
        out = best[1] + weighted_kernel(rural, np.where(hours & ~best[0], w, 0.0), cell, spacing, n_half)
    if sum(len(v) for v in _RURAL_PARTS.values()) >= _MAX_PARTS:
        _RURAL_PARTS.clear()
        parts = _RURAL_PARTS.setdefault(key, [])
    parts.append((hours.copy(), out))
    return out

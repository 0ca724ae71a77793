"""Population grids: a regular lat-lon grid of density or counts read from NetCDF or CSV, for
population-weighted city exposure (``[dispersion] population_grid``).

Glossary (units): density [people km-2]; ``lat``/``lon`` cell centres [degrees north/east].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.dispersion.sphere import EARTH_RADIUS_M
from engine.errors import InputError

__all__ = ["PopulationGrid", "read_population_grid", "POPULATION_COUNT_UNITS", "POPULATION_DENSITY_UNITS"]

#: population-grid ``units`` read as people per grid cell
POPULATION_COUNT_UNITS = ("1", "people", "persons", "person", "count", "counts", "inhabitants")
#: population-grid ``units`` read as people per km2 (the value is the density)
POPULATION_DENSITY_UNITS = ("km-2", "people km-2", "persons km-2", "person km-2", "km^-2", "1/km2",
                            "people/km2", "persons/km2", "people/km^2", "persons/km^2")


@dataclass(frozen=True, eq=False)
class PopulationGrid:
    """Population density on a regular lat-lon grid; called as ``grid(lat, lon)`` -> [km-2].

    ``density[j, i]`` is the density [people km-2] of the cell centred on
    (``lat_first + j*step_lat``, ``lon_first + i*step_lon``). A point takes the value of the
    cell it falls in (no interpolation); points outside the grid and missing cells give NaN.
    ``key`` is a content hash (coordinates and densities) for the field cache.
    """

    lat_first: float
    lon_first: float
    step_lat: float
    step_lon: float
    density: np.ndarray
    key: str
    source: str = ""
    units: str = ""

    def __call__(self, lat, lon):
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        west = self.lon_first - 0.5 * self.step_lon
        lon = (lon - west) % 360.0 + west  # the grid's own longitude convention (-180..180 or 0..360)
        j = np.floor((lat - (self.lat_first - 0.5 * self.step_lat)) / self.step_lat).astype(np.int64)
        i = np.floor((lon - west) / self.step_lon).astype(np.int64)
        ny, nx = self.density.shape
        ok = (j >= 0) & (j < ny) & (i >= 0) & (i < nx)
        out = np.full(np.broadcast(lat, lon).shape, np.nan)
        out[ok] = self.density[j[ok], i[ok]]
        return out


def _regular_axis(values, name, path):
    v = np.asarray(values, dtype=float)
    if v.ndim != 1 or v.size < 2 or not np.isfinite(v).all():
        raise InputError(f"{path}: {name} must be a 1-D coordinate of at least 2 finite values")
    d = np.diff(v)
    step = float(np.median(d))
    if step == 0.0 or not np.allclose(d, step, rtol=1e-5, atol=0.0):
        raise InputError(f"{path}: {name} is not a regular (evenly spaced, monotonic) axis")
    return v, step


def _population_units(units, path, where):
    if units is None or str(units).strip() == "":
        raise InputError(f"{path}: {where} has no units; give people per cell "
                         f"({', '.join(map(repr, POPULATION_COUNT_UNITS))}) or people per km2 "
                         f"({', '.join(map(repr, POPULATION_DENSITY_UNITS))})")
    u = " ".join(str(units).strip().lower().split())
    if u in POPULATION_COUNT_UNITS:
        return "count"
    if u in POPULATION_DENSITY_UNITS:
        return "density"
    raise InputError(f"{path}: {where} has units {units!r}; allowed: people per cell "
                     f"({', '.join(map(repr, POPULATION_COUNT_UNITS))}) or people per km2 "
                     f"({', '.join(map(repr, POPULATION_DENSITY_UNITS))})")


def _read_population_netcdf(path):
    import xarray as xr

    try:
        ds = xr.open_dataset(path, decode_times=False)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
        raise InputError(f"{path}: cannot read as NetCDF ({type(exc).__name__}: {exc})") from None
    with ds:
        def find(kind, names, unit_set):
            for n, v in ds.variables.items():
                if v.ndim == 1 and (v.attrs.get("standard_name") == kind or n.lower() in names
                                    or str(v.attrs.get("units", "")).lower() in unit_set):
                    return n
            raise InputError(f"{path}: no {kind} coordinate (standard_name '{kind}' or a variable "
                             f"named {'/'.join(names)})")

        lat_n = find("latitude", ("lat", "latitude"), ("degrees_north", "degree_north"))
        lon_n = find("longitude", ("lon", "longitude"), ("degrees_east", "degree_east"))
        ll = set(ds[lat_n].dims + ds[lon_n].dims)
        # (lat, lon) variables, also with extra length-1 dimensions such as a single time
        cands = [n for n, v in ds.data_vars.items()
                 if ll <= set(v.dims) and all(v.sizes[d] == 1 for d in set(v.dims) - ll)]
        if "population" in cands:
            name = "population"
        elif len(cands) == 1:
            name = cands[0]
        else:
            raise InputError(f"{path}: expected one 2-D (lat, lon) data variable (or one named "
                             f"'population'); found {cands or 'none'}")
        var = ds[name].squeeze([d for d in ds[name].dims if d not in ll]).transpose(ds[lat_n].dims[0],
                                                                                   ds[lon_n].dims[0])
        kind = _population_units(var.attrs.get("units"), path, f"variable '{name}'")
        return ds[lat_n].values, ds[lon_n].values, np.asarray(var.values, dtype=float), kind, str(var.attrs["units"])


def _read_population_csv(path):
    import pandas as pd

    units = None
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            t = line.strip()
            if not t.startswith("#"):
                break
            body = t.lstrip("#").strip()
            if body.lower().startswith("units"):
                units = body[5:].lstrip(" :=").strip().strip("'\"")
    try:
        df = pd.read_csv(path, comment="#")
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{path}: cannot read as CSV ({exc})") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = {"lon", "lat", "population"} - set(df.columns)
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))} (need lon, lat, population)")
    kind = _population_units(units, path, "the '# units: ...' line")
    try:
        lon = df["lon"].astype(float).values
        lat = df["lat"].astype(float).values
        val = df["population"].astype(float).values
    except ValueError:
        raise InputError(f"{path}: lon, lat and population must be numbers") from None
    if len(df) == 0:
        raise InputError(f"{path}: no rows")
    def axis(v, name):
        # cell centres: the smallest spacing, every value a whole number of steps from the first
        u = np.unique(v)
        if u.size < 2 or not np.isfinite(u).all():
            raise InputError(f"{path}: {name} must take at least 2 distinct finite values")
        step = float(np.diff(u).min())
        k = (v - u[0]) / step
        if not np.allclose(k, np.round(k), rtol=0.0, atol=1e-4):
            raise InputError(f"{path}: {name} values are not on a regular grid (spacing {step:g})")
        return u[0] + step * np.arange(int(round((u[-1] - u[0]) / step)) + 1), np.round(k).astype(np.int64)

    lat_ax, j = axis(lat, "lat")
    lon_ax, i = axis(lon, "lon")
    flat = j * lon_ax.size + i
    if np.unique(flat).size != flat.size:
        raise InputError(f"{path}: repeated (lon, lat) cell(s)")
    grid = np.full((lat_ax.size, lon_ax.size), np.nan)
    grid[j, i] = val
    return lat_ax, lon_ax, grid, kind, units


def read_population_grid(path):
    """Read a population grid into a :class:`PopulationGrid` (density [people km-2]).

    Formats: CF-style NetCDF (``.nc``, ``.nc4``, ``.cdf``): 1-D latitude/longitude coordinates
    (``standard_name`` or name lat/latitude, lon/longitude) of cell centres, and one 2-D data
    variable over them (or one named ``population``); CSV (anything else): columns ``lon, lat,
    population`` of cell centres and a ``# units: ...`` comment line before the header.
    Axes must be regular (ascending or descending); missing values (``_FillValue``, NaN,
    absent CSV rows) mean "no population data" and count as 0 people.

    Units are required: people per cell (``1``, ``people``, ``persons``, ``count``) are divided
    by the cell's spherical area :math:`R^2\\,\\Delta\\lambda\\,(\\sin\\phi_n - \\sin\\phi_s)`;
    people per km2 (``km-2``, ``people km-2``, ...) are used as they are.

    Raises
    ------
    InputError
        Naming the file: unreadable, no coordinates or data variable, irregular axes, no or
        unknown units, negative values, no positive value at all.
    """
    path = Path(path)
    if path.suffix.lower() in (".nc", ".nc4", ".cdf", ".netcdf"):
        lat, lon, val, kind, units = _read_population_netcdf(path)
    else:
        lat, lon, val, kind, units = _read_population_csv(path)
    lat, step_lat = _regular_axis(lat, "latitude", path)
    lon, step_lon = _regular_axis(lon, "longitude", path)
    if step_lat < 0:
        lat, val, step_lat = lat[::-1], val[::-1], -step_lat
    if step_lon < 0:
        lon, val, step_lon = lon[::-1], val[:, ::-1], -step_lon
    if np.abs(lat).max() > 90.0:
        raise InputError(f"{path}: latitudes outside [-90, 90]")
    finite = np.isfinite(val)
    if (val[finite] < 0).any():
        raise InputError(f"{path}: negative population value(s) (e.g. {float(val[finite][val[finite] < 0][0])})")
    if not (val[finite] > 0).any():
        raise InputError(f"{path}: no positive population value")
    if kind == "count":
        s = np.radians(np.clip(lat + 0.5 * step_lat, -90.0, 90.0))
        n = np.sin(s) - np.sin(np.radians(np.clip(lat - 0.5 * step_lat, -90.0, 90.0)))
        area_km2 = EARTH_RADIUS_M**2 * math.radians(step_lon) * n / 1e6
        val = val / np.where(area_km2 > 0, area_km2, np.inf)[:, None]
    dens = np.ascontiguousarray(np.where(finite, val, np.nan), dtype=np.float64)
    import hashlib

    h = hashlib.sha256(b"population-density-km2-v1")
    h.update(np.array([lat[0], lon[0], step_lat, step_lon, *dens.shape], dtype=np.float64).tobytes())
    h.update(dens.tobytes())
    return PopulationGrid(float(lat[0]), float(lon[0]), float(step_lat), float(step_lon), dens,
                          h.hexdigest()[:32], source=str(path), units=units)

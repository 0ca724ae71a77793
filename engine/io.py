"""Output writers. Every file is written atomically: to a temporary name in the same
folder, flushed, then renamed over the target, so an interrupted run never leaves a
half-written file that looks complete (STYLE.md 24)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_path", "write_csv", "write_json", "write_text", "write_concentration_netcdf", "versions",
           "PM25_STANDARD_NAME"]


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are for other tools too
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_csv(df, path, **kwargs):
    """Write a pandas DataFrame as CSV atomically (index off unless asked)."""
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kwargs)


def write_json(obj, path):
    """Write JSON atomically (indented, keys in insertion order)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=2, default=_json_default)
            fh.write("\n")


def write_text(text, path):
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def _json_default(o):
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# --------------------------------------------------------------------------- NetCDF (CF-1.8)
PM25_STANDARD_NAME = "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"


def versions():
    """Versions of the engine and the libraries that shape its numbers."""
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version()}
    for pkg in ("cobenefits", "numpy", "numba", "pandas", "xarray", "netCDF4", "dask", "distributed"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def write_concentration_netcdf(path, *, scenarios, mosaic_lat, mosaic_lon, mosaic_pm25, mosaic_owner,
                               cities, global_attrs, earth_radius_m, complevel=4):
    """Write ``concentration.nc`` (CF-1.8) atomically.

    Layout
    ------
    Root group: the national mosaic on a regular lat-lon grid, ``pm25(scenario, lat, lon)``
    [ug m-3] with ``lat_bnds``/``lon_bnds``, grid mapping ``crs`` (latitude_longitude on a
    sphere), and ``owner_city_id(lat, lon)``: the city whose field fills the cell (missing
    where no city grid reaches; the engine computes fields over city grids only).
    File ``cities/c<city_id>.nc`` beside it, one per city: its own projected grid (azimuthal equidistant about the
    city centre) with ``x``, ``y`` [m], 2-D ``lat``/``lon``, ``pm25(scenario, y, x)``,
    ``unit_response_city``/``unit_response_rop(y, x)`` [ug m-3 per g m-2 s-1 = 1e-6 s m-1] and
    ``city_fraction(y, x)``.

    Parameters
    ----------
    scenarios : list of str
    mosaic_lat, mosaic_lon : 1-D cell centres [degrees]; the mosaic step is their spacing
    mosaic_pm25 : (scenario, lat, lon) with NaN = no data
    mosaic_owner : (lat, lon) int, -1 = none
    cities : iterable of dict with keys city_id, name, province_id, grid (engine.geometry.CityGrid),
        pm25 (scenario, ny, nx), unit_city, unit_rop, city_fraction (ny, nx), attrs (dict)
    global_attrs : dict of str/number (config, versions, met, ...)
    """
    import netCDF4

    fill = np.float32(-9999.0)
    with atomic_path(path) as tmp:
        ds = netCDF4.Dataset(tmp, "w", format="NETCDF4")
        try:
            ds.setncatts({k: v for k, v in global_attrs.items()})
            ds.Conventions = "CF-1.8"
            ns = len(scenarios)
            ds.createDimension("scenario", ns)
            ds.createDimension("lat", len(mosaic_lat))
            ds.createDimension("lon", len(mosaic_lon))
            ds.createDimension("nv", 2)
            sv = ds.createVariable("scenario", str, ("scenario",))
            sv.long_name = "scenario name"
            for i, s in enumerate(scenarios):
                sv[i] = s
            step_lat = float(mosaic_lat[1] - mosaic_lat[0]) if len(mosaic_lat) > 1 else 1.0
            step_lon = float(mosaic_lon[1] - mosaic_lon[0]) if len(mosaic_lon) > 1 else 1.0
            for name, vals, step, std, units in (("lat", mosaic_lat, step_lat, "latitude", "degrees_north"),
                                                 ("lon", mosaic_lon, step_lon, "longitude", "degrees_east")):
                v = ds.createVariable(name, "f8", (name,))
                v[:] = vals
                v.standard_name, v.units, v.long_name = std, units, std
                v.axis = "X" if name == "lon" else "Y"
                v.bounds = f"{name}_bnds"
                b = ds.createVariable(f"{name}_bnds", "f8", (name, "nv"))
                b[:] = np.column_stack([np.asarray(vals) - step / 2, np.asarray(vals) + step / 2])
            crs = ds.createVariable("crs", "i4")
            crs.grid_mapping_name = "latitude_longitude"
            crs.earth_radius = float(earth_radius_m)
            crs.long_name = "spherical Earth used by the engine's projections"
            pm = ds.createVariable("pm25", "f4", ("scenario", "lat", "lon"), zlib=True, complevel=complevel,
                                   shuffle=True, fill_value=fill, chunksizes=(1, len(mosaic_lat), len(mosaic_lon)))
            pm.standard_name = PM25_STANDARD_NAME
            pm.long_name = "annual-mean primary PM2.5 from city and rest-of-province emissions, national mosaic"
            pm.units = "ug m-3"
            pm.grid_mapping = "crs"
            pm.cell_methods = "area: mean"
            pm.comment = ("each cell is the mean of the city-grid receptors falling in it, taken from the city "
                          "that owns the cell (largest footprint cover, then nearest centre); missing outside city grids")
            pm[:] = np.where(np.isfinite(mosaic_pm25), mosaic_pm25, fill).astype(np.float32)
            ow = ds.createVariable("owner_city_id", "i4", ("lat", "lon"), zlib=True, complevel=complevel,
                                   fill_value=np.int32(-1))
            ow.long_name = "2010 admin code of the city whose field fills the cell"
            ow.units = "1"
            ow.grid_mapping = "crs"
            ow[:] = np.asarray(mosaic_owner, dtype=np.int32)
            ds.city_files = "cities/c<city_id>.nc (one CF-1.8 file per city, beside this file)"
        finally:
            ds.close()
    # one file per city: netCDF-4 slows down quadratically with the number of groups in one
    # file (654 groups took > 4 min); separate files take ~10 ms each and are written atomically
    city_dir = Path(path).parent / "cities"
    city_dir.mkdir(parents=True, exist_ok=True)
    for c in cities:
        with atomic_path(city_dir / f"c{int(c['city_id'])}.nc") as tmp:
            cds = netCDF4.Dataset(tmp, "w", format="NETCDF4")
            try:
                cds.setncatts({k: v for k, v in global_attrs.items()})
                cds.Conventions = "CF-1.8"
                _write_city_group(cds, c, scenarios, earth_radius_m, complevel, fill, as_root=True)
            finally:
                cds.close()


def _write_city_group(parent, c, scenarios, earth_radius_m, complevel, fill, as_root=False):
    g = parent if as_root else parent.createGroup(f"c{int(c['city_id'])}")
    grid = c["grid"]
    g.createDimension("scenario", len(scenarios))
    g.createDimension("y", grid.ny)
    g.createDimension("x", grid.nx)
    sv = g.createVariable("scenario", str, ("scenario",))
    sv.long_name = "scenario name"
    for i, s in enumerate(scenarios):
        sv[i] = s
    for name, vals, std in (("x", grid.x, "projection_x_coordinate"), ("y", grid.y, "projection_y_coordinate")):
        v = g.createVariable(name, "f8", (name,))
        v[:] = vals
        v.standard_name, v.units, v.axis = std, "m", name.upper()
        v.long_name = f"{'easting' if name == 'x' else 'northing'} from the city centre (cell centres)"
    lat, lon = grid.latlon()
    for name, vals, std, units in (("lat", lat, "latitude", "degrees_north"), ("lon", lon, "longitude", "degrees_east")):
        v = g.createVariable(name, "f8", ("y", "x"), zlib=True, complevel=complevel)
        v[:] = vals
        v.standard_name, v.units = std, units
    crs = g.createVariable("crs", "i4")
    crs.grid_mapping_name = "azimuthal_equidistant"
    crs.latitude_of_projection_origin = float(grid.lat0)
    crs.longitude_of_projection_origin = float(grid.lon0)
    crs.false_easting = 0.0
    crs.false_northing = 0.0
    crs.earth_radius = float(earth_radius_m)
    chunks = (grid.ny, grid.nx)
    pm = g.createVariable("pm25", "f4", ("scenario", "y", "x"), zlib=True, complevel=complevel, shuffle=True,
                          fill_value=fill, chunksizes=(1,) + chunks)
    pm.standard_name = PM25_STANDARD_NAME
    pm.long_name = "annual-mean primary PM2.5 from this city's and its rest-of-province emissions"
    pm.units = "ug m-3"
    pm.coordinates = "lat lon"
    pm.grid_mapping = "crs"
    pm[:] = np.asarray(c["pm25"], dtype=np.float32)
    for name, arr, long, units in (
            ("unit_response_city", c["unit_city"], "concentration per unit emission intensity over the city footprint", "1e-6 s m-1"),
            ("unit_response_rop", c["unit_rop"], "concentration per unit emission intensity over the rest of the province", "1e-6 s m-1"),
            ("city_fraction", c["city_fraction"], "fraction of the cell inside the city footprint (x spherical area factor)", "1")):
        v = g.createVariable(name, "f4", ("y", "x"), zlib=True, complevel=complevel, shuffle=True, chunksizes=chunks)
        v.long_name = long
        v.units = units
        v.coordinates = "lat lon"
        v.grid_mapping = "crs"
        if units == "1e-6 s m-1":
            v.comment = "ug m-3 per g m-2 s-1"
        v[:] = np.asarray(arr, dtype=np.float32)
    g.city_id = int(c["city_id"])
    g.province_id = int(c["province_id"])
    g.city_name = str(c.get("name", ""))
    for k, v in (c.get("attrs") or {}).items():
        g.setncattr(k, v)

"""NetCDF (CF-1.8) writers: the national concentration mosaic, per-city fields (one file per city
or one grouped file), the source-receptor matrix, and the reader of one city's group. Written
atomically; they import no physics (the caller passes what a file records).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.constants import PM25_STANDARD_NAME
from engine.output.persist import atomic_path
from engine.output.netcdf_heights import write_height_matrices

__all__ = ["write_concentration_netcdf", "write_city_netcdf", "write_city_fields_netcdf", "write_sr_matrix_netcdf",
           "write_sr_dataset_netcdf", "open_city", "crs_wkt_latlon", "crs_wkt_aeqd", "PM25_STANDARD_NAME",
           "UNIT_RESPONSE_UNITS", "CONVENTIONS", "STANDARD_NAME_VOCABULARY"]

#: the CF conventions the writers follow, and the standard-name table they were checked against
CONVENTIONS = "CF-1.8"
STANDARD_NAME_VOCABULARY = "CF Standard Name Table v93"
#: averaging period of every concentration: the annual mean of the 2010 base year, as a CF time
#: coordinate (days since 2010-01-01, mid-year) with bounds [0, 365] days
PERIOD_START = "2010-01-01"
PERIOD_DAYS = 365.0
#: units of a unit-response field or source-receptor coefficient: ug m-3 per g m-2 s-1 = 1e-6 s m-1
UNIT_RESPONSE_UNITS = "1e-6 s m-1"
_FILL_F4 = np.float32(-9999.0)
#: chunk edge [cells] of the combined city file
_CHUNK = 64
#: zlib level of every variable (with the shuffle filter): level 1 writes the national city fields in
#: 5.4 s and 127 MB, level 4 in 7.5 s and 124 MB (2.7 % smaller for 1.4x the time); readers need not care
COMPLEVEL = 1
#: quantisation of stored 2-D lat/lon [decimal digits of a degree]: 1e-5 degree (~1 m) for 1 km cells;
#: centres and corners alike (CF 1.8 sec. 7.1: bounds share their coordinate's attributes)
_LSD_CENTRE = _LSD_CORNER = 5
_FILL_I4 = np.int32(-2147483647)
_DEG = "ANGLEUNIT[\"degree\",0.0174532925199433]"


def _sphere_datum_wkt(earth_radius_m):
    r = float(earth_radius_m)
    return (f'DATUM["sphere of radius {r:g} m",ELLIPSOID["sphere",{r!r},0,LENGTHUNIT["metre",1]]],'
            f'PRIMEM["Greenwich",0,{_DEG}]')


def crs_wkt_latlon(earth_radius_m):
    """OGC WKT2 (ISO 19162:2019) of latitude/longitude on a sphere of radius ``earth_radius_m`` [m]."""
    return (f'GEOGCRS["latitude-longitude on a sphere",{_sphere_datum_wkt(earth_radius_m)},'
            f'CS[ellipsoidal,2],AXIS["latitude",north,ORDER[1],{_DEG}],'
            f'AXIS["longitude",east,ORDER[2],{_DEG}]]')


def crs_wkt_aeqd(lat0, lon0, earth_radius_m):
    """OGC WKT2 of the spherical azimuthal equidistant projection about (``lat0``, ``lon0``) [degrees]
    (EPSG method 1125; Snyder 1987 eq. 25-2, as :func:`engine.dispersion.geometry.aeqd_forward`)."""
    return (f'PROJCRS["azimuthal equidistant about {lat0:.6f}N {lon0:.6f}E",'
            f'BASEGEOGCRS["latitude-longitude on a sphere",{_sphere_datum_wkt(earth_radius_m)}],'
            f'CONVERSION["azimuthal equidistant",METHOD["Azimuthal Equidistant",ID["EPSG",1125]],'
            f'PARAMETER["Latitude of natural origin",{float(lat0)!r},{_DEG},ID["EPSG",8801]],'
            f'PARAMETER["Longitude of natural origin",{float(lon0)!r},{_DEG},ID["EPSG",8802]],'
            f'PARAMETER["False easting",0,LENGTHUNIT["metre",1],ID["EPSG",8806]],'
            f'PARAMETER["False northing",0,LENGTHUNIT["metre",1],ID["EPSG",8807]]],'
            f'CS[Cartesian,2],AXIS["easting (X)",east,ORDER[1],LENGTHUNIT["metre",1]],'
            f'AXIS["northing (Y)",north,ORDER[2],LENGTHUNIT["metre",1]]]')


def _now():
    import time as _time

    return _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime())


def _set_attrs(var, **attrs):
    for k, v in attrs.items():
        if v is not None:
            var.setncattr(k, v)


def _char_var(ds, name, dim, values, long_name, **attrs):
    """A CF string label: a char array (``dim``, ``<name>_strlen``) in UTF-8 (``_Encoding``), which
    xarray decodes to str; CF 1.8 sec. 2.2 and 6.1 (labels as auxiliary coordinates)."""
    enc = [str(v).encode("utf-8") for v in values]
    n = max([len(b) for b in enc] + [1])
    sdim = f"{name}_strlen"
    ds.createDimension(sdim, n)
    v = ds.createVariable(name, "S1", (dim, sdim))
    arr = np.zeros((len(enc), n), dtype="S1")
    for i, b in enumerate(enc):
        arr[i, :len(b)] = np.frombuffer(b, dtype="S1") if b else arr[i, :0]
    v.set_auto_chartostring(False)
    v[:] = arr
    _set_attrs(v, long_name=long_name, _Encoding="utf-8", **attrs)
    return v


def _scenario_coords(ds, scenarios):
    """Numeric ``scenario`` coordinate (index) + char ``scenario_name`` auxiliary coordinate."""
    ds.createDimension("scenario", len(scenarios))
    sv = ds.createVariable("scenario", "i4", ("scenario",))
    sv[:] = np.arange(len(scenarios), dtype=np.int32)
    _set_attrs(sv, long_name="scenario index (its name is scenario_name)", units="1")
    _char_var(ds, "scenario_name", "scenario", scenarios, "scenario name")


def _time_coord(ds):
    """Scalar CF time coordinate with bounds: the annual averaging period (CF 1.8 sec. 4.4, 7.1, 7.4)."""
    if "nv" not in ds.dimensions:
        ds.createDimension("nv", 2)
    t = ds.createVariable("time", "f8", ())
    t[...] = PERIOD_DAYS / 2.0
    _set_attrs(t, standard_name="time", long_name="middle of the averaging period (annual mean, base year)",
               units=f"days since {PERIOD_START}", calendar="standard", axis="T", bounds="time_bnds")
    b = ds.createVariable("time_bnds", "f8", ("nv",))
    b[:] = [0.0, PERIOD_DAYS]


def _crs_latlon(ds, earth_radius_m, name="crs"):
    crs = ds.createVariable(name, "i4")
    _set_attrs(crs, grid_mapping_name="latitude_longitude", earth_radius=float(earth_radius_m),
               long_name="spherical Earth used by the engine's projections",
               crs_wkt=crs_wkt_latlon(earth_radius_m))
    return crs


def _global(ds, global_attrs, **extra):
    attrs = dict(global_attrs or {})
    attrs.update(extra)
    attrs["Conventions"] = CONVENTIONS
    attrs.setdefault("standard_name_vocabulary", STANDARD_NAME_VOCABULARY)
    attrs.setdefault("title", "cobenefits output")
    attrs.setdefault("history", f"{_now()} cobenefits")
    ds.setncatts({k: (v if isinstance(v, (str, int, float, np.number, np.ndarray)) else json.dumps(v))
                  for k, v in attrs.items()})


def city_met(c, global_met):
    """The met description of one city.

    ``c["met"]`` when the caller gives it; otherwise the entry of the run-wide ``global_met``
    ("; "-joined met descriptions) that belongs to this city: the only one, or the one naming the
    city's climate region (``c["climate_region"]``; default climatology and STAR), or the one
    naming its city id (per-city AERMET/STAR files). The writers import no physics: the caller
    that knows the region passes it.
    """
    given = c.get("met") or (c.get("attrs") or {}).get("met")
    if given:
        return str(given)
    entries = [e for e in str(global_met or "").split("; ") if e]
    if len(entries) <= 1:
        return entries[0] if entries else ""
    region = c.get("climate_region") or (c.get("attrs") or {}).get("climate_region")
    hits = [e for e in entries if region and f"region '{region}'" in e]
    if len(hits) != 1:
        hits = [e for e in entries if str(int(c["city_id"])) in e]
    return hits[0] if len(hits) == 1 else "; ".join(entries)


def _write_mosaic(ds, scenarios, mosaic_lat, mosaic_lon, mosaic_pm25, mosaic_owner, global_attrs, earth_radius_m,
                  complevel, city_fields):
    """The national mosaic of :func:`write_concentration_netcdf` into the open dataset ``ds``."""
    fill = _FILL_F4
    _global(ds, global_attrs)
    ds.createDimension("lat", len(mosaic_lat))
    ds.createDimension("lon", len(mosaic_lon))
    ds.createDimension("nv", 2)
    _scenario_coords(ds, scenarios)
    _time_coord(ds)
    step_lat = float(mosaic_lat[1] - mosaic_lat[0]) if len(mosaic_lat) > 1 else 1.0
    step_lon = float(mosaic_lon[1] - mosaic_lon[0]) if len(mosaic_lon) > 1 else 1.0
    for name, vals, step, std, units in (("lat", mosaic_lat, step_lat, "latitude", "degrees_north"),
                                         ("lon", mosaic_lon, step_lon, "longitude", "degrees_east")):
        v = ds.createVariable(name, "f8", (name,))
        v[:] = vals
        _set_attrs(v, standard_name=std, units=units, long_name=f"{std} of the cell centre",
                   axis="X" if name == "lon" else "Y", bounds=f"{name}_bnds")
        b = ds.createVariable(f"{name}_bnds", "f8", (name, "nv"))
        b[:] = np.column_stack([np.asarray(vals) - step / 2, np.asarray(vals) + step / 2])
    _crs_latlon(ds, earth_radius_m)
    pm = ds.createVariable("pm25", "f4", ("scenario", "lat", "lon"), zlib=True, complevel=complevel,
                           shuffle=True, fill_value=fill, chunksizes=(1, len(mosaic_lat), len(mosaic_lon)))
    _set_attrs(pm, standard_name=PM25_STANDARD_NAME, units="ug m-3",
               long_name="annual-mean primary PM2.5 from city and rest-of-province emissions, national mosaic",
               grid_mapping="crs", coordinates="time scenario_name", cell_methods="time: mean area: mean",
               comment=("each cell is the mean of the city-grid receptors falling in it, taken from the city "
                        "that owns the cell (largest footprint cover, then nearest centre); missing outside "
                        "city grids"))
    pm[:] = np.where(np.isfinite(mosaic_pm25), mosaic_pm25, fill).astype(np.float32)
    ow = ds.createVariable("owner_city_id", "i4", ("lat", "lon"), zlib=True, complevel=complevel,
                           fill_value=np.int32(-1))
    _set_attrs(ow, long_name="2010 administrative code of the city whose field fills the cell",
               grid_mapping="crs")
    ow[:] = np.asarray(mosaic_owner, dtype=np.int32)
    ds.city_files = {"combined": "city_fields.nc (all cities, padded (city, scenario, y, x))",
                     "per_city": "cities/c<city_id>.nc (one file per city)",
                     "both": "city_fields.nc and cities/c<city_id>.nc", "none": "none"}[city_fields]


def _write_city_files(path, cities, info, *, scenarios, global_attrs, earth_radius_m, complevel, city_fields):
    """The city fields beside ``concentration.nc`` (combined and/or per city); timings and sizes into ``info``."""
    import time as _time

    gmet = (global_attrs or {}).get("met", "")
    # float32 copies: the fields are stored in float32 anyway, and the combined file needs every
    # grid's size before it can be created
    cl = []
    for c in cities:
        c = dict(c)
        c["met"] = city_met(c, gmet)
        for k in ("pm25", "unit_city", "unit_rop", "city_fraction"):
            c[k] = np.asarray(c[k], dtype=np.float32)
        cl.append(c)
    if city_fields in ("combined", "both"):
        t = _time.perf_counter()
        info["city_fields"] = path.parent / "city_fields.nc"
        write_city_fields_netcdf(info["city_fields"], cl, scenarios=scenarios, global_attrs=global_attrs,
                                 earth_radius_m=earth_radius_m, complevel=complevel)
        info["write_s"]["city_fields"] = _time.perf_counter() - t
        info["bytes"]["city_fields"] = info["city_fields"].stat().st_size
    if city_fields in ("per_city", "both"):
        # one file per city: netCDF-4 slows down quadratically with the number of groups in one
        # file (654 groups took > 4 min); separate files take ~10 ms each
        t = _time.perf_counter()
        city_dir = path.parent / "cities"
        city_dir.mkdir(parents=True, exist_ok=True)
        for c in cl:
            write_city_netcdf(city_dir / f"c{int(c['city_id'])}.nc", c, scenarios=scenarios,
                              global_attrs=global_attrs, earth_radius_m=earth_radius_m, complevel=complevel)
        info["city_dir"] = city_dir
        info["write_s"]["per_city"] = _time.perf_counter() - t
        info["bytes"]["per_city"] = sum(p.stat().st_size for p in city_dir.glob("c*.nc"))


def write_concentration_netcdf(path, *, scenarios, mosaic_lat, mosaic_lon, mosaic_pm25, mosaic_owner,
                               cities, global_attrs, earth_radius_m, complevel=COMPLEVEL, city_fields="combined"):
    """Write ``concentration.nc`` (CF-1.8) and the city fields beside it, atomically.

    Layout
    ------
    ``concentration.nc``: the national mosaic on a regular lat-lon grid, ``pm25(scenario, lat, lon)``
    [ug m-3] with ``lat_bnds``/``lon_bnds``, a numeric ``scenario`` coordinate labelled by the char
    auxiliary coordinate ``scenario_name``, a scalar ``time`` coordinate with ``time_bnds`` for the
    annual averaging period, ``cell_methods = "time: mean area: mean"``, grid mapping ``crs``
    (latitude_longitude on a sphere, with ``crs_wkt``) and ``owner_city_id(lat, lon)``: the city
    whose field fills the cell (missing where no city grid reaches).

    City fields (``city_fields``):
    ``"combined"`` (default) one file ``city_fields.nc`` beside it, see :func:`write_city_fields_netcdf`;
    ``"per_city"`` one file ``cities/c<city_id>.nc`` per city, see :func:`write_city_netcdf`;
    ``"both"``; ``"none"``.

    Parameters
    ----------
    scenarios : list of str
    mosaic_lat, mosaic_lon : 1-D cell centres [degrees]; the mosaic step is their spacing
    mosaic_pm25 : (scenario, lat, lon) [ug m-3] with NaN = no data
    mosaic_owner : (lat, lon) int, -1 = none
    cities : iterable of dict with keys city_id, name, province_id, grid (engine.dispersion.geometry.CityGrid),
        pm25 (scenario, ny, nx) [ug m-3], unit_city, unit_rop (ny, nx) [ug m-3 per g m-2 s-1],
        city_fraction (ny, nx) [1], attrs (dict of numbers/str); optional: met (str, this city's
        met description; else taken from ``global_attrs["met"]``), name_en, province_name
    global_attrs : dict of str/number (config, versions, met, ...)
    earth_radius_m : float [m]
    city_fields : {"combined", "per_city", "both", "none"}

    Returns
    -------
    dict: {"concentration": Path, "city_fields": Path or None, "city_dir": Path or None,
    "write_s": {...} [s], "bytes": {...}}
    """
    import time as _time

    import netCDF4

    if city_fields not in ("combined", "per_city", "both", "none"):
        raise ValueError(f"city_fields={city_fields!r}: allowed 'combined', 'per_city', 'both', 'none'")
    path = Path(path)
    info = {"concentration": path, "city_fields": None, "city_dir": None, "write_s": {}, "bytes": {}}
    t0 = _time.perf_counter()
    with atomic_path(path) as tmp:
        ds = netCDF4.Dataset(tmp, "w", format="NETCDF4")
        try:
            _write_mosaic(ds, scenarios, mosaic_lat, mosaic_lon, mosaic_pm25, mosaic_owner, global_attrs,
                          earth_radius_m, complevel, city_fields)
        finally:
            ds.close()
    info["write_s"]["concentration"] = _time.perf_counter() - t0
    info["bytes"]["concentration"] = path.stat().st_size
    if city_fields == "none":
        for _ in cities:
            pass
        return info
    _write_city_files(path, cities, info, scenarios=scenarios, global_attrs=global_attrs,
                      earth_radius_m=earth_radius_m, complevel=complevel, city_fields=city_fields)
    return info


_CITY_VARS = (
    ("unit_response_city", "unit_city", "concentration per unit emission intensity over the city footprint",
     UNIT_RESPONSE_UNITS, "ug m-3 per g m-2 s-1", "time: mean"),
    ("unit_response_rop", "unit_rop", "concentration per unit emission intensity over the rest of the province",
     UNIT_RESPONSE_UNITS, "ug m-3 per g m-2 s-1", "time: mean"),
    ("city_fraction", "city_fraction", "fraction of the cell inside the city footprint (x spherical area factor)",
     "1", None, None),
)


def write_city_netcdf(path, c, *, scenarios, global_attrs, earth_radius_m, complevel=COMPLEVEL):
    """Write one city's fields on its own azimuthal-equidistant grid (CF-1.8), atomically.

    ``x``/``y`` [m] with bounds, 2-D ``lat``/``lon`` with 4-vertex bounds, grid mapping ``crs``
    (azimuthal_equidistant with ``crs_wkt``), ``pm25(scenario, y, x)`` [ug m-3],
    ``unit_response_city``/``unit_response_rop(y, x)`` [ug m-3 per g m-2 s-1], ``city_fraction(y, x)``;
    city id, name, province and this city's own met as global attributes. ``c`` as in
    :func:`write_concentration_netcdf`.
    """
    import netCDF4

    with atomic_path(path) as tmp:
        ds = netCDF4.Dataset(tmp, "w", format="NETCDF4")
        try:
            attrs = dict(global_attrs or {})
            attrs["met"] = city_met(c, attrs.get("met", ""))
            _global(ds, attrs)
            _write_city_group(ds, c, scenarios, earth_radius_m, complevel, _FILL_F4, as_root=True)
        finally:
            ds.close()


def _write_city_group(parent, c, scenarios, earth_radius_m, complevel, fill, as_root=False):
    """One city's CF variables into ``parent`` (the root of a per-city file, or a new group)."""
    g = parent if as_root else parent.createGroup(f"c{int(c['city_id'])}")
    grid = c["grid"]
    g.createDimension("y", grid.ny)
    g.createDimension("x", grid.nx)
    g.createDimension("nv", 2)
    g.createDimension("nv4", 4)
    _scenario_coords(g, scenarios)
    _time_coord(g)
    h = grid.spacing_m / 2.0
    for name, vals in (("x", grid.x), ("y", grid.y)):
        v = g.createVariable(name, "f8", (name,))
        v[:] = vals
        _set_attrs(v, standard_name=f"projection_{name}_coordinate", units="m", axis=name.upper(),
                   long_name=f"{'easting' if name == 'x' else 'northing'} from the city centre (cell centres)",
                   bounds=f"{name}_bnds")
        b = g.createVariable(f"{name}_bnds", "f8", (name, "nv"))
        b[:] = np.column_stack([vals - h, vals + h])
    lat, lon = grid.latlon()
    clat, clon = grid.cell_corners()
    for name, vals, corners, std, units in (("lat", lat, clat, "latitude", "degrees_north"),
                                            ("lon", lon, clon, "longitude", "degrees_east")):
        v = g.createVariable(name, "f8", ("y", "x"), zlib=True, complevel=complevel, shuffle=True,
                             least_significant_digit=_LSD_CENTRE)
        v[:] = vals
        _set_attrs(v, standard_name=std, units=units, long_name=f"{std} of the cell centre", bounds=f"{name}_bnds")
        b = g.createVariable(f"{name}_bnds", "f4", ("y", "x", "nv4"), zlib=True, complevel=complevel, shuffle=True,
                             least_significant_digit=_LSD_CORNER)
        b[:] = corners
    crs = g.createVariable("crs", "i4")
    _set_attrs(crs, grid_mapping_name="azimuthal_equidistant", latitude_of_projection_origin=float(grid.lat0),
               longitude_of_projection_origin=float(grid.lon0), false_easting=0.0, false_northing=0.0,
               earth_radius=float(earth_radius_m), crs_wkt=crs_wkt_aeqd(grid.lat0, grid.lon0, earth_radius_m))
    chunks = (grid.ny, grid.nx)
    pm = g.createVariable("pm25", "f4", ("scenario", "y", "x"), zlib=True, complevel=complevel, shuffle=True,
                          fill_value=fill, chunksizes=(1,) + chunks)
    _set_attrs(pm, standard_name=PM25_STANDARD_NAME, units="ug m-3",
               long_name="annual-mean primary PM2.5 from this city's and its rest-of-province emissions",
               coordinates="time scenario_name lat lon", grid_mapping="crs", cell_methods="time: mean",
               comment="value at the cell centre (receptor)")
    pm[:] = np.asarray(c["pm25"], dtype=np.float32)
    for name, key, long, units, comment, cm in _CITY_VARS:
        v = g.createVariable(name, "f4", ("y", "x"), zlib=True, complevel=complevel, shuffle=True, chunksizes=chunks)
        _set_attrs(v, long_name=long, units=units, coordinates=("time lat lon" if cm else "lat lon"),
                   grid_mapping="crs", comment=comment, cell_methods=cm)
        v[:] = np.asarray(c[key], dtype=np.float32)
    g.city_id = int(c["city_id"])
    g.province_id = int(c["province_id"])
    g.city_name = str(c.get("name", ""))
    for k in ("name_en", "province_name"):
        if c.get(k):
            g.setncattr(f"city_{k}" if k == "name_en" else k, str(c[k]))
    for k, v in (c.get("attrs") or {}).items():
        g.setncattr(k, v)
    if c.get("met"):
        g.setncattr("met", str(c["met"]))


def _city_coordinates(ds, cities, nyx):
    """The (city) coordinates of the combined city file: ids, names, grid sizes, frame origins, xc/yc
    and cell sizes. Returns the names of the auxiliary coordinates."""
    fill = _FILL_F4
    cv = ds.createVariable("city", "i4", ("city",))
    cv[:] = np.array([int(c["city_id"]) for c in cities], dtype=np.int32)
    _set_attrs(cv, long_name="2010 administrative code of the city (city_id)", units="1")
    aux = ["city_name"]
    _char_var(ds, "city_name", "city", [c.get("name", "") for c in cities], "city name (Chinese)")
    if any(c.get("name_en") for c in cities):
        _char_var(ds, "city_name_en", "city", [c.get("name_en", "") for c in cities],
                  "city name in English (Hanyu Pinyin)")
        aux.append("city_name_en")
    pv = ds.createVariable("province_id", "i4", ("city",))
    pv[:] = [int(c["province_id"]) for c in cities]
    _set_attrs(pv, long_name="2010 administrative code of the province", units="1")
    aux.append("province_id")
    if any(c.get("province_name") for c in cities):
        _char_var(ds, "province_name", "city", [c.get("province_name", "") for c in cities],
                  "province name")
        aux.append("province_name")
    for name, vals, long in (("grid_ny", nyx[:, 0], "rows of the city's grid (the rest of y is padding)"),
                             ("grid_nx", nyx[:, 1], "columns of the city's grid (the rest of x is padding)")):
        v = ds.createVariable(name, "i4", ("city",))
        v[:] = vals
        _set_attrs(v, long_name=long, units="1")
    for name, key, std in (("origin_lat", "lat0", "latitude"), ("origin_lon", "lon0", "longitude")):
        v = ds.createVariable(name, "f8", ("city",))
        v[:] = [float(getattr(c["grid"], key)) for c in cities]
        # units "degree", not degrees_north/east: a property of the city, not a coordinate
        _set_attrs(v, long_name=f"{std} of the centre of the city's azimuthal-equidistant frame "
                                f"(degrees {'north' if std == 'latitude' else 'east'})", units="degree")
    for name, dim, key in (("xc", "x", "x"), ("yc", "y", "y")):
        # data variables, not coordinates: the georeferencing is lat/lon (with bounds);
        # a cell spans xc +- grid_spacing_m / 2 in the city's own frame
        v = ds.createVariable(name, "f8", ("city", dim), fill_value=np.float64(fill))
        _set_attrs(v, units="m",
                   long_name=(f"{'easting' if dim == 'x' else 'northing'} of the cell centre in the city's "
                              "azimuthal-equidistant frame (origin_lat, origin_lon; spherical Earth)"))
        for i, c in enumerate(cities):
            vals = getattr(c["grid"], key)
            v[i, :len(vals)] = vals
    v = ds.createVariable("grid_spacing_m", "f8", ("city",))
    v[:] = [float(c["grid"].spacing_m) for c in cities]
    _set_attrs(v, long_name="cell size of the city's grid", units="m")
    return aux


def _city_field_variables(ds, cities, ny, nx, aux, earth_radius_m, complevel):
    """lat/lon with bounds, ``pm25`` and the unit-response fields of every city, padded to (ny, nx)."""
    fill = _FILL_F4
    # chunks of at most CHUNK x CHUNK cells: padding chunks are never written, so they cost
    # neither disk nor compression time (a median city is 70 x 70 cells, the largest 420 x 420)
    cy, cx = min(ny, _CHUNK), min(nx, _CHUNK)
    kw = {"zlib": True, "complevel": complevel, "shuffle": True}
    latv = ds.createVariable("lat", "f8", ("city", "y", "x"), fill_value=np.float64(fill),
                             chunksizes=(1, cy, cx), least_significant_digit=_LSD_CENTRE, **kw)
    lonv = ds.createVariable("lon", "f8", ("city", "y", "x"), fill_value=np.float64(fill),
                             chunksizes=(1, cy, cx), least_significant_digit=_LSD_CENTRE, **kw)
    # bounds carry no _FillValue of their own (CF 1.8 sec. 7.1): padding keeps netCDF's default fill.
    # Coordinates are quantised (netCDF4 least_significant_digit) to 1e-5 degree (1 m) so that they
    # compress; float32 corners hold that
    latb = ds.createVariable("lat_bnds", "f4", ("city", "y", "x", "nv4"), chunksizes=(1, cy, cx, 4),
                             least_significant_digit=_LSD_CORNER, **kw)
    lonb = ds.createVariable("lon_bnds", "f4", ("city", "y", "x", "nv4"), chunksizes=(1, cy, cx, 4),
                             least_significant_digit=_LSD_CORNER, **kw)
    for v, std, units in ((latv, "latitude", "degrees_north"), (lonv, "longitude", "degrees_east")):
        _set_attrs(v, standard_name=std, units=units, long_name=f"{std} of the cell centre",
                   bounds=f"{'lat' if std == 'latitude' else 'lon'}_bnds")
    _crs_latlon(ds, earth_radius_m)
    coords = " ".join(["time", "scenario_name", "lat", "lon"] + aux)
    pm = ds.createVariable("pm25", "f4", ("city", "scenario", "y", "x"), fill_value=fill,
                           chunksizes=(1, 1, cy, cx), **kw)
    _set_attrs(pm, standard_name=PM25_STANDARD_NAME, units="ug m-3",
               long_name="annual-mean primary PM2.5 from the city's and its rest-of-province emissions",
               coordinates=coords, grid_mapping="crs", cell_methods="time: mean",
               comment="value at the cell centre (receptor); missing outside the city's grid")
    per = {}
    for name, key, long, units, comment, cm in _CITY_VARS:
        v = ds.createVariable(name, "f4", ("city", "y", "x"), fill_value=fill, chunksizes=(1, cy, cx), **kw)
        _set_attrs(v, long_name=long, units=units, grid_mapping="crs", comment=comment, cell_methods=cm,
                   coordinates=" ".join((["time"] if cm else []) + ["lat", "lon"] + aux))
        per[key] = v
    for i, c in enumerate(cities):
        g = c["grid"]
        la, lo = g.latlon()
        latv[i, :g.ny, :g.nx] = la
        lonv[i, :g.ny, :g.nx] = lo
        cla, clo = g.cell_corners()
        latb[i, :g.ny, :g.nx, :] = cla
        lonb[i, :g.ny, :g.nx, :] = clo
        pm[i, :, :g.ny, :g.nx] = np.asarray(c["pm25"], dtype=np.float32)
        for key, v in per.items():
            v[i, :g.ny, :g.nx] = np.asarray(c[key], dtype=np.float32)


def _city_attribute_variables(ds, cities):
    """Per-city numbers of ``attrs`` as (city) variables, strings and each city's met as char labels."""
    fill = _FILL_F4
    # per-city attributes -> (city) variables
    keys = []
    for c in cities:
        for k in (c.get("attrs") or {}):
            if k not in keys and k != "met":  # met: below, one per city
                keys.append(k)
    for k in keys:
        vals = [(c.get("attrs") or {}).get(k) for c in cities]
        if all(isinstance(x, (int, float, np.number)) or x is None for x in vals):
            v = ds.createVariable(k, "f8", ("city",), fill_value=np.float64(fill))
            v[:] = np.ma.masked_invalid(np.array([np.nan if x is None else float(x) for x in vals]))
            _set_attrs(v, long_name=k.replace("_", " "), units=_units_from_name(k))
        else:
            _char_var(ds, k, "city", ["" if x is None else x for x in vals], k.replace("_", " "))
    if any(c.get("met") for c in cities):
        _char_var(ds, "met", "city", [c.get("met", "") for c in cities],
                  "meteorology used for this city's transfer kernels")


def write_city_fields_netcdf(path, cities, *, scenarios, global_attrs, earth_radius_m, complevel=COMPLEVEL):
    """Write every city's fields into ONE CF-1.8 file, padded to the largest grid, atomically.

    Layout: dimensions ``city``, ``scenario``, ``y``, ``x`` (the largest grid's size; a city's grid
    fills ``[:ny, :nx]``, the rest is ``_FillValue``).

    * ``city(city)`` the 2010 administrative code (numeric coordinate, so
      ``xr.open_dataset(p).sel(city=110000)`` works), with auxiliary coordinates ``city_name``,
      ``city_name_en`` (when given), ``province_id``, ``province_name`` (when given), ``grid_ny``,
      ``grid_nx``, ``origin_lat``/``origin_lon`` [degrees] (the centre of the city's azimuthal-
      equidistant frame);
    * ``xc(city, x)``, ``yc(city, y)`` [m] easting/northing in that frame, with bounds;
    * ``lat``/``lon(city, y, x)`` [degrees] with 4-vertex bounds: the georeferencing (grid mapping
      ``crs``: latitude_longitude on a sphere, ``crs_wkt``);
    * ``pm25(city, scenario, y, x)`` [ug m-3], ``unit_response_city``/``unit_response_rop(city, y, x)``
      [ug m-3 per g m-2 s-1], ``city_fraction(city, y, x)`` [1];
    * per-city numbers of ``attrs`` as ``(city)`` variables, per-city strings (``exposure``, ``met``:
      the city's own met) as char labels.

    :func:`open_city` returns one city cropped to its grid with scenario names as the index.
    """
    import netCDF4

    cities = list(cities)
    if not cities:
        raise ValueError("write_city_fields_netcdf: no city")
    nyx = np.array([(c["grid"].ny, c["grid"].nx) for c in cities])
    ny, nx = int(nyx[:, 0].max()), int(nyx[:, 1].max())
    n = len(cities)
    with atomic_path(path) as tmp:
        ds = netCDF4.Dataset(tmp, "w", format="NETCDF4")
        try:
            attrs = dict(global_attrs or {})
            attrs.pop("met", None)  # per city, in the variable met(city)
            _global(ds, attrs, title="Annual-mean primary PM2.5 of every city on its own 1 km grid, by scenario",
                    comment_layout=("padded: city i's grid fills [:grid_ny[i], :grid_nx[i]] of (y, x); "
                                    "the rest is missing"))
            ds.createDimension("city", n)
            ds.createDimension("y", ny)
            ds.createDimension("x", nx)
            ds.createDimension("nv", 2)
            ds.createDimension("nv4", 4)
            _scenario_coords(ds, scenarios)
            _time_coord(ds)
            aux = _city_coordinates(ds, cities, nyx)
            _city_field_variables(ds, cities, ny, nx, aux, earth_radius_m, complevel)
            _city_attribute_variables(ds, cities)
        finally:
            ds.close()
    return Path(path)


def _units_from_name(name):
    """Units from a column-style name (``_km2``, ``_ug_m3``); ``1`` when the name carries none."""
    for suffix, units in (("_km2", "km2"), ("_ug_m3", "ug m-3"), ("_km", "km"), ("_m", "m"), ("_s", "s")):
        if name.endswith(suffix):
            return units
    if name.startswith("exposure_unit_response") or name.startswith("unit_response"):
        return UNIT_RESPONSE_UNITS
    return "1"


def open_city(path, city_id):
    """One city from ``city_fields.nc`` (or a ``cities/c<id>.nc`` file): cropped to its own grid,
    with scenario names as the ``scenario`` index, so ``ds.pm25.sel(scenario="base")`` works.

    Returns
    -------
    xarray.Dataset with dims (scenario, y, x)
    """
    import xarray as xr

    ds = xr.open_dataset(path)
    if "city" in ds.dims:
        if int(city_id) not in set(ds["city"].values.tolist()):
            raise KeyError(f"{path}: no city {city_id}")
        ds = ds.sel(city=int(city_id))
        ds = ds.isel(y=slice(0, int(ds.grid_ny)), x=slice(0, int(ds.grid_nx)))
    ds = ds.assign_coords(scenario=[str(s) for s in ds["scenario_name"].values]).drop_vars("scenario_name")
    return ds


def _check_sr_inputs(m, rid, sid, stype, seen, *, receptor_names, source_names, source_labels):
    """ValueError unless the matrix, ids, types and labels of :func:`write_sr_matrix_netcdf` agree."""
    if m.shape != (rid.size, sid.size):
        raise ValueError(f"sr matrix shape {m.shape} != (receptors {rid.size}, sources {sid.size})")
    bad = sorted(set(stype) - {"city", "rop"})
    if bad:
        raise ValueError(f"source_types: {bad} not allowed; allowed 'city', 'rop'")
    if len(stype) != sid.size:
        raise ValueError(f"source_types: {len(stype)} entries for {sid.size} sources")
    if len(set(rid.tolist())) != rid.size:
        raise ValueError("receptor_ids: duplicate city ids")
    if len(set(zip(sid.tolist(), stype))) != sid.size:
        raise ValueError("sources: duplicate (source_id, source_type) pairs")
    for name, vals, size in (("receptor_names", receptor_names, rid.size), ("source_names", source_names, sid.size),
                             ("source_labels", source_labels, sid.size)):
        if vals is not None and len(vals) != size:
            raise ValueError(f"{name}: {len(vals)} entries for {size}")
    if seen is not None and np.shape(seen) != m.shape:
        raise ValueError(f"seen: shape {np.shape(seen)} != {m.shape}")


def _sr_coordinates(ds, rid, sid, stype, receptor_vars, source_vars, *, labels):
    """(city) and (source) coordinates, labels and extra variables of ``sr_matrix.nc``; returns the
    names of the auxiliary coordinates of ``S``."""
    receptor_names, receptor_names_en, source_labels, source_names, source_names_en = labels
    r = ds.createVariable("city", "i4", ("city",))
    r[:] = rid.astype(np.int32)
    _set_attrs(r, long_name="receptor city: 2010 administrative code (city_id)", units="1")
    sv = ds.createVariable("source", "i4", ("source",))
    sv[:] = np.arange(sid.size, dtype=np.int32)
    _set_attrs(sv, long_name="source index (identity in source_id and source_type)", units="1")
    si = ds.createVariable("source_id", "i4", ("source",))
    si[:] = sid.astype(np.int32)
    _set_attrs(si, long_name="2010 administrative code of the source: city_id for a city, province_id "
                             "for a rest of province", units="1")
    st = ds.createVariable("source_type", "i1", ("source",))
    st[:] = np.array([0 if t == "city" else 1 for t in stype], dtype=np.int8)
    _set_attrs(st, long_name="kind of source", flag_values=np.array([0, 1], dtype=np.int8),
               flag_meanings="city rest_of_province")
    aux = ["source_id", "source_type"]
    for name, dim, vals, long in (
            ("city_name", "city", receptor_names, "receptor city name"),
            ("city_name_en", "city", receptor_names_en, "receptor city name in English"),
            ("source_label", "source", source_labels, "source label: c<city_id> or r<province_id>"),
            ("source_name", "source", source_names, "source name (city, or province for its ROP)"),
            ("source_name_en", "source", source_names_en, "source name in English")):
        if vals is not None:
            _char_var(ds, name, dim, vals, long)
            aux.append(name)
    for dim, extra in (("city", receptor_vars or {}), ("source", source_vars or {})):
        for name, (vals, attrs) in extra.items():
            vals = list(vals)
            if len(vals) != ds.dimensions[dim].size:
                raise ValueError(f"{dim} variable {name}: {len(vals)} values for {ds.dimensions[dim].size}")
            attrs = dict(attrs or {})
            if all(isinstance(x, (int, float, np.number, bool, np.bool_)) for x in vals):
                arr = np.asarray(vals)
                v = ds.createVariable(name, "i4" if arr.dtype.kind in "iub" else "f8", (dim,))
                v[:] = arr.astype(np.int32) if arr.dtype.kind in "iub" else arr.astype(float)
                attrs.setdefault("units", _units_from_name(name))
                _set_attrs(v, **attrs)
            else:
                _char_var(ds, name, dim, [str(x) for x in vals], attrs.pop("long_name", name), **attrs)
    return aux


def _sr_season_variable(ds, season_matrices, m, aux, complevel):
    """``S_season(season, city, source)`` with the ``season_name`` labels."""
    names = list(season_matrices)
    ds.createDimension("season", len(names))
    sn_ = ds.createVariable("season", "i4", ("season",))
    sn_[:] = np.arange(len(names), dtype=np.int32)
    _set_attrs(sn_, long_name="season index (name in season_name)", units="1")
    _char_var(ds, "season_name", "season", names,
              "season: heating = November to March, non_heating = April to October")
    vs = ds.createVariable("S_season", "f8", ("season", "city", "source"), zlib=True,
                           complevel=complevel, shuffle=True, fill_value=np.float64(-9999.0))
    _set_attrs(vs, long_name=("primary PM2.5 exposure of the receptor city per unit emission intensity "
                              "of the source, by season, times the season's calm coefficient"),
               units=UNIT_RESPONSE_UNITS, coordinates=" ".join(["time", "season_name"] + aux),
               cell_methods="time: mean",
               comment=("a scenario's annual-mean exposure is C = sum over seasons of "
                        "S_season @ (share * q), share = the source's share of its annual emission "
                        "emitted in the season; S = sum over seasons of (days / 365) S_season"))
    for j, k in enumerate(names):
        mk = np.asarray(season_matrices[k], dtype=float)
        if mk.shape != m.shape:
            raise ValueError(f"season_matrices[{k!r}]: shape {mk.shape} != {m.shape}")
        vs[j] = mk


def write_sr_matrix_netcdf(path, matrix, *, receptor_ids, source_ids, source_types, receptor_names=None,
                           source_names=None, source_labels=None, seen=None, receptor_vars=None, source_vars=None,
                           global_attrs=None, receptor_names_en=None, source_names_en=None, comment=None,
                           complevel=COMPLEVEL, season_matrices=None, height_matrices=None, season_height_matrices=None):
    """Write the source-receptor matrix ``sr_matrix.nc`` (CF-1.8), atomically.

    ``S(city, source)`` is the exposure concentration of receptor city i per unit emission
    intensity of source j [ug m-3 per g m-2 s-1 = 1e-6 s m-1], stored in float64 (full
    precision), so a scenario's concentration is ``C = S @ q`` with ``q`` [g m-2 s-1]. Sources are
    every city and every rest of province (ROP) the run's source set includes.

    Coordinates: ``city(city)`` = the receptor's city_id (numeric, so ``.sel(city=110000)`` works);
    ``source(source)`` an index (city and province codes overlap: 110000 is both Beijing city and
    Beijing province) with auxiliary coordinates ``source_id`` (city_id, or province_id for a ROP),
    ``source_type`` (0 city, 1 rest of province; CF flags), and when given ``source_label``
    (``c<id>``/``r<id>``), ``source_name``; ``city_name``. Names of the same layout as
    :func:`engine.pipeline.sr_matrix`'s Dataset (write that one with :func:`write_sr_dataset_netcdf`).

    Parameters
    ----------
    matrix : (n_city, n_source) [ug m-3 per g m-2 s-1]
    receptor_ids : (n_city,) int
    source_ids : (n_source,) int
    source_types : (n_source,) {"city", "rop"}
    receptor_names, source_names, source_labels : optional sequences of str
    seen : optional (n_city, n_source) bool, whether the receptor sees the source (S = 0 where not)
    receptor_vars, source_vars : optional {name: (values, attrs)}: more (city) / (source) variables
        (numbers, or str as char labels); ``attrs`` should carry ``units`` and ``long_name``
    season_matrices : optional {season: (n_city, n_source)}
        Seasonal met: ``S_season(season, city, source)`` (times the season's calm coefficient),
        with ``season_name``; ``S`` is then the matrix of a source emitting at a flat rate.
    """
    import netCDF4

    m = np.asarray(matrix, dtype=float)
    rid = np.asarray(receptor_ids, dtype=np.int64)
    sid = np.asarray(source_ids, dtype=np.int64)
    stype = [str(x) for x in source_types]
    _check_sr_inputs(m, rid, sid, stype, seen, receptor_names=receptor_names, source_names=source_names,
                     source_labels=source_labels)
    with atomic_path(path) as tmp:
        ds = netCDF4.Dataset(tmp, "w", format="NETCDF4")
        try:
            ga = dict(global_attrs or {})
            ga.setdefault("history", f"{_now()} cobenefits sr_matrix")
            ga["title"] = ("Source-receptor matrix of primary PM2.5: city exposure per unit emission intensity of "
                           "every city and rest of province")
            _global(ds, ga)
            ds.createDimension("city", rid.size)
            ds.createDimension("source", sid.size)
            ds.createDimension("nv", 2)
            _time_coord(ds)
            aux = _sr_coordinates(ds, rid, sid, stype, receptor_vars, source_vars,
                                  labels=(receptor_names, receptor_names_en, source_labels, source_names,
                                          source_names_en))
            v = ds.createVariable("S", "f8", ("city", "source"), zlib=True, complevel=complevel, shuffle=True,
                                  fill_value=np.float64(-9999.0))
            _set_attrs(v, long_name=("annual-mean primary PM2.5 exposure of the receptor city per unit emission "
                                     "intensity of the source"),
                       units=UNIT_RESPONSE_UNITS, coordinates=" ".join(["time"] + aux), cell_methods="time: mean",
                       comment=comment or ("ug m-3 per g m-2 s-1; a scenario's exposure is C = S @ q with q the "
                                           "sources' emission intensities [g m-2 s-1]"))
            v[:] = m
            if season_matrices:
                _sr_season_variable(ds, season_matrices, m, aux, complevel)
            if height_matrices is not None:
                write_height_matrices(ds, m.shape, height_matrices, season_height_matrices, aux, complevel,
                                      units=UNIT_RESPONSE_UNITS, set_attrs=_set_attrs, char_var=_char_var)
            if seen is not None:
                f = ds.createVariable("seen", "i1", ("city", "source"), zlib=True, complevel=complevel)
                _set_attrs(f, long_name="whether the receptor city sees the source (source set); S is 0 where not",
                           flag_values=np.array([0, 1], dtype=np.int8), flag_meanings="not_seen seen",
                           coordinates=" ".join(aux))
                f[:] = np.asarray(seen).astype(np.int8)
        finally:
            ds.close()
    return Path(path)


def write_sr_dataset_netcdf(path, S, *, global_attrs=None, receptor_names=None, source_names=None):
    """Write :func:`engine.pipeline.sr_matrix`'s Dataset as a CF ``sr_matrix.nc`` (see
    :func:`write_sr_matrix_netcdf`): ``S(city, source)``, ``seen``; per-city ``city_province``,
    ``exposure``, ``city_area_km2``, ``rop_area_km2``, ``met``; per-source ``source_label``,
    ``source_id``, ``source_type``, ``source_province``. The string ``source`` labels of the
    Dataset become the numeric index + char ``source_label`` (CF and CDO need numeric coordinates).
    """
    skip = {"S", "S_season", "season", "seen", "city", "source", "source_kind", "source_id", "S_height",
            "S_season_height", "height"}
    rvars, svars = {}, {}
    for name in list(S.coords) + list(S.data_vars):
        if name in skip:
            continue
        da = S[name]
        attrs = {k: v for k, v in da.attrs.items() if k in ("units", "long_name")}
        attrs.setdefault("long_name", name.replace("_", " "))
        if da.dims == ("city",):
            rvars[name] = (da.values.tolist(), attrs)
        elif da.dims == ("source",):
            svars[name] = (da.values.tolist(), attrs)
    attrs = dict(global_attrs or {})
    for k in ("source_set", "source_reach_km", "emission_heights"):
        if k in S.attrs:
            attrs[k] = S.attrs[k]
    return write_sr_matrix_netcdf(
        path, S["S"].values, receptor_ids=S["city"].values, source_ids=S["source_id"].values,
        source_types=[str(k) for k in S["source_kind"].values], source_labels=[str(x) for x in S["source"].values],
        receptor_names=receptor_names, source_names=source_names,
        seen=S["seen"].values if "seen" in S else None, receptor_vars=rvars, source_vars=svars, global_attrs=attrs,
        season_matrices=({str(k): S["S_season"].sel(season=k).values for k in S["season"].values}
                         if "S_season" in S else None),
        height_matrices=({str(k): S["S_height"].sel(height=k).values for k in S["height"].values}
                         if "S_height" in S else None),
        season_height_matrices=(S["S_season_height"].transpose("season", "height", "city", "source").values
                                if "S_season_height" in S else None),
        comment=("ug m-3 per g m-2 s-1, for a source emitting at a flat rate all year"
                 + (" at the ground (emission-height classes: see S_height)" if "S_height" in S else "")
                 + ("; seasonal met: see S_season" if "S_season" in S else "")
                 if ("S_season" in S or "S_height" in S) else None))

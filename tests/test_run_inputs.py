"""`[dispersion] footprints_geojson` and `population_grid` in `cobenefits run` (synthetic nation)."""

import json
import math

import netCDF4
import numpy as np
import pandas as pd
import pytest

import synthetic_nation as sn
from engine.dispersion import fields as fl
from engine.dispersion import geometry as geo
from engine.output import writers as eio
from engine import pipeline as pl
from engine.commands.run import run_national
from engine.config import load_config
from engine.errors import InputError

CITY = 130100  # Central-A: centroid (38.0 N, 115.0 E), 300 km2 disc by default
LAT0, LON0 = 38.0, 115.0


# --------------------------------------------------------------------------- helpers
def _config(folder, cities=str(CITY), **dispersion):
    """The synthetic two-scenario config with extra ``[dispersion]`` keys (strings)."""
    paths = sn.write_configs(folder)
    if dispersion:
        keys = "".join(f'{k} = "{v}"\n' for k, v in dispersion.items())
        for p in paths:
            text = p.read_text()  # write_configs' [dispersion] table, when there is one, comes last
            p.write_text(text + (keys if "[dispersion]" in text else "\n[dispersion]\n" + keys))
    return load_config(paths, overrides={"data": {"cities": cities}})


def _run(cfg, out, **kw):
    kw.setdefault("carbon_fn", sn.carbon_fn())
    return run_national(cfg, out, data=sn.nation(), age_population_fn=sn.age_population_fn, quiet=True,
                        use_cache=kw.pop("use_cache", False), **kw)


def _never(*a, **k):
    raise AssertionError("field work started before the input was checked")


def _square(lat, lon, half_km):
    dlat = math.degrees(half_km * 1e3 / geo.EARTH_RADIUS_M)
    dlon = dlat / math.cos(math.radians(lat))
    return [[lon - dlon, lat - dlat], [lon + dlon, lat - dlat], [lon + dlon, lat + dlat],
            [lon - dlon, lat + dlat], [lon - dlon, lat - dlat]]


def _geojson(path, features):
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _feature(ring, **props):
    return {"type": "Feature", "properties": props, "geometry": {"type": "Polygon", "coordinates": [ring]}}


#: population grid: 0.01 deg cells, centres 37.505 ... 38.495 N, 114.405 ... 115.595 E
STEP = 0.01
GRID_LAT = 37.5 + STEP * (np.arange(100) + 0.5)
GRID_LON = 114.4 + STEP * (np.arange(120) + 0.5)


def _write_nc(path, values, units="people km-2", name="population"):
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("lat", GRID_LAT.size)
        nc.createDimension("lon", GRID_LON.size)
        la = nc.createVariable("lat", "f8", ("lat",))
        la[:], la.units, la.standard_name = GRID_LAT, "degrees_north", "latitude"
        lo = nc.createVariable("lon", "f8", ("lon",))
        lo[:], lo.units, lo.standard_name = GRID_LON, "degrees_east", "longitude"
        v = nc.createVariable(name, "f8", ("lat", "lon"), fill_value=-9999.0)
        if units is not None:
            v.units = units
        v[:] = values
    return path


def _block_mask(lat, lon, lat_lo, lat_hi, lon_lo, lon_hi):
    """Points inside the block of population cells whose edges are the given bounds."""
    return (lat >= lat_lo) & (lat < lat_hi) & (lon >= lon_lo) & (lon < lon_hi)


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("default")
    return _run(_config(tmp / "cfg"), tmp / "out")


# --------------------------------------------------------------------------- config
def test_keys_documented_and_default_empty():
    from engine.config import DispersionConfig

    d = DispersionConfig()
    assert d.footprints_geojson == "" and d.population_grid == ""
    assert d.resolve_paths(["/anywhere/x.toml"]) == {}


def test_default_run_records_area_mean(default):
    assert set(default.cities.exposure) == {"area_mean"}
    s = json.loads((default.out_dir / "summary.json").read_text())
    assert s["exposure"]["by_city"] == {str(CITY): "area_mean"}
    assert s["exposure"]["population_grid"] is None
    assert s["footprints"]["polygon_city_ids"] == []


# --------------------------------------------------------------------------- footprints
def test_geojson_footprint_changes_area_and_result(tmp_path, default):
    # a 24 km x 24 km square (576 km2) instead of the 300 km2 disc, given by a relative path
    (tmp_path / "cfg").mkdir()
    _geojson(tmp_path / "cfg" / "fp.geojson", [_feature(_square(LAT0, LON0, 12.0), city_id=CITY, name="A")])
    res = _run(_config(tmp_path / "cfg", footprints_geojson="fp.geojson"), tmp_path / "out")
    area = float(eio.open_city(res.out_dir / "city_fields.nc", CITY).city_area_km2)
    area_disc = float(eio.open_city(default.out_dir / "city_fields.nc", CITY).city_area_km2)
    assert area == pytest.approx(576.0, rel=0.02)  # rasterisation of the edges at 1 km
    assert area_disc == pytest.approx(300.0, rel=0.02)
    new = res.cities.set_index(["scenario", "city_id"]).conc_ug_m3
    old = default.cities.set_index(["scenario", "city_id"]).conc_ug_m3
    # same intensity over a larger area: more emitted mass around the city, higher mean
    assert (new > old * 1.05).all()
    s = json.loads((res.out_dir / "summary.json").read_text())
    assert s["footprints"]["polygon_city_ids"] == [CITY]
    assert s["footprints"]["file"]["path"] == str((tmp_path / "cfg" / "fp.geojson").resolve())


@pytest.mark.parametrize("feature, message", [
    ({"type": "Feature", "properties": {"name": "x"},
      "geometry": {"type": "Polygon", "coordinates": [_square(LAT0, LON0, 5)]}}, "feature 1 has no property 'city_id'"),
    (_feature(_square(LAT0, LON0, 5), city_id=999999), "feature 1: city_id = 999999 is not in the data set"),
    (_feature([[LON0, LAT0], [LON0 + 0.1, LAT0]], city_id=130200), "feature 1 (city_id=130200): invalid geometry"),
    (_feature([[LAT0, LON0], [LAT0 + 0.1, LON0], [LAT0 + 0.1, LON0 + 0.1]], city_id=130200),
     "feature 1 (city_id=130200): invalid geometry: a coordinate is outside"),
    (_feature([[LON0, LAT0], [LON0 + 0.1, LAT0], [LON0 + 0.2, LAT0]], city_id=130200), "ring has zero area"),
    (_feature(_square(LAT0, LON0, 5), city_id=CITY), "feature 1: city_id = 130100 repeats feature 0"),
    (_feature(_square(30.0, 100.0, 5), city_id=130200), "feature 1 (city_id=130200): the polygon lies"),
    ({"type": "Feature", "properties": {"city_id": 130200}, "geometry": {"type": "Point", "coordinates": [1, 2]}},
     "has geometry type 'Point'"),
])
def test_bad_geojson_stops_before_work(tmp_path, monkeypatch, feature, message):
    monkeypatch.setattr(fl, "compute_city_field", _never)
    path = _geojson(tmp_path / "fp.geojson", [_feature(_square(LAT0, LON0, 8), city_id=CITY), feature])
    cfg = _config(tmp_path / "cfg", footprints_geojson=path)
    with pytest.raises(InputError, match=str(path)) as exc:
        _run(cfg, tmp_path / "out", carbon_fn=_never, kernel_fn=_never)
    assert message in str(exc.value)


# --------------------------------------------------------------------------- population
def test_population_in_one_part_moves_exposure_to_that_part(tmp_path, default):
    # everybody lives in a 0.06 deg block (about 6.7 km x 5.3 km) at the city centre
    lat_lo, lat_hi, lon_lo, lon_hi = 37.97, 38.03, 114.97, 115.03
    dens = np.zeros((GRID_LAT.size, GRID_LON.size))
    dens[np.ix_((GRID_LAT > lat_lo) & (GRID_LAT < lat_hi), (GRID_LON > lon_lo) & (GRID_LON < lon_hi))] = 2500.0
    _write_nc(tmp_path / "pop.nc", dens)
    res = _run(_config(tmp_path, population_grid=tmp_path / "pop.nc"), tmp_path / "out")
    assert set(res.cities.exposure) == {"population_weighted"}
    s = json.loads((res.out_dir / "summary.json").read_text())
    assert s["exposure"]["by_city"] == {str(CITY): "population_weighted"}
    assert s["exposure"]["population_grid"]["units"] == "people km-2"
    # the block's own (area-weighted) mean concentration, from the written city file
    prep = pl.prepare(_config(tmp_path / "again"), data=sn.nation())  # same grid, no work
    lat, lon = geo.city_grid(prep.geometries[CITY]).latlon()
    with eio.open_city(res.out_dir / "city_fields.nc", CITY) as nc:
        pm = np.asarray(nc["pm25"].values, dtype=float)
        frac = np.asarray(nc["city_fraction"].values, dtype=float)
        scen = [str(s) for s in nc["scenario"].values]
    w = frac * _block_mask(lat, lon, lat_lo, lat_hi, lon_lo, lon_hi)
    assert w.sum() > 0
    new = res.cities.set_index(["scenario", "city_id"]).conc_ug_m3
    old = default.cities.set_index(["scenario", "city_id"]).conc_ug_m3
    for k, name in enumerate(scen):
        block = float((pm[k] * w).sum() / w.sum())
        area = float((pm[k] * frac).sum() / frac.sum())
        assert new[(name, CITY)] == pytest.approx(block, rel=1e-5)  # float32 storage of pm25
        assert area == pytest.approx(old[(name, CITY)], rel=1e-5)
        assert block > area * 1.05  # the centre is the most polluted part of a uniform source


def test_population_at_the_edge_lowers_exposure(tmp_path, default):
    dens = np.zeros((GRID_LAT.size, GRID_LON.size))
    dens[np.ix_((GRID_LAT > 38.07) & (GRID_LAT < 38.09), (GRID_LON > 114.97) & (GRID_LON < 115.03))] = 800.0
    _write_nc(tmp_path / "pop.nc", dens)
    res = _run(_config(tmp_path, population_grid=tmp_path / "pop.nc"), tmp_path / "out")
    new = res.cities.set_index(["scenario", "city_id"]).conc_ug_m3
    old = default.cities.set_index(["scenario", "city_id"]).conc_ug_m3
    assert (new < old).all()


def test_uniform_population_gives_the_area_mean(tmp_path, default):
    _write_nc(tmp_path / "pop.nc", np.full((GRID_LAT.size, GRID_LON.size), 1234.5))
    res = _run(_config(tmp_path, population_grid="pop.nc"), tmp_path / "out")  # relative to the config
    assert set(res.cities.exposure) == {"population_weighted"}
    np.testing.assert_allclose(res.cities.conc_ug_m3, default.cities.conc_ug_m3, rtol=1e-6)  # task: area mean to 1e-6


def test_uniform_population_counts_from_csv(tmp_path, default):
    # people per cell: density = count / cell area varies as 1/cos(lat), 0.3 % over the city
    rows = [(lo, la, 100.0) for la in GRID_LAT for lo in GRID_LON]
    csv = tmp_path / "pop.csv"
    csv.write_text("# units: people\n" + pd.DataFrame(rows, columns=["lon", "lat", "population"]).to_csv(index=False))
    res = _run(_config(tmp_path, population_grid=csv), tmp_path / "out")
    assert set(res.cities.exposure) == {"population_weighted"}
    np.testing.assert_allclose(res.cities.conc_ug_m3, default.cities.conc_ug_m3, rtol=1e-3)  # cos(lat) weights


def test_population_grid_reader_counts_and_orientation(tmp_path):
    # descending latitudes, people per cell -> density per km2 by the cell's spherical area
    vals = np.zeros((GRID_LAT.size, GRID_LON.size))
    vals[10, 20] = 50.0
    with netCDF4.Dataset(tmp_path / "c.nc", "w") as nc:
        nc.createDimension("y", GRID_LAT.size)
        nc.createDimension("x", GRID_LON.size)
        la = nc.createVariable("latitude", "f8", ("y",))
        la[:], la.units = GRID_LAT[::-1], "degrees_north"
        lo = nc.createVariable("longitude", "f8", ("x",))
        lo[:], lo.units = GRID_LON, "degrees_east"
        v = nc.createVariable("pop", "f4", ("y", "x"))
        v.units = "persons"
        v[:] = vals[::-1]
    pg = geo.read_population_grid(tmp_path / "c.nc")
    r = geo.EARTH_RADIUS_M / 1e3
    phi = np.radians(GRID_LAT[10])
    cell_km2 = r * r * math.radians(STEP) * (math.sin(phi + math.radians(STEP / 2)) - math.sin(phi - math.radians(STEP / 2)))
    assert pg(GRID_LAT[10], GRID_LON[20]) == pytest.approx(50.0 / cell_km2, rel=1e-9)  # sin(a)-sin(b) cancellation
    assert pg(GRID_LAT[11], GRID_LON[20]) == 0.0
    assert np.isnan(pg(40.0, 115.0))  # outside the grid
    assert pg(GRID_LAT[10], GRID_LON[20] - 360.0) == pg(GRID_LAT[10], GRID_LON[20])


def test_cache_keys_on_population_content(tmp_path, monkeypatch):
    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path / "cache"))
    pop = tmp_path / "pop.nc"
    dens = np.ones((GRID_LAT.size, GRID_LON.size))
    dens[:50] = 100.0  # the southern half of the city is crowded
    _write_nc(pop, dens)
    cfg = _config(tmp_path / "cfg", population_grid=pop)
    first = _run(cfg, tmp_path / "o1", use_cache=True)
    assert first.n_from_cache == 0
    again = _run(cfg, tmp_path / "o2", use_cache=True)
    assert again.n_from_cache == 1
    _write_nc(pop, dens[::-1])  # same file name, other content: the northern half is crowded
    changed = _run(cfg, tmp_path / "o3", use_cache=True)
    assert changed.n_from_cache == 0
    assert not np.allclose(changed.cities.conc_ug_m3, first.cities.conc_ug_m3, rtol=1e-6)


def _csv(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: _write_nc(p / "p.nc", np.ones((100, 120)), units=None), "variable 'population' has no units"),
    (lambda p: _write_nc(p / "p.nc", np.ones((100, 120)), units="kg m-2"), "has units 'kg m-2'; allowed"),
    (lambda p: _write_nc(p / "p.nc", -np.ones((100, 120))), "negative population"),
    (lambda p: _write_nc(p / "p.nc", np.zeros((100, 120))), "no positive population value"),
    (lambda p: _csv(p / "p.csv", "lon,lat,population\n115,38,1\n115.01,38,1\n115,38.01,1\n"), "no units"),
    (lambda p: _csv(p / "p.csv", "# units: km-2\nlon,lat,pop\n115,38,1\n"), "missing column(s) population"),
    (lambda p: _csv(p / "p.csv", "# units: km-2\nlon,lat,population\n115,38,1\n115.01,38,1\n115.025,38,1\n"
                                 "115,38.01,1\n"), "not on a regular grid"),
    (lambda p: _csv(p / "p.nc", "not a netcdf file"), "cannot read as NetCDF"),
])
def test_bad_population_grid_stops_before_work(tmp_path, monkeypatch, make, message):
    monkeypatch.setattr(fl, "compute_city_field", _never)
    path = make(tmp_path)
    cfg = _config(tmp_path / "cfg", population_grid=path)
    with pytest.raises(InputError, match=str(path)) as exc:
        _run(cfg, tmp_path / "out", carbon_fn=_never, kernel_fn=_never)
    assert message in str(exc.value)


@pytest.mark.parametrize("key", ["footprints_geojson", "population_grid"])
def test_missing_file_is_exit_2_naming_key_and_path(tmp_path, capsys, key):
    from engine.cli import main

    cfg = tmp_path / "s.toml"
    cfg.write_text(f'[scenario]\nname = "x"\n[dispersion]\n{key} = "nowhere/file.dat"\n')
    assert main(["run", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"[dispersion] {key} = " in err  # the path as resolved against the config folder
    assert str(tmp_path / "nowhere" / "file.dat") in err and "does not exist" in err
    assert "Traceback" not in err


def test_bad_geojson_via_cli_is_exit_2(tmp_path, capsys):
    from engine.cli import main

    _geojson(tmp_path / "fp.geojson", [{"type": "Feature", "properties": {},
                                        "geometry": {"type": "Polygon", "coordinates": [_square(LAT0, LON0, 5)]}}])
    cfg = tmp_path / "s.toml"
    cfg.write_text('[scenario]\nname = "x"\n[dispersion]\nfootprints_geojson = "fp.geojson"\n')
    assert main(["run", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "fp.geojson") in err and "feature 0 has no property 'city_id'" in err


def test_population_grid_with_a_single_time_step(tmp_path):
    with netCDF4.Dataset(tmp_path / "t.nc", "w") as nc:
        nc.createDimension("time", 1)
        nc.createDimension("lat", 3)
        nc.createDimension("lon", 4)
        la = nc.createVariable("lat", "f8", ("lat",))
        la[:], la.units = [10.0, 11.0, 12.0], "degrees_north"
        lo = nc.createVariable("lon", "f8", ("lon",))
        lo[:], lo.units = [1.0, 2.0, 3.0, 4.0], "degrees_east"
        v = nc.createVariable("population_density", "f4", ("time", "lat", "lon"))
        v.units = "km-2"
        v[:] = np.arange(12.0).reshape(1, 3, 4)
    pg = geo.read_population_grid(tmp_path / "t.nc")
    assert pg.density.shape == (3, 4)
    assert pg(11.2, 3.1) == 6.0  # row 1, column 2

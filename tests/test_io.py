"""The writers of engine.output (netcdf, tables): the combined city file, the per-city files, the source-receptor
matrix, the city's own met, CSV rounding."""

import functools
import inspect

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import synthetic_nation as sn
from engine.dispersion import geometry as geo
from engine.output import writers as eio
from engine import pipeline as pl
from engine.commands.run import run_national
from engine.config import load_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("io")
    mp = pytest.MonkeyPatch()
    kw = {}
    if "city_files" in inspect.signature(run_national).parameters:
        kw["city_files"] = "both"
    else:  # a run that does not take the option yet
        mp.setattr(eio, "write_concentration_netcdf",
                   functools.partial(eio.write_concentration_netcdf, city_fields="both"))
    try:
        cfg = load_config(sn.write_configs(tmp / "cfg"))
        res = run_national(cfg, tmp / "out", data=sn.nation(), age_population_fn=sn.age_population_fn, quiet=True,
                           carbon_fn=sn.carbon_fn(), **kw)
        prep = pl.prepare(cfg, data=sn.nation())
    finally:
        mp.undo()
    return res, prep


def test_combined_file_sel_city_equals_its_own_file(run):
    res, prep = run
    ds = xr.open_dataset(res.out_dir / "city_fields.nc")
    assert ds.pm25.dims == ("city", "scenario", "y", "x")
    assert sorted(ds.city.values.tolist()) == sorted(sn.CITIES.city_id)
    for cid, name in zip(sn.CITIES.city_id, sn.CITIES.name):
        one = ds.sel(city=cid)
        assert str(one.city_name.values) == name
        assert int(one.province_id) == cid // 10000 * 10000
        ny, nx = int(one.grid_ny), int(one.grid_nx)
        g = geo.city_grid(prep.geometries[cid])
        assert (ny, nx) == g.shape
        own = xr.open_dataset(res.out_dir / "cities" / f"c{cid}.nc")
        np.testing.assert_array_equal(one.pm25.values[:, :ny, :nx], own.pm25.values)
        np.testing.assert_array_equal(one.city_fraction.values[:ny, :nx], own.city_fraction.values)
        lat, lon = g.latlon()
        # stored quantised to 1e-5 degree (least_significant_digit=5: error <= 2**-17 degree = 7.6e-6)
        np.testing.assert_allclose(one.lat.values[:ny, :nx], lat, rtol=0, atol=1e-5)
        np.testing.assert_allclose(one.lon.values[:ny, :nx], lon, rtol=0, atol=1e-5)
        # fill outside the city's grid
        assert np.isnan(one.pm25.values[:, ny:, :]).all() and np.isnan(one.pm25.values[:, :, nx:]).all()
        assert np.isnan(one.lat.values[ny:, :]).all()


def test_combined_file_scenarios_and_concentrations(run):
    res, _ = run
    c = res.cities.set_index(["scenario", "city_id"])
    for cid in sn.CITIES.city_id:
        one = eio.open_city(res.out_dir / "city_fields.nc", cid)
        assert list(one.scenario.values) == ["base", "cut"]
        w = one.city_fraction / one.city_fraction.sum()
        for s in ("base", "cut"):
            mean = float((one.pm25.sel(scenario=s) * w).sum())
            assert mean == pytest.approx(c.loc[(s, cid), "conc_ug_m3"], rel=1e-5)  # float32 storage


def test_cell_bounds_enclose_centres(run):
    res, _ = run
    with netCDF4.Dataset(res.out_dir / "city_fields.nc") as nc:
        lat, lb = nc["lat"][0], nc["lat_bnds"][0]
        lon, ob = nc["lon"][0], nc["lon_bnds"][0]
        ny, nx = int(nc["grid_ny"][0]), int(nc["grid_nx"][0])
    lat, lb, lon, ob = lat[:ny, :nx], lb[:ny, :nx], lon[:ny, :nx], ob[:ny, :nx]
    assert (lb.min(axis=-1) < lat).all() and (lat < lb.max(axis=-1)).all()
    assert (ob.min(axis=-1) < lon).all() and (lon < ob.max(axis=-1)).all()
    # counter-clockwise from south-west: corner 0 is south-west of corner 2
    assert (lb[..., 0] < lb[..., 2]).all() and (ob[..., 0] < ob[..., 2]).all()
    # 1 km cells: 1 km of latitude is 1/111.19 degrees on the engine's sphere
    np.testing.assert_allclose(lb[..., 3] - lb[..., 0], 1000.0 / (geo.EARTH_RADIUS_M * np.pi / 180), rtol=2e-3)


def test_each_city_names_its_own_met():
    g = ("default-climatology-v1, climate region 'north_china' (synthetic, representative; see engine.dispersion.climatology); "
         "default-climatology-v1, climate region 'sichuan_basin' (synthetic, representative; see engine.dispersion.climatology)")
    bj = eio.city_met({"city_id": 110000, "climate_region": "north_china"}, g)
    cd = eio.city_met({"city_id": 510100, "climate_region": "sichuan_basin"}, g)
    assert "north_china" in bj and "sichuan_basin" not in bj
    assert "sichuan_basin" in cd and "north_china" not in cd
    files = "aermet: m/110000.sfc + m/110000.pfl; aermet: m/120000.sfc + m/120000.pfl"
    assert eio.city_met({"city_id": 120000, "province_id": 120000}, files) == "aermet: m/120000.sfc + m/120000.pfl"
    assert eio.city_met({"city_id": 1, "province_id": 1, "met": "given"}, g) == "given"


def test_city_file_met_attribute_is_the_citys(run):
    res, _ = run
    with netCDF4.Dataset(res.out_dir / "cities" / "c130100.nc") as nc:
        assert "; " not in nc.met and nc.met.startswith("star:")
    ds = xr.open_dataset(res.out_dir / "city_fields.nc")
    assert all("; " not in str(m) for m in ds.met.values)


def test_sr_matrix_roundtrip_and_checks(tmp_path):
    m = np.array([[1.5e-3, 2.0e-4, 3.0e-5], [4.0e-6, 5.0e-4, 6.0e-3]])
    p = eio.write_sr_matrix_netcdf(tmp_path / "sr_matrix.nc", m, receptor_ids=[110000, 120000],
                                   receptor_names=["北京市", "天津市"], source_ids=[110000, 120000, 110000],
                                   source_types=["city", "city", "rop"], source_names=["北京市", "天津市", "北京市"],
                                   seen=m > 1e-5, receptor_vars={"city_area_km2": ([12185.9, 7878.2], {})})
    ds = xr.open_dataset(p)
    np.testing.assert_array_equal(ds.S.values, m)  # float64: full precision
    assert ds.S.attrs["units"] == "1e-6 s m-1"
    assert ds.sel(city=120000).city_name.item() == "天津市"
    assert ds.city_area_km2.attrs["units"] == "km2"
    rop = ds.source.where(ds.source_type == 1, drop=True)
    assert ds.source_id.sel(source=rop).values.tolist() == [110000]
    assert ds.seen.values.tolist() == (m > 1e-5).astype(int).tolist()
    with pytest.raises(ValueError, match="shape"):
        eio.write_sr_matrix_netcdf(tmp_path / "x.nc", m[:, :2], receptor_ids=[1, 2], receptor_names=["a", "b"],
                                   source_ids=[1, 2, 3], source_types=["city"] * 3, source_names=list("abc"))
    with pytest.raises(ValueError, match="allowed 'city', 'rop'"):
        eio.write_sr_matrix_netcdf(tmp_path / "x.nc", m, receptor_ids=[1, 2], receptor_names=["a", "b"],
                                   source_ids=[1, 2, 3], source_types=["city", "town", "rop"], source_names=list("abc"))
    assert not (tmp_path / "x.nc").exists()


def test_sr_dataset_adapter_keeps_every_number(run, tmp_path):
    _, prep = run
    S = pl.sr_matrix(prep, quiet=True)  # the pipeline's layout (string source labels); rows from the cache
    p = eio.write_sr_dataset_netcdf(tmp_path / "sr.nc", S)
    out = xr.open_dataset(p)
    np.testing.assert_array_equal(out.S.values, S.S.values)
    assert [str(x) for x in out.source_label.values] == [str(x) for x in S.source.values]
    assert out.source_type.values.tolist() == [0 if k == "city" else 1 for k in S.source_kind.values]
    np.testing.assert_array_equal(out.rop_area_km2.values, S.rop_area_km2.values)
    assert [str(x) for x in out.met.values] == [str(x) for x in S.met.values]


def test_city_fields_option_checked(tmp_path):
    with pytest.raises(ValueError, match="allowed 'combined'"):
        eio.write_concentration_netcdf(tmp_path / "c.nc", scenarios=["a"], mosaic_lat=[1.0], mosaic_lon=[1.0],
                                       mosaic_pm25=np.ones((1, 1, 1)), mosaic_owner=np.zeros((1, 1)), cities=[],
                                       global_attrs={}, earth_radius_m=geo.EARTH_RADIUS_M, city_fields="zarr")


def test_csv_significant_digits(tmp_path):
    df = pd.DataFrame({"city_id": [110000, 120000], "name": ["北京市", "x"], "lat": [39.904211, 39.084158],
                       "conc_ug_m3": [3.14159265358979, 1234567.891], "n": [1, 2]})
    eio.write_csv(df, tmp_path / "a.csv", significant_digits=4)
    text = (tmp_path / "a.csv").read_text()
    assert "110000,北京市,39.9,3.142,1" in text and "1.235e+06" in text
    eio.write_csv(df, tmp_path / "b.csv")
    assert pd.read_csv(tmp_path / "b.csv").conc_ug_m3[0] == 3.14159265358979  # default: full precision
    with pytest.raises(ValueError, match="1..17"):
        eio.write_csv(df, tmp_path / "c.csv", significant_digits=0)


def test_round_significant():
    x = np.array([0.0, 123456.0, -0.00123456, np.nan, 9.99951])
    np.testing.assert_array_equal(eio.round_significant(x, 3)[[0, 1, 2, 4]], [0.0, 123000.0, -0.00123, 10.0])
    assert np.isnan(eio.round_significant(x, 3)[3])

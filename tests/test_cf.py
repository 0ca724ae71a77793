"""Every NetCDF file the engine writes passes the CF checker and opens in CDO.

The CF checker is the IOOS compliance-checker (``pip install compliance-checker``, in the
``test`` extra), run offline against the CF standard-name table v93 pinned in
``tests/data/cf-standard-name-table-v93-excerpt.xml``. CDO comes from the system package manager
(``apt-get install -y cdo``). Each check skips with the reason when its tool is missing.
"""

import functools
import inspect
import json
import shutil
import subprocess
from pathlib import Path

import netCDF4
import numpy as np
import pytest

import synthetic_nation as sn
from engine.dispersion import geometry as geo
from engine.output import writers as eio
from engine import pipeline as pl
from engine.commands.run import run_national
from engine.config import load_config

DATA = Path(__file__).parent / "data"
SN_TABLE = DATA / "cf-standard-name-table-v93-excerpt.xml"
#: messages of the checker that are not CF errors. compliance-checker 6.1 asks a bounds variable
#: to have >= 2 dimensions, but CF 1.8 sec. 7.1 says a boundary variable has one dimension more
#: than its coordinate: a scalar time coordinate (0-D) has 1-D bounds (time_bnds(nv)).
KNOWN_CHECKER_QUIRKS = ("Boundary variable time_bnds specified by time should have at least two dimensions",)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, monkeypatch_module):
    tmp = tmp_path_factory.mktemp("cf")
    kw = {}
    if "city_files" in inspect.signature(run_national).parameters:
        kw["city_files"] = "both"
    else:  # a run that does not take the option yet
        monkeypatch_module.setattr(eio, "write_concentration_netcdf",
                                   functools.partial(eio.write_concentration_netcdf, city_fields="both"))
    cfg = load_config(sn.write_configs(tmp / "cfg"))
    res = run_national(cfg, tmp / "out", data=sn.nation(), age_population_fn=sn.age_population_fn, quiet=True,
                       carbon_fn=sn.carbon_fn(), **kw)
    # the run's source-receptor Dataset (engine.pipeline.sr_matrix, from the cache), written by the CF writer
    S = pl.sr_matrix(pl.prepare(cfg, data=sn.nation()), quiet=True)
    eio.write_sr_dataset_netcdf(res.out_dir / "sr_matrix.nc", S, global_attrs={"history": "test"},
                                receptor_names=[str(n) for n in sn.CITIES.set_index("city_id").loc[S.city.values, "name"]])
    # a seasonal matrix (the default met): S_season(season, city, source) beside S
    cfg_s = load_config(sn.write_configs(tmp / "cfg_seasonal", extra_met='climatology = "default"'))
    S = pl.sr_matrix(pl.prepare(cfg_s, data=sn.nation()), quiet=True)
    assert "S_season" in S
    eio.write_sr_dataset_netcdf(res.out_dir / "sr_matrix_seasonal.nc", S, global_attrs={"history": "test"})
    return res.out_dir


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


FILES = ["concentration.nc", "city_fields.nc", "cities/c130100.nc", "cities/c410200.nc", "sr_matrix.nc",
         "sr_matrix_seasonal.nc"]


def _cf_check(path, tmp_path, monkeypatch):
    runner = pytest.importorskip("compliance_checker.runner",
                                 reason="compliance-checker not installed (pip install compliance-checker)")
    monkeypatch.setenv("CF_STANDARD_NAME_TABLE", str(SN_TABLE))
    runner.CheckSuite.load_all_available_checkers()
    out = tmp_path / "cc.json"
    runner.ComplianceChecker.run_checker(str(path), ["cf:1.8"], 0, "strict", output_filename=str(out),
                                         output_format="json")
    rep = json.loads(out.read_text())["cf:1.8"]

    def failed(items):
        return [m for r in items if r["value"][0] < r["value"][1] for m in (r["msgs"] or [r["name"]])]
    return failed(rep["high_priorities"]), failed(rep["medium_priorities"])


@pytest.mark.parametrize("name", FILES)
def test_cf_checker_no_errors(outputs, name, tmp_path, monkeypatch):
    errors, warnings = _cf_check(outputs / name, tmp_path, monkeypatch)
    assert errors == []
    assert [w for w in warnings if not w.startswith(KNOWN_CHECKER_QUIRKS)] == []


def test_cf_checker_catches_a_bad_file(outputs, tmp_path, monkeypatch):
    # the check can fail: an unknown standard_name (not in the pinned table) and a string coordinate
    bad = tmp_path / "bad.nc"
    shutil.copy(outputs / "concentration.nc", bad)
    with netCDF4.Dataset(bad, "a") as nc:
        nc["pm25"].standard_name = "mass_concentration_of_pm25_in_air"
    errors, _ = _cf_check(bad, tmp_path, monkeypatch)
    assert any("standard_name" in e for e in errors)


def test_time_scenario_and_crs(outputs):
    with netCDF4.Dataset(outputs / "concentration.nc") as nc:
        assert nc["scenario"].dtype == np.int32
        assert list(nc["scenario_name"][:]) == ["base", "cut"]  # char array, decoded by _Encoding
        assert nc["time"].units == "days since 2010-01-01" and list(nc["time_bnds"][:]) == [0.0, 365.0]
        assert nc["pm25"].cell_methods == "time: mean area: mean"
        assert nc["crs"].crs_wkt.startswith("GEOGCRS[")
    for name in FILES:
        with netCDF4.Dataset(outputs / name) as nc:
            for v in nc.variables.values():
                std = getattr(v, "standard_name", "")
                if std in ("latitude", "longitude", "projection_x_coordinate", "projection_y_coordinate"):
                    assert hasattr(v, "bounds"), (name, v.name)  # every spatial coordinate has bounds


def test_crs_wkt_is_the_engine_projection():
    pyproj = pytest.importorskip("pyproj", reason="pyproj not installed")
    lat0, lon0 = 39.9, 116.4
    crs = pyproj.CRS.from_wkt(eio.crs_wkt_aeqd(lat0, lon0, geo.EARTH_RADIUS_M))
    tr = pyproj.Transformer.from_crs(pyproj.CRS.from_wkt(eio.crs_wkt_latlon(geo.EARTH_RADIUS_M)), crs)
    lat = np.array([39.9, 40.3, 39.1, 41.0])
    lon = np.array([116.4, 116.9, 115.2, 118.0])
    x, y = tr.transform(lat, lon)  # axis order of the WKT: latitude first
    ex, ey = geo.aeqd_forward(lat, lon, lat0, lon0)
    np.testing.assert_allclose(x, ex, atol=1e-3)  # same sphere and projection: mm agreement
    np.testing.assert_allclose(y, ey, atol=1e-3)


# --------------------------------------------------------------------------- CDO
def _values(text):
    return [float(t) for line in text.splitlines() if not line.startswith("#") for t in line.split()]


def _cdo(*args):
    if shutil.which("cdo") is None:
        pytest.skip("cdo not installed (apt-get install -y cdo)")
    p = subprocess.run(["cdo", "-s", *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.mark.parametrize("name", ["concentration.nc", "cities/c130100.nc", "sr_matrix.nc", "sr_matrix_seasonal.nc"])
def test_cdo_sinfo(outputs, name):
    out = _cdo("sinfo", str(outputs / name))
    assert "Time coordinate" in out and "2010-07-02" in out


def test_cdo_fldmean_matches_area_weighted_mean(outputs):
    vals = _values(_cdo("outputkey,value", "-selname,pm25", "-fldmean", str(outputs / "concentration.nc")))
    with netCDF4.Dataset(outputs / "concentration.nc") as nc:
        pm = nc["pm25"][:]
        lb = nc["lat_bnds"][:]
    # spherical cell area ~ sin(lat_n) - sin(lat_s) on a regular lon step; missing cells left out
    w = (np.sin(np.radians(lb[:, 1])) - np.sin(np.radians(lb[:, 0])))[:, None] * np.ones(pm.shape[2])
    expect = [float((pm[k] * w).sum() / np.ma.array(w, mask=np.ma.getmaskarray(pm[k])).sum())
              for k in range(pm.shape[0])]
    np.testing.assert_allclose(vals, expect, rtol=1e-5)  # float32 data, CDO prints 7 digits


def test_cdo_fldmean_city_file(outputs):
    vals = _values(_cdo("outputkey,value", "-selname,pm25", "-fldmean", str(outputs / "cities/c130100.nc")))
    with netCDF4.Dataset(outputs / "cities/c130100.nc") as nc:
        pm = np.asarray(nc["pm25"][:], float)
    # 1 km cells of an azimuthal-equidistant grid: their areas differ by < 0.1 % over 40 km
    np.testing.assert_allclose(vals, pm.mean(axis=(1, 2)), rtol=2e-3)


def test_cdo_remapcon_uses_the_cell_bounds(outputs, tmp_path):
    # conservative remapping needs every cell's corners; without bounds CDO aborts
    src = outputs / "cities/c130100.nc"
    with netCDF4.Dataset(src) as nc:
        lat, lon = nc["lat"][:], nc["lon"][:]
        pm = np.asarray(nc["pm25"][0], float)
    grid = tmp_path / "grid.txt"
    grid.write_text(f"gridtype = lonlat\nxsize = 8\nysize = 8\nxfirst = {float(lon.mean()) - 0.14}\nxinc = 0.04\n"
                    f"yfirst = {float(lat.mean()) - 0.105}\nyinc = 0.03\n")  # inside the city's 40 km grid
    out = tmp_path / "r.nc"
    _cdo(f"remapcon,{grid}", "-selname,pm25", str(src), str(out))
    with netCDF4.Dataset(out) as nc:
        r = np.asarray(nc["pm25"][:], float)[0].ravel()
    # an area-weighted mean of source cells: inside the source range, never NaN
    assert np.isfinite(r).all()
    assert pm.min() - 1e-4 <= r.min() and r.max() <= pm.max() + 1e-4


def test_seasonal_matrix_round_trips(outputs):
    import xarray as xr

    with xr.open_dataset(outputs / "sr_matrix_seasonal.nc") as ds:
        assert ds["S_season"].dims == ("season", "city", "source")
        assert [str(x) for x in ds["season_name"].values] == ["heating", "non_heating"]
        # S is the flat-emission matrix: the days-weighted sum of the seasons
        flat = (151 / 365) * ds["S_season"].isel(season=0) + (214 / 365) * ds["S_season"].isel(season=1)
        np.testing.assert_allclose(ds["S"].values, flat.values, rtol=1e-12)
        assert (ds["S_season"].isel(season=0) > ds["S_season"].isel(season=1)).sum() > 0

"""`cobenefits run` on a small synthetic nation (tests/synthetic_nation.py)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import synthetic_nation as sn
from engine.dispersion import fields as fl
from engine.output import writers as eio
from engine import pipeline as pl
from engine.commands.run import run_national
from engine.constants import SECONDS_PER_YEAR
from engine.config import load_config
from engine.errors import InputError


def _run(tmp, cfg=None, **kw):
    cfg = cfg or load_config(sn.write_configs(tmp / "cfg"))
    kw.setdefault("carbon_fn", sn.carbon_fn())
    return run_national(cfg, tmp / "out", data=sn.nation(), age_population_fn=sn.age_population_fn,
                        quiet=True, **kw)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("run"), use_cache=False)


def test_outputs_and_columns(result):
    out = result.out_dir
    for name in ("concentration.nc", "cities.csv", "national.csv", "summary.json"):
        assert (out / name).exists()
    c = pd.read_csv(out / "cities.csv")
    need = ["conc_ug_m3", "conc_from_city_ug_m3", "conc_from_rop_ug_m3", "rop_share", "deaths_mean", "deaths_p2_5",
            "deaths_p97_5", "avoided_deaths_mean", "avoided_deaths_p2_5", "avoided_deaths_p97_5",
            "co2_t", "pm25_intensity_g_m2_yr"]
    assert set(need) <= set(c.columns)
    assert len(c) == 8
    parts = (c.conc_from_city_ug_m3 + c.conc_from_other_cities_ug_m3 + c.conc_from_rop_ug_m3
             + c.conc_from_other_provinces_ug_m3)
    np.testing.assert_allclose(c.conc_ug_m3, parts, rtol=1e-5)  # cities.csv: 6 significant digits
    assert (c.conc_from_other_cities_ug_m3 > 0).all()  # default source_set 'province': neighbours count
    cut = c[c.scenario == "cut"]
    assert (cut.avoided_deaths_mean > 0).all()
    assert (cut.avoided_deaths_p2_5 <= cut.avoided_deaths_mean).all()
    s = result.summary["scenarios"]["cut"]
    assert {"high_high_cities", "r2_conc_reduction_vs_intensity_reduction", "megacities"} <= set(s)
    assert s["megacities"]["n"] == 1


def test_scenarios_follow_by_linearity(result):
    c = result.cities.set_index(["scenario", "city_id"])
    for s in ("base", "cut"):
        cs = c.loc[s]
        q = cs.pm25_intensity_g_m2_yr / SECONDS_PER_YEAR
        np.testing.assert_allclose(cs.conc_from_city_ug_m3, q * cs.unit_response_city, rtol=1e-12)


def test_emission_change_recomputes_no_field_and_scales_exactly(tmp_path, result):
    # same cache: fields are reused; doubled emissions double every concentration
    first = _run(tmp_path, use_cache=True)  # fills the cache (may already be there)
    again = _run(tmp_path, use_cache=True, carbon_fn=sn.carbon_fn(scale=2.0))
    assert again.n_from_cache == again.n_cities == 4
    np.testing.assert_allclose(again.cities.conc_ug_m3, 2 * first.cities.conc_ug_m3, rtol=1e-12)
    np.testing.assert_allclose(first.cities.conc_ug_m3, result.cities.conc_ug_m3, rtol=1e-12)


def test_rop_matters_and_border_city_sees_less(tmp_path, result):
    no_rop = _run(tmp_path, use_cache=True, carbon_fn=sn.carbon_fn(rop_scale=0.0))
    assert (no_rop.cities.conc_ug_m3.values < result.cities.conc_ug_m3.values).all()
    assert (result.cities.rop_share > 0.05).all()
    u = result.cities[result.cities.scenario == "base"].set_index("city_id").unit_response_rop
    assert u[130200] < u[130100] and u[410200] < u[410100]


def test_netcdf_is_cf(result):
    path = result.out_dir / "concentration.nc"
    with netCDF4.Dataset(path) as nc:
        assert nc.Conventions == "CF-1.8"
        assert "cobenefits_config" in nc.ncattrs() and "cobenefits_versions" in nc.ncattrs()
        v = nc["pm25"]
        assert v.units == "ug m-3"
        assert v.standard_name == "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"
        assert v.grid_mapping == "crs" and nc["crs"].grid_mapping_name == "latitude_longitude"
        assert v.filters()["zlib"]
        assert nc["lat"].units == "degrees_north" and nc["lon"].units == "degrees_east"
        assert nc["lat"].bounds == "lat_bnds"
    with netCDF4.Dataset(result.out_dir / "city_fields.nc") as g:
        assert g.Conventions == "CF-1.8"
        assert g["crs"].grid_mapping_name == "latitude_longitude"
        assert {"lat", "lon", "scenario_name"} <= set(g["pm25"].coordinates.split())
        assert g["pm25"].units == "ug m-3"
    ds = xr.open_dataset(path)
    assert ds.pm25.dims == ("scenario", "lat", "lon")
    assert list(ds.scenario_name.values) == ["base", "cut"]
    g = eio.open_city(result.out_dir / "city_fields.nc", 130100)
    c = result.cities.set_index(["scenario", "city_id"])
    w = g.city_fraction / g.city_fraction.sum()
    mean = float((g.pm25.sel(scenario="base") * w).sum())
    assert mean == pytest.approx(c.loc[("base", 130100), "conc_ug_m3"], rel=1e-5)  # float32 storage
    assert float(ds.pm25.max()) > 0


def test_identical_fields_on_1_and_2_workers_and_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    cfg = load_config(sn.write_configs(tmp_path / "cfg"))
    prep = pl.prepare(cfg, data=sn.nation())
    q = pl.emissions(prep, sn.carbon_fn()(cfg, prep.data))
    spec = fl.MosaicSpec.covering(34, 39, 113, 116, 0.1)
    r1, _ = pl.receptor_pass(prep, q=q, use_cache=False, workers=1, quiet=True, mosaic=spec)
    r2, _ = pl.receptor_pass(prep, q=q, use_cache=False, workers=2, quiet=True, mosaic=spec)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        with distributed.Client(cl) as client:
            r3, _ = pl.receptor_pass(prep, q=q, use_cache=False, client=client, quiet=True, mosaic=spec)
    for cid in r1:
        for other in (r2, r3):
            assert np.array_equal(r1[cid].pm25, other[cid].pm25)
            assert np.array_equal(r1[cid].unit_rop, other[cid].unit_rop)
            assert np.array_equal(r1[cid].row, other[cid].row)


def test_resume_after_a_killed_run(tmp_path):
    # deterministic (no sleep that a loaded machine can outrun): the child computes and caches the
    # first city's source-receptor row, then blocks in the second city until it is killed
    cache = tmp_path / "cache"
    marker = tmp_path / "blocked"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, threading, time
        from pathlib import Path
        sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(Path(__file__).parent.parent)!r}]  # this tree's engine
        os.environ["COBENEFITS_CACHE_DIR"] = {str(cache)!r}
        import synthetic_nation as sn
        from engine.dispersion import srmatrix
        from engine.commands.run import run_national
        from engine.config import load_config
        first = srmatrix.compute_receptor
        calls, lock = [0], threading.Lock()
        def compute(*a, **k):
            with lock:
                calls[0] += 1
                n = calls[0]
            if n >= 2:  # the first city is computed and cached (compute_receptor saves its row)
                Path({str(marker)!r}).write_text(str(n))
                while True:
                    time.sleep(60)
            return first(*a, **k)
        srmatrix.compute_receptor = compute
        cfg = load_config(sn.write_configs({str(tmp_path / 'cfg')!r}))
        run_national(cfg, {str(tmp_path / 'killed')!r}, data=sn.nation(), carbon_fn=sn.carbon_fn(),
                     age_population_fn=sn.age_population_fn, workers=1, quiet=True)
    """))
    proc = subprocess.Popen([sys.executable, str(script)])
    try:
        t0 = time.time()
        while not marker.exists():
            assert proc.poll() is None, "child finished before it could be killed"
            assert time.time() - t0 < 300, "the child never reached its second city"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    done = len(list((cache / "sr").glob("*.npz")))
    assert done == 1
    assert not (tmp_path / "killed" / "concentration.nc").exists()  # no half-written output
    old = os.environ.get("COBENEFITS_CACHE_DIR")
    os.environ["COBENEFITS_CACHE_DIR"] = str(cache)
    try:
        resumed = _run(tmp_path, use_cache=True)
    finally:
        os.environ["COBENEFITS_CACHE_DIR"] = old
    assert resumed.n_from_cache == done
    clean = _run(tmp_path / "clean", use_cache=False)
    np.testing.assert_array_equal(resumed.cities.conc_ug_m3.values, clean.cities.conc_ug_m3.values)


def _never(*a, **k):
    raise AssertionError("work started before the input was checked")


def test_broken_config_stops_with_clear_message(tmp_path, capsys):
    from engine.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text('[scenario]\nname = "x"\n[dispersion]\ncity_resolutoin_m = 500\n')
    assert main(["run", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "city_resolutoin_m" in err and "did you mean 'city_resolution_m'" in err
    assert "Traceback" not in err


def test_missing_or_broken_met_stops_before_work(tmp_path):
    cfg = load_config(sn.write_configs(tmp_path / "a", extra_met='star_file = "/nonexistent/star.txt"'))
    with pytest.raises(InputError, match="/nonexistent/star.txt"):
        _run(tmp_path, cfg=cfg, carbon_fn=_never, kernel_fn=_never)
    broken = tmp_path / "broken_star.txt"
    broken.write_text("0.1 0.2 0.3\n")
    cfg = load_config(sn.write_configs(tmp_path / "b", extra_met=f'star_file = "{broken}"'))
    with pytest.raises(InputError, match="line 1: expected 16 sector frequencies"):
        _run(tmp_path, cfg=cfg, carbon_fn=_never, kernel_fn=_never)


def test_broken_data_stops_before_work(tmp_path):
    cfg = load_config(sn.write_configs(tmp_path / "cfg"))
    data = sn.nation()
    bad = data.cities.copy()
    bad.loc[130200, "province_id"] = 990000
    import dataclasses

    with pytest.raises(InputError, match="province 990000"):
        run_national(cfg, tmp_path / "o", data=dataclasses.replace(data, cities=bad), carbon_fn=_never,
                     kernel_fn=_never, age_population_fn=sn.age_population_fn, quiet=True)
    unknown = load_config(sn.write_configs(tmp_path / "c2"), overrides={"data": {"cities": "Atlantis"}})
    with pytest.raises(InputError, match="Atlantis"):
        run_national(unknown, tmp_path / "o", data=data, carbon_fn=_never, kernel_fn=_never,
                     age_population_fn=sn.age_population_fn, quiet=True)


def test_high_high_and_r2_use_percentage_reductions(result):
    # recomputed here from the cities table with the paper's (Fig. 4) definitions (full precision: the
    # near-constant percentages of the synthetic nation make R2 sensitive to the CSV's 6 digits)
    c = result.cities
    b = c[c.scenario == "base"].set_index("city_id")
    s = c[c.scenario == "cut"].set_index("city_id").loc[b.index]
    pco2 = 100 * (b.co2_t - s.co2_t) / b.co2_t
    pdeaths = 100 * s.avoided_deaths_mean / b.deaths_mean
    hh = int(((pco2 > pco2.mean()) & (pdeaths > pdeaths.mean())).sum())
    summ = result.summary["scenarios"]["cut"]
    assert summ["high_high_cities"] == hh
    x = 100 * (b.pm25_intensity_g_m2_yr - s.pm25_intensity_g_m2_yr) / b.pm25_intensity_g_m2_yr
    y = 100 * (b.conc_ug_m3 - s.conc_ug_m3) / b.conc_ug_m3
    r = np.corrcoef(x, y)[0, 1]
    if np.isfinite(r):
        assert summ["r2_conc_reduction_vs_intensity_reduction"] == pytest.approx(r * r, rel=1e-9)
    assert "high_high_cities_absolute" in summ and "r2_conc_reduction_vs_intensity_reduction_absolute" in summ


_KILL_CHILD = """
import os, sys, time
from pathlib import Path
sys.path[:0] = [{tests!r}, os.path.dirname({tests!r})]  # this tree's engine, not an installed one
os.environ["COBENEFITS_CACHE_DIR"] = {cache!r}
import synthetic_nation as sn
import engine.output.writers
from engine.commands.run import run_national
from engine.config import load_config
marker, scale, slow = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "slow"
orig = engine.output.writers.write_csv
def write_csv(df, path, **kw):
    orig(df, path, **kw)
    if slow and Path(path).name == "cities.csv":
        marker.write_text("writing")
        time.sleep(60)
engine.output.writers.write_csv = write_csv
cfg = load_config(sn.write_configs(Path({cfg!r})))
run_national(cfg, {out!r}, data=sn.nation(), carbon_fn=sn.carbon_fn(scale=scale),
             age_population_fn=sn.age_population_fn, workers=1, quiet=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_run_killed_while_writing_keeps_the_previous_output(tmp_path, sig):
    from engine.output.persist import read_manifest, verify_output

    out = tmp_path / "out"
    script = tmp_path / "child.py"
    script.write_text(_KILL_CHILD.format(tests=str(Path(__file__).parent), cache=str(tmp_path / "cache"),
                                         cfg=str(tmp_path / "cfg"), out=str(out)))
    marker = tmp_path / "marker"
    subprocess.run([sys.executable, str(script), str(marker), "1.0", "fast"], check=True)
    previous = {p: (out / p).read_bytes() for p in ("cities.csv", "national.csv", "concentration.nc")}
    manifest = read_manifest(out)
    proc = subprocess.Popen([sys.executable, str(script), str(marker), "2.0", "slow"])
    t0 = time.time()
    while not marker.exists():
        assert proc.poll() is None and time.time() - t0 < 120
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    # the previous complete set, untouched: nothing half-new, and the manifest still verifies
    assert {p: (out / p).read_bytes() for p in previous} == previous
    assert read_manifest(out) == manifest and verify_output(out) == []
    # a re-run completes and matches a clean run of the same inputs
    subprocess.run([sys.executable, str(script), str(marker), "2.0", "fast"], check=True)
    clean = _run(tmp_path / "clean", carbon_fn=sn.carbon_fn(scale=2.0), use_cache=False)
    again = pd.read_csv(out / "cities.csv")
    np.testing.assert_allclose(again.conc_ug_m3, clean.cities.conc_ug_m3, rtol=1e-5)
    assert verify_output(out) == []


def test_forked_workers_give_the_threads_bits_on_the_default_physics(monkeypatch):
    # the default physics (height classes, seasons) takes the spectral path, whose city tasks run
    # in forked workers under [run] pool = "processes"; the fields and rows are the threads' bits
    from engine import parallel
    from engine.commands.run import _mosaic_spec

    used = []
    real = parallel._run_processes
    monkeypatch.setattr(parallel, "_run_processes", lambda *a, **k: used.append(1) or real(*a, **k))
    out = {}
    for pool in ("threads", "processes"):
        prep = pl.prepare(load_config(None, overrides={"data": {"cities": "Hainan"}, "run": {"pool": pool}}))
        q = pl.emissions(prep, pl.carbon(prep))
        out[pool], _ = pl.receptor_pass(prep, q=q, mosaic=_mosaic_spec(prep, 0.25), workers=2, quiet=True)
    assert len(used) == (1 if parallel.fork_available() else 0)
    a, b = out["threads"], out["processes"]
    assert sorted(a) == sorted(b) and len(a) >= 3
    for cid in a:
        for name in ("pm25", "unit_city", "unit_rop", "row", "season_height_rows"):
            assert np.array_equal(getattr(a[cid], name), getattr(b[cid], name)), name
        assert a[cid].mosaic["index"].tolist() == b[cid].mosaic["index"].tolist()
        assert np.array_equal(a[cid].mosaic["values"], b[cid].mosaic["values"])


def test_concentration_files_written_by_a_forked_child_equal_those_written_here(tmp_path, monkeypatch):
    # the default run writes concentration.nc and city_fields.nc in a forked child while it computes
    # health (engine.parallel.Background); one worker writes them in this process: the same numbers
    from engine import parallel

    forks = []
    real = parallel.Background.__init__

    def spy(self, fn, *a, fork=True, **k):
        forks.append(fork)
        real(self, fn, *a, fork=fork, **k)

    monkeypatch.setattr(parallel.Background, "__init__", spy)
    here = _run(tmp_path / "here", use_cache=False, workers=1)
    child = _run(tmp_path / "child", use_cache=False, workers=2)
    assert forks == [False, True]
    for name in ("concentration.nc", "city_fields.nc"):
        with xr.open_dataset(here.out_dir / name) as a, xr.open_dataset(child.out_dir / name) as b:
            assert sorted(a.data_vars) == sorted(b.data_vars) and len(a.data_vars) >= 2
            for v in a.data_vars:
                assert np.array_equal(a[v].values, b[v].values, equal_nan=a[v].dtype.kind == "f"), v
    t = child.summary["timings_s"]
    assert t["concentration_write_s"] > 0 and t["write_s"] > 0

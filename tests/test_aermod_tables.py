"""Speed measures of the AERMOD mode that must not change a number (issue 21).

* Hour tables computed only up to a bound on the receptor-source distance
  (:func:`engine.dispersion.area.hour_tables` ``x_max_m``), and for a few receptors (a
  flagpole height) only for the hours in which a source point is upwind of one of them
  (``hour_mask``): the points computed are the full table's, the rest NaN, and the
  concentrations of every path (gridded, direct, polygon, flagpole heights) are
  bit-identical to those with full tables.
* The receptor columns of the PLOT files formatted once per run: the same bytes as
  formatting them for every file, and a changed receptor set is formatted anew.
* ``benchmarks/bench_aermod_case.py --case X`` replaces X's record and keeps the others.
"""

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
MET = ROOT / "tests" / "data" / "aermod" / "met"


@pytest.fixture(scope="module")
def met():
    from engine.dispersion.met import read_aermet

    return read_aermet(MET / "lovett1988_0627_0701.sfc", MET / "lovett1988_0627_0701.pfl")


def _clear():
    import engine.dispersion.area as disp

    disp._TABLE_CACHE.clear()


def test_table_points_cover_the_lookups():
    """Hand derivation: table_lookup at x reads points floor(ln(x / X_MIN) / DLNX) and the
    next, so a bound x_max needs that index + 2 points (one more kept as margin)."""
    from kernels.hour_setup import table_points_for
    from kernels.xtable import DLNX, NX, X_MIN

    for x in (1.0, 1.01, 37.0, 1000.0, 12345.6, 3.9e6):
        n = table_points_for(x)
        i = int(math.log(x / X_MIN) / DLNX)
        assert n >= min(NX, i + 2)
        assert n <= NX
    assert table_points_for(1.0e9) == NX
    # 10 km: 4 decades at 160 points per decade -> point 640 and the next, + 1 margin
    assert table_points_for(10000.0) == 643


def test_limited_tables_equal_the_full_tables(met):
    """Points below the bound bit-identical to the full table's; NaN above (a lookup there
    would show as NaN, not as a wrong number)."""
    from engine.dispersion.area import hour_tables
    from kernels.hour_setup import table_points_for

    _clear()
    full = [a.copy() for a in hour_tables(met, 0.0, 0.0, 2.0)]
    _clear()
    part = hour_tables(met, 0.0, 0.0, 2.0, x_max_m=5000.0)
    n = table_points_for(5000.0)
    ok = np.isfinite(met.wind_speed_m_s)
    valid = np.isfinite(full[2])
    assert valid.sum() > 50 and ok.any()
    np.testing.assert_array_equal(part[2], full[2])
    np.testing.assert_array_equal(part[0][:, :n], full[0][:, :n])
    np.testing.assert_array_equal(part[1][:, :n], full[1][:, :n])
    np.testing.assert_array_equal(part[1][:, -2:], full[1][:, -2:])  # cutoff coefficients
    assert np.isnan(part[0][valid, -1]).all()
    # a later call needing more points gets the whole table, not the cached short one
    again = hour_tables(met, 0.0, 0.0, 2.0)
    np.testing.assert_array_equal(again[0], full[0])
    # hours left out by a mask are calm (wd NaN), the others the full table's; a later call
    # needing every hour does not get the masked table
    _clear()
    mask = np.arange(len(full[2])) % 3 == 0
    part = hour_tables(met, 0.0, 0.0, 2.0, hour_mask=mask)
    assert np.isnan(part[2][~mask]).all()
    np.testing.assert_array_equal(part[0][mask], full[0][mask])
    np.testing.assert_array_equal(part[2][mask], full[2][mask])
    np.testing.assert_array_equal(hour_tables(met, 0.0, 0.0, 2.0)[2], full[2])
    _clear()


def _sources():
    from engine.dispersion.area import AreaSources, PolygonSources, regular_polygon_vertices

    rect = AreaSources([-900.0, 400.0], [-300.0, -1200.0], [500.0, 300.0], [800.0, 300.0],
                       angle_deg=[0.0, 25.0], rate_g_m2_s=[1e-6, 2e-6])
    concave = (np.array([0.0, 900.0, 900.0, 500.0, 500.0, 300.0, 300.0, 0.0]) + 600.0,
               np.array([0.0, 0.0, 700.0, 700.0, 250.0, 250.0, 700.0, 700.0]) + 500.0)
    poly = PolygonSources([concave, regular_polygon_vertices(-1500.0, 1200.0, 400.0, 20)],
                          rate_g_m2_s=[1e-6, 3e-6], release_height_m=[0.0, 10.0])
    grid = AreaSources(*[a.ravel() for a in np.meshgrid(np.arange(-2000.0, 0.0, 500.0),
                                                        np.arange(0.0, 2000.0, 500.0))],
                       500.0, 500.0, rate_g_m2_s=1e-6)
    return rect, poly, grid


def test_concentrations_unchanged_by_limited_tables(met, monkeypatch):
    """Every path of the AERMOD mode, ground and flagpole receptors: the x-limited tables,
    and for the few flagpole receptors the tables of the hours they need only, give the
    same bits as the full tables of every hour (the bound is never too short, a skipped
    hour is one where AERMOD gives 0)."""
    import engine.dispersion.area as disp

    rect, poly, grid = _sources()
    g = np.arange(-3000.0, 3000.1, 250.0)
    rx, ry = [a.ravel() for a in np.meshgrid(g, g)]
    # flagpoles: nine receptors north-east of every source (hours with the wind from the
    # north-east leave them without an upwind source)
    rz = np.where((rx >= 2500.0) & (ry >= 2500.0), 12.0, 0.0)
    calls = {
        "direct": lambda: disp.area_concentrations(rect, rx, ry, met, method="direct",
                                                   lateral_cdf="aermod_table", receptor_z_m=rz),
        "gridded": lambda: disp.area_concentrations(grid, rx, ry, met, method="auto",
                                                    lateral_cdf="aermod_table", receptor_z_m=rz),
        "polygon": lambda: disp.polygon_concentrations(poly, rx, ry, met,
                                                       lateral_cdf="aermod_table",
                                                       receptor_z_m=rz),
        "exact": lambda: disp.area_concentrations(rect, rx[::7], ry[::7], met, method="direct"),
    }
    for name, fn in calls.items():
        _clear()
        limited = fn()
        from kernels.xtable import NX

        entries = list(disp._TABLE_CACHE.values())
        assert all(v[3] < NX for v in entries), name  # limited indeed
        if name != "exact":  # the flagpole receptors' tables skip hours (some valid ones)
            assert any(v[4] is not None and (np.isfinite(met.wind_speed_m_s) & ~v[4]
                                             & np.asarray(met.valid, bool)).any()
                       for v in entries), name
        with monkeypatch.context() as m:
            m.setattr(disp, "_distance_bound", lambda *a: None)
            m.setattr(disp, "_hours_needed", lambda *a: None)
            _clear()
            full = fn()
        assert np.isfinite(limited).all(), name
        assert limited.max() > 0.0, name
        np.testing.assert_array_equal(limited, full, err_msg=name)
    _clear()


def test_distance_bound_is_a_bound():
    """The bound is the diagonal of the common bounding box: >= every receptor-vertex
    distance, and attained by opposite corners."""
    from engine.dispersion.area import _distance_bound

    rng = np.random.default_rng(7)
    rx, ry = rng.uniform(-5e3, 5e3, (2, 40))
    sx, sy = rng.uniform(-8e3, 2e3, (2, 30))
    b = _distance_bound(rx, ry, sx, sy)
    d = np.hypot(rx[:, None] - sx[None, :], ry[:, None] - sy[None, :])
    assert b >= d.max()
    assert _distance_bound(np.array([0.0]), np.array([0.0]), np.array([3.0]),
                           np.array([4.0])) == 5.0


def test_receptor_text_formatted_once_and_anew(tmp_path):
    """Two files for the same receptors share the formatted columns; new coordinates (same
    object mutated, or another set) are formatted again: the records match a fresh run."""
    import engine.aermod.writers as wr
    from engine.aermod.control import Receptors

    rec = Receptors(np.array([1.5, -2000.25]), np.array([3.0, 4.0]), np.zeros(2), np.zeros(2),
                    np.array([0.0, 10.0]), ("G1", ""))
    a = wr._receptor_parts(rec, "1-HR", "ALL")
    assert wr._receptor_parts(rec, "PERIOD", "POLY")[0] is a[0]
    assert a[0][1] == f" {wr.fortran_f(-2000.25, 13, 5)} {wr.fortran_f(4.0, 13, 5)}"
    assert a[1][1].startswith(f" {wr.fortran_f(0.0, 8, 2)} {wr.fortran_f(0.0, 8, 2)} "
                              f"{wr.fortran_f(10.0, 8, 2)}    1-HR  ALL")
    rec.x_m[1] = 7.0  # mutated in place: formatted anew
    b = wr._receptor_parts(rec, "1-HR", "ALL")
    assert b[0][1] == f" {wr.fortran_f(7.0, 13, 5)} {wr.fortran_f(4.0, 13, 5)}"
    wr._RECEPTOR_TEXT[:] = [None, None]
    assert wr._receptor_parts(rec, "1-HR", "ALL") == b


def test_bench_case_option_keeps_other_records(tmp_path):
    """``--case X`` replaces X's record in the results json and keeps every other one, in
    the order of the benchmark's case list."""
    spec = importlib.util.spec_from_file_location(
        "bench_aermod_case", ROOT / "benchmarks" / "bench_aermod_case.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "r.json"
    out.write_text(json.dumps({"cases": [{"case": mod.CASES[2], "v": 1},
                                         {"case": mod.CASES[0], "v": 2},
                                         {"case": "custom", "v": 3}]}))
    merged = mod._merge_cases(out, [{"case": mod.CASES[2], "v": 9}])
    assert merged == [{"case": mod.CASES[0], "v": 2}, {"case": mod.CASES[2], "v": 9},
                      {"case": "custom", "v": 3}]
    assert mod._merge_cases(tmp_path / "none.json", [{"case": "a"}]) == [{"case": "a"}]

"""``cobenefits aermod CONTROL.inp``: the whole command-line path.

Two groups of tests:

* plumbing (exit codes, messages, output files, atomic writes, RUNORNOT NOT) with a small
  stand-in for the physics modules, so that they test this command and nothing else;
* the reference cases of the unmodified EPA AERMOD v24142 (tests/data/aermod), run on the
  unmodified control files through the real physics, against the issue's accuracy criteria.
"""

import json
import shutil
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main

DATA = Path(__file__).parent / "data" / "aermod"
N_GRID = 41 * 41


def _data_lines(path):
    return [ln for ln in Path(path).read_text().split("\n") if ln and not ln.startswith("*")]


def _conc(lines):
    return np.array([float(ln[28:42]) for ln in lines])


# --------------------------------------------------------------------------- stand-in physics
@pytest.fixture
def stub_physics(monkeypatch):
    """Replace engine.dispersion.met/engine.dispersion.area by a transparent stand-in for plumbing tests.

    Hour 3 is flagged calm; the hourly value is (hour + 1) * (receptor index + 1) * sum(rate).
    """
    calls = {}
    met_mod = types.ModuleType("engine.dispersion.met")
    disp_mod = types.ModuleType("engine.dispersion.area")

    @dataclass
    class Met:
        wind_speed_m_s: np.ndarray
        calm: np.ndarray
        missing: np.ndarray

    def read_aermet(sfc, pfl):
        calls["met"] = (Path(sfc), Path(pfl))
        n = sum(1 for ln in Path(sfc).read_text().splitlines()[1:] if ln.strip())
        calm = np.zeros(n, bool)
        calm[2] = True
        return Met(np.full(n, 3.0), calm, np.zeros(n, bool))

    @dataclass
    class AreaSources:
        x_sw_m: np.ndarray
        y_sw_m: np.ndarray
        x_len_m: np.ndarray
        y_len_m: np.ndarray
        angle_deg: np.ndarray
        rate_g_m2_s: np.ndarray
        release_height_m: np.ndarray
        initial_sigma_z_m: np.ndarray

        def __post_init__(self):
            if np.any(self.release_height_m > 50):
                raise ValueError("release_height_m must be <= 50 m")

    def area_concentrations(sources, rx, ry, met, *, method="auto", lateral_cdf="exact"):
        calls["conc"] = (sources, rx.copy(), ry.copy(), method)
        calls["lateral_cdf"] = lateral_cdf
        n_h = met.wind_speed_m_s.size
        out = np.outer(np.arange(1, n_h + 1), np.arange(1, rx.size + 1)).astype(float)
        out *= sources.rate_g_m2_s.sum()
        out[met.calm] = np.nan  # the stand-in marks calm hours with NaN
        return out

    def period_average(hourly, met):
        ok = ~(met.calm | met.missing)
        return hourly[ok].sum(axis=0) / ok.sum()

    met_mod.read_aermet = read_aermet
    disp_mod.AreaSources = AreaSources
    disp_mod.area_concentrations = area_concentrations
    disp_mod.period_average = period_average
    monkeypatch.setitem(sys.modules, "engine.dispersion.met", met_mod)
    monkeypatch.setitem(sys.modules, "engine.dispersion.area", disp_mod)
    return calls


def _copy_case(tmp_path, case="caseA_single"):
    shutil.copytree(DATA / "met", tmp_path / "met")
    shutil.copytree(DATA / case, tmp_path / case)
    return tmp_path / case / "aermod.inp"


# --------------------------------------------------------------------------- plumbing
def test_help_lists_options(capsys):
    with pytest.raises(SystemExit) as ex:
        main(["aermod", "--help"])
    assert ex.value.code == 0
    out = capsys.readouterr().out
    for word in ("CONTROL.inp", "--outdir", "--method", "relative to its folder"):
        assert word in out


def test_bad_input_exits_2_with_file_and_line(tmp_path, capsys):
    inp = _copy_case(tmp_path)
    text = inp.read_text().replace("1.000000E+00   0.0   1000.0", "1.000000E+00  -1.0   1000.0")
    inp.write_text(text)
    assert main(["aermod", str(inp)]) == 2
    err = capsys.readouterr().err
    assert f"{inp}, line 13: SRCPARAM: release height [m] (field 5) = '-1.0' must be >= 0" in err
    assert "Traceback" not in err
    assert not (tmp_path / "caseA_single" / "hourly_all.pst.tmp").exists()


def test_missing_control_file_exits_2(tmp_path, capsys):
    assert main(["aermod", str(tmp_path / "nope.inp")]) == 2
    assert "control file not found" in capsys.readouterr().err


def test_runornot_not_checks_without_physics(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "engine.dispersion.area", None)  # importing it would fail
    inp = _copy_case(tmp_path)
    inp.write_text(inp.read_text().replace("RUNORNOT RUN", "RUNORNOT NOT"))
    out = tmp_path / "out"
    assert main(["aermod", str(inp), "--outdir", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["errors.out"]
    assert "RUNORNOT NOT" in (out / "errors.out").read_text()


def test_outputs_with_stub_physics(tmp_path, stub_physics):
    inp = DATA / "caseA_single" / "aermod.inp"  # unmodified; outputs go to --outdir
    out = tmp_path / "out"
    assert main(["aermod", str(inp), "--outdir", str(out), "--method", "direct"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "errors.out", "hourly_all.pst", "period_all.pst", "period_plot.plt"]
    assert stub_physics["met"] == ((DATA / "met" / "synth5.sfc").resolve(),
                                   (DATA / "met" / "synth5.pfl").resolve())
    sources, rx, ry, method = stub_physics["conc"]
    assert method == "direct" and rx.size == N_GRID + 18
    assert stub_physics["lateral_cdf"] == "aermod_table"  # AERMOD mode: AERMOD's CDF table
    np.testing.assert_array_equal(sources.x_sw_m, [-500.0])
    np.testing.assert_array_equal(sources.y_len_m, [1000.0])
    n = rx.size
    expected = np.outer(np.arange(1, 6), np.arange(1, n + 1)).astype(float)
    expected[2] = 0.0  # calm hour: AERMOD writes 0
    for fname in ("hourly_all.pst", "period_all.pst"):
        mine, ref = _data_lines(out / fname), _data_lines(DATA / "caseA_single" / fname)
        assert len(mine) == len(ref)
        # byte-for-byte the reference layout except the CONC field
        assert [m[:28] + m[42:] for m in mine] == [r[:28] + r[42:] for r in ref]
    hourly = _conc(_data_lines(out / "hourly_all.pst")).reshape(5, n)
    np.testing.assert_allclose(hourly, expected, rtol=5e-7)  # E13.6: 6 significant digits
    period = _conc(_data_lines(out / "period_all.pst"))
    np.testing.assert_allclose(period, expected[[0, 1, 3, 4]].mean(axis=0), rtol=5e-7)
    assert _data_lines(out / "period_plot.plt") == _data_lines(out / "period_all.pst")
    plot_header = (out / "period_plot.plt").read_text().split("\n")[:8]
    assert "PLOT FILE OF PERIOD VALUES AVERAGED ACROSS   0 YEARS" in plot_header[3]
    assert not list(out.glob(".*tmp"))


def test_default_outdir_is_control_folder(tmp_path, stub_physics, monkeypatch):
    inp = _copy_case(tmp_path, "caseC_20x20_timing")
    (inp.parent / "period_all.pst").unlink()
    monkeypatch.chdir(tmp_path)  # not the control file's folder
    assert main(["aermod", str(inp)]) == 0
    assert (inp.parent / "period_all.pst").exists() and (inp.parent / "period_plot.plt").exists()
    assert not (tmp_path / "period_all.pst").exists()
    lines = _data_lines(inp.parent / "period_all.pst")
    assert len(lines) == N_GRID and lines[0].endswith("PERIOD  ALL       00000024  CG1     ")


def test_physics_failure_leaves_no_outputs(tmp_path, stub_physics, capsys):
    def boom(*a, **k):
        raise RuntimeError("kernel failure")

    sys.modules["engine.dispersion.area"].area_concentrations = boom
    out = tmp_path / "out"
    out.mkdir()
    (out / "period_all.pst").write_text("previous\n")
    assert main(["aermod", str(DATA / "caseA_single" / "aermod.inp"), "--outdir", str(out)]) == 1
    assert "internal error: RuntimeError: kernel failure" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["period_all.pst"]
    assert (out / "period_all.pst").read_text() == "previous\n"


def test_source_rejected_by_physics_exits_2(tmp_path, stub_physics, capsys):
    inp = _copy_case(tmp_path)
    inp.write_text(inp.read_text().replace("1.000000E+00   0.0   1000.0",
                                           "1.000000E+00   60.0   1000.0"))
    assert main(["aermod", str(inp), "--outdir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{inp}, line 13: SRCPARAM A1: release_height_m must be <= 50 m" in err


# --------------------------------------------------------------------------- reference cases
CASES = ["caseA_single", "caseA_single_h1", "caseB_3x3", "caseC_20x20_timing"]


@pytest.fixture(scope="module")
def reference_runs(tmp_path_factory):
    """Run every reference case once through the CLI (real physics) and keep the outputs."""
    pytest.importorskip("engine.dispersion.area", reason="physics module not in this build")
    pytest.importorskip("engine.dispersion.met", reason="met module not in this build")
    runs = {}
    for case in CASES:
        out = tmp_path_factory.mktemp(case)
        rc = main(["aermod", str(DATA / case / "aermod.inp"), "--outdir", str(out), "--quiet"])
        runs[case] = (rc, out)
    return runs


@pytest.mark.parametrize("case", CASES)
def test_reference_layout(case, reference_runs):
    """Every data line of every output equals AERMOD's byte for byte except CONC."""
    rc, out = reference_runs[case]
    assert rc == 0
    for fname in ("period_all.pst", "hourly_all.pst"):
        ref = DATA / case / fname
        if not ref.exists():
            continue
        mine, theirs = _data_lines(out / fname), _data_lines(ref)
        assert len(mine) == len(theirs)
        assert [m[:28] + m[42:] for m in mine] == [t[:28] + t[42:] for t in theirs]
        assert all(np.isfinite(_conc(mine)))


@pytest.mark.parametrize("case", CASES)
def test_reference_period_accuracy(case, reference_runs):
    """PERIOD: within 2 % at >= 95 % of receptors above 1 % of the case maximum, within 10 %
    at all of them (issue 3)."""
    rc, out = reference_runs[case]
    assert rc == 0
    ref = _conc(_data_lines(DATA / case / "period_all.pst"))
    mine = _conc(_data_lines(out / "period_all.pst"))
    sel = ref > 0.01 * ref.max()
    rel = np.abs(mine[sel] / ref[sel] - 1.0)
    assert np.mean(rel <= 0.02) >= 0.95, (np.mean(rel <= 0.02), rel.max())
    assert rel.max() <= 0.10, rel.max()


def _hourly_discrete(case, out):
    labels = [d["label"] for d in json.loads((DATA / case / "receptors.json").read_text())]
    n = N_GRID + len(labels)
    ref_all = _conc(_data_lines(DATA / case / "hourly_all.pst")).reshape(-1, n)
    mine = _conc(_data_lines(out / "hourly_all.pst")).reshape(-1, n)[:, N_GRID:]
    hour_max = ref_all.max(axis=1)
    return labels, ref_all[:, N_GRID:], mine, hour_max


#: below this fraction of the hour's maximum lies the far-lateral tail, where AERMOD's
#: 4-decimal normal-CDF table and its +-3.9 sigma / 5 sigma-y cut-offs decide the value
#: (docs/aermod-formulation.md §4; e.g. 71.5 in AERMOD vs 80.4 with the exact normal CDF at
#: (1500, 1500) m in case A hour 1, 7e-6 of that hour's peak). The AERMOD mode uses the same
#: table (lateral_cdf="aermod_table", 71.6 there), so the literal criterion holds too (below)
TAIL = 1e-5


@pytest.mark.parametrize("case", [c for c in CASES if not c.startswith("caseC")])
def test_reference_hourly_discrete_accuracy(case, reference_runs):
    """Hourly values at the discrete receptors within 5 % of AERMOD's wherever AERMOD's value
    is above the far-lateral tail (>= 1e-5 of the hour's maximum); in the tail within 1e-5 of
    the hour's maximum; exactly 0 at the upwind receptors."""
    rc, out = reference_runs[case]
    assert rc == 0
    labels, ref, mine, hour_max = _hourly_discrete(case, out)
    for j, label in enumerate(labels):
        for h in range(ref.shape[0]):
            r, m = ref[h, j], mine[h, j]
            if label in ("uw_edge", "upwind100"):
                assert r == 0.0 and m == 0.0, (label, h, r, m)
            elif r >= TAIL * hour_max[h]:
                assert abs(m / r - 1.0) <= 0.05, (label, h, r, m)
            else:
                assert abs(m - r) <= TAIL * hour_max[h], (label, h, r, m)


@pytest.mark.parametrize("case", [c for c in CASES if not c.startswith("caseC")])
def test_reference_hourly_discrete_tail_strict(case, reference_runs):
    """The issue's literal criterion: every nonzero hourly discrete value within 5 %, the
    far-lateral tail included (AERMOD's tabulated CDF, lateral_cdf="aermod_table"); and
    where AERMOD gives 0 (beyond its +-3.9 sigma table) so do we."""
    rc, out = reference_runs[case]
    assert rc == 0
    labels, ref, mine, _ = _hourly_discrete(case, out)
    nz = ref > 0
    rel = np.abs(mine[nz] / ref[nz] - 1.0)
    assert rel.max() <= 0.05, rel.max()  # issue 3: hourly discrete values within 5 %
    assert np.all(mine[~nz] == 0.0)


@pytest.mark.parametrize("case", [c for c in CASES if not c.startswith("caseC")])
def test_reference_exact_zeros_upwind(case, reference_runs):
    """Wind from 270 deg in every hour: every receptor west of the sources' upwind edge is 0
    in AERMOD, and must be exactly 0 here too (hourly and period)."""
    rc, out = reference_runs[case]
    assert rc == 0
    west_edge = -500.0 if case.startswith("caseA") else -1500.0
    lines = _data_lines(out / "period_all.pst")
    x = np.array([float(ln[:14]) for ln in lines])
    ref = _conc(_data_lines(DATA / case / "period_all.pst"))
    mine = _conc(lines)
    upwind = x <= west_edge
    assert np.all(ref[upwind] == 0.0)
    assert np.all(mine[upwind] == 0.0)
    hourly = _conc(_data_lines(out / "hourly_all.pst")).reshape(-1, x.size)
    assert np.all(hourly[:, upwind] == 0.0)


def test_direct_and_auto_paths_agree_through_cli(tmp_path):
    """``--method direct`` and ``--method auto`` (gridded where it applies) write the same
    values: the two evaluation paths agree to 1e-6 relative (issue 3), which at E13.6's 6
    significant digits means at most one unit in the last printed digit."""
    pytest.importorskip("engine.dispersion.area", reason="physics module not in this build")
    inp = DATA / "caseB_3x3" / "aermod.inp"
    out = {}
    for method in ("direct", "auto"):
        out[method] = tmp_path / method
        assert main(["aermod", str(inp), "--outdir", str(out[method]), "--method", method,
                     "--quiet"]) == 0
    for fname in ("period_all.pst", "hourly_all.pst"):
        a = _conc(_data_lines(out["direct"] / fname))
        b = _conc(_data_lines(out["auto"] / fname))
        big = a > 1e-9 * a.max()
        np.testing.assert_allclose(b[big], a[big], rtol=2e-6)  # 1e-6 + E13.6 rounding


# --------------------------------------------------------------------------- real-met cases
#: issue 11's reference cases: real met with observed turbulence (D), AREAPOLY / AREACIRC /
#: rotated AREA / flagpole receptors / source groups (E), URBANOPT (F)
REAL_CASES = ["caseD_observed_turbulence", "caseE_polygon_circle_flagpole", "caseF_urban"]


def _read_post(path):
    """CONC and DATE columns of an AERMOD PLOT file (plain or gzipped)."""
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as fh:
        lines = [ln for ln in fh if ln.strip() and not ln.startswith("*")]
    return (np.array([float(ln[28:42]) for ln in lines]),
            np.array([int(ln[89:97]) for ln in lines]))


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    """Run every real-met reference case once through the CLI, unmodified control files, with
    a summary listing (the second argument, as ``aermod CONTROL.inp LISTING.out``)."""
    pytest.importorskip("engine.dispersion.area", reason="physics module not in this build")
    runs = {}
    for case in REAL_CASES:
        out = tmp_path_factory.mktemp(case)
        rc = main(["aermod", str(DATA / case / "aermod.inp"), str(out / "listing.out"),
                   "--outdir", str(out), "--quiet"])
        runs[case] = (rc, out)
    return runs


@pytest.mark.parametrize("case", REAL_CASES)
def test_real_summary_listing(case, real_runs):
    """The summary tables of AERMOD's listing (RECTABLE ALLAVE FIRST and the PERIOD top ten
    per group; ``aermod_summary.out`` is that part of AERMOD's aermod.out): same groups,
    ranks and receptors, values within 2 % (PERIOD) and 5 % (highest 1-hour value; caseE
    CIRC: -0.7 %). Where two receptors' PERIOD values are within 0.2 % of each other their
    order may differ, so receptors are compared where the neighbours are further apart."""
    from engine.aermod.control import read_summary_values

    rc, out = real_runs[case]
    assert rc == 0
    theirs = read_summary_values(DATA / case / "aermod_summary.out")
    mine = read_summary_values(out / "listing.out")
    assert [r[:3] for r in mine] == [r[:3] for r in theirs]
    for k, (m, t) in enumerate(zip(mine, theirs)):
        tol = 0.02 if t[1] == "PERIOD" else 0.05
        assert abs(m[3] / t[3] - 1.0) <= tol, (m, t)
        near = [theirs[j][3] for j in (k - 1, k + 1)
                if 0 <= j < len(theirs) and theirs[j][:2] == t[:2]]
        if all(abs(v / t[3] - 1.0) > 0.002 for v in near):
            assert m[4] == t[4], (m, t)


def _period_errors(ref_path, mine_path):
    ref, _ = _read_post(ref_path)
    mine, _ = _read_post(mine_path)
    assert ref.shape == mine.shape
    sel = ref > 0.01 * ref.max()
    return np.abs(mine[sel] / ref[sel] - 1.0)


@pytest.mark.parametrize("case", REAL_CASES)
def test_real_period_accuracy(case, real_runs):
    """Issue 11: PERIOD within 2 % at >= 99 % of the receptors above 1 % of the maximum and
    none beyond 5 %, for ALL and for every source group AERMOD wrote (caseD measured: 100 %,
    max 0.39 %; caseE ALL 100 % max 0.77 %, POLY, CIRC, RECT 100 %; caseF 100 %, max 0.15 %)."""
    rc, out = real_runs[case]
    assert rc == 0
    files = sorted(p.name for p in (DATA / case).glob("period_*.pst"))
    assert files
    for name in files:
        rel = _period_errors(DATA / case / name, out / name)
        assert np.mean(rel <= 0.02) >= 0.99, (name, np.mean(rel <= 0.02), rel.max())
        assert rel.max() <= 0.05, (name, rel.max())


def test_caseE_groups_add_up(real_runs):
    """SUMVAL: every source adds to each group that holds it, so POLY + CIRC + RECT = ALL
    (AERMOD's own files: within 7e-6 relative)."""
    rc, out = real_runs["caseE_polygon_circle_flagpole"]
    assert rc == 0
    parts = sum(_read_post(out / f"period_{g}.pst")[0] for g in ("poly", "circ", "rect"))
    total = _read_post(out / "period_all.pst")[0]
    np.testing.assert_allclose(parts, total, rtol=1e-5, atol=1e-12)  # E13.6 rounding of 4 files


def test_real_options_line(real_runs):
    """The options line as AERMOD prints it: observed turbulence (caseD, SigA&SigW from the
    .PFL), flagpole receptors (caseE, FLGPOL), urban sources (caseF, URBAN)."""
    for case in REAL_CASES:
        rc, out = real_runs[case]
        mine = (out / "period_all.pst").read_text().splitlines()[2]
        ref = (DATA / case / "period_all.pst").read_text().splitlines()[2]
        assert mine == ref, (case, mine, ref)


#: Receptor-hours where AERMOD gives 0 and we do not, each with its reason (x, y, date). A
#: source gives exactly 0 in AERMOD when its vertex test (AREAIN QGO) or its side integrals
#: (PSIDE with ZBRENT's crossings, PSIDE2's cancelling segments) leave nothing; both are
#: reproduced in kernels/plume.py ``_outside_plume``. None is left: the last one, (1100, -400)
#: in hour 88062709 of caseD (cell C66's nearest vertex at -3.8989 sigma-y, where AERMOD's
#: zero needs <= -3.9), came from XMIXED: its mixed-layer means of u and sigma-w were taken
#: from 0.5 m (ANYAVG's floor) instead of from the ground (metext.f ZIAVER), which made
#: XMIXED 0.06 % and sigma-y 0.02 % too large at 600-900 m that hour (z0 = 1 m); (1100, -500)
#: went from +2.0 % to +0.02 % with it (``_ziaver``).
ZERO_EXCEPTIONS = {}


def _read_post_xy(path):
    """X, Y, CONC and DATE columns of an AERMOD PLOT file (plain or gzipped)."""
    import gzip

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as fh:
        lines = [ln for ln in fh if ln.strip() and not ln.startswith("*")]
    return (np.array([float(ln[0:14]) for ln in lines]), np.array([float(ln[14:28]) for ln in lines]),
            np.array([float(ln[28:42]) for ln in lines]), np.array([int(ln[89:97]) for ln in lines]))


@pytest.mark.parametrize("case", ["caseD_observed_turbulence", "caseE_polygon_circle_flagpole",
                                  "caseF_urban"])
def test_real_every_aermod_zero_is_zero(case, real_runs):
    """Every receptor-hour AERMOD writes as 0 is exactly 0 here (but ZERO_EXCEPTIONS), and so is
    every PERIOD value it writes as 0, for every group. Before AERMOD's ZBRENT side test
    (pitarea.f PSIDE/ZBRENT, kernels/plume.py ``_zbrent``) caseD had 7 and caseE 6 such
    receptor-hours (all <= 5e-10 of the hour's maximum): a vertex just inside +-3.9 sigma-y,
    within ZBRENT's tolerance of the crossing. Conversely, where we give 0 AERMOD's value is
    at most 1e-12 of the hour's maximum (caseD (400, 800) hour 88063003: AERMOD 7.1e-15 from
    a rounding-width gap between two sides' ends, 0 here)."""
    rc, out = real_runs[case]
    assert rc == 0
    x, y, ref, dates = _read_post_xy(DATA / case / "hourly_all.pst.gz")
    mine = _read_post_xy(out / "hourly_all.pst")[2]
    n_hours = np.unique(dates).size
    hmax = np.repeat(ref.reshape(n_hours, -1).max(axis=1), ref.size // n_hours)
    bad = {(float(a), float(b), int(d)) for a, b, d in
           zip(x[(ref == 0.0) & (mine != 0.0)], y[(ref == 0.0) & (mine != 0.0)],
               dates[(ref == 0.0) & (mine != 0.0)])}
    assert bad == ZERO_EXCEPTIONS.get(case, set()), sorted(bad)
    assert np.all(ref[mine == 0.0] <= 1e-12 * hmax[mine == 0.0])
    for name in sorted(p.name for p in (DATA / case).glob("period_*.pst")):
        pref = _read_post(DATA / case / name)[0]
        pmine = _read_post(out / name)[0]
        assert np.all(pmine[pref == 0.0] == 0.0), name


@pytest.mark.parametrize("case", REAL_CASES)
def test_real_hourly_accuracy(case, real_runs):
    """Issue 11: >= 97 % of receptor-hours above 1 % of the hour's maximum within 2 % (caseD
    measured: 99.66 % of 41,913, max 14.6 %); where AERMOD gives 0 (missing hours, upwind,
    beyond its +-3.9 sigma-y table) so do we (test_real_every_aermod_zero_is_zero)."""
    rc, out = real_runs[case]
    assert rc == 0
    ref, dates = _read_post(DATA / case / "hourly_all.pst.gz")
    mine, mdates = _read_post(out / "hourly_all.pst")
    np.testing.assert_array_equal(dates, mdates)
    n_hours = np.unique(dates).size
    ref = ref.reshape(n_hours, -1)
    mine = mine.reshape(n_hours, -1)
    hmax = ref.max(axis=1, keepdims=True)
    sel = (ref > 0.01 * hmax) & (hmax > 0)
    rel = np.abs(mine[sel] / ref[sel] - 1.0)
    assert np.mean(rel <= 0.02) >= 0.97, (np.mean(rel <= 0.02), rel.max())
    # AERMOD's zeros: test_real_every_aermod_zero_is_zero
    # the whole hour is 0 where AERMOD flags the hour missing (caseD: 16 hours, I460)
    assert np.all(mine[hmax[:, 0] == 0.0] == 0.0)


# --------------------------------------------------------------------------- start-up time
def test_aermod_command_start_up_leaves_heavy_modules_out(tmp_path):
    """`python -m engine aermod` imports neither the national pipeline's libraries (xarray,
    pandas) nor the scipy.linalg package (the CLI imports only the named command; numba's BLAS
    check is served by the preloaded cython_blas module), and numba's BLAS still works."""
    import subprocess

    probe = (
        "import sys\n"
        "from engine.cli import main\n"
        "rc = main(['aermod', sys.argv[1], '--outdir', sys.argv[2], '--quiet'])\n"
        "heavy = sorted(m for m in ('xarray', 'pandas', 'scipy.linalg', 'engine.pipeline') if m in sys.modules)\n"
        "from numba.np import arraymath\n"
        "import numba, numpy as np\n"
        "dot = numba.njit(lambda a, b: np.dot(a, b))\n"
        "print(rc, heavy, arraymath._HAVE_BLAS, dot(np.eye(2), np.array([3.0, 4.0])).tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(DATA / "caseB_3x3" / "aermod.inp"),
                          str(tmp_path)], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[1])
    assert out.stdout.split("\n")[0] == "0 [] True [3.0, 4.0]", out.stdout + out.stderr

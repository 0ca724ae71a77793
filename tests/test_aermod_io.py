"""AERMOD control-file reader and POSTFILE/PLOTFILE writers (engine.aermod.control).

The reference files are outputs of the unmodified EPA AERMOD v24142 (tests/data/aermod/README.md).
"""

import datetime as dt
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.aermod import control as aio
from engine.errors import InputError

DATA = Path(__file__).parent / "data" / "aermod"
CASES = ["caseA_single", "caseA_single_h1", "caseB_3x3", "caseC_20x20_timing"]


def _split_pst(path):
    lines = Path(path).read_text().split("\n")
    assert lines[-1] == ""  # ends with a newline
    header = [ln for ln in lines[:-1] if ln.startswith("*")]
    data = [ln for ln in lines[:-1] if not ln.startswith("*")]
    return header, data


def _conc(data_lines):
    # E13.6 CONC field: columns 30-42 (1-based) after 2 x (1X,F13.5) and its 1X
    return np.array([float(ln[28:42]) for ln in data_lines])


# --------------------------------------------------------------------------- reading the cases
@pytest.mark.parametrize("case", CASES)
def test_reads_reference_control_files(case):
    ctl = aio.read_aermod_inp(DATA / case / "aermod.inp")
    assert ctl.model_options == ("DFAULT", "CONC")
    assert ctl.averaging_times == ("1", "PERIOD")
    assert ctl.pollutant_id == "OTHER" and ctl.run and ctl.error_file == "errors.out"
    assert ctl.modops_string() == "  RegDFAULT  CONC  ELEV  RURAL"
    assert ctl.file_form == "EXP"
    assert ctl.surface_file == (DATA / "met" / ctl.surface_file.name).resolve()
    assert ctl.surface_station == ("99999", 2023) and ctl.profile_base_m == 0.0
    r = ctl.receptors
    n_grid = 41 * 41
    assert r.net_id[:n_grid] == ("CG1",) * n_grid and set(r.net_id[n_grid:]) <= {""}
    step = 500.0 if case.startswith("caseC") else 250.0
    lo = -20 * step
    # x varies fastest, y ascending (AERMOD's order)
    np.testing.assert_array_equal(r.x_m[:41], lo + step * np.arange(41))
    np.testing.assert_array_equal(r.y_m[:41], np.full(41, lo))
    np.testing.assert_array_equal(r.y_m[:n_grid:41], lo + step * np.arange(41))
    assert np.all(r.elevation_m == 0) and np.all(r.flagpole_m == 0)
    for s in ctl.sources:
        assert s.x_len_m == s.y_len_m == 1000.0 and s.angle_deg == 0.0
        assert s.initial_sigma_z_m == 0.0
    if case.startswith("caseA"):
        (s,) = ctl.sources
        assert (s.source_id, s.x_sw_m, s.y_sw_m, s.rate_g_m2_s) == ("A1", -500.0, -500.0, 1.0)
        assert s.release_height_m == (1.0 if case.endswith("h1") else 0.0)
    if case != "caseC_20x20_timing":
        import json

        labels = json.loads((DATA / case / "receptors.json").read_text())
        np.testing.assert_array_equal(r.x_m[n_grid:], [d["x"] for d in labels])
        np.testing.assert_array_equal(r.y_m[n_grid:], [d["y"] for d in labels])
        assert [(o.keyword, o.averaging, o.filename) for o in ctl.outputs] == [
            ("POSTFILE", "1", "hourly_all.pst"), ("POSTFILE", "PERIOD", "period_all.pst"),
            ("PLOTFILE", "PERIOD", "period_plot.plt")]
    if case == "caseB_3x3":
        xs = sorted({s.x_sw_m for s in ctl.sources})
        assert xs == [-1500.0, -500.0, 500.0] and len(ctl.sources) == 9
    if case == "caseC_20x20_timing":
        assert len(ctl.sources) == 400 and len(r) == n_grid
        assert {s.rate_g_m2_s for s in ctl.sources} == {1e-6}


def test_sfc_dates_and_version():
    dates = aio.read_sfc_dates(DATA / "met" / "synth5.sfc")
    np.testing.assert_array_equal(dates, [23070101, 23070102, 23070103, 23070104, 23070105])
    d24 = aio.read_sfc_dates(DATA / "met" / "synth24.sfc")
    assert d24[0] == 23070201 and d24[-1] == 23070224 and d24.size == 24
    assert aio.read_sfc_header(DATA / "met" / "synth5.sfc") == "24142"


def test_count_complete_years():
    assert aio.count_complete_years(np.array([23070101, 23070105])) == 0
    assert aio.count_complete_years(np.array([23010101, 23123124])) == 1
    assert aio.count_complete_years(np.array([23010101, 23123123])) == 0
    assert aio.count_complete_years(np.array([20010101, 22123124])) == 3  # 2020 is a leap year
    assert aio.count_complete_years(np.array([], dtype=int)) == 0


# --------------------------------------------------------------------------- Fortran formats
@pytest.mark.parametrize("value, text", [
    (0.0, " 0.000000E+00"),
    (3962730.0, " 0.396273E+07"),
    (71.4699, " 0.714699E+02"),
    (-1.5, "-0.150000E+01"),
    (0.99999996, " 0.100000E+01"),  # rounds up into the next decade
    (1.0, " 0.100000E+01"),
    (1e-100, " 0.100000E-99"),
    (1e-101, " 0.100000-100"),  # 3-digit exponent drops the E (Fortran standard)
    (-2e200, "-0.200000+201"),
    (2.5e-7, " 0.250000E-06"),
    (float("nan"), "          NaN"),
])
def test_fortran_e13_6(value, text):
    assert aio.fortran_e(value, 13, 6) == text


def test_vectorised_e13_6_matches_fortran_e():
    """The writers' vectorised CONC formatter against the scalar reference, byte for byte."""
    rng = np.random.default_rng(20240521)
    v = rng.lognormal(0.0, 25.0, 100_000) * rng.choice([-1.0, 1.0], 100_000)
    edge = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-98, 1e-99, 1e-100, 1e-101, 9.99e97, 1e98,
            1e99, 1e100, 0.9999995, 0.99999949, 0.9999996, 1.0000005, 1.2345675, 12345.65,
            5e-324, 1.7976931348623157e308, 3962730.0, 71.4699]
    v = np.concatenate([v, edge, np.round(rng.uniform(0, 1, 1000), 7)])  # 7-digit ties
    fast = aio.e13_6_bytes(v)
    assert fast.shape == (v.size, 13)
    assert [bytes(row).decode() for row in fast] == [aio.fortran_e(x, 13, 6) for x in v]


@pytest.mark.parametrize("value, w, d, text", [
    (-5000.0, 13, 5, "  -5000.00000"),
    (0.0, 8, 2, "    0.00"),
    (-0.0, 8, 2, "    0.00"),
    (123456789.0, 13, 5, "*************"),
    (1.005, 8, 2, "    1.00"),  # binary 1.00499999...: rounds like gfortran
])
def test_fortran_f(value, w, d, text):
    assert aio.fortran_f(value, w, d) == text
    assert aio.fortran_f_many([value], w, d) == [text]


def test_fortran_f_many_matches_fortran_f():
    """The receptor-column formatter of the writers gives fortran_f's strings byte for byte,
    overflow asterisks, -0.0 and the non-finite words included."""
    rng = np.random.default_rng(7)
    v = np.concatenate([rng.normal(scale=1e4, size=2000), rng.uniform(-1, 1, 500),
                        [0.0, -0.0, -0.004, 2.675, 1e20, -1e12, 99999999.999995, np.nan,
                         np.inf, -np.inf]])
    for w, d in ((13, 5), (8, 2)):
        assert aio.fortran_f_many(v, w, d) == [aio.fortran_f(x, w, d) for x in v]


# --------------------------------------------------------------------------- writers
def _header_for(ctl, run_time):
    return aio.PlotHeader(title=ctl.title_one, met_version=aio.read_sfc_header(ctl.surface_file),
                          model_options=ctl.modops_string(), file_form=ctl.file_form,
                          run_time=run_time)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("fname", ["period_all.pst", "hourly_all.pst"])
def test_writers_reproduce_reference_files_byte_for_byte(case, fname, tmp_path):
    """Written with AERMOD's own values, every data line equals AERMOD's, CONC included,
    and header lines 2-8 equal AERMOD's (line 1 names this program; line 2 the clock)."""
    ref = DATA / case / fname
    if not ref.exists():
        pytest.skip(f"{case} has no {fname}")
    ctl = aio.read_aermod_inp(DATA / case / "aermod.inp")
    ref_header, ref_data = _split_pst(ref)
    t = dt.datetime.strptime(ref_header[0][-8:] + " " + ref_header[1][-8:], "%m/%d/%y %H:%M:%S")
    header = _header_for(ctl, t)
    dates = aio.read_sfc_dates(ctl.surface_file)
    conc = _conc(ref_data)
    out = tmp_path / fname
    if fname.startswith("hourly"):
        aio.write_postfile_hourly(out, conc.reshape(dates.size, -1), ctl.receptors, dates, header)
    else:
        aio.write_postfile_period(out, conc, ctl.receptors, dates.size, header)
    header_out, data_out = _split_pst(out)
    assert data_out == ref_data
    assert len(header_out) == 8 and header_out[1:] == ref_header[1:]
    assert header_out[0].startswith("* COBENEFITS (") and ctl.title_one in header_out[0]
    assert header_out[0].endswith(ref_header[0][-8:])
    # discrete receptors: blank NET ID, so 9 whitespace-separated fields
    n_grid = 41 * 41
    assert len(data_out[n_grid - 1].split()) == 10
    if len(ctl.receptors) > n_grid:
        assert len(data_out[n_grid].split()) == 9


def test_plotfile_period_header(tmp_path):
    ctl = aio.read_aermod_inp(DATA / "caseA_single" / "aermod.inp")
    _, ref_data = _split_pst(DATA / "caseA_single" / "period_all.pst")
    out = tmp_path / "p.plt"
    aio.write_plotfile_period(out, _conc(ref_data), ctl.receptors, 5,
                              _header_for(ctl, dt.datetime(2024, 1, 2, 3, 4, 5)), n_years=0)
    header, data = _split_pst(out)
    assert header[3] == ("*         PLOT FILE OF PERIOD VALUES AVERAGED ACROSS   0 YEARS FOR "
                         "SOURCE GROUP: ALL     ")
    assert header[4] == "*         FOR A TOTAL OF  1699 RECEPTORS."
    assert header[6].endswith("GRP      NUM HRS   NET ID")
    assert data == ref_data  # PLOTFILE records are the PERIOD POSTFILE's records


def test_fix_format_records(tmp_path):
    ctl = aio.read_aermod_inp(DATA / "caseA_single" / "aermod.inp")
    header = aio.PlotHeader(title="t", met_version="24142", model_options="  X",
                            file_form="FIX")
    conc = np.arange(len(ctl.receptors), dtype=float) * 1.25
    out = tmp_path / "fix.pst"
    aio.write_postfile_period(out, conc, ctl.receptors, 5, header)
    head, data = _split_pst(out)
    assert head[5].split()[2] == "(3(1X,F13.5),3(1X,F8.2),2X,A6,2X,A8,2X,I8.8,2X,A8)"
    assert data[2][28:42] == "       2.50000"
    # each record: 3 x (1X,F13.5), 3 x (1X,F8.2), 2X A6, 2X A8, 2X I8.8, 2X A8
    assert all(len(ln) == 3 * 14 + 3 * 9 + 4 * 2 + 6 + 3 * 8 for ln in data)


def test_writer_shape_check(tmp_path):
    ctl = aio.read_aermod_inp(DATA / "caseA_single" / "aermod.inp")
    header = aio.PlotHeader(title="t", met_version="1", model_options="")
    with pytest.raises(ValueError, match="shape"):
        aio.write_postfile_period(tmp_path / "x", np.zeros(3), ctl.receptors, 5, header)
    assert not (tmp_path / "x").exists()


def test_writer_is_atomic(tmp_path, monkeypatch):
    """A failure while writing leaves the previous file untouched and no temporary file."""
    ctl = aio.read_aermod_inp(DATA / "caseA_single" / "aermod.inp")
    target = tmp_path / "period.pst"
    target.write_text("previous run\n")
    header = aio.PlotHeader(title="t", met_version="1", model_options="")

    def broken(*a, **k):
        raise RuntimeError("disk full")

    from engine.aermod import writers as aw  # the writers' module (re-exported by aio)

    monkeypatch.setattr(aw, "e13_6_bytes", broken)
    with pytest.raises(RuntimeError):
        aio.write_postfile_period(target, np.ones(len(ctl.receptors)), ctl.receptors, 5, header)
    assert target.read_text() == "previous run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["period.pst"]


# --------------------------------------------------------------------------- syntax features
MINI = """\
CO STARTING
   TITLEONE Mini case
   MODELOPT DFAULT CONC
   AVERTIME 1 PERIOD
   POLLUTID OTHER
   RUNORNOT RUN
CO FINISHED
SO STARTING
   LOCATION A1 AREA -500.0 -500.0 0.0
   SRCPARAM A1 1.0 0.0 1000.0 1000.0 0.0 0.0
   SRCGROUP ALL
SO FINISHED
RE STARTING
   GRIDCART CG1 STA
                XYINC -1000.0 3 1000.0 -1000.0 2 2000.0
   GRIDCART CG1 END
   DISCCART 600.0 0.0
RE FINISHED
ME STARTING
   SURFFILE met/synth5.sfc
   PROFFILE met/synth5.pfl
   SURFDATA 99999 2023
   UAIRDATA 99999 2023
   PROFBASE 0.0 METERS
ME FINISHED
OU STARTING
   POSTFILE PERIOD ALL PLOT period.pst
OU FINISHED
"""


@pytest.fixture
def mini(tmp_path):
    """Write a control file (MINI or a variant) beside a copy of the met files."""
    shutil.copytree(DATA / "met", tmp_path / "met")

    def make(text=MINI, name="mini.inp"):
        p = tmp_path / name
        p.write_text(text)
        return p

    return make


def _edit(text, old, new):
    assert old in text, old
    return text.replace(old, new, 1)


def test_mini_parses(mini):
    ctl = aio.read_aermod_inp(mini())
    r = ctl.receptors
    np.testing.assert_array_equal(r.x_m, [-1000, 0, 1000, -1000, 0, 1000, 600])
    np.testing.assert_array_equal(r.y_m, [-1000, -1000, -1000, 1000, 1000, 1000, 0])
    assert r.net_id == ("CG1",) * 6 + ("",)
    assert ctl.file_form == "FIX"  # AERMOD's default without FILEFORM


def test_case_comments_shift_quotes_and_continuation(mini, tmp_path):
    text = MINI.lower()  # keywords are case-insensitive
    text = text.replace("mini case", "Mini Case")
    text = "** a comment line\n\n" + text
    text = _edit(text, "   srcgroup all", "** another comment\n   srcgroup all")
    # a shifted file (all lines start in column 3), as AERMOD allows up to 3 columns
    text = "\n".join(("  " + ln) if ln.strip() else ln for ln in text.split("\n"))
    (tmp_path / "met dir").mkdir()
    for f in ("synth5.sfc", "synth5.pfl"):
        shutil.copy(tmp_path / "met" / f, tmp_path / "met dir" / f)
    text = _edit(text, "surffile met/synth5.sfc", 'surffile "met dir/synth5.sfc"')
    # GRIDCART given with XPNTS/YPNTS on continuation cards (blank keyword, no network ID)
    text = _edit(text, "xyinc -1000.0 3 1000.0 -1000.0 2 2000.0",
                 "xpnts -1000.0 0.0\n                xpnts 1000.0\n"
                 "     gridcart cg1 ypnts -1000.0 1000.0")
    ctl = aio.read_aermod_inp(mini(text))
    assert ctl.title_one == "Mini Case"  # title keeps its case
    assert ctl.surface_file.name == "synth5.sfc" and ctl.surface_file.parent.name == "met dir"
    np.testing.assert_array_equal(ctl.receptors.x_m[:6], [-1000, 0, 1000] * 2)
    np.testing.assert_array_equal(ctl.receptors.y_m[:6], [-1000] * 3 + [1000] * 3)
    assert ctl.outputs[0].filename == "period.pst"


def test_dfault_flat_is_noted_and_elev_in_header(mini):
    ctl = aio.read_aermod_inp(mini(_edit(MINI, "DFAULT CONC", "DFAULT CONC FLAT")))
    assert ctl.terrain == "ELEV" and any("W206" in m for m in ctl.messages)
    ctl = aio.read_aermod_inp(mini(_edit(MINI, "DFAULT CONC", "CONC FLAT")))
    assert ctl.modops_string() == "  NonDFAULT  CONC  FLAT  RURAL"


def test_errorfil_default_name(mini):
    ctl = aio.read_aermod_inp(mini(_edit(MINI, "   RUNORNOT RUN", "   RUNORNOT RUN\n   ERRORFIL")))
    assert ctl.error_file == "ERRORS.LST"
    assert aio.read_aermod_inp(mini()).error_file is None


def test_optional_srcparam_fields_default(mini):
    ctl = aio.read_aermod_inp(mini(_edit(MINI, "1.0 0.0 1000.0 1000.0 0.0 0.0", "2.5 1.0 800.0")))
    (s,) = ctl.sources
    assert (s.rate_g_m2_s, s.release_height_m, s.x_len_m, s.y_len_m) == (2.5, 1.0, 800.0, 800.0)
    assert (s.angle_deg, s.initial_sigma_z_m) == (0.0, 0.0)


def test_feet_units(mini):
    text = _edit(MINI, "PROFBASE 0.0 METERS", "PROFBASE 100.0 FEET")
    assert aio.read_aermod_inp(mini(text)).profile_base_m == pytest.approx(30.48)


# --------------------------------------------------------------------------- error paths
# (old text, new text, the line to be named (a substring of it), words the message must hold)
ERRORS = [
    ("   RUNORNOT RUN", "   RUNORNOT RUN\n   EVENTFIL ev.inp", "EVENTFIL", ["'EVENTFIL'", "CO"]),
    ("DFAULT CONC", "DFAULT CONC FASTAREA", "MODELOPT", ["FASTAREA", "field 5", "supported"]),
    ("DFAULT CONC", "CONC FLAT ELEV", "MODELOPT", ["FLAT and ELEV"]),
    ("AVERTIME 1 PERIOD", "AVERTIME 1 24 PERIOD", "AVERTIME", ["'24'", "field 4"]),
    ("AVERTIME 1 PERIOD", "AVERTIME 1 PERIOD PERIOD", "AVERTIME", ["twice"]),
    ("RUNORNOT RUN", "RUNORNOT MAYBE", "RUNORNOT", ["RUN or NOT"]),
    ("   POLLUTID OTHER\n", "", "CO FINISHED", ["POLLUTID", "requires"]),
    ("MODELOPT DFAULT CONC", "MODELOPT DFAULT CONC\n   MODELOPT CONC", "MODELOPT CONC",
     ["only once", "first on line 3"]),
    ("A1 AREA -500.0", "A1 POINT -500.0", "LOCATION", ["POINT", "AREA, AREAPOLY and AREACIRC"]),
    ("A1 AREA -500.0 -500.0 0.0", "A1 AREA -500.0 abc 0.0", "LOCATION",
     ["y (south-west corner)", "field 6", "'abc'"]),
    ("A1 AREA -500.0 -500.0 0.0", "A1 AREA -500.0 -500.0 12.0", "LOCATION",
     ["elevation", "flat terrain"]),
    ("1.0 0.0 1000.0 1000.0", "1.0 0.0 -1000.0 1000.0", "SRCPARAM",
     ["x length", "field 6", "'-1000.0'", "> 0"]),
    ("1.0 0.0 1000.0 1000.0", "1.0 0.0 1000.0 0.0", "SRCPARAM", ["y length", "field 7"]),
    ("1.0 0.0 1000.0 1000.0", "NaN 0.0 1000.0 1000.0", "SRCPARAM",
     ["emission rate", "field 4", "not a finite number"]),
    ("1.0 0.0 1000.0 1000.0", "-1.0 0.0 1000.0 1000.0", "SRCPARAM", ["emission rate", ">= 0"]),
    ("1.0 0.0 1000.0 1000.0", "1.0 -2.0 1000.0 1000.0", "SRCPARAM",
     ["release height", "field 5", ">= 0"]),
    ("1000.0 1000.0 0.0 0.0", "1000.0 1000.0 0.0 -3.0", "SRCPARAM",
     ["initial sigma-z", "field 9"]),
    ("1000.0 1000.0 0.0 0.0", "1000.0 1000.0 inf 0.0", "SRCPARAM", ["angle", "finite"]),
    ("1000.0 1000.0 0.0 0.0", "1000.0 1000.0 270.0 0.0", "SRCPARAM", ["angle", "field 8",
                                                                     "-180..180"]),
    ("1000.0 1000.0 0.0 0.0", "1000.0 1000.0 0.0 0.0 7.0", "SRCPARAM", ["too many fields"]),
    ("SRCPARAM A1", "SRCPARAM B2", "SRCPARAM", ["'B2'", "no LOCATION"]),
    ("   SRCPARAM A1 1.0 0.0 1000.0 1000.0 0.0 0.0\n", "", "LOCATION",
     ["'A1'", "no SRCPARAM"]),
    ("   LOCATION A1 AREA -500.0 -500.0 0.0", "   LOCATION A1 AREA -500.0 -500.0 0.0\n"
     "   LOCATION A1 AREA 0.0 0.0", "LOCATION A1 AREA 0.0 0.0", ["defined twice"]),
    ("SRCGROUP ALL", "SRCGROUP G1 B9", "SRCGROUP", ["'B9'", "not defined by a LOCATION"]),
    ("SRCGROUP ALL", "SRCGROUP ALL\n   SRCGROUP ALL", ("SRCGROUP ALL", -1), ["defined twice"]),
    ("   SRCGROUP ALL", "   URBANSRC A1", "URBANSRC", ["URBANOPT"]),
    ("   DISCCART 600.0 0.0", "   GRIDPOLR POL1 STA", "GRIDPOLR", ["GRIDPOLR", "not supported"]),
    ("   DISCCART 600.0 0.0", "   EVALCART 600.0 0.0 0.0 0.0 1 N01", "EVALCART",
     ["EVALCART", "not supported"]),
    ("   DISCCART 600.0 0.0", "   DISCPOLR A1 100.0 90.0", "DISCPOLR", ["DISCPOLR"]),
    ("DISCCART 600.0 0.0", "DISCCART 600.0 0.0 15.0 15.0", "DISCCART", ["terrain"]),
    ("DISCCART 600.0 0.0", "DISCCART 600.0 0.0 0.0 0.0 2.0", "DISCCART",
     ["too many fields", "FLAGPOLE"]),
    ("DISCCART 600.0 0.0", "DISCCART 600.0", "DISCCART", ["DISCCART x y"]),
    ("   GRIDCART CG1 END\n", "", "GRIDCART CG1 STA", ["no END"]),
    ("XYINC -1000.0 3 1000.0", "XYINC -1000.0 0 1000.0", "XYINC", ["xnum", "field 5"]),
    ("XYINC -1000.0 3 1000.0", "XYINC -1000.0 2.5 1000.0", "XYINC", ["xnum", "integer"]),
    ("XYINC -1000.0 3 1000.0", "XYINC -1000.0 3 -1000.0", "XYINC", ["xdelta"]),
    ("                XYINC", "                ELEV 1 0 0 0\n                XYINC", "ELEV 1 0",
     ["ELEV rows"]),
    ("   GRIDCART CG1 END", "   GRIDCART CG2 END", "CG2 END", ["'CG2'", "not open"]),
    ("   GRIDCART CG1 STA\n                XYINC -1000.0 3 1000.0 -1000.0 2 2000.0\n"
     "   GRIDCART CG1 END\n   DISCCART 600.0 0.0\n", "", "RE FINISHED", ["no receptors"]),
    ("met/synth5.sfc", "met/nothere.sfc", "SURFFILE", ["not found", "nothere.sfc"]),
    ("met/synth5.pfl", "met/synth5.pfl FORMATX", "PROFFILE", ["FORMATX"]),
    ("SURFDATA 99999 2023", "SURFDATA 99999 twenty", "SURFDATA", ["year", "integer"]),
    ("   PROFBASE 0.0 METERS\n", "", "ME FINISHED", ["PROFBASE"]),
    ("   PROFBASE 0.0 METERS", "   PROFBASE 0.0 METERS\n   STARTEND 23 7 1 1 23 7 1 5",
     "STARTEND", ["'STARTEND'", "ME"]),
    ("PERIOD ALL PLOT", "PERIOD ALL UNFORM", "POSTFILE", ["UNFORM", "only PLOT"]),
    ("PERIOD ALL PLOT", "24 ALL PLOT", "POSTFILE", ["'24'", "1 or PERIOD"]),
    ("PERIOD ALL PLOT", "PERIOD G1 PLOT", "POSTFILE", ["'G1'", "not defined"]),
    ("AVERTIME 1 PERIOD", "AVERTIME 1", "POSTFILE", ["PERIOD is not on the CO AVERTIME"]),
    ("POSTFILE PERIOD ALL PLOT period.pst", "PLOTFILE 1 ALL FIRST p.plt", "PLOTFILE",
     ["PLOTFILE", "only PERIOD"]),
    ("   POSTFILE PERIOD ALL PLOT period.pst", "   POSTFILE PERIOD ALL PLOT period.pst\n"
     "   POSTFILE PERIOD ALL PLOT other.pst", "other.pst", ["second POSTFILE"]),
    ("   POSTFILE PERIOD ALL PLOT period.pst", "   POSTFILE PERIOD ALL PLOT period.pst\n"
     "   PLOTFILE PERIOD ALL period.pst", "PLOTFILE", ["already written"]),
    ("PLOT period.pst", "PLOT period.pst 12", "POSTFILE", ["file unit", ">= 31"]),
    ("   POSTFILE PERIOD ALL PLOT period.pst\n", "   FILEFORM EXP\n", "OU FINISHED",
     ["no POSTFILE or PLOTFILE"]),
    ("   POSTFILE", "   FILEFORM XYZ\n   POSTFILE", "FILEFORM", ["EXP or FIX"]),
    ("   POSTFILE", "   MAXTABLE ALLAVE 10\n   POSTFILE", "MAXTABLE", ["'MAXTABLE'", "OU"]),
    ("SO STARTING", "SX STARTING", "SX STARTING", ["invalid pathway", "'SX'"]),
    ("CO FINISHED", "CO FINISHED\nEV STARTING", "EV STARTING", ["EV pathway"]),
    ("CO FINISHED\n", "", "SO STARTING", ["CO is not FINISHED"]),
    ("RE STARTING", "ME STARTING", ("ME STARTING", 0), ["ME starts before pathway RE"]),
    ("   TITLEONE", "   TITLEONE x\nCO STARTING\n   TITLETWO", ("CO STARTING", -1), ["twice"]),
    ("SO STARTING\n", "SO STARTING\nCO STARTING\n", ("CO STARTING", -1),
     ["CO appears again", "FINISHED"]),
    ("   LOCATION", "   MODELOPT CONC\n   LOCATION", "MODELOPT CONC", ["'MODELOPT'", "SO"]),
    ("   MODELOPT DFAULT CONC", "   MODELOPTS DFAULT CONC", "MODELOPTS",
     ["does not fit", "columns 4-11"]),
    ("   TITLEONE Mini case", "   TITLEONE Mini case\n            DFAULT", "            DFAULT",
     ["cannot be continued"]),
    ("met/synth5.sfc", '"met/synth5.sfc', "SURFFILE", ["unmatched double quote"]),
    ("CO STARTING", "CO STARTING now", "CO STARTING", ["takes no parameters"]),
]


@pytest.mark.parametrize("old, new, named_line, words", ERRORS,
                         ids=[f"{i:02d}" for i in range(len(ERRORS))])
def test_error_names_file_line_and_field(mini, old, new, named_line, words):
    text = _edit(MINI, old, new)
    path = mini(text)
    with pytest.raises(InputError) as err:
        aio.read_aermod_inp(path)
    msg = str(err.value)
    needle, which = named_line if isinstance(named_line, tuple) else (named_line, 0)
    lines = [i for i, ln in enumerate(text.split("\n"), 1) if needle in ln]
    line = lines[which]
    assert msg.startswith(f"{path}, line {line}:"), msg
    for w in words:
        assert w in msg, (w, msg)


def test_error_file_ends_early(mini):
    text = MINI.split("OU STARTING")[0]
    with pytest.raises(InputError, match=r"line 25: the control file ends early: "
                                         r"pathway\(s\) OU missing"):
        aio.read_aermod_inp(mini(text))
    text = MINI.replace("OU FINISHED\n", "")
    with pytest.raises(InputError, match="pathway OU has no FINISHED card"):
        aio.read_aermod_inp(mini(text))


def test_error_empty_missing_and_binary_files(mini, tmp_path):
    with pytest.raises(InputError, match="no cards"):
        aio.read_aermod_inp(mini("** only a comment\n\n"))
    with pytest.raises(InputError, match="control file not found"):
        aio.read_aermod_inp(tmp_path / "absent.inp")
    p = tmp_path / "bin.inp"
    p.write_bytes(b"CO STARTING\n\xff\xfe\x00garbage\n")
    with pytest.raises(InputError, match=re.escape(f"{p}, line 2: not a text file")):
        aio.read_aermod_inp(p)


def test_error_blank_keyword_without_previous(mini):
    with pytest.raises(InputError, match="line 2: blank keyword field"):
        aio.read_aermod_inp(mini("CO STARTING\n            DFAULT\n"))
    with pytest.raises(InputError, match="line 1: no pathway ID"):
        aio.read_aermod_inp(mini("    TITLEONE x\n"))


# --------------------------------------------------------------------------- round trip
_coord = st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 3))
_pos = st.floats(0.5, 1e5, allow_nan=False).map(lambda v: round(v, 3))
_source = st.tuples(_coord, _coord, st.floats(0, 1e3).map(lambda v: round(v, 6)),
                    st.floats(0, 20).map(lambda v: round(v, 3)), _pos, _pos,
                    st.floats(-180, 180).map(lambda v: round(v, 2)),
                    st.floats(0, 50).map(lambda v: round(v, 3)))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sources=st.lists(_source, min_size=1, max_size=6),
       discrete=st.lists(st.tuples(_coord, _coord), min_size=0, max_size=5),
       upper=st.booleans())
def test_round_trip_of_generated_control_files(mini, sources, discrete, upper):
    """Sources and receptors written into a control file are read back exactly, in order."""
    so = "".join(f"   LOCATION S{i} AREA {s[0]!r} {s[1]!r} 0.0\n"
                 f"   SRCPARAM S{i} {s[2]!r} {s[3]!r} {s[4]!r} {s[5]!r} {s[6]!r} {s[7]!r}\n"
                 for i, s in enumerate(sources))
    disc = "".join(f"   DISCCART {x!r} {y!r}\n" for x, y in discrete)
    text = _edit(MINI, "   LOCATION A1 AREA -500.0 -500.0 0.0\n"
                       "   SRCPARAM A1 1.0 0.0 1000.0 1000.0 0.0 0.0\n", so)
    text = _edit(text, "   DISCCART 600.0 0.0\n", disc)
    if not upper:
        text = text.lower()  # keywords, IDs and numbers are case-insensitive
    ctl = aio.read_aermod_inp(mini(text))
    got = [(s.x_sw_m, s.y_sw_m, s.rate_g_m2_s, s.release_height_m, s.x_len_m, s.y_len_m,
            s.angle_deg, s.initial_sigma_z_m) for s in ctl.sources]
    assert got == [tuple(float(v) for v in s) for s in sources]
    assert [s.source_id.upper() for s in ctl.sources] == [f"S{i}" for i in range(len(sources))]
    np.testing.assert_array_equal(ctl.receptors.x_m[6:], [x for x, _ in discrete])
    np.testing.assert_array_equal(ctl.receptors.y_m[6:], [y for _, y in discrete])
    assert ctl.receptors.net_id == ("CG1",) * 6 + ("",) * len(discrete)


def test_case_e_sources_groups_and_flagpoles():
    """caseE's control file: AREAPOLY with 8 AREAVERT vertices, AREACIRC (radius, 20
    vertices), rotated AREA, four source groups, CO FLAGPOLE with DISCCART flagpole heights
    and a grid without FLAG rows (AERMOD W216: default height)."""
    ctl = aio.read_aermod_inp(DATA / "caseE_polygon_circle_flagpole" / "aermod.inp")
    poly, circ, rect = ctl.sources
    assert (poly.source_type, poly.n_vertices, len(poly.vertices)) == ("AREAPOLY", 8, 8)
    assert poly.vertices[3] == (-1200.0, -200.0)
    assert (circ.source_type, circ.radius_m, circ.n_vertices, circ.release_height_m) == \
        ("AREACIRC", 800.0, 20, 1.0)
    assert (rect.source_type, rect.angle_deg) == ("AREA", 30.0)
    assert ctl.groups == (("ALL", ("POLY1", "CIRC1", "RECT1")), ("POLY", ("POLY1",)),
                          ("CIRC", ("CIRC1",)), ("RECT", ("RECT1",)))
    assert ctl.flagpole and ctl.receptors.flagpole_m[-14:-10].tolist() == [0.0, 2.0, 10.0, 30.0]
    assert np.all(ctl.receptors.flagpole_m[:1681] == 0.0)
    assert any("W216" in m for m in ctl.messages)
    assert ctl.modops_string() == "  RegDFAULT  CONC  ELEV  FLGPOL  RURAL"
    assert ctl.rectables == (("1", (1,)),)


def test_srcgroup_ranges_and_continuation(mini):
    text = _edit(MINI, "   SRCGROUP ALL", "   SRCGROUP ALL\n   SRCGROUP G1 A1-A3\n   SRCGROUP G1 A1")
    ctl = aio.read_aermod_inp(mini(text))
    assert ctl.groups == (("ALL", ("A1",)), ("G1", ("A1",)))


def test_areapoly_vertex_count_checked(mini):
    text = _edit(MINI, "A1 AREA -500.0 -500.0 0.0", "A1 AREAPOLY -500.0 -500.0 0.0")
    text = _edit(text, "SRCPARAM A1 1.0 0.0 1000.0 1000.0 0.0 0.0",
                 "SRCPARAM A1 1.0 0.0 4 0.0\n   AREAVERT A1 -500.0 -500.0 500.0 -500.0 500.0 500.0")
    with pytest.raises(InputError, match="has 3 AREAVERT vertices; SRCPARAM says 4"):
        aio.read_aermod_inp(mini(text))


def test_urbanopt_and_urbansrc(mini):
    """URBANOPT population [name [z0]] and URBANSRC; under DFAULT a roughness other than 1 m is
    reset to 1 m (AERMOD W206); URBANSRC names sources that must exist."""
    text = _edit(MINI, "   RUNORNOT RUN", "   URBANOPT 2000000 SynthCity 0.8\n   RUNORNOT RUN")
    text = _edit(text, "   SRCGROUP ALL", "   URBANSRC A1\n   SRCGROUP ALL")
    ctl = aio.read_aermod_inp(mini(text))
    assert ctl.urban_option == (2000000.0, "SynthCity", 1.0)
    assert any("W206" in m for m in ctl.messages)
    assert ctl.sources[0].urban
    assert ctl.modops_string() == "  RegDFAULT  CONC  ELEV  URBAN"
    bad = _edit(text, "URBANSRC A1", "URBANSRC Z9")
    with pytest.raises(InputError, match="URBANSRC: source 'Z9'"):
        aio.read_aermod_inp(mini(bad))


def test_rectable_ranks(mini):
    text = _edit(MINI, "   POSTFILE", "   RECTABLE 1 FIRST-THIRD 5\n   POSTFILE")
    ctl = aio.read_aermod_inp(mini(text))
    assert ctl.rectables == (("1", (1, 2, 3, 5)),)
    with pytest.raises(InputError, match="rank 'TWELFTH'"):
        aio.read_aermod_inp(mini(_edit(MINI, "   POSTFILE", "   RECTABLE 1 TWELFTH\n   POSTFILE")))

"""Issue 22, classes 4-6 and the loose ends: physical inputs checked where they enter, exit 2 with
the input named where exit 1 or a silent result came before (the before -> after table of
docs/reliability.md lists each case; every test here fails on the code before the fix)."""

import shutil
from pathlib import Path

import numpy as np
import pytest

import synthetic_nation as sn
from engine.cli import main
from engine.config import load_config
from engine.dispersion import climatology as clim
from engine.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
AERMOD = ROOT / "tests" / "data" / "aermod"
MET = AERMOD / "met"


def _err(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    return err


def _sfc_with(tmp_path, line, column, value, name="x.sfc"):
    """synth24.sfc with field ``column`` (0-based) of data line ``line`` (1-based) replaced."""
    lines = (MET / "synth24.sfc").read_text().splitlines()
    toks = lines[line].split()
    toks[column] = value
    lines[line] = " ".join(toks)
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


# --------------------------------------------------------------------------- hourly met
@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_met_climatology_refuses_non_finite_wind(tmp_path, capsys, value):
    # before: inf and nan were taken as missing hours (exit 0; u* = inf was a valid hour, +54 % on its class)
    sfc = _sfc_with(tmp_path, 3, 15, value)
    assert main(["--quiet", "met-climatology", str(sfc), "--out", str(tmp_path / "c.csv")]) == 2
    err = _err(capsys)
    assert f"{sfc}, line 4: field 'wind_speed_m_s' (column 16) = '{value}' is not a finite number" in err
    assert "missing code" in err and not (tmp_path / "c.csv").exists()
    sfc = _sfc_with(tmp_path, 2, 6, "inf", "u.sfc")
    assert main(["--quiet", "met-climatology", str(sfc), "--out", str(tmp_path / "c.csv")]) == 2
    assert "line 3: field 'friction_velocity_m_s' (column 7) = 'inf'" in _err(capsys)


def test_aermod_mode_refuses_non_finite_wind_with_the_same_message(tmp_path, capsys):
    # before: AERMOD mode ran with exit 0
    case = tmp_path / "case"
    shutil.copytree(AERMOD / "caseA_single", case)
    shutil.copytree(MET, tmp_path / "met")
    sfc = tmp_path / "met" / "synth5.sfc"
    lines = sfc.read_text().splitlines()
    toks = lines[2].split()
    toks[15] = "nan"
    lines[2] = " ".join(toks)
    sfc.write_text("\n".join(lines) + "\n")
    assert main(["--quiet", "aermod", str(case / "aermod.inp"), "--outdir", str(tmp_path / "o")]) == 2
    assert f"{sfc}, line 3: field 'wind_speed_m_s' (column 16) = 'nan' is not a finite number" in _err(capsys)


def test_met_hours_refuse_infinite_fields():
    from engine.dispersion.met import MetHours

    kw = dict(wind_speed_m_s=[3.0], wind_from_deg=[270.0], friction_velocity_m_s=[np.inf],
              monin_obukhov_length_m=[100.0], mech_mixing_height_m=[500.0], roughness_length_m=[0.1])
    with pytest.raises(InputError, match=r"friction_velocity_m_s = inf at hour index 0.*finite, > 0 m/s"):
        MetHours.from_arrays(**kw)
    kw.update(friction_velocity_m_s=[0.3], monin_obukhov_length_m=[np.inf])  # |L| = inf: exactly neutral
    assert MetHours.from_arrays(**kw).valid.all()


def test_non_utf8_files_are_named(tmp_path, capsys):
    # before: "a file is not UTF-8 text (...; N bytes read)" without the file
    sfc = tmp_path / "bad.sfc"
    data = (MET / "synth24.sfc").read_bytes()
    k = data.index(b"\n", data.index(b"\n") + 1)  # in the second data line
    sfc.write_bytes(data[:k] + b" \xff\xfe" + data[k:])
    assert main(["--quiet", "met-climatology", str(sfc), "--out", str(tmp_path / "c.csv")]) == 2
    assert f"AERMET surface file {sfc}, line 2: not UTF-8 text (byte 0xff" in _err(capsys)
    c = tmp_path / "c.csv"
    assert main(["--quiet", "met-climatology", str(MET / "synth24.sfc"), "--out", str(c)]) == 0
    c.write_bytes(c.read_bytes().replace(b"synth24", b"synth\xe924", 1))
    with pytest.raises(InputError, match=rf"climatology file {c}, line \d+: not UTF-8 text \(byte 0xe9"):
        clim.read_climatology(c)


# --------------------------------------------------------------------------- climatology files
@pytest.fixture(scope="module")
def clim_text(tmp_path_factory):
    p = tmp_path_factory.mktemp("clim") / "c.csv"
    assert main(["--quiet", "met-climatology", str(MET / "synth24.sfc"), str(MET / "synth24.pfl"), "--out",
                 str(p)]) == 0
    return p.read_text()


def _edit(text, fn):
    lines = text.splitlines()
    fn(lines)
    return "\n".join(lines) + "\n"


def _header(lines, key):
    return next(i for i, ln in enumerate(lines) if ln.startswith(f"# {key}:"))


def _rows(lines):
    return [i for i, ln in enumerate(lines) if not ln.startswith("#")][1:]


def _set_field(lines, row, column, value):
    cols = next(ln for ln in lines if not ln.startswith("#")).split(",")
    vals = lines[row].split(",")
    vals[cols.index(column)] = value
    lines[row] = ",".join(vals)


def test_climatology_file_checks(tmp_path, clim_text):
    c = clim.read_climatology(_write(tmp_path, clim_text))
    assert abs(sum(c.season_frequency.values()) - 1) < 1e-9

    def season_sum(lines):  # before: accepted, avoided deaths +20 %
        i = _header(lines, "season_frequency")
        lines[i] = "# season_frequency: " + ",".join(
            f"{kv.split('=')[0]}=0.9" for kv in lines[i].split(":", 1)[1].strip().split(","))

    def zero_wind(lines):  # before: the class became a calm hour silently
        _set_field(lines, _rows(lines)[0], "wind_speed_m_s", "0")

    def inf_ustar(lines):  # before: accepted
        _set_field(lines, _rows(lines)[1], "friction_velocity_m_s", "inf")

    def calm_season(lines):  # a header that contradicts the rows: a season that is all calm has classes
        i = _header(lines, "calm_frequency")
        items = lines[i].split(":", 1)[1].strip().split(",")
        items[0] = items[0].split("=")[0] + "=1"
        lines[i] = "# calm_frequency: " + ",".join(items)

    n_seasons = len(c.seasons)
    cases = [(season_sum, r": header season_frequency sums to " + (f"{0.9 * n_seasons:g}") + r".*allowed 1 \+- 0.0001"),
             (zero_wind, r", line \d+, column 'wind_speed_m_s': 0; allowed range \[0.5, 90\) m/s"),
             (inf_ustar, r", line \d+, column 'friction_velocity_m_s': inf; expected a finite number"),
             (calm_season, r", line \d+: a class of season '\w+', whose header season_frequency is .* calm_frequency 1")]
    for fn, pattern in cases:
        p = _write(tmp_path, _edit(clim_text, fn))
        with pytest.raises(InputError, match=rf"climatology file {p}" + pattern):
            clim.read_climatology(p)


def test_climatology_file_checked_before_any_dispersion_in_a_run(tmp_path, clim_text, capsys, monkeypatch):
    from engine.dispersion import srmatrix

    def bad(lines):
        i = _header(lines, "season_frequency")
        lines[i] = "# season_frequency: " + ",".join(
            f"{kv.split('=')[0]}=0.9" for kv in lines[i].split(":", 1)[1].strip().split(","))

    p = _write(tmp_path, _edit(clim_text, bad))
    cfgs = sn.write_configs(tmp_path / "cfg", extra_met=f'climatology_file = "{p}"')
    monkeypatch.setattr(srmatrix, "compute_receptor", _never)
    from engine.pipeline import prepare

    with pytest.raises(InputError, match=rf"climatology file {p}: header season_frequency sums to"):
        prepare(load_config(cfgs), data=sn.nation())


def _write(tmp_path, text, name="c.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _never(*a, **k):
    raise AssertionError("dispersion work started before the input was checked")


# --------------------------------------------------------------------------- health
@pytest.fixture
def exposure_csv(tmp_path):
    from engine.health import age_population

    pop = age_population([110000, 120000]).reset_index().rename(columns={"region_id": "region"})
    pop.insert(1, "pm25", [85.0, 70.0])
    pop.insert(2, "pm25_scenario", [75.0, 70.0])
    path = tmp_path / "in.csv"
    pop.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("row, needle", [
    # before: -149,138 deaths for Beijing in a run
    ("log_linear,ihd,-0.0058,0.0006,25,", "column beta: -0.0058; expected beta > 0"),
    # before: -inf deaths with a RuntimeWarning
    ("log_linear,ihd,0.0058,5,25,", "column beta_se: 5; allowed range [0, 0.05] for the log_linear form"),
    # before: more deaths than people
    ("log_linear,ihd,0.0058,0.0006,25,1e9", "column incidence_per_100k: 1e+09; allowed range [0, 100000]"),
    # a relative risk per 10 ug m-3 given as beta
    ("log_linear,ihd,1.06,0.01,25,", "column beta: 1.06; allowed range (0, 0.05]"),
])
def test_health_user_functions_plausible(exposure_csv, tmp_path, capsys, row, needle):
    f = tmp_path / "f.csv"
    f.write_text("form,cause,beta,beta_se,min_age,incidence_per_100k\n" + row + "\n")
    out = tmp_path / "o.csv"
    assert main(["--quiet", "health", str(exposure_csv), "--functions", str(f), "--draws", "20", "--out", str(out)]) == 2
    err = _err(capsys)
    assert f"functions file {f} line 2, {needle}" in err
    assert not out.exists()


def test_health_background_below_primary(exposure_csv, tmp_path, capsys):
    # before: accepted (the scenario exposure floored at 0)
    bg = tmp_path / "bg.csv"
    bg.write_text("region,pm25_total_ug_m3\n110000,90\n120000,60\n")
    out = tmp_path / "o.csv"
    assert main(["--quiet", "health", str(exposure_csv), "--background", str(bg), "--draws", "0", "--out",
                 str(out)]) == 2
    err = _err(capsys)
    assert f"background (per region, {bg})" in err
    assert "region '120000' has a total-PM2.5 background of 60 ug m-3, below its modelled primary PM2.5 of 70" in err
    bg.write_text("region,pm25_total_ug_m3\n110000,90\n120000,70\n")
    assert main(["--quiet", "health", str(exposure_csv), "--background", str(bg), "--draws", "0", "--out",
                 str(out)]) == 0


@pytest.mark.parametrize("health, needle", [
    ({"functions_file": "F"}, "functions_file = 'F' with crf = 'ier2010'"),
    ({"crf": "user"}, "crf = \"user\" needs functions_file"),
    ({"background": "B"}, "background file B"),
])
def test_health_config_checked_before_any_dispersion(tmp_path, monkeypatch, health, needle):
    # before: found after seconds of dispersion work
    from engine.dispersion import srmatrix
    from engine.pipeline import prepare

    f = tmp_path / "f.csv"
    f.write_text("form,cause,beta,beta_se,min_age\nlog_linear,ihd,-0.01,0.001,25\n")
    b = tmp_path / "b.csv"
    b.write_text("region,pm25_total_ug_m3\n110000,nan\n")
    h = {k: str({"F": f, "B": b}.get(v, v)) for k, v in health.items()}
    needle = needle.replace("'F'", repr(str(f))).replace("B", str(b))
    monkeypatch.setattr(srmatrix, "compute_receptor", _never)
    cfg = load_config(sn.write_configs(tmp_path / "cfg"), overrides={"health": h})
    with pytest.raises(InputError) as info:
        prepare(cfg, data=sn.nation())
    assert needle in str(info.value)


# --------------------------------------------------------------------------- exit 2, not 1
def test_truncated_sweep_chunk_is_recomputed(tmp_path, caplog):
    # before: BadZipFile (exit 1); the field cache already recomputed such entries
    from engine.sensitivity.driver import _load_chunk, _save_chunk

    f = tmp_path / "chunk_000000000_000000004.npz"
    _save_chunk(f, {"a": np.arange(4.0)})
    np.testing.assert_array_equal(_load_chunk(f, ["a"], 4)["a"], np.arange(4.0))
    f.write_bytes(f.read_bytes()[:40])
    assert _load_chunk(f, ["a"], 4) is None and not f.exists()  # deleted: the driver recomputes it
    assert "recomputed" in caplog.text


def test_aermod_out_of_memory_is_exit_2_with_aermod_advice(monkeypatch, capsys):
    # before: the run's advice (--workers, --cities, city_resolution_m), which aermod has none of
    import engine.commands.aermod as cmd

    def oom(*a, **k):
        raise MemoryError()

    monkeypatch.setattr(cmd, "run_control_file", oom)
    assert main(["--quiet", "aermod", str(AERMOD / "caseA_single" / "aermod.inp")]) == 2
    err = _err(capsys)
    assert "not enough memory" in err and "fewer receptors" in err and "--workers" not in err


def test_aermod_options_anywhere(tmp_path):
    # before: 'unrecognized arguments: L.out'
    case = tmp_path / "case"
    shutil.copytree(AERMOD / "caseA_single", case)
    shutil.copytree(MET, tmp_path / "met")
    listing = tmp_path / "L.out"
    assert main(["--quiet", "aermod", str(case / "aermod.inp"), "--outdir", str(tmp_path / "o"), str(listing)]) == 0
    assert listing.is_file() and (tmp_path / "o" / "period_all.pst").is_file()
    listing.unlink()
    assert main(["--quiet", "aermod", "--method", "direct", str(case / "aermod.inp"), str(listing)]) == 0
    assert listing.is_file()


def test_aermod_outputs_never_overwrite_inputs(tmp_path, capsys):
    # before: 'aermod X.inp MET.sfc' wrote the listing over the met file
    case = tmp_path / "case"
    shutil.copytree(AERMOD / "caseA_single", case)
    shutil.copytree(MET, tmp_path / "met")
    sfc = tmp_path / "met" / "synth5.sfc"
    before = sfc.read_bytes()
    assert main(["--quiet", "aermod", str(case / "aermod.inp"), str(sfc)]) == 2
    assert f"LISTING.out {sfc} is SURFFILE {sfc}" in _err(capsys)
    assert sfc.read_bytes() == before
    inp = case / "aermod.inp"
    inp.write_text(inp.read_text().replace("ERRORFIL errors.out", "ERRORFIL aermod.inp"))
    assert main(["--quiet", "aermod", str(inp)]) == 2
    assert f"ERRORFIL {inp} is CONTROL.inp {inp}" in _err(capsys)

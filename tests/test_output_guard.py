"""One output guard, lock and transaction for every writing command (issue 22, classes 2 and 5):
``met-climatology`` and ``health`` never write over an input or a second output, refuse a second
writer, leave the previous file on SIGTERM; ``report RUN_DIR`` amends the run folder so that it
still verifies; the report title never shows a staging folder's name."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import synthetic_nation as sn
from engine.cli import main
from engine.errors import InputError
from engine.output.locks import OutputLock, check_outputs
from engine.output.persist import FileTransaction, OutputTransaction, read_manifest, verify_output

ROOT = Path(__file__).resolve().parent.parent
MET = ROOT / "tests" / "data" / "aermod" / "met"


def _err(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# --------------------------------------------------------------------------- the guard
def test_check_outputs_names_both_paths(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("x\n")
    with pytest.raises(InputError, match=r"--out .*a\.csv is the input file .*a\.csv"):
        check_outputs([("--out", a, "file")], [("", a)])
    with pytest.raises(InputError, match=r"--out .*b\.csv and --benmap-out .*b\.csv name the same output"):
        check_outputs([("--out", tmp_path / "b.csv", "file"), ("--benmap-out", tmp_path / "b.csv", "file")], [])
    link = tmp_path / "hard.csv"
    os.link(a, link)  # another name of the same file
    with pytest.raises(InputError, match="is INPUT.csv"):
        check_outputs([("--out", link, "file")], [("INPUT.csv", a)])
    sym = tmp_path / "sym.csv"
    sym.symlink_to(a)
    with pytest.raises(InputError, match="is INPUT.csv"):
        check_outputs([("--out", sym, "file")], [("INPUT.csv", a)])
    check_outputs([("--out", tmp_path / "new.csv", "file")], [("INPUT.csv", a)])  # a new file is fine


def test_file_transaction_commits_all_or_nothing(tmp_path):
    out, other = tmp_path / "o.csv", tmp_path / "p.csv"
    out.write_text("old\n")
    with pytest.raises(RuntimeError):
        with FileTransaction({"--out": out, "--x": other}) as tx:
            tx.path("--out").write_text("new\n")
            raise RuntimeError("failed half-way")
    assert out.read_text() == "old\n" and not other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv"]  # no staging file, no lock
    with FileTransaction({"--out": out, "--x": other}) as tx:
        tx.path("--out").write_text("new\n")
        tx.path("--x").write_text("other\n")
        assert out.read_text() == "old\n"  # nothing visible before the commit
    assert out.read_text() == "new\n" and other.read_text() == "other\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv", "p.csv"]


def test_file_transaction_refuses_a_second_writer(tmp_path):
    out = tmp_path / "o.csv"
    with FileTransaction({"--out": out}, command="first") as tx:
        with pytest.raises(InputError, match=r"being written by process \d+ .*\(first\)"):
            with FileTransaction({"--out": out}):
                pass
        tx.path("--out").write_text("1\n")
    with FileTransaction({"--out": out}) as tx:  # released after the first
        tx.path("--out").write_text("2\n")
    assert out.read_text() == "2\n"


def test_one_lock_for_folder_and_file_writers(tmp_path):
    # the same lock file whichever command writes: a run and a report never write one folder at once
    out = tmp_path / "out"
    with OutputTransaction(out, command="run") as tx:
        assert OutputLock(out).path == tx.lock_path
        with pytest.raises(InputError, match=r"\(run\)"):
            OutputLock(out).acquire()
        tx.path("a.txt").write_text("a")


# --------------------------------------------------------------------------- met-climatology
def test_met_climatology_refuses_out_over_its_input(tmp_path, capsys):
    sfc = tmp_path / "x.sfc"
    sfc.write_bytes((MET / "synth24.sfc").read_bytes())
    before = sfc.read_bytes()
    assert main(["--quiet", "met-climatology", str(sfc), "--out", str(sfc)]) == 2
    assert "--out" in (err := _err(capsys)) and "is SFC" in err and str(sfc) in err
    pfl = tmp_path / "x.pfl"
    pfl.write_bytes((MET / "synth24.pfl").read_bytes())
    assert main(["--quiet", "met-climatology", str(sfc), str(pfl), "--out", str(pfl)]) == 2
    assert "is PFL" in _err(capsys)
    assert sfc.read_bytes() == before
    assert main(["--quiet", "met-climatology", str(sfc), str(pfl), "--out", str(tmp_path / "c.csv")]) == 0
    assert (tmp_path / "c.csv").read_text().startswith("#")


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


def test_health_refuses_out_over_input_and_benmap_equal_to_out(exposure_csv, tmp_path, capsys):
    before = exposure_csv.read_bytes()
    assert main(["--quiet", "health", str(exposure_csv), "--draws", "0", "--out", str(exposure_csv)]) == 2
    assert "is INPUT.csv" in _err(capsys)
    assert exposure_csv.read_bytes() == before
    out = tmp_path / "o.csv"
    assert main(["--quiet", "health", str(exposure_csv), "--draws", "0", "--out", str(out),
                 "--benmap-out", str(out)]) == 2
    err = _err(capsys)
    assert "--out" in err and "--benmap-out" in err and "name the same output" in err
    assert not out.exists()
    bg = tmp_path / "bg.csv"
    bg.write_text("region,pm25_total_ug_m3\n110000,90\n120000,80\n")
    assert main(["--quiet", "health", str(exposure_csv), "--draws", "0", "--background", str(bg), "--out",
                 str(out), "--benmap-out", str(bg)]) == 2
    assert "--benmap-out" in (err := _err(capsys)) and "is --background" in err
    assert main(["--quiet", "health", str(exposure_csv), "--draws", "0", "--out", str(out),
                 "--benmap-out", str(tmp_path / "b.csv")]) == 0
    assert len(pd.read_csv(out)) and len(pd.read_csv(tmp_path / "b.csv"))


_SLOW_HEALTH = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import engine.output.writers as w
    marker = Path(sys.argv[1])
    orig = w.write_csv
    def slow(df, path, **kw):
        orig(df, path, **kw)
        marker.write_text("written"); time.sleep(60)
    w.write_csv = slow
    from engine.cli import main
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_health_killed_while_writing_keeps_the_previous_file(exposure_csv, tmp_path, sig):
    out = tmp_path / "o.csv"
    out.write_text("previous\n")
    script = tmp_path / "slow.py"
    script.write_text(_SLOW_HEALTH)
    marker = tmp_path / "marker"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(marker), "--quiet", "health", str(exposure_csv),
                             "--draws", "0", "--out", str(out)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.time()
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < 120, "the wrapped command never reached its write"
        time.sleep(0.05)
    # a second writer meanwhile is refused (exit 2, naming the lock), not interleaved
    r = subprocess.run([sys.executable, "-m", "engine", "--quiet", "health", str(exposure_csv), "--draws", "0",
                        "--out", str(out)], env=env, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "being written by process" in r.stderr, r.stderr
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert proc.returncode in (-sig, 128 + sig)
    assert out.read_text() == "previous\n"
    if sig == signal.SIGTERM:  # cleaned up on the way out; after SIGKILL the next writer cleans
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".o.csv")) == []
    assert main(["--quiet", "health", str(exposure_csv), "--draws", "0", "--out", str(out)]) == 0
    assert "deaths_central" in out.read_text()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".o.csv")) == []


# --------------------------------------------------------------------------- report
@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    from engine.commands.run import run_national
    from engine.config import load_config

    from test_report import _carbon_fn as _report_carbon_fn  # the columns the report's figures need

    tmp = tmp_path_factory.mktemp("guard")
    cfg = load_config(sn.write_configs(tmp / "cfg"))
    res = run_national(cfg, tmp / "national", data=sn.nation(), age_population_fn=sn.age_population_fn,
                       carbon_fn=_report_carbon_fn(), quiet=True, report=True)
    return res.out_dir


def test_run_report_title_is_the_run_folder_not_its_staging_name(clean_run):
    page = (clean_run / "report" / "index.html").read_text()
    assert "<title>cobenefits report: national</title>" in page
    assert ".staging-" not in page and ".national" not in page


def test_report_amends_the_run_and_the_run_still_verifies(clean_run, tmp_path, capsys):
    run = tmp_path / "national"
    import shutil

    shutil.copytree(clean_run, run)
    man0 = read_manifest(run)
    assert verify_output(run) == []
    assert main(["--quiet", "report", str(run), "--formats", "png"]) == 0
    assert verify_output(run) == []  # before: 'SHA-256 differs' for every report file
    man = read_manifest(run)
    assert man["command"] == man0["command"] == "run" and man["config"] == man0["config"]
    assert [a["command"] for a in man["amended"]] == ["report"] and man["amended"][0]["paths"] == ["report"]
    assert not (run / "report" / "fig2_national_reductions.svg").exists()  # report/ replaced as a whole
    kept = {f["path"]: f["sha256"] for f in man0["files"] if not f["path"].startswith("report/")}
    assert kept == {f["path"]: f["sha256"] for f in man["files"] if not f["path"].startswith("report/")}
    assert "<title>cobenefits report: national</title>" in (run / "report" / "index.html").read_text()
    # the same with --out RUN_DIR/report, and twice: amendments accumulate
    assert main(["--quiet", "report", str(run), "--out", str(run / "report")]) == 0
    assert verify_output(run) == [] and len(read_manifest(run)["amended"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["national"]  # no lock, no staging left
    # --out elsewhere inside the run folder would change the run: refused, naming both
    assert main(["--quiet", "report", str(run), "--out", str(run / "figs")]) == 2
    assert "lies inside the input folder" in _err(capsys)
    # --out elsewhere: its own output folder with its own manifest
    assert main(["--quiet", "report", str(run), "--out", str(tmp_path / "rep"), "--formats", "png"]) == 0
    assert verify_output(tmp_path / "rep") == [] and read_manifest(tmp_path / "rep")["command"] == "report"
    # a run folder edited by hand is not blessed with a new manifest
    (run / "national.csv").write_text((run / "national.csv").read_text() + "\n")
    assert main(["--quiet", "report", str(run)]) == 2
    err = _err(capsys)
    assert "no longer matches its manifest.json" in err and "national.csv" in err


def test_report_waits_for_a_run_writing_the_same_folder(clean_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "national"
    shutil.copytree(clean_run, run)
    with OutputLock(run, command="run"):
        assert main(["--quiet", "report", str(run)]) == 2
        assert "being written by process" in _err(capsys)
    assert verify_output(run) == []


@pytest.mark.parametrize("cut", [400, 800, 1500])
def test_report_of_a_truncated_run_table_is_exit_2(clean_run, tmp_path, capsys, cut):
    # before: IndexError (exit 1) or figures from NaN rows
    import shutil

    run = tmp_path / "national"
    shutil.copytree(clean_run, run)
    data = (run / "cities.csv").read_bytes()
    (run / "cities.csv").write_bytes(data[:cut])
    assert main(["--quiet", "report", str(run), "--out", str(tmp_path / "rep")]) == 2
    err = _err(capsys)
    assert f"{run / 'cities.csv'}" in err and ("fields, the header has" in err or "has no row of scenario" in err
                                                or "cities" in err)
    assert not (tmp_path / "rep").exists()


def test_validate_amends_the_run_and_the_run_still_verifies(clean_run, tmp_path):
    # before: RUN_DIR/validation was an output folder of its own inside the run: the run then
    # failed its verification (files not listed in its manifest)
    import shutil

    from engine.report.validation import shipped_measured_path, validate_run

    run = tmp_path / "national"
    shutil.copytree(clean_run, run)
    measured = tmp_path / "m.csv"
    measured.write_text("city_id,year,pm25_ug_m3\n130100,2014,100\n410100,2014,90\n")
    res = validate_run(run, measured, formats=("png",))
    assert res["out_dir"] == str(run / "validation") and (run / "validation" / "validation.csv").is_file()
    assert verify_output(run) == []
    assert [a["command"] for a in read_manifest(run)["amended"]] == ["validate"]
    assert shipped_measured_path().is_file()

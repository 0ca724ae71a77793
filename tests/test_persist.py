"""engine.output.persist: atomic files, the output transaction (manifest, lock, input overlap, stale files,
interruptions) and the verified cache; kill tests of ``cobenefits carbon``."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from engine.dispersion import fields as fl
from engine.cli import main
from engine.errors import InputError
from engine.output.persist import (MANIFEST_NAME, OutputTransaction, atomic_path, load_verified_npz, read_manifest,
                            save_verified_npz, sha256_file, verify_output)

ROOT = Path(__file__).resolve().parent.parent


def _write(tx, files):
    for name, text in files.items():
        tx.path(name).write_text(text)


def _leftovers(parent, name):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


# --------------------------------------------------------------------------- atomic file
def test_atomic_path_keeps_old_file_on_error(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert p.read_text() == "old"
    assert [q.name for q in tmp_path.iterdir()] == ["a.txt"]


# --------------------------------------------------------------------------- transaction
def test_transaction_commit_writes_manifest(tmp_path):
    out = tmp_path / "out"
    with OutputTransaction(out, config={"k": 1}, command="test") as tx:
        _write(tx, {"a.csv": "x\n1\n", "cities/c1.nc": "abc"})
        assert not out.exists()  # nothing visible before the commit
    man = read_manifest(out)
    assert man["complete"] is True and man["config"] == {"k": 1} and man["command"] == "test"
    assert {f["path"]: f["size_bytes"] for f in man["files"]} == {"a.csv": 4, "cities/c1.nc": 3}
    assert man["files"][0]["sha256"] == sha256_file(out / "a.csv")
    assert "numpy" in man["versions"]
    assert verify_output(out) == []
    assert _leftovers(tmp_path, "out") == []  # no lock, no staging


def test_rerun_removes_stale_files(tmp_path):
    out = tmp_path / "out"
    with OutputTransaction(out) as tx:
        _write(tx, {"cities/c1.nc": "1", "cities/c2.nc": "2", "a.csv": "all"})
    with OutputTransaction(out) as tx:  # a re-run with other --cities
        _write(tx, {"cities/c3.nc": "3", "a.csv": "three"})
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == \
        ["a.csv", "cities/c3.nc", MANIFEST_NAME]
    assert verify_output(out) == []


def test_exception_mid_write_keeps_previous_output(tmp_path):
    out = tmp_path / "out"
    with OutputTransaction(out) as tx:
        _write(tx, {"a.csv": "old", "b.csv": "old"})
    before = read_manifest(out)
    with pytest.raises(OSError):
        with OutputTransaction(out) as tx:
            _write(tx, {"a.csv": "new"})
            raise OSError(28, "No space left on device")
    assert read_manifest(out) == before and (out / "a.csv").read_text() == "old"
    assert verify_output(out) == []
    assert _leftovers(tmp_path, "out") == []


def test_verify_output_detects_tampering(tmp_path):
    out = tmp_path / "out"
    with OutputTransaction(out) as tx:
        _write(tx, {"a.csv": "abc"})
    (out / "a.csv").write_text("abd")
    (out / "extra.csv").write_text("")
    probs = verify_output(out)
    assert any("SHA-256 differs" in p for p in probs) and any("not listed" in p for p in probs)
    assert verify_output(tmp_path / "none") == [f"{tmp_path / 'none'}: no readable {MANIFEST_NAME}"]


def test_lock_refuses_second_writer(tmp_path):
    out = tmp_path / "out"
    with OutputTransaction(out, command="first"):
        with pytest.raises(InputError, match=r"is being written by process \d+ .*lock file"):
            with OutputTransaction(out):
                pass
    with OutputTransaction(out):  # released after the first
        pass


def test_stale_lock_of_dead_process_is_taken_over(tmp_path):
    import socket

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    out = tmp_path / "out"
    (tmp_path / ".out.lock").write_text(json.dumps({"pid": pid, "host": socket.gethostname()}))
    (tmp_path / f".out.staging-{pid}").mkdir()  # what a SIGKILLed writer leaves
    with OutputTransaction(out) as tx:
        _write(tx, {"a": "1"})
    assert verify_output(out) == [] and _leftovers(tmp_path, "out") == []


def test_kill_between_renames_is_repaired(tmp_path):
    # state after a SIGKILL between "out -> .out.old-PID" and "staging -> out" (non-Linux swap)
    with OutputTransaction(tmp_path / "prev") as tx:
        _write(tx, {"a.csv": "previous"})
    os.replace(tmp_path / "prev", tmp_path / ".out.old-99999")
    (tmp_path / ".out.staging-99999").mkdir()
    (tmp_path / ".out.staging-99999" / "a.csv").write_text("half")
    with pytest.raises(RuntimeError):
        with OutputTransaction(tmp_path / "out"):
            raise RuntimeError("fails before the commit")
    assert (tmp_path / "out" / "a.csv").read_text() == "previous"
    assert verify_output(tmp_path / "out") == [] and _leftovers(tmp_path, "out") == []


@pytest.mark.parametrize("where", ["equal", "inside", "contains", "file"])
def test_out_overlapping_an_input_is_refused(tmp_path, where):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "cities.csv").write_text("x")
    out, inputs = {"equal": (data, [data]), "inside": (data / "sub" / "out", [data]),
                   "contains": (tmp_path, [data]), "file": (data, [data / "cities.csv"])}[where]
    with pytest.raises(InputError, match="--out .* (is|lies inside|contains) the input"):
        with OutputTransaction(out, inputs=inputs):
            pass
    assert (data / "cities.csv").read_text() == "x"


def test_foreign_nonempty_folder_is_refused(tmp_path):
    (tmp_path / "mine.txt").write_text("user file")
    with pytest.raises(InputError, match="not empty and holds no manifest.json"):
        with OutputTransaction(tmp_path):
            pass
    (tmp_path / "f").write_text("")
    with pytest.raises(InputError, match="exists and is not a folder"):
        with OutputTransaction(tmp_path / "f"):
            pass
    empty = tmp_path / "empty"
    empty.mkdir()
    with OutputTransaction(empty) as tx:
        _write(tx, {"a": "1"})
    assert verify_output(empty) == []


def test_carbon_refuses_out_equal_to_data(tmp_path, capsys):
    import shutil

    from engine.data.dataset import default_data_dir

    d = tmp_path / "d"
    shutil.copytree(default_data_dir(), d, ignore=shutil.ignore_patterns("health", "*.md"))
    before = sha256_file(d / "cities.csv")
    assert main(["--quiet", "carbon", "--data", str(d), "--out", str(d)]) == 2
    assert "is the input folder" in capsys.readouterr().err
    assert sha256_file(d / "cities.csv") == before


# --------------------------------------------------------------------------- verified cache
def test_verified_npz_roundtrip_and_corruption(tmp_path, caplog):
    p = tmp_path / "e.npz"
    a = np.arange(12.0).reshape(3, 4)
    save_verified_npz(p, a=a)
    np.testing.assert_array_equal(load_verified_npz(p, ("a",))["a"], a)
    assert load_verified_npz(tmp_path / "absent.npz", ("a",)) is None
    raw = p.read_bytes()
    for damage, why in ((raw[: len(raw) // 2], "corrupt"), (raw[:-1] + bytes([raw[-1] ^ 1]), "corrupt")):
        save_verified_npz(p, a=a)
        p.write_bytes(damage)
        assert load_verified_npz(p, ("a",)) is None
        assert not p.exists() and not Path(str(p) + ".sha256").exists()
        assert why in caplog.text
    save_verified_npz(p, a=a)
    Path(str(p) + ".sha256").unlink()  # writer died between the entry and its checksum
    assert load_verified_npz(p, ("a",)) is None and not p.exists()
    save_verified_npz(p, a=a)
    assert load_verified_npz(p, ("a", "b")) is None  # an entry of an older layout


def test_kernel_cache_recomputes_truncated_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path))
    calls = []

    def fake_kernel(met, *, cell_size_m, spacing_m, n_half, release_height_m, initial_sigma_z_m):
        calls.append(n_half)
        return np.full((2 * n_half + 1,) * 2, 1.0 / cell_size_m)

    spec = fl.KernelSpec("met-x", 1000.0, 4)
    k1 = fl.compute_kernel(spec, None, kernel_fn=fake_kernel)
    (entry,) = (tmp_path / "kernels").glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:50])      # truncated: BadZipFile before this fix
    k2 = fl.compute_kernel(spec, None, kernel_fn=fake_kernel)
    np.testing.assert_array_equal(k1, k2)
    assert len(calls) == 2                          # recomputed, not raised
    k3 = fl.compute_kernel(spec, None, kernel_fn=fake_kernel)
    np.testing.assert_array_equal(k1, k3)
    assert len(calls) == 2                          # the rewritten entry is valid and reused


# --------------------------------------------------------------------------- kill tests (carbon)
_WRAPPER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import engine.output.writers, engine.output.persist
    marker, phase = Path(sys.argv[1]), sys.argv[2]
    orig_csv, orig_commit = engine.output.writers.write_csv, engine.output.persist.OutputTransaction._commit
    def slow_csv(df, path, **kw):
        orig_csv(df, path, **kw)
        if phase == "write" and Path(path).name == "cities.csv":
            marker.write_text("writing"); time.sleep(60)
    def slow_commit(self):
        if phase == "commit":
            marker.write_text("committing"); time.sleep(60)
        orig_commit(self)
    engine.output.writers.write_csv = slow_csv
    import engine.commands.carbon as cc
    cc.write_csv = slow_csv
    engine.output.persist.OutputTransaction._commit = slow_commit
    from engine.cli import main
    sys.exit(main(sys.argv[3:]))
""")


def _carbon(args, env, **kw):
    return subprocess.run([sys.executable, "-m", "engine", "--quiet", "carbon", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, **kw)


def _data_files(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != MANIFEST_NAME}


@pytest.mark.parametrize("sig,phase", [(signal.SIGTERM, "write"), (signal.SIGKILL, "write"),
                                       (signal.SIGKILL, "commit"), (signal.SIGTERM, "commit")])
def test_carbon_killed_while_writing_keeps_previous_output(tmp_path, sig, phase):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = str(ROOT / "config" / "base.toml")
    out = tmp_path / "out"
    assert _carbon(["--out", str(out)], env).returncode == 0            # previous run: four scenarios
    previous = _data_files(out)
    man = read_manifest(out)
    script = tmp_path / "wrapper.py"
    script.write_text(_WRAPPER)
    marker = tmp_path / "marker"
    new_args = ["carbon", base, "--seasonality", "0.4", "--out", str(out)]
    proc = subprocess.Popen([sys.executable, str(script), str(marker), phase, "--quiet", *new_args], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    t0 = time.time()
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < 120, "the wrapped run never reached the write phase"
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert proc.returncode in (-sig, 128 + sig)
    # the previous complete output, untouched: no mixed set, nothing that looks complete but is not
    assert _data_files(out) == previous and read_manifest(out) == man and verify_output(out) == []
    # re-run: identical to a clean run into a fresh folder, and nothing left beside --out
    assert _carbon([base, "--seasonality", "0.4", "--out", str(out)], env).returncode == 0
    assert _carbon([base, "--seasonality", "0.4", "--out", str(tmp_path / "clean")], env).returncode == 0
    assert _data_files(out) == _data_files(tmp_path / "clean")
    assert verify_output(out) == [] and _leftovers(tmp_path, "out") == []
    assert "base" in (out / "national.csv").read_text() and "fyp_symbiosis" not in (out / "national.csv").read_text()


def test_outputs_are_flushed_before_their_rename_cache_entries_are_not(tmp_path, monkeypatch):
    # outputs: fsync then rename; cache entries: rename only, their SHA-256 sidecar guards them
    import os

    from engine.output import persist

    calls = []
    real = os.fsync
    monkeypatch.setattr(persist.os, "fsync", lambda fd: calls.append(fd) or real(fd))
    persist.atomic_write_bytes(tmp_path / "out.csv", b"a,b\n")
    assert len(calls) == 1
    persist.save_verified_npz(tmp_path / "entry.npz", row=np.arange(3.0))
    assert len(calls) == 1
    got = persist.load_verified_npz(tmp_path / "entry.npz", ["row"])
    assert np.array_equal(got["row"], np.arange(3.0))

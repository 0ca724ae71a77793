"""`cobenefits sweep` holds the contract of `run` (issue 22): one output transaction (lock,
--out guard, all or nothing), indices only where they mean something, every check before any
dispersion work, exit 2 with a message naming the input."""

import json
import math
import os
import signal
import textwrap

import numpy as np
import pandas as pd
import pytest

from engine import sensitivity as sw
from engine.cli import main
from engine.data.dataset import load_dataset
from engine.errors import InputError
from engine.output.persist import OutputTransaction
from engine.sensitivity import driver


class Fn:
    """A cheap evaluator: ``y`` depends on x1 and x2, ``c`` is constant, ``bad`` has one NaN."""

    outputs = ("y", "c", "bad")

    def key_info(self, key):
        if key not in ("x1", "x2"):
            raise KeyError("unknown key; x1, x2")
        return sw.KeyInfo("float", -1.0, 1.0, default=0.0)

    def __call__(self, values):
        x1, x2 = values["x1"].to_numpy(float), values["x2"].to_numpy(float)
        bad = x1 + 0.0
        bad[:1] = np.nan if values.index[0] == 0 else bad[:1]
        return {"y": x1 + 0.3 * x2 ** 2, "c": np.full(len(x1), 0.53), "bad": bad}


def _spec(method="sobol", samples=64, **kw):
    return sw.parse_spec({"sweep": {"method": method, "samples": samples, "seed": 3, **kw,
                                    "parameter": [{"key": k, "bounds": [-1.0, 1.0]} for k in ("x1", "x2")]}},
                         source="fn.toml")


# ----------------------------------------------------------------------------- indices that mean something
def test_constant_and_non_finite_outputs_are_flagged_not_dropped(tmp_path):
    ds = sw.sweep(_spec(), out=tmp_path / "o", evaluator=Fn(), workers=1)
    ind = pd.read_csv(tmp_path / "o" / "indices.csv", keep_default_na=False)
    assert set(ind["output"]) == {"y", "c", "bad"} and len(ind) == 6  # every output, every parameter
    y = ind[ind.output == "y"]
    assert (y["note"] == "").all() and np.isfinite(y["S1"].astype(float)).all()
    c = ind[ind.output == "c"]
    assert c["note"].str.contains("constant output").all() and (c["S1"] == "").all()
    b = ind[ind.output == "bad"]
    assert b["note"].str.contains("non-finite output in 1 of").all()
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["indices"]["y"]["computed"] and not s["indices"]["c"]["computed"]
    assert "constant" in s["indices"]["c"]["reason"] and "non-finite" in s["indices"]["bad"]["reason"]
    assert s["national_distribution"]["bad"]["non_finite_samples"] == 1
    assert list(ds["index_note"].values) == ["", s["indices"]["c"]["reason"], s["indices"]["bad"]["reason"]]


@pytest.mark.parametrize("method, samples", [("sobol", 1), ("sobol", 7), ("lhs", 3), ("mc", 2), ("mc", 20)])
def test_too_few_samples_give_no_indices_and_say_why(tmp_path, method, samples):
    sw.sweep(_spec(method, samples), out=tmp_path / "o", evaluator=Fn(), workers=1)
    ind = pd.read_csv(tmp_path / "o" / "indices.csv", keep_default_na=False)
    assert ind["note"].str.contains(f"too few samples for {method} indices").all(), ind["note"].iloc[0]
    assert (ind.drop(columns=["output", "parameter", "note"]) == "").all().all()


def test_one_sample_of_mc_or_lhs_is_refused():
    for method in ("mc", "lhs"):
        with pytest.raises(InputError, match=r"samples = 1.*samples >= 2"):
            sw.sweep(_spec(method, 1), evaluator=Fn())


def test_normal_truncated_where_it_has_no_mass_names_the_parameter():
    table = {"sweep": {"parameter": [{"key": "x1", "dist": "normal", "mean": 0.0, "sd": 0.01, "bounds": [0.5, 1.0]}]}}
    with pytest.raises(InputError, match=r"parameter 'x1'.*probability mass 0 there"):
        sw.parse_spec(table, source="fn.toml")
    # a far tail that still has mass is sampled inside its bounds (mirrored: the CDF keeps its precision)
    table["sweep"]["parameter"][0].update(mean=0.9, sd=0.2, bounds=[-1.0, 0.2])  # 3.5 sd into the lower tail
    p = sw.parse_spec(table, source="fn.toml").parameters[0]
    v = p.from_unit(np.linspace(0.0, 1.0, 101))
    assert np.isfinite(v).all() and v.min() >= -1.0 - 1e-12 and v.max() <= 0.2 + 1e-12
    table["sweep"]["parameter"][0].update(mean=-0.9, sd=0.3, bounds=[0.3, 1.0])  # 4 sd into the upper tail
    v = sw.parse_spec(table, source="fn.toml").parameters[0].from_unit(np.linspace(0.0, 1.0, 101))
    assert np.isfinite(v).all() and 0.3 - 1e-12 <= v.min() and v.max() <= 1.0 + 1e-12
    assert np.all(np.diff(v) >= 0)


@pytest.mark.parametrize("kw, needle", [
    ({"seed": 2 ** 32}, "--seed 4294967296 must be an integer in [0, 4294967295]"),
    ({"seed": 99999999999999999999}, "--seed 99999999999999999999"),
    ({"samples": 10 ** 12}, "--samples 1000000000000 must be an integer in [1, 100000000]"),
    ({"chunk_size": 0}, "--chunk-size 0"),
    ({"workers": -1}, "--workers -1: must be >= 0"),
])
def test_command_line_values_are_checked_before_any_work(tmp_path, kw, needle):
    with pytest.raises(InputError) as e:
        sw.sweep(_spec(), out=tmp_path / "o", evaluator=Fn(), **kw)
    assert needle in str(e.value)
    assert not (tmp_path / "o").exists()


def test_evaluations_are_capped_for_grids_and_samples(tmp_path):
    grid = sw.parse_spec({"sweep": {"method": "grid", "grid_points": 1000, "parameter": [
        {"key": k, "dist": "normal", "mean": 0.0, "sd": 0.5, "bounds": [-1.0, 1.0]} for k in ("x1", "x2", "x1b")]}},
        source="grid.toml")

    class Fn3(Fn):
        def key_info(self, key):
            return sw.KeyInfo("float", -1.0, 1.0, default=0.0)

    with pytest.raises(InputError, match=r"1,000,000,000 evaluations \(the product of the parameters' levels"):
        sw.sweep(grid, out=tmp_path / "g", evaluator=Fn3())
    with pytest.raises(InputError, match=r"evaluations \(samples = 100000000 times the sobol factor\)"):
        sw.sweep(_spec("sobol", 10 ** 8), out=tmp_path / "s", evaluator=Fn())


def test_cli_refuses_workers_minus_one_and_a_non_utf8_sweep_file(tmp_path, capsys):
    p = tmp_path / "latin1.toml"
    p.write_bytes('# caf\xe9\n[sweep]\nmethod = "mc"\n'.encode("latin-1"))
    assert main(["sweep", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"sweep file {p} is not UTF-8 text" in err and "Traceback" not in err
    good = tmp_path / "good.toml"
    good.write_text('[sweep]\nmethod = "mc"\nsamples = 4\n[[sweep.parameter]]\nkey = "carbon.orc_efficiency"\n'
                    'bounds = [0.1, 0.2]\n')
    assert main(["sweep", str(good), "--out", str(tmp_path / "o"), "--workers", "-1"]) == 2
    assert "--workers -1" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the output transaction
def test_out_over_inputs_a_run_or_a_foreign_folder_is_refused(tmp_path):
    f = tmp_path / "fn.toml"
    f.write_text('[sweep]\nmethod = "mc"\nsamples = 30\n[[sweep.parameter]]\nkey = "x1"\nbounds = [-1.0, 1.0]\n'
                 '[[sweep.parameter]]\nkey = "x2"\nbounds = [-1.0, 1.0]\n')
    with pytest.raises(InputError, match="contains the input file"):
        sw.sweep(f, out=tmp_path, evaluator=Fn())  # the folder holding the sweep file
    user = tmp_path / "mine"
    user.mkdir()
    (user / "samples.csv").write_text("precious\n")
    with pytest.raises(InputError, match="not empty and holds no manifest.json"):
        sw.sweep(f, out=user, evaluator=Fn())
    assert (user / "samples.csv").read_text() == "precious\n"
    run = tmp_path / "run"
    with OutputTransaction(run, command="run") as tx:
        tx.path("summary.json").write_text("{}")
    with pytest.raises(InputError, match="holds the output of `run`"):
        sw.sweep(f, out=run, evaluator=Fn())
    assert (run / "summary.json").read_text() == "{}"
    sw.sweep(f, out=tmp_path / "new", evaluator=Fn())  # a new folder is fine, and so is a sweep's again
    sw.sweep(f, out=tmp_path / "new", evaluator=Fn(), seed=9)
    man = json.loads((tmp_path / "new" / "manifest.json").read_text())
    assert man["command"] == "sweep" and {x["path"] for x in man["files"]} >= {"samples.csv", "sweep.nc",
                                                                                "indices.csv", "summary.json"}


def test_sigterm_while_writing_leaves_the_previous_set(tmp_path, monkeypatch):
    out = tmp_path / "o"
    sw.sweep(_spec(), out=out, evaluator=Fn(), workers=1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = driver._write_netcdf

    def killed(*a, **k):
        real(*a, **k)
        os.kill(os.getpid(), signal.SIGTERM)  # the transaction turns it into SystemExit(143)

    monkeypatch.setattr(driver, "_write_netcdf", killed)
    with pytest.raises(SystemExit) as e:
        sw.sweep(_spec(seed=5), out=out, evaluator=Fn(), workers=1)
    assert e.value.code == 143
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not list(tmp_path.glob(".o.staging-*"))


def test_a_second_sweep_into_the_same_out_is_refused_by_the_lock(tmp_path):
    out = tmp_path / "o"
    with OutputTransaction(out, command="sweep"):  # another sweep writing there (this live process)
        with pytest.raises(InputError, match="is being written by process"):
            sw.sweep(_spec(), out=out, evaluator=Fn(), workers=1)
    sw.sweep(_spec(), out=out, evaluator=Fn(), workers=1)  # once it finished: fine


# ----------------------------------------------------------------------------- checks before dispersion work
def _never(*a, **k):
    raise AssertionError("dispersion work started before the inputs were checked")


def _configs(tmp, health="", met=""):
    extra = (f"[health]\n{health}\n" if health else "") + (f"[met]\n{met}\n" if met else "")
    (tmp / "base.toml").write_text('[scenario]\nname = "base"\n[carbon]\nefficiency_level = "none"\n'
                                   'symbiosis = false\n' + extra)
    (tmp / "cut.toml").write_text('[scenario]\nname = "cut"\n[carbon]\nefficiency_level = "fyp"\n'
                                  'symbiosis = true\n' + extra)
    return [str(tmp / "base.toml"), str(tmp / "cut.toml")]


@pytest.mark.parametrize("health, met, param, needle", [
    ('background = "nowhere.csv"', "", None, "background file"),
    ('functions_file = "f.csv"', "", None, "f.csv' with crf = 'ier2010'"),
    ("", "", {"key": "met.climatology_file", "levels": ["", "missing_climatology.csv"]}, "missing_climatology.csv"),
])
def test_health_and_met_inputs_fail_before_any_dispersion_work(tmp_path, health, met, param, needle):
    (tmp_path / "f.csv").write_text("form,cause,beta,beta_se,min_age\nlog_linear,lc,0.01,0.001,30\n")
    params = [param] if param else [{"key": "carbon.orc_efficiency", "bounds": [0.1, 0.2]}]
    spec = sw.parse_spec({"sweep": {"method": "mc", "samples": 4, "scenario": "cut", "cities": "Hebei",
                                    "config": _configs(tmp_path, health, met), "parameter": params}},
                         source="checks.toml")
    with pytest.raises(InputError) as e:
        sw.sweep(spec, out=tmp_path / "o", data=load_dataset(), sr_fn=_never, workers=1)
    assert needle in str(e.value) and "checks.toml" in str(e.value)
    assert not (tmp_path / "o").exists()

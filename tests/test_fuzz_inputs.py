"""Fuzz campaign of issue 22 (the standing campaign is tests/test_fuzz.py): climatology files, health
user functions, total-PM2.5 backgrounds and output manifests. Each hostile input ends as a correct
result, checked against the input's invariants, or as an :class:`engine.errors.InputError` (CLI exit 2)
naming the file; never another exception, never a silently wrong number.

Derandomised like tests/test_fuzz.py; ``COBENEFITS_FUZZ_EXAMPLES=N`` runs a longer randomised campaign.
"""

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz import FUZZ, _text_mutation, cell, odd_floats

import engine.health as health
from engine.cli import main
from engine.dispersion import climatology as clim
from engine.dispersion.met import read_aermet
from engine.errors import InputError
from engine.output.persist import OutputTransaction, read_manifest, verify_output

ROOT = Path(__file__).resolve().parent.parent
MET = ROOT / "tests" / "data" / "aermod" / "met"

#: inputs tried per target in this session (printed with -s)
TRIED = {}


def _count(name):
    TRIED[name] = TRIED.get(name, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    if TRIED:
        print("\nfuzz inputs tried (issue 22):", ", ".join(f"{k}: {v}" for k, v in TRIED.items()),
              f"(total {sum(TRIED.values())})")


# --------------------------------------------------------------------------- climatology files
def _climatology_text():
    c = clim.climatology_from_met(read_aermet(MET / "synth24.sfc", MET / "synth24.pfl"), source="synth24")
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.csv"
        clim.write_climatology(c, p)
        return p.read_text()


CLIM_TEXT = _climatology_text()


@st.composite
def climatology_mutant(draw):
    """A field of a row or a header pair replaced by an odd value, or a text mutation."""
    lines = CLIM_TEXT.splitlines()
    kind = draw(st.sampled_from(["field", "header", "text"]))
    if kind == "text":
        return draw(_text_mutation(CLIM_TEXT))
    if kind == "header":
        i = draw(st.sampled_from([k for k, ln in enumerate(lines) if ln.startswith("# season_frequency")
                                  or ln.startswith("# calm_frequency")]))
        key, pairs = lines[i].split(":", 1)
        items = pairs.strip().split(",")
        j = draw(st.integers(0, len(items) - 1))
        season = items[j].split("=")[0]
        items[j] = f"{draw(st.one_of(st.just(season), st.text(max_size=8)))}={draw(cell)}"
        if draw(st.booleans()) and len(items) > 1:
            del items[draw(st.integers(0, len(items) - 1))]
        lines[i] = f"{key}: {','.join(items)}"
    else:
        rows = [k for k, ln in enumerate(lines) if not ln.startswith("#")][1:]
        i = draw(st.sampled_from(rows))
        vals = lines[i].split(",")
        j = draw(st.integers(0, len(vals) - 1))
        vals[j] = str(draw(st.one_of(cell, st.sampled_from(["0", "inf", "-inf", "nan", "0.49", "1e9"]))))
        lines[i] = ",".join(vals)
    return "\n".join(lines) + "\n"


@FUZZ
@given(climatology_mutant())
def test_fuzz_climatology_file(text):
    _count("climatology file")
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.csv"
        p.write_text(text)
        try:
            c = clim.read_climatology(p)
        except InputError as exc:
            assert str(p) in str(exc)
            return
        # accepted: the invariants every consumer relies on hold
        assert abs(sum(c.season_frequency.values()) - 1.0) <= clim.SEASON_SUM_TOLERANCE
        u = c.classes["wind_speed_m_s"]
        assert np.isfinite(u).all() and (u >= clim.CALM_THRESHOLD_M_S).all()
        assert np.isfinite(c.classes["friction_velocity_m_s"]).all() and (c.classes["friction_velocity_m_s"] > 0).all()
        for s in c.seasons:
            f = c.classes["frequency"][c.classes["season"] == s]
            assert f.size == 0 or abs(f.sum() - 1.0) <= 1e-4
        for s, m in c.seasonal_met().items():
            assert m.valid.all() and abs(m.weight.sum() - 1.0) < 1e-9, s


# --------------------------------------------------------------------------- user functions
POP = health.age_population([110000]).rename(index=lambda r: str(r))


@st.composite
def function_rows(draw):
    n = draw(st.integers(1, 3))
    rows = []
    for i in range(n):
        form = draw(st.sampled_from(["log_linear", "log_log", "linear", "logit"]))
        rows.append({
            "form": form,
            "cause": draw(st.sampled_from(["ihd", "stroke", "copd", "lc", "lri", "asthma"])),
            "beta": draw(st.one_of(odd_floats, st.floats(-0.1, 0.1), st.floats(0, 2), cell)),
            "beta_se": draw(st.one_of(st.floats(0, 0.01), st.floats(-1, 10), cell)),
            "min_age": draw(st.one_of(st.sampled_from([0, 25, 30, 60, 80]), cell)),
            "zcf": draw(st.one_of(st.just(""), st.floats(0, 10), cell)),
            "incidence_per_100k": draw(st.one_of(st.just(""), st.floats(0, 2e5), st.sampled_from([1e9, -1, 0]),
                                                 cell)),
        })
    return pd.DataFrame(rows).to_csv(index=False)


@FUZZ
@given(function_rows(), st.integers(0, 20))
def test_fuzz_user_functions(text, draws):
    _count("user functions")
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "f.csv"
        p.write_text(text)
        try:
            fns = health.read_user_functions(p)
        except InputError as exc:
            assert str(p) in str(exc)
            return
        for f in fns:  # accepted: plausible
            assert 0 < f.beta <= health.BETA_MAX[f.form] and 0 <= f.beta_se <= health.BETA_MAX[f.form]
            assert not f.incidence_per_100k > health.MAX_INCIDENCE_PER_100K
        try:
            ds = health.health_impact([80.0], POP, conc_scenario=[60.0], crf="user", functions=fns, draws=draws,
                                      seed=1)
        except InputError as exc:  # e.g. a cause with no rate for the ages: a clear error
            assert str(exc)
            return
        deaths = ds["deaths_all_central"].values
        assert np.isfinite(deaths).all() and (deaths >= 0).all()
        assert (deaths <= POP.to_numpy().sum(axis=1)).all()  # never more deaths than people
        for name, v in ds.data_vars.items():  # draws included: no inf from an overflowing relative risk
            if v.dtype.kind == "f":
                assert np.isfinite(v.values).all(), name


# --------------------------------------------------------------------------- backgrounds
@st.composite
def background_case(draw):
    n = 2
    primary = [draw(st.floats(1.0, 200.0)) for _ in range(n)]
    rows = []
    for i in range(n):
        v = draw(st.one_of(st.floats(0, 400), odd_floats, cell))
        region = draw(st.one_of(st.just(f"r{i}"), st.just("r0"), st.text(max_size=4)))
        rows.append(f"{region},{v}")
    if draw(st.booleans()):
        del rows[draw(st.integers(0, n - 1))]
    return primary, "region,pm25_total_ug_m3\n" + "\n".join(rows) + "\n"


@FUZZ
@given(background_case())
def test_fuzz_background(case):
    _count("background")
    primary, text = case
    with tempfile.TemporaryDirectory() as d:
        pop = health.age_population([110000, 120000]).reset_index().rename(columns={"region_id": "region"})
        pop["region"] = ["r0", "r1"]
        pop.insert(1, "pm25", primary)
        pop.insert(2, "pm25_scenario", [0.5 * x for x in primary])
        inp, bg, out = Path(d) / "in.csv", Path(d) / "bg.csv", Path(d) / "o.csv"
        pop.to_csv(inp, index=False)
        bg.write_text(text)
        rc = main(["--quiet", "health", str(inp), "--draws", "0", "--background", str(bg), "--out", str(out)])
        assert rc in (0, 2)
        if rc == 2:
            assert not out.exists()
            return
        res = pd.read_csv(out)
        assert np.isfinite(res["deaths_central"]).all() and (res["deaths_central"] >= 0).all()
        used = health.read_background(bg)
        for r, x in zip(("r0", "r1"), primary):  # accepted: every total at least its primary part
            assert used[r] >= x


# --------------------------------------------------------------------------- manifests
def _json_mutant(draw, obj, depth=0):
    """``obj`` with one value replaced, a key deleted, or a wrong type put in."""
    if isinstance(obj, dict) and obj and depth < 4:
        k = draw(st.sampled_from(sorted(obj)))
        obj = dict(obj)
        what = draw(st.sampled_from(["recurse", "delete", "replace"]))
        if what == "delete":
            del obj[k]
        elif what == "replace":
            obj[k] = draw(st.one_of(st.none(), st.booleans(), st.integers(-5, 10**12), st.text(max_size=10),
                                    st.just([]), st.just({}), st.just("../x"), st.just("/etc/passwd")))
        else:
            obj[k] = _json_mutant(draw, obj[k], depth + 1)
        return obj
    if isinstance(obj, list) and obj and depth < 4:
        obj = list(obj)
        i = draw(st.integers(0, len(obj) - 1))
        obj[i] = _json_mutant(draw, obj[i], depth + 1)
        return obj
    return draw(st.one_of(st.none(), st.integers(), st.text(max_size=10), st.just("../../x")))


@st.composite
def manifest_mutant(draw):
    return lambda man: _json_mutant(draw, man)


@FUZZ
@given(manifest_mutant(), st.booleans())
def test_fuzz_manifest(mutate, raw):
    _count("manifest")
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "out"
        with OutputTransaction(out, command="run") as tx:
            tx.path("a.csv").write_text("x\n1\n")
            tx.path("report/index.html").write_text("<html></html>")
        man = read_manifest(out)
        text = json.dumps(mutate(man)) if not raw else json.dumps(man)[:len(json.dumps(man)) // 2]
        (out / "manifest.json").write_text(text)
        problems = verify_output(out)  # never raises
        assert isinstance(problems, list) and all(isinstance(p, str) for p in problems)
        before = {p.name for p in out.rglob("*")}
        try:  # amending (cobenefits report) only a folder that verifies outside report/
            with OutputTransaction(out, command="report", amend=("report",)) as tx:
                tx.path("report/index.html").write_text("<html>new</html>")
        except InputError as exc:
            assert str(out) in str(exc)
            assert {p.name for p in out.rglob("*")} == before  # refused: untouched
        else:
            assert verify_output(out) == []
            assert (out / "a.csv").read_text() == "x\n1\n"
        assert not any(p.name.startswith(".out.") for p in Path(d).iterdir())  # no lock or staging left

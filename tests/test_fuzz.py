"""Standing fuzz campaign (issue 13): hostile inputs to every reader end as a correct result or as an
:class:`engine.errors.InputError` (CLI exit 2) with a message naming the file; never another exception.

Readers covered: scenario TOML (``engine.config.load_config``), the data tables
(``engine.data.dataset.validate_dataset`` / ``load_dataset``, then the carbon stage), the health input
(``cobenefits health``), the AERMOD control file and the AERMET surface/profile files
(``engine.aermod.control.read_aermod_inp``, ``read_sfc_dates``, ``read_sfc_header``; ``engine.dispersion.met.read_sfc``,
``read_pfl``; read only).

Runs are derandomised so that the default suite is reproducible; set ``COBENEFITS_FUZZ_EXAMPLES=N``
for a longer, randomised campaign (e.g. 2000) that explores new inputs on every run.
"""

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.aermod import control as aio
from engine.dispersion import met
from engine.cli import main
from engine.config import _SECTIONS, load_config
from engine.data.dataset import default_data_dir, load_dataset, validate_dataset
from engine.errors import InputError

_N = int(os.environ.get("COBENEFITS_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=_N or 60, deadline=None, derandomize=not _N, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
ROOT = Path(__file__).resolve().parent.parent
AERMOD = ROOT / "tests" / "data" / "aermod"

#: inputs tried per reader in this session (printed by -s; the README quotes a run)
TRIED = {}


def _count(name):
    TRIED[name] = TRIED.get(name, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def _report_counts(request):
    """Print how many inputs each reader was given in this session (visible with ``pytest -s``)."""
    yield
    if TRIED:
        print("\nfuzz inputs tried:", ", ".join(f"{k}: {v}" for k, v in TRIED.items()),
              f"(total {sum(TRIED.values())})")


# --------------------------------------------------------------------------- value strategies
odd_floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324, 1e-300, 2**53 + 1.0]))
odd_text = st.one_of(st.text(max_size=20),
                     st.sampled_from(["", " ", "nan", "inf", "-inf", "1e999", "NA", "null", "1,5", "0x10",
                                      "中文", "１２", "\t", "'", '"', "#", "1e308", "-0", "true"]))
cell = st.one_of(odd_floats, odd_text, st.integers(min_value=-2**70, max_value=2**70), st.booleans())


def _text_mutation(text):
    """A strategy of mutants of ``text``: truncation, deleted/duplicated/garbled lines, replaced tokens."""
    lines = text.splitlines(keepends=True)

    @st.composite
    def mutant(draw):
        kind = draw(st.sampled_from(["truncate", "delete", "duplicate", "replace_token", "insert", "garble"]))
        ls = list(lines)
        i = draw(st.integers(0, len(ls) - 1))
        if kind == "truncate":
            return text[:draw(st.integers(0, len(text)))]
        if kind == "delete":
            del ls[i]
        elif kind == "duplicate":
            ls.insert(i, ls[i])
        elif kind == "replace_token":
            toks = ls[i].split()
            if toks:
                toks[draw(st.integers(0, len(toks) - 1))] = str(draw(cell))
            ls[i] = "   " + " ".join(toks) + "\n"
        elif kind == "insert":
            ls.insert(i, draw(st.text(max_size=40)) + "\n")
        else:
            s = ls[i]
            j = draw(st.integers(0, len(s)))
            ls[i] = s[:j] + draw(st.text(max_size=5)) + s[j + draw(st.integers(0, 5)):]
        return "".join(ls)
    return mutant()


# --------------------------------------------------------------------------- config
def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == math.inf else "-inf" if v == -math.inf else repr(v))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"


_KEYS = sorted({f for cls in _SECTIONS.values() for f in cls.__dataclass_fields__ if f != "PATH_KEYS"})
toml_scalar = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1), odd_floats, st.text(max_size=15),
                        st.sampled_from(["none", "fyp", "high", "ier2010", "gemm_5cod", "base", "a-b_1"]))
toml_value = st.one_of(toml_scalar, st.lists(toml_scalar, max_size=3),
                       st.dictionaries(st.text(min_size=1, max_size=5), toml_scalar, max_size=2))
toml_doc = st.dictionaries(
    st.one_of(st.sampled_from(sorted(_SECTIONS)), st.text(min_size=1, max_size=8)),
    st.dictionaries(st.one_of(st.sampled_from(_KEYS), st.text(min_size=1, max_size=8)), toml_value, max_size=4),
    max_size=4)


def _render(doc):
    out = []
    for sec, table in doc.items():
        out.append(f"[{json.dumps(sec)}]")
        out += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(out) + "\n"


def _load_config_ok_or_input_error(raw):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "s.toml"
        p.write_bytes(raw)
        try:
            cfg = load_config([p])
        except InputError as exc:
            assert str(exc), "InputError without a message"
            return None
        # a result must honour the declared ranges: re-validate every value it carries
        (scen, carbon), = cfg.scenarios
        assert scen.name and all(c.isalnum() or c in "_-" for c in scen.name)
        for sec in (carbon, cfg.dispersion, cfg.health, cfg.run):
            for f in sec.__dataclass_fields__.values():
                v, md = getattr(sec, f.name), f.metadata
                if isinstance(v, float):
                    assert math.isfinite(v), (f.name, v)
                if md.get("lo") is not None and not isinstance(v, str):
                    assert v >= md["lo"] and v <= md["hi"], (f.name, v)
        return cfg


@FUZZ
@given(toml_doc, st.booleans())
def test_fuzz_config_structured(doc, named):
    _count("config (structured TOML)")
    if named:
        doc = {**doc, "scenario": {**(doc.get("scenario") or {}), "name": "fuzz"}}
    _load_config_ok_or_input_error(_render(doc).encode())


@FUZZ
@given(st.one_of(st.binary(max_size=200),
                 _text_mutation((ROOT / "config" / "fyp_symbiosis.toml").read_text()).map(str.encode)))
def test_fuzz_config_bytes(raw):
    _count("config (bytes / mutated file)")
    _load_config_ok_or_input_error(raw)


# --------------------------------------------------------------------------- data tables
def _small_dataset():
    d = default_data_dir()
    cities = pd.read_csv(d / "cities.csv", comment="#")
    provs = pd.read_csv(d / "provinces.csv", comment="#")
    grids = pd.read_csv(d / "grids.csv", comment="#")
    keep = [110000, 120000, 130000]
    return {"cities.csv": cities[cities.province_id.isin(keep)].reset_index(drop=True),
            "provinces.csv": provs[provs.province_id.isin(keep)].reset_index(drop=True),
            "grids.csv": grids}


_BASE = _small_dataset()


@st.composite
def data_mutation(draw):
    tables = {k: v.copy() for k, v in _BASE.items()}
    raw = {}
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(sorted(tables)))
        df = tables[name]
        kind = draw(st.sampled_from(["cell", "cell", "cell", "drop_col", "rename_col", "dup_row", "drop_rows",
                                     "truncate"]))
        col = draw(st.sampled_from(list(df.columns)))
        if kind == "cell" and len(df):
            df[col] = df[col].astype(object)
            df.loc[draw(st.integers(0, len(df) - 1)), col] = draw(cell)
        elif kind == "drop_col":
            tables[name] = df.drop(columns=col)
        elif kind == "rename_col":
            tables[name] = df.rename(columns={col: draw(st.text(max_size=12))})
        elif kind == "dup_row" and len(df):
            tables[name] = pd.concat([df, df.iloc[[draw(st.integers(0, len(df) - 1))]]], ignore_index=True)
        elif kind == "drop_rows":
            tables[name] = df.iloc[:draw(st.integers(0, len(df)))]
        elif kind == "truncate":
            text = df.to_csv(index=False)
            raw[name] = text[:draw(st.integers(0, len(text)))]
    return tables, raw


@FUZZ
@given(data_mutation())
def test_fuzz_data_tables(mut):
    from engine.carbon.accounting import run_carbon

    _count("data tables")
    tables, raw = mut
    with tempfile.TemporaryDirectory() as d:
        for name, df in tables.items():
            (Path(d) / name).write_text(raw.get(name, df.to_csv(index=False)))
        problems, ok = validate_dataset(d)                 # never raises on data problems
        assert isinstance(problems, list) and (ok is None) == bool(problems)
        try:
            data = load_dataset(d)
        except InputError as exc:
            assert problems and str(d) in str(exc)
            return
        assert not problems
        res = run_carbon(load_config(), data)              # accepted data gives finite CO2
        assert np.isfinite(res.national["co2_mt"].to_numpy(float)).all()
        assert np.isfinite(res.cities.select_dtypes("number").to_numpy(float)).all()


# --------------------------------------------------------------------------- health input
@st.composite
def health_table(draw):
    from engine.health import POPULATION_COLUMNS

    n = draw(st.integers(1, 3))
    rows = []
    for i in range(n):
        row = {"region": draw(st.one_of(st.just(f"r{i}"), odd_text)),
               "pm25": draw(st.one_of(st.floats(0, 300), cell))}
        if draw(st.booleans()):
            row["pm25_scenario"] = draw(st.one_of(st.floats(0, 300), cell))
        for c in POPULATION_COLUMNS:
            row[c] = draw(st.one_of(st.floats(0, 1e6), st.floats(0, 1e6), cell))
        rows.append(row)
    df = pd.DataFrame(rows)
    if draw(st.integers(0, 4)) == 0:
        df = df.drop(columns=draw(st.sampled_from(list(df.columns))))
    return df.to_csv(index=False)


@FUZZ
@given(health_table(), st.sampled_from(["ier2010", "gemm_ncd_lri", "loglinear_krewski2009"]))
def test_fuzz_health_input(text, crf):
    _count("health input")
    with tempfile.TemporaryDirectory() as d:
        p, out = Path(d) / "in.csv", Path(d) / "out.csv"
        p.write_text(text)
        rc = main(["--quiet", "health", str(p), "--crf", crf, "--draws", "0", "--out", str(out)])
        assert rc in (0, 2)
        if rc == 0:
            res = pd.read_csv(out)
            v = res["deaths_central"].to_numpy(float)
            assert np.isfinite(v).all() and (v >= 0).all()
        else:
            assert not out.exists()


# --------------------------------------------------------------------------- AERMOD / AERMET readers
def _aermod_case(d, inp_text, sfc_text=None, pfl_text=None):
    case, metd = Path(d) / "case", Path(d) / "met"
    case.mkdir()
    shutil.copytree(AERMOD / "met", metd)
    if sfc_text is not None:
        (metd / "synth5.sfc").write_text(sfc_text)
    if pfl_text is not None:
        (metd / "synth5.pfl").write_text(pfl_text)
    (case / "aermod.inp").write_text(inp_text)
    return case / "aermod.inp", metd


@FUZZ
@given(_text_mutation((AERMOD / "caseA_single" / "aermod.inp").read_text()))
def test_fuzz_aermod_control_file(text):
    _count("AERMOD control file")
    with tempfile.TemporaryDirectory() as d:
        inp, _ = _aermod_case(d, text)
        try:
            aio.read_aermod_inp(inp)
        except InputError as exc:
            assert str(exc)


@FUZZ
@given(st.sampled_from(["sfc", "pfl"]), _text_mutation((AERMOD / "met" / "synth5.sfc").read_text()),
       _text_mutation((AERMOD / "met" / "synth5.pfl").read_text()))
def test_fuzz_met_files(which, sfc, pfl):
    _count("AERMET surface/profile files")
    with tempfile.TemporaryDirectory() as d:
        _, metd = _aermod_case(d, "", sfc if which == "sfc" else None, pfl if which == "pfl" else None)
        for fn, path in ((aio.read_sfc_dates, metd / "synth5.sfc"), (aio.read_sfc_header, metd / "synth5.sfc"),
                         (met.read_sfc, metd / "synth5.sfc"), (met.read_pfl, metd / "synth5.pfl")):
            try:
                fn(path)
            except InputError as exc:
                assert str(exc)


@pytest.mark.parametrize("field", ["year", "month"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_met_profile_non_finite_date_field(tmp_path, field, value):
    toks = (AERMOD / "met" / "synth5.pfl").read_text().splitlines()[0].split()
    toks[0 if field == "year" else 1] = value
    p = tmp_path / "bad.pfl"
    p.write_text(" ".join(toks) + "\n")
    with pytest.raises(InputError, match="line 1"):
        met.read_pfl(p)

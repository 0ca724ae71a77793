"""`cobenefits health` end to end: output table, exit codes, messages, atomic output."""

import numpy as np
import pandas as pd
import pytest

from engine.cli import main
from engine.health import POPULATION_COLUMNS, age_population, health_impact, impact_table


@pytest.fixture
def input_csv(tmp_path):
    pop = age_population([110000, 120000]).reset_index().rename(columns={"region_id": "region"})
    pop.insert(1, "pm25", [85.0, 70.0])
    pop.insert(2, "pm25_scenario", [75.0, 70.0])
    path = tmp_path / "in.csv"
    pop.to_csv(path, index=False)
    return path


def test_cli_writes_table(input_csv, tmp_path):
    out = tmp_path / "out.csv"
    rc = main(["--quiet", "health", str(input_csv), "--crf", "ier2010", "--draws", "100", "--out", str(out)])
    assert rc == 0
    t = pd.read_csv(out)
    assert list(t.columns) == ["region", "cause", "deaths_central", "deaths_mean", "deaths_p2_5",
                               "deaths_p97_5", "avoided_central", "avoided_mean", "avoided_p2_5",
                               "avoided_p97_5", "concentration_method"]
    assert t.concentration_method.str.startswith("primary").all()
    assert len(t) == 2 * 6 and list(t.cause[:6]) == ["ihd", "stroke", "copd", "lc", "lri", "all"]
    # same numbers as the Python API (6 significant digits written)
    base, scen, pop = pd.read_csv(input_csv).set_index("region").pipe(
        lambda d: (d.pm25, d.pm25_scenario, d[list(POPULATION_COLUMNS)]))
    ref = impact_table(health_impact(base, pop, conc_scenario=scen, draws=100))
    text = ["region", "cause", "concentration_method"]
    np.testing.assert_allclose(t.drop(columns=text).to_numpy(dtype=float),
                               ref.drop(columns=text).to_numpy(dtype=float), rtol=1e-5)
    tian = t[(t.region == 120000)]
    assert (tian.avoided_central == 0).all()   # scenario equals base for Tianjin
    allrow = t[(t.region == 110000) & (t.cause == "all")].iloc[0]
    assert allrow.avoided_p2_5 <= allrow.avoided_mean <= allrow.avoided_p97_5


def test_cli_gemm_draws_zero(input_csv, tmp_path):
    out = tmp_path / "g.csv"
    rc = main(["--quiet", "health", str(input_csv), "--crf", "gemm_ncd_lri", "--cohort", "without_china",
               "--draws", "0", "--out", str(out)])
    assert rc == 0
    t = pd.read_csv(out)
    assert list(t.cause.unique()) == ["ncd_lri", "all"]
    assert t.deaths_mean.isna().all() and (t.deaths_central > 0).all()


def test_cli_bad_input_exit_2(input_csv, tmp_path, capsys):
    df = pd.read_csv(input_csv)
    df.loc[1, "pop_45_49"] = -3
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    out = tmp_path / "out.csv"
    out.write_text("previous run\n")
    rc = main(["--quiet", "health", str(bad), "--out", str(out)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "pop_45_49" in err and "120000" in err and "Traceback" not in err
    assert out.read_text() == "previous run\n"   # untouched


def test_cli_unknown_age_column(input_csv, tmp_path, capsys):
    df = pd.read_csv(input_csv).rename(columns={"pop_80plus": "pop_80_84"})
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    assert main(["--quiet", "health", str(bad), "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "pop_80_84" in err and "pop_80plus" in err


def test_cli_rates_gap(input_csv, tmp_path, capsys):
    from engine.health import load_rates
    r = load_rates()
    r = r[~((r.cause == "copd") & (r.age_group == "70_74"))]
    f = tmp_path / "rates.csv"
    r.to_csv(f, index=False)
    assert main(["--quiet", "health", str(input_csv), "--rates", str(f), "--draws", "0",
                 "--out", str(tmp_path / "o.csv")]) == 2
    err = capsys.readouterr().err
    assert "copd 70_74" in err and str(f) in err
    assert main(["--quiet", "health", str(input_csv), "--draws", "5000",
                 "--out", str(tmp_path / "o.csv")]) == 2

"""engine.health: user-defined functions (BenMAP forms), background method, BenMAP-style table."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import importlib

health = importlib.import_module("engine.health")
from engine.errors import InputError

ROOT = Path(__file__).resolve().parent.parent

KREWSKI = ("function,form,cause,beta,beta_se,min_age,max_age,zcf\n"
           "krewski,log_linear,ncd_lri,0.005826891,0.000962763,30,,0\n")


def _pop(values=None, regions=("A", "B", "C")):
    rng = np.random.default_rng(7)
    v = rng.uniform(1e4, 5e4, (len(regions), 17)) if values is None else values
    return pd.DataFrame(v, index=list(regions), columns=health.POPULATION_COLUMNS)


def _write(tmp_path, text, name="f.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_user_loglinear_reproduces_builtin_krewski(tmp_path):
    """Issue 10: a user file with Krewski's beta/SE reproduces the built-in function to 1e-9."""
    f = _write(tmp_path, KREWSKI)
    pop = _pop()
    zb, zs = [35.0, 60.0, 4.0], [30.0, 52.0, 3.0]
    for method in ("subtraction", "pif"):
        a = health.health_impact(zb, pop, conc_scenario=zs, crf="loglinear_krewski2009", draws=300, seed=11,
                                 avoided_method=method)
        b = health.health_impact(zb, pop, conc_scenario=zs, crf="user", functions=f, draws=300, seed=11,
                                 avoided_method=method)
        for v in ("deaths_central", "deaths_mean", "deaths_p2_5", "deaths_p97_5", "deaths_draws",
                  "avoided_central", "avoided_mean", "avoided_p2_5", "avoided_p97_5", "avoided_all_mean"):
            np.testing.assert_allclose(b[v].values, a[v].values, rtol=1e-9, atol=0, err_msg=v)


def test_user_functions_hand_derived(tmp_path):
    # one region; 10,000 people aged 30-34 and 20,000 aged 80+, nobody else
    values = np.zeros((1, 17))
    values[0, 6] = 1.0e4
    values[0, 16] = 2.0e4
    pop = _pop(values, regions=("X",))
    f = _write(tmp_path, "function,form,cause,beta,beta_se,min_age,max_age,zcf,incidence_per_100k\n"
                         "ll,log_log,asthma,0.1,0.0,30,34,5,800\n"
                         "lin,linear,cardio,0.00001,0.0,80,,5,\n"
                         "lc,log_linear,lc,0.01,0.0,80,99,0,\n")
    rates = pd.DataFrame({"cause": ["lc"], "age_group": ["80plus"], "rate_per_100k": [250.0]})
    ds = health.health_impact([20.0], pop, conc_scenario=[10.0], crf="user", functions=f, rates=rates, draws=0,
                              avoided_method="pif")
    d = ds["deaths_central"].sum("age").sel(region="X")
    # log-log, ages 30-34: RR = (20/5)^0.1 = 1.148698; PAF = 0.129449; deaths = 1e4 x 0.008 x PAF = 10.3559
    # avoided (PIF) = 1e4 x 0.008 x (1 - (10/5)^0.1/(20/5)^0.1) = 80 x (1 - 0.5^0.1) = 5.43889
    assert float(d.sel(cause="asthma")) == pytest.approx(80.0 * (1 - 4.0 ** -0.1), rel=1e-12)
    assert float(d.sel(cause="asthma")) == pytest.approx(10.3559, abs=1e-4)
    av = ds["avoided_central"].sum("age").sel(region="X")
    assert float(av.sel(cause="asthma")) == pytest.approx(80.0 * (1 - 0.5 ** 0.1), rel=1e-12)
    # linear, ages 80+: deaths = 2e4 x 1e-5 x (20 - 5) = 3.0; avoided = 2e4 x 1e-5 x 10 = 2.0 (pif not used)
    assert float(d.sel(cause="cardio")) == pytest.approx(3.0, rel=1e-12)
    assert float(av.sel(cause="cardio")) == pytest.approx(2.0, rel=1e-12)
    # log-linear from the rates table: 2e4 x 0.0025 x (1 - exp(-0.2)) = 50 x 0.181269 = 9.06346
    assert float(d.sel(cause="lc")) == pytest.approx(50.0 * (1 - math.exp(-0.2)), rel=1e-12)
    assert float(ds["deaths_all_central"].sel(region="X")) == pytest.approx(
        80.0 * (1 - 4.0 ** -0.1) + 3.0 + 50.0 * (1 - math.exp(-0.2)), rel=1e-12)


@pytest.mark.parametrize("body, needles", [
    ("form,cause,beta,beta_se,min_age\nlogit,ihd,0.1,0.01,30\n", ["line 2", "column form", "logit"]),
    ("form,cause,beta,beta_se,min_age\nlog_linear,ihd,0.01,0.01,33\n", ["line 2", "column min_age", "multiple of 5"]),
    ("form,cause,beta,beta_se,min_age\nlog_linear,ihd,x,0.01,30\n", ["line 2", "column beta", "'x'"]),
    ("form,cause,beta,beta_se,min_age\nlog_linear,ihd,0.01,-1,30\n", ["column beta_se", ">= 0"]),
    ("form,cause,beta,beta_se,min_age,zcf\nlog_log,ihd,0.1,0.01,30,0\n", ["column zcf", "log_log"]),
    ("form,cause,beta,beta_se,min_age\nlog_linear,asthma,0.01,0.01,30\n", ["column incidence_per_100k", "asthma"]),
    ("form,cause,beta,beta_se,min_age,max_age\nlog_linear,ihd,0.01,0.01,30,62\n", ["column max_age"]),
    ("# comment\nform,cause,beta,beta_se,min_age\nlog_linear,ihd,0.01,0.01,30\nlog_linear,ihd,0.02,0.01,60\n",
     ["lines 3 and 4", "overlapping"]),
    ("form,cause,beta,min_age\nlog_linear,ihd,0.01,30\n", ["missing column", "beta_se"]),
    ("form,cause,beta,beta_se,min_age,slope\nlog_linear,ihd,0.01,0.01,30,1\n", ["unknown column", "slope"]),
])
def test_bad_function_files_name_row_and_column(tmp_path, body, needles):
    f = _write(tmp_path, body, "bad.csv")
    with pytest.raises(InputError) as info:
        health.read_user_functions(f)
    msg = str(info.value)
    assert "bad.csv" in msg
    for n in needles:
        assert n in msg, msg


def test_background_applies_the_primary_change_on_top_of_the_total():
    pop = _pop()
    prim_b, prim_s, bg = np.array([10.0, 20.0, 3.0]), np.array([6.0, 15.0, 0.0]), np.array([50.0, 80.0, 3.0])
    ds = health.health_impact(prim_b, pop, conc_scenario=prim_s, crf="gemm_ncd_lri", draws=50, background=bg)
    ref = health.health_impact(bg, pop, conc_scenario=[46.0, 75.0, 0.0], crf="gemm_ncd_lri", draws=50)
    for v in ("deaths_all_central", "avoided_all_central", "avoided_all_mean"):
        np.testing.assert_allclose(ds[v].values, ref[v].values, rtol=1e-12)
    assert ds.attrs["background_floored"] == 0  # region C: 3 - (3 - 0) = 0, the least a valid background gives
    # a total below its own primary part (issue 22: accepted before, floored at 0) is refused
    with pytest.raises(InputError, match=r"region 'C' has a total-PM2.5 background of 2 ug m-3, below its "
                                         r"modelled primary PM2.5 of 3 ug m-3"):
        health.health_impact(prim_b, pop, conc_scenario=prim_s, crf="gemm_ncd_lri", draws=0,
                             background=np.array([50.0, 80.0, 2.0]))
    assert "background" in ds.attrs["concentration_method"]
    np.testing.assert_array_equal(ds["primary_concentration"].values, prim_b)
    plain = health.health_impact(prim_b, pop, conc_scenario=prim_s, crf="gemm_ncd_lri", draws=0)
    assert plain.attrs["concentration_method"].startswith("primary")
    assert (health.impact_table(ds)["concentration_method"] == ds.attrs["concentration_method"]).all()


def test_benmap_table_columns_and_values():
    pop = _pop()
    ds = health.health_impact([35.0, 60.0, 12.0], pop, conc_scenario=[30.0, 50.0, 12.0], crf="ier2010", draws=200)
    t = health.benmap_table(ds)
    pcols = [f"percentile_{p:g}".replace(".", "_") for p in health.BENMAP_PERCENTILES]
    assert pcols[0] == "percentile_2_5" and pcols[-1] == "percentile_97_5" and len(pcols) == 20
    for c in ["region", "endpoint", "cause", "population", "baseline_deaths", "delta_concentration",
              "point_estimate", "mean", "sd", *pcols, "concentration_method"]:
        assert c in t.columns
    a = t[(t.region == "B") & (t.cause == "all")].iloc[0]
    assert a["point_estimate"] == pytest.approx(float(ds["avoided_all_central"].sel(region="B")), rel=1e-12)
    assert a["mean"] == pytest.approx(float(ds["avoided_all_mean"].sel(region="B")), rel=1e-12)
    draws = ds["avoided_draws"].sel(region="B").sum("cause").values
    assert a["sd"] == pytest.approx(np.std(draws, ddof=1), rel=1e-12)
    assert a["percentile_97_5"] == pytest.approx(float(ds["avoided_all_p97_5"].sel(region="B")), rel=1e-12)
    assert a["delta_concentration"] == 10.0
    assert np.all(np.diff(a[pcols].to_numpy(dtype=float)) >= 0)
    # IHD applies from 25: population and baseline deaths over ages 25+
    ihd = t[(t.region == "A") & (t.cause == "ihd")].iloc[0]
    assert ihd["start_age"] == 25 and ihd["end_age"] == 99
    assert ihd["population"] == pytest.approx(pop.loc["A"].iloc[5:].sum(), rel=1e-12)
    rate = ds["baseline_rate"].sel(cause="ihd").values / 1e5
    assert ihd["baseline_deaths"] == pytest.approx(float((pop.loc["A"].to_numpy() * rate).sum()), rel=1e-12)
    c = t[(t.region == "C") & (t.cause == "all")].iloc[0]
    assert c["point_estimate"] == 0.0 and c["delta_concentration"] == 0.0


def test_health_cli_functions_background_benmap(tmp_path):
    inp = tmp_path / "in.csv"
    df = pd.DataFrame({"region": ["A", "B"], "pm25": [30.0, 10.0], "pm25_scenario": [25.0, 8.0]})
    for c in health.POPULATION_COLUMNS:
        df[c] = 1000.0
    df.to_csv(inp, index=False)
    f = _write(tmp_path, KREWSKI)
    bg = _write(tmp_path, "region,pm25_total_ug_m3\nA,60\nB,40\n", "bg.csv")
    out, bm = tmp_path / "out.csv", tmp_path / "bm.csv"
    r = subprocess.run([sys.executable, "-m", "engine", "--quiet", "health", str(inp), "--functions", str(f),
                        "--background", str(bg), "--draws", "50", "--out", str(out), "--benmap-out", str(bm)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    t = pd.read_csv(bm)
    assert set(t.base_concentration) == {60.0, 40.0} and set(t.control_concentration) == {55.0, 38.0}
    assert t.concentration_method.str.contains("background").all()
    r = subprocess.run([sys.executable, "-m", "engine", "health", str(inp), "--crf", "user", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "--functions" in r.stderr and "Traceback" not in r.stderr
    bad = _write(tmp_path, "region,pm25_total_ug_m3\nA,60\nB,lots\n", "bgbad.csv")
    r = subprocess.run([sys.executable, "-m", "engine", "health", str(inp), "--background", str(bad), "--out",
                        str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "bgbad.csv line 3" in r.stderr and "pm25_total_ug_m3" in r.stderr


def test_pipeline_health_stage_passes_functions_and_background(tmp_path):
    """[health] functions_file and background reach the health stage of a run (city ids as regions)."""
    import dataclasses

    from engine import pipeline
    from engine.config import load_config

    cfg = load_config(None)
    f = _write(tmp_path, KREWSKI)
    bg = _write(tmp_path, "region,pm25_total_ug_m3\n110000,80\n120000,70\n", "bg.csv")
    cfg = cfg.replace(health=dataclasses.replace(cfg.health, crf="user", functions_file=str(f), background=str(bg),
                                                 draws=20))
    pop = _pop(regions=(110000, 120000))
    cb, cs = pd.Series([20.0, 10.0], index=pop.index), pd.Series([15.0, 10.0], index=pop.index)
    ds = pipeline._default_health(cfg, cb, cs, pop)
    assert ds.attrs["crf"] == "user" and "background" in ds.attrs["concentration_method"]
    np.testing.assert_array_equal(ds["concentration"].values, [80.0, 70.0])
    np.testing.assert_array_equal(ds["concentration_scenario"].values, [75.0, 70.0])

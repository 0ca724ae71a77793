"""`cobenefits sweep` / engine.sensitivity.sweep: sampling, chunked national evaluation, indices, resume, errors.

The national model is checked against ``engine.run`` on the small synthetic nation
(tests/synthetic_nation.py) and against the carbon stage on the embedded 2010 data set; the
sampling and index machinery against the analytic Sobol' indices of the Ishigami function.
"""

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from engine.errors import InputError
import xarray as xr

import engine
import synthetic_nation as sn
from engine import pipeline as pl
from engine import sensitivity as sw
from engine.sensitivity import driver
from engine.carbon import run_carbon
from engine.config import load_config
from engine.data.dataset import load_dataset
from engine.health import health_impact

REL = 1e-9  # issue 9: the default sample reproduces the national run to 1e-9
#: deaths without a sampled draw come from the draw-mean table (engine.health.expected): within
#: 1e-6 of the city's base burden (avoided deaths are a difference of two tabulated means)
TABLE = 1e-6


def _close_deaths(got, want, base):
    got, want, base = (np.asarray(x, dtype=float) for x in (got, want, base))
    assert (np.abs(got - want) <= TABLE * np.abs(base) + 1e-300).all(), float(np.max(np.abs(got - want) / base))


def _spec(paths, parameters, **kw):
    table = {"method": "grid", "scenario": "cut", "config": [str(p) for p in paths],
             "outputs": list(sw.OUTPUTS), "parameter": parameters}
    table.update(kw)
    return sw.parse_spec({"sweep": table}, source="test.toml")


def _synthetic(**kw):
    return dict(data=sn.nation(), carbon_fn=sn.carbon_fn(), age_population_fn=sn.age_population_fn, quiet=True, **kw)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    paths = sn.write_configs(tmp / "cfg")
    run = engine.run(paths, data=sn.nation(), carbon_fn=sn.carbon_fn(), age_population_fn=sn.age_population_fn,
                     quiet=True)
    return tmp, paths, run


# ----------------------------------------------------------------------------- national model = engine.run
def test_default_sample_reproduces_engine_run(synth):
    tmp, paths, run = synth
    spec = _spec(paths, [{"key": "health.baseline_rate_multiplier", "dist": "choice", "levels": [1.0]},
                         {"key": "dispersion.release_height_m", "dist": "choice", "levels": [0.0, 5.0]}])
    ds = engine.sensitivity.sweep(spec, out=tmp / "grid", workers=1, **_synthetic())
    assert ds.sizes["sample"] == 2 and ds.sizes["city"] == 4
    d0 = ds.sel(sample=int(np.nonzero(ds["dispersion.release_height_m"].values == 0.0)[0][0]))
    cut = run.sel(scenario="cut")
    base = run.sel(scenario="base")
    _close_deaths(d0.city_avoided_deaths, cut.avoided_deaths_mean, base.deaths_mean)
    np.testing.assert_allclose(d0.city_conc_base_ug_m3, base.conc_ug_m3, rtol=REL)
    np.testing.assert_allclose(d0.city_conc_scenario_ug_m3, cut.conc_ug_m3, rtol=REL)
    np.testing.assert_allclose(d0.city_conc_reduction_pct,
                               100 * (base.conc_ug_m3 - cut.conc_ug_m3) / base.conc_ug_m3, rtol=REL)
    _close_deaths(d0.national_avoided_deaths, cut.national_avoided_deaths_mean, base.national_deaths_mean)
    _close_deaths(d0.national_deaths_base, base.national_deaths_mean, base.national_deaths_mean)
    co2_cut = (float(base.national_cities_co2_t) - float(cut.national_cities_co2_t)) / 1e6 + 2 * 5.0 * 0.3  # + ROPs
    np.testing.assert_allclose(float(d0.national_co2_cut_mt), co2_cut, rtol=REL)
    # the other dispersion level = a run with that [dispersion] release_height_m
    cfg = load_config(paths)
    cfg5 = cfg.replace(dispersion=dataclasses.replace(cfg.dispersion, release_height_m=5.0))
    run5 = engine.run(cfg5, data=sn.nation(), carbon_fn=sn.carbon_fn(), age_population_fn=sn.age_population_fn,
                      quiet=True)
    d5 = ds.sel(sample=int(np.nonzero(ds["dispersion.release_height_m"].values == 5.0)[0][0]))
    _close_deaths(d5.city_avoided_deaths, run5.avoided_deaths_mean.sel(scenario="cut"),
                  run5.deaths_mean.sel(scenario="base"))
    assert not np.allclose(d5.city_conc_base_ug_m3, d0.city_conc_base_ug_m3)
    s = json.loads(ds.attrs["summary"])
    assert s["dispersion_levels"] == 2 and s["evaluations"] == 2 and s["method"] == "grid"


def test_sampled_draw_and_rate_multiplier_match_the_health_stage(synth):
    tmp, paths, run = synth
    spec = _spec(paths, [{"key": "health.draw", "dist": "choice", "levels": [3, 17]},
                         {"key": "health.baseline_rate_multiplier", "dist": "choice", "levels": [1.0, 2.5]},
                         {"key": "health.crf", "dist": "choice", "levels": ["ier2010", "gemm_ncd_lri"]}])
    ds = engine.sensitivity.sweep(spec, out=tmp / "draws", workers=1, **_synthetic())
    pop = sn.age_population_fn(sn.nation(), list(ds.city.values))
    cb = run.conc_ug_m3.sel(scenario="base").to_series()
    cs = run.conc_ug_m3.sel(scenario="cut").to_series()
    for i in range(ds.sizes["sample"]):
        x = ds.isel(sample=i)
        d, m, crf = int(x["health.draw"]), float(x["health.baseline_rate_multiplier"]), str(x["health.crf"].values)
        h = health_impact(cb, pop, conc_scenario=cs, crf=crf, draws=20, seed=run_cfg_seed(paths))
        want = h.avoided_draws.sum("cause").isel(draw=d).values * m
        np.testing.assert_allclose(x.city_avoided_deaths, want, rtol=REL)


def run_cfg_seed(paths):
    return load_config(paths).health.seed


# ----------------------------------------------------------------------------- carbon stage on the 2010 data
@pytest.fixture(scope="module")
def national_carbon():
    data = load_dataset()
    cfg = load_config()
    return data, cfg, run_carbon(cfg, data)


def test_carbon_defaults_and_the_243_mt_seasonality_sensitivity(tmp_path, national_carbon):
    data, cfg, res = national_carbon
    spec = sw.parse_spec({"sweep": {
        "method": "grid", "scenario": "fyp_symbiosis", "cities": "Hebei",
        "outputs": ["national_co2_cut_mt", "national_symbiosis_co2_cut_mt"],
        "parameter": [{"key": "carbon.seasonality_fraction", "dist": "choice", "levels": [1.0, 0.4]}]}},
        source="seasonality.toml")
    ds = engine.sensitivity.sweep(spec, out=tmp_path / "s", workers=1, data=data, sr_fn=_never)
    nat = res.national.set_index(["scenario", "item"])["co2_mt"]
    x1 = ds.sel(sample=0)
    assert float(x1["carbon.seasonality_fraction"]) == 1.0
    np.testing.assert_allclose(float(x1.national_co2_cut_mt),
                               nat["base", "national_co2"] - nat["fyp_symbiosis", "national_co2"], rtol=REL)
    np.testing.assert_allclose(float(x1.national_symbiosis_co2_cut_mt), nat["fyp_symbiosis", "symbiosis_total"],
                               rtol=REL)
    # seasonality 0.4 as tests/test_carbon.py: the carbon stage's Table 2 total, and the paper's 243 Mt
    sc = dict((s.name, (s, c)) for s, c in cfg.scenarios)["fyp_symbiosis"]
    cfg04 = cfg.replace(scenarios=((sc[0], dataclasses.replace(sc[1], seasonality_fraction=0.4)),))
    it04 = run_carbon(cfg04, data).national.set_index("item")["co2_mt"]
    x4 = ds.sel(sample=1)
    np.testing.assert_allclose(float(x4.national_symbiosis_co2_cut_mt), it04["symbiosis_total"], rtol=REL)
    assert float(x4.national_symbiosis_co2_cut_mt) == pytest.approx(243.0, rel=0.05)


def _never(*a, **k):
    raise AssertionError("no dispersion may be computed here")


def _random_sr(prep):
    """A random S (and, with seasonal met, a different random S per season; S = sum_s f_s S_s)."""
    rng = np.random.default_rng(3)
    shape = (len(prep.selected), len(prep.sources))
    coords = {"city": prep.selected, "source": prep.source_labels}
    if prep.seasons == ("annual",):
        return xr.Dataset({"S": (("city", "source"), rng.uniform(0.0, 1e6, shape))}, coords=coords)
    f = np.array([m.flat_share for m in prep.met_seasons[prep.selected[0]]])
    if prep.heights is not None:  # emission heights (the default): a random S per season and height class
        Ssh = rng.uniform(0.0, 1e6, (len(prep.seasons), len(prep.height_classes)) + shape)
        return xr.Dataset({"S": (("city", "source"), np.tensordot(f, Ssh[:, 0], axes=1)),
                           "S_season": (("season", "city", "source"), Ssh[:, 0]),
                           "S_height": (("height", "city", "source"), np.tensordot(f, Ssh, axes=1)),
                           "S_season_height": (("season", "height", "city", "source"), Ssh)},
                          coords=coords | {"season": list(prep.seasons), "height": list(prep.height_classes)})
    Ss = rng.uniform(0.0, 1e6, (len(prep.seasons),) + shape)
    return xr.Dataset({"S": (("city", "source"), np.tensordot(f, Ss, axes=1)),
                       "S_season": (("season", "city", "source"), Ss)}, coords=coords | {"season": list(prep.seasons)})


def test_emissions_map_to_sources_as_the_pipeline_and_multipliers_scale_them(national_carbon):
    data, cfg, res = national_carbon
    keys = [f"emissions.pm25_multiplier.{s}" for s in sw.EMISSION_SECTORS]
    spec = sw.parse_spec({"sweep": {"method": "mc", "samples": 2, "scenario": "fyp_symbiosis", "cities": "Hebei",
                                    "outputs": ["city_conc_base_ug_m3", "city_conc_scenario_ug_m3"],
                                    "parameter": [{"key": k, "bounds": [0.5, 2.0]} for k in keys]}}, source="em.toml")
    m = sw.NationalModel(spec, data=data, sr_fn=_random_sr, quiet=True)
    vals = pd.concat([m.defaults()] * 2, ignore_index=True)
    for k in keys:
        vals.loc[1, k] = 2.0
    tb = m.tables(vals)
    out = sw.evaluate_chunk(tb, vals, ["city_conc_base_ug_m3", "city_conc_scenario_ug_m3"])
    q = pl.emissions(m.prep, pl.carbon(m.prep))
    S = _random_sr(m.prep)
    assert "S_season" in S and "season_share" in q  # the default met is seasonal
    want = pl.superpose(S, q, parts=False)["conc_ug_m3"]
    np.testing.assert_allclose(out["city_conc_base_ug_m3"][0], want.sel(scenario="base"), rtol=1e-12)
    np.testing.assert_allclose(out["city_conc_scenario_ug_m3"][0], want.sel(scenario="fyp_symbiosis"), rtol=1e-12)
    flat = xr.dot(S.S, q.q.reindex(source=S.source.values), dim="source")
    assert not np.allclose(out["city_conc_base_ug_m3"][0], flat.sel(scenario="base"), rtol=1e-6)
    # PM2.5 is linear in every emission factor: all multipliers 2 = twice the exposure
    np.testing.assert_allclose(out["city_conc_base_ug_m3"][1], 2 * out["city_conc_base_ug_m3"][0], rtol=1e-12)
    np.testing.assert_allclose(out["city_conc_scenario_ug_m3"][1], 2 * out["city_conc_scenario_ug_m3"][0], rtol=1e-12)
    # one seasonal sector's factor x3 moves emissions into the heating season: the sweep's
    # per-sample seasonal shares equal the pipeline's on a carbon stage with that factor x3
    from engine.carbon.parameters import load_parameters

    vals.loc[1, keys] = 1.0
    vals.loc[1, "emissions.pm25_multiplier.heating_individual"] = 3.0
    out = sw.evaluate_chunk(tb, vals, ["city_conc_base_ug_m3", "city_conc_scenario_ug_m3"])
    params = dict(load_parameters())
    params["pm25_heating_individual"] = 3.0 * params["pm25_heating_individual"]
    q3 = pl.emissions(m.prep, pl.carbon(m.prep, carbon_fn=lambda c, d: run_carbon(c, d, params=params)))
    assert (q3["season_share"].sel(season="heating") >= q["season_share"].sel(season="heating") - 1e-15).all()
    want3 = pl.superpose(S, q3, parts=False)["conc_ug_m3"]
    np.testing.assert_allclose(out["city_conc_base_ug_m3"][1], want3.sel(scenario="base"), rtol=1e-12)
    np.testing.assert_allclose(out["city_conc_scenario_ug_m3"][1], want3.sel(scenario="fyp_symbiosis"), rtol=1e-12)


@pytest.mark.parametrize("knob", [False, True])
def test_emission_height_shares_follow_each_samples_emission_factors(national_carbon, monkeypatch, knob):
    """With [dispersion] emission_heights = "sector" a sample's (season, height class) shares
    come from its own PM2.5 by sector: power x2 (tall stacks) and individual heating x3 (ground,
    heating season) equal the pipeline on a carbon stage with those factors, both with no carbon
    knob sampled (the fixed sector bases) and with one (the carbon stage per sample)."""
    data, cfg, res = national_carbon
    as_config = pl.as_config

    def sector_base(*a, **k):
        c = as_config(*a, **k)
        return c.replace(dispersion=dataclasses.replace(c.dispersion, emission_heights="sector"))

    monkeypatch.setattr(pl, "as_config", sector_base)
    keys = ["emissions.pm25_multiplier.power", "emissions.pm25_multiplier.heating_individual"]
    par = [{"key": k, "bounds": [0.5, 3.0]} for k in keys]
    if knob:
        par.append({"key": "carbon.seasonality_fraction", "bounds": [0.4, 1.0]})
    spec = sw.parse_spec({"sweep": {"method": "mc", "samples": 2, "scenario": "fyp_symbiosis", "cities": "Hebei",
                                    "outputs": ["city_conc_base_ug_m3", "city_conc_scenario_ug_m3"],
                                    "parameter": par}}, source="heights.toml")
    m = sw.NationalModel(spec, data=data, sr_fn=_random_sr, quiet=True)
    prep = m.prep
    assert prep.heights is not None and prep.seasons != ("annual",)
    vals = pd.concat([m.defaults()] * 2, ignore_index=True)
    vals.loc[1, keys] = [2.0, 3.0]
    tb = m.tables(vals)
    assert (tb.carbon_scen is None) == knob
    out = sw.evaluate_chunk(tb, vals, ["city_conc_base_ug_m3", "city_conc_scenario_ug_m3"])
    from engine.carbon.parameters import load_parameters

    S = _random_sr(prep)
    for i, (fp, fh) in enumerate([(1.0, 1.0), (2.0, 3.0)]):
        params = dict(load_parameters())
        params["power_pm25_g_per_kg_coal"] *= fp
        params["pm25_heating_individual"] *= fh
        q = pl.emissions(prep, pl.carbon(prep, carbon_fn=lambda c, d, p=params: run_carbon(c, d, params=p)))
        assert "season_height_share" in q
        want = pl.superpose(S, q, parts=False)["conc_ug_m3"]
        np.testing.assert_allclose(out["city_conc_base_ug_m3"][i], want.sel(scenario="base"), rtol=1e-12)
        np.testing.assert_allclose(out["city_conc_scenario_ug_m3"][i], want.sel(scenario="fyp_symbiosis"),
                                   rtol=1e-12)
    # the shares moved: not the same exposure as scaling the default's emission
    assert not np.allclose(out["city_conc_base_ug_m3"][1], 2.0 * out["city_conc_base_ug_m3"][0], rtol=1e-3)


@pytest.mark.parametrize("knob", [False, True])
def test_heating_multiplier_scales_both_zones_factors(national_carbon, monkeypatch, knob):
    """emissions.pm25_multiplier.heating_individual scales the stove factor inside the central-
    heating zone and the one outside it (pm25_heating_individual_south, here made non-zero):
    equal to the pipeline on a carbon stage with both factors x2, with and without a carbon knob."""
    import engine.carbon.parameters as cpar

    data, cfg, res = national_carbon
    south = dict(cpar.load_parameters(), pm25_heating_individual_south=2.5)
    monkeypatch.setattr(cpar, "load_parameters", lambda *a, **k: dict(south))
    par = [{"key": "emissions.pm25_multiplier.heating_individual", "bounds": [0.5, 3.0]}]
    if knob:
        par.append({"key": "carbon.seasonality_fraction", "bounds": [0.4, 1.0]})
    spec = sw.parse_spec({"sweep": {"method": "mc", "samples": 2, "scenario": "fyp_symbiosis", "cities": "Hubei,Hebei",
                                    "outputs": ["city_conc_base_ug_m3", "city_conc_scenario_ug_m3"],
                                    "parameter": par}}, source="south.toml")
    m = sw.NationalModel(spec, data=data, sr_fn=_random_sr, quiet=True)
    vals = pd.concat([m.defaults()] * 2, ignore_index=True)
    vals.loc[1, "emissions.pm25_multiplier.heating_individual"] = 2.0
    out = sw.evaluate_chunk(m.tables(vals), vals, ["city_conc_base_ug_m3", "city_conc_scenario_ug_m3"])
    S = _random_sr(m.prep)
    for i, f in enumerate((1.0, 2.0)):
        params = dict(south, pm25_heating_individual=f * south["pm25_heating_individual"],
                      pm25_heating_individual_south=f * 2.5)
        q = pl.emissions(m.prep, pl.carbon(m.prep, carbon_fn=lambda c, d, p=params: run_carbon(c, d, params=p)))
        want = pl.superpose(S, q, parts=False)["conc_ug_m3"]
        np.testing.assert_allclose(out["city_conc_base_ug_m3"][i], want.sel(scenario="base"), rtol=1e-12)
        np.testing.assert_allclose(out["city_conc_scenario_ug_m3"][i], want.sel(scenario="fyp_symbiosis"),
                                   rtol=1e-12)


# ----------------------------------------------------------------------------- Ishigami through the machinery
class Ishigami:
    """f = sin x1 + a sin^2 x2 + b x3^4 sin x1, x_i ~ U(-pi, pi) (Ishigami and Homma 1990)."""

    outputs = ("y",)
    a, b = 7.0, 0.1

    def key_info(self, key):
        if key not in ("x1", "x2", "x3"):
            raise KeyError("unknown key; the Ishigami function has x1, x2, x3")
        return sw.KeyInfo("float", -math.pi, math.pi, default=0.0)

    def __call__(self, values):
        x1, x2, x3 = (values[k].to_numpy(float) for k in ("x1", "x2", "x3"))
        return {"y": np.sin(x1) + self.a * np.sin(x2) ** 2 + self.b * x3 ** 4 * np.sin(x1)}


def ishigami_indices(a, b):
    """Analytic Sobol' indices, derived here.

    With x ~ U(-pi, pi): E sin x = 0, E sin^2 x = 1/2, Var sin^2 x = E sin^4 x - 1/4 = 3/8 - 1/4 = 1/8,
    E x^4 = pi^4/5, E x^8 = pi^8/9. Then
    V1 = Var E[f|x1] = Var[sin x1 (1 + b pi^4/5)] = (1 + b pi^4/5)^2 / 2,
    V2 = a^2 Var sin^2 x2 = a^2/8, V3 = 0,
    V13 = Var E[f|x1,x3] - V1 = E[(1 + b x3^4)^2]/2 - V1 = (b^2/2)(pi^8/9 - pi^8/25) = 8 b^2 pi^8/225,
    V = V1 + V2 + V13; S1_i = V_i/V, ST1 = (V1 + V13)/V, ST2 = V2/V, ST3 = V13/V.
    """
    V1 = 0.5 * (1 + b * math.pi ** 4 / 5) ** 2
    V2 = a * a / 8
    V13 = 8 * b * b * math.pi ** 8 / 225
    V = V1 + V2 + V13
    assert V == pytest.approx(a * a / 8 + b * math.pi ** 4 / 5 + b * b * math.pi ** 8 / 18 + 0.5, rel=1e-14)
    return np.array([V1, V2, 0.0]) / V, np.array([V1 + V13, V2, V13]) / V


def test_ishigami_sobol_indices_within_bootstrap_intervals(tmp_path):
    spec = sw.parse_spec({"sweep": {"method": "sobol", "samples": 4096, "seed": 11, "chunk_size": 5000,
                                    "parameter": [{"key": k, "bounds": [-math.pi, math.pi]} for k in ("x1", "x2", "x3")]}},
                         source="ishigami.toml")
    ds = engine.sensitivity.sweep(spec, out=tmp_path / "ish", evaluator=Ishigami(), workers=2)
    s = json.loads(ds.attrs["summary"])
    assert s["evaluations"] == 4096 * (3 + 2) == s["evaluations_expected"]
    ind = pd.read_csv(tmp_path / "ish" / "indices.csv").set_index("parameter")
    S1, ST = ishigami_indices(Ishigami.a, Ishigami.b)
    for j, k in enumerate(("x1", "x2", "x3")):
        assert abs(ind.loc[k, "S1"] - S1[j]) <= ind.loc[k, "S1_conf"], (k, ind.loc[k, "S1"], S1[j])
        assert abs(ind.loc[k, "ST"] - ST[j]) <= ind.loc[k, "ST_conf"], (k, ind.loc[k, "ST"], ST[j])
    assert list(ind.columns) == ["output", "S1", "S1_conf", "ST", "ST_conf", "note"]
    assert ind["note"].isna().all()  # computed: no reason given


def test_morris_and_lhs_indices_rank_the_ishigami_inputs(tmp_path):
    base = {"seed": 5, "parameter": [{"key": k, "bounds": [-math.pi, math.pi]} for k in ("x1", "x2", "x3")]}
    m = engine.sensitivity.sweep(sw.parse_spec({"sweep": {"method": "morris", "samples": 200, **base}}), out=tmp_path / "m",
                     evaluator=Ishigami(), workers=1)
    assert json.loads(m.attrs["summary"])["evaluations"] == 200 * 4
    mi = pd.read_csv(tmp_path / "m" / "indices.csv").set_index("parameter")
    assert set(mi.columns) >= {"mu_star", "sigma", "mu_star_conf"}
    # x3 acts only through its interaction with x1: mu* well above 0 but sigma > mu*
    assert mi.loc["x3", "sigma"] > mi.loc["x3", "mu_star"] > 0
    lh = engine.sensitivity.sweep(sw.parse_spec({"sweep": {"method": "lhs", "samples": 2000, **base}}), out=tmp_path / "l",
                      evaluator=Ishigami(), workers=1)
    li = pd.read_csv(tmp_path / "l" / "indices.csv").set_index("parameter")
    S1, _ = ishigami_indices(Ishigami.a, Ishigami.b)
    np.testing.assert_allclose(li.loc[["x1", "x2", "x3"], "S1"], S1, atol=0.06)  # LHS + delta's S1 estimator
    assert lh.sizes["sample"] == 2000


# ----------------------------------------------------------------------------- determinism and resume
def _mc_spec(paths, **kw):
    return _spec(paths, [{"key": "health.draw", "dist": "integer", "bounds": [0, 19]},
                         {"key": "health.baseline_rate_multiplier", "dist": "normal", "mean": 1.0, "sd": 0.2,
                          "bounds": [0.5, 1.5]},
                         {"key": "dispersion.release_height_m", "dist": "choice", "levels": [0.0, 5.0]}],
                 method="sobol", samples=16, chunk_size=10, **kw)


def _arrays(ds):
    return {k: ds[k].values for k in ds.data_vars if ds[k].dtype.kind not in "OUS"}  # numbers (not index_note)


def test_identical_with_1_and_2_workers_and_a_local_cluster(synth):
    distributed = pytest.importorskip("distributed")
    tmp, paths, _ = synth
    spec = _mc_spec(paths)
    r1 = _arrays(engine.sensitivity.sweep(spec, out=tmp / "w1", workers=1, **_synthetic()))
    r2 = _arrays(engine.sensitivity.sweep(spec, out=tmp / "w2", workers=2, **_synthetic()))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        with distributed.Client(cl) as client:
            r3 = _arrays(engine.sensitivity.sweep(spec, out=tmp / "w3", client=client, **_synthetic()))
        # --scheduler ADDRESS: the command's way (S and the chunks on the cluster)
        r4 = _arrays(engine.sensitivity.sweep(spec, out=tmp / "w4", scheduler=cl.scheduler_address, use_cache=False,
                                  **_synthetic()))
    assert r1.keys() == r2.keys() == r3.keys() == r4.keys()
    for k in r1:
        np.testing.assert_array_equal(r1[k], r2[k], err_msg=k)
        np.testing.assert_array_equal(r1[k], r3[k], err_msg=k)
        np.testing.assert_array_equal(r1[k], r4[k], err_msg=k)
    assert pd.read_csv(tmp / "w1" / "samples.csv").equals(pd.read_csv(tmp / "w3" / "samples.csv"))


def test_interrupted_sweep_resumes_and_gives_identical_results(synth, monkeypatch):
    tmp, paths, _ = synth
    spec = _mc_spec(paths)
    clean = _arrays(engine.sensitivity.sweep(spec, out=tmp / "clean", workers=1, **_synthetic()))
    real = driver._chunk_task

    def dying(item, shared):
        if item[0] >= 40:
            raise KeyboardInterrupt
        return real(item, shared)

    monkeypatch.setattr(driver, "_chunk_task", dying)
    with pytest.raises(KeyboardInterrupt):
        engine.sensitivity.sweep(spec, out=tmp / "resume", workers=1, **_synthetic())
    assert not (tmp / "resume" / "sweep.nc").exists()
    done = list((tmp / ".resume.chunks").rglob("chunk_*.npz"))  # the chunk store beside --out
    assert 0 < len(done) < 8  # 16 x (3 + 2) = 80 samples in chunks of 10
    monkeypatch.setattr(driver, "_chunk_task", real)
    ds = engine.sensitivity.sweep(spec, out=tmp / "resume", workers=1, **_synthetic())
    s = json.loads(ds.attrs["summary"])
    assert s["chunks_reused"] == len(done) and s["chunks_computed"] == 8 - len(done)
    again = _arrays(ds)
    for k in clean:
        np.testing.assert_array_equal(clean[k], again[k], err_msg=k)
    # another chunk size cuts the same sample matrix: the same numbers up to BLAS blocking in S @ q
    other = _arrays(engine.sensitivity.sweep(spec.replace(chunk_size=7), out=tmp / "c7", workers=1, **_synthetic()))
    for k in clean:
        np.testing.assert_allclose(clean[k], other[k], rtol=1e-13, err_msg=k)


# ----------------------------------------------------------------------------- outputs of the command
def test_command_writes_the_four_files(tmp_path):
    from engine.cli import main

    out = tmp_path / "co2"
    rc = main(["--quiet", "sweep", str(sw_path("co2_cut_screening.toml")), "--out", str(out), "--samples", "6",
               "--workers", "1"])
    assert rc == 0
    samples = pd.read_csv(out / "samples.csv")
    D = 8
    assert len(samples) == 6 * (D + 1)
    assert set(samples["carbon.efficiency_level"]) <= {"fyp", "high"}
    ind = pd.read_csv(out / "indices.csv")
    assert list(ind.columns) == ["output", "parameter", "mu", "mu_star", "mu_star_conf", "sigma", "note"]
    assert len(ind) == 2 * D
    s = json.loads((out / "summary.json").read_text())
    assert s["method"] == "morris" and s["evaluations"] == 54 and s["seed"] == 7
    assert s["spec"]["parameters"][0]["key"] == "carbon.seasonality_fraction" and "numpy" in s["versions"]
    with xr.open_dataset(out / "sweep.nc") as ds:
        assert ds.attrs["Conventions"] == "CF-1.8"
        assert ds.national_co2_cut_mt.attrs["units"] == "Mt CO2 yr-1"
        keys = {ds[v].attrs.get("sweep_key") for v in ds.variables}
        assert "carbon.orc_efficiency" in keys
        np.testing.assert_allclose(ds.national_co2_cut_mt.values[:3],
                                   json_cut(samples.iloc[:3], out), rtol=REL)


def json_cut(rows, out):
    """National CO2 cut of some samples recomputed one by one through the carbon stage."""
    data, cfg = load_dataset(), load_config()
    sc = dict((s.name, (s, c)) for s, c in cfg.scenarios)
    out_ = []
    for _, r in rows.iterrows():
        c = dataclasses.replace(sc["fyp_symbiosis"][1], **{k.split(".")[1]: (v if isinstance(v, str) else float(v))
                                                           for k, v in r.items() if k.startswith("carbon.")})
        cf = cfg.replace(scenarios=(sc["base"], (sc["fyp_symbiosis"][0], c)))
        n = run_carbon(cf, data).national.set_index(["scenario", "item"])["co2_mt"]
        out_.append(n["base", "national_co2"] - n["fyp_symbiosis", "national_co2"])
    return np.array(out_)


def sw_path(name):
    from pathlib import Path

    return Path(__file__).resolve().parents[1] / "config" / "sweeps" / name


@pytest.mark.parametrize("name", ["avoided_deaths_drivers.toml", "co2_cut_screening.toml"])
def test_shipped_sweeps_parse_and_check(name):
    spec = sw.load_spec(sw_path(name))
    m = sw.NationalModel(spec, sr_fn=_never, quiet=True, data=load_dataset())
    checked = sw.check_parameters(spec, m.key_info)
    assert len(checked.parameters) == len(spec.parameters)
    assert all(p.default is not None for p in checked.parameters)


def test_default_sample_reproduces_the_pipeline_on_real_cities(tmp_path, national_carbon):
    """Embedded 2010 data, Hebei's 11 cities: engine carbon stage, real met, IER mean over 1000 draws."""
    data, cfg, _ = national_carbon
    spec = sw.parse_spec({"sweep": {"method": "grid", "scenario": "fyp_symbiosis", "cities": "Hebei",
                                    "outputs": list(sw.OUTPUTS),
                                    "parameter": [{"key": "health.baseline_rate_multiplier", "dist": "choice",
                                                   "levels": [1.0]}]}}, source="hebei.toml")
    ds = engine.sensitivity.sweep(spec, out=tmp_path / "h", workers=2, data=data)
    prep = pl.prepare(cfg, cities="Hebei", scenarios=["fyp_symbiosis"], data=data)
    cres = pl.carbon(prep)
    S = pl.sr_matrix(prep, workers=2, quiet=True)
    conc = pl.superpose(S, pl.emissions(prep, cres))
    cities, national, _ = pl.metrics(prep, cres, conc, pl.health(prep, conc), S)
    c = cities[cities.scenario == "fyp_symbiosis"].set_index("city_id").loc[ds.city.values]
    b = cities[cities.scenario == "base"].set_index("city_id").loc[ds.city.values]
    x = ds.isel(sample=0)
    _close_deaths(x.city_avoided_deaths, c.avoided_deaths_mean, b.deaths_mean)
    np.testing.assert_allclose(x.city_conc_base_ug_m3, b.conc_ug_m3, rtol=REL)
    np.testing.assert_allclose(x.city_conc_scenario_ug_m3, c.conc_ug_m3, rtol=REL)
    n = national.set_index("scenario")
    _close_deaths(x.national_avoided_deaths, n.loc["fyp_symbiosis", "avoided_deaths_mean"],
                  n.loc["base", "deaths_mean"])
    _close_deaths(x.national_deaths_base, n.loc["base", "deaths_mean"], n.loc["base", "deaths_mean"])
    np.testing.assert_allclose(float(x.national_co2_cut_mt),
                               n.loc["base", "national_co2_mt"] - n.loc["fyp_symbiosis", "national_co2_mt"], rtol=REL)


def test_city_indices_are_salibs_per_city_and_independent_of_the_block_size(synth):
    tmp, paths, _ = synth
    spec = _mc_spec(paths).replace(samples=64)
    ds = engine.sensitivity.sweep(spec, out=tmp / "ci", workers=1, **_synthetic())
    ci = pd.read_csv(tmp / "ci" / "city_indices.csv")
    unit, values = sw.sample(ds_spec := sw.check_parameters(spec, _keyinfo(paths)))
    for cid in ds.city.values[:2]:
        want = sw.analyze(ds_spec, unit, values, ds.city_avoided_deaths.sel(city=cid).values).set_index("parameter")
        got = ci[(ci.output == "city_avoided_deaths") & (ci.city == cid)].set_index("parameter")
        np.testing.assert_allclose(got.loc[want.index, "S1"], want["S1"], rtol=1e-5, atol=1e-6)  # CSV %.6g
        np.testing.assert_allclose(got.loc[want.index, "ST"], want["ST"], rtol=1e-5, atol=1e-6)
    small = sw.city_indices(ds_spec, tmp / "ci" / "sweep.nc", ["city_avoided_deaths"], max_bytes=8 * 320)
    whole = sw.city_indices(ds_spec, tmp / "ci" / "sweep.nc", ["city_avoided_deaths"])
    pd.testing.assert_frame_equal(small, whole)


def _keyinfo(paths):
    m = sw.NationalModel(_mc_spec(paths), **_synthetic())
    return m.key_info


def test_a_changed_scenario_file_does_not_reuse_old_chunks(tmp_path):
    paths = sn.write_configs(tmp_path / "cfg", draws=20)
    spec = _mc_spec(paths).replace(samples=4)
    a = engine.sensitivity.sweep(spec, out=tmp_path / "o", workers=1, **_synthetic())
    again = engine.sensitivity.sweep(spec, out=tmp_path / "o", workers=1, **_synthetic())
    assert json.loads(again.attrs["summary"])["chunks_computed"] == 0
    sn.write_configs(tmp_path / "cfg", draws=25)  # same file names, other [health] draws
    b = engine.sensitivity.sweep(spec, out=tmp_path / "o", workers=1, **_synthetic())
    s = json.loads(b.attrs["summary"])
    assert s["chunks_reused"] == 0 and s["chunks_computed"] == s["chunks"]
    # (the values agree: a sampled IER draw index reads the same published draw whatever [health] draws)
    np.testing.assert_array_equal(a.city_avoided_deaths.values, b.city_avoided_deaths.values)


def test_emission_heights_as_sweep_levels(national_carbon, monkeypatch):
    """[dispersion] emission_heights = sector | ground as levels: each level one matrix set; the
    ground level's every class is the ground matrix, and each level equals pipeline.superpose.
    The sweep's base configuration has the height classes (emission_heights = "sector", the default)."""
    data, cfg, res = national_carbon
    sweep = {"sweep": {"method": "mc", "samples": 2, "scenario": "fyp_symbiosis", "cities": "Hebei",
                       "outputs": ["city_conc_base_ug_m3"],
                       "parameter": [{"key": "dispersion.emission_heights", "dist": "choice",
                                      "levels": ["sector", "ground"]}]}}
    as_config = pl.as_config

    def ground_base(*a, **k):
        c = as_config(*a, **k)
        return c.replace(dispersion=dataclasses.replace(c.dispersion, emission_heights="ground"))

    # on a "ground" base the height classes are missing: refused, naming the key
    monkeypatch.setattr(pl, "as_config", ground_base)
    with pytest.raises(InputError, match="dispersion.emission_heights needs"):
        sw.NationalModel(sw.parse_spec(sweep, source="h.toml"), data=data, sr_fn=_random_sr, quiet=True)
    monkeypatch.undo()
    assert pl.as_config(None).dispersion.emission_heights == "sector"
    m = sw.NationalModel(sw.parse_spec(sweep, source="h.toml"), data=data, sr_fn=_random_sr, quiet=True)
    vals = pd.concat([m.defaults()] * 2, ignore_index=True)
    vals.loc[0, "dispersion.emission_heights"] = "sector"
    vals.loc[1, "dispersion.emission_heights"] = "ground"
    out = sw.evaluate_chunk(m.tables(vals), vals, ["city_conc_base_ug_m3"])
    for i, mode in enumerate(("sector", "ground")):
        prep = pl.prepare(cfg.replace(dispersion=dataclasses.replace(cfg.dispersion, emission_heights=mode)),
                          cities="Hebei", data=data)
        want = pl.superpose(_random_sr(prep), pl.emissions(prep, pl.carbon(prep)), parts=False)["conc_ug_m3"]
        np.testing.assert_allclose(out["city_conc_base_ug_m3"][i], want.sel(scenario="base"), rtol=1e-12)
    assert not np.allclose(out["city_conc_base_ug_m3"][0], out["city_conc_base_ug_m3"][1])

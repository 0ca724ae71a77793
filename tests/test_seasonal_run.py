"""Seasonal superposition in the national run (issue 10): heating-season emissions meet
heating-season met.

With the default AERMET-way climatology every city has one source-receptor matrix per season,
S_s (times the season's calm coefficient c_s), and each source's share of its annual emission in
each season, share_s (from the carbon stage's PM2.5 by sector). Annual exposure is
C = sum_s S_s (share_s * q). Checked here on the synthetic nation:

* a flat emission (share_s = days_s / 365) on the seasonal matrices gives the annual-met run
  (``[met] seasonal_emissions = false``): sum_s c_s f_s K_s is the annual kernel, so this checks
  the calm coefficients and the season weights, not only the bookkeeping;
* an emission wholly in the heating season gives c_heating S_heating q, by hand from the
  matrices, and the forward fields give the same exposure as the adjoint rows;
* the real carbon stage's sector split reaches the shares: heating sectors all in the heating
  season, power 30.3 % heat-driven in central-heating regions.
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest

import synthetic_nation as sn
from engine.dispersion import climatology as clim
from engine import pipeline as pl
from engine.config import load_config

DEFAULT_MET = "climatology = \"default\""


def _prep(tmp_path, seasonal=True):
    met = DEFAULT_MET + ("" if seasonal else "\nseasonal_emissions = false")
    cfg = load_config(sn.write_configs(tmp_path / f"cfg{int(seasonal)}", extra_met=met))
    return pl.prepare(cfg, data=sn.nation())


def _heating_carbon_fn(cfg, data):
    """sn.carbon_fn's emissions, all of them declared as district heating (heating_des)."""
    res = sn.carbon_fn()(cfg, data)
    c = res.cities.copy()
    r = res.rop.copy()
    c["pm25_heating_des_t"] = c["pm25_t"]
    r["pm25_heating_des_t"] = 1.0  # sn gives the ROPs intensities only (pm25_t = 0); any mass will do
    return dataclasses.replace(res, cities=c, rop=r)


@pytest.fixture(scope="module")
def seasonal(tmp_path_factory):
    prep = _prep(tmp_path_factory.mktemp("seasonal"))
    res, _ = pl.receptor_pass(prep, quiet=True, workers=1)
    return prep, pl.sr_dataset(prep, res)


def test_default_met_is_seasonal(seasonal):
    prep, S = seasonal
    assert prep.seasons == clim.SEASONS
    assert S["S_season"].dims == ("season", "city", "source")
    for c in prep.selected:
        ms = prep.met_seasons[c]
        assert [m.season for m in ms] == list(clim.SEASONS)
        assert sum(m.coefficient * m.flat_share for m in ms) == pytest.approx(1.0, rel=1e-9)
    # S is the flat-emission matrix: sum_s f_s S_s
    flat = sum(m.flat_share * S["S_season"].sel(season=m.season) for m in prep.met_seasons[prep.selected[0]])
    np.testing.assert_allclose(S["S"].values, flat.values, rtol=1e-12)


def test_flat_emissions_on_seasonal_met_equal_the_annual_met_run(seasonal, tmp_path):
    prep, S = seasonal
    q = pl.emissions(prep, sn.carbon_fn()(prep.cfg, prep.data))  # no sector columns: flat shares
    np.testing.assert_allclose(q["season_share"].sel(season="heating").values, 151 / 365, rtol=1e-15)
    c_seasonal = pl.superpose(S, q)["conc_ug_m3"]
    prep_a = _prep(tmp_path, seasonal=False)
    assert prep_a.seasons == ("annual",)
    res_a, _ = pl.receptor_pass(prep_a, quiet=True, workers=1)
    S_a = pl.sr_dataset(prep_a, res_a)
    assert "S_season" not in S_a
    c_annual = pl.superpose(S_a, pl.emissions(prep_a, sn.carbon_fn()(prep_a.cfg, prep_a.data)))["conc_ug_m3"]
    np.testing.assert_allclose(c_seasonal.values, c_annual.values, rtol=1e-9)


def test_heating_only_emissions_use_the_heating_matrix(seasonal):
    prep, S = seasonal
    q = pl.emissions(prep, _heating_carbon_fn(prep.cfg, prep.data))
    np.testing.assert_array_equal(q["season_share"].sel(season="heating").values, 1.0)
    np.testing.assert_array_equal(q["season_share"].sel(season="non_heating").values, 0.0)
    conc = pl.superpose(S, q)
    by_hand = q["q"].values @ S["S_season"].sel(season="heating").values.T  # (scenario, city)
    np.testing.assert_allclose(conc["conc_ug_m3"].transpose("scenario", "city").values, by_hand, rtol=1e-12)
    parts = sum(conc[v] for v in conc.data_vars if v.startswith("conc_from_"))
    np.testing.assert_allclose(parts.values, conc["conc_ug_m3"].values, rtol=1e-12)
    # winter met is less dispersive here: the same emissions give more in the heating season
    flat = pl.superpose(S, q["q"])["conc_ug_m3"]
    assert (conc["conc_ug_m3"].values > flat.values).all()


def test_forward_fields_match_the_seasonal_rows(seasonal):
    prep, S = seasonal
    q = pl.emissions(prep, _heating_carbon_fn(prep.cfg, prep.data))
    q["season_share"][:] = np.where(np.arange(len(prep.sources)) % 2 == 0, 0.8, 0.1)[None, None, :] \
        * np.array([1.0, 0.0])[:, None, None] + np.where(np.arange(len(prep.sources)) % 2 == 0, 0.2, 0.9)[None, None, :] \
        * np.array([0.0, 1.0])[:, None, None]
    res, _ = pl.receptor_pass(prep, q=q, quiet=True, workers=1)
    conc = pl.superpose(pl.sr_dataset(prep, res), q)["conc_ug_m3"].transpose("scenario", "city")
    for i, c in enumerate(prep.selected):
        r = res[c]
        w = r.exposure_weight / r.exposure_weight.sum()
        forward = (r.pm25 * w[None]).sum(axis=(1, 2))
        np.testing.assert_allclose(forward, conc.values[:, i], rtol=1e-9)


def test_carbon_stage_sectors_give_the_documented_shares():
    from engine.carbon.accounting import run_carbon
    from engine.data.dataset import load_dataset

    cfg = load_config(None)
    data = load_dataset(None)
    res = run_carbon(cfg, data)
    cols = [c for c in res.cities.columns if c.startswith("pm25_") and c.endswith("_t") and c != "pm25_t"]
    assert {"pm25_power_t", "pm25_heating_des_t", "pm25_heating_individual_t", "pm25_steel_t"} <= set(cols)
    np.testing.assert_allclose(res.cities[cols].sum(axis=1), res.cities["pm25_t"], rtol=1e-12)
    # a Hebei city (north_china: central heating) emitting only power: 30.3 % heat-driven
    sh = clim.seasonal_source_shares({"power": np.array([1.0, 1.0])}, ["north_china", "south"])
    assert sh["heating"][0] == pytest.approx(0.697 * 151 / 365 + 0.303, rel=1e-12)
    assert sh["heating"][1] == pytest.approx(151 / 365, rel=1e-12)

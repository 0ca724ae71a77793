"""engine.health.impact: deaths against the slow reference, invariants, input errors, census ages."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import InputError
from engine.health import (AGE_GROUPS, POPULATION_COLUMNS, age_population, curve_set, health_impact,
                           load_rates, national_totals, rest_of_province_population)
from tests.reference import health_reference as ref


def _pop(rng, n, zero_rows=()):
    p = rng.uniform(1e3, 2e5, (n, len(AGE_GROUPS)))
    for r in zero_rows:
        p[r] = 0.0
    return pd.DataFrame(p, index=[f"r{i}" for i in range(n)], columns=POPULATION_COLUMNS)


def _rates_matrix(cs):
    t = load_rates()
    m = {(c, a): v for c, a, v in t.itertuples(index=False)}
    return np.array([[m.get((c, a), 0.0) for a in AGE_GROUPS] for c in cs.causes])


@pytest.mark.parametrize("crf,method", [("ier2010", "subtraction"), ("ier2010", "pif"),
                                        ("gemm_5cod", "subtraction"), ("gemm_ncd_lri", "pif"),
                                        ("loglinear_krewski2009", "subtraction")])
def test_matches_reference(rng, crf, method):
    n, nd = 4, 40
    pop = _pop(rng, n, zero_rows=[2])
    zb = rng.uniform(0, 150, n)
    zb[3] = 3.0                      # below every counterfactual of the IER and near GEMM's
    zs = zb * rng.uniform(0.5, 1.0, n)
    ds = health_impact(zb, pop, conc_scenario=zs, crf=crf, draws=nd, seed=3, avoided_method=method,
                       keep_age_draws=True)
    cs = curve_set(crf, draws=nd, seed=3)
    y = _rates_matrix(cs)
    b, s, a = ref.deaths_reference(cs, pop.to_numpy(), y, zb, zs, cs.params_draws, pif=method == "pif")
    bc, sc, ac = ref.deaths_reference(cs, pop.to_numpy(), y, zb, zs, cs.params_central, pif=method == "pif")
    tol = dict(rtol=1e-11, atol=1e-9)  # summation order and exp/log rewrite of the power
    np.testing.assert_allclose(ds.deaths_draws.values, b.sum(axis=2), **tol)
    np.testing.assert_allclose(ds.deaths_scenario_draws.values, s.sum(axis=2), **tol)
    np.testing.assert_allclose(ds.avoided_draws.values, a.sum(axis=2), **tol)
    np.testing.assert_allclose(ds.deaths_age_draws.values, b, **tol)
    np.testing.assert_allclose(ds.avoided_age_draws.values, a, **tol)
    np.testing.assert_allclose(ds.deaths_mean.values, b.mean(axis=3), **tol)
    np.testing.assert_allclose(ds.avoided_mean.values, a.mean(axis=3), **tol)
    np.testing.assert_allclose(ds.deaths_central.values, bc[..., 0], **tol)
    np.testing.assert_allclose(ds.avoided_central.values, ac[..., 0], **tol)
    np.testing.assert_allclose(ds.deaths_p2_5.values, np.percentile(b.sum(axis=2), 2.5, axis=-1), **tol)
    np.testing.assert_allclose(ds.avoided_all_p97_5.values,
                               np.percentile(a.sum(axis=(1, 2)), 97.5, axis=-1), **tol)
    assert not any(np.isnan(v.values).any() for v in ds.data_vars.values() if v.dtype.kind == "f")


def test_dims_units_and_labels(rng):
    pop = _pop(rng, 3)
    ds = health_impact([40.0, 60.0, 80.0], pop, conc_scenario=[30.0, 60.0, 70.0], draws=10)
    assert set(ds.dims) == {"region", "cause", "age", "draw"}
    assert list(ds.region.values) == ["r0", "r1", "r2"]
    assert list(ds.cause.values) == ["ihd", "stroke", "copd", "lc", "lri"]
    for name, v in ds.data_vars.items():
        assert "long_name" in v.attrs, name
        if v.dtype.kind == "f":
            assert "units" in v.attrs, name
    # the function does not apply below 25 (adult causes) or above 4 (ALRI)
    assert float(ds.deaths_central.sel(cause="ihd", age="20_24").sum()) == 0.0
    assert float(ds.deaths_central.sel(cause="lri", age="5_9").sum()) == 0.0
    assert float(ds.deaths_central.sel(cause="copd", age="25_29").sum()) > 0.0
    # equal concentrations -> nothing avoided
    assert np.all(ds.avoided_draws.sel(region="r1").values == 0.0)


def test_age_sums_and_national_totals(rng):
    pop = _pop(rng, 5)
    z = rng.uniform(10, 120, 5)
    ds = health_impact(z, pop, conc_scenario=z * 0.8, draws=50)
    np.testing.assert_allclose(ds.deaths_mean.sum("age"), ds.deaths_draws.mean("draw"), rtol=1e-12)
    nat = national_totals(ds)
    total = ds.avoided_draws.sum(("region", "cause"))
    assert float(nat.avoided_all_mean) == pytest.approx(float(total.mean()), rel=1e-12)
    assert float(nat.avoided_all_p2_5) == pytest.approx(np.percentile(total.values, 2.5), rel=1e-12)
    assert float(nat.deaths_all_central) == pytest.approx(float(ds.deaths_all_central.sum()), rel=1e-12)


def test_scenario_equal_to_base_avoids_nothing(rng):
    pop = _pop(rng, 3)
    z = np.array([5.0, 35.0, 200.0])
    for method in ("subtraction", "pif"):
        for crf in ("ier2010", "gemm_5cod", "loglinear_krewski2009"):
            ds = health_impact(z, pop, conc_scenario=z, crf=crf, draws=20, avoided_method=method)
            assert np.all(ds.avoided_draws.values == 0.0)
            assert np.all(ds.avoided_central.values == 0.0)


def test_zero_population_zero_deaths(rng):
    pop = _pop(rng, 2, zero_rows=[0])
    pop.iloc[1, :5] = 0.0  # no children: ALRI deaths zero, adults non-zero
    ds = health_impact([90.0, 90.0], pop, conc_scenario=[0.0, 50.0], draws=30)
    for v in ds.data_vars.values():
        if v.dtype.kind == "f":
            assert not np.isnan(v.values).any()
    assert np.all(ds.deaths_draws.sel(region="r0").values == 0.0)
    assert np.all(ds.avoided_draws.sel(region="r0").values == 0.0)
    assert np.all(ds.deaths_draws.sel(region="r1", cause="lri").values == 0.0)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 12), st.sampled_from(["ier2010", "gemm_ncd_lri"]))
def test_chunking_does_not_change_results(chunk, crf):
    rng = np.random.default_rng(99)
    pop = _pop(rng, 11, zero_rows=[4])
    z = rng.uniform(0, 200, 11)
    kw = dict(conc_scenario=z * 0.7, crf=crf, draws=25, seed=5)
    a = health_impact(z, pop, **kw)
    b = health_impact(z, pop, chunk_size=chunk, **kw)
    xr.testing.assert_identical(a, b)


def test_same_draw_index_for_every_region(rng):
    """A region's draws do not depend on which other regions are in the run."""
    pop = _pop(rng, 4)
    z = np.array([20.0, 50.0, 80.0, 110.0])
    for crf in ("ier2010", "gemm_5cod"):
        full = health_impact(z, pop, crf=crf, draws=40, seed=11)
        part = health_impact(z[2:], pop.iloc[2:], crf=crf, draws=40, seed=11)
        np.testing.assert_array_equal(full.deaths_draws.sel(region="r3").values,
                                      part.deaths_draws.sel(region="r3").values)
    # and the national interval is that of the summed draws (wider than independent draws would give)
    nat = national_totals(full)
    assert float(nat.deaths_all_p97_5 - nat.deaths_all_p2_5) > 0


def test_seed_reproducible_and_draws_zero(rng):
    pop = _pop(rng, 2)
    a = health_impact([50.0, 70.0], pop, crf="gemm_5cod", draws=30, seed=1)
    b = health_impact([50.0, 70.0], pop, crf="gemm_5cod", draws=30, seed=1)
    c = health_impact([50.0, 70.0], pop, crf="gemm_5cod", draws=30, seed=2)
    xr.testing.assert_identical(a, b)
    assert not np.array_equal(a.deaths_draws.values, c.deaths_draws.values)
    d = health_impact([50.0, 70.0], pop, crf="gemm_5cod", draws=0)
    assert "deaths_draws" not in d and d.sizes["draw"] == 0
    np.testing.assert_allclose(d.deaths_central.values, a.deaths_central.values, rtol=0)


def test_hand_computed_single_cell():
    """One region, only 0-4 year olds, IER ALRI, central parameters, 100 ug m-3:
    deaths = P x y x (1 - 1/RR) with y from the rates table and RR from relative_risk."""
    from engine.health import relative_risk
    pop = pd.DataFrame([[1e5] + [0.0] * 16], index=["x"], columns=POPULATION_COLUMNS)
    ds = health_impact([100.0], pop, draws=0)
    rr = float(relative_risk([100.0], draws=0).rr_central.sel(curve="lri 0_4")[0])
    y = float(load_rates().query("cause == 'lri' and age_group == '0_4'").rate_per_100k.iloc[0])
    assert float(ds.deaths_all_central[0]) == pytest.approx(1e5 * y / 1e5 * (1 - 1 / rr), rel=1e-12)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("conc,match", [([-1.0, 5.0], "region 'r0'"), ([5.0, np.nan], "region 'r1'")])
def test_bad_concentration(rng, conc, match):
    with pytest.raises(InputError, match=match):
        health_impact(conc, _pop(rng, 2), draws=0)
    with pytest.raises(InputError, match="conc_scenario of " + match):
        health_impact([1.0, 1.0], _pop(rng, 2), conc_scenario=conc, draws=0)


def test_bad_population(rng):
    pop = _pop(rng, 2)
    pop.loc["r1", "pop_30_34"] = -5
    with pytest.raises(InputError, match="region 'r1', column pop_30_34"):
        health_impact([1.0, 1.0], pop, draws=0)
    pop.loc["r1", "pop_30_34"] = np.nan
    with pytest.raises(InputError, match="region 'r1', column pop_30_34"):
        health_impact([1.0, 1.0], pop, draws=0)
    with pytest.raises(InputError, match="missing population column.*pop_80plus"):
        health_impact([1.0, 1.0], pop.drop(columns="pop_80plus"), draws=0)
    with pytest.raises(InputError, match="unknown population column.*pop_80_84.*accepted"):
        health_impact([1.0, 1.0], pop.rename(columns={"pop_80plus": "pop_80_84"}), draws=0)


def test_bad_rates(rng, tmp_path):
    pop = _pop(rng, 1)
    good = load_rates()
    gap = good[~((good.cause == "stroke") & (good.age_group == "60_64"))]
    with pytest.raises(InputError, match="stroke 60_64"):
        health_impact([50.0], pop, rates=gap, draws=0)
    # a gap where the function does not apply is fine (ALRI only at 0-4)
    ok = good[~((good.cause == "lri") & (good.age_group == "60_64"))]
    health_impact([50.0], pop, rates=ok, draws=0)
    f = tmp_path / "r.csv"
    bad = good.copy()
    bad.loc[3, "cause"] = "asthma"
    bad.to_csv(f, index=False)
    with pytest.raises(InputError, match=r"line 5, column cause: 'asthma'"):
        health_impact([50.0], pop, rates=f, draws=0)
    bad = good.copy()
    bad.loc[0, "age_group"] = "0-4"
    bad.to_csv(f, index=False)
    with pytest.raises(InputError, match=r"line 2, column age_group"):
        health_impact([50.0], pop, rates=f, draws=0)
    bad = good.copy()
    bad.loc[6, "rate_per_100k"] = -1.0
    bad.to_csv(f, index=False)
    with pytest.raises(InputError, match=r"line 8 .*column rate_per_100k"):
        health_impact([50.0], pop, rates=f, draws=0)


def test_bad_options(rng):
    pop = _pop(rng, 1)
    with pytest.raises(InputError, match="1000 published"):
        health_impact([50.0], pop, draws=1001)
    with pytest.raises(InputError, match="crf"):
        health_impact([50.0], pop, crf="ier2013")
    with pytest.raises(InputError, match="adult_min_age"):
        health_impact([50.0], pop, adult_min_age=27)


# ----------------------------------------------------------------------------- census ages
def test_age_population_tables():
    cities = age_population()
    assert len(cities) == 654 and list(cities.columns) == list(POPULATION_COLUMNS)
    assert (cities.to_numpy() >= 0).all()
    # Beijing municipality proper (16 districts): 18,827,262 in the cities table (census 2010)
    assert int(cities.loc[110000].sum()) == 18827262
    prov = age_population(region_type="province")
    assert len(prov) == 31
    assert int(prov.to_numpy().sum()) == 1332810869  # 2010 census, 31 provinces
    rop = rest_of_province_population()
    np.testing.assert_array_equal(
        rop.to_numpy() + cities.groupby((cities.index // 10000) * 10000).sum().reindex(rop.index).to_numpy(),
        prov.to_numpy())
    sub = age_population([320100, 110000])
    assert list(sub.index) == [320100, 110000]
    with pytest.raises(InputError, match="999999"):
        age_population([999999])

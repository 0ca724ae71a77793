"""Marginal damages (issue 20) checked against the full pipeline on the synthetic nation.

MD_j x dE_j must equal the change in national deaths when source j emits dE_j more, run through
carbon -> emissions -> superpose -> health (a central difference, so the second-order term
cancels), for a city and a rest-of-province source, with seasonal met and an uneven seasonal mix,
for IER, GEMM and log-linear functions. With a linear function (zcf = 0) deaths are homogeneous
of degree 1 in the emissions, so sum_j E_j MD_j is the total (Euler's identity).
"""

import dataclasses

import numpy as np
import pytest

import synthetic_nation as sn
from engine import pipeline as pl
from engine.config import load_config
from engine.marginal import marginal_damages
from engine.marginal.stages import run_stages, source_area_km2
from kernels import crf as kcrf
from kernels.crf_derivative import fraction_slope

SEASONAL_MET = 'climatology = "default"'


def _carbon_fn(scale_source=None, factor=1.0):
    """sn's emissions with a sector split (power / heating) so the seasonal shares are uneven,
    ROPs with their mass; ``scale_source`` (label) times ``factor``."""
    base_fn = sn.carbon_fn()

    def fn(cfg, data):
        res = base_fn(cfg, data)
        c = res.cities.copy()
        r = res.rop.copy()
        area_r = data.rop["area_km2"].reindex(r["province_id"]).to_numpy()
        r["pm25_t"] = r["pm25_intensity_g_m2_yr"] * area_r
        for t, shares in ((c, {"power": 0.6, "heating_des": 0.4}), (r, {"power": 0.8, "heating_individual": 0.2})):
            for sec, f in shares.items():
                t[f"pm25_{sec}_t"] = f * t["pm25_t"]
        if scale_source is not None:
            kind, sid = scale_source[0], int(scale_source[1:])
            t, col = (c, "city_id") if kind == "c" else (r, "province_id")
            rows = t[col] == sid
            cols = [k for k in t.columns if k.startswith("pm25_")]
            t.loc[rows, cols] = t.loc[rows, cols] * factor
        return dataclasses.replace(res, cities=c, rop=r)
    return fn


@pytest.fixture(scope="module")
def seasonal_prep(tmp_path_factory):
    paths = sn.write_configs(tmp_path_factory.mktemp("md"), extra_met=SEASONAL_MET, draws=20)
    cfg = load_config(paths)
    prep = pl.prepare(cfg, data=sn.nation())
    S = pl.sr_matrix(prep, workers=1, quiet=True)
    assert "S_season" in S
    return prep, S


def _with_health(prep, **health):
    cfg = prep.cfg.replace(health=dataclasses.replace(prep.cfg.health, **health))
    return dataclasses.replace(prep, cfg=cfg)


def _national_deaths(prep, S, carbon_fn, stat):
    st = run_stages(prep=prep, S=S, carbon_fn=carbon_fn)
    conc = pl.superpose(S, st.q)
    h = pl.health(prep, conc, age_population_fn=sn.age_population_fn)["base"]
    return float(h[f"deaths_all_{stat}"].sum())


@pytest.mark.parametrize("crf", ["ier2010", "gemm_ncd_lri", "loglinear_krewski2009"])
@pytest.mark.parametrize("label", ["c130100", "r410000"])
def test_md_times_step_matches_the_pipeline(seasonal_prep, crf, label):
    prep0, S = seasonal_prep
    prep = _with_health(prep0, crf=crf)
    st = run_stages(prep=prep, S=S, carbon_fn=_carbon_fn())
    share = st.q["season_share"].sel(scenario="base", season="heating")
    assert float(share.min()) != float(share.max())  # an uneven seasonal mix reaches the shares
    md = marginal_damages(stages=st, scenarios="base", age_population_fn=sn.age_population_fn)
    e_kt = float(md["emission_kt_yr"].sel(scenario="base", source=label))
    h = 1e-3
    for stat in ("central", "mean"):
        up = _national_deaths(prep, S, _carbon_fn(label, 1 + h), stat)
        dn = _national_deaths(prep, S, _carbon_fn(label, 1 - h), stat)
        pred = float(md[f"md_{stat}"].sel(scenario="base", source=label)) * 2 * h * e_kt
        assert pred != 0.0
        # central difference: the error is O(h^2) relative; 1e-4 is the bound
        assert (up - dn) == pytest.approx(pred, rel=1e-4), (stat, up - dn, pred)


def test_the_split_by_landing_adds_up(seasonal_prep):
    prep, S = seasonal_prep
    st = run_stages(prep=prep, S=S, carbon_fn=_carbon_fn())
    md = marginal_damages(stages=st, age_population_fn=sn.age_population_fn)
    for stat in ("central", "mean"):
        parts = sum(md[f"md_{k}_{stat}"] for k in ("own_city", "other_cities_same_province", "other_provinces"))
        np.testing.assert_allclose(parts.values, md[f"md_{stat}"].values, rtol=1e-12)
    # a rest of province has no city of its own: nothing lands "in the source city"
    assert float(abs(md["md_own_city_central"].sel(source="r130000")).max()) == 0.0
    lo, mean, hi = (md[f"md_{s}"].sel(scenario="base") for s in ("p2_5", "mean", "p97_5"))
    assert bool(((lo <= mean) & (mean <= hi)).all())


def test_linear_function_md_sum_to_the_total_deaths(seasonal_prep, tmp_path):
    prep0, S = seasonal_prep
    f = tmp_path / "linear.csv"
    f.write_text("form,cause,beta,beta_se,min_age\nlinear,ncd_lri,2e-6,0,25\n")
    prep = _with_health(prep0, crf="user", functions_file=str(f))
    st = run_stages(prep=prep, S=S, carbon_fn=_carbon_fn())
    md = marginal_damages(stages=st, age_population_fn=sn.age_population_fn)
    conc = pl.superpose(S, st.q)
    hres = pl.health(prep, conc, age_population_fn=sn.age_population_fn)
    for scen in ("base", "cut"):
        var = "deaths_all_central" if scen == "base" else "deaths_scenario_all_central"
        total = float(hres[scen][var].sum())
        m = md.sel(scenario=scen)
        euler = float((m["md_central"] * m["emission_kt_yr"]).sum())
        assert euler == pytest.approx(total, rel=1e-10)  # exact up to rounding
    # and an area check: the kt of a source is the carbon stage's t / 1000
    area = source_area_km2(prep)
    assert area[prep.source_labels.index("c130100")] == 300.0


def test_fraction_slope_kernel_against_finite_differences():
    rng = np.random.default_rng(7)
    z = np.array([3.0, 12.0, 35.0, 80.0, 150.0])
    cases = {
        kcrf.MODEL_IER: [[0.9, 0.01, 0.8, 5.8, 0.0], [0.3, 0.05, 1.3, 7.0, 0.0]],
        kcrf.MODEL_GEMM: [[0.143, 1.6, 15.5, 36.8, 2.4]],
        kcrf.MODEL_LOGLINEAR: [[0.0058, 5.8, 0, 0, 0]],
        kcrf.MODEL_USER: [[0.01, 0.0, 0.0, 0, 0], [0.2, 5.0, 1.0, 0, 0], [1e-5, 2.0, 2.0, 0, 0]],
    }
    for model, ps in cases.items():
        params = np.array(ps, dtype=float)[:, None, :] * (1 + 0.01 * rng.random((len(ps), 3, 1)))
        out = np.empty((z.size, len(ps), 3))
        fraction_slope(model, z, params, out)
        h = 1e-5
        up, dn = np.empty_like(out), np.empty_like(out)
        kcrf.fractions_over_draws(model, z + h, params, up)
        kcrf.fractions_over_draws(model, z - h, params, dn)
        # central difference of PAF in float64: rounding ~1e-16 / h on PAF ~ 0.5, hence the atol
        np.testing.assert_allclose(out, (up - dn) / (2 * h), rtol=1e-6, atol=1e-10)


def test_ier_slope_by_hand():
    # RR = 1 + a(1 - exp(-g x^d)), x = 20 - 5 = 15; PAF' = a g d x^(d-1) e^(-g x^d) / RR^2
    a, g, d, zcf, z = 0.8, 0.02, 0.9, 5.0, 20.0
    x = z - zcf
    e = np.exp(-g * x ** d)
    rr = 1 + a * (1 - e)
    want = a * g * d * x ** (d - 1) * e / rr ** 2
    out = np.empty((1, 1, 1))
    fraction_slope(kcrf.MODEL_IER, np.array([z]), np.array([[[a, g, d, zcf, 0.0]]]), out)
    assert out[0, 0, 0] == pytest.approx(want, rel=1e-12)
    out2 = np.empty((1, 1, 1))
    fraction_slope(kcrf.MODEL_IER, np.array([4.0]), np.array([[[a, g, d, zcf, 0.0]]]), out2)
    assert out2[0, 0, 0] == 0.0  # below the counterfactual the function is flat


@pytest.mark.parametrize("pif", [False, True])
@pytest.mark.parametrize("model,p", [(kcrf.MODEL_IER, [0.9, 0.01, 0.8, 5.8, 0]),
                                     (kcrf.MODEL_GEMM, [0.143, 1.6, 15.5, 36.8, 2.4]),
                                     (kcrf.MODEL_USER, [1e-5, 2.0, 2.0, 0, 0])])
def test_avoided_per_sample_equals_the_sweep_kernel(model, p, pif):
    """kernels.avoided skips the regions whose exposure is unchanged; the sum over regions of
    kernels.sweep.impact_per_sample (which evaluates all of them) is the reference."""
    from kernels.avoided import avoided_per_sample
    from kernels.sweep import impact_per_sample

    rng = np.random.default_rng(3)
    params = np.array(p)[None, None, :] * (1 + 0.01 * rng.random((3, 4, 1)))
    zb = rng.uniform(0, 100, 20)
    zs = zb[None, :] * rng.uniform(0.8, 1.0, (7, 20))
    zs[:, :5] = zb[:5]  # unchanged regions
    w = rng.uniform(0, 100, (20, 3))
    out = np.empty(7)
    avoided_per_sample(model, zb, zs, params, w, pif, out)
    b, s, a = (np.empty((7, 20)) for _ in range(3))
    impact_per_sample(model, np.ascontiguousarray(np.broadcast_to(zb, (7, 20))), zs, params, np.full(7, -1), w,
                      np.ones(7), pif, b, s, a)
    # same terms summed in another order; the prange reduction order follows the thread count (3.3e-13 seen)
    np.testing.assert_allclose(out, a.sum(axis=1), rtol=1e-12)


# ---- marginal damages by part (season x emission-height class): the mix an action moves

def _carbon_fn_sector(label, sector, factor):
    """_carbon_fn with one sector of one source scaled: the source's mix of seasons and heights moves."""
    base_fn = _carbon_fn()

    def fn(cfg, data):
        res = base_fn(cfg, data)
        kind, sid = label[0], int(label[1:])
        t, col = (res.cities, "city_id") if kind == "c" else (res.rop, "province_id")
        t = t.copy()
        rows = t[col] == sid
        old = t.loc[rows, f"pm25_{sector}_t"].copy()
        t.loc[rows, f"pm25_{sector}_t"] = old * factor
        t.loc[rows, "pm25_t"] = t.loc[rows, "pm25_t"] + old * (factor - 1.0)
        if "pm25_intensity_g_m2_yr" in t:
            t.loc[rows, "pm25_intensity_g_m2_yr"] = t.loc[rows, "pm25_intensity_g_m2_yr"] * (
                t.loc[rows, "pm25_t"] / (t.loc[rows, "pm25_t"] - old * (factor - 1.0)))
        return dataclasses.replace(res, **({"cities": t} if kind == "c" else {"rop": t}))
    return fn


@pytest.fixture(scope="module")
def heights_prep(tmp_path_factory):
    paths = sn.write_configs(tmp_path_factory.mktemp("mdh"), extra_met=SEASONAL_MET, draws=20,
                             emission_heights="sector")
    prep = pl.prepare(load_config(paths), data=sn.nation())
    S = pl.sr_matrix(prep, workers=1, quiet=True)
    assert "S_season_height" in S
    # stacks leave the synthetic cities' exposure below IER's counterfactual (slope 0): a log-linear
    # function keeps every slope positive
    return _with_health(prep, crf="loglinear_krewski2009"), S


def _part_emissions(S, st, label):
    """The source's annual emission in each (season, height) part [kt yr-1], base scenario."""
    from engine.marginal.stages import kt_per_q

    _, share, _ = pl.superpose_terms(S, st.q.sel(scenario="base"))
    order = list(S["S"]["source"].values)
    j = order.index(label)
    q = float(st.q["q"].sel(scenario="base", source=label))
    return share[:, j] * q * kt_per_q(st.prep)[st.prep.source_labels.index(label)]


@pytest.mark.parametrize("fixture", ["seasonal_prep", "heights_prep"])
def test_part_damages_add_up_to_the_mix(fixture, request):
    """A kt of the present mix is the parts' kts in the mix's proportions: sum_p share_p MD_p = MD."""
    prep, S = request.getfixturevalue(fixture)
    st = run_stages(prep=prep, S=S, carbon_fn=_carbon_fn())
    md = marginal_damages(stages=st, scenarios="base", age_population_fn=sn.age_population_fn).sel(scenario="base")
    _, share, parts = pl.superpose_terms(S, st.q.sel(scenario="base"))
    assert md.sizes["part"] == len(parts) == (8 if fixture == "heights_prep" else 2)
    mdp = md["md_part_central"].transpose("source", "part").values
    assert (mdp > 0).sum() > mdp.size // 4
    order = list(S["S"]["source"].values)
    mix = np.array([share[:, order.index(s)] @ mdp[k] for k, s in enumerate(md["source"].values)])
    np.testing.assert_allclose(mix, md["md_central"].values, rtol=1e-12, atol=1e-12 * np.nanmax(md["md_central"].values))


@pytest.mark.parametrize("label,sector", [("c130100", "power"), ("c130100", "heating_des"), ("r410000", "power")])
def test_part_damages_predict_a_sector_cut_that_moves_the_mix(heights_prep, label, sector):
    """One sector of one source scaled by 1 +- h (its mix of seasons and heights moves): sum_p dE_p MD_p
    equals the pipeline's change of deaths to the central difference's O(h^2); the MD of the present
    mix times the change of the total does not (the part damages are what makes it exact)."""
    prep, S = heights_prep
    st0 = run_stages(prep=prep, S=S, carbon_fn=_carbon_fn())
    md = marginal_damages(stages=st0, scenarios="base", age_population_fn=sn.age_population_fn).sel(scenario="base")
    h = 1e-3
    st_up = run_stages(prep=prep, S=S, carbon_fn=_carbon_fn_sector(label, sector, 1 + h))
    st_dn = run_stages(prep=prep, S=S, carbon_fn=_carbon_fn_sector(label, sector, 1 - h))
    de = _part_emissions(S, st_up, label) - _part_emissions(S, st_dn, label)
    mdp = md["md_part_central"].sel(source=label).values
    pred = float(de @ mdp)
    up = _national_deaths(prep, S, _carbon_fn_sector(label, sector, 1 + h), "central")
    dn = _national_deaths(prep, S, _carbon_fn_sector(label, sector, 1 - h), "central")
    assert pred != 0.0
    assert (up - dn) == pytest.approx(pred, rel=1e-4)
    e0 = _part_emissions(S, st0, label)
    if np.abs(de / de.sum() - e0 / e0.sum()).max() > 1e-6:  # the cut moved the mix (not where the
        mix = float(md["md_central"].sel(source=label)) * float(de.sum())  # source's sectors share one)
        assert abs(mix / (up - dn) - 1) > 1e-3  # the present mix's MD misses the move

"""Concentration-response kernels: published IER test vectors, GEMM and log-linear formulas,
physical properties (STYLE 15-18)."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.health import curve_set, relative_risk
from kernels import crf as k
from tests.reference import health_reference as ref

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def ier_rr_1000():
    vec = pd.read_csv(DATA / "ier_rr_testvectors_gbd2010.csv", comment="#", dtype={"age_group": str})
    conc = np.sort(vec.pm25.unique()).astype(float)
    ds = relative_risk(conc, "ier2010", draws=1000, age_specific=True)
    all_age = relative_risk(conc, "ier2010", draws=1000, age_specific=False)
    return vec, ds, all_age


def _curve_for(cause, age_group):
    cause = {"IHD": "ihd", "Stroke": "stroke", "COPD": "copd", "LC": "lc", "ALRI": "lri"}[cause]
    if cause == "lri":
        return "lri 0_4", False
    if cause in ("copd", "lc"):
        return f"{cause} 25+", False
    if age_group == "all":
        return f"{cause} all-age 25+", True
    lo = int(age_group)
    return (f"{cause} 80plus" if lo == 80 else f"{cause} {lo}_{lo + 4}"), False


def test_ier_reproduces_published_test_vectors(ier_rr_1000):
    """Mean, 2.5 % and 97.5 % of RR over the 1000 GBD 2010 draws, all 29 strata x 8 concentrations."""
    vec, ds, all_age = ier_rr_1000
    worst = 0.0
    for row in vec.itertuples():
        curve, use_all = _curve_for(row.cause, row.age_group)
        rr = (all_age if use_all else ds).rr.sel(curve=curve, concentration=float(row.pm25)).values
        got = {"rr_mean": rr.mean(), "rr_p2_5": np.percentile(rr, 2.5), "rr_p97_5": np.percentile(rr, 97.5)}
        for col, value in got.items():
            expected = getattr(row, col)
            # the file prints 6 significant digits: agreement must be within half a unit of the
            # last printed digit (relative error <= 5e-6 for RR in [1, 10))
            half_unit = 0.5 * 10.0 ** (math.floor(math.log10(abs(expected))) - 5)
            assert abs(value - expected) <= half_unit * (1 + 1e-9), (row, col, value)
            worst = max(worst, abs(value / expected - 1))
    assert worst < 5e-6


def test_ier_mean_parameters_are_not_mean_rr(ier_rr_1000):
    """SOURCES.md 1.4 pitfall: COPD at 50 ug m-3, RR(mean params) 1.338 vs mean RR 1.22207 (test vector)."""
    _, ds, _ = ier_rr_1000
    sel = ds.sel(curve="copd 25+", concentration=50.0)
    assert float(sel.rr.mean()) == pytest.approx(1.22207, abs=5e-6)
    assert float(sel.rr_central) == pytest.approx(1.338, abs=5e-4)


def test_ier_kernel_matches_reference_scalar(rng):
    cs = curve_set("ier2010", draws=50)
    z = np.concatenate([[0.0, 5.0, 5.8, 8.8, 9.0], rng.uniform(0, 500, 40)])
    out = np.empty((z.size, len(cs.curve_label), 50))
    k.relative_risk(k.MODEL_IER, z, cs.params_draws, out)
    for i in range(z.size):
        for c in range(len(cs.curve_label)):
            for d in range(0, 50, 7):
                # exp/log rewrite of the power and fastmath contraction: last-digit differences
                assert out[i, c, d] == pytest.approx(ref.rr(0, z[i], cs.params_draws[c, d]), rel=1e-13)
    p = cs.params_draws[0]
    out1 = np.empty((z.size, 50))
    k.ier_rr(z, p[:, 0].copy(), p[:, 1].copy(), p[:, 2].copy(), p[:, 3].copy(), out1)
    np.testing.assert_allclose(out1, out[:, 0, :], rtol=0, atol=0)


def test_gemm_hand_derived_point():
    """GEMM with-China IHD 25+ (theta 0.2969, alpha 1.9, mu 12.0, nu 40.2; calculator) at 50 ug m-3.

    x = 50 - 2.4 = 47.6; ln(1 + 47.6/1.9) = ln(26.0526316) = 3.2601188;
    logistic weight 1/(1 + exp(-(47.6 - 12.0)/40.2)) = 1/(1 + exp(-0.8855721)) = 1/(1 + 0.4124783)
    = 0.7079756; RR = exp(0.2969 * 3.2601188 * 0.7079756) = exp(0.6852703) = 1.9843081.
    """
    out = np.empty((1, 1))
    k.gemm_rr(np.array([50.0]), np.array([0.2969]), 1.9, 12.0, 40.2, 2.4, out)
    assert out[0, 0] == pytest.approx(1.9843081, rel=1e-7)  # 8 digits carried by hand
    # at the counterfactual and below: x = 0, ln(1) = 0, RR = 1 exactly
    k.gemm_rr(np.array([2.4]), np.array([0.2969]), 1.9, 12.0, 40.2, 2.4, out)
    assert out[0, 0] == 1.0


def test_gemm_curve_set_carries_calculator_parameters():
    cs = curve_set("gemm_5cod", cohort="with_china", draws=0)
    i = cs.curve_label.index("ihd 25_29")
    np.testing.assert_array_equal(cs.params_central[i, 0], [0.5070, 1.9, 12.0, 40.2, 2.4])
    cs = curve_set("gemm_ncd_lri", cohort="without_china", draws=0)
    i = cs.curve_label.index("ncd_lri 80plus")
    np.testing.assert_array_equal(cs.params_central[i, 0], [0.0979, 1.5, 10.4, 25.9, 2.4])


def test_gemm_theta_draws_normal():
    cs = curve_set("gemm_ncd_lri", draws=20000, seed=7)
    th = cs.params_draws[cs.curve_label.index("ncd_lri 25_29"), :, 0]
    assert th.mean() == pytest.approx(0.1585, abs=4 * 0.01477 / math.sqrt(20000))
    assert th.std() == pytest.approx(0.01477, rel=0.03)
    # one deviate per cause and draw serves every age: standardised draws are identical
    th80 = cs.params_draws[cs.curve_label.index("ncd_lri 80plus"), :, 0]
    np.testing.assert_allclose((th - 0.1585) / 0.01477, (th80 - 0.1141) / 0.01071, rtol=1e-9)  # float rounding


def test_loglinear_benmap_form():
    """BenMAP GBDRollbackKrewskiFunction: RR = exp(beta * dC), beta = ln(1.06)/10."""
    beta = 0.005826891
    out = np.empty((3, 1))
    k.loglinear_rr(np.array([0.0, 10.0, 100.0]), np.array([beta]), 0.0, out)
    assert out[1, 0] == pytest.approx(1.06, rel=1e-7)  # ln(1.06)/10 x 10 -> RR 1.06 per 10 ug m-3
    assert out[2, 0] == pytest.approx(1.06 ** 10, rel=1e-6)
    assert out[0, 0] == 1.0


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["ier2010", "gemm_ncd_lri", "gemm_5cod", "loglinear_krewski2009"]),
       st.lists(st.floats(0, 1000, allow_nan=False), min_size=2, max_size=30))
def test_rr_properties(crf, conc):
    """RR = 1 at or below the counterfactual; RR non-decreasing in concentration (central and
    every IER draw; GEMM and log-linear draws with a positive coefficient)."""
    z = np.sort(np.asarray(conc))
    ds = relative_risk(z, crf, draws=30, seed=1)
    cs = curve_set(crf, draws=30, seed=1)
    rr = ds.rr.values
    zcf = cs.params_draws[:, :, 3 if cs.model == 0 else (4 if cs.model == 1 else 1)]
    below = z[:, None, None] <= zcf[None]
    assert np.all(rr[below] == 1.0)
    assert np.all(rr >= 1.0 - 1e-15) or cs.model != 0
    ok = (cs.params_draws[:, :, 0] > 0)[None].repeat(z.size - 1, 0)
    assert np.all((np.diff(rr, axis=0) >= -1e-12)[ok])
    assert np.all(np.diff(ds.rr_central.values, axis=0) >= -1e-12)


def _user_reference(form, z, beta, zcf):
    """Plain-Python BenMAP forms: (RR or None, attributable fraction)."""
    if form == k.FORM_LOGLINEAR:
        rr = math.exp(beta * max(0.0, z - zcf))
    elif form == k.FORM_LOGLOG:
        rr = (max(z, zcf) / zcf) ** beta
    else:
        return None, beta * max(0.0, z - zcf)
    return rr, 1.0 - 1.0 / rr


@pytest.mark.parametrize("form", [k.FORM_LOGLINEAR, k.FORM_LOGLOG, k.FORM_LINEAR])
def test_user_model_kernels_match_plain_formulas(form):
    rng = np.random.default_rng(3)
    conc = np.array([0.0, 2.0, 5.0, 17.5, 80.0, 300.0])
    zcf = 5.0 if form == k.FORM_LOGLOG else 2.4
    beta = rng.uniform(1e-4, 0.02, 7) if form != k.FORM_LINEAR else rng.uniform(1e-6, 1e-4, 7)
    params = np.zeros((1, beta.size, k.N_PARAMS))
    params[0, :, 0], params[0, :, 1], params[0, :, 2] = beta, zcf, float(form)
    frac = np.empty((conc.size, 1, beta.size))
    k.fractions_over_draws(k.MODEL_USER, conc, params, frac)
    rr = np.empty((conc.size, 1, beta.size))
    k.relative_risk(k.MODEL_USER, conc, params, rr)
    zs = conc * 0.7
    w = np.full((conc.size, 1), 1000.0)
    outs = [np.empty((conc.size, 1, beta.size)) for _ in range(3)]
    fsum = np.empty((conc.size, 1, 3))
    k.impact_over_draws(k.MODEL_USER, conc, zs, params, w, np.zeros(1, np.int64), True, *outs, fsum, True)
    for i, z in enumerate(conc):
        for d, b in enumerate(beta):
            want_rr, want_f = _user_reference(form, z, b, zcf)
            assert frac[i, 0, d] == pytest.approx(want_f, rel=1e-12, abs=1e-15)
            if want_rr is None:
                assert math.isnan(rr[i, 0, d])
                _, fs = _user_reference(form, zs[i], b, zcf)
                assert outs[2][i, 0, d] == pytest.approx(1000.0 * (want_f - fs), rel=1e-12, abs=1e-12)
            else:
                assert rr[i, 0, d] == pytest.approx(want_rr, rel=1e-12)
                rs, _ = _user_reference(form, zs[i], b, zcf)
                assert outs[2][i, 0, d] == pytest.approx(1000.0 * (1.0 - rs / want_rr), rel=1e-12, abs=1e-12)

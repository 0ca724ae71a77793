"""kernels.similarity: psi_m against hand-evaluated values, its numpy form, and its limits."""

import math

import numpy as np
import pytest

from kernels.similarity import psi_m, psi_m_stable_np, psi_m_unstable_np


def test_psi_m_hand_values():
    # zeta = -1: x = 17^(1/4); psi = 2 ln((1+x)/2) + ln((1+x^2)/2) - 2 atan(x) + pi/2 (Paulson 1970)
    x = 17.0 ** 0.25
    hand = 2 * math.log((1 + x) / 2) + math.log((1 + x * x) / 2) - 2 * math.atan(x) + math.pi / 2
    assert psi_m(-1.0) == pytest.approx(hand, rel=1e-15)
    # by hand: x = 2.030543; 2 ln(1.5152715) = 0.831188; ln(2.5615528) = 0.940614;
    # 2 atan(2.030543) = 2.226366; pi/2 = 1.570796 -> 1.116232
    assert psi_m(-1.0) == pytest.approx(1.116232, abs=2e-6)
    # zeta = 1: -17 (1 - e^-0.29) = -17 x (1 - 0.748264) = -4.279519 (van Ulden & Holtslag 1985)
    assert psi_m(1.0) == pytest.approx(-17.0 * (1.0 - math.exp(-0.29)), rel=1e-15)
    assert psi_m(1.0) == pytest.approx(-4.279519, abs=2e-6)


def test_psi_m_neutral_limit_and_nan():
    assert psi_m(0.0) == 0.0
    assert abs(psi_m(-1e-9)) < 1e-7 and abs(psi_m(1e-9)) < 1e-7  # continuous through neutral
    assert math.isnan(psi_m(math.nan))


def test_compiled_equals_math_expression_and_numpy_form_agrees():
    # a Python caller of the compiled psi_m gets exactly the math-module expression (the Golder
    # climatology relied on that before psi_m moved here); the vectorised numpy forms the
    # AERMET-way met code uses agree to rounding (numpy's SIMD log/atan may differ from libm by 1 ulp)
    def math_expr(z):
        if z < 0.0:
            x = (1.0 - 16.0 * z) ** 0.25
            return 2.0 * math.log((1.0 + x) / 2.0) + math.log((1.0 + x * x) / 2.0) - 2.0 * math.atan(x) + math.pi / 2.0
        return -17.0 * (1.0 - math.exp(-0.29 * z))

    rng = np.random.default_rng(7)
    neg = -(10.0 ** rng.uniform(-5, 3, 500))
    pos = 10.0 ** rng.uniform(-5, 3, 500)
    assert all(psi_m(z) == math_expr(z) for z in np.concatenate([neg, pos]))
    np.testing.assert_allclose(psi_m_unstable_np(neg), [psi_m(z) for z in neg], rtol=1e-12, atol=1e-14)  # 1 - e^-x cancels near neutral
    np.testing.assert_allclose(psi_m_stable_np(pos), [psi_m(z) for z in pos], rtol=1e-12, atol=1e-14)  # 1 - e^-x cancels near neutral

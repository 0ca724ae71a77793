"""Slope of the attributable fraction with concentration: d(1 - 1/RR)/dz for every model of
:mod:`kernels.crf`, summed over curves with the deaths weights.

Pure numba (STYLE 1): float64 arrays in, preallocated ``out`` written, no validation. Same
packed parameters as :mod:`kernels.crf` (``(n_curve, n_draw, N_PARAMS)``).

With :math:`PAF = 1 - 1/RR`, :math:`PAF' = RR'/RR^2`. Below the counterfactual
(:math:`x = z - z_{cf} \\le 0`) every function is flat (RR = 1 or PAF = 0), so the slope is 0
there: the left derivative at the kink.

IER (Burnett et al. 2014, eq. 1), :math:`RR = 1 + \\alpha (1 - e^{-\\gamma x^{\\delta}})`:

.. math:: RR' = \\alpha \\gamma \\delta x^{\\delta - 1} e^{-\\gamma x^{\\delta}}

GEMM (Burnett et al. 2018, eq. 1), :math:`RR = e^{\\theta g(x)}`,
:math:`g = \\ln(1 + x/\\alpha)\\, L`, :math:`L = 1/(1 + e^{-(x - \\mu)/\\nu})`:

.. math:: PAF' = \\theta g'(x) / RR, \\qquad g' = \\frac{L}{\\alpha + x} + \\ln(1 + x/\\alpha) \\frac{L (1 - L)}{\\nu}

Log-linear, :math:`RR = e^{\\beta x}`: :math:`PAF' = \\beta e^{-\\beta x}`. User log-log,
:math:`RR = (z/z_{cf})^{\\beta}`: :math:`PAF' = \\beta (z/z_{cf})^{-\\beta} / z`. User linear
(attributable rate :math:`\\beta x`): :math:`\\beta`.
"""

import math

from numba import njit, prange

from kernels import FASTMATH

__all__ = ["fraction_slope", "weighted_fraction_slope"]

_JIT = dict(nogil=True, cache=True, fastmath=FASTMATH)


@njit(inline="always", **_JIT)
def _slope(model, z, p):
    if model == 0:  # IER: alpha, gamma, delta, zcf
        x = z - p[3]
        if x <= 0.0:
            return 0.0
        alpha, gamma, delta = p[0], p[1], p[2]
        xd = math.exp(delta * math.log(x))  # x^delta, x > 0
        e = math.exp(-gamma * xd)
        rr = 1.0 + alpha * (1.0 - e)
        # x^(delta - 1) written as x^delta / x
        return alpha * gamma * delta * (xd / x) * e / (rr * rr)
    if model == 1:  # GEMM: theta, alpha, mu, nu, zcf
        x = z - p[4]
        if x <= 0.0:
            return 0.0
        theta, alpha, mu, nu = p[0], p[1], p[2], p[3]
        lg = math.log1p(x / alpha)
        L = 1.0 / (1.0 + math.exp(-(x - mu) / nu))
        g = lg * L
        dg = L / (alpha + x) + lg * L * (1.0 - L) / nu
        # PAF = 1 - exp(-theta g): PAF' = theta g' exp(-theta g)
        return theta * dg * math.exp(-theta * g)
    if model == 3:  # user: beta, zcf, form
        beta, zcf, form = p[0], p[1], p[2]
        if form == 1.0:  # log-log
            if z <= zcf:
                return 0.0
            return beta * math.exp(-beta * math.log(z / zcf)) / z
        x = z - zcf
        if x <= 0.0:
            return 0.0
        if form == 2.0:  # linear rate beta x
            return beta
        return beta * math.exp(-beta * x)
    # log-linear: beta, zcf
    x = z - p[1]
    if x <= 0.0:
        return 0.0
    return p[0] * math.exp(-p[0] * x)


@njit(parallel=True, **_JIT)
def fraction_slope(model, concentration, params, out):
    """d PAF / dz for every region, curve and draw.

    Parameters
    ----------
    model : int (kernels.crf.MODEL_*)
    concentration : (n_region,) float64 [ug m-3]
    params : (n_curve, n_draw, N_PARAMS) float64
    out : (n_region, n_curve, n_draw) float64, written [(ug m-3)-1]
    """
    n_curve, n_draw = params.shape[0], params.shape[1]
    for r in prange(concentration.shape[0]):
        z = concentration[r]
        for k in range(n_curve):
            for d in range(n_draw):
                out[r, k, d] = _slope(model, z, params[k, d])


@njit(parallel=True, **_JIT)
def weighted_fraction_slope(model, concentration, params, weight, out):
    """Slope of the attributable deaths of every region per draw: sum over curves.

    .. math:: G_{r,d} = \\sum_k W_{r,k}\\, PAF'_{k,d}(z_r)

    Parameters
    ----------
    model : int
    concentration : (n_region,) float64 [ug m-3]
    params : (n_curve, n_draw, N_PARAMS) float64
    weight : (n_region, n_curve) float64 [deaths yr-1]
    out : (n_region, n_draw) float64, written [deaths yr-1 (ug m-3)-1]
    """
    n_curve, n_draw = params.shape[0], params.shape[1]
    for r in prange(concentration.shape[0]):
        z = concentration[r]
        for d in range(n_draw):
            acc = 0.0
            for k in range(n_curve):
                w = weight[r, k]
                if w != 0.0:
                    acc += w * _slope(model, z, params[k, d])
            out[r, d] = acc

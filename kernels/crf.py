"""Concentration-response kernels: relative risk (RR) of PM2.5 exposure over parameter draws.

Pure numba: float64 arrays in, preallocated ``out`` arrays written, no validation (that lives in
:mod:`engine.health.impact`). Concentrations are annual means in ug m-3 (the unit every published
concentration-response function is fitted in); RRs are dimensionless.

Models (``model`` codes, parameters packed in the last axis of a ``(n_curve, n_draw, 5)`` array):

================  ====  ============================================================
model             code  parameters ``p[0..4]``
================  ====  ============================================================
IER (GBD 2010)    0     alpha [1], gamma [(ug m-3)^-delta], delta [1], zcf [ug m-3], -
GEMM (2018)       1     theta [1], alpha [ug m-3], mu [ug m-3], nu [ug m-3], zcf [ug m-3]
log-linear        2     beta [(ug m-3)^-1], zcf [ug m-3], -, -, -
user (BenMAP)     3     beta, zcf [ug m-3], form (0 log-linear, 1 log-log, 2 linear), -, -
================  ====  ============================================================

Equations
---------
IER, Burnett et al. 2014 (EHP 122:397, eq. 1), evaluated per draw with the draw's own zcf:

.. math:: RR = 1 + \\alpha\\,(1 - e^{-\\gamma (z - z_{cf})^{\\delta}})\\ (z > z_{cf}),\\quad RR = 1\\ \\text{else}

GEMM, Burnett et al. 2018 (PNAS 115:9592, eq. 1), :math:`x = \\max(0, z - z_{cf})`:

.. math:: RR = \\exp\\left(\\theta \\frac{\\ln(1 + x/\\alpha)}{1 + e^{-(x - \\mu)/\\nu}}\\right)

Log-linear (Krewski et al. 2009; BenMAP form): :math:`RR = e^{\\beta \\max(0, z - z_{cf})}`.

User functions (BenMAP-CE function forms; U.S. EPA 2015, BenMAP-CE user manual appendix J,
"Y0 (1 - exp(-beta dQ)) Pop", "Y0 (1 - (Qc/Qb)^beta) Pop", "beta dQ Pop"):

* log-linear: :math:`RR = e^{\\beta x}`, :math:`x = \\max(0, z - z_{cf})` [beta in (ug m-3)^-1];
* log-log: :math:`RR = (\\max(z, z_{cf}) / z_{cf})^{\\beta}`, z_cf > 0 [beta dimensionless];
* linear: no relative risk; the attributable *rate* is :math:`\\beta x` [beta in deaths
  person-1 yr-1 (ug m-3)^-1], applied to population alone (baseline rate 1).

The attributable fraction of deaths is :math:`PAF = 1 - 1/RR` (linear: :math:`\\beta x`).
"""

import math

from numba import njit, prange

from kernels import FASTMATH

__all__ = [
    "MODEL_IER", "MODEL_GEMM", "MODEL_LOGLINEAR", "MODEL_USER", "FORM_LOGLINEAR", "FORM_LOGLOG",
    "FORM_LINEAR", "N_PARAMS",
    "ier_rr", "gemm_rr", "loglinear_rr", "relative_risk",
    "impact_over_draws", "fractions_over_draws", "rr_one", "paf_one", "is_linear_one",
]

MODEL_IER = 0
MODEL_GEMM = 1
MODEL_LOGLINEAR = 2
MODEL_USER = 3
#: function forms of MODEL_USER (params[..., 2])
FORM_LOGLINEAR = 0
FORM_LOGLOG = 1
FORM_LINEAR = 2
#: length of the packed parameter axis
N_PARAMS = 5

_JIT = dict(nogil=True, cache=True, fastmath=FASTMATH)  # njit = nopython


@njit(inline="always", **_JIT)
def _ier(z, alpha, gamma, delta, zcf):
    if z <= zcf:
        return 1.0
    # (z - zcf)^delta written as exp(delta * ln(z - zcf)); z - zcf > 0 here
    return 1.0 + alpha * (1.0 - math.exp(-gamma * math.exp(delta * math.log(z - zcf))))


@njit(inline="always", **_JIT)
def _gemm(z, theta, alpha, mu, nu, zcf):
    x = z - zcf
    if x < 0.0:
        x = 0.0
    return math.exp(theta * math.log1p(x / alpha) / (1.0 + math.exp(-(x - mu) / nu)))


@njit(inline="always", **_JIT)
def _loglinear(z, beta, zcf):
    x = z - zcf
    if x < 0.0:
        x = 0.0
    return math.exp(beta * x)


@njit(inline="always", **_JIT)
def _user_rr(z, beta, zcf, form):
    if form == 1.0:  # log-log: (max(z, zcf)/zcf)^beta written as exp(beta ln(.)); zcf > 0
        if z <= zcf:
            return 1.0
        return math.exp(beta * math.log(z / zcf))
    x = z - zcf
    if x < 0.0:
        x = 0.0
    if form == 2.0:  # linear: no relative risk (see _linear_fraction)
        return math.nan
    return math.exp(beta * x)


@njit(inline="always", **_JIT)
def _rr(model, z, p):
    if model == 0:
        return _ier(z, p[0], p[1], p[2], p[3])
    elif model == 1:
        return _gemm(z, p[0], p[1], p[2], p[3], p[4])
    elif model == 3:
        return _user_rr(z, p[0], p[1], p[2])
    return _loglinear(z, p[0], p[1])


@njit(inline="always", **_JIT)
def _is_linear(model, p):
    return model == 3 and p[2] == 2.0


@njit(inline="always", **_JIT)
def _linear_fraction(z, beta, zcf):
    x = z - zcf
    if x < 0.0:
        x = 0.0
    return beta * x


@njit(inline="always", **_JIT)
def rr_one(model, z, p):
    """RR [1] of one curve at one draw (``p``: its packed parameters) at concentration ``z``
    [ug m-3]; NaN for the linear user form (which has no relative risk: :func:`paf_one`)."""
    return _rr(model, z, p)


@njit(inline="always", **_JIT)
def paf_one(model, z, p):
    """Attributable fraction PAF = 1 - 1/RR [1] of one curve at one draw at ``z`` [ug m-3]
    (the linear user form: the attributable rate beta max(0, z - zcf))."""
    if _is_linear(model, p):
        return _linear_fraction(z, p[0], p[1])
    return 1.0 - 1.0 / _rr(model, z, p)


@njit(inline="always", **_JIT)
def is_linear_one(model, p):
    """Whether a curve's packed parameters are the linear user form (no relative risk)."""
    return _is_linear(model, p)


@njit(parallel=True, **_JIT)
def ier_rr(concentration, alpha, gamma, delta, zcf, out):
    """IER relative risk for every concentration and draw.

    Parameters
    ----------
    concentration : (n_conc,) float64 [ug m-3]
    alpha, gamma, delta, zcf : (n_draw,) float64
        IER parameters per draw (Burnett's notation; ``zcf`` in ug m-3).
    out : (n_conc, n_draw) float64
        Written with RR [1].
    """
    for i in prange(concentration.shape[0]):
        z = concentration[i]
        for d in range(alpha.shape[0]):
            out[i, d] = _ier(z, alpha[d], gamma[d], delta[d], zcf[d])


@njit(parallel=True, **_JIT)
def gemm_rr(concentration, theta, alpha, mu, nu, zcf, out):
    """GEMM hazard ratio for every concentration and draw (``theta`` per draw, others scalar).

    Parameters
    ----------
    concentration : (n_conc,) float64 [ug m-3]
    theta : (n_draw,) float64 [1]
    alpha, mu, nu, zcf : float [ug m-3]
    out : (n_conc, n_draw) float64, written with RR [1]
    """
    for i in prange(concentration.shape[0]):
        z = concentration[i]
        for d in range(theta.shape[0]):
            out[i, d] = _gemm(z, theta[d], alpha, mu, nu, zcf)


@njit(parallel=True, **_JIT)
def loglinear_rr(concentration, beta, zcf, out):
    """Log-linear RR :math:`e^{\\beta\\max(0, z - z_{cf})}` for every concentration and draw.

    Parameters
    ----------
    concentration : (n_conc,) float64 [ug m-3]
    beta : (n_draw,) float64 [(ug m-3)^-1]
    zcf : float [ug m-3]
    out : (n_conc, n_draw) float64, written with RR [1]
    """
    for i in prange(concentration.shape[0]):
        z = concentration[i]
        for d in range(beta.shape[0]):
            out[i, d] = _loglinear(z, beta[d], zcf)


@njit(parallel=True, **_JIT)
def relative_risk(model, concentration, params, out):
    """RR of a packed-parameter model for every concentration, curve and draw.

    Parameters
    ----------
    model : int (MODEL_IER, MODEL_GEMM, MODEL_LOGLINEAR or MODEL_USER)
    concentration : (n_conc,) float64 [ug m-3]
    params : (n_curve, n_draw, N_PARAMS) float64
    out : (n_conc, n_curve, n_draw) float64, written with RR [1] (NaN for the linear user form)
    """
    n_curve, n_draw = params.shape[0], params.shape[1]
    for i in prange(concentration.shape[0]):
        z = concentration[i]
        for k in range(n_curve):
            for d in range(n_draw):
                out[i, k, d] = _rr(model, z, params[k, d])


@njit(parallel=True, **_JIT)
def impact_over_draws(model, conc_base, conc_scenario, params, weight, curve_cause, pif,
                      deaths_base, deaths_scenario, avoided, fraction_sum, has_scenario=True):
    """Attributable and avoided deaths per region, cause and draw, in one pass.

    For every region r, curve k and draw d (one RR curve serves one cause and one or more age
    groups; ``weight[r, k]`` = sum over those age groups of population x baseline rate):

    .. math::
        D_{r,c,d} = \\sum_{k: c(k) = c} W_{r,k} (1 - 1/RR_k(z_r, d))

    and the avoided deaths between ``conc_base`` and ``conc_scenario`` by subtraction,
    :math:`W (1/RR_s - 1/RR_b)`, or as a potential impact fraction, :math:`W (1 - RR_s/RR_b)`.
    The same draw index d is used for every region.

    Parameters
    ----------
    model : int
    conc_base, conc_scenario : (n_region,) float64 [ug m-3]
    params : (n_curve, n_draw, N_PARAMS) float64
    weight : (n_region, n_curve) float64 [deaths yr-1]
        Population x baseline death rate summed over the age groups the curve applies to.
    curve_cause : (n_curve,) int64
        Index of the cause each curve contributes to (0 .. n_cause-1).
    pif : bool
        Avoided deaths as potential impact fraction instead of subtraction.
    deaths_base, deaths_scenario, avoided : (n_region, n_cause, n_draw) float64
        Written [deaths yr-1].
    fraction_sum : (n_region, n_curve, 3) float64
        Written: sums over draws of PAF(base), PAF(scenario) and the avoided fraction (linear
        user form: the attributable rates beta x and their difference), for
        age-resolved means (divide by n_draw).
    has_scenario : bool
        False: ``conc_scenario`` is ignored and taken equal to ``conc_base`` (half the work).
    """
    n_region = conc_base.shape[0]
    n_curve, n_draw = params.shape[0], params.shape[1]
    n_cause = deaths_base.shape[1]
    for r in prange(n_region):
        for c in range(n_cause):
            for d in range(n_draw):
                deaths_base[r, c, d] = 0.0
                deaths_scenario[r, c, d] = 0.0
                avoided[r, c, d] = 0.0
        zb = conc_base[r]
        zs = conc_scenario[r]
        for k in range(n_curve):
            c = curve_cause[k]
            w = weight[r, k]
            sb = 0.0
            ss = 0.0
            sa = 0.0
            for d in range(n_draw):
                if _is_linear(model, params[k, d]):
                    # linear form: attributable rate beta x; avoided = difference (pif has no meaning)
                    fb = _linear_fraction(zb, params[k, d, 0], params[k, d, 1])
                    fs = _linear_fraction(zs, params[k, d, 0], params[k, d, 1]) if has_scenario else fb
                    deaths_base[r, c, d] += w * fb
                    deaths_scenario[r, c, d] += w * fs
                    avoided[r, c, d] += w * (fb - fs)
                    sb += fb
                    ss += fs
                    sa += fb - fs
                    continue
                rb = _rr(model, zb, params[k, d])
                rs = _rr(model, zs, params[k, d]) if has_scenario else rb
                fb = 1.0 - 1.0 / rb
                fs = 1.0 - 1.0 / rs
                if pif:
                    # identity: 1 - RR_s/RR_b = (RR_b - RR_s)/RR_b, exactly 0 when RR_s == RR_b
                    fa = (rb - rs) / rb
                else:
                    fa = fb - fs  # identity: (1 - 1/RR_b) - (1 - 1/RR_s) = 1/RR_s - 1/RR_b
                deaths_base[r, c, d] += w * fb
                deaths_scenario[r, c, d] += w * fs
                avoided[r, c, d] += w * fa
                sb += fb
                ss += fs
                sa += fa
            fraction_sum[r, k, 0] = sb
            fraction_sum[r, k, 1] = ss
            fraction_sum[r, k, 2] = sa


@njit(parallel=True, **_JIT)
def fractions_over_draws(model, concentration, params, out):
    """Attributable fraction PAF = 1 - 1/RR for every region, curve and draw.

    Parameters
    ----------
    model : int
    concentration : (n_region,) float64 [ug m-3]
    params : (n_curve, n_draw, N_PARAMS) float64
    out : (n_region, n_curve, n_draw) float64, written [1]
    """
    n_curve, n_draw = params.shape[0], params.shape[1]
    for r in prange(concentration.shape[0]):
        z = concentration[r]
        for k in range(n_curve):
            for d in range(n_draw):
                if _is_linear(model, params[k, d]):
                    out[r, k, d] = _linear_fraction(z, params[k, d, 0], params[k, d, 1])
                else:
                    out[r, k, d] = 1.0 - 1.0 / _rr(model, z, params[k, d])


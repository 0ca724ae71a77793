"""National deaths avoided by many exposure changes at once, skipping the unchanged regions.

Pure numba (STYLE 1): float64 arrays in, preallocated ``out`` written, no validation. The
relative-risk models are :mod:`kernels.crf`'s (``rr_one``, ``paf_one``, same packed parameters). For sample i,

.. math:: A_i = \\sum_r \\sum_k W_{r,k} \\overline{\\left(\\frac{1}{RR_k(z^s_{i,r})} - \\frac{1}{RR_k(z^b_r)}\\right)}

by subtraction, or :math:`1 - RR_s/RR_b` as a potential impact fraction, the bar being the mean
over the draws given (one draw: the central curve). A region whose exposure is unchanged
(:math:`z^s_{i,r} = z^b_r` exactly) adds exactly 0 in both forms, so it is skipped: a single
city's action changes the exposure of a fraction of the cities. Same numbers as
:func:`kernels.sweep.impact_per_sample`'s avoided deaths summed over regions (tested).
"""

from numba import njit, prange

from kernels import FASTMATH
from kernels.crf import is_linear_one, paf_one, rr_one

__all__ = ["avoided_per_sample"]

_JIT = dict(nogil=True, cache=True, fastmath=FASTMATH)


@njit(parallel=True, **_JIT)
def avoided_per_sample(model, conc_base, conc_scenario, params, weight, pif, out):
    """Deaths avoided, summed over regions, for every sample.

    Parameters
    ----------
    model : int (kernels.crf.MODEL_*)
    conc_base : (n_region,) float64 [ug m-3]
    conc_scenario : (n_sample, n_region) float64 [ug m-3]
    params : (n_curve, n_draw, N_PARAMS) float64 (averaged over the n_draw draws)
    weight : (n_region, n_curve) float64 [deaths yr-1]
    pif : bool
    out : (n_sample,) float64, written [deaths yr-1]
    """
    n_sample, n_region = conc_scenario.shape
    n_curve, n_draw = params.shape[0], params.shape[1]
    for i in prange(n_sample):
        acc = 0.0
        for r in range(n_region):
            zb = conc_base[r]
            zs = conc_scenario[i, r]
            if zs == zb:
                continue
            for k in range(n_curve):
                w = weight[r, k]
                if w == 0.0:
                    continue
                s = 0.0
                for d in range(n_draw):
                    p = params[k, d]
                    if pif and not is_linear_one(model, p):
                        rb = rr_one(model, zb, p)
                        s += (rb - rr_one(model, zs, p)) / rb  # identity: 1 - RR_s/RR_b
                    else:
                        # PAF_b - PAF_s (= 1/RR_s - 1/RR_b; the linear form: the rates' difference)
                        s += paf_one(model, zb, p) - paf_one(model, zs, p)
                acc += w * (s / n_draw)
        out[i] = acc

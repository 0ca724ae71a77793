"""Health kernel of a sensitivity sweep: attributable and avoided deaths per sample and region.

Pure numba (STYLE 1): float64 arrays in, preallocated ``out`` arrays written, no validation
(that lives in :mod:`engine.sensitivity.sweep`). The relative-risk models are those of :mod:`kernels.crf`
(``_rr``: IER, GEMM, log-linear, same packed parameters), evaluated here for many samples at
once, each sample with its own exposure vector, parameter draw and baseline-rate scale.
"""

from numba import njit, prange

from kernels import FASTMATH
from kernels.crf import _rr

__all__ = ["impact_per_sample"]

_JIT = dict(nogil=True, cache=True, fastmath=FASTMATH)


@njit(parallel=True, **_JIT)
def impact_per_sample(model, conc_base, conc_scenario, params, draw, weight, scale, pif,
                      deaths_base, deaths_scenario, avoided):
    """All-cause deaths (base, scenario) and avoided deaths for every sample and region.

    For sample i, region r and the curves k of the function (one curve serves one cause and one
    or more age groups; ``weight[r, k]`` = population x baseline rate summed over those ages):

    .. math::
        D_{i,r} = s_i \\sum_k W_{r,k}\\, \\overline{(1 - 1/RR_k(z_{i,r}))}

    where the bar is the value at draw ``draw[i]``, or the mean over all draws when
    ``draw[i] < 0`` (what a national run reports as ``*_mean``). Avoided deaths by subtraction,
    :math:`1/RR_s - 1/RR_b`, or as the potential impact fraction :math:`1 - RR_s/RR_b`
    (Burnett et al. 2014; see :func:`kernels.crf.impact_over_draws`).

    Parameters
    ----------
    model : int (kernels.crf.MODEL_*)
    conc_base, conc_scenario : (n_sample, n_region) float64 [ug m-3]
    params : (n_curve, n_draw, N_PARAMS) float64
    draw : (n_sample,) int64
        Draw index per sample, or -1 for the mean over draws.
    weight : (n_region, n_curve) float64 [deaths yr-1]
    scale : (n_sample,) float64 [1]
        Baseline-rate multiplier per sample (deaths are linear in the baseline rate).
    pif : bool
    deaths_base, deaths_scenario, avoided : (n_sample, n_region) float64, written [deaths yr-1]
    """
    n_sample, n_region = conc_base.shape
    n_curve, n_draw = params.shape[0], params.shape[1]
    for i in prange(n_sample):
        d0 = draw[i]
        for r in range(n_region):
            zb = conc_base[i, r]
            zs = conc_scenario[i, r]
            sb = 0.0
            ss = 0.0
            sa = 0.0
            for k in range(n_curve):
                w = weight[r, k]
                if w == 0.0:
                    continue
                fb_sum = 0.0
                fs_sum = 0.0
                fa_sum = 0.0
                lo = d0 if d0 >= 0 else 0
                hi = d0 + 1 if d0 >= 0 else n_draw
                for d in range(lo, hi):
                    rb = _rr(model, zb, params[k, d])
                    rs = _rr(model, zs, params[k, d])
                    fb = 1.0 - 1.0 / rb
                    fs = 1.0 - 1.0 / rs
                    if pif:
                        fa = (rb - rs) / rb  # identity: 1 - RR_s/RR_b
                    else:
                        fa = fb - fs  # identity: 1/RR_s - 1/RR_b
                    fb_sum += fb
                    fs_sum += fs
                    fa_sum += fa
                nd = hi - lo
                sb += w * (fb_sum / nd)
                ss += w * (fs_sum / nd)
                sa += w * (fa_sum / nd)
            deaths_base[i, r] = scale[i] * sb
            deaths_scenario[i, r] = scale[i] * ss
            avoided[i, r] = scale[i] * sa

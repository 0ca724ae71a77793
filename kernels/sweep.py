"""Health kernels of a sensitivity sweep: attributable and avoided deaths per sample and region.

Pure numba: float64 arrays in, preallocated ``out`` arrays written, no validation (that lives in
:mod:`engine.health.expected` and :mod:`engine.sampled`). The relative-risk models are those of
:mod:`kernels.crf` (IER, GEMM, log-linear, user forms; the same packed parameters), evaluated for
many samples at once, each sample with its own exposure vector.

Two ways to the deaths of a sample:

* one parameter draw per sample (:func:`impact_per_sample` with ``draw[i] >= 0``), or the direct
  mean over every draw (``draw[i] < 0``; needed for the potential impact fraction);
* the mean over draws from a table tabulated once (:func:`mean_fraction_over_draws` at the nodes,
  :func:`deaths_from_table` per sample): the cost of one curve per region instead of one per
  draw (:mod:`engine.health.expected` states the table and its accuracy).
"""

import math

from numba import njit, prange

from kernels import FASTMATH
from kernels.crf import is_linear_one, paf_one, rr_one

__all__ = ["impact_per_sample", "mean_fraction_over_draws", "far_mean_fractions", "deaths_from_table", "node_position"]

_JIT = dict(nogil=True, cache=True, fastmath=FASTMATH)


@njit(parallel=True, **_JIT)
def impact_per_sample(model, conc_base, conc_scenario, params, draw, weight, scale, pif,
                      deaths_base, deaths_scenario, avoided):
    """All-cause deaths (base, scenario) and avoided deaths for every sample and region.

    For sample i, region r and the curves k of the function (one curve serves one cause and one
    or more age groups; ``weight[r, k]`` = population x baseline rate summed over those ages):

    .. math::
        D_{i,r} = s_i \\sum_k W_{r,k}\\, \\overline{PAF_k(z_{i,r})}

    where the bar is the value at draw ``draw[i]``, or the mean over all draws when
    ``draw[i] < 0``; :math:`PAF = 1 - 1/RR` (the linear user form: the attributable rate).
    Avoided deaths by subtraction, :math:`1/RR_s - 1/RR_b`, or as the potential impact fraction
    :math:`1 - RR_s/RR_b` (Burnett et al. 2014; as :func:`kernels.crf.impact_over_draws`; the
    linear form subtracts).

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
        lo = d0 if d0 >= 0 else 0
        hi = d0 + 1 if d0 >= 0 else n_draw
        nd = hi - lo
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
                for d in range(lo, hi):
                    p = params[k, d]
                    if pif and not is_linear_one(model, p):
                        rb = rr_one(model, zb, p)
                        rs = rr_one(model, zs, p)
                        fb = 1.0 - 1.0 / rb
                        fs = 1.0 - 1.0 / rs
                        fa = (rb - rs) / rb  # identity: 1 - RR_s/RR_b
                    else:
                        fb = paf_one(model, zb, p)
                        fs = paf_one(model, zs, p)
                        fa = fb - fs  # identity: 1/RR_s - 1/RR_b
                    fb_sum += fb
                    fs_sum += fs
                    fa_sum += fa
                sb += w * (fb_sum / nd)
                ss += w * (fs_sum / nd)
                sa += w * (fa_sum / nd)
            deaths_base[i, r] = scale[i] * sb
            deaths_scenario[i, r] = scale[i] * ss
            avoided[i, r] = scale[i] * sa


@njit(parallel=True, **_JIT)
def mean_fraction_over_draws(model, conc, params, out):
    """Mean over draws of the attributable fraction of every curve at every concentration.

    Parameters
    ----------
    model : int
    conc : (n_conc,) float64 [ug m-3]
    params : (n_curve, n_draw, N_PARAMS) float64
    out : (n_curve, n_conc) float64, written: :math:`\\frac{1}{n_d}\\sum_d PAF_{k,d}(z_j)` [1]
    """
    n_curve, n_draw = params.shape[0], params.shape[1]
    for j in prange(conc.shape[0]):
        z = conc[j]
        for k in range(n_curve):
            s = 0.0
            for d in range(n_draw):
                s += paf_one(model, z, params[k, d])
            out[k, j] = s / n_draw


@njit(inline="always", **_JIT)
def node_position(z, z_tab, z0, du):
    """Position of ``z`` [ug m-3] on the table's node axis: nodes at
    :math:`z_j = z_{tab} + z_0 (e^{j\\,du} - 1)`, so the position is
    :math:`\\ln(1 + (z - z_{tab})/z_0)/du` (fractional)."""
    return math.log1p((z - z_tab) / z0) / du


@njit(inline="always", **_JIT)
def _direct(model, z, params, weight, r):
    n_curve, n_draw = params.shape[0], params.shape[1]
    s = 0.0
    for k in range(n_curve):
        w = weight[r, k]
        if w == 0.0:
            continue
        f = 0.0
        for d in range(n_draw):
            f += paf_one(model, z, params[k, d])
        s += w * (f / n_draw)
    return s


@njit(inline="always", **_JIT)
def _cubic(t, row, first, n):
    """Cubic Lagrange interpolation at fractional position ``t`` on nodes ``row[first:first + n]``
    (unit spacing), through the four nodes nearest ``t``."""
    j = int(math.floor(t))
    m = j - 1
    if m < 0:
        m = 0
    if m > n - 4:
        m = n - 4
    x = t - m  # nodes at 0, 1, 2, 3
    l0 = -(x - 1.0) * (x - 2.0) * (x - 3.0) / 6.0
    l1 = x * (x - 2.0) * (x - 3.0) / 2.0
    l2 = -x * (x - 1.0) * (x - 3.0) / 2.0
    l3 = x * (x - 1.0) * (x - 2.0) / 6.0
    b = first + m
    return l0 * row[b] + l1 * row[b + 1] + l2 * row[b + 2] + l3 * row[b + 3]


@njit(parallel=True, **_JIT)
def far_mean_fractions(model, params_sorted, zcf_sorted, start, z_lo, width, n_sub, out):
    """Mean over draws of each curve's fraction from the draws whose counterfactual lies more
    than one bin below the bin, at the nodes of every bin of the kink zone.

    Bin b covers :math:`[z_{lo} + b w, z_{lo} + (b + 1) w)`; its nodes are
    :math:`z_{lo} + b w + j w / n_{sub}`, j = 0 .. n_sub; its *far* draws are those (in sorted
    order) before ``start[k, b]``, the first draw with :math:`z_{cf} \\ge z_{lo} + (b - 1) w`.

    Parameters
    ----------
    params_sorted : (n_curve, n_draw, N_PARAMS) float64, each curve's draws sorted by zcf
    zcf_sorted : (n_curve, n_draw) float64 [ug m-3]
    start : (n_curve, n_bin) int64
    z_lo, width : float [ug m-3]
    n_sub : int
    out : (n_curve, n_bin, n_sub + 1) float64, written [1] (divided by n_draw)
    """
    n_curve, n_draw = params_sorted.shape[0], params_sorted.shape[1]
    n_bin = start.shape[1]
    for b in prange(n_bin):
        for j in range(n_sub + 1):
            z = z_lo + b * width + j * width / n_sub
            for k in range(n_curve):
                s = 0.0
                for d in range(start[k, b]):
                    s += paf_one(model, z, params_sorted[k, d])
                out[k, b, j] = s / n_draw


@njit(parallel=True, **_JIT)
def deaths_from_table(conc, table, z_lo, z_tab, z0, du, kink_table, width, n_sub, params_sorted, zcf_sorted,
                      start, model, params, weight, out):
    """Mean over draws of the attributable deaths of every sample and region, from tables.

    * ``z <= z_lo`` (at or below every counterfactual): 0.
    * ``z_lo < z < z_tab`` (the kink zone, counterfactuals of the draws): the bin's table of the
      far draws (``kink_table[r, b, :]``, :func:`far_mean_fractions` weighted by region),
      cubic-interpolated, plus the near draws (counterfactual within one bin below ``z``'s bin,
      up to ``z``) taken directly; each far draw's counterfactual is at least one bin width
      below, where its curve is smooth on the bin's node spacing.
    * ``z >= z_tab``: ``table[r, j]`` holds :math:`\\sum_k W_{r,k} \\overline{PAF_k}(z_j)` at the
      nodes of :func:`node_position`, cubic-interpolated in the node variable, in which the
      curves are smooth; beyond the last node the mean is taken directly over the draws.

    Parameters
    ----------
    conc : (n_sample, n_region) float64 [ug m-3]
    table : (n_region, n_node) float64 [deaths yr-1]
    z_lo, z_tab, z0, du : float  [ug m-3], [ug m-3], [ug m-3], [1]
    kink_table : (n_region, n_bin, n_sub + 1) float64 [deaths yr-1]
    width : float [ug m-3]; n_sub : int
    params_sorted, zcf_sorted, start : as :func:`far_mean_fractions`
    model, params, weight : as :func:`impact_per_sample`
    out : (n_sample, n_region) float64, written [deaths yr-1]
    """
    n_sample, n_region = conc.shape
    n_node = table.shape[1]
    n_curve, n_draw = params_sorted.shape[0], params_sorted.shape[1]
    n_bin = kink_table.shape[1]
    for i in prange(n_sample):
        for r in range(n_region):
            z = conc[i, r]
            if z <= z_lo:
                out[i, r] = 0.0
            elif z < z_tab:
                b = int(math.floor((z - z_lo) / width))
                if b > n_bin - 1:
                    b = n_bin - 1
                far = _cubic((z - z_lo - b * width) * n_sub / width, kink_table[r, b], 0, n_sub + 1)
                near = 0.0
                for k in range(n_curve):
                    w = weight[r, k]
                    if w == 0.0:
                        continue
                    s = 0.0
                    for d in range(start[k, b], n_draw):
                        if zcf_sorted[k, d] >= z:
                            break
                        s += paf_one(model, z, params_sorted[k, d])
                    near += w * (s / n_draw)
                out[i, r] = far + near
            else:
                t = node_position(z, z_tab, z0, du)
                if t >= n_node - 1:
                    out[i, r] = _direct(model, z, params, weight, r)
                else:
                    out[i, r] = _cubic(t, table[r], 0, n_node)

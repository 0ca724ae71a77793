"""Cell and polygon integrals as sums of crosswind chords (adaptive Gauss-Kronrod in ln u).

:func:`cell_concentration` (a rectangle) and :func:`polygon_concentration` (any simple
polygon, convex or not): the area integral written as chords between breakpoints, each
integrated adaptively (G7K15) to ``KRONROD_RTOL``; the exact path of the national run. On the
AERMOD-table path (``cobenefits aermod``) the cell integral is AERMOD's own side-by-side
quadrature (:mod:`kernels.areain`). Part of the plume kernels (:mod:`kernels.plume`).
"""

import math

import numpy as np
from numba import njit

from kernels import FASTMATH
from kernels.xtable import GA_LIMIT, LATERAL_CDF_AERMOD_TABLE, LATERAL_CDF_EXACT, LN_FLOOR, _chord_fraction, _chord_fraction_table, _table_position, table_lookup
from kernels.edges import _integration_range
from kernels.areain import areain as _areain_impl

_JIT = dict(nogil=True, cache=True, fastmath=FASTMATH)


KRONROD_RTOL = 1e-5
#: the AERMOD-table path (``cobenefits aermod``) integrates to this relative tolerance: still
#: 100 times tighter than AERMOD's own Romberg tolerance (1 %, pitarea.f)
KRONROD_RTOL_AERMOD = 1e-4
KRONROD_ATOL_FACTOR = 1e-12  # absolute floor relative to the piece's |u g| scale
MAX_STACK = 96
#: rows of a work buffer ``np.empty((SCRATCH_ROWS, MAX_STACK))`` that lends :func:`cell_concentration`
#: its work arrays (rows 0-1: the adaptive quadrature's interval stack; row 2: vertices, breakpoints
#: and crossings); a two-row buffer still works, the arrays are then allocated per call
SCRATCH_ROWS = 3
FAR_RATIO = 3.0
FAR_SIGMA_RATIO = 0.5

# Gauss-Kronrod G7K15 nodes and weights (Piessens et al. 1983, QUADPACK qk15)
_XGK = np.array([0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
                 0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
                 0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
                 0.207784955007898467600689403773245, 0.0])
_WGK = np.array([0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
                 0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
                 0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
                 0.204432940075298892414161999234649, 0.209482141084727828012999174891714])
_WG = np.array([0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
                0.381830050505118944950369775488975, 0.417959183673469387755102040816327])
# 6-point Gauss-Legendre (far field)
_XGL6 = np.array([-0.932469514203152, -0.661209386466265, -0.238619186083197,
                  0.238619186083197, 0.661209386466265, 0.932469514203152])
_WGL6 = np.array([0.171324492379170, 0.360761573048139, 0.467913934572691,
                  0.467913934572691, 0.360761573048139, 0.171324492379170])

N_CROSS_SAMPLES = 4


@njit(**_JIT)
def _integrand(t, alo, slo, ahi, shi, lng, lnsy, cdf):
    """u g(u) [Phi(v_hi/sy) - Phi(v_lo/sy)] at u = exp(t) (dt = du/u).

    ``cdf`` selects Phi: ``LATERAL_CDF_EXACT`` or ``LATERAL_CDF_AERMOD_TABLE``.

    Within one piece the chord is bounded by two fixed edges: v_lo = alo + slo u,
    v_hi = ahi + shi u. The table index uses t = ln u directly (no log of exp).
    """
    u = math.exp(t)
    i, f = _table_position(t)
    lg = lng[i] + f * (lng[i + 1] - lng[i])
    if lg <= LN_FLOOR + 1.0:
        return 0.0
    sy = math.exp(lnsy[i] + f * (lnsy[i + 1] - lnsy[i]))
    vlo = alo + slo * u
    vhi = ahi + shi * u
    if vhi <= vlo:
        return 0.0
    if cdf == LATERAL_CDF_AERMOD_TABLE:
        return u * math.exp(lg) * _chord_fraction_table(vlo, vhi, sy)
    return u * math.exp(lg) * _chord_fraction(vlo, vhi, sy)


@njit(**_JIT)
def _kronrod(a, b, alo, slo, ahi, shi, lng, lnsy, cdf):
    c = 0.5 * (a + b)
    hl = 0.5 * (b - a)
    fc = _integrand(c, alo, slo, ahi, shi, lng, lnsy, cdf)
    rk = fc * _WGK[7]
    rg = fc * _WG[3]
    for j in range(7):
        dx = hl * _XGK[j]
        f1 = _integrand(c - dx, alo, slo, ahi, shi, lng, lnsy, cdf)
        f2 = _integrand(c + dx, alo, slo, ahi, shi, lng, lnsy, cdf)
        rk += _WGK[j] * (f1 + f2)
        if j % 2 == 1:
            rg += _WG[j // 2] * (f1 + f2)
    return rk * hl, abs((rk - rg) * hl)


@njit(**_JIT)
def _adaptive(a, b, alo, slo, ahi, shi, lng, lnsy, stack, cdf):
    """Adaptive G7K15 on [a, b] in t = ln u, using the caller's work ``stack`` (2, MAX_STACK)."""
    fa = abs(_integrand(a, alo, slo, ahi, shi, lng, lnsy, cdf))
    fb = abs(_integrand(b, alo, slo, ahi, shi, lng, lnsy, cdf))
    atol = KRONROD_ATOL_FACTOR * max(fa, fb, 1e-300) * (b - a)
    rtol = KRONROD_RTOL_AERMOD if cdf == LATERAL_CDF_AERMOD_TABLE else KRONROD_RTOL
    nsub = int(math.ceil((b - a) / math.log(4.0)))
    if nsub < 1:
        nsub = 1
    if nsub > MAX_STACK // 2:
        nsub = MAX_STACK // 2
    top = 0
    w = (b - a) / nsub
    for i in range(nsub):
        stack[0, top] = a + i * w
        stack[1, top] = a + (i + 1) * w if i < nsub - 1 else b
        top += 1
    total = 0.0
    while top > 0:
        top -= 1
        lo = stack[0, top]
        hi = stack[1, top]
        val, err = _kronrod(lo, hi, alo, slo, ahi, shi, lng, lnsy, cdf)
        if err <= max(rtol * abs(val), atol) or top >= MAX_STACK - 2 or hi - lo < 1e-7:
            total += val
        else:
            mid = 0.5 * (lo + hi)
            stack[0, top] = lo
            stack[1, top] = mid
            stack[0, top + 1] = mid
            stack[1, top + 1] = hi
            top += 2
    return total


@njit(**_JIT)
def _fixed_gl(a, b, alo, slo, ahi, shi, lng, lnsy, cdf):
    c = 0.5 * (a + b)
    hl = 0.5 * (b - a)
    s = 0.0
    for j in range(6):
        s += _WGL6[j] * _integrand(c + hl * _XGL6[j], alo, slo, ahi, shi, lng, lnsy, cdf)
    return s * hl


@njit(**_JIT)
def _edge_ratio(t, a0, s0, level, lnsy):
    """v(u) / sigma_y(u) - level at u = exp(t) for the edge v = a0 + s0 u."""
    i, f = _table_position(t)
    sy = math.exp(lnsy[i] + f * (lnsy[i + 1] - lnsy[i]))
    return (a0 + s0 * math.exp(t)) / sy - level


@njit(**_JIT)
def _sort_prefix(a, n):
    """Sort ``a[:n]`` ascending in place (insertion sort: a handful of points, no allocation)."""
    for i in range(1, n):
        v = a[i]
        j = i - 1
        while j >= 0 and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


@njit(**_JIT)
def _plume_edge_cuts(ta, tb, alo, slo, ahi, shi, lnsy, cuts, work):
    """Split [ta, tb] (t = ln u) where a chord edge crosses v / sigma_y = +-3.9 (AERMOD ZBRENT).

    Beyond +-3.9 sigma-y the tabulated CDF is flat (0 or 1), so the integrand has a kink
    there and may vanish on part of the piece; splitting keeps the adaptive rule from
    missing a short non-zero stretch. Each edge ratio is sampled on ``N_CROSS_SAMPLES``
    equal ln-u intervals and every sign change refined by the Illinois false-position
    method (AERMOD uses Brent's method for the same root). Writes the sorted cut points,
    ``ta`` and ``tb`` included, into ``cuts`` and returns their number.
    """
    n = 0
    cuts[n] = ta
    n += 1
    dt = (tb - ta) / N_CROSS_SAMPLES
    # the samples' u and sigma-y are shared by the four (edge, level) searches; they live in
    # the caller's work buffer (2, >= N_CROSS_SAMPLES + 1), free before the integration
    us = work[0]
    sys_ = work[1]
    for k in range(N_CROSS_SAMPLES + 1):
        tk = tb if k == N_CROSS_SAMPLES else ta + k * dt
        i, f = _table_position(tk)
        us[k] = math.exp(tk)
        sys_[k] = math.exp(lnsy[i] + f * (lnsy[i + 1] - lnsy[i]))
    for e in range(2):
        a0 = alo if e == 0 else ahi
        s0 = slo if e == 0 else shi
        for lv in range(2):
            level = -GA_LIMIT if lv == 0 else GA_LIMIT
            t0 = ta
            q0 = (a0 + s0 * us[0]) / sys_[0] - level
            for k in range(N_CROSS_SAMPLES):
                t1 = tb if k == N_CROSS_SAMPLES - 1 else ta + (k + 1) * dt
                q1 = (a0 + s0 * us[k + 1]) / sys_[k + 1] - level
                if (q0 < 0.0 < q1) or (q1 < 0.0 < q0):
                    # Illinois false position on [lo, hi] with f(lo), f(hi) of opposite sign
                    lo = t0
                    hi = t1
                    flo = q0
                    fhi = q1
                    side = 0
                    tr = 0.5 * (lo + hi)
                    for _ in range(100):
                        tr = hi - fhi * (hi - lo) / (fhi - flo)
                        fr = _edge_ratio(tr, a0, s0, level, lnsy)
                        if fr == 0.0 or hi - lo <= 1e-13 * max(1.0, abs(tr)):
                            break
                        if (fr < 0.0) == (fhi < 0.0):
                            hi = tr
                            fhi = fr
                            if side == 1:
                                flo *= 0.5
                            side = 1
                        else:
                            lo = tr
                            flo = fr
                            if side == -1:
                                fhi *= 0.5
                            side = -1
                    if tr > ta and tr < tb:
                        cuts[n] = tr
                        n += 1
                t0 = t1
                q0 = q1
    cuts[n] = tb
    n += 1
    _sort_prefix(cuts, n)  # n <= 2 + 4 * N_CROSS_SAMPLES
    return n


@njit(**_JIT)
def _piece_edges(a, b, pu, pv):
    """Lower and upper chord edges over the piece (a, b): (alo, slo, ahi, shi), v = a + s u."""
    mid = 0.5 * (a + b)
    alo = 0.0
    slo = 0.0
    ahi = 0.0
    shi = 0.0
    vlo = 1e300
    vhi = -1e300
    for k in range(4):
        k2 = (k + 1) % 4
        u1 = pu[k]
        u2 = pu[k2]
        du = u2 - u1
        if abs(du) < 1e-9 or mid < min(u1, u2) or mid > max(u1, u2):
            continue
        sl = (pv[k2] - pv[k]) / du
        ic = pv[k] - sl * u1
        v = ic + sl * mid
        if v < vlo:
            vlo = v
            alo = ic
            slo = sl
        if v > vhi:
            vhi = v
            ahi = ic
            shi = sl
    if vhi < vlo:
        return 0.0, 0.0, -1.0, 0.0  # empty chord
    return alo, slo, ahi, shi


@njit(**_JIT)
def cell_concentration(cx, cy, e1x, e1y, hx, hy, sinw, cosw, lng, lnsy, stack,
                       lateral_cdf=LATERAL_CDF_EXACT):
    """Concentration [ug m-3] at a receptor from one rectangular cell emitting 1 g m-2 s-1.

    Parameters
    ----------
    cx, cy : float
        Cell centre minus receptor position [m] (x east, y north).
    e1x, e1y : float
        Unit vector along the cell's first side (length ``2 hx``); the second side
        (length ``2 hy``) runs along the perpendicular ``(-e1y, e1x)``.
    hx, hy : float
        Half side lengths [m].
    sinw, cosw : float
        sin and cos of the wind direction (FROM, clockwise from north).
    lng, lnsy : float64 (NX,)
        Hour tables from :func:`build_hour_tables`.
    stack : float64 (2, MAX_STACK)
        Work buffer.
    lateral_cdf : int
        ``LATERAL_CDF_EXACT`` (0): exact normal CDF; ``LATERAL_CDF_AERMOD_TABLE`` (1):
        AERMOD's 4-decimal table, 0 / 1 beyond +-3.9 sigma-y, pieces split at the +-3.9
        crossings.
    """
    e2x = -e1y
    e2y = e1x
    # work arrays: views of the caller's third stack row when it has one (no heap allocation in the
    # innermost call of every kernel: SCRATCH_ROWS), else allocated here
    scratch = stack.shape[0] >= SCRATCH_ROWS
    if scratch:
        pu = stack[2, 0:4]
        pv = stack[2, 4:8]
    else:
        pu = np.empty(4)
        pv = np.empty(4)
    sx = (-1.0, 1.0, 1.0, -1.0)
    sy_ = (-1.0, -1.0, 1.0, 1.0)
    umin = 1e300
    umax = -1e300
    vmin = 1e300
    vmax = -1e300
    for k in range(4):
        px = cx + sx[k] * hx * e1x + sy_[k] * hy * e2x
        py = cy + sx[k] * hx * e1y + sy_[k] * hy * e2y
        # upwind distance: the wind comes from (sinw, cosw)
        u = px * sinw + py * cosw
        v = px * cosw - py * sinw
        pu[k] = u
        pv[k] = v
        umin = min(umin, u)
        umax = max(umax, u)
        vmin = min(vmin, v)
        vmax = max(vmax, v)
    width = vmax - vmin
    # AERMOD orders a rectangle's vertices clockwise from the SW corner (APARM): pu/pv backwards
    ua, ub = _integration_range(pu, pv, umin, umax, width, cx * cosw - cy * sinw, lnsy, lateral_cdf,
                                True)
    if ub <= ua:
        return 0.0
    if lateral_cdf == LATERAL_CDF_AERMOD_TABLE:
        return _areain_impl(pu, pv, lng, lnsy, True) * 1.0e6
    # breakpoints: vertices and zero crossings of edges
    bp = stack[2, 8:18] if scratch else np.empty(10)
    nb = 0
    bp[nb] = ua
    nb += 1
    bp[nb] = ub
    nb += 1
    for k in range(4):
        if pu[k] > ua and pu[k] < ub:
            bp[nb] = pu[k]
            nb += 1
        k2 = (k + 1) % 4
        if (pv[k] < 0.0 < pv[k2]) or (pv[k2] < 0.0 < pv[k]):
            uc = pu[k] + (0.0 - pv[k]) * (pu[k2] - pu[k]) / (pv[k2] - pv[k])
            if uc > ua and uc < ub:
                bp[nb] = uc
                nb += 1
    _sort_prefix(bp, nb)  # ascending, in place (at most 10 points; the same order as numpy.sort)
    bps = bp
    far = (ua >= FAR_RATIO * (umax - umin)
           and math.exp(table_lookup(lnsy, ua)) >= FAR_SIGMA_RATIO * width)
    cdf = lateral_cdf
    # work array of the +-3.9 sigma-y crossing search (AERMOD-table path only)
    n_cuts = 2 + 4 * N_CROSS_SAMPLES if cdf == LATERAL_CDF_AERMOD_TABLE else 0
    cuts = stack[2, 18:18 + n_cuts] if scratch else np.empty(n_cuts)
    total = 0.0
    for i in range(nb - 1):
        a = bps[i]
        b = bps[i + 1]
        if b - a <= 1e-9 * b:
            continue
        alo, slo, ahi, shi = _piece_edges(a, b, pu, pv)
        ta = math.log(a)
        tb = math.log(b)
        if cdf == LATERAL_CDF_AERMOD_TABLE:
            if ahi - alo + (shi - slo) * (0.5 * (a + b)) <= 0.0:
                continue  # empty chord
            # sub-pieces between the +-3.9 sigma-y crossings (allocated only on this path)
            nc = _plume_edge_cuts(ta, tb, alo, slo, ahi, shi, lnsy, cuts, stack)
            if nc == 2 and _outside_whole_piece(ta, tb, alo, slo, ahi, shi, lnsy):
                continue
            for j in range(nc - 1):
                t0 = cuts[j]
                t1 = cuts[j + 1]
                if t1 <= t0:
                    continue
                if far:
                    total += _fixed_gl(t0, t1, alo, slo, ahi, shi, lng, lnsy, cdf)
                else:
                    total += _adaptive(t0, t1, alo, slo, ahi, shi, lng, lnsy, stack, cdf)
        elif far:
            total += _fixed_gl(ta, tb, alo, slo, ahi, shi, lng, lnsy, cdf)
        else:
            total += _adaptive(ta, tb, alo, slo, ahi, shi, lng, lnsy, stack, cdf)
    return total * 1.0e6


@njit(**_JIT)
def _outside_whole_piece(ta, tb, alo, slo, ahi, shi, lnsy):
    """True when, on a piece with no +-3.9 sigma-y crossing, both chord edges lie beyond the
    same limit (so the tabulated-CDF integrand is exactly 0 on the whole piece)."""
    tm = 0.5 * (ta + tb)
    i, f = _table_position(tm)
    sy = math.exp(lnsy[i] + f * (lnsy[i + 1] - lnsy[i]))
    u = math.exp(tm)
    lo = (alo + slo * u) / sy
    hi = (ahi + shi * u) / sy
    return (lo <= -GA_LIMIT and hi <= -GA_LIMIT) or (lo >= GA_LIMIT and hi >= GA_LIMIT)


@njit(**_JIT)
def _chord_integral(a, b, alo, slo, ahi, shi, lng, lnsy, stack, cdf, far, cuts):
    """int_a^b u g(u) [P(v_hi/sy) - P(v_lo/sy)] d(ln u) for one chord with linear edges
    v_lo = alo + slo u, v_hi = ahi + shi u (P the chosen lateral CDF); split at the
    +-3.9 sigma-y crossings on the AERMOD-table path."""
    ta = math.log(a)
    tb = math.log(b)
    total = 0.0
    if cdf == LATERAL_CDF_AERMOD_TABLE:
        if ahi - alo + (shi - slo) * (0.5 * (a + b)) <= 0.0:
            return 0.0
        nc = _plume_edge_cuts(ta, tb, alo, slo, ahi, shi, lnsy, cuts, stack)
        if nc == 2 and _outside_whole_piece(ta, tb, alo, slo, ahi, shi, lnsy):
            return 0.0
        for j in range(nc - 1):
            t0 = cuts[j]
            t1 = cuts[j + 1]
            if t1 <= t0:
                continue
            if far:
                total += _fixed_gl(t0, t1, alo, slo, ahi, shi, lng, lnsy, cdf)
            else:
                total += _adaptive(t0, t1, alo, slo, ahi, shi, lng, lnsy, stack, cdf)
    elif far:
        total += _fixed_gl(ta, tb, alo, slo, ahi, shi, lng, lnsy, cdf)
    else:
        total += _adaptive(ta, tb, alo, slo, ahi, shi, lng, lnsy, stack, cdf)
    return total


@njit(**_JIT)
def polygon_concentration(vx, vy, ccx, ccy, sinw, cosw, lng, lnsy, stack,
                          lateral_cdf=LATERAL_CDF_AERMOD_TABLE):
    """Concentration [ug m-3] at a receptor from one polygon emitting 1 g m-2 s-1.

    AERMOD ``AREAPOLY`` (and ``AREACIRC``, ``AREA`` as their polygons): the area integral of
    ``pitarea.f`` AREAIN/PSIDE, written as a sum over crosswind chords. Between consecutive
    breakpoints in the upwind distance u (vertices, the UCRIT clip, the points where a side
    crosses the plume axis) the sides spanning that range are sorted by their crosswind
    offset and paired (even-odd rule), so a non-convex polygon gives several chords at one
    u; each chord is integrated as in :func:`cell_concentration`. AERMOD's zeros are kept:
    XMAXR < 1 m, the lateral cutoff |Y| - WIDTH/2 >= 5 sigma-y(XMAXR) about the area
    centroid (ACALC, ARDIST) and, on the AERMOD-table path, AREAIN's vertex test.

    Parameters
    ----------
    vx, vy : float64 (n,)
        Vertices minus the receptor position [m], in order (either orientation); the polygon
        closes back to the first vertex.
    ccx, ccy : float
        Area centroid minus the receptor position [m] (AERMOD AXCNTR, AYCNTR).
    sinw, cosw, lng, lnsy, stack, lateral_cdf
        As :func:`cell_concentration`.
    """
    n = vx.shape[0]
    pu = np.empty(n)
    pv = np.empty(n)
    umin = 1e300
    umax = -1e300
    vmin = 1e300
    vmax = -1e300
    for k in range(n):
        u = vx[k] * sinw + vy[k] * cosw
        v = vx[k] * cosw - vy[k] * sinw
        pu[k] = u
        pv[k] = v
        umin = min(umin, u)
        umax = max(umax, u)
        vmin = min(vmin, v)
        vmax = max(vmax, v)
    width = vmax - vmin
    ua, ub = _integration_range(pu, pv, umin, umax, width, ccx * cosw - ccy * sinw, lnsy, lateral_cdf)
    if ub <= ua:
        return 0.0
    bp = np.empty(2 + 2 * n)
    nb = 0
    bp[nb] = ua
    nb += 1
    bp[nb] = ub
    nb += 1
    for k in range(n):
        k2 = (k + 1) % n
        if pu[k] > ua and pu[k] < ub:
            bp[nb] = pu[k]
            nb += 1
        if (pv[k] < 0.0 < pv[k2]) or (pv[k2] < 0.0 < pv[k]):
            uc = pu[k] + (0.0 - pv[k]) * (pu[k2] - pu[k]) / (pv[k2] - pv[k])
            if uc > ua and uc < ub:
                bp[nb] = uc
                nb += 1
    bps = np.sort(bp[:nb])
    far = (ua >= FAR_RATIO * (umax - umin)
           and math.exp(table_lookup(lnsy, ua)) >= FAR_SIGMA_RATIO * width)
    ics = np.empty(n)
    sls = np.empty(n)
    vms = np.empty(n)
    cuts = np.empty(2 + 4 * N_CROSS_SAMPLES)
    total = 0.0
    for i in range(nb - 1):
        a = bps[i]
        b = bps[i + 1]
        if b - a <= 1e-9 * b:
            continue
        mid = 0.5 * (a + b)
        m = 0
        for k in range(n):
            k2 = (k + 1) % n
            u1 = pu[k]
            u2 = pu[k2]
            du = u2 - u1
            if abs(du) < 1e-9 or mid <= min(u1, u2) or mid >= max(u1, u2):
                continue
            sl = (pv[k2] - pv[k]) / du
            ic = pv[k] - sl * u1
            vm = ic + sl * mid
            # insertion by crosswind offset at mid
            j = m - 1
            while j >= 0 and vms[j] > vm:
                vms[j + 1] = vms[j]
                ics[j + 1] = ics[j]
                sls[j + 1] = sls[j]
                j -= 1
            vms[j + 1] = vm
            ics[j + 1] = ic
            sls[j + 1] = sl
            m += 1
        for j in range(0, m - 1, 2):
            total += _chord_integral(a, b, ics[j], sls[j], ics[j + 1], sls[j + 1], lng, lnsy,
                                     stack, lateral_cdf, far, cuts)
    return total * 1.0e6


# ----------------------------------------------------------------------------------------
# Evaluation paths
# ----------------------------------------------------------------------------------------

"""AERMOD's side-by-side area integral (pitarea.f AREAIN, PSIDE, PSIDE2, QATR3), step for step.

The area integral of an AREA/AREAPOLY/AREACIRC source equals, exactly, the chord integral of
:func:`kernels.plume.polygon_concentration`; but AERMOD evaluates it as a sum over the
polygon's sides of ``int f(u) P(v(u) / sigma_y(u)) du`` with a Romberg rule of 1 % relative
tolerance (QATR3). On a concave outline the side integrals are large and of opposite signs
(a thin arm, an inlet), and on a receptor at a vertex or inside the source the integrand is
sharply peaked at the 1.01 m clip; there AERMOD's own quadrature error reaches several per
cent of the result (caseG, a 22-vertex concave city: up to 3.5 % at PERIOD, 17 % in an
hour at the vertex (9000, -4500) m). To reproduce AERMOD there, the AERMOD mode integrates
polygons the way AERMOD does:

* the polygon in wind coordinates (u upwind, v = AERMOD's crosswind sign, ARDIST), clipped at
  UCRIT = 1.01 m upwind in AERMOD's vertex order (AREAIN);
* per side (``|du| >= 0.01 m``), PSIDE's nine cases with the +-3.9 sigma-y crossings from
  ZBRENT (:func:`kernels.plume._zbrent`): the stretch within the band integrated with the
  tabulated CDF, the stretch beyond +3.9 collected as a segment, beyond -3.9 dropped;
* PSIDE2: the segments' net multiplicities on the sorted breakpoints, consecutive same-sign
  segments merged (AERMOD keeps the later factor), each integrated with lateral term 1;
* QATR3: trapezoid halving in u with Romberg extrapolation, at least IMIN = 5 levels
  (17 points), at most NDIM = 12 (2049 points), stopping at 1 % relative change, at a mean
  integrand below EPST = 1e-5 or at a step below 1 m; 0 when the integrand is 0 at both ends.

The integrand ``f(u) = F_z / U_eff`` and ``sigma_y(u)`` come from the hour tables of
:func:`kernels.plume.build_hour_tables` (relative interpolation error < 1e-4), so the only
difference from AERMOD left is AERMOD's own recomputation of the physics at every point.
"""

import math

import numpy as np
from numba import njit, prange

from kernels import FASTMATH
from kernels.edges import SIDE_MIN_DU, UCRIT, _integration_range, _zbrent
from kernels.xtable import (GA_LOWER, LATERAL_CDF_AERMOD_TABLE, LN_FLOOR, _spread_step,
                            _table_position, table_lookup)

__all__ = ["GA_AERMOD", "areain", "polygon_concentration_aermod", "direct_hourly_polygons_aermod"]

#: AERMOD's GA(79) (pitarea.f PWIDTH): the normal CDF at -3.9, -3.8, ..., 3.9, 4 decimals
GA_AERMOD = np.concatenate([GA_LOWER, 1.0 - GA_LOWER[38::-1]])
QATR3_NDIM = 12              # pitarea.f PSIDE/PSIDE2: at most 2**11 + 1 points
QATR3_IMIN = 5               # at least 2**4 + 1 points
QATR3_EPSR = 1.0e-2          # relative change
QATR3_EPST = 1.0e-5          # mean integrand below which the integral is accepted [s m-2]
QATR3_HMIN = 1.0             # m, step below which the integral is accepted

_JIT = dict(nogil=True, cache=True, fastmath=FASTMATH)


@njit(**_JIT)
def _pwidth(vn):
    """AERMOD's tabulated normal CDF at vn = v / sigma_y (PWIDTH: TEMP = 10 vn + 40, GA)."""
    temp = 10.0 * vn + 40.0
    it = int(temp)  # IDINT truncates towards 0
    if it > 78:
        return 1.0
    if it >= 1:
        return GA_AERMOD[it - 1] + (temp - it) * (GA_AERMOD[it] - GA_AERMOD[it - 1])
    return 0.0


@njit(**_JIT)
def _plumef(u, u1, v1, u2, v2, lng, lnsy, lseg):
    """AERMOD PLUMEF for one point of a side: f(u) P(v(u) / sigma_y(u)), or f(u) (LSEG)."""
    i, fr = _table_position(math.log(u))
    lg = lng[i] + fr * (lng[i + 1] - lng[i])
    if lg <= LN_FLOOR + 1.0:
        return 0.0
    if lseg:
        return math.exp(lg)
    sy = math.exp(lnsy[i] + fr * (lnsy[i + 1] - lnsy[i]))
    v = v1 + (u - u1) * (v2 - v1) / (u2 - u1)
    return math.exp(lg) * _pwidth(v / sy)


@njit(**_JIT)
def _qatr3(xl, xu, u1, v1, u2, v2, lng, lnsy, lseg, aux):
    """AERMOD QATR3 (IBM SSP DQATR): Romberg integration of :func:`_plumef` from xl to xu."""
    p1 = _plumef(xl, u1, v1, u2, v2, lng, lnsy, lseg)
    p2 = _plumef(xu, u1, v1, u2, v2, lng, lnsy, lseg)
    aux[0] = 0.5 * (p1 + p2)
    h = xu - xl
    if h == 0.0 or aux[0] == 0.0:
        return 0.0
    hh = h
    p = 1.0
    jj = 1
    for i in range(2, QATR3_NDIM + 1):
        y = aux[0]
        hd = hh
        hh = 0.5 * hh
        p = 0.5 * p
        x = xl + hh
        sm = 0.0
        for _ in range(jj):
            sm += _plumef(x, u1, v1, u2, v2, lng, lnsy, lseg)
            x += hd
        aux[i - 1] = 0.5 * aux[i - 2] + p * sm
        q = 1.0
        for j in range(1, i):
            ii = i - j
            q = 4.0 * q
            aux[ii - 1] = aux[ii] + (aux[ii] - aux[ii - 1]) / (q - 1.0)
        delt2 = abs(y - aux[0])
        if i >= QATR3_IMIN:
            if (abs(aux[0]) < QATR3_EPST or delt2 <= QATR3_EPSR * abs(aux[0])
                    or abs(hh) < QATR3_HMIN):
                return h * aux[0]
        jj += jj
    return h * aux[0]


@njit(**_JIT)
def areain(pu, pv, lng, lnsy, reverse):
    """AERMOD's AREAIN for one source and receptor-hour: |sum of the side integrals| [s m-1].

    Parameters
    ----------
    pu, pv : float64 (n,)
        The vertices' upwind and crosswind coordinates [m] (:func:`kernels.plume.polygon_concentration`
        convention; AERMOD's crosswind coordinate is ``-pv``, ARDIST).
    lng, lnsy : float64
        Hour tables.
    reverse : bool
        AERMOD's vertex order runs backwards through ``pu``/``pv`` from the first vertex
        (an AREA rectangle, clockwise from its SW corner in APARM).

    Returns
    -------
    float
        ``|VAL|``; times 1e6 Q it is the concentration [ug m-3].
    """
    n = pu.shape[0]
    uv = np.empty(2 * n + 1)
    vv = np.empty(2 * n + 1)
    kside = 0
    for j in range(n):
        k = (n - j) % n if reverse else j
        k2 = (n - j - 1) % n if reverse else (j + 1) % n
        ua = pu[k]
        ub = pu[k2]
        va = -pv[k]
        vb = -pv[k2]
        if ua >= UCRIT:
            uv[kside] = ua
            vv[kside] = va
            kside += 1
        if (ua >= UCRIT > ub) or (ua < UCRIT <= ub):
            uv[kside] = UCRIT
            vv[kside] = va + (UCRIT - ua) * (vb - va) / (ub - ua)
            kside += 1
    if kside <= 2:
        return 0.0
    vn = np.empty(kside + 1)
    vnmin = 3.9
    vnmax = -3.9
    for k in range(kside):
        vn[k] = vv[k] / math.exp(table_lookup(lnsy, uv[k]))
        vnmin = min(vnmin, vn[k])
        vnmax = max(vnmax, vn[k])
    if vnmin >= 3.9 or vnmax <= -3.9:
        return 0.0
    uv[kside] = uv[0]
    vv[kside] = vv[0]
    vn[kside] = vn[0]
    aux = np.empty(QATR3_NDIM)
    sega = np.empty(kside)
    segb = np.empty(kside)
    nsegs = 0
    val = 0.0
    for ks in range(kside):
        u1 = uv[ks]
        u2 = uv[ks + 1]
        if abs(u1 - u2) < SIDE_MIN_DU:
            continue
        v1 = vv[ks]
        v2 = vv[ks + 1]
        vn1 = vn[ks]
        vn2 = vn[ks + 1]
        iminus = 0
        iplus = 0
        if vn1 < -3.9:
            iminus += 1
        if vn2 < -3.9:
            iminus += 2
        if vn1 > 3.9:
            iplus += 1
        if vn2 > 3.9:
            iplus += 2
        uplus = -1.0
        uminus = -1.0
        if iplus == 1 or iplus == 2:
            uplus = _zbrent(1, u1, u2, vn1, vn2, v1, v2, lnsy)
        if iminus == 1 or iminus == 2:
            uminus = _zbrent(-1, u1, u2, vn1, vn2, v1, v2, lnsy)
        if iplus == 0:
            if iminus == 0:
                val += _qatr3(u1, u2, u1, v1, u2, v2, lng, lnsy, False, aux)
            elif iminus == 1:
                val += _qatr3(uminus, u2, u1, v1, u2, v2, lng, lnsy, False, aux)
            elif iminus == 2:
                val += _qatr3(u1, uminus, u1, v1, u2, v2, lng, lnsy, False, aux)
        elif iplus == 1:
            sega[nsegs] = u1
            segb[nsegs] = uplus
            nsegs += 1
            if iminus == 0:
                val += _qatr3(uplus, u2, u1, v1, u2, v2, lng, lnsy, False, aux)
            else:
                val += _qatr3(uplus, uminus, u1, v1, u2, v2, lng, lnsy, False, aux)
        elif iplus == 2:
            sega[nsegs] = uplus
            segb[nsegs] = u2
            nsegs += 1
            if iminus == 0:
                val += _qatr3(u1, uplus, u1, v1, u2, v2, lng, lnsy, False, aux)
            else:
                val += _qatr3(uminus, uplus, u1, v1, u2, v2, lng, lnsy, False, aux)
        else:
            sega[nsegs] = u1
            segb[nsegs] = u2
            nsegs += 1
    if nsegs > 0:
        val += _pside2(sega[:nsegs], segb[:nsegs], lng, lnsy, aux)
    return abs(val)


@njit(**_JIT)
def _pside2(sega, segb, lng, lnsy, aux):
    """AERMOD PSIDE2: the segments beyond +3.9 sigma-y, net of their overlaps, with lateral
    term 1."""
    nsegs = sega.shape[0]
    ulist = np.sort(np.concatenate((sega, segb)))
    usign = np.empty(nsegs, dtype=np.int64)
    lo = np.empty(nsegs)
    hi = np.empty(nsegs)
    for i in range(nsegs):
        usign[i] = 1
        lo[i] = sega[i]
        hi[i] = segb[i]
        if lo[i] > hi[i]:
            usign[i] = -1
            lo[i], hi[i] = hi[i], lo[i]
        if lo[i] == hi[i]:
            usign[i] = 0
    npts = 2 * nsegs
    s1 = np.empty(npts)
    s2 = np.empty(npts)
    sf = np.empty(npts, dtype=np.int64)
    nseg = 0
    for i in range(1, npts):
        a = ulist[i - 1]
        b = ulist[i]
        if a == b:
            continue
        fac = 0
        for j in range(nsegs):
            if a >= lo[j] and b <= hi[j]:
                fac += usign[j]
        if fac != 0:
            s1[nseg] = a
            s2[nseg] = b
            sf[nseg] = fac
            nseg += 1
    for i in range(1, nseg):
        if s1[i] == s2[i - 1] and sf[i] * sf[i - 1] > 0:
            sf[i - 1] = 0
            s1[i] = s1[i - 1]
    total = 0.0
    for i in range(nseg):
        if sf[i] != 0:
            total += sf[i] * _qatr3(s1[i], s2[i], 0.0, 0.0, 1.0, 0.0, lng, lnsy, True, aux)
    return total


@njit(**_JIT)
def polygon_concentration_aermod(vx, vy, ccx, ccy, sinw, cosw, lng, lnsy, reverse=False):
    """Concentration [ug m-3] at a receptor from one polygon emitting 1 g m-2 s-1, integrated
    as AERMOD integrates it (:func:`areain`), after ACALC's zeros (XMAXR < 1 m, the lateral
    cutoff about the centroid; :func:`kernels.plume._integration_range`).

    ``vx, vy``: vertices minus the receptor [m] in AERMOD's order (``reverse``: backwards from
    the first); ``ccx, ccy``: centroid minus the receptor [m]; ``sinw, cosw``: the wind
    direction (FROM).
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
    ua, ub = _integration_range(pu, pv, umin, umax, vmax - vmin, ccx * cosw - ccy * sinw, lnsy,
                                LATERAL_CDF_AERMOD_TABLE, reverse)
    if ub <= ua:
        return 0.0
    return areain(pu, pv, lng, lnsy, reverse) * 1.0e6


@njit(parallel=True, **_JIT)
def direct_hourly_polygons_aermod(rec_x, rec_y, vert_x, vert_y, vert_start, src_ccx, src_ccy,
                                  src_rate, src_group, lng, lnsy, wd, out):
    """:func:`kernels.plume.direct_hourly_polygons` with AERMOD's side-by-side integral
    (:func:`polygon_concentration_aermod`); adds into ``out`` (n_hours, n_receptors)."""
    nr = rec_x.shape[0]
    ns = src_rate.shape[0]
    nh = lng.shape[1]
    step = _spread_step(nr)
    for k in prange(nr):
        r = (k * step) % nr
        for s in range(ns):
            if src_rate[s] == 0.0:
                continue
            v0 = vert_start[s]
            v1 = vert_start[s + 1]
            vx = vert_x[v0:v1] - rec_x[r]
            vy = vert_y[v0:v1] - rec_y[r]
            grp = src_group[s]
            for h in range(nh):
                w = wd[grp, h]
                if math.isnan(w):
                    continue
                wr = math.radians(w)
                c = polygon_concentration_aermod(vx, vy, src_ccx[s] - rec_x[r], src_ccy[s] - rec_y[r],
                                                 math.sin(wr), math.cos(wr), lng[grp, h],
                                                 lnsy[grp, h])
                out[h, r] += src_rate[s] * c

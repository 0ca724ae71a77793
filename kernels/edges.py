"""AERMOD's source-receptor zeros and plume edges (calc1.f ACALC; pitarea.f AREAIN, ZBRENT).

The UCRIT clip, the XMAXR and lateral (5 sigma-y) cutoffs, the +-3.9 sigma-y crossings of a
polygon side found as ZBRENT finds them, and AREAIN's zero tests. Shared by the chord
integrals (:mod:`kernels.quadrature`) and AERMOD's side-by-side integral
(:mod:`kernels.areain`).
"""

import math

import numpy as np
from numba import njit

from kernels import FASTMATH
from kernels.xtable import GA_LIMIT, LATERAL_CDF_AERMOD_TABLE, NX, table_lookup

_JIT = dict(nogil=True, cache=True, fastmath=FASTMATH)


UCRIT = 1.01                 # m, clip distance upwind of the receptor (pitarea.f)
XMAXR_MIN = 1.0              # m, receptor skipped if furthest source point < 1 m upwind
LATERAL_CUTOFF = 5.0         # sigma-y at XMAXR beyond the source half-width
ZBRENT_ITMAX = 10             # pitarea.f ZBRENT: at most 10 Brent steps
ZBRENT_EPSZ = 1.0e-3          # ZBRENT relative tolerance on u
ZBRENT_TOL = 1.0e-3           # PSIDE passes TOL = 1e-3 m
SIDE_MIN_DU = 0.01            # m, AREAIN skips a side with |ua - ub| < 0.01 m


@njit(**_JIT)
def _side_vn(u, u1, v1, u2, v2, lnsy):
    """v / sigma_y at upwind distance u [m] on the side (u1, v1) -> (u2, v2) (XWIDTH, PWIDTH)."""
    v = v1 + (u - u1) * (v2 - v1) / (u2 - u1)
    return v / math.exp(table_lookup(lnsy, u))


@njit(**_JIT)
def _zbrent(ifd, u1, u2, vn1, vn2, v1, v2, lnsy):
    """Where the side (u1, v1) -> (u2, v2) crosses v / sigma_y = ifd * 3.9, as AERMOD finds it.

    AERMOD pitarea.f ZBRENT, step for step: Brent's method from the bracket (u1, u2) with the
    end values vn1, vn2, at most ZBRENT_ITMAX steps, stopping when half the bracket is within
    ``2 EPSZ |b| + TOL / 2`` (about 2 m at 1 km) or a step lands on the root; a step shorter
    than that tolerance is lengthened to it. So a crossing within about that distance of a
    vertex is returned as the vertex itself, which makes the side's in-plume stretch empty
    (PSIDE integrates nothing there, QATR3 returns 0 for a zero-length interval). Returns -1
    when (u1, u2) does not bracket the level (AERMOD's initial UPLUS / UMINUS).
    """
    level = ifd * GA_LIMIT
    a1 = u1
    b1 = u2
    fa = vn1 - level
    fb = vn2 - level
    if fb * fa > 0.0:
        return -1.0
    c1 = 0.0
    d1 = 0.0
    e1 = 0.0
    fc = fb
    for _ in range(ZBRENT_ITMAX):
        if fb * fc > 0.0:
            c1 = a1
            fc = fa
            d1 = b1 - a1
            e1 = d1
        if abs(fc) < abs(fb):
            a1 = b1
            b1 = c1
            c1 = a1
            fa = fb
            fb = fc
            fc = fa
        tol1 = 2.0 * ZBRENT_EPSZ * abs(b1) + 0.5 * ZBRENT_TOL
        xm = 0.5 * (c1 - b1)
        if abs(xm) <= tol1 or fb == 0.0:
            return b1
        if abs(e1) >= tol1 and abs(fa) > abs(fb):
            s1 = fb / fa
            if a1 == c1:
                p1 = 2.0 * xm * s1
                q1 = 1.0 - s1
            else:
                q1 = fa / fc
                r1 = fb / fc
                p1 = s1 * (2.0 * xm * q1 * (q1 - r1) - (b1 - a1) * (r1 - 1.0))
                q1 = (q1 - 1.0) * (r1 - 1.0) * (s1 - 1.0)
            if p1 > 0.0:
                q1 = -q1
            p1 = abs(p1)
            if 2.0 * p1 < min(3.0 * xm * q1 - abs(tol1 * q1), abs(e1 * q1)):
                e1 = d1
                d1 = p1 / q1
            else:
                d1 = xm
                e1 = d1
        else:
            d1 = xm
            e1 = d1
        a1 = b1
        fa = fb
        if abs(d1) > tol1:
            b1 = b1 + d1
        else:
            b1 = b1 + (tol1 if xm >= 0.0 else -tol1)
        fb = _side_vn(b1, u1, v1, u2, v2, lnsy) - level
    return b1


@njit(**_JIT)
def _outside_plume(pu, pv, lnsy, reverse):
    """AERMOD's zero of an area source that reaches AREAIN (pitarea.f): True when it gives 0.

    The polygon is clipped at UCRIT upwind of the receptor (vertices at or beyond UCRIT plus
    the points where a side crosses UCRIT, in AERMOD's vertex order: ``reverse`` walks
    ``pu``/``pv`` backwards from the first vertex, as AERMOD orders an AREA rectangle
    clockwise from its SW corner, APARM). Then, as AREAIN does:

    * fewer than three such vertices, or every one beyond +3.9 or every one beyond -3.9
      sigma-y (v / sigma_y(u), PWIDTH; AREAIN's ``QGO`` false): 0;
    * otherwise AREAIN integrates side by side (PSIDE): a side's stretch within +-3.9
      sigma-y is integrated (QATR3), its stretch beyond +3.9 enters PSIDE2 with lateral term
      1, its stretch beyond -3.9 gives nothing; the crossings come from ZBRENT
      (:func:`_zbrent`), sides with |du| < 0.01 m are skipped. When no side keeps a
      within-band stretch of positive length and the sides all lie beyond the same limit,
      the result is exactly 0: beyond -3.9 nothing is integrated; beyond +3.9 the PSIDE2
      segments of the closed polygon cancel (every u is covered once each way). This is
      how AERMOD gives 0 where a vertex lies just inside +-3.9 sigma-y but within ZBRENT's
      tolerance (about 2 m at 1 km) of the crossing; the exact integral there is a sliver of
      <= 1e-9 of the hour's peak (caseD: 7 receptor-hours, caseE: 6). A skipped side leaves a
      gap in the +3.9 chain unless its ends coincide (to 4 ulp: the two programs' rounding).
    """
    n = pu.shape[0]
    uv = np.empty(2 * n)
    vv = np.empty(2 * n)
    kside = 0
    for j in range(n):
        k = (n - j) % n if reverse else j
        k2 = (n - j - 1) % n if reverse else (j + 1) % n
        ua = pu[k]
        ub = pu[k2]
        if ua >= UCRIT:
            uv[kside] = ua
            vv[kside] = pv[k]
            kside += 1
        if (ua >= UCRIT > ub) or (ua < UCRIT <= ub):
            uv[kside] = UCRIT
            vv[kside] = pv[k] + (UCRIT - ua) * (pv[k2] - pv[k]) / (ub - ua)
            kside += 1
    if kside <= 2:
        return True
    vn = np.empty(kside)
    vnmin = GA_LIMIT
    vnmax = -GA_LIMIT
    for k in range(kside):
        vn[k] = vv[k] / math.exp(table_lookup(lnsy, uv[k]))
        vnmin = min(vnmin, vn[k])
        vnmax = max(vnmax, vn[k])
    if vnmin >= GA_LIMIT or vnmax <= -GA_LIMIT:
        return True
    # PSIDE side by side: does any side keep a within-band stretch?
    n_plus = 0
    n_minus = 0
    gap = False
    for k in range(kside):
        k2 = (k + 1) % kside
        u1 = uv[k]
        u2 = uv[k2]
        if abs(u1 - u2) < SIDE_MIN_DU:
            if abs(u1 - u2) > 4.0 * 2.220446049250313e-16 * max(abs(u1), abs(u2)):
                gap = True
            continue
        iplus = 0
        iminus = 0
        if vn[k] > GA_LIMIT:
            iplus += 1
        if vn[k2] > GA_LIMIT:
            iplus += 2
        if vn[k] < -GA_LIMIT:
            iminus += 1
        if vn[k2] < -GA_LIMIT:
            iminus += 2
        if iplus == 3:
            n_plus += 1
        elif iminus == 3:
            n_minus += 1
        elif iplus == 0 and iminus == 0:
            return False                       # PSIDE case 1: integrated over the whole side
        elif iminus == 0:                      # cases 6, 7: one end beyond +3.9
            up = _zbrent(1, u1, u2, vn[k], vn[k2], vv[k], vv[k2], lnsy)
            if up != (u1 if iplus == 2 else u2):
                return False
            n_plus += 1
        elif iplus == 0:                       # cases 4, 5: one end beyond -3.9
            um = _zbrent(-1, u1, u2, vn[k], vn[k2], vv[k], vv[k2], lnsy)
            if um != (u2 if iminus == 1 else u1):
                return False
            n_minus += 1
        else:
            return False                       # cases 8, 9: the side crosses the plume
    if n_plus > 0 and n_minus > 0:
        return False
    return not (n_plus > 0 and gap)


@njit(**_JIT)
def _integration_range(pu, pv, umin, umax, width, vc, lnsy, lateral_cdf, reverse=False):
    """Upwind range (ua, ub) [m] of a source's along-wind integral; ``ub <= ua`` = it gives 0.

    AERMOD's zeros, shared by the cell and polygon integrals: the furthest source point less
    than XMAXR_MIN upwind; the lateral cutoff at XMAXR (calc1.f ACALC: |Y| - WIDTH/2 >= 5
    sigma-y about the centre, ``vc`` its crosswind offset and ``width`` the crosswind extent).
    AERMOD evaluates that sigma-y with the release-height parameters of METINI (ADISY -> SIGY
    with UEFF = US, SVEFF = SVS), whose two coefficients the hour table carries after its NX
    entries; the exact-CDF path (the national run) keeps sigma-y of the effective parameters.
    Then the UCRIT clip and, on the AERMOD-table path, AREAIN's zero tests
    (:func:`_outside_plume`). ``pu``, ``pv``: the vertices' upwind and crosswind coordinates;
    ``reverse``: AERMOD's vertex order runs backwards through them (AREA rectangles).
    """
    if umax < XMAXR_MIN:
        return 0.0, 0.0
    if lateral_cdf == LATERAL_CDF_AERMOD_TABLE:
        symax = lnsy[NX] * umax / (1.0 + lnsy[NX + 1] * umax) ** 0.3
    else:
        symax = math.exp(table_lookup(lnsy, umax))
    if abs(vc) - 0.5 * width >= LATERAL_CUTOFF * symax:
        return 0.0, 0.0
    ua = max(umin, UCRIT)
    ub = umax
    if ub <= ua:
        return 0.0, 0.0
    if lateral_cdf == LATERAL_CDF_AERMOD_TABLE and _outside_plume(pu, pv, lnsy, reverse):
        return 0.0, 0.0
    return ua, ub

"""Coverage of grid cells by spherical caps: a disc, or a disc less other discs (a rest of province).

The same arithmetic as the NumPy path of :func:`engine.dispersion.geometry.coverage_fraction`
for :class:`~engine.dispersion.geometry.Disc` and :class:`~engine.dispersion.geometry.Region`
shapes, cell by cell in one compiled loop that releases the GIL (Dask threads rasterise cities in
parallel):

* the cell centre's latitude and longitude by the inverse azimuthal-equidistant projection
  (Snyder 1987, USGS PP 1395, eqs. 20-14, 22-4, 25-15), written operation for operation as
  :func:`engine.dispersion.sphere.aeqd_inverse`;
* the cell is surely inside or outside a disc when its haversine distance to the centre, plus or
  minus the cell's half-diagonal, clears the radius; a latitude-longitude box (the cap's extent by
  spherical trigonometry, widened) rules out far cells before any distance is computed;
* a cell cut by a boundary counts its ``s x s`` sub-points inside: inside the first disc and
  outside every other one.

Not compiled with fastmath: contraction into fused multiply-adds would move sub-points that lie
within round-off of a boundary, and the rasters are to equal the NumPy path's.

Disc table columns (``discs``, (k, 8)): latitude, longitude [deg], radius [m], box half-height and
half-width [deg] with the classification pad, the same without the pad, and 1.0 where the box test
is void (the cap holds a pole or reaches a hemisphere).
"""

import math

import numpy as np
from numba import njit

from kernels.constants import EARTH_RADIUS_M

_JIT = dict(nogil=True, cache=True)

#: cells a side of the blocks :func:`disc_coverage` classifies first (a disc table's box pad covers one)
BLOCK = 8
_DEG2RAD = math.pi / 180.0
_RAD2DEG = 180.0 / math.pi


def disc_table(discs, pad_m):
    """The (k, 8) disc table of ``discs`` ((lat, lon, radius_m) triples) for a classification pad."""
    out = np.zeros((len(discs), 8))
    for n, (lat, lon, radius) in enumerate(discs):
        out[n, :3] = lat, lon, radius
        cos0 = math.cos(math.radians(lat))
        void = False
        for col, pad in ((3, pad_m), (5, 0.0)):
            r = (radius + pad) / EARTH_RADIUS_M
            if r >= math.pi / 2 or math.sin(r) >= cos0:
                void = True
                continue
            out[n, col] = math.degrees(r) * 1.001 + 1e-9
            out[n, col + 1] = math.degrees(math.asin(math.sin(r) / cos0)) * 1.001 + 1e-9
        out[n, 7] = 1.0 if void else 0.0
    return out


@njit(**_JIT)
def _inverse(x, y, lat0, lon0):
    """(lat, lon) [deg] of AEQD (x, y) about (lat0, lon0): sphere.aeqd_inverse for one point."""
    phi1 = lat0 * _DEG2RAD
    lam0 = lon0 * _DEG2RAD
    rho = math.hypot(x, y)
    if rho == 0.0:
        lam = lam0
        phi = phi1
    else:
        c = rho / EARTH_RADIUS_M
        sinc = math.sin(c)
        cosc = math.cos(c)
        arg = cosc * math.sin(phi1) + y * sinc * math.cos(phi1) / rho
        phi = math.asin(min(max(arg, -1.0), 1.0))
        lam = lam0 + math.atan2(x * sinc, rho * math.cos(phi1) * cosc - y * math.sin(phi1) * sinc)
    lon = (lam * _RAD2DEG + 180.0) % 360.0 - 180.0
    return phi * _RAD2DEG, lon


@njit(**_JIT)
def _distance(disc, lat, lon, padded):
    """Haversine distance [m] from the disc's centre, +inf when the point is outside its box."""
    if disc[7] == 0.0:
        col = 3 if padded else 5
        if abs(lat - disc[0]) > disc[col]:
            return np.inf
        dl = (lon - disc[1] + 180.0) % 360.0 - 180.0
        if abs(dl) > disc[col + 1]:
            return np.inf
    p1 = disc[0] * _DEG2RAD
    p2 = lat * _DEG2RAD
    dp = p2 - p1
    dlr = (lon - disc[1]) * _DEG2RAD
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlr / 2) ** 2
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(max(a, 0.0), 1.0)))


@njit(**_JIT)
def _inside(discs, lat, lon):
    """Inside the first disc and outside every other one."""
    if not _distance(discs[0], lat, lon, False) <= discs[0, 2]:
        return False
    for e in range(1, discs.shape[0]):
        if _distance(discs[e], lat, lon, False) <= discs[e, 2]:
            return False
    return True


@njit(**_JIT)
def _classify(discs, lat, lon, hd, near):
    """1: the disc of half-diagonal ``hd`` [m] about (lat, lon) is surely inside the first disc and
    outside the others; 0: surely outside that region; -1: neither. ``near`` (k,) bool, written:
    the discs whose boundary may cross it (the first always)."""
    near[0] = True
    for e in range(1, discs.shape[0]):
        near[e] = False
    d = _distance(discs[0], lat, lon, True)
    if d - hd >= discs[0, 2]:
        return 0
    sure = d + hd <= discs[0, 2]
    for e in range(1, discs.shape[0]):
        de = _distance(discs[e], lat, lon, True)
        if de + hd <= discs[e, 2]:
            return 0
        if not de - hd >= discs[e, 2]:
            sure = False
            near[e] = True
    return 1 if sure else -1


@njit(**_JIT)
def _cell(x, y, lat0, lon0, base, off, discs, near):
    """Fraction of the cell centred at AEQD (x, y) inside the region: 1 or 0 when its half-diagonal
    (``base`` plus the frame's distortion allowance) settles it, else its sub-points' share."""
    lat, lon = _inverse(x, y, lat0, lon0)
    c = _classify(discs, lat, lon, base + 1e-6 * math.hypot(x, y), near)
    if c >= 0:
        return float(c)
    s = off.shape[0]
    count = 0
    for a in range(s):
        for b in range(s):
            la, lo = _inverse(x + off[b], y + off[a], lat0, lon0)
            if _inside(discs, la, lo):
                count += 1
    return count / (s * s)


@njit(**_JIT)
def disc_coverage(x, y, lat0, lon0, spacing, discs, subsamples, mask, out, block=BLOCK):
    """Fraction of every cell (j, i) of the grid ``x`` (nx,), ``y`` (ny,) [m] in the AEQD frame of
    (lat0, lon0) inside the first disc of ``discs`` and outside the others, into ``out`` (ny, nx);
    cells where ``mask`` (ny, nx) is False get 0.

    The disc table's classification pad (:func:`disc_table`) must cover the half-diagonal of a
    block. Blocks of ``block x block`` cells are classified first, by the half-diagonal of the block: the
    inverse projection shortens no distance it maps (its scales are 1 radially and sin(c)/c <= 1
    across), so a block whose centre clears a boundary by the block's planar half-diagonal (widened
    as a cell's is) lies wholly on one side, and each of its cells would be found 1 or 0 by its own
    test or by its sub-points alike. The cells of the other blocks are tested one by one against
    the discs whose boundary may cross their block only: the others hold none of its points.
    """
    s = subsamples
    off = np.empty(s)
    for k in range(s):
        off[k] = ((k + 0.5) / s - 0.5) * spacing
    base = 0.5 * math.sqrt(2.0) * spacing * 1.001
    ny = y.shape[0]
    nx = x.shape[0]
    near = np.zeros(discs.shape[0], dtype=np.bool_)
    for j0 in range(0, ny, block):
        j1 = min(j0 + block, ny)
        for i0 in range(0, nx, block):
            i1 = min(i0 + block, nx)
            xc = 0.5 * (x[i0] + x[i1 - 1])
            yc = 0.5 * (y[j0] + y[j1 - 1])
            lat, lon = _inverse(xc, yc, lat0, lon0)
            half = 0.5 * math.hypot(x[i1 - 1] - x[i0] + spacing, y[j1 - 1] - y[j0] + spacing)
            c = _classify(discs, lat, lon, half * 1.001 + 1e-6 * math.hypot(xc, yc) + 1e-6, near)
            sub = discs[near] if c < 0 else discs[:1]
            cell_near = np.zeros(sub.shape[0], dtype=np.bool_)
            for j in range(j0, j1):
                for i in range(i0, i1):
                    if not mask[j, i]:
                        out[j, i] = 0.0
                    elif c >= 0:
                        out[j, i] = float(c)
                    else:
                        out[j, i] = _cell(x[i], y[j], lat0, lon0, base, off, sub, cell_near)

"""Transfer kernels of a square cell from the symmetries of the square lattice.

The national run's kernels are period means over a met climatology whose classes repeat in every
wind-direction sector (:mod:`engine.dispersion.climatology`). The eight symmetries of a square
(quarter turns and mirrors, the dihedral group D4) map an axis-aligned square cell on a square
receptor lattice onto itself, and a Gaussian plume is mirror-symmetric about its axis; so the
kernel of one hour is the kernel of a base direction in [0, 45] deg turned or mirrored
(:func:`lattice_symmetry`), and the hours that share their ln g / ln sigma-y tables share one
single-direction kernel (:func:`square_kernel`). Distinct rows of a table are found by a hash
checked byte for byte (:func:`_distinct_rows`).

Units: cell size and spacing [m]; kernels [ug m-3 per g m-2 s-1].
"""

import numpy as np

from kernels import plume

__all__ = ["lattice_symmetry", "square_kernel"]

_ROW_HASH = np.random.default_rng(20261205).integers(1, 2**63, size=4096, dtype=np.uint64) | np.uint64(1)


def _distinct_rows(a):
    """``(first, inverse)`` of the distinct rows of the 2-D float array ``a`` by their bytes (NaN
    included), as ``numpy.unique(..., axis=0, return_index=True, return_inverse=True)`` on the
    rows' bytes but by a 64-bit hash of each row, every group then checked byte for byte (a
    collision falls back to comparing the bytes themselves)."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    n, m = a.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    bits = a.view(np.uint64)
    if m <= _ROW_HASH.size:
        with np.errstate(over="ignore"):
            key = (bits * _ROW_HASH[:m]).sum(axis=1, dtype=np.uint64)
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
        if (bits == bits[first][inverse]).all():
            return first, inverse
    raw = a.view(np.dtype((np.void, 8 * m))).ravel()
    _, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
    return first, inverse.ravel()


#: memory bound of one batch of single-direction kernels in :func:`square_kernel` [bytes]
_SQUARE_BATCH_BYTES = 64 * 2**20


def lattice_symmetry(wind_from_deg):
    """Each direction as a symmetry of the square lattice applied to a direction in [0, 45] deg.

    The eight symmetries of a square (the dihedral group D4: quarter turns and mirrors) map an
    axis-aligned square cell and a square receptor lattice onto themselves. A Gaussian plume
    is mirror-symmetric about its axis, so the kernel of a square cell for wind from
    ``theta = 90 k + b`` is the kernel for ``b`` turned ``k`` quarter turns, and for
    ``theta = 90 k + 90 - b`` the mirror image of ``b``'s turned ``k + 1`` quarter turns
    (:func:`_turn`). Every direction has one such ``b`` in [0, 45].

    Returns
    -------
    base : float (n,) [deg]; turns : int (n,) in 0..3; mirror : bool (n,)
    """
    th = np.mod(np.asarray(wind_from_deg, dtype=float), 360.0)
    k = np.minimum(np.floor(th / 90.0), 3.0)
    r = th - 90.0 * k
    mirror = r > 45.0
    base = np.where(mirror, 90.0 - r, r)
    turns = np.where(mirror, k + 1.0, k).astype(np.int64) % 4
    return base, turns, mirror


def _turn(kernel, turns, mirror):
    """The kernel array of a direction from its base direction's (:func:`lattice_symmetry`):
    ``K[iy, ix]`` at offset (x east, y north) = ((ix - n) dx, (iy - n) dy). A quarter turn of
    the wind clockwise (theta + 90) maps offset (x, y) to (y, -x), which is ``np.rot90``; the
    mirror theta -> -theta maps x to -x, a flip of the columns."""
    k = kernel[..., ::-1] if mirror else kernel
    return np.rot90(k, turns, axes=(-2, -1))


#: the last plans of :func:`_plan`, by the identity of their inputs (each entry holds the arrays, so
#: their ids are not reused while it is kept): a kernel family evaluates one set of hours on every
#: pyramid level (:func:`engine.dispersion.fields.compute_kernels`)
_PLANS = []
_MAX_PLANS = 16


def _plan(lng, lnsy, wd, weights):
    """The single-direction kernels a set of hours needs: ``(ln g, ln sigma-y, base direction, mirror
    flag, W)`` per (table, base direction) pair, ``W[t, p]`` the weight of pair p under symmetry t
    (:func:`lattice_symmetry`); None when no hour weighs. Memoised by the inputs' identity."""
    for args, plan in list(_PLANS):
        if args[0] is lng and args[1] is lnsy and args[2] is wd and args[3] is weights:
            return plan
    live = np.flatnonzero((weights != 0.0) & np.isfinite(wd))
    plan = None
    if live.size:
        base, turns, mirror = lattice_symmetry(wd[live])
        _, tid = _distinct_rows(np.concatenate([lng[live], lnsy[live]], axis=1))
        # one single-direction kernel per (table, base direction)
        pair_key = np.stack([tid.astype(float), base], axis=1)
        pairs, first, pid = np.unique(pair_key, axis=0, return_index=True, return_inverse=True)
        pid = pid.ravel()
        rows = live[first]
        transform = turns * 2 + mirror  # 8 symmetries
        # weight of each pair under each symmetry: W[t, p]
        W = np.zeros((8, len(pairs)))
        np.add.at(W, (transform, pid), weights[live])
        b = np.ascontiguousarray(base[first])
        # a base direction along an axis (0) or the diagonal (45) is its own mirror image: half the work
        half = np.where(b == 0.0, plume.MIRROR_X, np.where(b == 45.0, plume.MIRROR_DIAGONAL, plume.MIRROR_NONE))
        plan = (np.ascontiguousarray(lng[rows]), np.ascontiguousarray(lnsy[rows]), b, half.astype(np.int64), W)
    _PLANS.append(((lng, lnsy, wd, weights), plan))
    del _PLANS[:-_MAX_PLANS]
    return plan


def square_kernel(met_tables, weights, cell_m, spacing_m, n_half, *, lateral_flag=plume.LATERAL_CDF_EXACT,
                  inner=-1):
    """Weighted sum over hours of the kernel of an axis-aligned square cell on a square lattice.

    ``out[iy, ix] = sum_h weights[h] C_h((ix - n_half) spacing, (iy - n_half) spacing)``, the
    sum of :func:`kernels.plume.weighted_offset_kernel`, computed from the lattice's symmetries:
    hours with the same ln g and ln sigma-y tables whose directions are images of one another
    under a symmetry of the square (:func:`lattice_symmetry`) share one single-direction kernel,
    evaluated once at the base direction and turned or mirrored onto the others. A class
    climatology has every class in every direction sector (the default met: 373 hours of 25
    tables in 16 sectors, 75 kernels instead of 373). The same numbers as the hour-by-hour sum
    up to the quadrature's tolerance: the quadrature at a turned direction sees the same geometry,
    the sine and cosine of the angle differing in the last bits, which can move an adaptive
    subdivision (tests/test_kernel_symmetry.py: 1e-12 of the peak; the 64 kernels of Hebei's cities,
    ``benchmarks/bench_kernels.py --symmetry``: at most 6.3e-7 of a kernel's peak). With AERMOD's
    tabulated lateral CDF (``lateral_flag`` 1) the hours are summed one by one: its root finding
    for the +-3.9 sigma-y crossings is not exactly turned with the plume (1e-4 relative).

    Parameters
    ----------
    met_tables : (ln g (n, NX), ln sigma-y (n, NX + 2), wind from (n,) [deg])
    weights : (n,) float; hours with weight 0 or a NaN direction (calm, missing) count 0
    cell_m, spacing_m : float [m]; n_half : int
    inner : int
        >= 0: the cells within ``inner`` of the centre are left NaN, not integrated (a pyramid level
        only interpolated from, whose centre the finer level replaces:
        :func:`engine.dispersion.fields.compute_kernels`); -1 (default): every cell.

    Returns
    -------
    (2 n_half + 1, 2 n_half + 1) float64 [ug m-3 per g m-2 s-1]
    """
    lng, lnsy, wd = met_tables
    weights = np.asarray(weights, dtype=float)
    n = int(n_half)
    out = np.zeros((2 * n + 1, 2 * n + 1))
    if lateral_flag != plume.LATERAL_CDF_EXACT:
        # AERMOD's tabulated CDF finds the +-3.9 sigma-y crossings with ZBRENT's tolerance, which is not
        # turned with the plume (1e-4 relative): hour by hour, as AERMOD
        if weights.any():
            plume.weighted_offset_kernel(float(cell_m), float(cell_m), float(spacing_m), float(spacing_m), n, n,
                                         weights, lng, lnsy, wd, out, int(lateral_flag))
        return out
    plan = _plan(lng, lnsy, wd, weights)
    if plan is None:
        return out
    lng_p, lnsy_p, b_all, half_all, W = plan
    size = (2 * n + 1) ** 2 * 8
    batch = max(1, _SQUARE_BATCH_BYTES // size)
    acc = np.zeros((8, 2 * n + 1, 2 * n + 1))
    for s in range(0, len(b_all), batch):
        b = b_all[s:s + batch]
        k = np.empty((len(b), 2 * n + 1, 2 * n + 1))
        plume.offset_kernels_mirrored(float(cell_m), float(spacing_m), n, lng_p[s:s + batch], lnsy_p[s:s + batch], b,
                                      half_all[s:s + batch], k, int(lateral_flag), int(inner))
        acc += np.tensordot(W[:, s:s + batch], k, axes=(1, 0))
    for t in range(8):
        if W[t].any():
            out += _turn(acc[t], t // 2, bool(t % 2))
    return out

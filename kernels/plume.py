"""AERMOD-compatible dispersion from surface and near-surface AREA sources (numba kernels).

Physics follows the unmodified EPA AERMOD v24142 for ``AREA`` sources in the regulatory
default (rural, flat, no deposition, no AREAMNDR meander), Cimorelli et al. 2005 (J. Appl.
Meteor. 44:682) and the EPA *AERMOD Model Formulation* document; see
``docs/aermod-formulation.md`` for the walk-through with source references and
``docs/aermod.md`` for the AERMOD mode.

The kernels are split by concern; this module is their public face (and re-exports their
names): :mod:`kernels.profiles` (gridded profiles), :mod:`kernels.sigmas` (dispersion at one
distance), :mod:`kernels.hour_setup` (one met hour -> x-tables), :mod:`kernels.xtable` (the
tables and lateral CDFs), :mod:`kernels.edges` (AERMOD's zeros and plume edges),
:mod:`kernels.quadrature` (chord integrals), :mod:`kernels.areain` (AERMOD's side-by-side
integral, the ``cobenefits aermod`` path) and the evaluation paths below.

Design
------
For one met hour and one release height, every quantity AERMOD evaluates at an along-wind
integration point depends only on the upwind distance ``x`` (the receptors are at ground
level): the effective wind speed and turbulence (``IBLVAL``), the convective PDF and plume
centroid (``PDF``, ``CENTROID``), sigma-y, sigma-z and the vertical term. So each hour is
first reduced to two tables on a logarithmic ``x`` grid (``PTS_PER_DECADE`` points per decade):

* ``ln g(x)`` with ``g = F_z(x, z_r=0) / U_eff(x)``  [s m-2], and
* ``ln sigma_y(x)``  [m],

built by :func:`build_hour_tables` (linear interpolation in ``ln x``; relative interpolation
error < 1e-4). The concentration from one area cell is then the AERMOD area integral

.. math::

    C = 10^6 Q \\int_{u_a}^{u_b} g(u)\\,[\\Phi(v_{hi}(u)/\\sigma_y(u)) - \\Phi(v_{lo}(u)/\\sigma_y(u))]\\,du

where ``u`` is the upwind distance from the receptor, ``[v_lo, v_hi]`` the crosswind chord of the
cell at ``u``, ``u_a = max(1.01 m, u_min)`` (AERMOD clips at 1.01 m upwind, pitarea.f) and the
crosswind Gaussian integral is done analytically as a normal CDF ``Phi``. Two choices of
``Phi`` (int flag ``lateral_cdf`` of the kernels, chosen in :mod:`engine.dispersion.area`):

* ``LATERAL_CDF_EXACT`` (0, default of :func:`engine.dispersion.area.area_concentrations` and so
  of the national run): the exact normal CDF via ``erfc``;
* ``LATERAL_CDF_AERMOD_TABLE`` (1, used by ``cobenefits aermod``): AERMOD's table ``GA`` of
  ``Phi`` at 0.1 sigma-y steps from -3.9 to +3.9 rounded to 4 decimals (``GA_LOWER`` holds
  the lower half, computed here from ``erfc``; ``Phi(-s) = 1 - Phi(s)`` gives the rest),
  linearly interpolated, 0 below -3.9 and 1 above +3.9 sigma-y (AERMOD ``PWIDTH``). This is
  AERMOD's side-by-side treatment (``ZBRENT`` split at +-3.9 sigma-y, ``PSIDE2`` segments
  with lateral term 1) written as one chord integral; pieces are split at the +-3.9
  crossings (:func:`_plume_edge_cuts`). It reproduces AERMOD's far-lateral tail (e.g.
  71.5 ug m-3 in AERMOD, 71.6 here, at (1500, 1500) m in the case A hour 1, where the
  exact CDF gives 80.4; 7e-6 of that hour's peak). In the AERMOD test cases the two
  choices differ by < 0.4 % wherever the value exceeds 1 % of the hourly peak and < 1 %
  above 0.1 % of it; the table path costs about 1.5x the exact one (case C, whole command).

The along-wind integral uses adaptive Gauss-Kronrod
(G7K15) in ``t = ln u`` split at vertices and at chord-edge zero crossings (relative
tolerance ``KRONROD_RTOL`` on the Kronrod-Gauss difference, which over-estimates the error;
measured error <= 1.2e-5 against a 1e-7 tolerance) -- far tighter than AERMOD's 1 % Romberg.

Far field (documented approximation): when the nearest point of the cell is at least
``FAR_RATIO`` cell extents downwind and ``sigma_y`` there is at least ``FAR_SIGMA_RATIO`` times
the crosswind extent, the same integral is evaluated with a fixed 6-point Gauss-Legendre rule
per piece (no adaptivity). Its error is below 1e-4 relative (tests/test_plume.py checks
< 1e-3 against the adaptive rule). This plays the role of AERMOD's FASTAREA point-source
switch but is far tighter.

AERMOD's exact zeros are kept: a receptor whose furthest upwind source point is < 1 m upwind
gets 0 (``XMAXR < 1``), and a cell with ``|Y| - WIDTH/2 >= 5 sigma_y(XMAXR)`` gets 0; on the
AERMOD-table path so does a source that AREAIN integrates to exactly 0 (all vertices beyond
the same +-3.9 sigma_y, or no side left with a within-band stretch once the crossings are
found as ZBRENT finds them: :func:`_outside_plume`).

Glossary (names in signatures, SI units)
----------------------------------------
wind speed [m s-1]; wind_from [deg clockwise from north, direction the wind blows FROM];
friction velocity u* [m s-1]; convective velocity w* [m s-1]; Monin-Obukhov length L [m];
mixing heights zic, zim [m]; roughness length z0 [m]; temperature [K]; theta gradient
above zi [K m-1]; release height [m]; initial sigma-z [m]; emission rate [g m-2 s-1];
concentration [ug m-3].
"""

import math

import numpy as np
from numba import njit, prange

from kernels import FASTMATH
# The kernels by concern (this module is their public face and re-exports their names):
from kernels.profiles import *  # noqa: F401,F403  gridded profiles, constants, HOUR_FIELDS
from kernels.profiles import (GRID_HEIGHTS, HOUR_FIELDS, NLEV, _grid_wd, _layer_average,  # noqa: F401
                              _residual_sigma_w, _wd_at, _ziaver)
from kernels.sigmas import (_cbl_point, _image_sum, _reflecting_height,  # noqa: F401
                            _stable_point, _stable_sigmas)
from kernels.xtable import (DLNX, GA_LIMIT, GA_LOWER, GA_STEP, LATERAL_CDF_AERMOD_TABLE,  # noqa: F401
                            LATERAL_CDF_EXACT, LN_FLOOR, LN_X_MIN, NX, PTS_PER_DECADE, X_MAX,
                            X_MIN, _chord_fraction, _chord_fraction_table, _ga_lower,
                            _spread_step, _table_position, table_lookup)
from kernels.edges import (LATERAL_CUTOFF, SIDE_MIN_DU, UCRIT, XMAXR_MIN, ZBRENT_EPSZ,  # noqa: F401
                           ZBRENT_ITMAX, ZBRENT_TOL, _integration_range, _outside_plume, _side_vn,
                           _zbrent)
from kernels.areain import GA_AERMOD, areain, polygon_concentration_aermod  # noqa: F401
from kernels.quadrature import (FAR_RATIO, FAR_SIGMA_RATIO, KRONROD_RTOL,  # noqa: F401
                                KRONROD_RTOL_AERMOD, MAX_STACK, N_CROSS_SAMPLES, SCRATCH_ROWS,
                                cell_concentration, polygon_concentration)
from kernels.hour_setup import (URBAN_CP, URBAN_REF_DELTA_T, URBAN_REF_POPULATION,  # noqa: F401
                                URBAN_REF_ZI, URBAN_TG, _hour_setup, _urban_boundary_layer,
                                build_hour_tables)

__all__ = [
    "GA_LOWER",
    "GRID_HEIGHTS",
    "HOUR_FIELDS",
    "LATERAL_CDF_AERMOD_TABLE",
    "LATERAL_CDF_EXACT",
    "NX",
    "PTS_PER_DECADE",
    "X_MIN",
    "build_hour_tables",
    "cell_concentration",
    "direct_hourly",
    "direct_hourly_polygons",
    "polygon_concentration",
    "offset_kernels",
    "offset_kernels_mirrored",
    "weighted_offset_kernel",
    "table_lookup",
]

_JIT = dict(nogil=True, cache=True, fastmath=FASTMATH)


# ----------------------------------------------------------------------------------------
# Evaluation paths
# ----------------------------------------------------------------------------------------
@njit(parallel=True, **_JIT)
def direct_hourly(rec_x, rec_y, src_cx, src_cy, src_e1x, src_e1y, src_hx, src_hy, src_rate,
                  src_group, lng, lnsy, wd, out, lateral_cdf=LATERAL_CDF_EXACT):
    """Hourly concentrations at arbitrary receptors from arbitrary rectangular cells.

    ``prange`` over receptors in spread order (:func:`_spread_step`), float64 accumulation.
    ``src_group[i]`` selects the table set
    (release height / initial sigma-z group) of source i: ``lng[group, hour, :]``.
    ``wd[group, hour]`` is NaN for hours without a result (calm/missing) -> 0.

    out : float64 (n_hours, n_receptors) [ug m-3]
    """
    nr = rec_x.shape[0]
    ns = src_cx.shape[0]
    nh = lng.shape[1]
    step = _spread_step(nr)
    for k in prange(nr):
        r = (k * step) % nr
        stack = np.empty((SCRATCH_ROWS, MAX_STACK))
        for h in range(nh):
            acc = 0.0
            for s in range(ns):
                grp = src_group[s]
                w = wd[grp, h]
                if math.isnan(w) or src_rate[s] == 0.0:
                    continue
                wr = math.radians(w)
                c = cell_concentration(src_cx[s] - rec_x[r], src_cy[s] - rec_y[r], src_e1x[s],
                                       src_e1y[s], src_hx[s], src_hy[s], math.sin(wr),
                                       math.cos(wr), lng[grp, h], lnsy[grp, h], stack,
                                       lateral_cdf)
                acc += src_rate[s] * c
            out[h, r] = acc


@njit(parallel=True, **_JIT)
def offset_kernels(cell_x, cell_y, dx, dy, nx_half, ny_half, lng, lnsy, wd, out,
                   lateral_cdf=LATERAL_CDF_EXACT):
    """Hourly transfer kernels over receptor offsets from one axis-aligned cell.

    ``out[h, iy, ix]`` [ug m-3] = C_h at offset ((ix - nx_half) dx, (iy - ny_half) dy) from the
    centre of a ``cell_x`` x ``cell_y`` cell emitting 1 g m-2 s-1. ``prange`` over kernel rows
    in spread order (:func:`_spread_step`: the downwind rows hold the costly integrals, and
    with a prevailing wind one half of the rows cost 2.6x the other, caseD);
    hours with NaN ``wd`` (calm/missing) are 0.
    """
    nh = lng.shape[0]
    hx = 0.5 * cell_x
    hy = 0.5 * cell_y
    nrow = 2 * ny_half + 1
    step = _spread_step(nrow)
    for k in prange(nrow):
        iy = (k * step) % nrow
        stack = np.empty((SCRATCH_ROWS, MAX_STACK))
        oy = (iy - ny_half) * dy
        for h in range(nh):
            if math.isnan(wd[h]):
                for ix in range(2 * nx_half + 1):
                    out[h, iy, ix] = 0.0
                continue
            wr = math.radians(wd[h])
            sw = math.sin(wr)
            cw = math.cos(wr)
            for ix in range(2 * nx_half + 1):
                ox = (ix - nx_half) * dx
                out[h, iy, ix] = cell_concentration(-ox, -oy, 1.0, 0.0, hx, hy, sw, cw,
                                                    lng[h], lnsy[h], stack, lateral_cdf)


@njit(parallel=True, **_JIT)
def _touch_threads(a):
    s = 0.0
    for i in prange(a.shape[0]):
        s += a[i]
    return s


def threading_layer_name():
    """Numba's threading layer (``'omp'``, ``'tbb'`` or ``'workqueue'``), starting it if no parallel
    kernel has run yet (the layer is chosen at the first parallel call)."""
    import numba

    try:
        return numba.threading_layer()
    except ValueError:
        _touch_threads(np.zeros(2))
        return numba.threading_layer()


#: mirror symmetry of a single-direction kernel (:func:`offset_kernels_mirrored`)
MIRROR_NONE = 0
#: wind along the y axis (from 0 or 180 deg): K(x, y) = K(-x, y)
MIRROR_X = 1
#: wind along the diagonal y = x (from 45 or 225 deg): K(x, y) = K(y, x)
MIRROR_DIAGONAL = 2


@njit(parallel=True, **_JIT)
def offset_kernels_mirrored(cell, spacing, n_half, lng, lnsy, wd, mirror, out, lateral_cdf=LATERAL_CDF_EXACT,
                            inner=-1):
    """:func:`offset_kernels` of a square cell on a square lattice, hour ``h`` mirror-symmetric as
    ``mirror[h]`` says: the plume is symmetric about its axis and the square about the axis and the
    diagonals, so a wind along an axis (``MIRROR_X``) or a diagonal (``MIRROR_DIAGONAL``) makes the
    kernel its own mirror image; only one half of it is integrated and the other half copied
    (``out[h, iy, 2n - ix] = out[h, iy, ix]``, or ``out[h, ix, iy] = out[h, iy, ix]``). Each cell is
    written by exactly one kernel row, so the rows stay independent (``prange``, spread order).
    ``inner`` >= 0: the cells within ``inner`` of the centre (``max(|ix - n|, |iy - n|) <= inner``)
    are not computed but set to NaN (a pyramid level whose centre a finer level replaces)."""
    nh = lng.shape[0]
    hx = 0.5 * cell
    nrow = 2 * n_half + 1
    step = _spread_step(nrow)
    for k in prange(nrow):
        iy = (k * step) % nrow
        stack = np.empty((SCRATCH_ROWS, MAX_STACK))
        oy = (iy - n_half) * spacing
        for h in range(nh):
            if math.isnan(wd[h]):
                for ix in range(nrow):
                    out[h, iy, ix] = 0.0
                continue
            wr = math.radians(wd[h])
            sw = math.sin(wr)
            cw = math.cos(wr)
            m = mirror[h]
            last = nrow - 1
            if m == MIRROR_X:
                last = n_half
            elif m == MIRROR_DIAGONAL:
                last = iy
            for ix in range(last + 1):
                ox = (ix - n_half) * spacing
                if abs(iy - n_half) <= inner and abs(ix - n_half) <= inner:
                    c = np.nan
                else:
                    c = cell_concentration(-ox, -oy, 1.0, 0.0, hx, hx, sw, cw, lng[h], lnsy[h], stack,
                                           lateral_cdf)
                out[h, iy, ix] = c
                if m == MIRROR_X:
                    out[h, iy, nrow - 1 - ix] = c
                elif m == MIRROR_DIAGONAL:
                    out[h, ix, iy] = c


@njit(parallel=True, **_JIT)
def gather_offsets(kern, src_j, src_i, src_q, stride, rec_oy, rec_ox, rec_col, hour_ok, out):
    """Lattice receptors' hourly concentrations from hourly offset kernels (gridded path).

    ``out[h, rec_col[r]] = sum_s src_q[s] * kern[h, rec_oy[r] - src_j[s] * stride,
    rec_ox[r] - src_i[s] * stride]`` (offsets outside the kernel give 0), for the hours with
    ``hour_ok[h]``; the same sum, in the same source order, as the direct convolution of
    :mod:`kernels.convolve` read at the receptors, without the output points no receptor uses.
    ``prange`` over receptors.

    kern : float64 (n_hours, ky, kx) [ug m-3 per g m-2 s-1], from :func:`offset_kernels`
    src_j, src_i : int64 (n_src,)
        Emitting cells' row and column on the cell grid; src_q [g m-2 s-1] their rates.
    rec_oy, rec_ox : int64 (n_rec,)
        Receptors' indices in the convolution's output frame (see :mod:`kernels.convolve`).
    rec_col : int64 (n_rec,)
        Column of ``out`` for each receptor.
    out : float64 (n_hours, n_receptors) [ug m-3]
    """
    nh, ky, kx = kern.shape
    ns = src_q.shape[0]
    for r in prange(rec_oy.shape[0]):
        oy = rec_oy[r]
        ox = rec_ox[r]
        col = rec_col[r]
        for h in range(nh):
            if not hour_ok[h]:
                continue
            acc = 0.0
            for s in range(ns):
                iy = oy - src_j[s] * stride
                ix = ox - src_i[s] * stride
                if 0 <= iy < ky and 0 <= ix < kx:
                    acc += src_q[s] * kern[h, iy, ix]
            out[h, col] = acc


@njit(parallel=True, **_JIT)
def weighted_offset_kernel(cell_x, cell_y, dx, dy, nx_half, ny_half, weights, lng, lnsy, wd, out,
                           lateral_cdf=LATERAL_CDF_EXACT):
    """Weighted sum over hours of :func:`offset_kernels` (period-mean kernel), ``out[iy, ix]``."""
    nh = lng.shape[0]
    hx = 0.5 * cell_x
    hy = 0.5 * cell_y
    nrow = 2 * ny_half + 1
    step = _spread_step(nrow)
    for k in prange(nrow):  # rows in spread order, as offset_kernels
        iy = (k * step) % nrow
        stack = np.empty((SCRATCH_ROWS, MAX_STACK))
        oy = (iy - ny_half) * dy
        for ix in range(2 * nx_half + 1):
            out[iy, ix] = 0.0
        for h in range(nh):
            if weights[h] == 0.0 or math.isnan(wd[h]):
                continue
            wr = math.radians(wd[h])
            sw = math.sin(wr)
            cw = math.cos(wr)
            for ix in range(2 * nx_half + 1):
                ox = (ix - nx_half) * dx
                out[iy, ix] += weights[h] * cell_concentration(-ox, -oy, 1.0, 0.0, hx, hy, sw, cw,
                                                               lng[h], lnsy[h], stack,
                                                               lateral_cdf)


@njit(parallel=True, **_JIT)
def direct_hourly_polygons(rec_x, rec_y, vert_x, vert_y, vert_start, src_ccx, src_ccy,
                           src_rate, src_group, lng, lnsy, wd, out,
                           lateral_cdf=LATERAL_CDF_AERMOD_TABLE):
    """Hourly concentrations at arbitrary receptors from polygon sources (adds into ``out``).

    Source i has the vertices ``vert_x[vert_start[i]:vert_start[i + 1]]`` (absolute [m]),
    area centroid (src_ccx[i], src_ccy[i]), rate src_rate[i] [g m-2 s-1] and table group
    src_group[i] (``lng[group, hour, :]``). ``prange`` over receptors in spread order.

    out : float64 (n_hours, n_receptors) [ug m-3], accumulated
    """
    nr = rec_x.shape[0]
    ns = src_rate.shape[0]
    nh = lng.shape[1]
    step = _spread_step(nr)
    for k in prange(nr):
        r = (k * step) % nr
        stack = np.empty((SCRATCH_ROWS, MAX_STACK))
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
                c = polygon_concentration(vx, vy, src_ccx[s] - rec_x[r], src_ccy[s] - rec_y[r],
                                          math.sin(wr), math.cos(wr), lng[grp, h], lnsy[grp, h],
                                          stack, lateral_cdf)
                out[h, r] += src_rate[s] * c

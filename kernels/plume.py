"""AERMOD-compatible dispersion from surface and near-surface AREA sources (numba kernels).

Physics follows the unmodified EPA AERMOD v24142 for ``AREA`` sources in the regulatory
default (rural, flat, no deposition, no AREAMNDR meander), Cimorelli et al. 2005 (J. Appl.
Meteor. 44:682) and the EPA *AERMOD Model Formulation* document; see
``docs/aermod-formulation.md`` for the walk-through with source references.

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
from kernels.constants import GRAVITY, VON_KARMAN  # 9.80616 m s-2 (AERMOD G), 0.4

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
    "weighted_offset_kernel",
    "table_lookup",
]

# ----------------------------------------------------------------------------------------
# Constants (AERMOD v24142 values; modules.f / coset.f as cited in docs/aermod-formulation.md)
# ----------------------------------------------------------------------------------------
#: AERMOD gridded-profile heights GRIDHT [m] (modules.f, 87 levels)
GRID_HEIGHTS = np.array(
    [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 14.0, 20.0]
    + [30.0 + 10.0 * i for i in range(8)]          # 30 .. 100
    + [120.0 + 20.0 * i for i in range(5)]         # 120 .. 200
    + [250.0 + 50.0 * i for i in range(36)]        # 250 .. 2000
    + [2100.0 + 100.0 * i for i in range(30)],     # 2100 .. 5000
    dtype=np.float64,
)
NLEV = GRID_HEIGHTS.shape[0]

GOVRCP = 0.00976             # K m-1, g/cp (AERMOD GOVRCP)
WSMIN = 0.2828               # m s-1, minimum effective wind speed (sqrt(2)*SVMIN)
SVMIN = 0.2                  # m s-1
SVUMIN = 0.05                # minimum sigma-v / U
SWMIN = 0.02                 # m s-1
UMINGR = 0.01                # m s-1, minimum gridded wind speed
SZCOEF = 2.15                # averaging-layer depth in sigma-z
SPTGMN = 0.002               # K m-1, minimum stable theta gradient
AT1PT2 = 1.2                 # sigma-v convective decay layer top / zic
EFOLDH = 0.44                # e-folding for theta gradient above 100 m
TGMINHT = 2.0                # m
TGMAXHT = 100.0              # m
UCRIT = 1.01                 # m, clip distance upwind of the receptor (pitarea.f)
XMAXR_MIN = 1.0              # m, receptor skipped if furthest source point < 1 m upwind
LATERAL_CUTOFF = 5.0         # sigma-y at XMAXR beyond the source half-width
SURFACE_LAYER_TOP = 5.0      # m, averaging layer for surface releases
N_FIXED_POINT = 4            # CBL effective-parameter passes (docs/aermod-formulation.md §4)
R_PDF = 2.0                  # Weil PDF: R = sigma_i / w_i
ALPHA_PDF = (1.0 + R_PDF**2) / (1.0 + 3.0 * R_PDF**2)
BETA_PDF = 1.0 + R_PDF**2
SQRT_2PI = math.sqrt(2.0 * math.pi)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT2 = 1.0 / math.sqrt(2.0)

#: table of ln g and ln sigma-y on x = X_MIN * 10**(k / PTS_PER_DECADE)
X_MIN = 1.0
X_MAX = 4.0e6
PTS_PER_DECADE = 160
NX = int(math.ceil(math.log10(X_MAX / X_MIN) * PTS_PER_DECADE)) + 1
DLNX = math.log(10.0) / PTS_PER_DECADE
LN_X_MIN = math.log(X_MIN)
LN_FLOOR = -700.0            # ln of "zero" (exp underflows to 0)

KRONROD_RTOL = 1e-5
#: the AERMOD-table path (``cobenefits aermod``) integrates to this relative tolerance: still
#: 100 times tighter than AERMOD's own Romberg tolerance (1 %, pitarea.f)
KRONROD_RTOL_AERMOD = 1e-4
KRONROD_ATOL_FACTOR = 1e-12  # absolute floor relative to the piece's |u g| scale
MAX_STACK = 96
FAR_RATIO = 3.0
FAR_SIGMA_RATIO = 0.5

#: per-hour scalar record (columns of the ``hours`` array)
HOUR_FIELDS = (
    "wind_speed", "wind_from", "reference_height", "ustar", "wstar", "obukhov_length",
    "zic", "zim", "z0", "temperature", "theta_gradient", "temperature_height", "valid",
)
H_U, H_WD, H_ZREF, H_USTAR, H_WSTAR, H_L, H_ZIC, H_ZIM, H_Z0, H_T, H_VPTG, H_ZT, H_VALID = range(13)

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

#: lateral (crosswind) CDF choices, passed to the kernels as an int flag
LATERAL_CDF_EXACT = 0          # exact normal CDF via erfc
LATERAL_CDF_AERMOD_TABLE = 1   # AERMOD's 4-decimal table GA(79), linear interpolation
GA_STEP = 0.1                  # table step [sigma-y] (AERMOD PWIDTH)
GA_LIMIT = 3.9                 # table range +-3.9 sigma-y; 0 / 1 beyond
#: lower half of AERMOD's GA table: round(Phi(s), 4) at s = -3.9, -3.8, ..., 0.0 (40 values).
#: Computed here from the normal CDF; the upper half follows from Phi(-s) = 1 - Phi(s), which
#: makes the tabulated CDF exactly antisymmetric (plume symmetric about its axis).
GA_LOWER = np.array([round(0.5 * math.erfc((GA_LIMIT - GA_STEP * k) / math.sqrt(2.0)), 4)
                     for k in range(40)], dtype=np.float64)
GA_LOWER[39] = 0.5
#: Crossings of v / sigma_y = +-GA_LIMIT searched on this many ln-u intervals per piece
N_CROSS_SAMPLES = 4

_JIT = dict(nogil=True, cache=True, fastmath=FASTMATH)


# ----------------------------------------------------------------------------------------
# Profile building (AERMOD windgrid.f, siggrid.f, tempgrid.f)
# ----------------------------------------------------------------------------------------
@njit(**_JIT)
def _interp(z1, v1, z2, v2, z):
    """GINTRP: linear interpolation (returns v1 when z1 == z2)."""
    if z2 == z1:
        return v1
    return v1 + (v2 - v1) * (z - z1) / (z2 - z1)


@njit(**_JIT)
def _locate(z):
    """Index i with GRID_HEIGHTS[i] <= z < GRID_HEIGHTS[i+1] (clipped to [0, NLEV-2])."""
    lo = 0
    hi = NLEV - 1
    if z <= GRID_HEIGHTS[0]:
        return 0
    if z >= GRID_HEIGHTS[NLEV - 1]:
        return NLEV - 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if z >= GRID_HEIGHTS[mid]:
            lo = mid
        else:
            hi = mid
    return lo


@njit(**_JIT)
def _grid_value(prof, z):
    """Value of a gridded profile at height z (linear; constant above 5000 m)."""
    if z >= GRID_HEIGHTS[NLEV - 1]:
        return prof[NLEV - 1]
    i = _locate(z)
    return _interp(GRID_HEIGHTS[i], prof[i], GRID_HEIGHTS[i + 1], prof[i + 1], z)


@njit(**_JIT)
def _layer_average(prof, zbot, ztop):
    """ANYAVG: exact mean of the piecewise-linear gridded profile over [zbot, ztop].

    AERMOD raises zbot to 0.5 m and ztop to at least 0.51 m; above 5000 m the profile
    is constant.
    """
    if zbot < 0.5:
        zbot = 0.5
    if ztop < 0.51:
        ztop = 0.51
    if ztop <= zbot:
        return _grid_value(prof, 0.5 * (zbot + ztop))
    total = 0.0
    # integrate piece by piece
    for i in range(NLEV - 1):
        z1 = GRID_HEIGHTS[i]
        z2 = GRID_HEIGHTS[i + 1]
        a = max(z1, zbot)
        b = min(z2, ztop)
        if b > a:
            va = _interp(z1, prof[i], z2, prof[i + 1], a)
            vb = _interp(z1, prof[i], z2, prof[i + 1], b)
            total += 0.5 * (va + vb) * (b - a)
    if ztop > GRID_HEIGHTS[NLEV - 1]:
        total += prof[NLEV - 1] * (ztop - max(zbot, GRID_HEIGHTS[NLEV - 1]))
    return total / (ztop - zbot)


@njit(**_JIT)
def _ziaver(prof, zi):
    """ZIAVER (metext.f): mean of the gridded profile from the ground (0 m, not ANYAVG's
    0.5 m) to zi [same unit as prof]; zi at or below the top grid level (AERMOD caps the
    mixing heights at 4000 m).

    AERMOD sums the trapezoids of the grid levels below zi plus the part up to zi (value at
    zi interpolated, GINTRP) and divides by zi: the exact integral of the piecewise-linear
    profile over [0, zi].
    """
    if zi <= 0.0:
        return prof[0]
    total = 0.0
    for i in range(NLEV - 1):
        z1 = GRID_HEIGHTS[i]
        if z1 >= zi:
            break
        z2 = min(GRID_HEIGHTS[i + 1], zi)
        v2 = _interp(z1, prof[i], GRID_HEIGHTS[i + 1], prof[i + 1], z2)
        total += 0.5 * (prof[i] + v2) * (z2 - z1)
    return total / zi


@njit(**_JIT)
def _sim_wind(ustar, z, L, z0):
    """UNSTU / STBLU: similarity wind speed with psi_m(z0/L) term (windgrid.f)."""
    if L < 0.0:
        x0 = (1.0 - 16.0 * z / L) ** 0.25
        xz0 = (1.0 - 16.0 * z0 / L) ** 0.25
        psim = (2.0 * math.log((1.0 + x0) / 2.0) + math.log((1.0 + x0 * x0) / 2.0)
                - 2.0 * math.atan(x0) + math.pi / 2.0)
        psimz0 = (2.0 * math.log((1.0 + xz0) / 2.0) + math.log((1.0 + xz0 * xz0) / 2.0)
                  - 2.0 * math.atan(xz0) + math.pi / 2.0)
    else:
        psim = -17.0 * (1.0 - math.exp(-0.29 * z / L))
        psimz0 = -17.0 * (1.0 - math.exp(-0.29 * z0 / L))
    return (ustar / VON_KARMAN) * (math.log(z / z0) - psim + psimz0)


@njit(**_JIT)
def _ref_ws(z, uref, urefht, ustar, L, z0, zi):
    """REFWS: theoretical wind speed at z (linear below 7 z0, persisted above zi)."""
    vldlb = 7.0 * z0
    if urefht > vldlb and urefht <= zi:
        if z > vldlb and z <= zi:
            return _sim_wind(ustar, z, L, z0)
        elif z <= vldlb:
            return _sim_wind(ustar, vldlb, L, z0) * (z / vldlb)
        else:
            return _sim_wind(ustar, zi, L, z0)
    elif urefht > zi:
        if z > vldlb and z <= zi:
            return _sim_wind(ustar, z, L, z0)
        elif z < vldlb:
            return _sim_wind(ustar, vldlb, L, z0)
        elif z > zi:
            return uref
        return _sim_wind(ustar, vldlb, L, z0)
    else:  # urefht <= vldlb
        if z > vldlb and z <= zi:
            return _sim_wind(ustar, z, L, z0)
        elif z <= vldlb:
            return uref * (z / vldlb) / (urefht / vldlb)
        return _sim_wind(ustar, zi, L, z0)


@njit(**_JIT)
def _ref_sv(z, stable, ustar, wstar, zic, zim):
    """REFSV = sqrt(REFSVC^2 + REFSVM^2) (convective part only when unstable)."""
    sv02 = 3.6 * ustar * ustar
    sv2zi = min(sv02, 0.25)
    if z <= zim:
        svm = math.sqrt(_interp(0.0, sv02, zim, sv2zi, z))
    else:
        svm = math.sqrt(sv2zi)
    if stable:
        return svm
    sv2 = 0.35 * wstar * wstar
    zdcrs = AT1PT2 * zic
    if z <= zic:
        svc = math.sqrt(sv2)
    elif z <= zdcrs:
        svc = math.sqrt(_interp(zic, sv2, zdcrs, min(sv2, 0.25), z))
    else:
        svc = min(math.sqrt(sv2), 0.5)
    return math.sqrt(svc * svc + svm * svm)


@njit(**_JIT)
def _ref_sw(z, stable, ustar, wstar, zic, zi, swrmax):
    """REFSW: mechanical (and convective when unstable) sigma-w."""
    swr = swrmax * min(1.0, z / zi)
    if z < zi:
        swbl = 1.3 * ustar * math.sqrt(1.0 - z / zi)
    else:
        swbl = 0.0
    swm = math.sqrt(swr * swr + swbl * swbl)
    if stable:
        return max(swm, 1.0e-4)
    if z <= 0.1 * zic:
        swc = math.sqrt(1.6 * (z / zic) ** (2.0 / 3.0) * wstar * wstar)
    elif z <= zic:
        swc = math.sqrt(0.35 * wstar * wstar)
    else:
        arg = -6.0 * (z - zic) / zic
        swc = math.sqrt(0.35 * wstar * wstar * math.exp(arg)) if arg > -50.0 else 0.0
    swc = max(swc, 1.0e-4)
    swm = max(swm, 1.0e-4)
    return math.sqrt(swc * swc + swm * swm)


@njit(**_JIT)
def _ref_tg(z, stable, zi, vptgzi, thstar, L, tg4pfl, tg4xtr):
    """REFPTG: reference potential-temperature gradient [K m-1]."""
    if not stable:
        if z <= zi:
            return 0.0
        elif z <= zi + 500.0:
            return vptgzi
        return 0.005
    if z <= TGMINHT:
        v = tg4pfl
    elif z <= TGMAXHT:
        v = (thstar / (VON_KARMAN * z)) * (1.0 + 5.0 * z / L)
    else:
        arg = -(z - 100.0) / (EFOLDH * max(100.0, zi))
        v = tg4xtr * math.exp(arg) if arg > -50.0 else 0.0
    return max(v, SPTGMN)


@njit(**_JIT)
def _ref_value(kind, z, p):
    """Reference profile of kind 0 wind speed, 1 sigma-v, 2 sigma-w, 3 theta gradient.

    ``p``: uref, urefht, ustar, L, z0, zi, stable, wstar, zic, zim, swrmax, vptgzi,
    thstar, tg4pfl, tg4xtr.
    """
    stable = p[6] > 0.5
    if kind == 0:
        return _ref_ws(z, p[0], p[1], p[2], p[3], p[4], p[5])
    elif kind == 1:
        return _ref_sv(z, stable, p[2], p[7], p[8], p[9])
    elif kind == 2:
        return _ref_sw(z, stable, p[2], p[7], p[8], p[5], p[10])
    return _ref_tg(z, stable, p[5], p[11], p[12], p[3], p[13], p[14])


@njit(**_JIT)
def _grid_profile(kind, p, obs_z, obs_v, out):
    """GRDWS/GRDSV/GRDSW/GRDPTG: observed values blended with the reference profile.

    At a grid level within 0.1 m of an observation the observation is used; between two
    observations the observed values are interpolated and shaped by the reference profile
    (NTRPxx); outside the observed range the nearest observation is scaled by the ratio of
    reference values (XTRPxx). With no observation the reference profile is used (the wind
    speed is then scaled to the reference wind speed, XTRPWS(UREFHT, UREF)).
    NaN marks a missing observation.
    """
    n = obs_z.shape[0]
    nv = 0
    for k in range(n):
        if not (math.isnan(obs_v[k]) or math.isnan(obs_z[k])):
            nv += 1
    zs = np.empty(nv)
    vs = np.empty(nv)
    j = 0
    for k in range(n):
        if not (math.isnan(obs_v[k]) or math.isnan(obs_z[k])):
            zs[j] = obs_z[k]
            vs[j] = obs_v[k]
            j += 1
    for g in range(NLEV):
        zg = GRID_HEIGHTS[g]
        if nv == 0:
            if kind == 0:
                r_obs = _ref_value(0, p[1], p)
                v = p[0] * _ref_value(0, zg, p) / r_obs if r_obs > 0.0 else p[0]
            else:
                v = _ref_value(kind, zg, p)
        else:
            match = -1
            for k in range(nv):
                if abs(zs[k] - zg) <= 0.1:
                    match = k
                    break
            if match >= 0:
                v = vs[match]
            elif zg < zs[0] or zg > zs[nv - 1]:
                k = 0 if zg < zs[0] else nv - 1
                if kind == 3 and zg < zs[0]:
                    v = _ref_value(3, zg, p)  # XTRPDN: similarity below the lowest gradient
                else:
                    r_obs = _ref_value(kind, zs[k], p)
                    r_g = _ref_value(kind, zg, p)
                    if kind == 3 and zs[k] > 100.0:
                        v = vs[k] * math.exp(-(zg - zs[k]) / (EFOLDH * max(100.0, p[5])))
                    elif abs(r_obs) < 1e-4 and kind == 3:
                        v = vs[k]
                    elif r_obs != 0.0:
                        v = vs[k] * r_g / r_obs
                    else:
                        v = vs[k]
            else:
                k = 0
                while zs[k + 1] < zg:
                    k += 1
                rb = _ref_value(kind, zs[k], p)
                ra = _ref_value(kind, zs[k + 1], p)
                rr = _ref_value(kind, zg, p)
                vint = _interp(zs[k], vs[k], zs[k + 1], vs[k + 1], zg)
                rint = _interp(zs[k], rb, zs[k + 1], ra, zg)
                if kind == 3 and abs(ra - rb) <= 1e-4:
                    v = vint
                elif rint != 0.0:
                    v = rr / rint * vint
                else:
                    v = vint
        if kind == 0:
            v = max(UMINGR, v)
        out[g] = v


@njit(**_JIT)
def _residual_sigma_w(obs_z, obs_sw, zi, u_zi):
    """SWRMAX [m s-1], the residual sigma-w of REFSWM (metext.f SET_METDATA, before GRDSW).

    The mean of the observed sigma-w at profile levels at or above zi when there are any,
    else 0.02 u(zi).
    """
    nsw = 0
    sumsw = 0.0
    for k in range(obs_z.shape[0]):
        if obs_z[k] >= zi and not math.isnan(obs_sw[k]):
            nsw += 1
            sumsw += obs_sw[k]
    return sumsw / nsw if nsw > 0 else 0.02 * u_zi


@njit(**_JIT)
def _wrap_deg(w):
    """Direction into (0, 360] degrees (AERMOD keeps 360 for north)."""
    if w > 360.0:
        return w - 360.0
    if w <= 0.0:
        return w + 360.0
    return w


@njit(**_JIT)
def _grid_wd(obs_z, obs_wd, wdref, out):
    """GRDWD (windgrid.f): gridded wind direction [deg from] from the observed profile.

    At a grid level within 0.1 m of an observation the observation is used; between two
    observed levels the direction is interpolated linearly across the shorter arc (NTRPWD,
    whose reference-profile ratio is 1 because AERMOD's reference direction does not turn
    with height); below the lowest and above the highest observation that observation is
    persisted (XTRPWD); with no observation, the ``.SFC`` reference direction. Interpolated
    values are wrapped into (0, 360]; others are kept as given.
    """
    n = obs_z.shape[0]
    nv = 0
    for k in range(n):
        if not (math.isnan(obs_wd[k]) or math.isnan(obs_z[k])):
            nv += 1
    zs = np.empty(nv)
    ws = np.empty(nv)
    j = 0
    for k in range(n):
        if not (math.isnan(obs_wd[k]) or math.isnan(obs_z[k])):
            zs[j] = obs_z[k]
            ws[j] = obs_wd[k]
            j += 1
    for g in range(NLEV):
        zg = GRID_HEIGHTS[g]
        if nv == 0:
            out[g] = wdref
            continue
        match = -1
        for k in range(nv):
            if abs(zs[k] - zg) <= 0.1:
                match = k
                break
        if match >= 0:
            out[g] = ws[match]
        elif zg < zs[0]:
            out[g] = ws[0]
        elif zg > zs[nv - 1]:
            out[g] = ws[nv - 1]
        else:
            k = 0
            while zs[k + 1] < zg:
                k += 1
            below = ws[k]
            above = ws[k + 1]
            if above - below < -180.0:
                above += 360.0
            elif above - below > 180.0:
                above -= 360.0
            out[g] = _wrap_deg(_interp(zs[k], below, zs[k + 1], above, zg))


@njit(**_JIT)
def _wd_at(gwd, z):
    """METINI: gridded direction interpolated to height z across the shorter arc."""
    i = _locate(z)
    below = gwd[i]
    above = gwd[i + 1]
    if above - below < -180.0:
        above += 360.0
    elif above - below > 180.0:
        above -= 360.0
    if below == above:
        return below  # as observed (or the .SFC direction); 0 and 360 are both north
    return _wrap_deg(_interp(GRID_HEIGHTS[i], below, GRID_HEIGHTS[i + 1], above, z))


# ----------------------------------------------------------------------------------------
# Dispersion at one downwind distance
# ----------------------------------------------------------------------------------------
@njit(**_JIT)
def _image_sum(h, s, H):
    """sum_k exp(-(h + 2kH)^2 / (2 s^2)) over all integers k (reflections at 0 and H).

    Direct sum for s <= H/2, otherwise the Poisson-summation (theta function) identity
    sum_k f(h + kP) = (s sqrt(2 pi)/P) [1 + 2 sum_m exp(-2 pi^2 s^2 m^2/P^2) cos(2 pi m h/P)],
    P = 2H.
    """
    if s <= 0.5 * H:
        total = math.exp(-0.5 * (h / s) ** 2)
        k = 1
        while k < 200:
            t1 = math.exp(-0.5 * ((h + 2.0 * k * H) / s) ** 2)
            t2 = math.exp(-0.5 * ((h - 2.0 * k * H) / s) ** 2)
            total += t1 + t2
            if t1 + t2 <= 1e-18 * total and 2.0 * k * H > abs(h):
                break
            k += 1
        return total
    P = 2.0 * H
    total = 1.0
    m = 1
    while m < 200:
        e = math.exp(-2.0 * (math.pi * s * m / P) ** 2)
        total += 2.0 * e * math.cos(2.0 * math.pi * m * h / P)
        if e < 1e-18:
            break
        m += 1
    return s * SQRT_2PI / P * total


@njit(**_JIT)
def _stable_sigmas(x, hs, he, zi, zim, ustar, L, ueff, sveff, sweff, tgeff, ptp, szinit,
                   urbstab=False):
    """Stable sigma-y (SIGY) and sigma-z (SIGZ, SZSFCL, RMSSIG) at distance x.

    ``urbstab``: urban stable boundary layer, where SIGZ drops the Brunt-Vaisala term.
    """
    t = x / ueff
    bvf = math.sqrt(GRAVITY * tgeff / ptp) if tgeff > 0.0 else 1e-10
    bvf = max(bvf, 1e-10)
    if urbstab:
        bvf = 0.0
    ztmp = max(hs, he, 1e-4)
    szamb = sweff * t / math.sqrt(1.0 + sweff * t * (1.0 / (0.72 * ztmp) + bvf / (0.54 * sweff)))
    if he < zi:
        szsurf = SQRT_2_OVER_PI * ustar * t * (1.0 + 0.7 * x / L) ** (-1.0 / 3.0)
        sigf = min(he / zi, 1.0)
        szas = (1.0 - sigf) * szsurf + sigf * szamb
    else:
        szas = szamb
    sz = math.sqrt(szas * szas + szinit * szinit)
    svovru = max(SVUMIN, sveff / ueff)
    tyeff = (zim / (156.0 * sveff)) * (max(he, 0.46) / 0.46)
    sy = svovru * x / (1.0 + x / (2.0 * ueff * tyeff)) ** 0.3
    return sy, sz


@njit(**_JIT)
def _eff_floor(u, sv, sw):
    sw = max(sw, SWMIN)
    sv = max(sv, SVMIN, SVUMIN * u)
    u = max(u, WSMIN)
    return u, sv, sw


@njit(**_JIT)
def _stable_point(x, hs, szinit, zi, zim, ustar, L, gws, gsv, gsw, gtg, gpt, u_he, zr,
                  urbstab=False):
    """(g, sigma_y) for a stable hour (or a release at/above zi), receptor height zr [m].

    Effective parameters over IBLVAL's layer: 0..min(5 m, zi) when the plume and the
    receptor are both within 5 m of the ground, else between the plume height and 2.15
    sigma-z towards the receptor (clipped at the receptor height).
    """
    he = hs
    ptp = _grid_value(gpt, he)
    if he <= SURFACE_LAYER_TOP and zr <= SURFACE_LAYER_TOP:
        ztop = min(SURFACE_LAYER_TOP, zi)
        ue = _layer_average(gws, 0.0, ztop)
        sv = _layer_average(gsv, 0.0, ztop)
        sw = _layer_average(gsw, 0.0, ztop)
        tg = _layer_average(gtg, 0.0, ztop)
        ue, sv, sw = _eff_floor(ue, sv, sw)
    else:
        ue = _grid_value(gws, he)
        sv = _grid_value(gsv, he)
        sw = _grid_value(gsw, he)
        tg = _grid_value(gtg, he)
        ue, sv, sw = _eff_floor(ue, sv, sw)
        # one pass, as IBLVAL: sigma-z from the values at the plume height sets the layer
        # (IBLVAL re-initialises from HE on every call, so repeated calls give the same layer)
        for _ in range(1):
            sy, sz = _stable_sigmas(x, hs, he, zi, zim, ustar, L, ue, sv, sw, tg, ptp, szinit, urbstab)
            if he > zr:
                zlo = max(he - SZCOEF * sz, zr)
                zhi = he
            else:
                zlo = he
                zhi = min(he + SZCOEF * sz, zr)
            ue = _layer_average(gws, zlo, zhi)
            sv = _layer_average(gsv, zlo, zhi)
            sw = _layer_average(gsw, zlo, zhi)
            tg = _layer_average(gtg, zlo, zhi)
            ue, sv, sw = _eff_floor(ue, sv, sw)
    sy, sz = _stable_sigmas(x, hs, he, zi, zim, ustar, L, ue, sv, sw, tg, ptp, szinit, urbstab)
    # REFL_HT: reflecting surface from sigma-z evaluated with the wind at HE
    syr, szr = _stable_sigmas(x, hs, he, zi, zim, ustar, L, u_he, sv, sw, tg, ptp, szinit, urbstab)
    hsbl = max(zi, he + SZCOEF * szr)
    if zr == 0.0:
        fz = 2.0 * _image_sum(he, sz, hsbl) / (SQRT_2PI * sz)
    elif zr <= hsbl:
        # VRTSBL: ground and HSBL images
        fz = (_image_sum(zr - he, sz, hsbl) + _image_sum(zr + he, sz, hsbl)) / (SQRT_2PI * sz)
    else:
        # VRTSBN: receptor above HSBL, ground image only
        fz = (math.exp(-0.5 * ((zr - he) / sz) ** 2)
              + math.exp(-0.5 * ((zr + he) / sz) ** 2)) / (SQRT_2PI * sz)
    return fz / ue, sy


@njit(**_JIT)
def _pdf(sw, wstar, center, zi, surfac):
    """Weil bi-Gaussian PDF coefficients (calc2.f PDF): a1, a2, b1, b2, lambda1, lambda2."""
    if surfac:
        w3 = 1.25 * wstar**3 * center / zi
    else:
        w3 = 0.125 * wstar**3
    skew = w3 / sw**3
    root = math.sqrt(ALPHA_PDF**2 * skew * skew + 4.0 / BETA_PDF)
    a1 = (sw / wstar) * (0.5 * ALPHA_PDF * skew + 0.5 * root)
    a2 = (sw / wstar) * (0.5 * ALPHA_PDF * skew - 0.5 * root)
    b1 = R_PDF * a1
    b2 = -R_PDF * a2
    lam1 = a2 / (a2 - a1)
    return a1, a2, b1, b2, lam1, 1.0 - lam1


@njit(**_JIT)
def _cbl_sigmas(x, hs, zi, ustar, wstar, L, ue, sv, sw, center, surfac, szinit):
    a1, a2, b1, b2, lam1, lam2 = _pdf(sw, wstar, center, zi, surfac)
    alphab = 0.6 + 0.4 * (center / (0.1 * zi)) if surfac else 1.0
    sza1 = alphab * b1 * wstar * x / ue
    sza2 = alphab * b2 * wstar * x / ue
    if surfac:
        szsurf = 0.5 * (1.0 - 10.0 * center / zi) * (ustar / ue) ** 2 * x * x / abs(L)
    else:
        szsurf = 0.0
    sz1 = math.sqrt(sza1 * sza1 + szsurf * szsurf + szinit * szinit)
    sz2 = math.sqrt(sza2 * sza2 + szsurf * szsurf + szinit * szinit)
    svovru = max(SVUMIN, sv / ue)
    betalph = max(78.0 * (0.46 / max(hs, 0.46)), 0.7)
    sy = svovru * x / (1.0 + betalph * svovru * x / zi) ** 0.3
    h1 = hs + a1 * wstar * x / ue
    h2 = hs + a2 * wstar * x / ue
    return sy, sz1, sz2, h1, h2, lam1, lam2


@njit(**_JIT)
def _cbl_point(x, hs, szinit, zi, ustar, wstar, L, xmixed, gws, gsv, gsw, zr):
    """(g, sigma_y) for a convective hour, release below zi (Weil PDF model), receptor
    height zr [m] (0 above zi, VRTCBL)."""
    if hs < 0.5 * zi:
        center = min(hs + (x / xmixed) * (0.5 * zi - hs), 0.5 * zi)
    else:
        center = hs
    surfac = center < 0.1 * zi
    ue = _grid_value(gws, center)
    sv = _grid_value(gsv, center)
    sw = _grid_value(gsw, center)
    ue, sv, sw = _eff_floor(ue, sv, sw)
    for _ in range(N_FIXED_POINT):
        sy, sz1, sz2, h1, h2, lam1, lam2 = _cbl_sigmas(x, hs, zi, ustar, wstar, L, ue, sv, sw,
                                                       center, surfac, szinit)
        szd = 0.5 * (sz1 + sz2)
        if center <= SURFACE_LAYER_TOP and zr <= SURFACE_LAYER_TOP:
            zhi = min(SURFACE_LAYER_TOP, zi)
            zlo = 0.0
        elif center > zr:
            zhi = min(center, zi)
            zlo = max(center - SZCOEF * szd, zr)
        else:
            zhi = min(center + SZCOEF * szd, zr, zi)
            zlo = center
        if zhi > zlo:
            ue = _layer_average(gws, zlo, zhi)
            sv = _layer_average(gsv, zlo, zhi)
            sw = _layer_average(gsw, zlo, zhi)
        else:
            ue = _grid_value(gws, zi)
            sv = _grid_value(gsv, zi)
            sw = _grid_value(gsw, zi)
        ue, sv, sw = _eff_floor(ue, sv, sw)
    sy, sz1, sz2, h1, h2, lam1, lam2 = _cbl_sigmas(x, hs, zi, ustar, wstar, L, ue, sv, sw,
                                                   center, surfac, szinit)
    if zr == 0.0:
        fz = (lam1 * 2.0 * _image_sum(h1, sz1, zi) / (SQRT_2PI * sz1)
              + lam2 * 2.0 * _image_sum(h2, sz2, zi) / (SQRT_2PI * sz2))
    elif zr <= zi:
        # VRTCBL direct (i >= 0) and indirect (i <= -1) images together: every 2 i zi
        fz = (lam1 * (_image_sum(zr - h1, sz1, zi) + _image_sum(zr + h1, sz1, zi)) / (SQRT_2PI * sz1)
              + lam2 * (_image_sum(zr - h2, sz2, zi) + _image_sum(zr + h2, sz2, zi))
              / (SQRT_2PI * sz2))
    else:
        fz = 0.0
    return fz / ue, sy


@njit(**_JIT)
def _hour_setup(hour, prof_z, prof_ws, prof_wd, prof_sv, prof_sw, prof_t, hs, szinit, zr,
                urban_pop, urban_z0, out_lng, out_lnsy):
    """Build the gridded profiles of one hour and fill its ln g / ln sigma-y tables.

    Returns the wind direction [deg from] at the release height.
    """
    uref = hour[H_U]
    wdref = hour[H_WD]
    urefht = hour[H_ZREF]
    ustar = hour[H_USTAR]
    wstar = hour[H_WSTAR]
    L = hour[H_L]
    zic = hour[H_ZIC]
    zim = hour[H_ZIM]
    z0 = hour[H_Z0]
    ta = hour[H_T]
    vptgzi = hour[H_VPTG]
    if math.isnan(vptgzi):
        vptgzi = 0.005
    ztemp = hour[H_ZT]
    if math.isnan(ztemp):
        ztemp = 2.0
    stable = L > 0.0
    if stable or math.isnan(zic):
        zi = zim
        zic_ = zim
    else:
        zi = max(zic, zim)
        zic_ = zic
    if math.isnan(wstar) or stable:
        wstar = 0.0
    # temperature-gradient reference (TGINIT): observed gradients from the temperature profile
    nl = prof_z.shape[0]
    obs_tg = np.full(max(nl, 1), np.nan)
    obs_tgz = np.full(max(nl, 1), np.nan)
    ntg = 0
    lo = -1
    for k in range(nl):
        if not math.isnan(prof_t[k]) and not math.isnan(prof_z[k]):
            if lo >= 0:
                obs_tg[ntg] = (prof_t[k] - prof_t[lo]) / (prof_z[k] - prof_z[lo]) + GOVRCP
                obs_tgz[ntg] = 0.5 * (prof_z[k] + prof_z[lo])
                if stable:
                    obs_tg[ntg] = max(SPTGMN, obs_tg[ntg])
                ntg += 1
            lo = k
    thstar = 0.0
    tg4pfl = 0.0
    tg4xtr = 0.0
    if stable:
        reflvl = -1.0
        for k in range(ntg):
            if obs_tgz[k] > z0:
                reflvl = obs_tgz[k]
                thstar = obs_tg[k] * VON_KARMAN * reflvl / (1.0 + 5.0 * reflvl / L)
                break
        if not (reflvl > 0.0 and reflvl <= 100.0):
            thstar = ustar * ustar / (GRAVITY * VON_KARMAN * L / ta)
        tg4pfl = (thstar / (VON_KARMAN * TGMINHT)) * (1.0 + 5.0 * TGMINHT / L)
        tg4xtr = (thstar / (VON_KARMAN * TGMAXHT)) * (1.0 + 5.0 * TGMAXHT / L)
    p = np.empty(15)
    p[0] = uref
    p[1] = urefht
    p[2] = ustar
    p[3] = L
    p[4] = z0
    p[5] = zi
    p[6] = 1.0 if stable else 0.0
    p[7] = wstar
    p[8] = zic_
    p[9] = zim
    p[10] = 0.0
    p[11] = vptgzi
    p[12] = thstar
    p[13] = tg4pfl
    p[14] = tg4xtr
    gws = np.empty(NLEV)
    _grid_profile(0, p, prof_z, prof_ws, gws)
    p[10] = _residual_sigma_w(prof_z, prof_sw, zi, _grid_value(gws, zi))
    gsv = np.empty(NLEV)
    _grid_profile(1, p, prof_z, prof_sv, gsv)
    gsw = np.empty(NLEV)
    _grid_profile(2, p, prof_z, prof_sw, gsw)
    gtg = np.empty(NLEV)
    if stable:
        _grid_profile(3, p, obs_tgz[:ntg], obs_tg[:ntg], gtg)
    else:
        for g in range(NLEV):
            gtg[g] = _ref_tg(GRID_HEIGHTS[g], False, zi, vptgzi, 0.0, L, 0.0, 0.0)
    for g in range(NLEV):
        if stable or GRID_HEIGHTS[g] > zi:
            gtg[g] = max(SPTGMN, gtg[g])
    # potential temperature (GRDPT) from T at the temperature reference height
    gpt = np.empty(NLEV)
    nb = _locate(ztemp)
    ptref = ta + GOVRCP * ztemp
    gpt[nb] = ptref - 0.5 * (gtg[nb + 1] + gtg[nb]) * (ztemp - GRID_HEIGHTS[nb])
    for g in range(nb - 1, -1, -1):
        gpt[g] = gpt[g + 1] - 0.5 * (gtg[g + 1] + gtg[g]) * (GRID_HEIGHTS[g + 1] - GRID_HEIGHTS[g])
    for g in range(nb + 1, NLEV):
        gpt[g] = gpt[g - 1] + 0.5 * (gtg[g] + gtg[g - 1]) * (GRID_HEIGHTS[g] - GRID_HEIGHTS[g - 1])
    # mixed-layer averages for XMIXED (rural zi): METEXT ZIAVER, from the ground (0 m) to zi;
    # ANYAVG's 0.5 m floor does not apply here (it made XMIXED 0.06 % larger in caseD
    # hour 88062709, z0 = 1 m, so sigma-y 0.02 % larger at 600-900 m)
    uavg = _ziaver(gws, zi)
    swavg = _ziaver(gsw, zi)
    urbstab = False
    if urban_pop > 0.0:
        urbstab, zi, ustar, L = _urban_boundary_layer(urban_pop, urban_z0, stable, zic, zim, zi,
                                                      ustar, L, z0, ta, gsv, gsw)
    # transport direction: the gridded direction profile (GRDWD) interpolated to the release
    # height (METINI); below the lowest observed level the lowest observation holds
    gwd = np.empty(NLEV)
    _grid_wd(prof_z, prof_wd, wdref, gwd)
    wd = _wd_at(gwd, hs)
    # stack-height values (METINI, with its floors): AERMOD's lateral cutoff test in ACALC
    # evaluates sigma-y at XMAXR with these initial effective parameters (ADISY -> SIGY)
    us = _grid_value(gws, hs)
    svs = _grid_value(gsv, hs)
    us, svs, sws = _eff_floor(us, svs, 0.0)
    svovru_s = max(SVUMIN, svs / us)
    if stable or hs >= zi:
        tys = (zim / (156.0 * svs)) * (max(hs, 0.46) / 0.46)
        cut_b = 1.0 / (2.0 * us * tys)
    else:
        cut_b = max(78.0 * (0.46 / max(hs, 0.46)), 0.7) * svovru_s / zi
    out_lnsy[NX] = svovru_s
    out_lnsy[NX + 1] = cut_b
    if stable or hs >= zi:
        u_he = max(_grid_value(gws, hs), WSMIN)
        for k in range(NX):
            x = X_MIN * math.exp(k * DLNX)
            gv, sy = _stable_point(x, hs, szinit, zi, zim, ustar, L, gws, gsv, gsw, gtg, gpt, u_he,
                                   zr, urbstab)
            out_lng[k] = math.log(gv) if gv > 0.0 else LN_FLOOR
            out_lnsy[k] = math.log(sy)
    else:
        xmixed = zi * uavg / swavg
        for k in range(NX):
            x = X_MIN * math.exp(k * DLNX)
            gv, sy = _cbl_point(x, hs, szinit, zi, ustar, wstar, L, xmixed, gws, gsv, gsw, zr)
            out_lng[k] = math.log(gv) if gv > 0.0 else LN_FLOOR
            out_lnsy[k] = math.log(sy)
    return wd


#: AERMOD urban parameters (modules.f REFPOP, DELTRUR; metext.f URBCALC REFZI, CP)
URBAN_REF_POPULATION = 2.0e6
URBAN_REF_DELTA_T = 12.0     # K, urban-rural temperature difference at the reference population
URBAN_REF_ZI = 400.0         # m, urban mixing height at the reference population
URBAN_CP = 1004.0            # J kg-1 K-1


@njit(**_JIT)
def _urban_boundary_layer(pop, urban_z0, stable, zic, zim, zi, ustar, L, z0, ta, gsv, gsw):
    """AERMOD's urban boundary layer for an urban source (metext.f URBCALC, GRDURBAN; calc1.f
    ACALC). Modifies ``gsv``/``gsw`` in place for urban hours; returns
    (urbstab, zi, u*, L).

    Urban hours are the stable ones and the convective ones of the morning transition (zic
    at most the urban mixing height; on by default in v24142). Then: ZIURB = 400 m
    (P / 2e6)^0.25, dT = 12 K (0.1 ln(P / 2e6) + 1), urban heat flux 0.03 dT u* rho cp,
    urban w*, urban u* from the equality of convective and mechanical sigma-w at 7 max(z0
    urban, z0), an equivalent Obukhov length (the more neutral of urban and rural at night,
    the more convective in the morning transition, used by magnitude); sigma-v and sigma-w
    get the urban convective part in quadrature; zi = max(ZIURB, zim). The wind profile
    stays rural. The urban temperature-gradient profile only enters the Brunt-Vaisala term,
    which AERMOD drops in the urban stable layer (SIGZ with URBSTAB), so it is not built.
    """
    ziurb = URBAN_REF_ZI * (pop / URBAN_REF_POPULATION) ** 0.25
    morning = (not stable) and zic <= ziurb
    if not (stable or morning):
        return False, zi, ustar, L
    deltur = URBAN_REF_DELTA_T * (0.1 * math.log(pop / URBAN_REF_POPULATION) + 1.0)
    rho = 101325.0 / (287.04 * ta)
    urbhf = 0.03 * deltur * ustar * rho * URBAN_CP
    urbwstr = ((GRAVITY / ta / rho / URBAN_CP) * urbhf * ziurb) ** (1.0 / 3.0)
    ht7z0 = 7.0 * max(urban_z0, z0)
    urbustr = max(ustar, urbwstr * math.sqrt(1.6 * (ht7z0 / ziurb) ** (2.0 / 3.0))
                  / (1.3 * math.sqrt(1.0 - ht7z0 / max(ziurb, zim))))
    urbl = -(rho * URBAN_CP * ta * urbustr ** 3) / (VON_KARMAN * GRAVITY * urbhf)
    if morning:
        urbl = max(urbl, L)
    else:
        urbl = max(abs(urbl), L)
    sv2 = 0.35 * urbwstr * urbwstr
    zdcrs = AT1PT2 * ziurb
    for g in range(NLEV):
        z = GRID_HEIGHTS[g]
        if z <= ziurb:
            svu = math.sqrt(sv2)
        elif z <= zdcrs:
            svu = math.sqrt(_interp(ziurb, sv2, zdcrs, min(sv2, 0.25), z))
        else:
            svu = min(math.sqrt(sv2), 0.5)
        if z <= 0.1 * ziurb:
            swu = math.sqrt(1.6 * (z / ziurb) ** (2.0 / 3.0) * urbwstr * urbwstr)
        elif z <= ziurb:
            swu = math.sqrt(sv2)
        else:
            swu = math.sqrt(sv2 * math.exp(-6.0 * (z - ziurb) / ziurb))
        gsv[g] = math.sqrt(gsv[g] * gsv[g] + svu * svu)
        gsw[g] = math.sqrt(gsw[g] * gsw[g] + swu * swu)
    return True, max(ziurb, zim), urbustr, abs(urbl)


@njit(**_JIT)
def _spread_step(n):
    """A step p coprime to n near 0.618 n: ``k -> (k p) % n`` visits 0..n-1 once each.

    numba splits a ``prange`` into one contiguous block of iterations per thread; a loop
    over ``k`` that works on item ``(k p) % n`` gives every block items from all over the
    range (golden-ratio spacing). The parallel loops below use it for their outer index
    (kernel rows, receptors, hours), whose costs change smoothly with the index, so that a
    costly half (the downwind rows of a prevailing wind, the receptors near a source) is
    shared by the threads instead of landing on one. Results do not depend on the order.
    """
    if n <= 2:
        return 1
    p = max(1, int(0.6180339887498949 * n))
    while True:
        a = p
        b = n
        while b:
            a, b = b, a % b
        if a == 1:
            return p
        p += 1


@njit(parallel=True, **_JIT)
def build_hour_tables(hours, prof_z, prof_ws, prof_wd, prof_sv, prof_sw, prof_t,
                      release_height, initial_sigma_z, receptor_height, urban_population,
                      urban_z0, out_lng, out_lnsy, out_wd):
    """Fill per-hour tables of ln g(x) and ln sigma_y(x) on the ``x`` grid.

    Parameters
    ----------
    hours : float64 (n, 13)
        Hour records, columns as ``HOUR_FIELDS``. Rows with ``valid == 0`` are skipped
        (their tables are left as ``LN_FLOOR``).
    prof_z, prof_ws, prof_wd, prof_sv, prof_sw, prof_t : float64 (n, n_levels)
        Observed profile: height [m], wind speed [m s-1], direction [deg], sigma-v [m s-1],
        sigma-w [m s-1], temperature [K]; NaN = missing (or padding).
    release_height : float
        [m]
    initial_sigma_z : float
        [m]
    receptor_height : float
        Receptor height above ground (AERMOD flagpole height, ZRT in flat terrain) [m].
    urban_population : float
        AERMOD URBANOPT population for an urban source, 0 for a rural one.
    urban_z0 : float
        Urban roughness length [m] (URBANOPT; 1 m in the regulatory default).
    out_lng : float64 (n, NX)
        Output table of ln g.
    out_lnsy : float64 (n, NX + 2)
        Output table of ln sigma-y; columns NX and NX + 1 hold the coefficients (a, b) of
        sigma-y = a x / (1 + b x)^0.3 with the release-height parameters (AERMOD's lateral
        cutoff test, :func:`cell_concentration`).
    out_wd : float64 (n,)
        Output wind direction at the release height [deg from].
    """
    n = hours.shape[0]
    step = _spread_step(n)
    for q in prange(n):  # hours in spread order: stable and convective hours cost unlike
        h = (q * step) % n
        if hours[h, H_VALID] < 0.5:
            for k in range(NX):
                out_lng[h, k] = LN_FLOOR
                out_lnsy[h, k] = 0.0
            out_lnsy[h, NX] = 0.0
            out_lnsy[h, NX + 1] = 0.0
            out_wd[h] = np.nan
            continue
        out_wd[h] = _hour_setup(hours[h], prof_z[h], prof_ws[h], prof_wd[h], prof_sv[h],
                                prof_sw[h], prof_t[h], release_height, initial_sigma_z,
                                receptor_height, urban_population, urban_z0, out_lng[h],
                                out_lnsy[h])


# ----------------------------------------------------------------------------------------
# Cell-integrated transfer function
# ----------------------------------------------------------------------------------------
@njit(**_JIT)
def table_lookup(tab, x):
    """Linear interpolation of a ln-table at distance x [m] (linear in ln x)."""
    s = math.log(x / X_MIN) / DLNX
    if s <= 0.0:
        return tab[0]
    i = int(s)
    if i >= NX - 1:
        i = NX - 2
    f = s - i
    return tab[i] + f * (tab[i + 1] - tab[i])


@njit(**_JIT)
def _chord_fraction(vlo, vhi, sy):
    """Phi(vhi/sy) - Phi(vlo/sy), computed without cancellation."""
    a = vlo / sy * INV_SQRT2
    b = vhi / sy * INV_SQRT2
    if a >= 0.0:
        r = 0.5 * (math.erfc(a) - math.erfc(b))
    elif b <= 0.0:
        r = 0.5 * (math.erfc(-b) - math.erfc(-a))
    else:
        r = 1.0 - 0.5 * math.erfc(-a) - 0.5 * math.erfc(b)
    return r if r > 0.0 else 0.0


@njit(**_JIT)
def _ga_lower(s):
    """AERMOD's tabulated normal CDF for s <= 0: linear interpolation in GA, 0 below -3.9."""
    if s <= -GA_LIMIT:
        return 0.0
    z = (s + GA_LIMIT) / GA_STEP
    j = int(z)
    if j >= 39:
        return 0.5
    f = z - j
    return GA_LOWER[j] + f * (GA_LOWER[j + 1] - GA_LOWER[j])


@njit(**_JIT)
def _chord_fraction_table(vlo, vhi, sy):
    """P(vhi/sy) - P(vlo/sy) with AERMOD's tabulated CDF P (PWIDTH), from the lower tail.

    Uses P(s) = 1 - P(-s) so that only lower-tail values are differenced (no cancellation,
    exact mirror symmetry). Beyond +-3.9 sigma P is 0 or 1: the part of a side outside the
    plume contributes nothing and the part inside contributes 1 (AERMOD PSIDE2 segments).
    """
    a = vlo / sy
    b = vhi / sy
    if a >= 0.0:
        r = _ga_lower(-a) - _ga_lower(-b)
    elif b <= 0.0:
        r = _ga_lower(b) - _ga_lower(a)
    else:
        r = 1.0 - _ga_lower(a) - _ga_lower(-b)
    return r if r > 0.0 else 0.0


@njit(**_JIT)
def _table_position(t):
    """Index i and fraction f of t = ln(x) in the hour tables (ln-spaced, clamped to the ends)."""
    z = (t - LN_X_MIN) / DLNX
    if z <= 0.0:
        return 0, 0.0
    i = int(z)
    if i >= NX - 1:
        i = NX - 2
    return i, z - i


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
    # insertion sort (n <= 2 + 4 * N_CROSS_SAMPLES)
    for i in range(1, n):
        v = cuts[i]
        j = i - 1
        while j >= 0 and cuts[j] > v:
            cuts[j + 1] = cuts[j]
            j -= 1
        cuts[j + 1] = v
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
    # breakpoints: vertices and zero crossings of edges
    bp = np.empty(10)
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
    bps = np.sort(bp[:nb])
    far = (ua >= FAR_RATIO * (umax - umin)
           and math.exp(table_lookup(lnsy, ua)) >= FAR_SIGMA_RATIO * width)
    cdf = lateral_cdf
    # work array of the +-3.9 sigma-y crossing search (AERMOD-table path only)
    cuts = np.empty(2 + 4 * N_CROSS_SAMPLES if cdf == LATERAL_CDF_AERMOD_TABLE else 0)
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
        stack = np.empty((2, MAX_STACK))
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
        stack = np.empty((2, MAX_STACK))
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
        stack = np.empty((2, MAX_STACK))
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
        stack = np.empty((2, MAX_STACK))
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

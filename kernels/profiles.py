"""AERMOD's gridded profiles for one hour (windgrid.f, siggrid.f, tempgrid.f; kernels).

The physical constants of AERMOD v24142 (modules.f, coset.f), the 87-level profile grid
GRIDHT, the hour-record layout ``HOUR_FIELDS``, and the routines that build the gridded wind,
sigma-v, sigma-w and theta-gradient profiles from the observed profile and similarity theory,
plus their layer averages (ANYAVG, ZIAVER) and the transport direction at a height. Part of
the plume kernels (:mod:`kernels.plume` is the public face; the physics is described there).
"""

import math

import numpy as np
from numba import njit

from kernels import FASTMATH
from kernels.constants import GRAVITY, VON_KARMAN  # 9.80616 m s-2 (AERMOD G), 0.4

_JIT = dict(nogil=True, cache=True, fastmath=FASTMATH)


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
SURFACE_LAYER_TOP = 5.0      # m, averaging layer for surface releases
N_FIXED_POINT = 4            # CBL effective-parameter passes (docs/aermod-formulation.md §4)
R_PDF = 2.0                  # Weil PDF: R = sigma_i / w_i
ALPHA_PDF = (1.0 + R_PDF**2) / (1.0 + 3.0 * R_PDF**2)
BETA_PDF = 1.0 + R_PDF**2
SQRT_2PI = math.sqrt(2.0 * math.pi)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT2 = 1.0 / math.sqrt(2.0)

#: per-hour scalar record (columns of the ``hours`` array)
HOUR_FIELDS = (
    "wind_speed", "wind_from", "reference_height", "ustar", "wstar", "obukhov_length",
    "zic", "zim", "z0", "temperature", "theta_gradient", "temperature_height", "valid",
)
H_U, H_WD, H_ZREF, H_USTAR, H_WSTAR, H_L, H_ZIC, H_ZIM, H_Z0, H_T, H_VPTG, H_ZT, H_VALID = range(13)



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

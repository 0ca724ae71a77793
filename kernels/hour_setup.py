"""One met hour: gridded profiles, urban boundary layer and the hour's x-tables.

:func:`build_hour_tables` fills, per hour, ``ln g(x)`` and ``ln sigma_y(x)`` for one release
height, initial sigma-z and receptor height (any height >= 0: AERMOD's stable/convective
branches, CENTROID, IBLVAL and REFL_HT follow the release height), with AERMOD's urban
boundary layer for URBANOPT sources. Part of the plume kernels (:mod:`kernels.plume`).
"""

import math

import numpy as np
from numba import njit, prange

from kernels import FASTMATH
from kernels.constants import GRAVITY, VON_KARMAN  # 9.80616 m s-2 (AERMOD G), 0.4
from kernels.profiles import AT1PT2, GOVRCP, GRID_HEIGHTS, H_L, H_T, H_U, H_USTAR, H_VALID, H_VPTG, H_WD, H_WSTAR, H_Z0, H_ZIC, H_ZIM, H_ZREF, H_ZT, NLEV, SPTGMN, SVUMIN, TGMAXHT, TGMINHT, _grid_profile, _grid_value, _grid_wd, _interp, _locate, _ref_tg, _residual_sigma_w, _wd_at, _ziaver
from kernels.sigmas import _cbl_point, _eff_floor, _stable_point
from kernels.xtable import DLNX, LN_FLOOR, NX, X_MIN, _spread_step

_JIT = dict(nogil=True, cache=True, fastmath=FASTMATH)


@njit(**_JIT)
def _potential_temperature(gtg, ta, ztemp, gpt):
    """Gridded potential temperature (tempgrid.f GRDPT, metext.f GRDPTURB): from T at the
    temperature reference height, integrating the gradient profile ``gtg`` (trapezoids)."""
    nb = _locate(ztemp)
    ptref = ta + GOVRCP * ztemp
    gpt[nb] = ptref - 0.5 * (gtg[nb + 1] + gtg[nb]) * (ztemp - GRID_HEIGHTS[nb])
    for g in range(nb - 1, -1, -1):
        gpt[g] = gpt[g + 1] - 0.5 * (gtg[g + 1] + gtg[g]) * (GRID_HEIGHTS[g + 1] - GRID_HEIGHTS[g])
    for g in range(nb + 1, NLEV):
        gpt[g] = gpt[g - 1] + 0.5 * (gtg[g] + gtg[g - 1]) * (GRID_HEIGHTS[g] - GRID_HEIGHTS[g - 1])


@njit(**_JIT)
def _hour_setup(hour, prof_z, prof_ws, prof_wd, prof_sv, prof_sw, prof_t, hs, szinit, zr,
                urban_pop, urban_z0, out_lng, out_lnsy, n_x=NX):
    """Build the gridded profiles of one hour and fill its ln g / ln sigma-y tables.

    Only the first ``n_x`` table points are computed; the rest are NaN (see
    :func:`build_hour_tables`). Returns the wind direction [deg from] at the release height.
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
    gpt = np.empty(NLEV)
    _potential_temperature(gtg, ta, ztemp, gpt)
    # mixed-layer averages for XMIXED (rural zi): METEXT ZIAVER, from the ground (0 m) to zi;
    # ANYAVG's 0.5 m floor does not apply here (it made XMIXED 0.06 % larger in caseD
    # hour 88062709, z0 = 1 m, so sigma-y 0.02 % larger at 600-900 m)
    uavg = _ziaver(gws, zi)
    swavg = _ziaver(gsw, zi)
    urbstab = False
    if urban_pop > 0.0:
        urbstab, zi, ustar, L = _urban_boundary_layer(urban_pop, urban_z0, stable, zic, zim, zi,
                                                      ustar, L, z0, ta, ztemp, gsv, gsw, gtg, gpt)
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
    for k in range(n_x, NX):
        out_lng[k] = np.nan
        out_lnsy[k] = np.nan
    if stable or hs >= zi:
        for k in range(n_x):
            x = X_MIN * math.exp(k * DLNX)
            gv, sy = _stable_point(x, hs, szinit, zi, zim, ustar, L, gws, gsv, gsw, gtg, gpt,
                                   zr, urbstab)
            out_lng[k] = math.log(gv) if gv > 0.0 else LN_FLOOR
            out_lnsy[k] = math.log(sy)
    else:
        xmixed = zi * uavg / swavg
        for k in range(n_x):
            x = X_MIN * math.exp(k * DLNX)
            gv, sy = _cbl_point(x, hs, szinit, zi, ustar, wstar, L, xmixed, gws, gsv, gsw, zr)
            out_lng[k] = math.log(gv) if gv > 0.0 else LN_FLOOR
            out_lnsy[k] = math.log(sy)
    return wd


@njit(**_JIT)
def hour_wind_from(hours, prof_z, prof_wd, release_height, out_wd):
    """Wind direction [deg from] at the release height of every hour, as
    :func:`build_hour_tables` returns it (GRDWD, METINI), NaN for hours not valid; without
    the tables (which hours a few receptors need, :mod:`engine.dispersion.area`)."""
    gwd = np.empty(NLEV)
    for h in range(hours.shape[0]):
        if hours[h, H_VALID] < 0.5:
            out_wd[h] = np.nan
            continue
        _grid_wd(prof_z[h], prof_wd[h], hours[h, H_WD], gwd)
        out_wd[h] = _wd_at(gwd, release_height)


def table_points_for(x_max_m):
    """Number of x-table points (:func:`build_hour_tables` ``n_x``) that cover every lookup at
    upwind distances up to ``x_max_m`` [m]: the linear interpolation at x reads points
    ``floor(ln(x / X_MIN) / DLNX)`` and the next; one more point of margin; at most ``NX``."""
    if not (x_max_m > X_MIN):
        return min(NX, 3)
    return int(min(NX, math.floor(math.log(x_max_m / X_MIN) / DLNX) + 3))


#: AERMOD urban parameters (modules.f REFPOP, DELTRUR; metext.f URBCALC REFZI, CP)
URBAN_REF_POPULATION = 2.0e6
URBAN_REF_DELTA_T = 12.0     # K, urban-rural temperature difference at the reference population
URBAN_REF_ZI = 400.0         # m, urban mixing height at the reference population
URBAN_CP = 1004.0            # J kg-1 K-1
URBAN_TG = 1.0e-5            # K m-1, urban theta gradient up to the urban mixing height (GRDURBAN)


@njit(**_JIT)
def _urban_boundary_layer(pop, urban_z0, stable, zic, zim, zi, ustar, L, z0, ta, ztemp, gsv, gsw,
                          gtg, gpt):
    """AERMOD's urban boundary layer for an urban source (metext.f URBCALC, GRDURBAN, GRDPTURB;
    calc1.f ACALC). Modifies ``gsv``/``gsw``/``gtg``/``gpt`` in place for urban hours; returns
    (urbstab, zi, u*, L).

    Urban hours are the stable ones and the convective ones of the morning transition (zic
    at most the urban mixing height; on by default in v24142). Then: ZIURB = 400 m
    (P / 2e6)^0.25, dT = 12 K (0.1 ln(P / 2e6) + 1), urban heat flux 0.03 dT u* rho cp,
    urban w*, urban u* from the equality of convective and mechanical sigma-w at 7 max(z0
    urban, z0), an equivalent Obukhov length (the more neutral of urban and rural at night,
    the more convective in the morning transition, used by magnitude); sigma-v and sigma-w
    get the urban convective part in quadrature; zi = max(ZIURB, zim). The wind profile
    stays rural. The potential-temperature gradient is 1e-5 K/m up to ZIURB (rural above) and
    the potential temperature is rebuilt from it (GRDPTURB); SIGZ drops the Brunt-Vaisala
    term in the urban stable layer (URBSTAB), but the reflecting height of an elevated plume
    (REFL_HT, :func:`_reflecting_height`) uses these profiles.
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
        if z <= ziurb:
            gtg[g] = URBAN_TG
    _potential_temperature(gtg, ta, ztemp, gpt)
    return True, max(ziurb, zim), urbustr, abs(urbl)


@njit(parallel=True, **_JIT)
def build_hour_tables(hours, prof_z, prof_ws, prof_wd, prof_sv, prof_sw, prof_t,
                      release_height, initial_sigma_z, receptor_height, urban_population,
                      urban_z0, out_lng, out_lnsy, out_wd, n_x=NX):
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
    n_x : int
        Number of table points to compute (default all ``NX``): a caller whose every
        receptor-source distance is below ``x`` of point ``n_x - 2`` needs no more
        (:func:`table_points_for`); the points beyond are NaN, so that a lookup past them
        gives NaN, never a silently wrong number. The points computed do not depend on
        ``n_x``.
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
                                out_lnsy[h], n_x)


# ----------------------------------------------------------------------------------------
# Cell-integrated transfer function
# ----------------------------------------------------------------------------------------

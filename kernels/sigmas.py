"""Dispersion at one downwind distance (sigmas.f, calc2.f VRTSBL/VRTCBL, calc1.f REFL_HT).

sigma-y, sigma-z and the vertical term F_z / U_eff of a non-buoyant release at any height,
for the stable boundary layer (or a release above the convective zi) and for the convective
boundary layer (Weil bi-Gaussian PDF), with AERMOD's effective parameters (IBLVAL) and
centroid (CENTROID). Part of the plume kernels (:mod:`kernels.plume`).
"""

import math

from numba import njit

from kernels import FASTMATH
from kernels.constants import GRAVITY
from kernels.profiles import ALPHA_PDF, BETA_PDF, N_FIXED_POINT, R_PDF, SQRT_2PI, SQRT_2_OVER_PI, SURFACE_LAYER_TOP, SVMIN, SVUMIN, SWMIN, SZCOEF, WSMIN, _grid_value, _layer_average

_JIT = dict(nogil=True, cache=True, fastmath=FASTMATH)


#: AERMOD's exponent floor (modules.f EXPLIM): exp(a) is taken as 0 for a <= -50 in the
#: vertical terms (calc2.f VRTSBL, VRTSBN, VRTCBL), so an elevated plume that has not reached
#: the ground gives exactly 0 there, as in AERMOD
EXPLIM = -50.0


@njit(**_JIT)
def _gauss(a):
    """exp(a), 0 for a <= EXPLIM (AERMOD's cut-off)."""
    return math.exp(a) if a > EXPLIM else 0.0


@njit(**_JIT)
def _image_sum(h, s, H):
    """sum_k exp(-(h + 2kH)^2 / (2 s^2)) over all integers k (reflections at 0 and H).

    Direct sum for s <= H/2 (each term 0 below AERMOD's EXPLIM), otherwise the
    Poisson-summation (theta function) identity
    sum_k f(h + kP) = (s sqrt(2 pi)/P) [1 + 2 sum_m exp(-2 pi^2 s^2 m^2/P^2) cos(2 pi m h/P)],
    P = 2H.
    """
    if s <= 0.5 * H:
        total = _gauss(-0.5 * (h / s) ** 2)
        k = 1
        while k < 200:
            t1 = _gauss(-0.5 * ((h + 2.0 * k * H) / s) ** 2)
            t2 = _gauss(-0.5 * ((h - 2.0 * k * H) / s) ** 2)
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
def _reflecting_height(x, hs, he, zi, ustar, L, gws, gsw, gtg, gpt, szinit):
    """Height of AERMOD's effective reflecting surface HSBL for a stable plume (calc1.f REFL_HT).

    sigma-z at the plume height from the wind, sigma-w, theta gradient and potential
    temperature *at* HE (floored as in METINI, no layer average), with the stable surface term
    (SZSFCL with the wind at HE), the CTDMPLUS ambient term and the initial sigma-z
    (VSIGZ = Szinit for an area source) in quadrature: HSBL = max(zi, HE + 2.15 sigma-z). The
    Brunt-Vaisala term is kept in the urban stable layer too (REFL_HT has no URBSTAB test).
    """
    u = max(_grid_value(gws, he), WSMIN)
    sw = max(_grid_value(gsw, he), SWMIN)
    tg = _grid_value(gtg, he)
    pt = _grid_value(gpt, he)
    t = x / u
    bvf = math.sqrt(GRAVITY * tg / pt) if tg > 0.0 else 1e-10
    bvf = max(bvf, 1e-10)
    ztmp = max(hs, he, 1e-4)
    szamb = sw * t / math.sqrt(1.0 + sw * t * (1.0 / (0.72 * ztmp) + bvf / (0.54 * sw)))
    if he >= zi:
        szrf = szamb
    else:
        szsurf = SQRT_2_OVER_PI * ustar * t * (1.0 + 0.7 * x / L) ** (-1.0 / 3.0)
        sigf = min(he / zi, 1.0)
        szrf = (1.0 - sigf) * szsurf + sigf * szamb
    return max(zi, he + SZCOEF * math.sqrt(szrf * szrf + szinit * szinit))


@njit(**_JIT)
def _eff_floor(u, sv, sw):
    sw = max(sw, SWMIN)
    sv = max(sv, SVMIN, SVUMIN * u)
    u = max(u, WSMIN)
    return u, sv, sw


@njit(**_JIT)
def _stable_point(x, hs, szinit, zi, zim, ustar, L, gws, gsv, gsw, gtg, gpt, zr,
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
    hsbl = _reflecting_height(x, hs, he, zi, ustar, L, gws, gsw, gtg, gpt, szinit)
    if zr == 0.0:
        fz = 2.0 * _image_sum(he, sz, hsbl) / (SQRT_2PI * sz)
    elif zr <= hsbl:
        # VRTSBL: ground and HSBL images
        fz = (_image_sum(zr - he, sz, hsbl) + _image_sum(zr + he, sz, hsbl)) / (SQRT_2PI * sz)
    else:
        # VRTSBN: receptor above HSBL, ground image only
        fz = (_gauss(-0.5 * ((zr - he) / sz) ** 2)
              + _gauss(-0.5 * ((zr + he) / sz) ** 2)) / (SQRT_2PI * sz)
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
    # CENTROID (calc1.f): from HS towards zi/2, linearly in x until XMIXED (downwards for a
    # release above zi/2), zi/2 beyond
    center = hs + min(x / xmixed, 1.0) * (0.5 * zi - hs)
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

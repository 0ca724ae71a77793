"""Slow, obviously-correct reference for the AERMOD area-source physics (pure Python + NumPy).

Written independently of :mod:`kernels.plume` (no tables, no adaptive quadrature): every
integration point recomputes the effective parameters from the similarity profiles exactly as
AERMOD's PLUMEF does, and the along-wind integral is a dense composite Simpson rule in ln u.
Only the single-level, no-observed-turbulence profile case is covered (as in the AERMOD test
cases): wind scaled to the reference wind, sigma-v / sigma-w / d theta/dz from similarity.

Also holds ``numpy_direct_hourly``: a plain vectorised NumPy implementation of the same
physics as the fast direct kernel (same tables, same breakpoints, fixed dense Gauss-Legendre
rule), used as the speed baseline in ``benchmarks/bench_plume.py``.
"""

import math

import numpy as np

K = 0.4
G = 9.80616
GOVRCP = 0.00976
GRID = np.array([0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 14.0, 20.0] + list(np.arange(30.0, 101.0, 10.0))
                + list(np.arange(120.0, 201.0, 20.0)) + list(np.arange(250.0, 2001.0, 50.0))
                + list(np.arange(2100.0, 5001.0, 100.0)))


def _sim(ustar, z, L, z0):
    if L < 0:
        def psi(zz):
            x = (1 - 16 * zz / L) ** 0.25
            return 2 * math.log((1 + x) / 2) + math.log((1 + x * x) / 2) - 2 * math.atan(x) + math.pi / 2
    else:
        def psi(zz):
            return -17 * (1 - math.exp(-0.29 * zz / L))
    return ustar / K * (math.log(z / z0) - psi(z) + psi(z0))


class Hour:
    """Gridded profiles of one hour (similarity only) and the per-x dispersion."""

    def __init__(self, uref, zref, ustar, wstar, L, zic, zim, z0, T, ztemp=2.0):
        self.stable = L > 0
        self.zi = zim if self.stable else max(zic, zim)
        self.ustar, self.wstar, self.L, self.z0, self.zic, self.zim = ustar, wstar, L, z0, zic, zim
        zi = self.zi

        def uth(z):  # REFWS main branch (zref between 7 z0 and zi)
            v = 7 * z0
            if z <= v:
                return _sim(ustar, v, L, z0) * z / v
            return _sim(ustar, min(z, zi), L, z0)

        self.ws = np.array([max(0.01, uref * uth(z) / uth(zref)) for z in GRID])
        u_zi = np.interp(zi, GRID, self.ws)
        sv, sw, tg = [], [], []
        thstar = ustar**2 * T / (G * K * L) if self.stable else 0.0
        for z in GRID:
            svm2 = np.interp(z, [0, zim], [3.6 * ustar**2, min(3.6 * ustar**2, 0.25)])
            swm = math.hypot(0.02 * u_zi * min(1, z / zi), 1.3 * ustar * math.sqrt(max(0.0, 1 - z / zi)))
            if self.stable:
                sv.append(math.sqrt(svm2))
                sw.append(max(swm, 1e-4))
                if z <= 2:
                    t = thstar / (K * 2) * (1 + 10 / L)
                elif z <= 100:
                    t = thstar / (K * z) * (1 + 5 * z / L)
                else:
                    t = thstar / (K * 100) * (1 + 500 / L) * math.exp(-(z - 100) / (0.44 * max(100, zi)))
                tg.append(max(t, 0.002))
            else:
                sv2c = 0.35 * wstar**2
                if z <= zic:
                    svc2 = sv2c
                elif z <= 1.2 * zic:
                    svc2 = np.interp(z, [zic, 1.2 * zic], [sv2c, min(sv2c, 0.25)])
                else:
                    svc2 = min(math.sqrt(sv2c), 0.5) ** 2
                sv.append(math.sqrt(svc2 + svm2))
                if z <= 0.1 * zic:
                    swc = math.sqrt(1.6 * (z / zic) ** (2 / 3)) * wstar
                elif z <= zic:
                    swc = math.sqrt(0.35) * wstar
                else:
                    swc = math.sqrt(0.35) * wstar * math.exp(-3 * (z - zic) / zic)
                sw.append(math.hypot(max(swc, 1e-4), max(swm, 1e-4)))
                tg.append(0.0 if z <= zi else 0.005)
        self.sv, self.sw, self.tg = np.array(sv), np.array(sw), np.array(tg)
        # potential temperature near the ground (only needed for BVF at HE)
        self.pt0 = T + GOVRCP * ztemp

    def avg(self, prof, zb, zt):
        zb, zt = max(zb, 0.5), max(zt, 0.51)
        zz = np.linspace(zb, zt, 2001)
        return np.trapezoid(np.interp(zz, GRID, prof), zz) / (zt - zb)

    @staticmethod
    def floors(u, sv, sw):
        return max(u, 0.2828), max(sv, 0.2, 0.05 * u), max(sw, 0.02)

    def g_sy(self, x, hs=0.0, szinit=0.0):
        """(F_z(z_r=0)/U_eff, sigma_y) at downwind distance x, straight from the formulas."""
        zi = self.zi
        if self.stable:
            top = min(5.0, zi)
            u, sv, sw = self.floors(self.avg(self.ws, 0, top), self.avg(self.sv, 0, top),
                                    self.avg(self.sw, 0, top))
            tgv = self.avg(self.tg, 0, top)
            t = x / u
            n = max(math.sqrt(G * tgv / self.pt0), 1e-10)
            szamb = sw * t / math.sqrt(1 + sw * t * (1 / (0.72 * max(hs, 1e-4)) + n / (0.54 * sw)))
            szs = math.sqrt(2 / math.pi) * self.ustar * t * (1 + 0.7 * x / self.L) ** (-1 / 3)
            f = min(hs / zi, 1)
            sz = math.hypot((1 - f) * szs + f * szamb, szinit)
            ty = self.zim / (156 * sv) * max(hs, 0.46) / 0.46
            sy = max(0.05, sv / u) * x / (1 + x / (2 * u * ty)) ** 0.3
            fz = 0.0
            for k in range(-3, 4):  # images at 0 and far above (HSBL >= zi); negligible for k != 0
                fz += 2 * math.exp(-0.5 * ((hs + 2 * k * max(zi, 1e6)) / sz) ** 2)
            return fz / (math.sqrt(2 * math.pi) * sz) / u, sy
        # convective: Weil PDF, effective parameters by fixed-point iteration (4 passes)
        # XMIXED's mixed-layer means from the ground, no 0.5 m floor (metext.f ZIAVER)
        zz = np.linspace(0.0, zi, 4001)
        uav, swav = (np.trapezoid(np.interp(zz, GRID, p), zz) / zi for p in (self.ws, self.sw))
        xm = zi * uav / swav
        c = min(hs + x / xm * (zi / 2 - hs), zi / 2)
        surf = c < 0.1 * zi
        u, sv, sw = self.floors(np.interp(c, GRID, self.ws), np.interp(c, GRID, self.sv),
                                np.interp(c, GRID, self.sw))

        def sig(u, sv, sw):
            w3 = (1.25 * c / zi if surf else 0.125) * self.wstar**3
            S = w3 / sw**3
            al, be = 5 / 13, 5.0
            r = math.sqrt(al**2 * S**2 + 4 / be)
            a1, a2 = sw / self.wstar * (al * S + r) / 2, sw / self.wstar * (al * S - r) / 2
            lam1 = a2 / (a2 - a1)
            ab = 0.6 + 4 * c / zi if surf else 1.0
            ss = 0.5 * (1 - 10 * c / zi) * (self.ustar / u) ** 2 * x * x / abs(self.L) if surf else 0.0
            s1 = math.sqrt((ab * 2 * a1 * self.wstar * x / u) ** 2 + ss**2 + szinit**2)
            s2 = math.sqrt((ab * -2 * a2 * self.wstar * x / u) ** 2 + ss**2 + szinit**2)
            return a1, a2, lam1, s1, s2

        for _ in range(4):
            a1, a2, lam1, s1, s2 = sig(u, sv, sw)
            if c <= 5:
                lo, hi = 0.0, min(5.0, zi)
            else:
                lo, hi = max(c - 2.15 * 0.5 * (s1 + s2), 0.0), min(c, zi)
            u, sv, sw = self.floors(self.avg(self.ws, lo, hi), self.avg(self.sv, lo, hi),
                                    self.avg(self.sw, lo, hi))
        a1, a2, lam1, s1, s2 = sig(u, sv, sw)
        fz = 0.0
        for lam, a, s in ((lam1, a1, s1), (1 - lam1, a2, s2)):
            h = hs + a * self.wstar * x / u
            acc = 0.0
            for k in range(-60, 61):
                acc += math.exp(-0.5 * ((h + 2 * k * zi) / s) ** 2)
            fz += lam * 2 * acc / (math.sqrt(2 * math.pi) * s)
        ba = max(78 * 0.46 / max(hs, 0.46), 0.7)
        svu = max(0.05, sv / u)
        sy = svu * x / (1 + ba * svu * x / zi) ** 0.3
        return fz / u, sy


def _phi(z):
    return 0.5 * math.erfc(-z / math.sqrt(2))


def cell_concentration(hour, rx, ry, x_sw, y_sw, xlen, ylen, wind_from_deg, hs=0.0, n=1500):
    """Concentration [ug m-3] at (rx, ry) from an axis-aligned cell emitting 1 g m-2 s-1.

    Along-wind composite Simpson in ln u between consecutive vertex distances, crosswind by
    the exact normal CDF; AERMOD's clip at 1.01 m and lateral 5 sigma-y cutoff applied.
    """
    wr = math.radians(wind_from_deg)
    s, c = math.sin(wr), math.cos(wr)
    vx = [x_sw, x_sw + xlen, x_sw + xlen, x_sw]
    vy = [y_sw, y_sw, y_sw + ylen, y_sw + ylen]
    pu = [(vx[k] - rx) * s + (vy[k] - ry) * c for k in range(4)]
    pv = [(vx[k] - rx) * c - (vy[k] - ry) * s for k in range(4)]
    umax = max(pu)
    if umax < 1.0:
        return 0.0
    cu = (x_sw + xlen / 2 - rx) * c - (y_sw + ylen / 2 - ry) * s
    if abs(cu) - (max(pv) - min(pv)) / 2 >= 5 * hour.g_sy(umax, hs)[1]:
        return 0.0
    ua = max(min(pu), 1.01)
    bps = sorted({ua, umax, *[u for u in pu if ua < u < umax]})
    total = 0.0
    for a, b in zip(bps[:-1], bps[1:]):
        t = np.linspace(math.log(a), math.log(b), 2 * n + 1)
        f = np.empty_like(t)
        for i, tt in enumerate(t):
            u = min(max(math.exp(tt), a), b)  # exp(log(a)) may round outside [a, b]
            vs = []
            for k in range(4):
                u1, u2, v1, v2 = pu[k], pu[(k + 1) % 4], pv[k], pv[(k + 1) % 4]
                if abs(u2 - u1) > 1e-9 and min(u1, u2) - 1e-9 * u <= u <= max(u1, u2) + 1e-9 * u:
                    vs.append(v1 + (u - u1) * (v2 - v1) / (u2 - u1))
            g, sy = hour.g_sy(u, hs)
            f[i] = u * g * (_phi(max(vs) / sy) - _phi(min(vs) / sy)) if vs else 0.0
        h = (t[-1] - t[0]) / (2 * n)
        total += h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())
    return total * 1e6


# ----------------------------------------------------------------------------------------
# plain NumPy implementation of the direct kernel (speed baseline)
# ----------------------------------------------------------------------------------------
_GLX, _GLW = np.polynomial.legendre.leggauss(24)


def _lookup(tab, x, x_min, dlnx):
    s = np.clip(np.log(x / x_min) / dlnx, 0.0, tab.shape[-1] - 1.000001)
    i = s.astype(np.int64)
    f = s - i
    return tab[i] + f * (tab[i + 1] - tab[i])


def _erfc(x):
    """Vectorised erfc, Chebyshev fit with fractional error < 1.2e-7 (Press et al. 1992, 6.2)."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    r = t * np.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277)))))))))
    return np.where(x >= 0, r, 2.0 - r)


def numpy_direct_hourly(rx, ry, cx, cy, hx, hy, rate, lng, lnsy, wd, x_min, dlnx, n_panels=6):
    """Vectorised NumPy version of the direct path for axis-aligned cells.

    Same per-hour tables and the same integrand as the numba kernel; along-wind a fixed
    composite 24-point Gauss-Legendre rule in ln u on ``n_panels`` panels per vertex piece
    (vectorised over receptors). Returns (n_hours, n_receptors) [ug m-3].
    """
    nh = lng.shape[0]
    out = np.zeros((nh, rx.shape[0]))
    verf = _erfc
    sgn = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    for h in range(nh):
        if np.isnan(wd[h]):
            continue
        wr = math.radians(wd[h])
        s, c = math.sin(wr), math.cos(wr)
        for j in range(cx.shape[0]):
            px = cx[j] - rx[:, None] + sgn[None, :, 0] * hx[j]
            py = cy[j] - ry[:, None] + sgn[None, :, 1] * hy[j]
            pu = px * s + py * c
            pv = px * c - py * s
            umin, umax = pu.min(1), pu.max(1)
            width = pv.max(1) - pv.min(1)
            vc = (cx[j] - rx) * c - (cy[j] - ry) * s
            sy_max = np.exp(_lookup(lnsy[h], np.maximum(umax, x_min), x_min, dlnx))
            ok = (umax >= 1.0) & (np.abs(vc) - width / 2 < 5 * sy_max)
            ua = np.maximum(umin, 1.01)
            ok &= umax > ua
            if not ok.any():
                continue
            idx = np.flatnonzero(ok)
            bp = np.sort(np.concatenate([ua[idx, None], umax[idx, None],
                                         np.clip(pu[idx], ua[idx, None], umax[idx, None])], axis=1), axis=1)
            acc = np.zeros(idx.size)
            for p in range(bp.shape[1] - 1):
                a, b = np.log(bp[:, p]), np.log(np.maximum(bp[:, p + 1], bp[:, p]))
                for q in range(n_panels):
                    lo = a + (b - a) * q / n_panels
                    hi = a + (b - a) * (q + 1) / n_panels
                    t = 0.5 * (lo + hi)[:, None] + 0.5 * (hi - lo)[:, None] * _GLX[None, :]
                    u = np.exp(t)
                    # chord at u: intersect the four edges
                    vlo = np.full(u.shape, np.inf)
                    vhi = np.full(u.shape, -np.inf)
                    for k in range(4):
                        u1, u2 = pu[idx, k][:, None], pu[idx, (k + 1) % 4][:, None]
                        v1, v2 = pv[idx, k][:, None], pv[idx, (k + 1) % 4][:, None]
                        du = u2 - u1
                        good = (np.abs(du) > 1e-9) & (u >= np.minimum(u1, u2)) & (u <= np.maximum(u1, u2))
                        v = v1 + (u - u1) * (v2 - v1) / np.where(good, du, 1.0)
                        vlo = np.where(good, np.minimum(vlo, v), vlo)
                        vhi = np.where(good, np.maximum(vhi, v), vhi)
                    g = np.exp(_lookup(lng[h], u, x_min, dlnx))
                    sy = np.exp(_lookup(lnsy[h], u, x_min, dlnx))
                    have = vhi >= vlo
                    fr = 0.5 * (verf(np.where(have, vlo, 0) / sy / math.sqrt(2))
                                - verf(np.where(have, vhi, 0) / sy / math.sqrt(2)))
                    f = np.where(have, u * g * fr, 0.0)
                    acc += 0.5 * (hi - lo) * (f * _GLW[None, :]).sum(1)
            out[h, idx] += rate[j] * acc * 1e6
    return out


def polygon_point_sum(vx, vy, rx, ry, wind_from_deg, lng, lnsy, x_min, dlnx, spacing=2.0):
    """Brute-force area integral of one polygon source (1 g m-2 s-1) at one receptor [ug m-3].

    The polygon is filled with point sources on a square lattice of ``spacing`` metres (cell
    centres inside the polygon by the even-odd ray test); each contributes
    g(u) phi(v / sigma_y(u)) / sigma_y(u) dA with the exact normal density, where u is the
    upwind and v the crosswind distance, and g, sigma_y come from the hour tables (ln-linear
    interpolation on x = x_min exp(k dlnx)). Points less than 1.01 m upwind are skipped
    (AERMOD's clip). No adaptive quadrature, no chord pairing: an independent check of the
    polygon kernel's non-convex bookkeeping.
    """
    vx = np.asarray(vx, float)
    vy = np.asarray(vy, float)
    xs = np.arange(vx.min() + spacing / 2, vx.max(), spacing)
    ys = np.arange(vy.min() + spacing / 2, vy.max(), spacing)
    px, py = np.meshgrid(xs, ys)
    px, py = px.ravel(), py.ravel()
    inside = np.zeros(px.shape, bool)
    n = vx.size
    for k in range(n):  # even-odd ray casting towards +x
        x1, y1, x2, y2 = vx[k], vy[k], vx[(k + 1) % n], vy[(k + 1) % n]
        cross = (y1 > py) != (y2 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
        inside ^= cross & (px < xint)
    px, py = px[inside], py[inside]
    w = math.radians(wind_from_deg)
    dx, dy = px - rx, py - ry
    u = dx * math.sin(w) + dy * math.cos(w)
    v = dx * math.cos(w) - dy * math.sin(w)
    ok = u >= 1.01
    u, v = u[ok], v[ok]
    s = np.log(u / x_min) / dlnx
    i = np.clip(s.astype(int), 0, lng.size - 2)
    f = s - i
    g = np.exp(lng[i] + f * (lng[i + 1] - lng[i]))
    sy = np.exp(lnsy[i] + f * (lnsy[i + 1] - lnsy[i]))
    dens = np.exp(-0.5 * (v / sy) ** 2) / (math.sqrt(2 * math.pi) * sy)
    return float(np.sum(g * dens) * spacing * spacing * 1e6)

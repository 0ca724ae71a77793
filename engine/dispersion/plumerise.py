"""Plume rise of stack emissions per met class, and the composite kernel of a stack class.

The national run models a city's emissions as area sources on a lattice. Emissions that leave
through stacks (power stations, kilns, sinter strands, boilers) are area sources at the stack's
**effective height** ``h_e = h_s' + dh``: the stack height (less stack-tip downwash) plus the
final plume rise of the met class. The rise formulas are AERMOD's (EPA AERMOD v24142, the
routines named below; Cimorelli et al. 2004, *AERMOD: Description of Model Formulation*,
EPA-454/R-03-004, "MFD", Sections 5.2.4 and 5.3):

* fluxes (``FLUXES``): buoyancy ``F_b = g v_s (d_s/2)**2 (T_s - T_a) / T_s`` [m4 s-3] and
  momentum ``F_m = v_s**2 (d_s/2)**2 T_a / T_s`` [m4 s-2];
* stack-tip downwash (``HSPRIM``, Briggs 1974): ``h_s' = h_s - 2 d_s (1.5 - v_s/u_s)`` when
  ``v_s < 1.5 u_s``;
* stable hours, and convective hours with the stack above z_i (``DISTF``, MFD eq. 95-98):
  ``dh = min(2.66 (F_b / (N**2 u))**(1/3), 1.2 L_n**0.6 (h_s' + 1.2 L_n)**0.4,
  dh_CBL(x_maxn), 4 F_b**0.25 N**-0.75)`` with ``L_n = F_b / (u u*^2)``, N the Brunt-Vaisala
  frequency at the stack top and ``dh_CBL`` the convective rise at the Briggs (1975)
  distance of final rise ``x_maxn = 49 F_b**0.625`` (``F_b < 55``) or ``119 F_b**0.4``;
* convective hours, stack below z_i (``DISTF`` / ``CBLPRD``, MFD eq. 91, beta_1 = 0.6):
  ``dh = (3 F_m x / (beta_1**2 u**2) + 3 F_b x**2 / (2 beta_1**2 u**3))**(1/3)`` at
  ``x = x_maxn``; the part of the plume that penetrates the inversion (``PENFCT``, Weil 1993:
  ``P_s = F_b / (u N_h**2 (z_i - h_s')**3)``, ``dh_e/dh_h = (2.6**3 P_s + (2/3)**3)**(1/3)``,
  penetrated fraction ``f_p = 0, 1.5 - dh_h/dh_e, 1`` below 2/3, between, above 2) is released
  at the penetrated source's height (``CBLPR3``); the rest stays in the mixed layer at
  ``min(h_s' + dh, z_i)``.

Buoyancy-induced dispersion (``BID``, MFD eq. 5.2.4): ``sigma_zb = beta_2 dh / sqrt(2)`` with
beta_2 = 0.4 is the stack class's initial sigma-z.

Simplifications (documented in docs/dispersion.md, "Emission heights"): the final rise is used
at every distance (AERMOD's rise is gradual over ``x_max``, a few hundred metres to ~2 km for
these stacks, inside one 1 km lattice cell of the source); wind and stability at the stack top
come from the class's similarity profile (``REFWS``, ``REFPTG``) without the iteration over
the plume's mid-height (``DELTAH``'s OPTH2 loop); BID enters the vertical spread only.

The kernel of a stack class for one met is the class-weighted sum of area kernels: each met
class's mass goes to its effective height(s); heights are grouped into geometric bins of
ratio :data:`HEIGHT_BIN_RATIO`, each bin one area kernel at its mass-weighted height (and mean
BID) over the classes in it (:func:`height_groups`), so a stack class costs about twice a
ground kernel instead of one kernel per met class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.constants import GRAVITY, VON_KARMAN

__all__ = ["Stack", "HEIGHT_BIN_RATIO", "BETA1", "BETA2", "buoyancy_flux", "momentum_flux",
           "stack_top_wind", "effective_heights", "height_groups"]

#: entrainment coefficient of the convective rise (AERMOD MAIN1 ``BETA1 = 0.6``)
BETA1 = 0.6
#: buoyancy-induced dispersion coefficient (AERMOD MAIN1 ``BETA2 = 0.4``)
BETA2 = 0.4
#: minimum wind speed [m s-1] (AERMOD ``WSMIN = 0.2828``)
WSMIN = 0.2828
#: minimum stable potential-temperature gradient [K m-1] (AERMOD ``SPTGMN``)
SPTGMN = 0.002
#: default gradient above z_i [K m-1] when the met gives none (AERMOD ``VPTGZI`` default)
VPTGZI_DEFAULT = 0.005
#: geometric width of the effective-height bins of :func:`height_groups` (heights within a bin
#: differ from its representative by at most ~ +-6 %)
HEIGHT_BIN_RATIO = 1.12


@dataclass(frozen=True)
class Stack:
    """Stack parameters of one emission-height class (engine/data/emission_heights.csv).

    Attributes
    ----------
    height_m : stack height above ground [m]
    exit_velocity_m_s : flue-gas exit velocity [m s-1]
    exit_temperature_k : flue-gas exit temperature [K]
    diameter_m : inner diameter at the top [m]
    """

    height_m: float
    exit_velocity_m_s: float
    exit_temperature_k: float
    diameter_m: float

    def key(self):
        return (f"stack:{self.height_m:.3f}:{self.exit_velocity_m_s:.3f}:{self.exit_temperature_k:.3f}:"
                f"{self.diameter_m:.3f}")


def buoyancy_flux(stack, ambient_temperature_k):
    """Briggs buoyancy flux ``F_b`` [m4 s-3] (AERMOD ``FLUXES``); 0 when the gas is not warmer."""
    ta = np.asarray(ambient_temperature_k, dtype=float)
    ts = stack.exit_temperature_k
    r2 = (0.5 * stack.diameter_m) ** 2
    return np.maximum(GRAVITY * stack.exit_velocity_m_s * r2 * (ts - ta) / ts, 0.0)


def momentum_flux(stack, ambient_temperature_k):
    """Momentum flux ``F_m`` [m4 s-2] (AERMOD ``FLUXES``)."""
    ta = np.asarray(ambient_temperature_k, dtype=float)
    return stack.exit_velocity_m_s**2 * (0.5 * stack.diameter_m) ** 2 * ta / stack.exit_temperature_k


def _psi_m(z, L):
    """Similarity stability function psi_m(z/L) as AERMOD's UNSTU/STBLU (windgrid.f)."""
    z = np.asarray(z, dtype=float)
    out = np.empty(np.broadcast(z, L).shape)
    Lb = np.broadcast_to(L, out.shape)
    zb = np.broadcast_to(z, out.shape)
    uns = Lb < 0
    x = (1.0 - 16.0 * zb[uns] / Lb[uns]) ** 0.25
    out[uns] = (2.0 * np.log((1.0 + x) / 2.0) + np.log((1.0 + x * x) / 2.0) - 2.0 * np.arctan(x) + math.pi / 2.0)
    st = ~uns
    out[st] = -17.0 * (1.0 - np.exp(-0.29 * zb[st] / Lb[st]))
    return out


def stack_top_wind(z_m, met_arrays):
    """Wind speed [m s-1] at height ``z_m`` from each class's similarity profile (``REFWS``).

    Linear below 7 z0, persisted above z_i (AERMOD ``REFWS``), at least :data:`WSMIN`.
    """
    ustar, L, z0, zi = (met_arrays[k] for k in ("ustar", "L", "z0", "zi"))
    z = np.clip(np.broadcast_to(np.asarray(z_m, dtype=float), ustar.shape), 7.0 * z0, zi)
    u = (ustar / VON_KARMAN) * (np.log(z / z0) - _psi_m(z, L) + _psi_m(z0, L))
    return np.maximum(u, WSMIN)


def _theta_gradient(z, m):
    """Stable potential-temperature gradient [K m-1] at z (AERMOD ``REFPTG`` without observations)."""
    thstar = m["T"] * m["ustar"] ** 2 / (GRAVITY * VON_KARMAN * m["L"])
    near = (thstar / (VON_KARMAN * np.maximum(z, 2.0))) * (1.0 + 5.0 * np.maximum(z, 2.0) / m["L"])
    at100 = (thstar / (VON_KARMAN * 100.0)) * (1.0 + 5.0 * 100.0 / m["L"])
    far = at100 * np.exp(-(z - 100.0) / (0.44 * np.maximum(100.0, m["zi"])))
    return np.maximum(np.where(z <= 100.0, near, far), SPTGMN)


def _met_arrays(met):
    stable = met.monin_obukhov_length_m > 0
    zic = met.conv_mixing_height_m
    zim = met.mech_mixing_height_m
    zi = np.where(stable | ~np.isfinite(zic), zim, np.fmax(zic, zim))
    vptg = np.where(np.isfinite(met.theta_gradient_k_m), met.theta_gradient_k_m, VPTGZI_DEFAULT)
    return {"ustar": met.friction_velocity_m_s, "L": met.monin_obukhov_length_m, "z0": met.roughness_length_m,
            "zi": zi, "T": met.temperature_k, "stable": stable, "vptgzi": vptg}


def _cbl_rise(fm, fb, u, x):
    """CBLPRD: direct-plume rise [m] at distance x (MFD eq. 91)."""
    return (3.0 * fm * x / (BETA1**2 * u**2) + 3.0 * fb * x**2 / (2.0 * BETA1**2 * u**3)) ** (1.0 / 3.0)


def _x_final(fb):
    """Briggs (1975) distance to final rise [m] (AERMOD DISTF ``XMAXN``)."""
    return np.where(fb >= 55.0, 119.0 * fb**0.4, 49.0 * np.maximum(fb, 1e-12) ** 0.625)


def effective_heights(met, stack):
    """Effective release heights of a stack for every met class, with the mass fraction at each.

    Parameters
    ----------
    met : engine.dispersion.met.MetHours
        Met hours or climatology classes (only the valid ones matter).
    stack : Stack

    Returns
    -------
    heights_m : (n, 2) ndarray
        Column 0: the plume in the mixed layer (stable hours: the whole plume); column 1: the
        penetrated part above z_i on convective hours (AERMOD's third source).
    fractions : (n, 2) ndarray
        Mass fraction at each height; rows sum to 1.
    bid_sigma_z_m : (n, 2) ndarray
        Buoyancy-induced sigma-z ``beta_2 dh / sqrt(2)`` of each part [m].
    """
    m = _met_arrays(met)
    n = len(met)
    ta = m["T"]
    fb = buoyancy_flux(stack, ta)
    fm = momentum_flux(stack, ta)
    hs = stack.height_m
    us = stack_top_wind(hs, m)
    # stack-tip downwash (HSPRIM)
    vs, ds = stack.exit_velocity_m_s, stack.diameter_m
    hsp = np.where(vs < 1.5 * us, np.maximum(hs - 2.0 * ds * (1.5 - vs / us), 0.0), hs)
    heights = np.zeros((n, 2))
    frac = np.zeros((n, 2))
    dh_out = np.zeros((n, 2))
    xmaxn = _x_final(fb)
    dh_cbl = _cbl_rise(fm, fb, us, xmaxn)
    # stable, or convective with the stack top above z_i: DISTF's stable final rise
    above = m["stable"] | (hs >= m["zi"])
    tg = np.where(m["stable"], _theta_gradient(np.full(n, hs), m), m["vptgzi"])
    bvf2 = np.maximum(GRAVITY * tg / ta, 1e-20)
    with np.errstate(divide="ignore", invalid="ignore"):
        dh_st = 2.66 * (fb / (bvf2 * us)) ** (1.0 / 3.0)
        xln = fb / (us * m["ustar"] ** 2)
        dh_nn = 1.2 * xln**0.6 * (hsp + 1.2 * xln) ** 0.4
        dh_calm = 4.0 * fb**0.25 / bvf2**0.375
    dh_s = np.nanmin(np.stack([dh_st, dh_nn, dh_cbl, dh_calm]), axis=0)
    dh_s = np.where(fb > 0, dh_s, np.minimum(3.0 * ds * vs / us, dh_cbl))
    # convective, stack below z_i: direct rise, and the penetrated fraction (PENFCT, CBLPR3)
    zi = m["zi"]
    dzi = np.maximum(zi - hsp, 1e-6)
    bvzi2 = GRAVITY * m["vptgzi"] / ta
    with np.errstate(divide="ignore", invalid="ignore"):
        psubs = fb / (us * bvzi2 * dzi**3)
    hedhh = (17.576 * psubs + 0.296296) ** (1.0 / 3.0)
    ppf = np.where(hedhh < 2.0 / 3.0, 0.0, np.where(hedhh > 2.0, 1.0, 1.5 - 1.0 / hedhh))
    dh3 = np.where(ppf >= 1.0, hedhh * dzi, 0.75 * dzi * hedhh + 0.5 * dzi)
    heights[:, 0] = np.where(above, hsp + dh_s, np.minimum(hsp + dh_cbl, zi))
    frac[:, 0] = np.where(above, 1.0, 1.0 - ppf)
    dh_out[:, 0] = np.where(above, dh_s, dh_cbl)
    heights[:, 1] = np.where(above, hsp + dh_s, hsp + dh3)
    frac[:, 1] = np.where(above, 0.0, ppf)
    dh_out[:, 1] = np.where(above, 0.0, dh3)
    if not (np.isfinite(heights[met.valid]).all() and np.isfinite(frac[met.valid]).all()):
        bad = int(np.nonzero(~np.isfinite(heights).all(axis=1) & met.valid)[0][0])
        raise ValueError(f"plume rise: non-finite effective height for met class {bad} of stack {stack}")
    return heights, frac, BETA2 * dh_out / math.sqrt(2.0)


def height_groups(met, stack, *, ratio=HEIGHT_BIN_RATIO):
    """Group the met classes' effective heights into geometric bins, one area kernel each.

    Returns
    -------
    list of (index, weight, height_m, initial_sigma_z_m, share)
        ``index`` the met classes in the bin, ``weight`` their weights times the mass fraction
        in the bin, ``height_m`` / ``initial_sigma_z_m`` the bin's mass-weighted effective
        height and BID sigma-z, ``share`` the bin's part of the valid weight (the shares sum
        to 1). The stack's period kernel is ``sum(share * period_kernel(met_bin, height_m,
        initial_sigma_z_m))`` where ``met_bin`` carries ``weight``.
    """
    h, f, sz = effective_heights(met, stack)
    w = np.where(met.valid, met.weight, 0.0)
    tot = w.sum()
    if tot <= 0:
        return []
    mass = w[:, None] * f
    keep = mass > 0
    b = np.full(h.shape, -1, dtype=np.int64)
    b[keep] = np.floor(np.log(np.maximum(h[keep], 1e-3)) / math.log(ratio)).astype(np.int64)
    out = []
    for k in np.unique(b[keep]):
        sel = keep & (b == k)
        rows = np.nonzero(sel.any(axis=1))[0]
        wm = (mass * sel)[rows].sum(axis=1)
        hm = float((mass * sel * h)[rows].sum() / wm.sum())
        szm = float((mass * sel * sz)[rows].sum() / wm.sum())
        out.append((rows, wm, hm, szm, float(wm.sum() / tot)))
    return out


# --------------------------------------------------------------------------- emission-height data
_DATA = __import__("pathlib").Path(__file__).resolve().parents[1] / "data"


@dataclass(frozen=True)
class EmissionHeights:
    """Emission-height classes and each sector's split among them.

    Attributes
    ----------
    classes : tuple of str
        Class names in file order; ``"ground"`` first.
    stacks : dict {class: Stack or None}
        ``None`` for ``ground`` (released at ``[dispersion] release_height_m``).
    shares : dict {sector: {class: share}}
        Share of the sector's PM2.5 in each class [1]; unlisted sectors are ``ground``.
    """

    classes: tuple
    stacks: dict
    shares: dict

    def sector_share(self, sector, cls):
        """Share [1] of ``sector``'s emission in class ``cls`` (unlisted sectors: all ground)."""
        if sector not in self.shares:
            return 1.0 if cls == "ground" else 0.0
        return self.shares[sector].get(cls, 0.0)


def _rows(path):
    import csv

    from engine.errors import InputError

    if not path.exists():
        raise InputError(f"{path}: file not found")
    with open(path) as fh:
        lines = [(i + 1, ln) for i, ln in enumerate(fh) if not ln.startswith("#") and ln.strip()]
    reader = csv.DictReader(ln for _, ln in lines)
    return [(lines[k + 1][0], r) for k, r in enumerate(reader)]


def _number(path, lineno, row, key, lo, hi):
    from engine.errors import InputError

    try:
        v = float(row[key])
    except (TypeError, ValueError):
        raise InputError(f"{path}, line {lineno}: {key} = {row.get(key)!r} is not a number") from None
    if not (math.isfinite(v) and lo < v <= hi):
        raise InputError(f"{path}, line {lineno}: {key} = {v:g}; allowed range ({lo:g}, {hi:g}]")
    return v


def load_emission_heights(classes_csv=None, shares_csv=None):
    """Read engine/data/stack_classes.csv and engine/data/emission_heights.csv (or the given files).

    Raises
    ------
    engine.errors.InputError
        A stack parameter out of range, an unknown class, a share outside [0, 1], or a sector
        whose shares do not sum to 1 (the message names the file and line).
    """
    from engine.errors import InputError

    cpath = _DATA / "stack_classes.csv" if classes_csv is None else __import__("pathlib").Path(classes_csv)
    spath = _DATA / "emission_heights.csv" if shares_csv is None else __import__("pathlib").Path(shares_csv)
    stacks = {}
    for lineno, r in _rows(cpath):
        name = (r.get("height_class") or "").strip()
        if not name or name in stacks:
            raise InputError(f"{cpath}, line {lineno}: height_class {name!r} is empty or repeated")
        if name == "ground":
            stacks[name] = None
            continue
        stacks[name] = Stack(_number(cpath, lineno, r, "stack_height_m", 0.0, 1000.0),
                             _number(cpath, lineno, r, "exit_velocity_m_s", 0.0, 100.0),
                             _number(cpath, lineno, r, "exit_temperature_k", 200.0, 2000.0),
                             _number(cpath, lineno, r, "diameter_m", 0.0, 50.0))
    if "ground" not in stacks:
        raise InputError(f"{cpath}: needs a height_class 'ground' (released at [dispersion] release_height_m)")
    shares = {}
    for lineno, r in _rows(spath):
        sec, cls = (r.get("sector") or "").strip(), (r.get("height_class") or "").strip()
        if cls not in stacks:
            raise InputError(f"{spath}, line {lineno}: height_class {cls!r} is not in {cpath.name} "
                             f"({', '.join(stacks)})")
        try:
            v = float(r["share"])
        except (TypeError, ValueError):
            raise InputError(f"{spath}, line {lineno}: share = {r.get('share')!r} is not a number") from None
        if not (0.0 <= v <= 1.0):
            raise InputError(f"{spath}, line {lineno}: share = {v:g}; allowed range [0, 1]")
        shares.setdefault(sec, {})[cls] = shares.get(sec, {}).get(cls, 0.0) + v
    for sec, d in shares.items():
        if abs(sum(d.values()) - 1.0) > 1e-6:
            raise InputError(f"{spath}: the shares of sector {sec!r} sum to {sum(d.values()):.6g}; they must sum to 1")
    order = ("ground",) + tuple(c for c in stacks if c != "ground")
    return EmissionHeights(order, stacks, shares)

"""The v1 default climatology (``[met] climatology = "golder"``): Pasquill-Turner classes with
Golder (1972) Monin-Obukhov lengths, and the u* profile relation it shares with STAR tables.

An annual-average concentration needs the joint frequency of wind direction, wind speed and
stability, not a time series. A **climatology** here is a set of weighted met classes, each a
physically consistent AERMOD-style hour (u, direction, u*, w*, L, z_ic, z_im, z0, T), passed to
the dispersion stage as one :class:`engine.dispersion.met.MetHours` whose ``weight`` is the class frequency.

The v1 climatology (``climatology = "golder"`` or ``"default"``, version ``DEFAULT_VERSION``)
--------------------------------------------------------------------------------------------
**It is synthetic and representative, not fitted to station data** (no installable Chinese
joint-frequency table exists; docs/met.md, "Why the default met is synthetic"). Every number has its
basis stated in :data:`CLIMATE_REGIONS` and below; users with real data give an AERMET .SFC/.PFL
pair or a STAR table in ``[met]`` instead. Every output records which met was used.

Construction, per climate region (provinces are assigned to regions by :data:`PROVINCE_REGION`):

1. **Wind speed** at 10 m: Weibull with shape k = 2 (Rayleigh, the usual default for surface
   winds, e.g. Justus et al. 1978, J. Appl. Meteor. 17:350) and the region's annual mean speed,
   split into the six ISCLT/STAR speed classes (edges 1.80, 3.34, 5.40, 8.49, 11.06 m/s =
   3.5, 6.5, 10.5, 16.5, 21.5 kn). Each class is represented by its Weibull conditional mean,
   floored at 1.0 m/s (ISC's treatment of winds below 1 m/s).
2. **Stability**: Pasquill-Turner classes from wind speed and insolation by day, cloud cover by
   night (Pasquill 1961; Turner 1964, J. Appl. Meteor. 3:83). Daytime insolation categories come
   from the solar elevation, computed hour by hour over a year at the region's representative
   latitude (declination after Cooper 1969): > 60 deg strong, 35-60 moderate, 15-35 slight,
   0-15 neutral (D). A regional fraction of overcast hours is neutral (D) day and night; of
   the other hours a regional "cloudy" fraction (>= 4/8 cloud) lowers day insolation one
   category and takes the "thin overcast" night column. Half-classes (A-B, B-C, C-D) take the
   mean of the two classes' 1/L.
3. **Monin-Obukhov length** from class and z0 by Golder's (1972) relation as fitted in Seinfeld
   & Pandis (2006, Atmospheric Chemistry and Physics, 2nd ed., ch. 16):
   1/L = a + b log10(z0 [m]) (table :data:`GOLDER_1972`).
4. **u\\*** from u(10 m), L and z0 with AERMOD's profile functions (Businger-Dyer for L < 0,
   psi_m = -17 (1 - exp(-0.29 z/L)) for L > 0), as AERMET does (Cimorelli et al. 2004, AERMOD
   formulation document, eqs. 2-3 and 2-9 area) and as the reference met files of this project.
   H = -rho c_p T u*^3 / (k g L) with rho c_p = 1204.8 J m-3 K-1, k = 0.4, g = 9.80616 m s-2;
   w* = (g H z_ic / (rho c_p T))^(1/3); z_im = 2300 u*^1.5 (Venkatram 1980).
5. **Convective mixing height** z_ic (unstable classes only): the region's representative mean
   daytime convective boundary-layer height, scaled 1.2 / 1.0 / 0.8 for A / B / C (deeper
   mixing with stronger convection). Stable and neutral hours use z_im only (AERMOD: z_i = z_im
   when L > 0).
6. **Wind direction** (direction the wind blows FROM): 16 sectors of 22.5 deg; frequencies from a
   two-component von Mises mixture (winter and summer monsoon directions, concentration
   kappa = 2) plus a uniform share, integrated over each sector. Direction is taken independent
   of speed and stability (a documented simplification).
7. **Surface roughness** z0 = 1.0 m, AERMOD's default urban roughness length (EPA 2004, AERMOD
   user's guide, URBANOPT); the receptors of interest are in the city.
8. Classes with frequency < :data:`MIN_CLASS_FREQUENCY` are dropped and the rest renormalised
   (these are the highest wind speeds, with the smallest concentrations; the bias is below that
   frequency in relative terms).
"""

from __future__ import annotations

import math

import numpy as np

from engine.constants import URBAN_ROUGHNESS_M, VON_KARMAN
from kernels.similarity import psi_m

from .regions import CLIMATE_REGIONS

__all__ = ["DEFAULT_VERSION", "GOLDER_1972", "STAR_SPEED_EDGES_M_S", "STAR_SPEED_CLASS_M_S", "MIN_CLASS_FREQUENCY",
           "REFERENCE_HEIGHT_M", "URBAN_ROUGHNESS_M", "SECTORS", "monin_obukhov_from_class", "friction_velocity",
           "class_hour", "sector_frequencies", "rows_to_arrays", "default_climatology_arrays"]

DEFAULT_VERSION = "default-climatology-v1"

#: Golder (1972) 1/L = a + b*log10(z0), coefficients (a [m-1], b [m-1]) per Pasquill class,
#: as given by Seinfeld & Pandis (2006, ch. 16)
GOLDER_1972 = {
    "A": (-0.096, 0.029),
    "B": (-0.037, 0.029),
    "C": (-0.002, 0.018),
    "D": (0.0, 0.0),
    "E": (0.004, -0.018),
    "F": (0.035, -0.036),
}
#: STAR/ISCLT wind speed class edges [m s-1] (3.5, 6.5, 10.5, 16.5, 21.5 knots)
STAR_SPEED_EDGES_M_S = (0.0, 1.80, 3.34, 5.40, 8.49, 11.06, math.inf)
#: ISCLT default representative speeds of the six classes [m s-1] (ISC3 user's guide)
STAR_SPEED_CLASS_M_S = (1.5, 2.5, 4.3, 6.8, 9.5, 12.5)
MIN_CLASS_FREQUENCY = 1e-4
MIN_WIND_SPEED_M_S = 1.0
REFERENCE_HEIGHT_M = 10.0
SECTORS = 16

# Pasquill-Turner table. Columns: day strong, moderate, slight insolation; night >= 4/8 cloud
# ("thin overcast"), night <= 3/8. Rows: wind speed upper bounds [m s-1] 2, 3, 5, 6, inf.
# Pasquill leaves the two night entries of the < 2 m/s row blank; we continue the 2-3 m/s row
# (E cloudy, F clear), the usual practice.
_PT_SPEED_UPPER = (2.0, 3.0, 5.0, 6.0, math.inf)
_PT_TABLE = (
    ("A", "AB", "B", "E", "F"),
    ("AB", "B", "C", "E", "F"),
    ("B", "BC", "C", "D", "E"),
    ("C", "CD", "D", "D", "D"),
    ("C", "D", "D", "D", "D"),
)

# --------------------------------------------------------------------------- physics
def monin_obukhov_from_class(stability, roughness_length_m):
    """Monin-Obukhov length [m] of a Pasquill class by Golder (1972).

    .. math:: 1/L = a + b \\log_{10} z_0

    ``stability`` is 'A'..'F' or a half-class 'AB', 'BC', 'CD' (mean of the two 1/L).
    Returns ``inf`` for neutral.
    """
    inv = np.mean([GOLDER_1972[c][0] + GOLDER_1972[c][1] * math.log10(roughness_length_m) for c in stability])
    return math.inf if inv == 0.0 else 1.0 / inv


def friction_velocity(wind_speed_m_s, monin_obukhov_length_m, roughness_length_m, *,
                      reference_height_m=REFERENCE_HEIGHT_M):
    """u* [m s-1] from the log-linear profile with AERMOD's stability functions.

    .. math:: u_* = \\frac{k\\,u(z_r)}{\\ln(z_r/z_0) - \\psi_m(z_r/L) + \\psi_m(z_0/L)}
    """
    L = monin_obukhov_length_m
    zr, z0 = reference_height_m, roughness_length_m
    denom = math.log(zr / z0)
    if math.isfinite(L):
        denom += -psi_m(zr / L) + psi_m(z0 / L)
    if denom <= 0.0:
        raise ValueError(f"profile denominator {denom} <= 0 for L={L}, z0={z0}")
    return VON_KARMAN * wind_speed_m_s / denom


def class_hour(speed, stability, z0, temperature_k, zic_day):
    """One physically consistent met class (dict of scalars)."""
    L = monin_obukhov_from_class(stability, z0)
    ustar = friction_velocity(speed, L, z0)
    zim = 2300.0 * ustar**1.5
    if math.isfinite(L) and L < 0.0:
        scale = {"A": 1.2, "AB": 1.1, "B": 1.0, "BC": 0.9, "C": 0.8, "CD": 0.8}[stability]
        zic = zic_day * scale
        # w* = (g H zic / (rho cp T))^(1/3) with H = -rho cp T u*^3/(k g L) => (-u*^3 zic/(k L))^(1/3)
        wstar = (-ustar**3 * zic / (VON_KARMAN * L)) ** (1.0 / 3.0)
    else:
        zic, wstar = math.nan, math.nan
        if not math.isfinite(L):
            L = 1.0e8  # neutral: a very large |L| (AERMET caps |L|; 1e8 m is neutral for all purposes)
    return dict(wind_speed_m_s=speed, friction_velocity_m_s=ustar, convective_velocity_m_s=wstar,
                monin_obukhov_length_m=L, conv_mixing_height_m=zic, mech_mixing_height_m=zim,
                roughness_length_m=z0, temperature_k=temperature_k)


def _solar_category_fractions(latitude_deg):
    """Shares of the year's hours: (strong, moderate, slight, low-sun day, night)."""
    day = np.arange(1, 366)
    decl = np.radians(23.45) * np.sin(np.radians(360.0 * (284 + day) / 365.0))  # Cooper 1969
    hour_angle = np.radians(15.0 * (np.arange(24) + 0.5 - 12.0))  # local solar time, hour centres
    phi = math.radians(latitude_deg)
    sin_el = math.sin(phi) * np.sin(decl)[:, None] + math.cos(phi) * np.cos(decl)[:, None] * np.cos(hour_angle)[None, :]
    el = np.degrees(np.arcsin(np.clip(sin_el, -1, 1))).ravel()
    n = el.size
    return (np.sum(el > 60) / n, np.sum((el > 35) & (el <= 60)) / n, np.sum((el > 15) & (el <= 35)) / n,
            np.sum((el > 0) & (el <= 15)) / n, np.sum(el <= 0) / n)


def _weibull_classes(mean_speed, edges=STAR_SPEED_EDGES_M_S, k=2.0):
    """Probability and conditional-mean speed of each speed class for a Weibull(k) wind."""
    lam = mean_speed / math.gamma(1.0 + 1.0 / k)
    u = np.linspace(0.0, 60.0, 240001)
    pdf = (k / lam) * (u / lam) ** (k - 1) * np.exp(-((u / lam) ** k))
    probs, means = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (u >= lo) & (u < min(hi, 60.0))
        w = pdf[sel]
        p = np.trapezoid(w, u[sel]) if sel.sum() > 1 else 0.0
        m = np.trapezoid(w * u[sel], u[sel]) / p if p > 0 else 0.5 * (lo + min(hi, 60.0))
        probs.append(p)
        means.append(max(m, MIN_WIND_SPEED_M_S))
    probs = np.asarray(probs)
    return probs / probs.sum(), np.asarray(means)


def _pasquill(speed, column):
    row = next(i for i, up in enumerate(_PT_SPEED_UPPER) if speed < up)
    return _PT_TABLE[row][column]


def sector_frequencies(rose, n_sectors=SECTORS, kappa=2.0):
    """Sector frequencies of a von Mises mixture + uniform remainder (sector k centred at k*360/n)."""
    width = 360.0 / n_sectors
    theta = np.radians(np.linspace(-width / 2, 360.0 - width / 2, n_sectors * 200, endpoint=False) + width / 400)
    dens = np.full(theta.shape, (1.0 - sum(w for _, w in rose)) / (2 * np.pi))
    i0 = np.i0(kappa)
    for mu, w in rose:
        dens += w * np.exp(kappa * np.cos(theta - math.radians(mu))) / (2 * np.pi * i0)
    f = dens.reshape(n_sectors, 200).mean(axis=1)
    return f / f.sum()


def default_climatology_arrays(region, *, roughness_length_m=URBAN_ROUGHNESS_M, n_sectors=SECTORS):
    """The default climatology of a climate region as a dict of 1-D arrays (MetHours fields).

    Parameters
    ----------
    region : str or ClimateRegion
        A key of :data:`CLIMATE_REGIONS`.
    roughness_length_m : float [m]
    n_sectors : int  wind-direction sectors (16 = STAR)

    Returns
    -------
    dict of ndarray, one entry per class, with ``weight`` summing to 1.
    """
    if isinstance(region, str):
        try:
            region = CLIMATE_REGIONS[region]
        except KeyError:
            raise ValueError(f"unknown climate region {region!r}; valid: {', '.join(CLIMATE_REGIONS)}") from None
    p_speed, u_mean = _weibull_classes(region.mean_wind_m_s)
    strong, moderate, slight, low_sun, night = _solar_category_fractions(region.latitude_deg)
    ov, cl = region.overcast_fraction, region.cloudy_fraction
    # joint (speed class, stability) probabilities
    joint = {}
    for ps, u in zip(p_speed, u_mean):
        if ps <= 0:
            continue
        parts = [("D", ov)]  # overcast, day or night
        clear, cloudy = (1 - ov) * (1 - cl), (1 - ov) * cl
        # day: cloud lowers insolation by one category (strong->moderate->slight->neutral)
        parts += [(_pasquill(u, 0), strong * clear), (_pasquill(u, 1), moderate * clear),
                  (_pasquill(u, 2), slight * clear), ("D", low_sun * (1 - ov))]
        parts += [(_pasquill(u, 1), strong * cloudy), (_pasquill(u, 2), moderate * cloudy), ("D", slight * cloudy)]
        # night (the day weights above already carry 1 - night)
        parts += [(_pasquill(u, 3), night * cloudy), (_pasquill(u, 4), night * clear)]
        for stab, w in parts:
            joint[(u, stab)] = joint.get((u, stab), 0.0) + ps * w
    sectors = sector_frequencies(region.rose, n_sectors)
    rows = []
    for (u, stab), p in sorted(joint.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        base = class_hour(float(u), stab, roughness_length_m, region.temperature_k, region.daytime_mixing_height_m)
        for k, fs in enumerate(sectors):
            w = p * fs
            if w >= MIN_CLASS_FREQUENCY:
                rows.append({**base, "wind_from_deg": k * 360.0 / n_sectors, "weight": w, "stability": stab})
    return rows_to_arrays(rows)


def rows_to_arrays(rows):
    """Class rows (dicts of :func:`class_hour` fields, ``wind_from_deg``, ``weight``, ``stability``) as
    MetHours arrays, the weights renormalised to sum to 1."""
    keys = [k for k in rows[0] if k != "stability"]
    out = {k: np.array([r[k] for r in rows], dtype=float) for k in keys}
    out["weight"] = out["weight"] / out["weight"].sum()
    out["reference_height_m"] = np.full(len(rows), REFERENCE_HEIGHT_M)
    out["stability_class"] = np.array([r["stability"] for r in rows])
    return out

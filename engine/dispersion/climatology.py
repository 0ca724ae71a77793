"""Default met climatologies by climate region, ISC-style STAR tables, and per-city met choice.

Two built-in constructions, chosen by ``[met] climatology``:

* ``"aermet"`` (:func:`aermet_climatology`, section "AERMET-way default" below): met-site
  surface characteristics per region and season, boundary-layer parameters by AERMET's own
  formulas hour by hour over each season, calms, two seasons (heating Nov-Mar, non-heating),
  grouped into classes by :func:`classify_hours` (the same grouping ``cobenefits
  met-climatology`` applies to an hourly AERMET file, :func:`climatology_from_met`); a
  :class:`Climatology` gives one MetHours per season and the season coefficients of a
  seasonal superposition; :func:`seasonal_emission_shares` gives each sector's seasonal shares.
* ``"golder"`` (= ``"default"``): the v1 construction described next.

An annual-average concentration needs the joint frequency of wind direction, wind speed and
stability, not a time series. A **climatology** here is a set of weighted met classes, each a
physically consistent AERMOD-style hour (u, direction, u*, w*, L, z_ic, z_im, z0, T), passed to
the dispersion stage as one :class:`engine.dispersion.met.MetHours` whose ``weight`` is the class frequency.

The v1 climatology (``climatology = "golder"`` or ``"default"``, version ``DEFAULT_VERSION``)
--------------------------------------------------------------------------------------------
**It is synthetic and representative, not fitted to station data** (no installable Chinese
joint-frequency table exists; see docs/met.md, "Why the default met is synthetic"). Every number has its
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

Glossary: ``wind_speed_m_s`` [m s-1] at ``reference_height_m`` [m]; ``wind_from_deg`` [deg];
``friction_velocity_m_s`` u* [m s-1]; ``convective_velocity_m_s`` w* [m s-1];
``monin_obukhov_length_m`` L [m]; ``conv_mixing_height_m`` z_ic [m]; ``mech_mixing_height_m``
z_im [m]; ``roughness_length_m`` z0 [m]; ``temperature_k`` [K]; ``weight`` class frequency [1].
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.constants import GRAVITY, VON_KARMAN
from engine.errors import InputError

__all__ = [
    "DEFAULT_VERSION",
    "CLIMATE_REGIONS",
    "PROVINCE_REGION",
    "GOLDER_1972",
    "STAR_SPEED_EDGES_M_S",
    "STAR_SPEED_CLASS_M_S",
    "MetSpec",
    "ClimateRegion",
    "climate_region_of",
    "default_climatology_arrays",
    "star_to_arrays",
    "read_star",
    "monin_obukhov_from_class",
    "friction_velocity",
    "to_met_hours",
    "met_spec_for_city",
    "load_met",
    "CLIMATOLOGY_NAMES",
    "SEASONS",
    "STABILITY_CLASSES",
    "CALM_THRESHOLD_M_S",
    "CLIMATOLOGY_SPEED_EDGES_M_S",
    "Climatology",
    "classify_hours",
    "climatology_from_met",
    "season_of_month",
    "stability_class_index",
    "speed_class_index",
    "sector_index",
    "surface_characteristics",
    "net_radiation",
    "convective_scales",
    "stable_scales",
    "aermet_hours",
    "aermet_climatology",
    "seasonal_emission_shares",
    "write_climatology",
    "read_climatology",
    "load_climatology",
    "load_seasonal_met",
    "seasonal_source_shares",
]

DEFAULT_VERSION = "default-climatology-v1"
#: names accepted by ``[met] climatology``; 'default' is 'golder' (the v1 construction below)
CLIMATOLOGY_NAMES = ("default", "golder", "aermet")

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
URBAN_ROUGHNESS_M = 1.0
RHO_CP = 1204.8  # J m-3 K-1, AERMOD/AERMET
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


@dataclass(frozen=True)
class ClimateRegion:
    """Parameters of one default climate region (basis in :data:`CLIMATE_REGIONS`' comments).

    Attributes
    ----------
    mean_wind_m_s : annual-mean 10-m wind speed [m s-1]
    latitude_deg : representative latitude for the solar elevation statistics [deg]
    temperature_k : annual-mean near-surface air temperature [K]
    daytime_mixing_height_m : mean daytime convective boundary-layer height [m]
    overcast_fraction : share of hours that are overcast (class D) [1]
    cloudy_fraction : share of the other hours with >= 4/8 cloud [1]
    rose : ((from_deg, weight), ...) von Mises components; the remaining weight is uniform
    """

    name: str
    mean_wind_m_s: float
    latitude_deg: float
    temperature_k: float
    daytime_mixing_height_m: float
    overcast_fraction: float
    cloudy_fraction: float
    rose: tuple


# Basis (all values rounded, representative, NOT fitted to station data):
# * annual-mean 10-m wind speeds: China's station mean was ~2.4 m/s over 1969-2005, highest in
#   the north-east, Inner Mongolia/north-west and on the Tibetan Plateau and lowest in the
#   Sichuan Basin and the south-west valleys (Guo, Xu & Hu 2011, Int. J. Climatol. 31:349);
# * daytime boundary-layer heights: deepest over the arid north-west and the Plateau, shallow in
#   the humid south-east and shallowest in the Sichuan Basin (Guo et al. 2016, Atmos. Chem.
#   Phys. 16:13309, radiosonde climatology);
# * cloudiness: the Sichuan Basin and Guizhou are the cloudiest parts of China, the arid
#   north-west the clearest (national cloud-cover climatologies);
# * prevailing directions: the East Asian monsoon - northerly/north-westerly winter winds and
#   southerly/south-easterly summer winds in the east, westerlies in the north-west and on the
#   Plateau, the south-west monsoon in Yunnan;
# * annual-mean temperatures: rounded regional means of the Chinese climate normals.
CLIMATE_REGIONS = {
    "northeast": ClimateRegion("northeast", 3.0, 45.0, 278.0, 1100.0, 0.20, 0.45,
                               ((315.0, 0.35), (225.0, 0.40))),
    "north_china": ClimateRegion("north_china", 2.3, 37.0, 286.0, 1000.0, 0.20, 0.45,
                                 ((340.0, 0.35), (190.0, 0.35))),
    "northwest": ClimateRegion("northwest", 2.6, 40.0, 282.0, 1400.0, 0.12, 0.35,
                               ((300.0, 0.45), (100.0, 0.20))),
    "tibetan_plateau": ClimateRegion("tibetan_plateau", 3.0, 33.0, 276.0, 1400.0, 0.20, 0.45,
                                     ((260.0, 0.50), (80.0, 0.20))),
    "yangtze": ClimateRegion("yangtze", 2.4, 30.0, 290.0, 900.0, 0.35, 0.50,
                             ((330.0, 0.30), (135.0, 0.35))),
    "south": ClimateRegion("south", 2.2, 24.0, 294.0, 900.0, 0.35, 0.50,
                           ((30.0, 0.40), (200.0, 0.30))),
    "sichuan_basin": ClimateRegion("sichuan_basin", 1.3, 29.0, 289.0, 700.0, 0.50, 0.55,
                                   ((20.0, 0.35), (190.0, 0.20))),
    "yunnan_plateau": ClimateRegion("yunnan_plateau", 2.2, 25.0, 289.0, 1100.0, 0.25, 0.45,
                                    ((225.0, 0.50), (45.0, 0.10))),
}

#: province code (first two digits of the 2010 admin code) -> climate region
PROVINCE_REGION = {
    11: "north_china", 12: "north_china", 13: "north_china", 14: "north_china",
    15: "northwest", 21: "northeast", 22: "northeast", 23: "northeast",
    31: "yangtze", 32: "yangtze", 33: "yangtze", 34: "yangtze", 35: "south", 36: "yangtze",
    37: "north_china", 41: "north_china", 42: "yangtze", 43: "yangtze", 44: "south",
    45: "south", 46: "south", 50: "sichuan_basin", 51: "sichuan_basin", 52: "sichuan_basin",
    53: "yunnan_plateau", 54: "tibetan_plateau", 61: "northwest", 62: "northwest",
    63: "tibetan_plateau", 64: "northwest", 65: "northwest",
}


def climate_region_of(province_id):
    """Climate region name of a province (2010 admin code, e.g. 510000 -> 'sichuan_basin')."""
    pid = int(province_id)
    key = pid // 10000 if pid >= 10000 else pid
    try:
        return PROVINCE_REGION[key]
    except KeyError:
        raise InputError(f"province {province_id} has no default climate region "
                         f"(known province codes: {', '.join(str(k) for k in sorted(PROVINCE_REGION))}); "
                         "give [met] sfc_file/pfl_file or star_file") from None


# --------------------------------------------------------------------------- physics
def monin_obukhov_from_class(stability, roughness_length_m):
    """Monin-Obukhov length [m] of a Pasquill class by Golder (1972).

    .. math:: 1/L = a + b \\log_{10} z_0

    ``stability`` is 'A'..'F' or a half-class 'AB', 'BC', 'CD' (mean of the two 1/L).
    Returns ``inf`` for neutral.
    """
    inv = np.mean([GOLDER_1972[c][0] + GOLDER_1972[c][1] * math.log10(roughness_length_m) for c in stability])
    return math.inf if inv == 0.0 else 1.0 / inv


def _psi_m(zeta):
    """AERMOD stability function for momentum psi_m(z/L)."""
    if zeta < 0.0:  # Businger-Dyer (Paulson 1970 integral form)
        x = (1.0 - 16.0 * zeta) ** 0.25
        return 2.0 * math.log((1.0 + x) / 2.0) + math.log((1.0 + x * x) / 2.0) - 2.0 * math.atan(x) + math.pi / 2.0
    return -17.0 * (1.0 - math.exp(-0.29 * zeta))  # stable (Van Ulden & Holtslag 1985)


def friction_velocity(wind_speed_m_s, monin_obukhov_length_m, roughness_length_m, *,
                      reference_height_m=REFERENCE_HEIGHT_M):
    """u* [m s-1] from the log-linear profile with AERMOD's stability functions.

    .. math:: u_* = \\frac{k\\,u(z_r)}{\\ln(z_r/z_0) - \\psi_m(z_r/L) + \\psi_m(z_0/L)}
    """
    L = monin_obukhov_length_m
    zr, z0 = reference_height_m, roughness_length_m
    denom = math.log(zr / z0)
    if math.isfinite(L):
        denom += -_psi_m(zr / L) + _psi_m(z0 / L)
    if denom <= 0.0:
        raise ValueError(f"profile denominator {denom} <= 0 for L={L}, z0={z0}")
    return VON_KARMAN * wind_speed_m_s / denom


def _class_hour(speed, stability, z0, temperature_k, zic_day):
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


def _sector_frequencies(rose, n_sectors=SECTORS, kappa=2.0):
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
    sectors = _sector_frequencies(region.rose, n_sectors)
    rows = []
    for (u, stab), p in sorted(joint.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        base = _class_hour(float(u), stab, roughness_length_m, region.temperature_k, region.daytime_mixing_height_m)
        for k, fs in enumerate(sectors):
            w = p * fs
            if w >= MIN_CLASS_FREQUENCY:
                rows.append({**base, "wind_from_deg": k * 360.0 / n_sectors, "weight": w, "stability": stab})
    return _rows_to_arrays(rows)


def _rows_to_arrays(rows):
    keys = [k for k in rows[0] if k != "stability"]
    out = {k: np.array([r[k] for r in rows], dtype=float) for k in keys}
    out["weight"] = out["weight"] / out["weight"].sum()
    out["reference_height_m"] = np.full(len(rows), REFERENCE_HEIGHT_M)
    out["stability_class"] = np.array([r["stability"] for r in rows])
    return out


# --------------------------------------------------------------------------- STAR
_STAB = "ABCDEF"


def read_star(path):
    """Read an ISC-style STAR joint-frequency table -> (6 stability, 6 speed, 16 sector) array.

    Accepted layouts (comment lines starting with ``#`` or ``*`` are skipped):

    * **ISCLT block text**: 36 records of 16 numbers, stability A..F outermost, then speed
      class 1..6, then sectors N, NNE, ..., NNW (the direction the wind blows FROM);
      extra leading label tokens on a record (``A 1`` ...) are ignored.
    * **CSV, long**: a header with columns ``stability`` (A-F), ``speed_class`` (1-6),
      ``sector`` (1-16, 1 = N) or ``direction_deg`` (sector centre) and ``frequency``.

    Frequencies are normalised to sum to 1. Raises :class:`InputError` with the file and line.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"STAR file {path} does not exist") from None
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines())]
    lines = [(i, ln) for i, ln in lines if ln and ln[0] not in "#*"]
    if not lines:
        raise InputError(f"{path}: no data")
    freq = np.zeros((6, 6, 16))
    first = lines[0][1]
    if re.search(r"[a-zA-Z_]{3,}", first) and "," in first:
        cols = [c.strip().lower() for c in first.split(",")]
        need = {"stability", "speed_class", "frequency"}
        if not need <= set(cols) or not ({"sector", "direction_deg"} & set(cols)):
            raise InputError(f"{path}, line {lines[0][0]}: CSV STAR needs columns stability, speed_class, "
                             f"sector (or direction_deg) and frequency; found {', '.join(cols)}")
        for lineno, ln in lines[1:]:
            vals = dict(zip(cols, (v.strip() for v in ln.split(","))))
            try:
                s = _STAB.index(vals["stability"].upper())
                c = int(float(vals["speed_class"])) - 1
                if "sector" in vals:
                    d = int(float(vals["sector"])) - 1
                else:
                    d = int(round(float(vals["direction_deg"]) / 22.5)) % 16
                f = float(vals["frequency"])
                if not (0 <= c < 6 and 0 <= d < 16) or not (f >= 0):
                    raise ValueError
            except (ValueError, KeyError):
                raise InputError(f"{path}, line {lineno}: expected stability A-F, speed_class 1-6, "
                                 f"sector 1-16 and a frequency >= 0; got {ln!r}") from None
            freq[s, c, d] += f
    else:
        records = []
        for lineno, ln in lines:
            toks = ln.replace(",", " ").split()
            nums = []
            for t in toks:
                try:
                    nums.append(float(t))
                except ValueError:
                    continue
            if len(nums) > 16:
                nums = nums[-16:]  # leading numeric labels (speed class) dropped
            if len(nums) != 16:
                raise InputError(f"{path}, line {lineno}: expected 16 sector frequencies, found {len(nums)}")
            records.append((lineno, nums))
        if len(records) != 36:
            raise InputError(f"{path}: expected 36 records (6 stability x 6 speed classes) of 16 "
                             f"frequencies, found {len(records)}")
        arr = np.array([r for _, r in records])
        if (arr < 0).any() or not np.isfinite(arr).all():
            bad = next(ln for ln, r in records if min(r) < 0 or not all(map(math.isfinite, r)))
            raise InputError(f"{path}, line {bad}: frequencies must be finite and >= 0")
        freq = arr.reshape(6, 6, 16)
    total = freq.sum()
    if total <= 0:
        raise InputError(f"{path}: all frequencies are zero")
    return freq / total


def star_to_arrays(freq, *, temperature_k=288.0, daytime_mixing_height_m=1000.0,
                   roughness_length_m=URBAN_ROUGHNESS_M, speeds_m_s=STAR_SPEED_CLASS_M_S):
    """MetHours fields of a STAR table (classes with frequency >= :data:`MIN_CLASS_FREQUENCY`).

    Each (stability, speed, sector) cell becomes one class with the ISCLT representative speed,
    L from Golder (1972), u* from the AERMOD profile and mixing heights as in the default
    climatology (module docstring, steps 3-5).
    """
    rows = []
    for s in range(6):
        for c in range(6):
            base = None
            for d in range(16):
                w = float(freq[s, c, d])
                if w < MIN_CLASS_FREQUENCY:
                    continue
                if base is None:
                    base = _class_hour(float(speeds_m_s[c]), _STAB[s], roughness_length_m, temperature_k,
                                       daytime_mixing_height_m)
                rows.append({**base, "wind_from_deg": d * 22.5, "weight": w, "stability": _STAB[s]})
    if not rows:
        raise InputError("STAR table: no class has a frequency >= 1e-4")
    return _rows_to_arrays(rows)


# --------------------------------------------------------------------------- MetHours
def to_met_hours(arrays):
    """Build an :class:`engine.dispersion.met.MetHours` from class arrays (``stability_class`` is dropped)."""
    from engine.dispersion.met import MetHours

    kw = {k: v for k, v in arrays.items() if k != "stability_class"}
    n = len(kw["weight"])
    kw.setdefault("calm", np.zeros(n, dtype=bool))
    kw.setdefault("missing", np.zeros(n, dtype=bool))
    return MetHours.from_arrays(**kw)


@dataclass(frozen=True)
class MetSpec:
    """Which met a city uses: ``kind`` in default (= golder) | aermet_climatology (built the AERMET
    way) | climatology_file | star | aermet (hourly AERMET .SFC/.PFL files), identity and content hash.

    Cities with equal specs share one transfer kernel.
    """

    kind: str
    name: str  # region name, or file path(s)
    digest: str  # hash of everything that defines the met

    def describe(self):
        if self.kind == "default":
            return (f"{DEFAULT_VERSION}, climate region '{self.name}' (climatology = 'golder': Pasquill/Golder "
                    "classes at z0 = 1 m, the v1 default; see engine.dispersion.climatology)")
        if self.kind == "aermet_climatology":
            return (f"{AERMET_VERSION}, climate region '{self.name}' (built the AERMET way, two seasons; "
                    "see engine.dispersion.climatology)")
        if self.kind == "climatology_file":
            return f"climatology file: {self.name}"
        return f"{self.kind}: {self.name}"


def _file_digest(*paths):
    h = hashlib.sha256()
    for p in paths:
        try:
            h.update(Path(p).read_bytes())
        except FileNotFoundError:
            raise InputError(f"met file {p} does not exist") from None
    return h.hexdigest()[:20]


def met_spec_for_city(met_cfg, city_id, province_id, *, check_files=True):
    """The :class:`MetSpec` of one city under a ``[met]`` configuration.

    ``sfc_file``/``pfl_file`` may contain ``{city_id}`` (and ``{province_id}``) to give every
    city its own AERMET files; otherwise the same files serve every city. ``star_file`` likewise.
    """
    fmt = {"city_id": int(city_id), "province_id": int(province_id)}
    if met_cfg.sfc_file or met_cfg.pfl_file:
        if not (met_cfg.sfc_file and met_cfg.pfl_file):
            raise InputError("[met] sfc_file and pfl_file must be given together")
        sfc, pfl = met_cfg.sfc_file.format(**fmt), met_cfg.pfl_file.format(**fmt)
        dig = _file_digest(sfc, pfl) if check_files else ""
        return MetSpec("aermet", f"{sfc} + {pfl}", dig)
    if met_cfg.star_file:
        star = met_cfg.star_file.format(**fmt)
        region = climate_region_of(province_id)
        dig = _file_digest(star) if check_files else ""
        return MetSpec("star", f"{star} (temperature and mixing height of region '{region}')",
                       hashlib.sha256(f"{dig}|{region}".encode()).hexdigest()[:20])
    cfile = getattr(met_cfg, "climatology_file", "")
    if cfile:
        cfile = cfile.format(**fmt)
        dig = _file_digest(cfile) if check_files else ""
        return MetSpec("climatology_file", cfile, dig)
    if met_cfg.climatology not in CLIMATOLOGY_NAMES:
        raise InputError(f"[met] climatology = {met_cfg.climatology!r} is not known; valid: "
                         f"{', '.join(CLIMATOLOGY_NAMES)}")
    region = climate_region_of(province_id)
    if met_cfg.climatology in ("aermet", "default"):  # 'default' = the AERMET-way climatology
        h = hashlib.sha256(f"{AERMET_VERSION}|{region}|{CLIMATE_REGIONS[region]}".encode())
        for name in ("aermet_surface_characteristics.csv", "climate_region_seasons.csv"):
            h.update((_DATA / name).read_bytes())
        return MetSpec("aermet_climatology", region, h.hexdigest()[:20])
    dig = hashlib.sha256(f"{DEFAULT_VERSION}|{region}|{CLIMATE_REGIONS[region]}".encode()).hexdigest()[:20]
    return MetSpec("default", region, dig)


def load_climatology(spec):
    """The :class:`Climatology` (per-season met) of a climatology :class:`MetSpec`.

    For ``kind`` 'aermet_climatology' (built-in, :func:`aermet_climatology`) and 'climatology_file'
    (:func:`read_climatology`). Hourly and STAR met have no seasons: ``InputError``.
    """
    if spec.kind == "aermet_climatology":
        return _aermet_climatology_cached(spec.name)
    if spec.kind == "climatology_file":
        return read_climatology(spec.name)
    raise InputError(f"met {spec.describe()} is not a seasonal climatology (use [met] climatology = 'aermet' "
                     "or climatology_file)")


_AERMET_CACHE = {}


def _aermet_climatology_cached(region):
    if region not in _AERMET_CACHE:
        _AERMET_CACHE[region] = aermet_climatology(region)
    return _AERMET_CACHE[region]


def load_met(spec):
    """The :class:`engine.dispersion.met.MetHours` of a :class:`MetSpec` (a climatology's annual met)."""
    if spec.kind in ("aermet_climatology", "climatology_file"):
        return load_climatology(spec).met()
    if spec.kind == "default":
        return to_met_hours(default_climatology_arrays(spec.name))
    if spec.kind == "star":
        path = spec.name.split(" (", 1)[0]
        region = CLIMATE_REGIONS[re.search(r"region '([a-z_]+)'", spec.name).group(1)]
        arrays = star_to_arrays(read_star(path), temperature_k=region.temperature_k,
                                daytime_mixing_height_m=region.daytime_mixing_height_m)
        return to_met_hours(arrays)
    from engine.dispersion.met import read_aermet

    sfc, pfl = spec.name.split(" + ")
    return read_aermet(sfc, pfl)


# =========================================================================== seasons, classes
#: the seasons of a seasonal climatology, in this order
SEASONS = ("heating", "non_heating")
#: months of the heating season (engine/data/met/climate_region_seasons.csv, header)
HEATING_MONTHS = (11, 12, 1, 2, 3)
#: days of each season in a 365-day year
SEASON_DAYS = {"heating": 30 + 31 + 31 + 28 + 31, "non_heating": 365 - (30 + 31 + 31 + 28 + 31)}
#: stability classes of a climatology: Pasquill A-F by Golder (1972) at the hour's z0, D split by
#: the sign of L (DU convective side, DS stable side) and G = more stable than F (module docstring)
STABILITY_CLASSES = ("A", "B", "C", "DU", "DS", "E", "F", "G")
#: speed-class edges [m s-1] of a climatology: the STAR/ISCLT edges, the first class starting at
#: the calm threshold and split at 1 m/s (ISC's minimum wind; concentrations ~ 1/u vary most
#: there: the LOVETT check of tests/test_climatology.py goes from 0.919 to 0.934 of the hourly mean)
CALM_THRESHOLD_M_S = 0.5
CLIMATOLOGY_SPEED_EDGES_M_S = (CALM_THRESHOLD_M_S, 1.0) + STAR_SPEED_EDGES_M_S[1:]
CLIMATOLOGY_FORMAT = "cobenefits-climatology-v1"
AERMET_VERSION = "aermet-climatology-v1"
_DATA = Path(__file__).resolve().parents[1] / "data" / "met"


def season_of_month(month):
    """Season name of each month (1-12): 'heating' for Nov-Mar, else 'non_heating'."""
    m = np.asarray(month, dtype=int)
    return np.where(np.isin(m, HEATING_MONTHS), SEASONS[0], SEASONS[1])


def stability_class_index(monin_obukhov_length_m, roughness_length_m):
    """Index into :data:`STABILITY_CLASSES` of each hour, from 1/L and z0.

    The Golder (1972) lines 1/L = a + b log10(z0) (:data:`GOLDER_1972`) of the Pasquill classes
    are computed at each hour's z0; a class owns the 1/L values closer to its line than to its
    neighbours' (boundaries midway between lines). Neutral (D) is split by the sign of L; 1/L
    beyond F by more than half the E-F spacing is class G.
    """
    inv = 1.0 / np.asarray(monin_obukhov_length_m, dtype=float)
    lz = np.log10(np.asarray(roughness_length_m, dtype=float))
    line = {c: GOLDER_1972[c][0] + GOLDER_1972[c][1] * lz for c in "ABCDEF"}
    ab, bc, cd = (line["A"] + line["B"]) / 2, (line["B"] + line["C"]) / 2, (line["C"] + line["D"]) / 2
    de, ef = (line["D"] + line["E"]) / 2, (line["E"] + line["F"]) / 2
    fg = line["F"] + (line["F"] - ef)
    idx = np.select([inv < ab, inv < bc, inv < cd, inv < 0.0, inv < de, inv < ef, inv < fg],
                    [0, 1, 2, 3, 4, 5, 6], default=7)
    return idx.astype(int)


def speed_class_index(wind_speed_m_s, edges=CLIMATOLOGY_SPEED_EDGES_M_S):
    """0-based speed class of each wind speed [m s-1]; -1 below the calm threshold."""
    u = np.asarray(wind_speed_m_s, dtype=float)
    return np.searchsorted(np.asarray(edges), u, side="right") - 1


def sector_index(wind_from_deg, n_sectors=SECTORS):
    """0-based wind-direction sector (sector k centred on k * 360/n degrees, 0 = N)."""
    width = 360.0 / n_sectors
    return (np.floor((np.asarray(wind_from_deg, dtype=float) % 360.0) / width + 0.5).astype(int)) % n_sectors


_CLASS_FIELDS = ("wind_speed_m_s", "reference_height_m", "friction_velocity_m_s", "convective_velocity_m_s",
                 "monin_obukhov_length_m", "conv_mixing_height_m", "mech_mixing_height_m",
                 "roughness_length_m", "temperature_k", "temperature_height_m", "theta_gradient_k_m")


@dataclass(frozen=True, eq=False)
class Climatology:
    """A seasonal met climatology: joint frequencies of season, stability class, speed class and
    wind-direction sector, each class with representative boundary-layer parameters.

    Attributes
    ----------
    classes : dict of 1-D arrays, one entry per class (row): ``season`` (str), ``stability_class``
        (str, :data:`STABILITY_CLASSES`), ``speed_class`` (int, 1 = lowest), ``sector`` (int, 1 = N),
        ``wind_from_deg`` [deg], ``frequency`` [1] (share of the season's non-calm hours; sums to
        1 within each season), and the MetHours fields of :data:`_CLASS_FIELDS` in SI units.
    season_frequency : dict season -> share of the year's hours [1]
    calm_frequency : dict season -> share of the season's hours that are calm [1]
    source : str  what the climatology was made from, and how
    profile_heights_m : tuple [m]
        Levels of the optional observed-turbulence profile of each class (``classes`` then holds
        ``profile_sigma_v_m_s`` and ``profile_sigma_w_m_s`` of shape (n_class, n_level), NaN =
        not observed; AERMOD fills those from similarity). Empty = no profile.
    """

    classes: dict
    season_frequency: dict
    calm_frequency: dict
    source: str
    profile_heights_m: tuple = ()

    @property
    def seasons(self):
        return tuple(s for s in SEASONS if s in self.season_frequency) + tuple(
            s for s in self.season_frequency if s not in SEASONS)

    def __len__(self):
        return int(self.classes["frequency"].shape[0])

    def valid_weight(self, season):
        """Share of the year's hours that are in ``season`` and not calm [1]."""
        return self.season_frequency[season] * (1.0 - self.calm_frequency[season])

    def met(self, season=None):
        """:class:`engine.dispersion.met.MetHours` of one season, or of the year (``season=None``).

        The annual met weights each season's classes by its non-calm share of the year
        (:meth:`valid_weight`), so its period mean equals AERMOD's annual mean (calms excluded
        from the denominator, EPA calms policy).
        """
        c = self.classes
        if season is None:
            w = np.zeros(len(self))
            for s in self.seasons:
                sel = c["season"] == s
                w[sel] = c["frequency"][sel] * self.valid_weight(s)
            sel = w > 0
        else:
            if season not in self.season_frequency:
                raise InputError(f"climatology has no season {season!r}; it has {', '.join(self.seasons)}")
            sel = c["season"] == season
            w = c["frequency"]
        if not sel.any():
            raise InputError(f"climatology ({self.source}): no non-calm class in season {season!r}")
        arrays = {k: c[k][sel] for k in _CLASS_FIELDS}
        arrays["wind_from_deg"] = c["wind_from_deg"][sel]
        arrays["weight"] = w[sel] / w[sel].sum()
        if self.profile_heights_m:
            n = int(sel.sum())
            nan = np.full((n, len(self.profile_heights_m)), np.nan)
            arrays.update(profile_height_m=np.tile(np.asarray(self.profile_heights_m, float), (n, 1)),
                          profile_wind_speed_m_s=nan, profile_wind_from_deg=nan, profile_temperature_k=nan,
                          profile_sigma_v_m_s=c["profile_sigma_v_m_s"][sel],
                          profile_sigma_w_m_s=c["profile_sigma_w_m_s"][sel])
        from engine.dispersion.met import MetHours

        return MetHours.from_arrays(**arrays, source=f"climatology {self.source} season {season or 'annual'}")

    def seasonal_met(self):
        """``{season: MetHours}`` for every season with non-calm classes."""
        return {s: self.met(s) for s in self.seasons if (self.classes["season"] == s).any()}

    def season_coefficients(self):
        """``{season: c_s}`` with which a seasonal superposition gives AERMOD's annual mean.

        With K_s the period kernel of ``met(s)`` and a sector emitting the share ``share_s`` of
        its annual emission in season s (:func:`seasonal_emission_shares`), the annual-mean
        concentration per unit annual-mean emission rate q is

        .. math:: C = \\sum_s c_s\\, \\mathrm{share}_s\\, K_s q, \\qquad
                  c_s = \\frac{1 - \\mathrm{calm}_s}{\\sum_{s'} f_{s'} (1 - \\mathrm{calm}_{s'})}

        (f_s: season frequency; the season's emission rate is q share_s / f_s, and its hours weigh
        f_s (1 - calm_s) in the annual mean). Without calms every c_s is 1; a flat sector
        (share_s = f_s) gets the annual kernel of :meth:`met`.
        """
        tot = sum(self.valid_weight(s) for s in self.seasons)
        return {s: (1.0 - self.calm_frequency[s]) / tot for s in self.seasons}


def classify_hours(hours, *, season, weight, source, calm=None, sector_frequencies=None,
                   n_sectors=SECTORS, speed_edges=CLIMATOLOGY_SPEED_EDGES_M_S,
                   calm_threshold_m_s=CALM_THRESHOLD_M_S, profile_heights_m=()):
    """Group met hours into climatology classes with representative boundary-layer parameters.

    Parameters
    ----------
    hours : dict of 1-D arrays
        The fields of :data:`_CLASS_FIELDS` (MetHours names and units) and, unless
        ``sector_frequencies`` is given, ``wind_from_deg`` [deg]. NaN ``conv_*`` in stable hours.
    season : array of str
        Season of each hour.
    weight : array [1]
        Weight of each hour (1 for an observed hour, a probability for synthetic hours).
    calm : bool array, optional
        Calm hours (counted in ``calm_frequency``, not classed). Hours with a speed below
        ``calm_threshold_m_s`` [m s-1] are calm as well (0 for an AERMET file, whose calms AERMET
        has already flagged; :data:`CALM_THRESHOLD_M_S` for synthetic hours).
    sector_frequencies : dict season -> array (n_sectors,), optional
        Direction distribution, taken independent of the other class variables (synthetic hours).
    profile_heights_m : tuple [m], optional
        Levels of observed turbulence: ``hours`` then holds ``profile_sigma_v_m_s`` and
        ``profile_sigma_w_m_s`` (n, n_level) [m s-1], NaN where not observed; each class gets
        their harmonic means over the hours that observed them (concentration ~ 1/sigma).

    Returns
    -------
    Climatology

    Notes
    -----
    Key of a class: (season, stability class by :func:`stability_class_index`, speed class by
    :data:`CLIMATOLOGY_SPEED_EDGES_M_S`, reference height, sector). Representative values are
    weight means over the class's hours: wind speed, u*, mechanical mixing height, temperature,
    temperature height, dtheta/dz above zi (over the hours that have it); 1/L (so that neutral
    hours average correctly); z0 as a geometric mean; w* and the convective mixing height over
    the convective hours (the class is convective when the mean 1/L < 0). Boundary-layer
    parameters are shared by the sectors of one (season, stability, speed, height) group.
    """
    h = {k: np.asarray(hours[k], dtype=float) for k in _CLASS_FIELDS}
    n = h["wind_speed_m_s"].shape[0]
    season = np.asarray(season).astype(str)
    weight = np.broadcast_to(np.asarray(weight, dtype=float), (n,))
    calm_a = np.zeros(n, bool) if calm is None else np.asarray(calm, bool)
    calm_a = calm_a | (h["wind_speed_m_s"] < calm_threshold_m_s)
    season_names = [s for s in SEASONS if (season == s).any()] + sorted(set(season) - set(SEASONS))
    total_w = weight.sum()
    if total_w <= 0:
        raise InputError(f"{source}: no hours to build a climatology from")
    season_frequency, calm_frequency = {}, {}
    for s in season_names:
        ws = weight[season == s].sum()
        season_frequency[s] = float(ws / total_w)
        calm_frequency[s] = float(weight[(season == s) & calm_a].sum() / ws) if ws > 0 else 0.0
    ok = ~calm_a & (weight > 0)
    stab = stability_class_index(h["monin_obukhov_length_m"], h["roughness_length_m"])
    spd = np.clip(speed_class_index(h["wind_speed_m_s"], speed_edges), 0, None)
    zref = np.round(h["reference_height_m"], 1)
    if sector_frequencies is None:
        sec = sector_index(hours["wind_from_deg"], n_sectors)
    else:
        sec = np.zeros(n, int)
    prof_keys = ("profile_sigma_v_m_s", "profile_sigma_w_m_s") if profile_heights_m else ()
    prof = {k: np.asarray(hours[k], dtype=float) for k in prof_keys}
    rows = {k: [] for k in ("season", "stability_class", "speed_class", "sector", "wind_from_deg", "frequency",
                            *_CLASS_FIELDS, *prof_keys)}
    for s in season_names:
        in_s = ok & (season == s)
        ws_valid = weight[in_s].sum()
        if ws_valid <= 0:
            continue
        # one int64 key per hour: stability, speed class, reference height [0.1 m] (< 10^6)
        zr10 = np.round(zref[in_s] * 10).astype(np.int64)
        keys = (stab[in_s].astype(np.int64) * 100 + spd[in_s]) * 1_000_000 + zr10
        idx_s = np.flatnonzero(in_s)
        uniq, inv = np.unique(keys, return_inverse=True)
        inv = inv.ravel()
        for g, key in enumerate(uniq):
            k_stab, k_spd = int(key // 1_000_000) // 100, int(key // 1_000_000) % 100
            members = idx_s[inv == g]
            w = weight[members]
            wt = w.sum()
            rep = _representative({k: v[members] for k, v in h.items()}, w)
            for k in prof_keys:
                a = prof[k][members]
                okp = np.isfinite(a) & (a > 0)
                num = np.sum(np.where(okp, w[:, None], 0.0), axis=0)
                den = np.sum(np.where(okp, w[:, None] / np.where(okp, a, 1.0), 0.0), axis=0)
                rep[k] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
            if sector_frequencies is None:
                sec_w = np.bincount(sec[members], weights=w, minlength=n_sectors)
            else:
                sec_w = wt * np.asarray(sector_frequencies[s], dtype=float)
            for d in np.flatnonzero(sec_w > 0):
                rows["season"].append(s)
                rows["stability_class"].append(STABILITY_CLASSES[k_stab])
                rows["speed_class"].append(int(k_spd) + 1)
                rows["sector"].append(int(d) + 1)
                rows["wind_from_deg"].append(d * 360.0 / n_sectors)
                rows["frequency"].append(sec_w[d] / ws_valid)
                for k in (*_CLASS_FIELDS, *prof_keys):
                    rows[k].append(rep[k])
    classes = {k: np.asarray(v) for k, v in rows.items()}
    for k in prof_keys:
        classes[k] = classes[k].reshape(-1, len(profile_heights_m))
    for k in ("speed_class", "sector"):
        classes[k] = classes[k].astype(int)
    return Climatology(classes=classes, season_frequency=season_frequency, calm_frequency=calm_frequency,
                       source=source, profile_heights_m=tuple(float(z) for z in profile_heights_m))


def _representative(h, w):
    """Representative boundary-layer parameters of one class (see :func:`classify_hours`)."""
    wt = w.sum()

    def mean(a, mask=None):
        m = np.isfinite(a) if mask is None else (mask & np.isfinite(a))
        return float(np.sum(w[m] * a[m]) / np.sum(w[m])) if np.sum(w[m]) > 0 else math.nan

    def harmonic(a, mask=None):
        inv = mean(1.0 / a, mask)
        return 1.0 / inv if inv > 0 else math.nan

    out = {k: mean(h[k]) for k in ("reference_height_m", "temperature_k", "temperature_height_m",
                                   "theta_gradient_k_m")}
    for k in ("wind_speed_m_s", "friction_velocity_m_s", "mech_mixing_height_m"):
        out[k] = harmonic(h[k])
    out["roughness_length_m"] = float(math.exp(np.sum(w * np.log(h["roughness_length_m"])) / wt))
    inv_l = mean(1.0 / h["monin_obukhov_length_m"])
    if inv_l < 0.0:
        conv = h["monin_obukhov_length_m"] < 0
        out["monin_obukhov_length_m"] = 1.0 / inv_l
        out["conv_mixing_height_m"] = harmonic(h["conv_mixing_height_m"], conv)
        out["convective_velocity_m_s"] = harmonic(h["convective_velocity_m_s"], conv)
    else:
        out["monin_obukhov_length_m"] = 1.0 / inv_l if inv_l > 1e-8 else 1.0e8
        out["conv_mixing_height_m"] = math.nan
        out["convective_velocity_m_s"] = math.nan
    if not np.isfinite(out["temperature_height_m"]):
        out["temperature_height_m"] = 2.0
    return out


def climatology_from_met(met, *, source=None):
    """The climatology of an hourly :class:`engine.dispersion.met.MetHours` (e.g. from an AERMET file).

    Seasons from the hours' dates (``YYMMDDHH``; Nov-Mar heating); missing hours are dropped,
    calm hours (AERMOD: reference wind 0, or below :data:`CALM_THRESHOLD_M_S`) are counted in
    ``calm_frequency``; every other hour is classed by :func:`classify_hours`. With a profile,
    the lowest level's wind is the transport wind, and observed sigma-v/sigma-w (when every hour
    has the same levels) are carried per class (LOVETT check: 0.934 -> 0.956 of the hourly mean).
    """
    keep = ~met.missing
    if not keep.any():
        raise InputError(f"{met.source}: every hour is missing; no climatology can be made")
    m = met.select(keep)
    month = (np.asarray(m.date) // 10000) % 100
    if ((month < 1) | (month > 12)).any():
        raise InputError(f"{met.source}: hour labels must be YYMMDDHH dates to assign seasons")
    hours = {k: getattr(m, k) for k in _CLASS_FIELDS}
    hours["temperature_height_m"] = (m.temperature_height_m if m.temperature_height_m is not None
                                     else np.full(len(m), 2.0))
    hours["wind_from_deg"] = m.wind_from_deg
    if m.profile_height_m is not None:
        # AERMOD transports a near-ground plume with the observed profile wind below the lowest
        # level held at that level's value (caseD notes): the lowest level with speed and
        # direction replaces the reference wind
        z = m.profile_height_m
        ok = np.isfinite(z) & np.isfinite(m.profile_wind_speed_m_s) & np.isfinite(m.profile_wind_from_deg) \
            & (m.profile_wind_speed_m_s > 0)
        zz = np.where(ok, z, np.inf)
        j = np.argmin(zz, axis=1)
        has = np.isfinite(zz[np.arange(len(m)), j])
        r = np.arange(len(m))
        hours["wind_speed_m_s"] = np.where(has, m.profile_wind_speed_m_s[r, j], m.wind_speed_m_s)
        hours["wind_from_deg"] = np.where(has, m.profile_wind_from_deg[r, j], m.wind_from_deg)
        hours["reference_height_m"] = np.where(has, z[r, j], m.reference_height_m)
        # observed turbulence at the profile's levels, when every hour has the same levels
        levels = [np.unique(z[:, col][np.isfinite(z[:, col])]) for col in range(z.shape[1])]
        if all(lv.size == 1 for lv in levels) and np.isfinite(z).all():
            sv, sw = m.profile_sigma_v_m_s, m.profile_sigma_w_m_s
            if np.isfinite(sv).any() or np.isfinite(sw).any():
                heights = tuple(float(lv[0]) for lv in levels)
                hours["profile_sigma_v_m_s"], hours["profile_sigma_w_m_s"] = sv, sw
                return classify_hours(hours, season=season_of_month(month), weight=m.weight, calm=m.calm,
                                      source=source or f"hourly file {met.source}", calm_threshold_m_s=0.0,
                                      profile_heights_m=heights)
    return classify_hours(hours, season=season_of_month(month), weight=m.weight, calm=m.calm,
                          source=source or f"hourly file {met.source}", calm_threshold_m_s=0.0)


# =========================================================================== AERMET-way default
#: AERMET constants (Cimorelli et al. 2004, EPA-454/R-03-004, section 3; AERMET routines
#: NETRAD/HEAT/UCALCO/UCALST/MPPBL): net radiation (Holtslag & van Ulden 1983)
AERMET_C1_W_M2_K6 = 5.31e-13
AERMET_C2_W_M2 = 60.0
AERMET_C3 = 0.12
STEFAN_BOLTZMANN_W_M2_K4 = 5.67e-8
#: stable-layer profile constant beta_m of AERMET's default (non-ADJ_U*) u* (UCALST, 09/05/97)
AERMET_BETA_M = 5.0
#: Carson (1973) / Weil & Brower (1983) entrainment constant A in the convective mixing height
CARSON_ENTRAINMENT_A = 0.2
#: potential-temperature gradient [K m-1] of the morning profile the convective layer grows into:
#: AERMET's minimum gradient above zi (0.005 K m-1, the value the .SFC files carry)
MORNING_THETA_GRADIENT_K_M = 0.005
#: AERMET MPPBL limits on |L| [m] and on the mixing height (SBLMAX) [m]
AERMET_MIN_ABS_L_M = 1.0
AERMET_MAX_ABS_L_M = 8888.0
AERMET_MAX_MIXING_HEIGHT_M = 4000.0
#: AERMET's cap on the stable heat loss: u* theta* <= 0.05 m s-1 K (formulation eq. 26)
MAX_USTAR_THETASTAR = 0.05
#: representative opaque cloud fraction of the three cloud categories (clear: 0-3 oktas, cloudy:
#: 4-7 oktas, overcast: 8 oktas; okta-class centres)
CLOUD_FRACTION = {"clear": 1.5 / 8.0, "cloudy": 5.5 / 8.0, "overcast": 1.0}
#: Weibull shape of the 10-m wind-speed distribution (Rayleigh; Justus et al. 1978)
WEIBULL_SHAPE = 2.0


def _read_csv_table(name):
    import csv

    path = _DATA / name
    with open(path) as fh:
        rows = [r for r in csv.DictReader(ln for ln in fh if not ln.startswith("#"))]
    return rows


def surface_characteristics(region, season):
    """Met-site albedo [1], Bowen ratio [1] and z0 [m] of a region and season.

    From AERMET's user's guide tables for grassland (engine/data/met/aermet_surface_characteristics.csv)
    at the AERMET season and moisture of engine/data/met/climate_region_seasons.csv.
    """
    rs = _region_season(region, season)
    row = next(r for r in _read_csv_table("aermet_surface_characteristics.csv")
               if r["aermet_season"] == rs["aermet_season"])
    return {"albedo": float(row["albedo"]), "bowen_ratio": float(row[f"bowen_ratio_{rs['moisture']}"]),
            "roughness_length_m": float(row["roughness_length_m"])}


def _region_season(region, season):
    for r in _read_csv_table("climate_region_seasons.csv"):
        if r["region"] == region and r["season"] == season:
            return r
    raise ValueError(f"no met-site settings for region {region!r}, season {season!r}; regions: "
                     f"{', '.join(CLIMATE_REGIONS)}; seasons: {', '.join(SEASONS)}")


def _psi_m_unstable(zeta):
    """Businger-Dyer psi_m for zeta = z/L < 0 (vectorised)."""
    x = (1.0 - 16.0 * zeta) ** 0.25
    return 2.0 * np.log((1.0 + x) / 2.0) + np.log((1.0 + x * x) / 2.0) - 2.0 * np.arctan(x) + np.pi / 2.0


def net_radiation(solar_elevation_deg, cloud_fraction, temperature_k, albedo_noon):
    """Net radiation Rn [W m-2] as AERMET estimates it (Holtslag & van Ulden 1983).

    .. math::
        R_n = \\frac{(1 - r(\\phi)) R + c_1 T^6 - \\sigma_{SB} T^4 + c_2 n}{1 + c_3},\\quad
        R = (990 \\sin\\phi - 30)(1 - 0.75 n^{3.4}),\\quad
        r(\\phi) = r' + (1 - r') e^{-0.1\\phi - 0.5 (1 - r')^2}

    (Cimorelli et al. 2004, eqs. 2-5: Kasten & Czeplak 1980 cloud correction, Paine 1987 albedo;
    R = 0 when the sun is below 990 sin phi = 30 W m-2.)
    """
    phi = np.asarray(solar_elevation_deg, dtype=float)
    n = np.asarray(cloud_fraction, dtype=float)
    t = np.asarray(temperature_k, dtype=float)
    r0 = np.maximum(990.0 * np.sin(np.radians(phi)) - 30.0, 0.0)
    r_solar = r0 * (1.0 - 0.75 * n**3.4)
    rp = albedo_noon
    albedo = np.where(phi > 0, rp + (1.0 - rp) * np.exp(-0.1 * np.maximum(phi, 0.0) - 0.5 * (1.0 - rp) ** 2), 1.0)
    return ((1.0 - albedo) * r_solar + AERMET_C1_W_M2_K6 * t**6 - STEFAN_BOLTZMANN_W_M2_K4 * t**4
            + AERMET_C2_W_M2 * n) / (1.0 + AERMET_C3)


def _critical_elevation(cloud_fraction, temperature_k, albedo_noon):
    """Solar elevation [deg] at which Rn = 0 (AERMET's ACRIT), by bisection."""
    lo = np.zeros(np.broadcast(cloud_fraction, temperature_k).shape)
    hi = np.full(lo.shape, 60.0)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        pos = net_radiation(mid, cloud_fraction, temperature_k, albedo_noon) > 0
        hi = np.where(pos, mid, hi)
        lo = np.where(pos, lo, mid)
    return 0.5 * (lo + hi)


def convective_scales(wind_speed_m_s, sensible_heat_flux_w_m2, temperature_k, roughness_length_m, *,
                      reference_height_m=REFERENCE_HEIGHT_M, iterations=30):
    """u* [m s-1] and L [m] of convective hours (H > 0) as AERMET computes them.

    .. math:: u_* = \\frac{k u}{\\ln(z_r/z_0) - \\psi_m(z_r/L) + \\psi_m(z_0/L)},\\qquad
              L = -\\frac{\\rho c_p T u_*^3}{k g H}

    iterated from the neutral u* (Cimorelli et al. 2004, eqs. 6-8; AERMET UCALCO).
    """
    u = np.asarray(wind_speed_m_s, dtype=float)
    hflux = np.asarray(sensible_heat_flux_w_m2, dtype=float)
    t = np.asarray(temperature_k, dtype=float)
    z0, zr = roughness_length_m, reference_height_m
    ustar = VON_KARMAN * u / np.log(zr / z0)
    for _ in range(iterations):
        L = -RHO_CP * t * ustar**3 / (VON_KARMAN * GRAVITY * hflux)
        ustar = VON_KARMAN * u / (np.log(zr / z0) - _psi_m_unstable(zr / L) + _psi_m_unstable(z0 / L))
    L = -RHO_CP * t * ustar**3 / (VON_KARMAN * GRAVITY * hflux)
    return ustar, L


def stable_scales(wind_speed_m_s, cloud_fraction, temperature_k, roughness_length_m, *,
                  solar_elevation_deg=None, critical_elevation_deg=None, reference_height_m=REFERENCE_HEIGHT_M):
    """u* [m s-1], theta* [K] and L [m] of stable hours by AERMET's default scheme.

    Venkatram (1980) / van Ulden & Holtslag (1985), as AERMET routine UCALST (non-ADJ_U*):

    .. math::
        \\theta_* = 0.09 (1 - 0.5 n^2),\\quad C_D = \\frac{k}{\\ln(z_r/z_0)},\\quad
        u_0^2 = \\frac{\\beta_m z_r g \\theta_*}{T},\\quad
        u_* = \\frac{C_D u}{2}\\left[1 + \\sqrt{1 - \\frac{4 u_0^2}{C_D u^2}}\\right]

    (Cimorelli et al. 2004, eqs. 19-24). When the root is complex, u* and theta* scale linearly
    with u below the critical speed u_cr = 2 u_0 / sqrt(C_D). theta* is reduced by
    1 - (phi/phi_cr)^2 at low positive solar elevation (Holtslag 1984, eq. A-11). The heat loss is
    capped at u* theta* = 0.05 m s-1 K (eq. 26): u* is then re-solved with theta* = 0.05/u*.
    L = T u*^2 / (k g theta*).
    """
    u = np.asarray(wind_speed_m_s, dtype=float)
    n = np.asarray(cloud_fraction, dtype=float)
    t = np.asarray(temperature_k, dtype=float)
    zr = reference_height_m
    cdn = VON_KARMAN / np.log(zr / roughness_length_m)
    theta = 0.09 * (1.0 - 0.5 * n**2) * np.ones_like(u)
    if solar_elevation_deg is not None:
        phi = np.asarray(solar_elevation_deg, dtype=float)
        low = (phi > 0) & (phi < critical_elevation_deg)
        theta = np.where(low, theta * (1.0 - (np.clip(phi, 0, None) / critical_elevation_deg) ** 2), theta)
    u0 = np.sqrt(AERMET_BETA_M * zr * GRAVITY * theta / t)
    chek = (2.0 * u0 / (np.sqrt(cdn) * u)) ** 2
    real = chek <= 1.0
    ucr = 2.0 * u0 / np.sqrt(cdn)
    ustar = np.where(real, cdn * u / 2.0 * (1.0 + np.sqrt(np.clip(1.0 - chek, 0.0, None))), cdn * ucr / 2.0 * u / ucr)
    theta = np.where(real, theta, theta * u / ucr)
    over = ustar * theta > MAX_USTAR_THETASTAR
    if over.any():
        # g(u*) = u* - C_D u/2 [1 + sqrt(1 - 4 beta zr g (0.05/u*)/(T C_D u^2))] = 0, bisection
        lo = np.where(over, ustar, 0.0)
        hi = np.where(over, cdn * u, 1.0)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            c = 1.0 - 4.0 * AERMET_BETA_M * zr * GRAVITY * (MAX_USTAR_THETASTAR / mid) / (t * cdn * u**2)
            g = mid - cdn * u / 2.0 * (1.0 + np.sqrt(np.clip(c, 0.0, None)))
            lo = np.where(g < 0, mid, lo)
            hi = np.where(g < 0, hi, mid)
        ustar = np.where(over, 0.5 * (lo + hi), ustar)
        theta = np.where(over, MAX_USTAR_THETASTAR / ustar, theta)
    L = t * ustar**2 / (VON_KARMAN * GRAVITY * theta)
    return ustar, theta, L


def _solar_elevation(latitude_deg, days, hours_ending):
    """Solar elevation [deg] at the centre of each (day, hour-ending) of local solar time."""
    decl = np.radians(23.45) * np.sin(np.radians(360.0 * (284 + np.asarray(days)) / 365.0))  # Cooper 1969
    ha = np.radians(15.0 * (np.asarray(hours_ending) - 0.5 - 12.0))
    phi = math.radians(latitude_deg)
    s = math.sin(phi) * np.sin(decl)[:, None] + math.cos(phi) * np.cos(decl)[:, None] * np.cos(ha)[None, :]
    return np.degrees(np.arcsin(np.clip(s, -1.0, 1.0)))


def _weibull_bins(mean_speed, edges, k=WEIBULL_SHAPE):
    """Probability and conditional-mean speed [m s-1] of each speed bin of a Weibull(k) wind."""
    lam = mean_speed / math.gamma(1.0 + 1.0 / k)
    cdf = lambda u: 1.0 - np.exp(-((np.asarray(u) / lam) ** k))  # noqa: E731
    probs, means = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        p = float(cdf(hi) - cdf(lo)) if math.isfinite(hi) else float(1.0 - cdf(lo))
        top = hi if math.isfinite(hi) else lo + 10.0 * lam
        u = np.linspace(lo, top, 401)
        pdf = (k / lam) * (u / lam) ** (k - 1) * np.exp(-((u / lam) ** k))
        m = float(np.trapezoid(pdf * u, u) / np.trapezoid(pdf, u)) if p > 0 else 0.5 * (lo + top)
        probs.append(p)
        means.append(m)
    return np.asarray(probs), np.asarray(means)


#: speed bins [m s-1] of the synthetic hours (finer than the classes, so that stability follows
#: wind speed within a class)
_SYNTH_SPEED_EDGES = (0.0, CALM_THRESHOLD_M_S) + tuple(np.round(np.arange(0.75, 12.01, 0.25), 2)) + (math.inf,)


def aermet_hours(region, season):
    """Synthetic hours of one region and season with AERMET's boundary-layer parameters.

    Every (day of the season, hour of the day, cloud category, wind-speed bin) is one hour with
    weight = P(cloud) P(speed) / (days x 24), so that a season's weights sum to 1. Day-time hours with Rn > 0 are convective: H = 0.9 Rn /
    (1 + 1/Bo) (Cimorelli et al. 2004 eq. 1; AERMET HEAT), u* and L by :func:`convective_scales`,
    the convective mixing height by Carson (1973) as modified by Weil & Brower (1983) (eq. 9)
    for a linear morning profile of gradient :data:`MORNING_THETA_GRADIENT_K_M`,

    .. math:: z_{ic} = \\sqrt{\\frac{2 (1 + 2A)}{\\gamma}\\int_{sunrise}^{t} \\frac{H}{\\rho c_p} dt}

    and w* = (g H z_ic / (rho c_p T))^(1/3) (eq. 10). Other hours are stable
    (:func:`stable_scales`). Every hour: z_im = 2300 u*^1.5 (Venkatram 1980; eq. 12), without
    AERMET's hour-to-hour smoothing. AERMET's limits (routine MPPBL): 1 <= |L| <= 8888 m,
    z_im <= 4000 m. Cloud cover and wind speed persist through a day and are
    independent of each other and of the hour (documented simplifications); temperature is the
    season mean.

    Returns ``(hours dict, weight array)`` in the field names of :data:`_CLASS_FIELDS`.
    """
    reg = CLIMATE_REGIONS[region] if isinstance(region, str) else region
    sc = surface_characteristics(reg.name, season)
    t = float(_region_season(reg.name, season)["temperature_k"])
    z0, bo, alb = sc["roughness_length_m"], sc["bowen_ratio"], sc["albedo"]
    days = (np.concatenate([np.arange(305, 366), np.arange(1, 91)]) if season == "heating"
            else np.arange(91, 305))  # Nov 1 = day 305 (non-leap year) ... Mar 31 = day 90
    hours_ending = np.arange(1, 25)
    elev = _solar_elevation(reg.latitude_deg, days, hours_ending)  # (days, 24)
    ov, cl = reg.overcast_fraction, reg.cloudy_fraction
    clouds = {"clear": (1 - ov) * (1 - cl), "cloudy": (1 - ov) * cl, "overcast": ov}
    p_speed, u_bin = _weibull_bins(reg.mean_wind_m_s, _SYNTH_SPEED_EDGES)
    out = {k: [] for k in _CLASS_FIELDS}
    weights = []
    nd = len(days)
    for cname, pc in clouds.items():
        n = CLOUD_FRACTION[cname]
        rn = net_radiation(elev, n, t, alb)
        acrit = float(_critical_elevation(np.array(n), np.array(t), alb))
        conv = rn > 0
        hflux = np.where(conv, 0.9 * rn / (1.0 + 1.0 / bo), 0.0)
        # accumulated heat since sunrise [K m]: sum of H/(rho cp) * 3600 s over the day's convective hours
        acc = np.cumsum(np.where(conv, hflux, 0.0), axis=1) * 3600.0 / RHO_CP
        zic = np.sqrt(2.0 * (1.0 + 2.0 * CARSON_ENTRAINMENT_A) * acc / MORNING_THETA_GRADIENT_K_M)
        for pu, u in zip(p_speed, u_bin):
            if pu <= 0:
                continue
            uu = np.full(elev.shape, u)
            us_c, l_c = convective_scales(uu[conv], hflux[conv], t, z0)
            us_s, _, l_s = stable_scales(uu[~conv], n, t, z0, solar_elevation_deg=elev[~conv],
                                         critical_elevation_deg=acrit)
            ustar = np.empty(elev.shape)
            L = np.empty(elev.shape)
            ustar[conv], L[conv] = us_c, l_c
            ustar[~conv], L[~conv] = us_s, l_s
            # AERMET MPPBL limits 1 m <= |L| <= 8888 m (sign kept; AERMOD METEXT applies the same
            # lower limit) and the mechanical mixing height to SBLMAX = 4000 m
            L = np.sign(L) * np.clip(np.abs(L), AERMET_MIN_ABS_L_M, AERMET_MAX_ABS_L_M)
            wstar = np.where(conv, np.cbrt(GRAVITY * hflux * zic / (RHO_CP * t)), np.nan)
            out["wind_speed_m_s"].append(uu.ravel())
            out["reference_height_m"].append(np.full(uu.size, REFERENCE_HEIGHT_M))
            out["friction_velocity_m_s"].append(ustar.ravel())
            out["convective_velocity_m_s"].append(wstar.ravel())
            out["monin_obukhov_length_m"].append(L.ravel())
            out["conv_mixing_height_m"].append(np.where(conv, zic, np.nan).ravel())
            out["mech_mixing_height_m"].append(np.minimum(2300.0 * ustar**1.5, AERMET_MAX_MIXING_HEIGHT_M).ravel())
            out["roughness_length_m"].append(np.full(uu.size, z0))
            out["temperature_k"].append(np.full(uu.size, t))
            out["temperature_height_m"].append(np.full(uu.size, 2.0))
            out["theta_gradient_k_m"].append(np.where(conv, MORNING_THETA_GRADIENT_K_M, np.nan).ravel())
            weights.append(np.full(uu.size, pc * pu / (nd * 24.0)))
    return {k: np.concatenate(v) for k, v in out.items()}, np.concatenate(weights)


def aermet_climatology(region):
    """The default climatology of a climate region built the AERMET way, two seasons.

    Synthetic hours of :func:`aermet_hours` for each season, classed by :func:`classify_hours`
    (calms: hours below :data:`CALM_THRESHOLD_M_S`), wind directions from the region's rose
    (independent of the other variables). Season frequencies are the seasons' day counts.
    Classes rarer than :data:`MIN_CLASS_FREQUENCY` within their season are dropped
    (:func:`_drop_rare_classes`).
    """
    reg = CLIMATE_REGIONS[region] if isinstance(region, str) else region
    hours, weights, seasons = [], [], []
    for s in SEASONS:
        h, w = aermet_hours(reg, s)
        hours.append(h)
        weights.append(w * SEASON_DAYS[s] / 365.0)
        seasons.append(np.full(w.size, s))
    merged = {k: np.concatenate([h[k] for h in hours]) for k in _CLASS_FIELDS}
    sectors = _sector_frequencies(reg.rose, SECTORS)
    clim = classify_hours(merged, season=np.concatenate(seasons), weight=np.concatenate(weights),
                          source=f"{AERMET_VERSION}, climate region '{reg.name}'",
                          sector_frequencies={s: sectors for s in SEASONS})
    return _drop_rare_classes(clim, MIN_CLASS_FREQUENCY)


def _drop_rare_classes(clim, min_frequency):
    """Drop classes rarer than ``min_frequency`` within their season and renormalise each season.

    As for the v1 climatology (step 8 of the module docstring): ~40 % of the AERMET-way classes
    (mostly strong winds from the rarest sectors) carry ~0.5 % of the hours; dropping them
    changes the 30 km test city's mean by < 0.5 % and halves the kernel cost.
    """
    c = clim.classes
    keep = c["frequency"] >= min_frequency
    classes = {k: v[keep] for k, v in c.items()}
    for s in clim.seasons:
        sel = classes["season"] == s
        if sel.any():
            classes["frequency"][sel] = classes["frequency"][sel] / classes["frequency"][sel].sum()
    return Climatology(classes=classes, season_frequency=clim.season_frequency,
                       calm_frequency=clim.calm_frequency, source=clim.source,
                       profile_heights_m=clim.profile_heights_m)


# =========================================================================== seasonal emissions
def seasonal_emission_shares(sector, region):
    """Share of a sector's annual emission emitted in each season ``{season: share}`` [1].

    .. math:: \\mathrm{share}_s = (1 - h)\\,\\frac{\\mathrm{days}_s}{365} + h\\,[s = \\mathrm{heating}]

    with h the sector's heat-driven share (engine/data/met/seasonal_emission_profiles.csv; 0 for
    a sector not listed, or where the row applies only to central-heating regions and the region
    has none). Shares sum to 1.
    """
    if region not in CLIMATE_REGIONS:
        raise ValueError(f"unknown climate region {region!r}; valid: {', '.join(CLIMATE_REGIONS)}")
    h = 0.0
    for row in _read_csv_table("seasonal_emission_profiles.csv"):
        if row["sector"] == sector:
            applies = row["applies_in"] == "all" or (
                row["applies_in"] == "central_heating"
                and _region_season(region, SEASONS[0])["central_heating"] == "1")
            h = float(row["heat_driven_share"]) if applies else 0.0
    flat = {s: SEASON_DAYS[s] / 365.0 for s in SEASONS}
    return {s: (1.0 - h) * flat[s] + (h if s == SEASONS[0] else 0.0) for s in SEASONS}


# =========================================================================== climatology files
def write_climatology(clim, path):
    """Write a :class:`Climatology` as CSV with ``#`` header lines (atomic: temp file + rename).

    Header lines: the format name, the source, ``season_frequency`` and ``calm_frequency``
    (``season=value`` pairs). Columns: season, stability_class, speed_class, sector,
    wind_from_deg, frequency and the boundary-layer fields (SI units in the names; empty = NaN).
    """
    import os

    path = Path(path)
    cols = ["season", "stability_class", "speed_class", "sector", "wind_from_deg", "frequency", *_CLASS_FIELDS]
    nl = len(clim.profile_heights_m)
    pcols = [f"{k}_{i + 1}" for k in ("profile_sigma_v_m_s", "profile_sigma_w_m_s") for i in range(nl)]
    lines = [f"# {CLIMATOLOGY_FORMAT}",
             f"# source: {clim.source}",
             "# season_frequency: " + ",".join(f"{s}={clim.season_frequency[s]:.10g}" for s in clim.seasons),
             "# calm_frequency: " + ",".join(f"{s}={clim.calm_frequency[s]:.10g}" for s in clim.seasons),
             "# frequency: share of the season's non-calm hours; calms follow the EPA calms policy "
             "(zero concentration, excluded from period means)"]
    if nl:
        lines.append("# profile_heights_m: " + ",".join(f"{z:g}" for z in clim.profile_heights_m)
                     + "  (profile_sigma_*_i: observed turbulence at level i; empty = not observed)")
    lines.append(",".join(cols + pcols))
    c = clim.classes
    for i in range(len(clim)):
        vals = []
        for k in cols:
            v = c[k][i]
            if isinstance(v, (str, np.str_)):
                vals.append(str(v))
            elif k in ("speed_class", "sector"):
                vals.append(str(int(v)))
            else:
                vals.append("" if not np.isfinite(v) else f"{float(v):.8g}")
        for k in ("profile_sigma_v_m_s", "profile_sigma_w_m_s")[: 2 if nl else 0]:
            vals += ["" if not np.isfinite(v) else f"{float(v):.8g}" for v in c[k][i]]
        lines.append(",".join(vals))
    from engine.output.persist import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")


def read_climatology(path):
    """Read a climatology file written by :func:`write_climatology` (or by hand, same layout).

    Raises :class:`InputError` naming the file, line and column of a bad value.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"climatology file {path}: cannot read ({exc.strerror})") from None
    header, body = {}, []
    for lineno, ln in enumerate(text.splitlines(), start=1):
        if ln.startswith("#"):
            if ":" in ln:
                k, v = ln[1:].split(":", 1)
                header[k.strip()] = v.strip()
            elif ln[1:].strip():
                header["format"] = ln[1:].strip()
        elif ln.strip():
            body.append((lineno, ln))
    if header.get("format") != CLIMATOLOGY_FORMAT:
        raise InputError(f"climatology file {path}: first line must be '# {CLIMATOLOGY_FORMAT}'")
    if not body:
        raise InputError(f"climatology file {path}: no column header and no classes")

    def pairs(key):
        if key not in header:
            raise InputError(f"climatology file {path}: header line '# {key}: season=value,...' is missing")
        out = {}
        for item in header[key].split(","):
            try:
                s, v = item.split("=")
                out[s.strip()] = float(v)
            except ValueError:
                raise InputError(f"climatology file {path}: header '{key}' item {item!r} is not season=number") from None
            if not 0.0 <= out[s.strip()] <= 1.0:
                raise InputError(f"climatology file {path}: header '{key}' {item!r} outside 0..1")
        return out

    season_frequency, calm_frequency = pairs("season_frequency"), pairs("calm_frequency")
    heights = ()
    if "profile_heights_m" in header:
        try:
            heights = tuple(float(v) for v in header["profile_heights_m"].split()[0].split(","))
        except (ValueError, IndexError):
            raise InputError(f"climatology file {path}: header 'profile_heights_m' must be comma-separated "
                             f"heights [m], got {header['profile_heights_m']!r}") from None
        if not all(0 < z < 9000 for z in heights):
            raise InputError(f"climatology file {path}: profile_heights_m must lie in 0..9000 m")
    cols = [c.strip() for c in body[0][1].split(",")]
    pcols = [f"{k}_{i + 1}" for k in ("profile_sigma_v_m_s", "profile_sigma_w_m_s") for i in range(len(heights))]
    need = ["season", "stability_class", "speed_class", "sector", "wind_from_deg", "frequency", *_CLASS_FIELDS,
            *pcols]
    missing = [c for c in need if c not in cols]
    if missing:
        raise InputError(f"climatology file {path}, line {body[0][0]}: missing column(s) {', '.join(missing)}")
    data = {k: [] for k in need}
    for lineno, ln in body[1:]:
        vals = [v.strip() for v in ln.split(",")]
        if len(vals) != len(cols):
            raise InputError(f"climatology file {path}, line {lineno}: {len(vals)} fields, expected {len(cols)}")
        row = dict(zip(cols, vals))
        if row["season"] not in season_frequency:
            raise InputError(f"climatology file {path}, line {lineno}, column 'season': {row['season']!r} is not in "
                             f"the header's season_frequency ({', '.join(season_frequency)})")
        if row["stability_class"] not in STABILITY_CLASSES:
            raise InputError(f"climatology file {path}, line {lineno}, column 'stability_class': "
                             f"{row['stability_class']!r}; expected one of {', '.join(STABILITY_CLASSES)}")
        data["season"].append(row["season"])
        data["stability_class"].append(row["stability_class"])
        for k in need[2:]:
            v = row[k]
            try:
                x = float(v) if v != "" else math.nan
            except ValueError:
                raise InputError(f"climatology file {path}, line {lineno}, column '{k}': {v!r} is not a number") from None
            if k in ("speed_class", "sector") and not (x == int(x) and x >= 1 if math.isfinite(x) else False):
                raise InputError(f"climatology file {path}, line {lineno}, column '{k}': {v!r}; expected an "
                                 "integer >= 1")
            if k == "wind_from_deg" and not (0.0 <= x <= 360.0):
                raise InputError(f"climatology file {path}, line {lineno}, column '{k}': {v!r}; expected 0..360 deg")
            data[k].append(x)
    classes = {k: np.asarray(v) for k, v in data.items() if k not in pcols}
    for k in ("speed_class", "sector"):
        classes[k] = classes[k].astype(int)
    if heights:
        for k in ("profile_sigma_v_m_s", "profile_sigma_w_m_s"):
            classes[k] = np.column_stack([np.asarray(data[f"{k}_{i + 1}"], float) for i in range(len(heights))]) \
                if data["season"] else np.zeros((0, len(heights)))
            bad = np.isfinite(classes[k]) & (classes[k] <= 0)
            if bad.any():
                i, j = (int(v[0]) for v in np.nonzero(bad))
                raise InputError(f"climatology file {path}, line {body[1 + i][0]}, column '{k}_{j + 1}': must be > 0 "
                                 "m/s or empty")
    f = classes["frequency"]
    if (~np.isfinite(f) | (f < 0)).any():
        i = int(np.flatnonzero(~np.isfinite(f) | (f < 0))[0])
        raise InputError(f"climatology file {path}, line {body[1 + i][0]}, column 'frequency': must be >= 0")
    for s in season_frequency:
        tot = f[classes["season"] == s].sum()
        if (classes["season"] == s).any() and abs(tot - 1.0) > 1e-4:
            raise InputError(f"climatology file {path}: frequencies of season {s!r} sum to {tot:.6g}, expected 1")
    clim = Climatology(classes=classes, season_frequency=season_frequency, calm_frequency=calm_frequency,
                       source=header.get("source", str(path)), profile_heights_m=heights)
    for s in clim.seasons:  # range checks of the boundary-layer fields (names the class row)
        try:
            clim.met(s)
        except InputError as exc:
            raise InputError(f"climatology file {path}: {exc}") from None
    return clim


# =========================================================================== seasonal superposition API
def load_seasonal_met(spec):
    """``{season: (MetHours, coefficient, digest)}`` of a climatology :class:`MetSpec`.

    ``coefficient`` is :meth:`Climatology.season_coefficients` (the calm correction c_s) and
    ``digest`` a content key for that season's transfer kernels. A seasonal run computes one
    source-receptor matrix S_s per season with ``MetHours`` and superposes

    .. math:: C = \\sum_s c_s\\, S_s\\, (\\mathrm{share}_s \\odot q)

    with q the annual-mean emission intensity of each source and share_s from
    :func:`seasonal_source_shares`. Hourly and STAR met have no seasons (``InputError``).
    """
    clim = load_climatology(spec)
    coef = clim.season_coefficients()
    return {s: (m, coef[s], hashlib.sha256(f"{spec.digest}|season={s}".encode()).hexdigest()[:20])
            for s, m in clim.seasonal_met().items()}


def seasonal_source_shares(pm25_by_sector, regions):
    """Share of each source's annual PM2.5 emission emitted in each season.

    Parameters
    ----------
    pm25_by_sector : dict sector -> array (n_source,) [any mass unit yr-1]
        Annual emission of every source by sector (sector names as the carbon stage's, e.g.
        ``power``, ``heating_des``, ``heating_individual``, ``steel``).
    regions : sequence of str (n_source,)
        Climate region of each source (:func:`climate_region_of`).

    Returns
    -------
    dict season -> ndarray (n_source,) [1]
        :math:`\\sum_k e_k \\mathrm{share}_{k,s} / \\sum_k e_k` over sectors k
        (:func:`seasonal_emission_shares`); a source with no emission gets the flat shares.
        The shares of a source sum to 1 over the seasons.
    """
    regions = np.asarray(regions).astype(str)
    n = regions.shape[0]
    total = np.zeros(n)
    acc = {s: np.zeros(n) for s in SEASONS}
    cache = {}
    for sector, e in pm25_by_sector.items():
        e = np.broadcast_to(np.asarray(e, dtype=float), (n,))
        if (~np.isfinite(e) | (e < 0)).any():
            raise ValueError(f"pm25_by_sector[{sector!r}]: emissions must be finite and >= 0")
        total += e
        for r in np.unique(regions):
            if (sector, r) not in cache:
                cache[(sector, r)] = seasonal_emission_shares(sector, r)
            sel = regions == r
            for s in SEASONS:
                acc[s][sel] += e[sel] * cache[(sector, r)][s]
    flat = {s: SEASON_DAYS[s] / 365.0 for s in SEASONS}
    return {s: np.where(total > 0, acc[s] / np.where(total > 0, total, 1.0), flat[s]) for s in SEASONS}

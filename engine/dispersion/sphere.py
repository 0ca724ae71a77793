"""The spherical Earth of the engine: the azimuthal-equidistant projection of each city's frame
(Snyder 1987, USGS PP 1395, eqs. 22-4, 25-2, 25-3), great-circle distances and cap radii.

Glossary (units): ``lat``/``lon`` [degrees north/east]; ``x``/``y`` AEQD easting/northing [m];
``area_km2`` [km2].
"""

from __future__ import annotations

import math

import numpy as np

from kernels.constants import EARTH_RADIUS_M

__all__ = ["EARTH_RADIUS_M", "aeqd_forward", "aeqd_inverse", "great_circle_distance_m", "cap_radius_m"]


def aeqd_forward(lat, lon, lat0, lon0):
    """Spherical azimuthal equidistant projection about (lat0, lon0) (Snyder 1987 eq. 25-2).

    .. math:: \\cos c = \\sin\\phi_1\\sin\\phi + \\cos\\phi_1\\cos\\phi\\cos(\\lambda-\\lambda_0),\\;
              k' = c/\\sin c,\\; x = R k'\\cos\\phi\\sin(\\lambda-\\lambda_0),\\;
              y = R k'(\\cos\\phi_1\\sin\\phi - \\sin\\phi_1\\cos\\phi\\cos(\\lambda-\\lambda_0))

    Parameters
    ----------
    lat, lon : array_like [degrees]
    lat0, lon0 : float [degrees]  projection centre

    Returns
    -------
    x, y : ndarray [m]
    """
    phi = np.radians(np.asarray(lat, dtype=float))
    lam = np.radians(np.asarray(lon, dtype=float))
    phi1, lam0 = math.radians(lat0), math.radians(lon0)
    dl = lam - lam0
    cosc = np.clip(math.sin(phi1) * np.sin(phi) + math.cos(phi1) * np.cos(phi) * np.cos(dl), -1.0, 1.0)
    c = np.arccos(cosc)
    sinc = np.sin(c)
    # k' = c / sin c -> 1 as c -> 0 (guarded division)
    kp = np.where(c > 1e-12, c / np.where(sinc == 0.0, 1.0, sinc), 1.0)
    x = EARTH_RADIUS_M * kp * np.cos(phi) * np.sin(dl)
    y = EARTH_RADIUS_M * kp * (math.cos(phi1) * np.sin(phi) - math.sin(phi1) * np.cos(phi) * np.cos(dl))
    return x, y


def aeqd_inverse(x, y, lat0, lon0):
    """Inverse of :func:`aeqd_forward` (Snyder 1987 eqs. 20-14, 22-4, 25-15).

    Returns
    -------
    lat, lon : ndarray [degrees]
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    phi1, lam0 = math.radians(lat0), math.radians(lon0)
    rho = np.hypot(x, y)
    c = rho / EARTH_RADIUS_M
    sinc, cosc = np.sin(c), np.cos(c)
    safe_rho = np.where(rho == 0.0, 1.0, rho)
    phi = np.arcsin(np.clip(cosc * math.sin(phi1) + y * sinc * math.cos(phi1) / safe_rho, -1.0, 1.0))
    lam = lam0 + np.arctan2(x * sinc, rho * math.cos(phi1) * cosc - y * math.sin(phi1) * sinc)
    phi = np.where(rho == 0.0, phi1, phi)
    lam = np.where(rho == 0.0, lam0, lam)
    lon = (np.degrees(lam) + 180.0) % 360.0 - 180.0
    return np.degrees(phi), lon


def great_circle_distance_m(lat1, lon1, lat2, lon2):
    """Haversine great-circle distance [m] on the sphere of radius :data:`EARTH_RADIUS_M`."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2, dtype=float) - np.asarray(lon1, dtype=float))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def cap_radius_m(area_km2):
    """Great-circle radius [m] of the spherical cap of area ``area_km2``.

    .. math:: A = 2\\pi R^2 (1 - \\cos\\theta) \\Rightarrow r = R\\,\\arccos(1 - A/(2\\pi R^2))

    Written with the identity ``1 - cos t = 2 sin^2(t/2)`` to keep precision for small caps:
    ``r = 2 R asin(sqrt(A / (4 pi R^2)))``.
    """
    area = float(area_km2) * 1e6
    if not area >= 0.0:
        raise ValueError(f"area_km2 must be >= 0, got {area_km2}")
    s = math.sqrt(min(area / (4.0 * math.pi * EARTH_RADIUS_M**2), 1.0))
    return 2.0 * EARTH_RADIUS_M * math.asin(s)

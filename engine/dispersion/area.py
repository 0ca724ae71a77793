"""AERMOD-compatible area-source concentrations: validated wrappers around :mod:`kernels.plume`.

Two evaluation paths share ONE cell-integrated transfer function
(:func:`kernels.plume.cell_concentration`):

* ``direct``: every (receptor, cell, hour); ``prange`` over receptors, float64 accumulation;
* ``gridded``: when cells are equal, axis-aligned and on a regular grid, and receptors lie on
  an aligned lattice (the cell size an integer multiple -- the *stride* -- of the receptor
  spacing), the transfer function is tabulated once per hour over receptor-cell offsets and
  convolved with the emission grid, the sum taken at the lattice receptors only
  (:func:`kernels.plume.gather_offsets`; for very large grids the whole field through
  :mod:`kernels.convolve`). Under spatially uniform met over
  flat terrain the transfer function depends only on the offset, so this is exact up to
  round-off. Receptors off the lattice are computed by the direct path.

``method="auto"`` picks ``gridded`` when it applies, for the lattice receptors whose offsets
cost less than computing them directly (distant discrete receptors go direct).

Polygon sources (:class:`PolygonSources`: AERMOD AREAPOLY, AREACIRC as its equal-area polygon,
rotated AREA) go through :func:`polygon_concentrations` (direct path,
:func:`kernels.plume.polygon_concentration`). Receptor heights above ground (flagpoles,
``receptor_z_m``) and AERMOD's urban boundary layer (``urban_population``) select their own
per-hour tables.

Lateral (crosswind) CDF, keyword ``lateral_cdf`` (see :mod:`kernels.plume`):

* ``"exact"`` (default; the national run uses it): the exact normal CDF;
* ``"aermod_table"``: EPA AERMOD's 4-decimal table of the normal CDF at 0.1 sigma-y steps,
  0 / 1 beyond +-3.9 sigma-y. ``cobenefits aermod`` uses it, so that the AERMOD mode
  reproduces AERMOD's hourly values in the far-lateral tail too (below 1e-5 of the hourly
  peak, where the table decides the value; irrelevant for period means).

Units: emission rate g m-2 s-1, coordinates m, concentrations ug m-3.
"""

from dataclasses import dataclass
from typing import Literal

import numpy as np

from engine.errors import InputError
from engine.dispersion.met import MetHours
from engine.dispersion.symmetry import _distinct_rows, square_kernel
from kernels import plume
from kernels import areain
from kernels.edges import XMAXR_MIN
from kernels.hour_setup import hour_wind_from, table_points_for
from kernels.profiles import H_VALID

__all__ = ["AreaSources", "PolygonSources", "LATERAL_CDF", "area_concentrations", "polygon_concentrations",
           "polygon_area_centroid", "regular_polygon_vertices", "rectangle_vertices", "period_average", "period_kernel",
           "convolve", "hour_tables", "MAX_RELEASE_HEIGHT_M"]

#: highest release height [m]: the top of AERMOD's gridded profiles (``kernels.plume.GRID_HEIGHTS``,
#: 5000 m). AERMOD itself accepts any height and warns above 100 m (soset.f APARM, W320);
#: the AERMOD mode echoes that warning.
MAX_RELEASE_HEIGHT_M = float(plume.GRID_HEIGHTS[-1])

#: lateral CDF choices -> kernel flag
LATERAL_CDF = {"exact": plume.LATERAL_CDF_EXACT, "aermod_table": plume.LATERAL_CDF_AERMOD_TABLE}


def _lateral_flag(lateral_cdf):
    try:
        return LATERAL_CDF[lateral_cdf]
    except (KeyError, TypeError):
        raise InputError(f"lateral_cdf must be one of {sorted(LATERAL_CDF)}, got {lateral_cdf!r}") from None


def _vec(name, v, n=None):
    a = np.atleast_1d(np.asarray(v, dtype=np.float64))
    if n is not None and a.shape == (1,) and n != 1:
        a = np.full(n, a[0])
    if a.ndim != 1 or (n is not None and a.shape[0] != n):
        raise InputError(f"AreaSources: {name} must be a 1-D array of length {n}, got shape {a.shape}")
    return a


@dataclass(frozen=True, eq=False)
class AreaSources:
    """Rectangular AREA sources (AERMOD ``LOCATION ... AREA`` + ``SRCPARAM``).

    Parameters
    ----------
    x_sw_m, y_sw_m : array [m]
        South-west corner (the vertex the rotation is about).
    x_len_m, y_len_m : array [m]
        Side lengths (AERMOD Xinit, Yinit), > 0.
    angle_deg : array [deg]
        Rotation clockwise from north about the SW corner (AERMOD ``Angle``), -180..180.
    rate_g_m2_s : array [g m-2 s-1]
        Emission rate per unit area, finite and >= 0.
    release_height_m : array [m]
        Release height above ground, 0..``MAX_RELEASE_HEIGHT_M`` (any height AERMOD accepts
        below the top of its gridded profiles; AERMOD warns, W320, above 100 m).
    initial_sigma_z_m : array [m]
        Initial vertical dimension (AERMOD Szinit), >= 0.
    """

    x_sw_m: np.ndarray
    y_sw_m: np.ndarray
    x_len_m: np.ndarray
    y_len_m: np.ndarray
    angle_deg: np.ndarray
    rate_g_m2_s: np.ndarray
    release_height_m: np.ndarray
    initial_sigma_z_m: np.ndarray

    def __init__(self, x_sw_m, y_sw_m, x_len_m, y_len_m, angle_deg=0.0, rate_g_m2_s=1.0,
                 release_height_m=0.0, initial_sigma_z_m=0.0):
        x = _vec("x_sw_m", x_sw_m)
        n = x.shape[0]
        vals = dict(x_sw_m=x, y_sw_m=_vec("y_sw_m", y_sw_m, n), x_len_m=_vec("x_len_m", x_len_m, n),
                    y_len_m=_vec("y_len_m", y_len_m, n), angle_deg=_vec("angle_deg", angle_deg, n),
                    rate_g_m2_s=_vec("rate_g_m2_s", rate_g_m2_s, n),
                    release_height_m=_vec("release_height_m", release_height_m, n),
                    initial_sigma_z_m=_vec("initial_sigma_z_m", initial_sigma_z_m, n))
        rules = [
            ("x_sw_m", lambda a: np.isfinite(a), "finite"),
            ("y_sw_m", lambda a: np.isfinite(a), "finite"),
            ("x_len_m", lambda a: np.isfinite(a) & (a > 0), "> 0 m"),
            ("y_len_m", lambda a: np.isfinite(a) & (a > 0), "> 0 m"),
            ("angle_deg", lambda a: np.isfinite(a) & (a >= -180) & (a <= 180), "-180..180 degrees"),
            ("rate_g_m2_s", lambda a: np.isfinite(a) & (a >= 0), "finite and >= 0 g m-2 s-1"),
            ("release_height_m", lambda a: np.isfinite(a) & (a >= 0) & (a <= MAX_RELEASE_HEIGHT_M),
             f"0..{MAX_RELEASE_HEIGHT_M:g} m"),
            ("initial_sigma_z_m", lambda a: np.isfinite(a) & (a >= 0), "finite and >= 0 m"),
        ]
        for name, test, rng in rules:
            a = vals[name]
            bad = ~test(a)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputError(f"AreaSources: {name}[{i}] = {a[i]!r}; allowed range {rng}")
        for k, v in vals.items():
            object.__setattr__(self, k, v)

    def __len__(self):
        return int(self.x_sw_m.shape[0])

    def geometry(self):
        """Centres (cx, cy), first-side unit vector (e1x, e1y) and half lengths (hx, hy)."""
        th = np.deg2rad(self.angle_deg)
        # clockwise rotation by theta: x-side along (cos, -sin), y-side along (sin, cos)
        e1x, e1y = np.cos(th), -np.sin(th)
        e2x, e2y = np.sin(th), np.cos(th)
        hx, hy = 0.5 * self.x_len_m, 0.5 * self.y_len_m
        cx = self.x_sw_m + hx * e1x + hy * e2x
        cy = self.y_sw_m + hx * e1y + hy * e2y
        return cx, cy, e1x, e1y, hx, hy


def polygon_area_centroid(x, y):
    """Signed area [m2] and area centroid [m] of a closed polygon (shoelace formula, the
    centroid AERMOD's SOSET computes for AREAPOLY, AXCNTR/AYCNTR)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    x0, y0 = x.mean(), y.mean()  # centred for round-off
    xs, ys = x - x0, y - y0
    xn, yn = np.roll(xs, -1), np.roll(ys, -1)
    cross = xs * yn - xn * ys
    area = 0.5 * cross.sum()
    if area == 0.0:
        return 0.0, x0, y0
    cx = ((xs + xn) * cross).sum() / (6.0 * area)
    cy = ((ys + yn) * cross).sum() / (6.0 * area)
    return area, cx + x0, cy + y0


def regular_polygon_vertices(x_centre_m, y_centre_m, radius_m, n_vertices):
    """AERMOD AREACIRC as AERMOD builds it (``GENCIR``): the regular ``n``-gon of the circle's
    area, first vertex due north of the centre, then clockwise in steps of 360/n degrees.

    Its circumradius is R' = R sqrt(2 pi / (n sin(2 pi / n))) (equal area: n R'^2 sin(2pi/n)/2
    = pi R^2). Returns (x, y) arrays [m].
    """
    n = int(n_vertices)
    rp = radius_m * np.sqrt(2.0 * np.pi / (n * np.sin(2.0 * np.pi / n)))
    ang = np.deg2rad(np.arange(n) * 360.0 / n)  # clockwise from north
    return x_centre_m + rp * np.sin(ang), y_centre_m + rp * np.cos(ang)


def rectangle_vertices(x_sw_m, y_sw_m, x_len_m, y_len_m, angle_deg=0.0):
    """The four vertices of an AERMOD ``AREA`` source [m]: the LOCATION corner, then along the
    Xinit side, the far corner and along the Yinit side; rotated clockwise by ``angle_deg``
    about the LOCATION corner (AERMOD APARM)."""
    th = np.deg2rad(angle_deg)
    e1 = np.array([np.cos(th), -np.sin(th)])
    e2 = np.array([np.sin(th), np.cos(th)])
    p0 = np.array([x_sw_m, y_sw_m], dtype=np.float64)
    pts = [p0, p0 + x_len_m * e1, p0 + x_len_m * e1 + y_len_m * e2, p0 + y_len_m * e2]
    return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])


@dataclass(frozen=True, eq=False)
class PolygonSources:
    """Polygon area sources (AERMOD ``AREAPOLY``; ``AREACIRC`` and ``AREA`` through
    :func:`regular_polygon_vertices` and :func:`rectangle_vertices`).

    Parameters
    ----------
    vertices : sequence of (x, y) array pairs [m]
        Each source's vertices in order (either orientation, not repeated at the end), >= 3,
        a simple polygon (it may be non-convex).
    rate_g_m2_s, release_height_m, initial_sigma_z_m : array
        As :class:`AreaSources`.
    """

    vertex_x_m: np.ndarray  #: all vertices, source after source
    vertex_y_m: np.ndarray
    vertex_start: np.ndarray  #: source i: vertex_x_m[vertex_start[i]:vertex_start[i + 1]]
    centroid_x_m: np.ndarray
    centroid_y_m: np.ndarray
    area_m2: np.ndarray
    rate_g_m2_s: np.ndarray
    release_height_m: np.ndarray
    initial_sigma_z_m: np.ndarray

    def __init__(self, vertices, rate_g_m2_s=1.0, release_height_m=0.0, initial_sigma_z_m=0.0):
        vx, vy, start, cx, cy, area = [], [], [0], [], [], []
        for i, (x, y) in enumerate(vertices):
            x = np.asarray(x, dtype=np.float64).ravel()
            y = np.asarray(y, dtype=np.float64).ravel()
            if x.shape != y.shape or x.size < 3:
                raise InputError(f"PolygonSources: source {i} needs >= 3 vertices with x and y "
                                 f"of equal length, got {x.size} and {y.size}")
            if not (np.isfinite(x).all() and np.isfinite(y).all()):
                raise InputError(f"PolygonSources: source {i} has a non-finite vertex")
            a, gx, gy = polygon_area_centroid(x, y)
            ext = max(np.ptp(x), np.ptp(y), 1e-30)
            if abs(a) <= 1e-10 * ext * ext:
                raise InputError(f"PolygonSources: source {i} has zero area (collinear or repeated "
                                 "vertices; AERMOD error E266)")
            vx.append(x)
            vy.append(y)
            start.append(start[-1] + x.size)
            cx.append(gx)
            cy.append(gy)
            area.append(abs(a))
        n = len(cx)
        vals = dict(rate_g_m2_s=_vec("rate_g_m2_s", rate_g_m2_s, n),
                    release_height_m=_vec("release_height_m", release_height_m, n),
                    initial_sigma_z_m=_vec("initial_sigma_z_m", initial_sigma_z_m, n))
        rules = [("rate_g_m2_s", lambda a: np.isfinite(a) & (a >= 0), "finite and >= 0 g m-2 s-1"),
                 ("release_height_m", lambda a: np.isfinite(a) & (a >= 0) & (a <= MAX_RELEASE_HEIGHT_M),
             f"0..{MAX_RELEASE_HEIGHT_M:g} m"),
                 ("initial_sigma_z_m", lambda a: np.isfinite(a) & (a >= 0), "finite and >= 0 m")]
        for name, test, rng in rules:
            bad = ~test(vals[name])
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputError(f"PolygonSources: {name}[{i}] = {vals[name][i]!r}; allowed range {rng}")
        object.__setattr__(self, "vertex_x_m", np.concatenate(vx) if vx else np.zeros(0))
        object.__setattr__(self, "vertex_y_m", np.concatenate(vy) if vy else np.zeros(0))
        object.__setattr__(self, "vertex_start", np.asarray(start, dtype=np.int64))
        object.__setattr__(self, "centroid_x_m", np.asarray(cx, dtype=np.float64))
        object.__setattr__(self, "centroid_y_m", np.asarray(cy, dtype=np.float64))
        object.__setattr__(self, "area_m2", np.asarray(area, dtype=np.float64))
        for k, v in vals.items():
            object.__setattr__(self, k, v)

    def __len__(self):
        return int(self.centroid_x_m.shape[0])


def polygon_concentrations(sources: PolygonSources, receptor_x_m, receptor_y_m, met: MetHours, *,
                           lateral_cdf: Literal["exact", "aermod_table"] = "aermod_table",
                           receptor_z_m=None, urban_population=0.0, urban_roughness_m=1.0):
    """Hourly concentrations [ug m-3] from polygon sources (direct path), AERMOD v24142 physics.

    Same conventions as :func:`area_concentrations` (calm and missing hours 0; receptor
    heights above ground in ``receptor_z_m``; urban sources as there); the integral follows AERMOD's AREAIN for
    AREAPOLY sources (:func:`kernels.plume.polygon_concentration`).

    Returns
    -------
    ndarray (n_hours, n_receptors) [ug m-3]
    """
    if not isinstance(sources, PolygonSources):
        raise InputError(f"sources must be an engine.dispersion.area.PolygonSources, got {type(sources).__name__}")
    if not isinstance(met, MetHours):
        raise InputError(f"met must be an engine.dispersion.met.MetHours, got {type(met).__name__}")
    flag = _lateral_flag(lateral_cdf)
    rx, ry = _receptors(receptor_x_m, receptor_y_m)
    rz = _receptor_heights(receptor_z_m, rx.shape[0])
    out = np.zeros((len(met), rx.shape[0]))
    if len(sources) == 0 or rx.shape[0] == 0:
        return out
    urban = _urban(urban_population, urban_roughness_m)
    uniq, grp = _groups(sources)
    for z in np.unique(rz):
        sel = np.flatnonzero(rz == z)
        xb = _distance_bound(rx[sel], ry[sel], sources.vertex_x_m, sources.vertex_y_m)
        lng, lnsy, wd = _stacked_tables(met, uniq, float(z), urban, xb,
                                        (rx[sel], ry[sel], sources.vertex_x_m, sources.vertex_y_m))
        part = np.zeros((len(met), sel.size))
        args = (rx[sel], ry[sel], sources.vertex_x_m, sources.vertex_y_m, sources.vertex_start,
                sources.centroid_x_m, sources.centroid_y_m, sources.rate_g_m2_s, grp, lng, lnsy, wd, part)
        if flag == plume.LATERAL_CDF_AERMOD_TABLE:  # AERMOD's own side-by-side quadrature
            areain.direct_hourly_polygons_aermod(*args)
        else:
            plume.direct_hourly_polygons(*args, flag)
        out[:, sel] = part
    return out


# ----------------------------------------------------------------------------------------
# per-hour tables (cached)
# ----------------------------------------------------------------------------------------
_TABLE_CACHE = {}


#: x-table points are computed in blocks of this many (a tenth of a decade), so that calls
#: with nearly equal distance bounds share one cached table
_TABLE_BLOCK = 16


def hour_tables(met: MetHours, release_height_m=0.0, initial_sigma_z_m=0.0, receptor_height_m=0.0,
                urban_population=0.0, urban_roughness_m=1.0, x_max_m=None, hour_mask=None):
    """Per-hour ``(ln g, ln sigma_y, wind_from_at_release)`` tables for the kernels (cached).

    ``receptor_height_m`` is the receptor's height above ground (AERMOD flagpole) [m];
    ``urban_population`` > 0 selects AERMOD's urban boundary layer (URBANOPT population,
    urban roughness ``urban_roughness_m`` [m]) for stable and morning-transition hours.
    ``x_max_m`` [m]: the largest upwind distance the caller will look up (a bound on every
    receptor-source distance, :func:`_distance_bound`); the table points beyond it are not
    computed (NaN, :func:`kernels.hour_setup.build_hour_tables`), the others are identical.
    Default: the whole table (to ``kernels.xtable.X_MAX``). ``hour_mask`` (bool, one per
    hour): only these hours are computed, the others are returned as calm hours (wind
    direction NaN, so the kernels give 0 there): for hours in which no source point is
    upwind of any receptor (:func:`_hours_needed`), where AERMOD's result is 0 too.
    """
    if not isinstance(met, MetHours):
        raise InputError(f"met must be an engine.dispersion.met.MetHours, got {type(met).__name__}")
    key = (met.digest(), float(release_height_m), float(initial_sigma_z_m), float(receptor_height_m),
           float(urban_population), float(urban_roughness_m))
    n_x = plume.NX
    if x_max_m is not None:
        n_x = min(plume.NX, -(-table_points_for(float(x_max_m)) // _TABLE_BLOCK) * _TABLE_BLOCK)
    if hour_mask is not None:
        hour_mask = np.asarray(hour_mask, dtype=bool)
    hit = _TABLE_CACHE.get(key)
    if (hit is not None and hit[3] >= n_x
            and (hit[4] is None or (hour_mask is not None and not (hour_mask & ~hit[4]).any()))):
        return hit[:3]
    hours, prof = met.kernel_arrays()
    if hour_mask is not None:
        hours = hours.copy()
        hours[~hour_mask, H_VALID] = 0.0
    lng, lnsy, wd = _distinct_tables(hours, prof, (float(release_height_m), float(initial_sigma_z_m),
                                                   float(receptor_height_m), float(urban_population),
                                                   float(urban_roughness_m)), int(n_x))
    if len(_TABLE_CACHE) > 32:
        _TABLE_CACHE.clear()
    _TABLE_CACHE[key] = (lng, lnsy, wd, n_x, hour_mask)
    return lng, lnsy, wd


def _distinct_tables(hours, prof, args, n_x):
    """:func:`kernels.plume.build_hour_tables` computed once per distinct hour.

    The ln g and ln sigma-y tables of an hour do not depend on its wind direction (the
    direction only turns the plume: ``kernels.hour_setup._hour_setup`` reads it for the
    direction at the release height alone), so hours equal in every other column and profile
    share their tables. A class climatology repeats each class in every direction sector (the
    default met: 373 hours, 25 distinct); the tables of the distinct hours are built, copied to
    their hours, and every hour's direction is taken from :func:`kernels.hour_setup.hour_wind_from`
    (the same functions, so the result is bit for bit the one of building every hour).
    """
    from kernels.profiles import H_WD

    n = hours.shape[0]
    cols = [np.delete(hours, H_WD, axis=1)] + [p for i, p in enumerate(prof) if i != 2]  # prof[2]: direction
    key = np.ascontiguousarray(np.concatenate(cols, axis=1))
    if n > 1:
        # NaN-safe equality of rows: compare the bytes (NaN padding of the profiles included)
        first, inverse = _distinct_rows(key)
    else:
        first, inverse = np.arange(n), np.arange(n)
    uh = np.ascontiguousarray(hours[first])
    uprof = tuple(np.ascontiguousarray(p[first]) for p in prof)
    m = uh.shape[0]
    lng_u = np.empty((m, plume.NX))
    lnsy_u = np.empty((m, plume.NX + 2))
    wd_u = np.empty(m)
    plume.build_hour_tables(uh, *uprof, *args, lng_u, lnsy_u, wd_u, n_x)
    if m == n and (first == np.arange(n)).all():
        return lng_u, lnsy_u, wd_u
    wd = np.empty(n)
    hour_wind_from(hours, prof[0], prof[2], args[0], wd)
    return lng_u[inverse], lnsy_u[inverse], wd


_WIND_CACHE = {}
#: receptor sets up to this size (flagpole heights) get tables for the hours they need only
FEW_RECEPTORS = 64


def _hours_needed(met, release_height_m, rx, ry, sx, sy):
    """Hours in which some source point (convex hull of sx, sy) is at least half of AERMOD's
    XMAXR_MIN (1 m) upwind of some receptor (rx, ry), as a bool mask; None (every hour) for
    more than FEW_RECEPTORS receptors. In the other hours every receptor-source pair has
    XMAXR < 1 m, where AERMOD (calc1.f ACALC) and the kernels give 0."""
    if rx.size == 0 or rx.size > FEW_RECEPTORS or sx.size == 0:
        return None
    key = (met.digest(), float(release_height_m))
    wd = _WIND_CACHE.get(key)
    if wd is None:
        hours, prof = met.kernel_arrays()
        wd = np.empty(hours.shape[0])
        hour_wind_from(hours, prof[0], prof[2], float(release_height_m), wd)
        if len(_WIND_CACHE) > 32:
            _WIND_CACHE.clear()
        _WIND_CACHE[key] = wd
    ok = np.isfinite(wd)
    th = np.radians(np.where(ok, wd, 0.0))
    sw, cw = np.sin(th)[:, None], np.cos(th)[:, None]
    u_src = (sw * sx[None, :] + cw * sy[None, :]).max(axis=1)
    u_rec = (sw * rx[None, :] + cw * ry[None, :]).min(axis=1)
    return ok & (u_src - u_rec >= 0.5 * XMAXR_MIN)


def _distance_bound(rx, ry, sx, sy):
    """Largest distance [m] between any receptor (rx, ry) and any source point whose convex
    hull holds the sources (sx, sy: vertices or corners): the diagonal of their common
    bounding box. Every upwind distance the kernels look up (quadrature points, plume-edge
    crossings, AERMOD's XMAXR, the offsets of a gridded kernel) is at most this."""
    if rx.size == 0 or sx.size == 0:
        return 0.0
    w = max(rx.max(), sx.max()) - min(rx.min(), sx.min())
    h = max(ry.max(), sy.max()) - min(ry.min(), sy.min())
    return float(np.hypot(w, h))


def _corners(sources):
    """x and y of the four corners of every AreaSources rectangle."""
    cx, cy, e1x, e1y, hx, hy = sources.geometry()
    # e2 = (-e1y, e1x): corners at c +- hx e1 +- hy e2
    xs = [cx + a * hx * e1x - b * hy * e1y for a in (-1, 1) for b in (-1, 1)]
    ys = [cy + a * hx * e1y + b * hy * e1x for a in (-1, 1) for b in (-1, 1)]
    return np.concatenate(xs), np.concatenate(ys)


def _groups(sources):
    keys = np.stack([sources.release_height_m, sources.initial_sigma_z_m], axis=1)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    return uniq, inv.astype(np.int64).ravel()


def _stacked_tables(met, uniq, zr=0.0, urban=(0.0, 1.0), x_max_m=None, points=None):
    """Tables of every (release height, sigma-z) group, stacked; ``points``: (rx, ry, sx, sy),
    receptors and source vertices, to compute only the hours a few receptors need."""
    t = [hour_tables(met, hs, sz, zr, *urban, x_max_m=x_max_m,
                     hour_mask=None if points is None else _hours_needed(met, hs, *points))
         for hs, sz in uniq]
    return (np.stack([a[0] for a in t]), np.stack([a[1] for a in t]), np.stack([a[2] for a in t]))


# ----------------------------------------------------------------------------------------
# lattice detection for the gridded path
# ----------------------------------------------------------------------------------------
def _integer_like(a, tol=1e-6):
    return np.abs(a - np.round(a)) <= tol


def _grid_layout(sources, rx, ry, max_stride=16, max_points=4_000_000, economical=True):
    """Return the gridded layout or None: (cell_x, cell_y, origin, stride, src idx, rec idx, mask).

    ``economical`` (method "auto"): lattice receptors are put through the kernel only where
    that costs fewer cell integrations than the direct path; otherwise every lattice
    receptor is (method "gridded").
    """
    if len(sources) == 0:
        return None
    if not (np.all(sources.angle_deg == 0.0)
            and np.ptp(sources.x_len_m) == 0 and np.ptp(sources.y_len_m) == 0
            and np.ptp(sources.release_height_m) == 0 and np.ptp(sources.initial_sigma_z_m) == 0):
        return None
    cwx, cwy = float(sources.x_len_m[0]), float(sources.y_len_m[0])
    cx = sources.x_sw_m + 0.5 * cwx
    cy = sources.y_sw_m + 0.5 * cwy
    x0, y0 = float(cx.min()), float(cy.min())
    mi = (cx - x0) / cwx
    mj = (cy - y0) / cwy
    if not (_integer_like(mi).all() and _integer_like(mj).all()):
        return None
    best = None
    for s in range(1, max_stride + 1):
        dx, dy = cwx / s, cwy / s
        on = _integer_like((rx - x0) / dx) & _integer_like((ry - y0) / dy)
        if best is None or on.sum() > best[1].sum():
            best = (s, on)
        if on.all():
            break
    s, on = best
    if on.sum() == 0:
        return None
    dx, dy = cwx / s, cwy / s
    ri = np.round((rx - x0) / dx).astype(np.int64)
    rj = np.round((ry - y0) / dy).astype(np.int64)
    si = np.round(mi).astype(np.int64) * s
    sj = np.round(mj).astype(np.int64) * s
    # Cost model in cell integrations: the kernel costs one per offset, a receptor left to the
    # direct path one per source. Lattice receptors far from the sources (e.g. a few distant
    # discrete receptors) would enlarge the kernel for every hour; keep the cheapest prefix of
    # the receptors ordered by the kernel half-width they need, the rest go direct.
    idx = np.flatnonzero(on)
    if not economical:
        idx = idx[:0]
    ex = np.maximum(np.abs(ri[idx] - si.min()), np.abs(ri[idx] - si.max()))
    ey = np.maximum(np.abs(rj[idx] - sj.min()), np.abs(rj[idx] - sj.max()))
    order = np.argsort(np.maximum(ex, ey), kind="stable")
    mx = np.maximum.accumulate(ex[order])
    my = np.maximum.accumulate(ey[order])
    if idx.size:
        k = np.arange(1, idx.size + 1)
        cost = (2 * mx + 1) * (2 * my + 1) + (idx.size - k) * len(sources)
        kbest = int(np.argmin(cost)) + 1
        if cost[kbest - 1] >= idx.size * len(sources):
            return None  # the direct path is cheaper for every receptor
        on = np.zeros_like(on)
        on[idx[order[:kbest]]] = True
    # kernel half-widths covering every (lattice receptor - cell) offset
    nxh = int(max(np.abs(ri[on].max() - si.min()), np.abs(ri[on].min() - si.max())))
    nyh = int(max(np.abs(rj[on].max() - sj.min()), np.abs(rj[on].min() - sj.max())))
    if (2 * nxh + 1) * (2 * nyh + 1) > max_points:
        return None
    return dict(cwx=cwx, cwy=cwy, dx=dx, dy=dy, stride=s, si=si, sj=sj, ri=ri, rj=rj, on=on,
                nxh=nxh, nyh=nyh)


def _kernel_stack(met_tables, layout, weights=None, flag=plume.LATERAL_CDF_EXACT):
    """Hourly (or weighted period) offset kernels for a gridded layout."""
    lng, lnsy, wd = met_tables
    nxh, nyh = layout["nxh"], layout["nyh"]
    if weights is None:
        out = np.empty((lng.shape[0], 2 * nyh + 1, 2 * nxh + 1))
        plume.offset_kernels(layout["cwx"], layout["cwy"], layout["dx"], layout["dy"], nxh, nyh,
                             lng, lnsy, wd, out, flag)
        return out
    out = np.empty((2 * nyh + 1, 2 * nxh + 1))
    plume.weighted_offset_kernel(layout["cwx"], layout["cwy"], layout["dx"], layout["dy"], nxh, nyh,
                                 np.asarray(weights, dtype=np.float64), lng, lnsy, wd, out, flag)
    return out


# ----------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------
def _receptors(receptor_x_m, receptor_y_m):
    rx = np.atleast_1d(np.asarray(receptor_x_m, dtype=np.float64))
    ry = np.atleast_1d(np.asarray(receptor_y_m, dtype=np.float64))
    if rx.ndim != 1 or rx.shape != ry.shape:
        raise InputError(f"receptor_x_m and receptor_y_m must be 1-D arrays of equal length, got shapes "
                         f"{rx.shape} and {ry.shape}")
    if not (np.isfinite(rx).all() and np.isfinite(ry).all()):
        i = int(np.flatnonzero(~(np.isfinite(rx) & np.isfinite(ry)))[0])
        raise InputError(f"receptor {i} has a non-finite coordinate ({rx[i]}, {ry[i]}); receptors must be finite metres")
    return rx, ry


def area_concentrations(sources: AreaSources, receptor_x_m, receptor_y_m, met: MetHours, *,
                        method: Literal["auto", "direct", "gridded"] = "auto",
                        lateral_cdf: Literal["exact", "aermod_table"] = "exact",
                        receptor_z_m=None, urban_population=0.0, urban_roughness_m=1.0):
    """Hourly ground-level concentrations from AREA sources, AERMOD v24142 physics.

    Parameters
    ----------
    sources : AreaSources
    receptor_x_m, receptor_y_m : array (n_receptors,) [m]
        Ground-level receptors (flagpole height 0).
    met : MetHours
    method : {"auto", "direct", "gridded"}
        ``gridded`` requires equal axis-aligned cells on a regular grid with one release
        height and initial sigma-z, and receptors on an aligned lattice (others are computed
        directly); ``auto`` uses it when it applies.
    lateral_cdf : {"exact", "aermod_table"}
        Normal CDF of the crosswind integral: exact, or AERMOD's 4-decimal table cut off at
        +-3.9 sigma-y (reproduces AERMOD's far-lateral tail; see the module docstring).
    receptor_z_m : array (n_receptors,) [m], optional
        Receptor heights above ground (AERMOD flagpole heights), >= 0; default 0. Each
        distinct height gets its own per-hour tables.
    urban_population : float
        > 0: the sources are AERMOD urban sources (URBANSRC) of an urban area of this
        population (URBANOPT); 0 (default): rural.
    urban_roughness_m : float
        URBANOPT urban roughness length [m] (1 m in the regulatory default).

    Returns
    -------
    ndarray (n_hours, n_receptors) [ug m-3]
        Calm and missing hours are 0 (as AERMOD); use :func:`period_average` for the period mean.

    Examples
    --------
    >>> from engine.dispersion.met import read_aermet
    >>> met = read_aermet("met.sfc", "met.pfl")                     # doctest: +SKIP
    >>> src = AreaSources([-500.0], [-500.0], [1000.0], [1000.0])    # doctest: +SKIP
    >>> c = area_concentrations(src, [600.0], [0.0], met)           # doctest: +SKIP
    """
    if method not in ("auto", "direct", "gridded"):
        raise InputError(f"method must be 'auto', 'direct' or 'gridded', got {method!r}")
    if not isinstance(sources, AreaSources):
        raise InputError(f"sources must be an engine.dispersion.area.AreaSources, got {type(sources).__name__}")
    if not isinstance(met, MetHours):
        raise InputError(f"met must be an engine.dispersion.met.MetHours, got {type(met).__name__}")
    flag = _lateral_flag(lateral_cdf)
    rx, ry = _receptors(receptor_x_m, receptor_y_m)
    rz = _receptor_heights(receptor_z_m, rx.shape[0])
    nh = len(met)
    out = np.zeros((nh, rx.shape[0]))
    if len(sources) == 0 or rx.shape[0] == 0:
        return out
    urban = _urban(urban_population, urban_roughness_m)
    for z in np.unique(rz):
        sel = rz == z
        if sel.all():
            return _area_concentrations_z(sources, rx, ry, met, method, flag, float(z), urban)
        out[:, sel] = _area_concentrations_z(sources, rx[sel], ry[sel], met, method, flag, float(z),
                                             urban)
    return out


def _urban(population, roughness):
    pop, z0 = float(population), float(roughness)
    if not (np.isfinite(pop) and pop >= 0):
        raise InputError(f"urban_population = {population!r}; allowed: finite and >= 0 (0 = rural)")
    if not (np.isfinite(z0) and z0 > 0):
        raise InputError(f"urban_roughness_m = {roughness!r}; allowed: > 0 m")
    return (pop, z0)


def _receptor_heights(receptor_z_m, n):
    if receptor_z_m is None:
        return np.zeros(n)
    rz = np.atleast_1d(np.asarray(receptor_z_m, dtype=np.float64))
    if rz.shape == (1,) and n != 1:
        rz = np.full(n, rz[0])
    if rz.shape != (n,):
        raise InputError(f"receptor_z_m must have one height per receptor ({n}), got shape {rz.shape}")
    bad = ~(np.isfinite(rz) & (rz >= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"receptor_z_m[{i}] = {rz[i]!r}; allowed range: finite and >= 0 m")
    return rz


#: gridded path: (lattice receptors x emitting cells) per hour up to which the receptors'
#: values are summed directly (:func:`kernels.plume.gather_offsets`); above, the whole
#: field is convolved (:func:`kernels.convolve.convolve`, FFT when large) and read there
GATHER_MAX_TERMS = 2.0e7


def _area_concentrations_z(sources, rx, ry, met, method, flag, zr, urban=(0.0, 1.0)):
    """area_concentrations for receptors that all have the height zr [m]."""
    nh = len(met)
    out = np.zeros((nh, rx.shape[0]))
    corners = _corners(sources)
    xb = _distance_bound(rx, ry, *corners)
    layout = (_grid_layout(sources, rx, ry, economical=(method == "auto"))
              if method in ("auto", "gridded") else None)
    if method == "gridded" and layout is None:
        raise InputError("method='gridded' needs equal, axis-aligned cells on a regular grid with one "
                         "release height and initial sigma-z, and receptors on a lattice whose spacing "
                         "divides the cell size; use method='direct' or 'auto'")
    if layout is not None:
        hs = sources.release_height_m[0]
        tables = hour_tables(met, hs, sources.initial_sigma_z_m[0], zr, *urban, x_max_m=xb,
                             hour_mask=_hours_needed(met, hs, rx, ry, *corners))
        kern = _kernel_stack(tables, layout, flag=flag)
        s = layout["stride"]
        si0, sj0 = layout["si"].min(), layout["sj"].min()
        mx = (layout["si"].max() - si0) // s + 1
        my = (layout["sj"].max() - sj0) // s + 1
        emis = np.zeros((my, mx))
        np.add.at(emis, ((layout["sj"] - sj0) // s, (layout["si"] - si0) // s), sources.rate_g_m2_s)
        on = layout["on"]
        oy = layout["rj"][on] - sj0 + layout["nyh"]
        ox = layout["ri"][on] - si0 + layout["nxh"]
        j, i = np.nonzero(emis)
        if oy.size * j.size <= GATHER_MAX_TERMS:
            # the convolution's direct sum read at the lattice receptors only
            plume.gather_offsets(kern, j.astype(np.int64), i.astype(np.int64), emis[j, i].copy(), int(s),
                                 oy.astype(np.int64), ox.astype(np.int64),
                                 np.flatnonzero(on).astype(np.int64), np.asarray(met.valid, dtype=np.bool_),
                                 out)
        else:
            from kernels.convolve import convolve as _convolve  # only here: start-up time

            for h in range(nh):
                if not met.valid[h]:
                    continue
                field = _convolve(kern[h], emis, stride=s)
                out[h, on] = field[oy, ox]
        rest = ~on
        if rest.any():
            out[:, rest] = _direct(sources, rx[rest], ry[rest], met, flag, zr, urban, xb,
                                   (rx, ry) + corners)
        return out
    return _direct(sources, rx, ry, met, flag, zr, urban, xb, (rx, ry) + corners)


def _direct(sources, rx, ry, met, flag, zr=0.0, urban=(0.0, 1.0), x_max_m=None, points=None):
    uniq, grp = _groups(sources)
    lng, lnsy, wd = _stacked_tables(met, uniq, zr, urban, x_max_m, points)
    cx, cy, e1x, e1y, hx, hy = sources.geometry()
    out = np.zeros((len(met), rx.shape[0]))
    plume.direct_hourly(rx, ry, cx, cy, e1x, e1y, hx, hy, sources.rate_g_m2_s, grp, lng, lnsy, wd, out,
                        flag)
    return out


def period_average(hourly, met: MetHours):
    """Period mean of hourly concentrations with AERMOD's calm/missing rule.

    The sum over hours (weighted by ``met.weight``) is divided by the total weight of the
    hours that are neither calm nor missing (EPA calms policy, AERMOD PERIOD averages).

    Parameters
    ----------
    hourly : array (n_hours, n_receptors) [ug m-3]
    met : MetHours

    Returns
    -------
    ndarray (n_receptors,) [ug m-3]
    """
    hourly = np.asarray(hourly, dtype=np.float64)
    if hourly.ndim != 2 or hourly.shape[0] != len(met):
        raise InputError(f"hourly must have shape (n_hours={len(met)}, n_receptors), got {hourly.shape}")
    w = np.where(met.valid, met.weight, 0.0)
    tot = w.sum()
    if tot <= 0:
        return np.zeros(hourly.shape[1])
    return (w[:, None] * hourly).sum(axis=0) / tot


def period_kernel(met: MetHours, *, cell_size_m, spacing_m, n_half, release_height_m=0.0,
                  initial_sigma_z_m=0.0, lateral_cdf: Literal["exact", "aermod_table"] = "exact",
                  urban_population=0.0, urban_roughness_m=1.0):
    """Weighted period-mean transfer kernel of one square cell over receptor offsets.

    ``K[iy, ix]`` [ug m-3] is the period-mean concentration at offset
    ``((ix - n_half) * spacing_m, (iy - n_half) * spacing_m)`` from the centre of an
    axis-aligned square cell of side ``cell_size_m`` emitting 1 g m-2 s-1, weights =
    ``met.weight`` normalised over valid (not calm, not missing) hours. Use with
    :func:`convolve` (``stride = cell_size_m / spacing_m``).

    Far field: see :mod:`kernels.plume` (fixed 6-point Gauss-Legendre beyond
    ``FAR_RATIO`` cell extents once sigma-y exceeds half the cell, error < 1e-3 relative).
    ``lateral_cdf``, ``urban_population`` and ``urban_roughness_m`` as in
    :func:`area_concentrations` (``urban_population`` > 0: AERMOD's urban boundary layer for a
    city of that population; 0, the default: rural, unchanged).
    """
    flag = _lateral_flag(lateral_cdf)
    for name, v, ok, rng in (("cell_size_m", cell_size_m, cell_size_m > 0, "> 0 m"),
                             ("spacing_m", spacing_m, spacing_m > 0, "> 0 m"),
                             ("release_height_m", release_height_m, 0 <= release_height_m <= MAX_RELEASE_HEIGHT_M,
                              f"0..{MAX_RELEASE_HEIGHT_M:g} m"),
                             ("initial_sigma_z_m", initial_sigma_z_m, initial_sigma_z_m >= 0, ">= 0 m")):
        if not (np.isfinite(v) and ok):
            raise InputError(f"period_kernel: {name} = {v!r}; allowed range {rng}")
    if int(n_half) != n_half or n_half < 0:
        raise InputError(f"period_kernel: n_half = {n_half!r}; allowed: integer >= 0")
    pop, z0u = _urban(urban_population, urban_roughness_m)
    if pop > 0.0:
        lng, lnsy, wd = hour_tables(met, release_height_m, initial_sigma_z_m, 0.0, pop, z0u)
    else:
        lng, lnsy, wd = hour_tables(met, release_height_m, initial_sigma_z_m)
    w = np.where(met.valid, met.weight, 0.0)
    tot = w.sum()
    n = 2 * int(n_half) + 1
    out = np.zeros((n, n))
    if tot <= 0:
        return out
    return square_kernel((lng, lnsy, wd), w / tot, cell_size_m, spacing_m, n_half, lateral_flag=flag)


def convolve(kernel, emission_grid, *, stride=1, method="auto"):
    """Zero-padded linear convolution (see :mod:`kernels.convolve` for the index layout)."""
    kernel = np.asarray(kernel, dtype=np.float64)
    emission_grid = np.asarray(emission_grid, dtype=np.float64)
    if kernel.ndim != 2 or emission_grid.ndim != 2:
        raise InputError(f"convolve: kernel and emission_grid must be 2-D, got {kernel.shape} and {emission_grid.shape}")
    if not np.isfinite(emission_grid).all():
        raise InputError("convolve: emission_grid contains NaN or inf; emission rates must be finite")
    if int(stride) != stride or stride < 1:
        raise InputError(f"convolve: stride = {stride!r}; allowed: integer >= 1")
    from kernels.convolve import convolve as _convolve

    return _convolve(kernel, emission_grid, stride=int(stride), method=method)

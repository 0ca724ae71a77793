"""City and rest-of-province (ROP) geometry: local projected grids, footprints, rasterisation.

Model (documented default; Ramaswami et al. 2017 Methods e used uniform emission intensities
over each city and over the rest of its province):

* **Projection.** Every city has its own spherical *azimuthal equidistant* (AEQD) projection
  centred on the city centroid (Snyder 1987, *Map Projections - A Working Manual*, USGS PP 1395,
  eqs. 22-4, 25-2, 25-3). Distances and azimuths from the centre are exact on the sphere
  (R = 6 371 008.8 m, IUGG mean radius), so the distance from the city's receptors to every
  source of its province is right to the distortion of AEQD at a few tens of km from the
  centre (< 1e-5 relative). Areas away from the centre are scaled by ``sin(c)/c``
  (c = distance / R); that factor is applied to every cell so that a cell's emission is
  intensity x its true spherical area.
* **Footprints.** No boundary polygons ship with the default data set. A city's footprint is a
  spherical cap (a "disc") of the city's real area (``area_km2``) centred on its polygon
  centroid; a province is a disc centred on the province centroid. A user may give GeoJSON
  polygons (:func:`engine.dispersion.footprints.read_geojson_footprints`); those are then used instead.
* **Rest of province.** ROP = province shape minus the footprints of all its cities in the data
  set. With discs, city discs may overlap each other or stick out of the province disc; the
  province disc radius is therefore solved (:func:`solve_province_radius`) so that the ROP
  area equals ``province area - sum(city areas)`` exactly (to the sampling resolution), which
  is the data set's ROP area. The city's position inside its province is kept: a border city
  sees hinterland on one side only, a central city all round.
* **Grids.** The city grid (spacing ``city_resolution_m``, default 1 km) covers the footprint's
  bounding box plus ``city_margin_m`` on every side, with its edges snapped outward to
  multiples of the ROP spacing H (default 5 km) measured from the city centre, so that the
  coarse ROP lattice nests exactly in it. Receptors sit at fine cell centres. Sources within
  the city grid (the city and the near ROP) are rasterised on the fine grid; the ROP beyond
  the city grid is rasterised on the coarse lattice (see :mod:`engine.dispersion.fields`).
* **Rasterisation.** The emitting fraction of each cell is found exactly for cells wholly
  inside or outside every shape (tested with the cell's half-diagonal), and by
  ``subsamples x subsamples`` point sampling for cells cut by a boundary.

The sphere (AEQD projection, great-circle distances) is in :mod:`engine.dispersion.sphere` and
the population grids in :mod:`engine.dispersion.population`; their names are re-exported here.

Glossary (units): ``spacing_m`` cell side [m]; ``radius_m`` great-circle radius [m];
``area_km2`` [km2]; ``lat``/``lon`` [degrees north/east]; ``x``/``y`` AEQD easting/northing [m].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from engine.dispersion.population import (POPULATION_COUNT_UNITS, POPULATION_DENSITY_UNITS, PopulationGrid,  # noqa: F401
                                          read_population_grid)
from engine.dispersion.sphere import (EARTH_RADIUS_M, aeqd_forward, aeqd_inverse, cap_radius_m,  # noqa: F401
                                      great_circle_distance_m)
from engine.errors import InputError
from kernels import coverage

__all__ = [
    "EARTH_RADIUS_M",
    "snap_out",
    "aeqd_forward",
    "aeqd_inverse",
    "great_circle_distance_m",
    "cap_radius_m",
    "Disc",
    "Polygon",
    "Region",
    "CityGrid",
    "CityGeometry",
    "PopulationGrid",
    "read_population_grid",
    "POPULATION_COUNT_UNITS",
    "POPULATION_DENSITY_UNITS",
    "solve_province_radius",
    "build_city_geometries",
    "check_grid_sizes",
    "MAX_GRID_SIDE_CELLS",
    "city_grid",
    "coarse_grid",
    "coverage_fraction",
    "rasterise_city",
]

# --------------------------------------------------------------------------- shapes
@dataclass(frozen=True)
class Disc:
    """A spherical cap: the points within ``radius_m`` great-circle distance of (lat, lon)."""

    lat: float
    lon: float
    radius_m: float

    @classmethod
    def from_area(cls, lat, lon, area_km2):
        return cls(float(lat), float(lon), cap_radius_m(area_km2))

    def _near(self, lat, lon, pad_m=0.0):
        """Points that may lie within ``radius_m + pad_m``: a latitude-longitude box test.

        The cap of angular radius r about latitude phi0 spans latitudes phi0 +- r and, unless it
        holds a pole, longitudes lambda0 +- asin(sin r / cos phi0) (spherical trigonometry of
        the tangent great circle); the box is widened by 0.1 % and 1e-9 degrees for round-off.
        Points outside the box are surely outside the cap, so only the others need the
        haversine distance: the box test changes no result, only the cost.
        """
        r = (self.radius_m + float(pad_m)) / EARTH_RADIUS_M
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        cos0 = math.cos(math.radians(self.lat))
        if r >= math.pi / 2 or math.sin(r) >= cos0:
            return np.ones(np.broadcast(lat, lon).shape, dtype=bool)
        dlat = math.degrees(r) * 1.001 + 1e-9
        dlon = math.degrees(math.asin(math.sin(r) / cos0)) * 1.001 + 1e-9
        dl = (lon - self.lon + 180.0) % 360.0 - 180.0
        return (np.abs(lat - self.lat) <= dlat) & (np.abs(dl) <= dlon)

    def _distance(self, lat, lon, pad_m=0.0):
        """Great-circle distance [m] from the centre, +inf where :meth:`_near` rules a point out."""
        lat, lon = np.broadcast_arrays(np.asarray(lat, dtype=float), np.asarray(lon, dtype=float))
        near = self._near(lat, lon, pad_m)
        d = np.full(lat.shape, np.inf)
        if near.any():
            d[near] = great_circle_distance_m(self.lat, self.lon, lat[near], lon[near])
        return d

    def contains(self, lat, lon):
        return self._distance(lat, lon) <= self.radius_m

    def latitude_band(self):
        """``(lat_min, lat_max)`` [deg] outside which no point is inside the disc (a superset of
        :meth:`_near`'s latitude test, widened by 1 %), or None when the cap holds a pole."""
        r = self.radius_m / EARTH_RADIUS_M
        if r >= math.pi / 2 or math.sin(r) >= math.cos(math.radians(self.lat)):
            return None
        dlat = (math.degrees(r) * 1.001 + 1e-9) * 1.01
        return self.lat - dlat, self.lat + dlat

    def classify(self, lat, lon, half_diag_m):
        """(surely inside, surely outside) for cells of half-diagonal ``half_diag_m`` centred at lat/lon."""
        d = self._distance(lat, lon, np.max(half_diag_m))
        return d + half_diag_m <= self.radius_m, d - half_diag_m >= self.radius_m

    def bbox_xy(self, lat0, lon0):
        """Bounding box (xmin, xmax, ymin, ymax) [m] in the AEQD frame about (lat0, lon0).

        The disc is sampled on its rim (720 points) and padded by 0.5 % + 1 m for the
        curvature of the rim between samples and the projection's distortion."""
        key = (lat0, lon0)
        memo = _BBOX_MEMO.setdefault(self, {})
        if key not in memo:
            rim = _RIM_MEMO.get(self)
            if rim is None:  # the rim does not depend on the frame: once per disc
                az = np.linspace(0.0, 2 * np.pi, 720, endpoint=False)
                rim = _RIM_MEMO[self] = _destination(self.lat, self.lon, az, self.radius_m)
            x, y = aeqd_forward(rim[0], rim[1], lat0, lon0)
            pad = 0.005 * self.radius_m + 1.0
            if len(memo) > 64:
                memo.clear()
            memo[key] = (x.min() - pad, x.max() + pad, y.min() - pad, y.max() + pad)
        return memo[key]

    def key(self):
        return ("disc", round(self.lat, 9), round(self.lon, 9), round(self.radius_m, 6))


#: per disc, its rim (720 points) and its bounding boxes in the frames asked for (a receptor city asks
#: for each of its sources' boxes more than once)
_RIM_MEMO = {}
_BBOX_MEMO = {}


def _destination(lat, lon, azimuth_rad, distance_m):
    """Point at ``distance_m`` along great circles leaving (lat, lon) at ``azimuth_rad``."""
    phi1, lam1 = math.radians(lat), math.radians(lon)
    d = distance_m / EARTH_RADIUS_M
    phi2 = np.arcsin(math.sin(phi1) * math.cos(d) + math.cos(phi1) * math.sin(d) * np.cos(azimuth_rad))
    lam2 = lam1 + np.arctan2(np.sin(azimuth_rad) * math.sin(d) * math.cos(phi1),
                             math.cos(d) - math.sin(phi1) * np.sin(phi2))
    return np.degrees(phi2), np.degrees(lam2)


@dataclass(frozen=True)
class Polygon:
    """A (multi)polygon in lon/lat; the even-odd rule over all rings handles holes.

    Edges are straight lines in lon/lat, the GeoJSON convention (RFC 7946 3.1.1).
    """

    rings: tuple  # of (n, 2) float arrays of (lon, lat), closed or not

    def __post_init__(self):
        rings = tuple(np.ascontiguousarray(np.asarray(r, dtype=float)[:, :2]) for r in self.rings)
        if not rings or any(r.shape[0] < 3 for r in rings):
            raise ValueError("a polygon needs rings of at least 3 vertices")
        object.__setattr__(self, "rings", rings)
        allv = np.concatenate(rings)
        object.__setattr__(self, "_bbox", (allv[:, 0].min(), allv[:, 0].max(), allv[:, 1].min(), allv[:, 1].max()))

    def contains(self, lat, lon):
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        inside = np.zeros(np.broadcast(lat, lon).shape, dtype=bool)
        lon0, lon1, lat0, lat1 = self._bbox
        cand = (lon >= lon0) & (lon <= lon1) & (lat >= lat0) & (lat <= lat1)
        if not cand.any():
            return inside
        px, py = lon[cand], lat[cand]
        res = np.zeros(px.shape, dtype=bool)
        for ring in self.rings:
            x1, y1 = ring[:, 0], ring[:, 1]
            x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
            for a, b, c, d in zip(x1, y1, x2, y2):  # even-odd ray casting towards +lon
                if b == d:
                    continue
                crosses = (b > py) != (d > py)
                xint = a + (py - b) * (c - a) / (d - b)
                res ^= crosses & (px < xint)
        inside[cand] = res
        return inside

    def classify(self, lat, lon, half_diag_m):
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        lon0, lon1, lat0, lat1 = self._bbox
        dlat = np.degrees(half_diag_m / EARTH_RADIUS_M)
        dlon = dlat / np.maximum(np.cos(np.radians(lat)), 1e-6)
        out = (lon + dlon < lon0) | (lon - dlon > lon1) | (lat + dlat < lat0) | (lat - dlat > lat1)
        return np.zeros(out.shape, dtype=bool), out

    def bbox_xy(self, lat0, lon0):
        allv = np.concatenate(self.rings)
        # densify edges so that the AEQD bbox of curved projected edges is covered
        pts = []
        for ring in self.rings:
            r2 = np.roll(ring, -1, axis=0)
            t = np.linspace(0.0, 1.0, 8, endpoint=False)[:, None, None]
            pts.append((ring[None] + t * (r2 - ring)[None]).reshape(-1, 2))
        allv = np.concatenate(pts)
        x, y = aeqd_forward(allv[:, 1], allv[:, 0], lat0, lon0)
        pad = 1.0 + 1e-3 * max(np.ptp(x), np.ptp(y))
        return x.min() - pad, x.max() + pad, y.min() - pad, y.max() + pad

    def area_km2(self, *, samples=600):
        """Area [km2] by point sampling (``samples`` x ``samples``) of the even-odd region in
        the AEQD frame of the bounding-box centre (holes and multipolygons handled alike)."""
        c_lat, c_lon = _poly_centre(self)
        x0, x1, y0, y1 = self.bbox_xy(c_lat, c_lon)
        dx, dy = (x1 - x0) / samples, (y1 - y0) / samples
        X, Y = np.meshgrid(x0 + dx * (np.arange(samples) + 0.5), y0 + dy * (np.arange(samples) + 0.5))
        la, lo = aeqd_inverse(X, Y, c_lat, c_lon)
        w = _cell_area_weight(X, Y) * self.contains(la, lo)
        return float(w.sum() * dx * dy / 1e6)

    def key(self):
        import hashlib

        h = hashlib.sha256()
        for r in self.rings:
            h.update(np.ascontiguousarray(r).tobytes())
        return ("polygon", h.hexdigest())


@dataclass(frozen=True)
class Region:
    """Points inside ``include`` and outside every shape in ``exclude`` (the ROP)."""

    include: object
    exclude: tuple = ()

    def contains(self, lat, lon):
        m = self.include.contains(lat, lon)
        lat, lon = np.broadcast_arrays(np.asarray(lat, dtype=float), np.asarray(lon, dtype=float))
        if len(self.exclude) < 4 or lat.size < 1024:
            for s in self.exclude:
                m &= ~s.contains(lat, lon)
            return m
        # many excluded cities: each tests only the points in its latitude band (sorted once),
        # the others being outside it by its own first test (Disc._near)
        fl_lat, fl_lon, fl_m = lat.ravel(), lon.ravel(), m.reshape(-1)
        order = np.argsort(fl_lat, kind="stable")
        sorted_lat = fl_lat[order]
        for s in self.exclude:
            band = s.latitude_band() if hasattr(s, "latitude_band") else None
            if band is None:
                fl_m &= ~s.contains(fl_lat, fl_lon)
                continue
            i0, i1 = np.searchsorted(sorted_lat, band[0], "left"), np.searchsorted(sorted_lat, band[1], "right")
            if i1 > i0:
                idx = order[i0:i1]
                fl_m[idx[s.contains(fl_lat[idx], fl_lon[idx])]] = False
        return fl_m.reshape(m.shape)

    def classify(self, lat, lon, half_diag_m):
        ins, out = self.include.classify(lat, lon, half_diag_m)
        for s in self.exclude:
            e_in, e_out = s.classify(lat, lon, half_diag_m)
            out = out | e_in
            ins = ins & e_out
        return ins, out

    def key(self):
        return ("region", self.include.key(), tuple(s.key() for s in self.exclude))


def _cell_area_weight(x, y):
    """AEQD areal scale correction: true area / projected area = sin(c)/c (c = rho/R)."""
    c = np.hypot(x, y) / EARTH_RADIUS_M
    return np.where(c > 1e-12, np.sin(c) / np.where(c > 1e-12, c, 1.0), 1.0)


def solve_province_radius(lat, lon, target_rop_area_km2, cities, *, max_samples=500):
    """Radius [m] of the province disc whose area outside the city footprints equals the target.

    The province disc is sampled on a square lattice in its own AEQD frame (at most
    ``max_samples`` points a side, never coarser than needed to resolve the smallest city to
    ~2 %), each sample weighted by its true spherical area; samples inside any city are
    dropped, the rest sorted by distance from the centre, and the radius is read off the
    cumulative area (linear interpolation between samples).

    Parameters
    ----------
    lat, lon : float [degrees]  province centroid
    target_rop_area_km2 : float [km2]  province area minus its cities' areas (>= 0)
    cities : sequence of shapes  the province's city footprints (Disc or Polygon)
    """
    target = float(target_rop_area_km2) * 1e6
    if target <= 0.0:
        return 0.0
    # area(disc(R) minus cities) = target and area(disc(R) & cities) <= sum(city areas) give
    # area(disc(R)) <= target + sum(city areas), so R never exceeds that cap's radius
    r_nominal = cap_radius_m(target_rop_area_km2 + sum(_shape_area_km2(s) for s in cities))
    r_max = 1.001 * r_nominal + 1000.0
    step = max(2.0 * r_max / max_samples, 250.0)
    n = int(math.ceil(2.0 * r_max / step))
    axis = (np.arange(n) + 0.5) * step - 0.5 * n * step
    X, Y = np.meshgrid(axis, axis)
    d = np.hypot(X, Y).ravel()
    keep = d <= r_max
    X, Y, d = X.ravel()[keep], Y.ravel()[keep], d[keep]
    la, lo = aeqd_inverse(X, Y, lat, lon)
    inside_city = np.zeros(d.shape, dtype=bool)
    for s in cities:
        # exact test only near the shape (bounding box in this frame, padded)
        bx0, bx1, by0, by1 = s.bbox_xy(lat, lon)
        near = (X >= bx0) & (X <= bx1) & (Y >= by0) & (Y <= by1)
        if near.any():
            inside_city[near] |= s.contains(la[near], lo[near])
    w = step * step * _cell_area_weight(X, Y)
    w = np.where(inside_city, 0.0, w)
    order = np.argsort(d, kind="stable")
    cum = np.cumsum(w[order])
    if cum[-1] < target:  # cannot happen with r_max as above unless shapes are huge
        raise ValueError("province radius search range too small")
    k = int(np.searchsorted(cum, target))
    ds = d[order]
    if k == 0:
        return float(ds[0] * target / cum[0])
    # interpolate between consecutive samples' radii
    frac = (target - cum[k - 1]) / max(cum[k] - cum[k - 1], 1e-300)
    return float(ds[k - 1] + frac * (ds[k] - ds[k - 1]))


def _shape_area_km2(s):
    if isinstance(s, Disc):
        r = s.radius_m / EARTH_RADIUS_M
        return 2.0 * math.pi * EARTH_RADIUS_M**2 * (1.0 - math.cos(r)) / 1e6
    return s.area_km2()


def _shape_extent_m(s):
    if isinstance(s, Disc):
        return s.radius_m
    x0, x1, y0, y1 = s.bbox_xy(*_poly_centre(s))
    return 0.5 * math.hypot(x1 - x0, y1 - y0)


def _poly_centre(p):
    lon0, lon1, lat0, lat1 = p._bbox
    return 0.5 * (lat0 + lat1), 0.5 * (lon0 + lon1)


# --------------------------------------------------------------------------- grids
@dataclass(frozen=True)
class CityGrid:
    """A regular grid in the AEQD frame of (lat0, lon0); cell (j, i) has centre (x[i], y[j]).

    ``x_first``/``y_first`` are the centre coordinates of column/row 0 [m]; rows go south to
    north, columns west to east.
    """

    lat0: float
    lon0: float
    spacing_m: float
    nx: int
    ny: int
    x_first: float
    y_first: float

    @property
    def x(self):
        return self.x_first + self.spacing_m * np.arange(self.nx)

    @property
    def y(self):
        return self.y_first + self.spacing_m * np.arange(self.ny)

    @property
    def shape(self):
        return (self.ny, self.nx)

    def latlon(self):
        """Cell-centre latitude and longitude, each (ny, nx) [degrees]."""
        X, Y = np.meshgrid(self.x, self.y)
        return aeqd_inverse(X, Y, self.lat0, self.lon0)

    def cell_corners(self):
        """Latitude and longitude of the 4 corners of every cell, (ny, nx, 4) [degrees], counter-
        clockwise from south-west (CF 1.8 sec. 7.1 vertex order for 2-D bounds)."""
        h = self.spacing_m / 2.0
        X, Y = np.meshgrid(self.x, self.y)
        lat = np.empty(X.shape + (4,))
        lon = np.empty(X.shape + (4,))
        for k, (sx, sy) in enumerate(((-1, -1), (1, -1), (1, 1), (-1, 1))):
            lat[..., k], lon[..., k] = aeqd_inverse(X + sx * h, Y + sy * h, self.lat0, self.lon0)
        return lat, lon

    def key(self):
        return (round(self.lat0, 9), round(self.lon0, 9), self.spacing_m, self.nx, self.ny,
                round(self.x_first, 6), round(self.y_first, 6))


@dataclass(frozen=True)
class CityGeometry:
    """Everything the field computation needs to know about one city's sources.

    Attributes
    ----------
    city_id, province_id : int
    footprint : Disc or Polygon          the city
    province : Disc or Polygon           the province shape (radius-solved disc by default)
    province_cities : tuple of shapes    all city footprints of the province (the city included)
    spacing_m : float                    city grid spacing h [m]
    coarse_factor : int                  ROP spacing H = coarse_factor * h
    margin_m : float                     city grid margin [m]
    """

    city_id: int
    province_id: int
    footprint: object
    province: object
    province_cities: tuple
    spacing_m: float
    coarse_factor: int
    margin_m: float
    centre_lat: float = field(default=0.0)
    centre_lon: float = field(default=0.0)

    @property
    def rop(self):
        return Region(self.province, tuple(self.province_cities))

    @property
    def coarse_spacing_m(self):
        return self.spacing_m * self.coarse_factor

    def key(self):
        """Hashable description of everything geometric that affects the city's fields."""
        return ("geometry-v1", self.footprint.key(), self.province.key(),
                tuple(s.key() for s in self.province_cities), float(self.spacing_m),
                int(self.coarse_factor), float(self.margin_m),
                round(self.centre_lat, 9), round(self.centre_lon, 9))


def build_city_geometries(cities, provinces, *, city_resolution_m=1000.0, rop_resolution_m=5000.0,
                          city_margin_m=10000.0, footprints=None, province_footprints=None,
                          rop_area_km2=None):
    """Footprints and grids of every city.

    Parameters
    ----------
    cities : pandas.DataFrame
        Columns city_id, province_id, centroid_lat, centroid_lon, area_km2 [km2].
    provinces : pandas.DataFrame
        Columns province_id, centroid_lat, centroid_lon, area_km2 [km2].
    city_resolution_m, rop_resolution_m, city_margin_m : float [m]
        The ROP spacing is rounded to an odd-or-even integer multiple (>= 1) of the city spacing.
    footprints : dict {city_id: Polygon}, optional
        User polygons replacing the default discs (cities not in the dict keep their disc).
    province_footprints : dict {province_id: Polygon}, optional
        User province polygons; then the province shape is not radius-solved.
    rop_area_km2 : dict {province_id: km2}, optional
        ROP area to honour; default province area minus the sum of its cities' areas.

    Returns
    -------
    dict {city_id: CityGeometry}
    """
    footprints = footprints or {}
    province_footprints = province_footprints or {}
    factor = max(1, int(round(rop_resolution_m / city_resolution_m)))
    req = {"city_id", "province_id", "centroid_lat", "centroid_lon", "area_km2"}
    missing = req - set(cities.columns)
    if missing:
        raise InputError(f"city table lacks column(s) {', '.join(sorted(missing))}")
    shapes = {}
    for row in cities.itertuples(index=False):
        cid = int(row.city_id)
        if cid in footprints:
            shapes[cid] = footprints[cid]
        else:
            if not (row.area_km2 > 0):
                raise InputError(f"city {cid}: area_km2 = {row.area_km2} must be > 0")
            shapes[cid] = Disc.from_area(row.centroid_lat, row.centroid_lon, row.area_km2)
    prov_shape = {}
    by_prov = {}
    for row in cities.itertuples(index=False):
        by_prov.setdefault(int(row.province_id), []).append(int(row.city_id))
    ptab = provinces.set_index("province_id")
    for pid, cids in by_prov.items():
        if pid not in ptab.index:
            raise InputError(f"province {pid} of city {cids[0]} is not in the province table")
        if pid in province_footprints:
            prov_shape[pid] = province_footprints[pid]
            continue
        p = ptab.loc[pid]
        city_area = float(cities.loc[cities.province_id == pid, "area_km2"].sum())
        target = (rop_area_km2 or {}).get(pid, float(p.area_km2) - city_area)
        if target < -1e-6 * float(p.area_km2):
            raise InputError(f"province {pid}: its cities' areas ({city_area:.1f} km2) exceed the province "
                             f"area ({float(p.area_km2):.1f} km2)")
        radius = solve_province_radius(float(p.centroid_lat), float(p.centroid_lon), max(target, 0.0),
                                       [shapes[c] for c in cids])
        prov_shape[pid] = Disc(float(p.centroid_lat), float(p.centroid_lon), radius)
    out = {}
    for row in cities.itertuples(index=False):
        cid, pid = int(row.city_id), int(row.province_id)
        fp = shapes[cid]
        if isinstance(fp, Disc):
            clat, clon = fp.lat, fp.lon
        else:
            clat, clon = float(row.centroid_lat), float(row.centroid_lon)
        out[cid] = CityGeometry(
            city_id=cid, province_id=pid, footprint=fp, province=prov_shape[pid],
            province_cities=tuple(shapes[c] for c in sorted(by_prov[pid])),
            spacing_m=float(city_resolution_m), coarse_factor=factor, margin_m=float(city_margin_m),
            centre_lat=clat, centre_lon=clon)
    check_grid_sizes(out)
    return out


#: most cells along one side of a city's fine grid or its province's coarse lattice. A city task
#: holds a kernel of (2n-1)^2 and an FFT convolution of about (3n)^2 complex values for side n,
#: ~330 n^2 bytes: 2048 cells -> ~1.4 GB per task (the default 1 km grid of the largest 2010 city
#: has ~350 cells, its province's 5 km lattice ~300)
MAX_GRID_SIDE_CELLS = 2048
_BYTES_PER_SIDE2 = 330


def check_grid_sizes(geometries, *, max_side=None):
    """Refuse grids too large to allocate, before any work starts.

    Raises
    ------
    InputError
        naming the city, the grid size and memory estimate, and the smallest
        ``city_resolution_m`` / ``rop_resolution_m`` (or the largest ``city_margin_m``) that fits.
    """
    max_side = int(max_side or MAX_GRID_SIDE_CELLS)
    worst = {}
    for cid, g in geometries.items():
        fine = city_grid(g)
        coarse = coarse_grid(g, fine)
        for kind, grid in (("fine", fine), ("coarse", coarse)):
            side = max(grid.nx, grid.ny)
            if side > max_side and side > worst.get(kind, (0,))[0]:
                worst[kind] = (side, cid, g, grid)
    if not worst:
        return
    msgs = []
    if "fine" in worst:
        side, cid, g, grid = worst["fine"]
        extent = side * g.spacing_m
        msgs.append(f"city {cid}: its grid would be {grid.nx} x {grid.ny} cells at [dispersion] city_resolution_m = "
                    f"{g.spacing_m:g} with city_margin_m = {g.margin_m:g} (~{_BYTES_PER_SIDE2 * side**2 / 2**30:.1f} GiB "
                    f"per city task); at most {max_side} cells per side are allowed: use city_resolution_m >= "
                    f"{math.ceil(extent / max_side):g} m (allowed range [100, 20000]) or a smaller city_margin_m")
    if "coarse" in worst:
        side, cid, g, grid = worst["coarse"]
        msgs.append(f"city {cid}: its province lattice would be {grid.nx} x {grid.ny} cells at [dispersion] "
                    f"rop_resolution_m = {g.coarse_spacing_m:g} (~{_BYTES_PER_SIDE2 * side**2 / 2**30:.1f} GiB per "
                    f"city task); at most {max_side} cells per side are allowed: use rop_resolution_m >= "
                    f"{math.ceil(side * g.coarse_spacing_m / max_side):g} m (allowed range [500, 50000])")
    raise InputError("grid too large to compute: " + "; ".join(msgs))


def snap_out(lo, hi, step):
    """The interval [lo, hi] [m] widened outwards to multiples of ``step`` [m]."""
    return math.floor(lo / step) * step, math.ceil(hi / step) * step


def city_grid(geom):
    """The fine receptor/source grid of a city (footprint bbox + margin, snapped to H)."""
    h, H = geom.spacing_m, geom.coarse_spacing_m
    x0, x1, y0, y1 = geom.footprint.bbox_xy(geom.centre_lat, geom.centre_lon)
    m = geom.margin_m
    X0, X1 = snap_out(x0 - m, x1 + m, H)
    Y0, Y1 = snap_out(y0 - m, y1 + m, H)
    nx, ny = int(round((X1 - X0) / h)), int(round((Y1 - Y0) / h))
    return CityGrid(geom.centre_lat, geom.centre_lon, h, nx, ny, X0 + 0.5 * h, Y0 + 0.5 * h)


def coarse_grid(geom, fine):
    """Coarse ROP lattice (spacing H) covering the province and the fine grid, nested in it."""
    H = geom.coarse_spacing_m
    px0, px1, py0, py1 = geom.province.bbox_xy(geom.centre_lat, geom.centre_lon)
    fx0 = fine.x_first - 0.5 * fine.spacing_m
    fy0 = fine.y_first - 0.5 * fine.spacing_m
    fx1 = fx0 + fine.nx * fine.spacing_m
    fy1 = fy0 + fine.ny * fine.spacing_m
    # one ring of H beyond the fine grid so that fine cells near its edge can be interpolated
    X0, X1 = snap_out(min(px0, fx0 - H), max(px1, fx1 + H), H)
    Y0, Y1 = snap_out(min(py0, fy0 - H), max(py1, fy1 + H), H)
    nx, ny = int(round((X1 - X0) / H)), int(round((Y1 - Y0) / H))
    return CityGrid(geom.centre_lat, geom.centre_lon, H, nx, ny, X0 + 0.5 * H, Y0 + 0.5 * H)


def _cell_window(grid, shape):
    """The index window ``(slice_y, slice_x)`` of the cells of ``grid`` that may touch ``shape``, or None
    (the whole grid): its AEQD bounding box (:meth:`Disc.bbox_xy`, padded for the rim and the
    projection) widened by two cells on every side, beyond the half-diagonal of a cell."""
    bbox = getattr(shape, "bbox_xy", None)
    if bbox is None:
        return None
    x0, x1, y0, y1 = bbox(grid.lat0, grid.lon0)
    h = grid.spacing_m
    i0 = max(0, int(math.floor((x0 - grid.x_first) / h)) - 2)
    i1 = min(grid.nx, int(math.ceil((x1 - grid.x_first) / h)) + 3)
    j0 = max(0, int(math.floor((y0 - grid.y_first) / h)) - 2)
    j1 = min(grid.ny, int(math.ceil((y1 - grid.y_first) / h)) + 3)
    return slice(j0, max(j0, j1)), slice(i0, max(i0, i1))


def _classify_cells(shape, grid, lat, lon, half_diag):
    """``shape.classify`` on the cells of ``grid``; a :class:`Region`'s excluded shapes (the other
    cities of a rest of province) are classified only on the cells near them (:func:`_cell_window`):
    every cell beyond is surely outside them, as their own test would find, at the cost of the
    few cells near each instead of the whole grid for each."""
    if not isinstance(shape, Region):
        return shape.classify(lat, lon, half_diag)
    ins, out = shape.include.classify(lat, lon, half_diag)
    hd = np.broadcast_to(half_diag, lat.shape)
    for s in shape.exclude:
        win = _cell_window(grid, s)
        if win is None:
            e_in, e_out = s.classify(lat, lon, half_diag)
            out = out | e_in
            ins = ins & e_out
            continue
        if lat[win].size == 0:
            continue  # the shape lies off this grid
        e_in, e_out = s.classify(lat[win], lon[win], hd[win])
        out[win] |= e_in
        ins[win] &= e_out
    return ins, out


def _disc_shapes(shape):
    """``[(lat, lon, radius_m), ...]`` of a :class:`Disc` or a :class:`Region` of a disc less discs (the
    first included, the others excluded), or None for any other shape (polygons: the NumPy path)."""
    if isinstance(shape, Disc):
        return [(shape.lat, shape.lon, shape.radius_m)]
    if isinstance(shape, Region) and isinstance(shape.include, Disc) and all(isinstance(s, Disc) for s in shape.exclude):
        return [(s.lat, s.lon, s.radius_m) for s in (shape.include,) + tuple(shape.exclude)]
    return None


def coverage_fraction(grid, shape, *, subsamples=5, mask=None, compiled=True):
    """Area-weighted fraction of every cell of ``grid`` inside ``shape``, (ny, nx).

    The fraction is multiplied by the AEQD areal correction ``sin(c)/c`` of the cell centre,
    so ``coverage * spacing**2`` is the cell's true emitting area [m2].

    Parameters
    ----------
    grid : CityGrid
    shape : Disc, Polygon or Region
    subsamples : int
        Points per side used in cells cut by a boundary (error of the area ~ 1/subsamples^2 of
        the boundary cells' area).
    mask : (ny, nx) bool, optional
        Cells to consider; others get 0.
    compiled : bool
        Discs and regions of discs by :func:`kernels.coverage.disc_coverage` (default); False: the
        NumPy path for every shape (the reference the compiled one is tested against).
    """
    h = grid.spacing_m
    X, Y = np.meshgrid(grid.x, grid.y)
    discs = _disc_shapes(shape) if compiled else None
    if discs is not None:  # compiled, cell by cell (kernels.coverage): the same arithmetic, no GIL
        frac = np.empty(grid.shape)
        # the box pad covers the half-diagonal of a block of cells (kernels.coverage.disc_coverage)
        pad = 0.5 * math.sqrt(2.0) * coverage.BLOCK * h * 1.001 + 1e-6 * float(np.hypot(X, Y).max(initial=0.0)) + 1e-6
        coverage.disc_coverage(np.asarray(grid.x, dtype=float), np.asarray(grid.y, dtype=float), float(grid.lat0),
                               float(grid.lon0), float(h), coverage.disc_table(discs, pad), int(subsamples),
                               np.ones(grid.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool),
                               frac)
        return frac * _cell_area_weight(X, Y)
    lat, lon = aeqd_inverse(X, Y, grid.lat0, grid.lon0)
    half_diag = 0.5 * math.sqrt(2.0) * h * 1.001 + 1e-6 * np.hypot(X, Y)  # + AEQD distortion allowance
    sure_in, sure_out = _classify_cells(shape, grid, lat, lon, half_diag)
    frac = sure_in.astype(float)
    todo = ~(sure_in | sure_out)
    if mask is not None:
        todo &= mask
        frac = np.where(mask, frac, 0.0)
    jj, ii = np.nonzero(todo)
    if jj.size:
        s = int(subsamples)
        off = (np.arange(s) + 0.5) / s - 0.5
        ox, oy = np.meshgrid(off * h, off * h)
        chunk = max(1, 2_000_000 // (s * s))
        for k in range(0, jj.size, chunk):
            j, i = jj[k:k + chunk], ii[k:k + chunk]
            sx = X[j, i][:, None] + ox.ravel()[None, :]
            sy = Y[j, i][:, None] + oy.ravel()[None, :]
            sla, slo = aeqd_inverse(sx, sy, grid.lat0, grid.lon0)
            frac[j, i] = shape.contains(sla, slo).mean(axis=1)
    return frac * _cell_area_weight(X, Y)


def rasterise_city(geom, *, subsamples=5):
    """Fine grid, coarse grid and the emitting fractions of one city.

    Returns
    -------
    dict with keys ``fine`` (CityGrid), ``coarse`` (CityGrid), ``city`` (ny, nx) city
    footprint fraction, ``rop_near`` (ny, nx) ROP fraction inside the fine grid, ``rop_far``
    (nyc, nxc) ROP fraction of coarse cells outside the fine grid (0 inside it).
    """
    fine = city_grid(geom)
    coarse = coarse_grid(geom, fine)
    city = coverage_fraction(fine, geom.footprint, subsamples=subsamples)
    rop_near = coverage_fraction(fine, geom.rop, subsamples=subsamples)
    # coarse cells outside the fine grid (the fine grid is a whole number of coarse cells)
    f = geom.coarse_factor
    i0 = int(round((fine.x_first - 0.5 * fine.spacing_m - (coarse.x_first - 0.5 * coarse.spacing_m)) / coarse.spacing_m))
    j0 = int(round((fine.y_first - 0.5 * fine.spacing_m - (coarse.y_first - 0.5 * coarse.spacing_m)) / coarse.spacing_m))
    ni, nj = fine.nx // f, fine.ny // f
    outside = np.ones(coarse.shape, dtype=bool)
    outside[j0:j0 + nj, i0:i0 + ni] = False
    rop_far = coverage_fraction(coarse, geom.rop, subsamples=subsamples, mask=outside)
    return {"fine": fine, "coarse": coarse, "city": city, "rop_near": rop_near, "rop_far": rop_far,
            "fine_in_coarse": (j0, i0, nj, ni)}

"""City and province footprints from GeoJSON (RFC 7946): read and checked.

The polygons become :class:`engine.dispersion.geometry.Polygon` shapes; every defect is an
:class:`engine.errors.InputError` naming the file and the feature.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.dispersion.geometry import Polygon, _poly_centre
from engine.dispersion.sphere import great_circle_distance_m
from engine.errors import InputError

__all__ = ["read_geojson_footprints"]


def _ring_array(ring):
    """(n, 2) float array of one GeoJSON linear ring; ValueError saying what is wrong."""
    try:
        a = np.asarray(ring, dtype=float)
    except (ValueError, TypeError):
        raise ValueError("a ring is not a list of [lon, lat] number pairs") from None
    if a.ndim != 2 or a.shape[1] < 2:
        raise ValueError("a ring is not a list of [lon, lat] positions")
    a = a[:, :2]
    if not np.isfinite(a).all():
        raise ValueError("a ring has non-finite coordinates")
    if np.abs(a[:, 0]).max() > 180.0 or np.abs(a[:, 1]).max() > 90.0:
        raise ValueError("a coordinate is outside lon [-180, 180] / lat [-90, 90] "
                         "(GeoJSON positions are [lon, lat] in degrees, WGS 84)")
    if np.array_equal(a[0], a[-1]):
        a = a[:-1]
    if len(np.unique(a, axis=0)) < 3:
        raise ValueError("a ring has fewer than 3 distinct vertices")
    # shoelace formula on coordinates centred on the ring (no cancellation between large
    # absolute lon/lat products): twice the signed area in degrees^2.  Zero area = all
    # vertices on one line, judged relative to the ring's extent squared, so the test does not
    # depend on where on the globe the ring lies or on how the products round.
    x, y = a[:, 0] - a[:, 0].mean(), a[:, 1] - a[:, 1].mean()
    twice_area = abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    extent = max(float(np.ptp(x)), float(np.ptp(y)))
    if twice_area <= 1e-9 * extent * extent:
        raise ValueError("a ring has zero area (its vertices lie on one line)")
    return a


def read_geojson_footprints(path, *, id_property="city_id", valid_ids=None, centroids=None,
                            max_offset_m=50_000.0):
    """Read Polygon/MultiPolygon features of a GeoJSON file into ``{id: Polygon}``.

    Parameters
    ----------
    path : path-like
        GeoJSON FeatureCollection, coordinates in lon/lat (WGS 84, RFC 7946).
    id_property : str
        Feature property holding the integer id (``city_id`` or ``province_id``).
    valid_ids : collection of int, optional
        Ids the data set knows; a feature with another id is an error.
    centroids : dict {id: (lat, lon)}, optional
        The data set's centroids [degrees]; a polygon farther than ``max_offset_m`` [m] plus
        its own extent from its centroid is an error (swapped lon/lat, wrong id).

    Raises
    ------
    InputError
        Naming the file and the feature index: unreadable file, a feature without the id
        property or with an id that is not an integer, an unknown or repeated id, a
        geometry that is missing, not a (Multi)Polygon or invalid (non-numeric or out-of-range
        coordinates, rings of fewer than 3 distinct vertices or of zero area), or a polygon
        far from its city.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"footprint file {path} does not exist") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise InputError(f"{path}: cannot read the footprint file ({exc})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid GeoJSON (line {exc.lineno}: {exc.msg})") from None
    feats = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(feats, list):
        raise InputError(f"{path}: expected a GeoJSON FeatureCollection with a 'features' list")
    valid = None if valid_ids is None else {int(v) for v in valid_ids}
    out, first_at = {}, {}
    for i, f in enumerate(feats):
        if not isinstance(f, dict):
            raise InputError(f"{path}: feature {i} is not a GeoJSON Feature object")
        props = f.get("properties") or {}
        if id_property not in props:
            raise InputError(f"{path}: feature {i} has no property '{id_property}'")
        raw_id = props[id_property]
        try:
            fid = int(raw_id)
            if isinstance(raw_id, bool) or float(raw_id) != fid:
                raise ValueError
        except (ValueError, TypeError):
            raise InputError(f"{path}: feature {i}: {id_property} = {raw_id!r} is not an integer") from None
        if valid is not None and fid not in valid:
            raise InputError(f"{path}: feature {i}: {id_property} = {fid} is not in the data set")
        if fid in first_at:
            raise InputError(f"{path}: feature {i}: {id_property} = {fid} repeats feature {first_at[fid]} "
                             "(give one Polygon or MultiPolygon per id)")
        first_at[fid] = i
        geom = f.get("geometry") or {}
        gtype, coords = geom.get("type"), geom.get("coordinates")
        where = f"{path}: feature {i} ({id_property}={fid})"
        if gtype not in ("Polygon", "MultiPolygon"):
            raise InputError(f"{where} has geometry type {gtype!r}; expected Polygon or MultiPolygon")
        try:
            if not isinstance(coords, list) or not coords:
                raise ValueError("'coordinates' is missing or empty")
            polys = coords if gtype == "MultiPolygon" else [coords]
            if not all(isinstance(pl, list) and pl for pl in polys):
                raise ValueError("a polygon has no rings")
            rings = [_ring_array(r) for pl in polys for r in pl]
            poly = Polygon(tuple(rings))
        except (ValueError, TypeError) as exc:
            raise InputError(f"{where}: invalid geometry: {exc}") from None
        if centroids is not None and fid in centroids:
            clat, clon = centroids[fid]
            plat, plon = _poly_centre(poly)
            lon0, lon1, lat0, lat1 = poly._bbox
            extent = float(great_circle_distance_m(lat0, lon0, lat1, lon1))
            off = float(great_circle_distance_m(clat, clon, plat, plon))
            if off > extent + max_offset_m:
                raise InputError(f"{where}: the polygon lies {off / 1e3:.0f} km from the city's centroid "
                                 f"({clat:.4f} N, {clon:.4f} E) in the data set; wrong id, or [lat, lon] "
                                 "instead of [lon, lat]?")
        out[fid] = poly
    if not out:
        raise InputError(f"{path}: the FeatureCollection has no features")
    return out


# --------------------------------------------------------------------------- provinces

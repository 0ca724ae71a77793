"""Geometry: projection, footprints, ROP = province - cities, rasterisation, resolution check."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from engine.dispersion import geometry as geo
from engine.dispersion.footprints import _ring_array, read_geojson_footprints
from engine.errors import InputError


def test_aeqd_round_trip_and_radial_distance_exact(rng):
    lat = 30 + 10 * rng.random(200)
    lon = 110 + 10 * rng.random(200)
    x, y = geo.aeqd_forward(lat, lon, 35.0, 115.0)
    la, lo = geo.aeqd_inverse(x, y, 35.0, 115.0)
    np.testing.assert_allclose(la, lat, atol=1e-9)  # round trip to round-off
    np.testing.assert_allclose(lo, lon, atol=1e-9)
    d = geo.great_circle_distance_m(35.0, 115.0, lat, lon)
    np.testing.assert_allclose(np.hypot(x, y), d, rtol=1e-10)  # AEQD: radial distances are exact


def test_cap_radius_area():
    for area in (100.0, 1e4, 1.6e6):
        r = geo.cap_radius_m(area) / geo.EARTH_RADIUS_M
        a = 2 * math.pi * geo.EARTH_RADIUS_M**2 * (1 - math.cos(r)) / 1e6
        assert a == pytest.approx(area, rel=1e-9)
    assert geo.cap_radius_m(100.0) == pytest.approx(math.sqrt(100e6 / math.pi), rel=1e-6)
    with pytest.raises(ValueError):
        geo.cap_radius_m(-1.0)


def _tables(cities):
    c = pd.DataFrame(cities, columns=["city_id", "province_id", "centroid_lat", "centroid_lon", "area_km2"])
    p = pd.DataFrame({"province_id": [1], "centroid_lat": [30.0], "centroid_lon": [110.0], "area_km2": [8000.0]})
    return c, p


def _areas(g):
    r = geo.rasterise_city(g)
    h2 = r["fine"].spacing_m ** 2 / 1e6
    H2 = r["coarse"].spacing_m ** 2 / 1e6
    return r["city"].sum() * h2, r["rop_near"].sum() * h2 + r["rop_far"].sum() * H2, r


def test_areas_conserved_with_overlapping_and_protruding_cities():
    # two overlapping cities, one sticking out of the province disc
    c, p = _tables([(11, 1, 30.0, 110.0, 900.0), (12, 1, 30.15, 110.0, 700.0), (13, 1, 30.42, 110.4, 500.0)])
    geoms = geo.build_city_geometries(c, p)
    target = 8000.0 - c.area_km2.sum()
    for cid, area in zip(c.city_id, c.area_km2):
        a_city, a_rop, _ = _areas(geoms[cid])
        assert a_city == pytest.approx(area, rel=5e-3)   # 5x5 boundary subsampling
        assert a_rop == pytest.approx(target, rel=1e-2)  # province radius solved on a lattice + rasters


def test_border_city_sees_less_rop_than_central():
    c, p = _tables([(11, 1, 30.0, 110.0, 300.0), (12, 1, 30.40, 110.0, 300.0)])
    g = geo.build_city_geometries(c, p)
    near = {cid: geo.rasterise_city(g[cid])["rop_near"].sum() for cid in (11, 12)}
    assert near[12] < 0.8 * near[11]


def test_grid_nests_coarse_lattice():
    c, p = _tables([(11, 1, 30.0, 110.0, 300.0)])
    g = geo.build_city_geometries(c, p, city_resolution_m=1000.0, rop_resolution_m=5000.0)[11]
    fine = geo.city_grid(g)
    coarse = geo.coarse_grid(g, fine)
    assert fine.nx % 5 == 0 and fine.ny % 5 == 0
    # fine grid edges lie on coarse cell edges
    edge = fine.x_first - 500.0
    assert (edge - (coarse.x_first - 2500.0)) % 5000.0 == pytest.approx(0.0, abs=1e-6)
    assert fine.x_first - 500.0 <= -g.footprint.radius_m - g.margin_m


def test_polygon_footprint_and_geojson(tmp_path):
    ring = [[110.0, 30.0], [110.2, 30.0], [110.2, 30.2], [110.0, 30.2], [110.0, 30.0]]
    hole = [[110.05, 30.05], [110.15, 30.05], [110.15, 30.15], [110.05, 30.15], [110.05, 30.05]]
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"city_id": 11}, "geometry": {"type": "Polygon", "coordinates": [ring, hole]}}]}
    path = tmp_path / "fp.geojson"
    path.write_text(json.dumps(doc))
    fps = read_geojson_footprints(path)
    poly = fps[11]
    assert poly.contains(np.array([30.02, 30.1]), np.array([110.02, 110.1])).tolist() == [True, False]
    c, p = _tables([(11, 1, 30.1, 110.1, 100.0)])
    g = geo.build_city_geometries(c, p, footprints=fps)[11]
    a_city, _, _ = _areas(g)
    assert a_city == pytest.approx(poly.area_km2(), rel=1e-2)
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps({"type": "FeatureCollection", "features": [{"properties": {}, "geometry": {}}]}))
    with pytest.raises(InputError, match="no property 'city_id'"):
        read_geojson_footprints(bad)


def test_cities_exceeding_province_is_an_input_error():
    c, p = _tables([(11, 1, 30.0, 110.0, 9000.0)])
    with pytest.raises(InputError, match="exceed the province"):
        geo.build_city_geometries(c, p)


def test_default_resolutions_within_2_percent_of_all_fine_reference():
    """City-mean F_city and F_rop at the defaults (1 km city, 5 km ROP, pyramid kernels) vs a
    reference with everything at 500 m and exactly computed kernels over the whole province."""
    from engine.dispersion import climatology as clim
    from engine.dispersion import fields as fl
    from synthetic_nation import STAR

    met = clim.to_met_hours(clim.star_to_arrays(clim.read_star(STAR)))
    c, p = _tables([(11, 1, 30.0, 110.0, 250.0), (12, 1, 30.25, 110.15, 150.0)])
    p.loc[0, "area_km2"] = 3000.0
    res = {}
    for cid in (11, 12):
        g = geo.build_city_geometries(c, p)[cid]
        fine = geo.city_grid(g)
        plan = fl.kernel_plan({cid: g}, {cid: "m"})
        kf = fl.compute_kernel(plan[("m", "fine")], met, use_cache=False)
        kc = fl.compute_kernel(plan[("m", "coarse")], met, use_cache=False)
        cf = fl.compute_city_field(g, kf, kc)
        # reference: one 500 m grid over the whole province, all sources fine, exact kernel
        gr = geo.build_city_geometries(c, p, city_resolution_m=500.0, rop_resolution_m=500.0,
                                       city_margin_m=70000.0)[cid]
        fr = geo.city_grid(gr)
        city = geo.coverage_fraction(fr, gr.footprint, subsamples=5)
        rop = geo.coverage_fraction(fr, gr.rop, subsamples=5)
        n = max(fr.nx, fr.ny) - 1
        kr = fl.compute_kernel(fl.KernelSpec("ref", 500.0, n), met, use_cache=False, exact_half_width=n)
        ref_city = fl.same_convolution(kr, city)
        ref_rop = fl.same_convolution(kr, rop)
        w = city / city.sum()
        res[cid] = ((ref_city * w).sum(), (ref_rop * w).sum(), cf.mean_city, cf.mean_rop)
        assert rop[0].sum() + rop[-1].sum() + rop[:, 0].sum() + rop[:, -1].sum() == 0.0  # province inside
    for cid, (rc, rr, dc, dr) in res.items():
        assert dc == pytest.approx(rc, rel=0.02), cid
        assert dr == pytest.approx(rr, rel=0.02), cid
        assert dc + dr == pytest.approx(rc + rr, rel=0.02), cid


@pytest.mark.parametrize("lon0", [0.0, 73.5, 115.0, 134.9, -179.0])
@pytest.mark.parametrize("lat0", [-60.0, 0.0, 18.2, 38.0, 53.5])
def test_collinear_ring_is_zero_area_anywhere(lat0, lon0):
    # three vertices along one parallel, and along a sloped line: degenerate wherever they
    # lie (the absolute tolerance used to let the rounding residue of 115 E, 38 N through)
    for step in [(0.1, 0.0), (0.0, 0.1), (0.07, 0.03)]:
        ring = [[lon0 + k * step[0], lat0 + k * step[1]] for k in range(3)]
        with pytest.raises(ValueError, match="zero area"):
            _ring_array(ring)


def test_thin_but_real_ring_is_accepted():
    # 0.2 deg long, 1e-4 deg (about 11 m) wide at 38 N: a genuine sliver, not a line
    ring = [[115.0, 38.0], [115.2, 38.0], [115.2, 38.0001], [115.0, 38.0001]]
    assert _ring_array(ring).shape == (4, 2)


def test_disc_box_prefilter_changes_no_result(rng):
    # the latitude-longitude box only skips points that are surely outside: compare with the
    # plain haversine test everywhere, discs near the poles and across the 180th meridian included
    for lat0, lon0, radius in [(38.0, 115.0, 30e3), (0.0, 179.9, 400e3), (-75.0, -10.0, 900e3),
                               (88.0, 40.0, 500e3), (45.0, -179.99, 5e3), (20.0, 100.0, 3000e3)]:
        d = geo.Disc(lat0, lon0, radius)
        lat = np.clip(lat0 + rng.normal(0, 2 * radius / 111e3 + 0.1, 20000), -90, 90)
        lon = (lon0 + rng.normal(0, 4 * radius / 111e3 + 0.1, 20000) + 180) % 360 - 180
        hd = rng.uniform(0, 2000.0, lat.size)
        full = geo.great_circle_distance_m(lat0, lon0, lat, lon)
        assert np.array_equal(d.contains(lat, lon), full <= radius)
        ins, out = d.classify(lat, lon, hd)
        assert np.array_equal(ins, full + hd <= radius) and np.array_equal(out, full - hd >= radius)

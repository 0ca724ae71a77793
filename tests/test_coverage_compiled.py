"""kernels.coverage: compiled disc and rest-of-province rasters equal the NumPy path, cell for cell.

``geometry.coverage_fraction`` rasterises discs and regions of discs (a province disc less its
cities) with :func:`kernels.coverage.disc_coverage`; ``compiled=False`` keeps the NumPy path for
every shape. Both find a cell 1 or 0 when its half-diagonal clears every boundary and count its
``s x s`` sub-points otherwise; the compiled one first settles whole blocks of cells by the block's
half-diagonal. The rasters must be the same bits.
"""

import math

import numpy as np
import pytest

from engine.dispersion import geometry as geo
from kernels import coverage


def _grid(lat0, lon0, spacing, n, shift=(0.0, 0.0)):
    first = -0.5 * spacing * (n - 1)
    return geo.CityGrid(lat0, lon0, spacing, n, n, first + shift[0], first + shift[1])


def _same(grid, shape, mask=None, subsamples=5):
    ref = geo.coverage_fraction(grid, shape, subsamples=subsamples, mask=mask, compiled=False)
    got = geo.coverage_fraction(grid, shape, subsamples=subsamples, mask=mask)
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)
    return got


@pytest.mark.parametrize("lat0, lon0, radius, spacing, n", [
    (38.0, 115.0, 30e3, 1000.0, 90),        # a city on its fine grid
    (38.0, 115.0, 240e3, 10000.0, 60),      # a province on a coarse lattice: blocks of 80 km
    (0.3, 179.95, 40e3, 2000.0, 70),        # across the 180th meridian
    (-62.0, -10.0, 400e3, 15000.0, 80),     # far south, wide cells
    (89.6, 40.0, 80e3, 3000.0, 70),         # the cap holds the pole: no box test
    (30.0, 100.0, 1500.0, 1000.0, 40),      # smaller than a cell
])
def test_disc_equals_numpy_path(lat0, lon0, radius, spacing, n):
    grid = _grid(lat0, lon0, spacing, n, shift=(0.37 * spacing, -0.21 * spacing))
    got = _same(grid, geo.Disc(lat0, lon0, radius))
    assert got.max() > 0.0
    # the emitting area is the cap's to the sub-sampling's accuracy (boundary cells ~1/s^2)
    area = got.sum() * spacing**2
    cap = 2 * math.pi * geo.EARTH_RADIUS_M**2 * (1 - math.cos(radius / geo.EARTH_RADIUS_M))
    if radius > 10 * spacing:
        assert abs(area / cap - 1) < 0.01


def test_region_of_discs_equals_numpy_path_with_and_without_mask(rng):
    # a province disc less twenty cities, some cut by its edge, some overlapping each other
    lat0, lon0 = 36.0, 117.0
    prov = geo.Disc(lat0, lon0, 200e3)
    cities = []
    for _ in range(20):
        r = rng.uniform(0, 230e3)
        az = rng.uniform(0, 2 * math.pi)
        lat = lat0 + r * math.cos(az) / 111.2e3
        lon = lon0 + r * math.sin(az) / (111.2e3 * math.cos(math.radians(lat0)))
        cities.append(geo.Disc(lat, lon, rng.uniform(4e3, 35e3)))
    region = geo.Region(prov, tuple(cities))
    for spacing, n in ((5000.0, 100), (12000.0, 45), (1000.0, 120)):
        grid = _grid(lat0 + 0.4, lon0 - 0.3, spacing, n)
        _same(grid, region)
        mask = np.ones(grid.shape, dtype=bool)
        mask[n // 3:2 * n // 3, n // 4:n // 2] = False
        got = _same(grid, region, mask=mask)
        assert (got[~mask] == 0).all()
        _same(grid, region, subsamples=3)


def test_default_data_rasters_equal_numpy_path():
    # every raster of three cities of the shipped data set (their fine and coarse lattices, every
    # source of their province), as the receptor pass draws them
    from engine import pipeline as pl
    from engine.config import load_config

    prep = pl.prepare(load_config(None, overrides={"data": {"cities": "Hainan"}}))
    n = 0
    for cid in prep.selected[:3]:
        fine, coarse, block = prep.lattices[cid]
        outside = np.ones(coarse.shape, dtype=bool)
        j0, i0, nj, ni = block
        outside[j0:j0 + nj, i0:i0 + ni] = False
        shapes = [prep.geometries[cid].footprint] + [prep.sources[k].shape for k in prep.receptor_sources[cid]]
        for shape in shapes:
            _same(fine, shape)
            _same(coarse, shape, mask=outside)
            n += 2
    assert n >= 12


def test_polygons_keep_the_numpy_path():
    ring = np.array([[116.0, 39.0], [116.5, 39.0], [116.5, 39.4], [116.2, 39.2], [116.0, 39.4]])
    poly = geo.Polygon((ring,))
    assert geo._disc_shapes(poly) is None
    assert geo._disc_shapes(geo.Region(poly, (geo.Disc(39.1, 116.1, 3e3),))) is None
    grid = _grid(39.2, 116.25, 1000.0, 60)
    np.testing.assert_array_equal(geo.coverage_fraction(grid, poly),
                                  geo.coverage_fraction(grid, poly, compiled=False))


def test_block_classification_is_conservative():
    # the disc table's box must be padded for a whole block, or blocks near the rim are lost:
    # a table padded for single cells only drops cells that the sub-points find partly inside
    lat0, lon0, spacing, n = 38.0, 115.0, 10000.0, 50
    grid = _grid(lat0, lon0, spacing, n)
    disc = (lat0 + 0.9, lon0 - 0.7, 60e3)
    ref = geo.coverage_fraction(grid, geo.Disc(*disc), compiled=False)
    X, Y = np.meshgrid(grid.x, grid.y)
    cell_pad = 0.5 * math.sqrt(2.0) * spacing * 1.001 + 1e-6 * float(np.hypot(X, Y).max())
    out = np.empty(grid.shape)
    coverage.disc_coverage(grid.x, grid.y, lat0, lon0, spacing, coverage.disc_table([disc], cell_pad), 5,
                           np.ones(grid.shape, dtype=bool), out)
    assert (out * geo._cell_area_weight(X, Y) != ref).any()  # the bound this test guards is real
    block_pad = 0.5 * math.sqrt(2.0) * coverage.BLOCK * spacing * 1.001 + 1e-6 * float(np.hypot(X, Y).max()) + 1e-6
    coverage.disc_coverage(grid.x, grid.y, lat0, lon0, spacing, coverage.disc_table([disc], block_pad), 5,
                           np.ones(grid.shape, dtype=bool), out)
    np.testing.assert_array_equal(out * geo._cell_area_weight(X, Y), ref)

"""Transfer kernels from the symmetries of the square lattice, and the tables of distinct hours.

:func:`engine.dispersion.symmetry.square_kernel` evaluates one single-direction kernel per (hour
table, base direction in [0, 45] deg) and turns or mirrors it onto the other directions
(:func:`engine.dispersion.symmetry.lattice_symmetry`); :func:`engine.dispersion.area.hour_tables`
builds the ln g / ln sigma-y tables once per hour that differs in anything but its wind direction.
Both must give what the hour-by-hour computation gives: the tables bit for bit, the kernels to
round-off, for sector directions (a class climatology) and arbitrary ones alike.
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from engine.dispersion import area, symmetry
from engine.dispersion.met import read_aermet
from kernels import plume

DATA = Path(__file__).parent / "data" / "aermod"


@pytest.fixture(scope="module")
def met24():
    return read_aermet(DATA / "met" / "synth24.sfc", DATA / "met" / "synth24.pfl")


def _sectors(met, n_dir=16, seed=0):
    """Every hour of ``met`` in each of ``n_dir`` direction sectors, as a class climatology is
    laid out, with random weights; profiles dropped (directions then come from the hour)."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(len(met)), n_dir)
    m = met.select(rows)
    wd = np.tile(np.arange(n_dir) * (360.0 / n_dir), len(met))
    none = {f.name: None for f in dataclasses.fields(m) if f.name.startswith("profile_")}
    return dataclasses.replace(m, wind_from_deg=wd, weight=rng.uniform(0.5, 1.5, len(rows)), **none)


def _hour_by_hour(tables, w, spacing, n, flag=plume.LATERAL_CDF_EXACT):
    out = np.zeros((2 * n + 1, 2 * n + 1))
    plume.weighted_offset_kernel(spacing, spacing, spacing, spacing, n, n, w, *tables, out, flag)
    return out


def test_every_direction_is_a_lattice_symmetry_of_a_base_direction():
    rng = np.random.default_rng(3)
    theta = np.concatenate([np.arange(16) * 22.5, np.arange(36) * 10.0, rng.uniform(0, 360, 200),
                            [360.0, -22.5, 45.0, 89.999999]])
    base, turns, mirror = symmetry.lattice_symmetry(theta)
    assert ((base >= 0) & (base <= 45)).all()
    assert set(np.unique(turns)) <= {0, 1, 2, 3}
    # theta = 90 k + b, or 90 (k - 1) + 90 - b = 90 k - b for a mirrored one
    back = np.where(mirror, 90.0 * turns - base, 90.0 * turns + base)
    np.testing.assert_allclose(np.mod(back - theta + 180.0, 360.0) - 180.0, 0.0, atol=1e-9)
    # the 16 sectors of a class climatology reduce to 3 base directions (0, 22.5, 45)
    assert sorted(set(symmetry.lattice_symmetry(np.arange(16) * 22.5)[0])) == [0.0, 22.5, 45.0]


@pytest.mark.parametrize("theta", [0.0, 10.0, 22.5, 45.0, 67.5, 100.0, 157.5, 200.0, 292.5, 337.5, 359.0])
def test_turned_kernel_is_the_kernel_of_the_direction(met24, theta):
    """A single hour at ``theta``: its kernel computed directly equals the base direction's turned
    or mirrored (the sign conventions of _turn: x east, y north, wind *from* theta)."""
    lng, lnsy, _ = area.hour_tables(met24)
    h = 7  # a daytime hour
    n, sp = 6, 1000.0
    one = (lng[h:h + 1], lnsy[h:h + 1], np.array([theta]))
    direct = _hour_by_hour(one, np.ones(1), sp, n)
    assert direct.max() > 0
    b, k, m = symmetry.lattice_symmetry([theta])
    base = _hour_by_hour((lng[h:h + 1], lnsy[h:h + 1], b), np.ones(1), sp, n)
    turned = symmetry._turn(base, int(k[0]), bool(m[0]))
    np.testing.assert_allclose(turned, direct, rtol=0, atol=1e-10 * direct.max())
    # and not trivially: the kernel of another direction differs
    assert np.abs(symmetry._turn(base, (int(k[0]) + 1) % 4, bool(m[0])) - direct).max() > 1e-3 * direct.max()


@pytest.mark.parametrize("spacing,n", [(1000.0, 12), (5000.0, 8), (25000.0, 5)])
@pytest.mark.parametrize("lateral", [plume.LATERAL_CDF_EXACT, plume.LATERAL_CDF_AERMOD_TABLE])
def test_square_kernel_equals_the_hour_by_hour_sum(met24, spacing, n, lateral):
    """Exact CDF: by symmetry, to round-off; AERMOD's table: summed hour by hour (its ZBRENT
    crossings are not turned with the plume), so the same numbers."""
    met = _sectors(met24)
    tables = area.hour_tables(met)
    w = met.weight / met.weight.sum()
    ref = _hour_by_hour(tables, w, spacing, n, lateral)
    got = symmetry.square_kernel(tables, w, spacing, spacing, n, lateral_flag=lateral)
    assert ref.max() > 0
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * ref.max())


def test_square_kernel_with_arbitrary_directions_and_calms(met24):
    rng = np.random.default_rng(7)
    lng, lnsy, wd = area.hour_tables(met24)
    wd = rng.uniform(0.0, 360.0, len(wd))
    wd[[2, 5]] = np.nan  # calm / missing hours count 0
    w = rng.uniform(0.0, 1.0, len(wd))
    w[3] = 0.0
    ref = _hour_by_hour((lng, lnsy, wd), w, 1000.0, 10)
    got = symmetry.square_kernel((lng, lnsy, wd), w, 1000.0, 1000.0, 10)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * ref.max())


def test_square_kernel_evaluates_one_kernel_per_table_and_base_direction(met24, monkeypatch):
    """The saving itself: 24 tables x 16 sectors = 384 hours cost 24 x 3 single-direction kernels."""
    met = _sectors(met24)
    tables = area.hour_tables(met)
    seen, mirrored = [], []
    real = plume.offset_kernels_mirrored

    def counting(*a):
        seen.append(a[3].shape[0])  # the single-direction kernels (pairs) of this call
        mirrored.append(int((a[6] != plume.MIRROR_NONE).sum()))  # of which half are integrated
        return real(*a)

    monkeypatch.setattr(plume, "offset_kernels_mirrored", counting)
    symmetry.square_kernel(tables, met.weight, 1000.0, 1000.0, 4)
    n_tables = len(np.unique(np.concatenate([tables[0], tables[1]], axis=1), axis=0))
    assert sum(seen) == 3 * n_tables  # base directions 0, 22.5, 45
    assert sum(mirrored) == 2 * n_tables  # 0 and 45 are their own mirror images
    assert sum(seen) < len(met) / 5


def test_the_symmetry_plan_of_a_set_of_hours_is_found_once_for_every_level(met24, monkeypatch):
    """A kernel family evaluates one set of hours on several pyramid levels: the distinct tables and
    base directions are found once (memoised by the inputs' identity), and each level's kernel equals
    the one computed without the memo."""
    met = _sectors(met24)
    tables = area.hour_tables(met)
    calls = []
    real = symmetry._distinct_rows
    monkeypatch.setattr(symmetry, "_distinct_rows", lambda a: calls.append(1) or real(a))
    symmetry._PLANS.clear()
    got = [symmetry.square_kernel(tables, met.weight, sp, sp, 4) for sp in (1000.0, 5000.0, 25000.0)]
    assert len(calls) == 1
    for sp, k in zip((1000.0, 5000.0, 25000.0), got):
        symmetry._PLANS.clear()
        assert np.array_equal(k, symmetry.square_kernel(tables, met.weight, sp, sp, 4))
    w2 = met.weight.copy()  # the same values in another array: a new plan, not a stale one
    w2[0] *= 2.0
    symmetry.square_kernel(tables, w2, 1000.0, 1000.0, 4)
    assert len(calls) == 1 + 3 + 1  # the three recomputations above, then the new weights


def test_tables_of_distinct_hours_are_bit_identical(met24):
    """hour_tables builds each distinct hour once; every hour must get exactly the tables and the
    direction that building it alone gives (here with profiles: the direction is read from them)."""
    for met in (_sectors(met24), met24.select(np.repeat(np.arange(len(met24)), 3))):
        area._TABLE_CACHE.clear()
        got = area.hour_tables(met, 35.0, 2.0, 0.0, 1e6, 1.0)
        hours, prof = met.kernel_arrays()
        n = len(met)
        ref = (np.empty((n, plume.NX)), np.empty((n, plume.NX + 2)), np.empty(n))
        plume.build_hour_tables(hours, *prof, 35.0, 2.0, 0.0, 1e6, 1.0, *ref, plume.NX)
        for a, b in zip(got, ref):
            np.testing.assert_array_equal(a, b)

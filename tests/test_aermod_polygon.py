"""Concave polygons (issue 21): caseG through ``cobenefits aermod``, and properties of the
polygon integrals that hold without AERMOD.

``caseG_concave_city_polygon`` (EPA AERMOD v24142, unmodified control file): a 22-vertex
concave AREAPOLY city (a thin arm, an inlet, 7 re-entrant corners), five AREACIRC, a rotated
AREA, receptors on vertices and edges and on flagpoles, LOVETT met. The chord integral
(:func:`kernels.plume.polygon_concentration`) is exact to its Kronrod tolerance, but AERMOD
integrates side by side with a 1 % Romberg rule, and on this outline its own quadrature error
reaches 3.5 % at PERIOD; the AERMOD mode therefore integrates as AERMOD does
(:mod:`kernels.areain`).
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_aermod_elevated import _LazyRuns, check_hourly, check_period

CASE = "caseG_concave_city_polygon"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return _LazyRuns(tmp_path_factory)


def test_caseG_period_every_group(runs):
    """ALL, POLY, CIRC and REST: >= 99 % of receptors above 1 % of the maximum within 2 %,
    none beyond 5 %, AERMOD's zeros are zeros. Measured: 100 % in every group; max 0.12 %
    (POLY), 0.16 % (CIRC), 1.09 % (REST), 0.17 % (ALL). With the chord integral (before issue
    21) POLY was 97.05 % (max 3.53 %) and ALL 98.3 %."""
    rc, out = runs[CASE]
    assert rc == 0
    check_period(CASE, out)


def test_caseG_hourly_and_zeros(runs):
    """>= 97 % of receptor-hours within 2 % (measured 99.90 %; 90.6 % before issue 21) and
    every AERMOD zero reproduced (12 were not before)."""
    rc, out = runs[CASE]
    assert rc == 0
    check_hourly(CASE, out)


def test_caseG_summary_listing(runs):
    """The PERIOD top ten per group and the highest 1-hour values of AERMOD's listing:
    same groups, ranks and values within 2 % / 5 %."""
    from engine.aermod.control import read_summary_values

    rc, out = runs[CASE]
    assert rc == 0
    from test_aermod_elevated import DATA

    theirs = read_summary_values(DATA / CASE / "aermod_summary.out")
    mine = read_summary_values(out / "listing.out")
    assert [r[:3] for r in mine] == [r[:3] for r in theirs]
    for m, t in zip(mine, theirs):
        assert abs(m[3] / t[3] - 1.0) <= (0.02 if t[1] == "PERIOD" else 0.05), (m, t)


# --------------------------------------------------------------------------- properties
@pytest.fixture(scope="module")
def tables():
    from engine.dispersion.area import hour_tables
    from engine.dispersion.met import read_aermet
    from test_aermod_elevated import DATA

    met = read_aermet(DATA / "met" / "lovett1988_0627_0701.sfc",
                      DATA / "met" / "lovett1988_0627_0701.pfl")
    lng, lnsy, wd = hour_tables(met)
    hours = [h for h in range(len(wd)) if np.isfinite(wd[h])]
    return lng, lnsy, wd, hours


def _star(seed, n):
    """A random star-shaped (in general concave) polygon about the origin [m]."""
    rng = np.random.default_rng(seed)
    a = np.sort(rng.uniform(0.0, 2.0 * np.pi, n))
    r = rng.uniform(300.0, 3000.0, n)
    return r * np.sin(a), r * np.cos(a)


def _conc(kind, x, y, rx, ry, wind_deg, lng, lnsy):
    from engine.dispersion.area import polygon_area_centroid
    from kernels import areain, plume

    _, cx, cy = polygon_area_centroid(x, y)
    w = math.radians(wind_deg)
    args = (x - rx, y - ry, cx - rx, cy - ry, math.sin(w), math.cos(w), lng, lnsy)
    if kind == "aermod":
        return areain.polygon_concentration_aermod(*args)
    stack = np.empty((2, plume.MAX_STACK))
    return plume.polygon_concentration(*args, stack, plume.LATERAL_CDF_EXACT)


PROP = settings(max_examples=15, deadline=None)


@PROP
@given(seed=st.integers(0, 10_000), n=st.integers(5, 18), hsel=st.integers(0, 10_000),
       rx=st.floats(-6000.0, 6000.0), ry=st.floats(-6000.0, 6000.0),
       turn=st.floats(-180.0, 180.0), dx=st.floats(-5e4, 5e4), dy=st.floats(-5e4, 5e4))
def test_rotation_and_translation_invariance(tables, seed, n, hsel, rx, ry, turn, dx, dy):
    """Rotating the polygon, the receptor and the wind together about any point, and
    translating them, leaves the value unchanged (the integrals see only the receptor-source
    geometry in wind coordinates): to 1e-9 relative (1e-12 of the value scale where the value
    is 0), for AERMOD's side-by-side integral and for the chord integral."""
    lng, lnsy, wd, hours = tables
    h = hours[hsel % len(hours)]
    x, y = _star(seed, n)
    t = math.radians(turn)
    c, s = math.cos(t), math.sin(t)

    def move(px, py):  # clockwise rotation by `turn` (as a wind direction turns), then shift
        return px * c + py * s + dx, -px * s + py * c + dy

    x2, y2 = move(x, y)
    rx2, ry2 = move(rx, ry)
    for kind in ("aermod", "chord"):
        a = _conc(kind, x, y, rx, ry, wd[h], lng[h], lnsy[h])
        b = _conc(kind, x2, y2, rx2, ry2, wd[h] + turn, lng[h], lnsy[h])
        assert b == pytest.approx(a, rel=1e-9, abs=1e-12 * max(a, 1.0)), kind


@PROP
@given(seed=st.integers(0, 10_000), n=st.integers(6, 16), ksel=st.integers(0, 100),
       hsel=st.integers(0, 10_000))
def test_chord_integral_additivity(tables, seed, n, ksel, hsel):
    """A concave polygon cut into two (a fan from an interior point): the two halves sum to
    the whole, at receptors outside it. The chord integral is exact up to its adaptive
    quadrature (relative tolerance 1e-5 per piece): measured within 3e-6 of the hour's peak
    and 1.4e-5 relative above 1 % of it, not the 1e-9 of round-off; tested at 1e-4 (where AERMOD's own lateral cutoff, which is not additive, leaves a
    piece at 0 the peak-relative bound still holds). AERMOD's side-by-side integral is additive
    only to its 1 % Romberg tolerance per side (measured 0.6 %), which is why it is not the
    national path."""
    lng, lnsy, wd, hours = tables
    h = hours[hsel % len(hours)]
    x, y = _star(seed, n)
    k = 2 + ksel % (n - 3)
    xa, ya = np.r_[0.0, x[:k + 1]], np.r_[0.0, y[:k + 1]]
    xb, yb = np.r_[0.0, x[k:], x[0]], np.r_[0.0, y[k:], y[0]]
    rng = np.random.default_rng(seed + 1)
    rec = rng.uniform(-6000.0, 6000.0, (16, 2))
    # receptors outside the source: inside, the near-receptor peak of the integrand (u -> 1.01
    # m) is resolved to 2e-3 only (measured), in the whole as in the halves
    rec = rec[~_point_in_polygon(rec[:, 0], rec[:, 1], x, y)][:8]
    whole = np.array([_conc("chord", x, y, px, py, wd[h], lng[h], lnsy[h]) for px, py in rec])
    parts = np.array([_conc("chord", xa, ya, px, py, wd[h], lng[h], lnsy[h])
                      + _conc("chord", xb, yb, px, py, wd[h], lng[h], lnsy[h]) for px, py in rec])
    peak = _conc("chord", x, y, 0.0, 0.0, wd[h], lng[h], lnsy[h])  # a receptor inside
    scale = max(peak, whole.max(), 1e-300)
    assert np.all(np.abs(parts - whole) <= 1e-4 * scale), (parts, whole)


@pytest.mark.parametrize("hsel", [0, 7, 23, 41, 66])
def test_quadratures_converge_to_the_area_integral(tables, hsel):
    """The chord integral against a brute-force 2-D midpoint sum of the same integrand
    (F_z/U_eff from the hour table times the exact normal density across the wind) over a
    concave polygon, on a 10 m grid, for receptors 3-8 km downwind: agree to 1e-3; AERMOD's
    side-by-side integral meets them within its 1 % Romberg tolerance (2 %)."""
    from kernels import plume

    lng, lnsy, wd, hours = tables
    h = hours[hsel % len(hours)]
    x, y = _star(3, 9)
    x, y = 0.3 * x, 0.3 * y  # about 1 km across
    w = math.radians(wd[h])
    up = np.array([math.sin(w), math.cos(w)])  # towards where the wind comes from
    cross = np.array([math.cos(w), -math.sin(w)])
    # midpoint grid over the polygon, in its own frame
    g = np.arange(-1000.0, 1000.0, 10.0) + 5.0
    gx, gy = np.meshgrid(g, g)
    gx, gy = gx.ravel(), gy.ravel()
    inside = _point_in_polygon(gx, gy, x, y)
    gx, gy = gx[inside], gy[inside]
    for dist, off in ((3000.0, 0.0), (5000.0, 150.0), (8000.0, -300.0)):
        rx, ry = -dist * up + off * cross
        u = (gx - rx) * up[0] + (gy - ry) * up[1]
        v = (gx - rx) * cross[0] + (gy - ry) * cross[1]
        g_u = np.exp([plume.table_lookup(lng[h], uu) for uu in u])
        sy = np.exp([plume.table_lookup(lnsy[h], uu) for uu in u])
        brute = 1e6 * np.sum(g_u * np.exp(-0.5 * (v / sy) ** 2) / (math.sqrt(2 * math.pi) * sy)) * 100.0
        chord = _conc("chord", x, y, rx, ry, wd[h], lng[h], lnsy[h])
        aermod = _conc("aermod", x, y, rx, ry, wd[h], lng[h], lnsy[h])
        assert chord == pytest.approx(brute, rel=1e-3)
        assert aermod == pytest.approx(chord, rel=2e-2)


def _point_in_polygon(px, py, x, y):
    """Even-odd rule, vectorised over the points."""
    inside = np.zeros(px.shape, dtype=bool)
    n = x.size
    for i in range(n):
        x1, y1, x2, y2 = x[i], y[i], x[(i + 1) % n], y[(i + 1) % n]
        crosses = (y1 > py) != (y2 > py)
        xc = x1 + (py - y1) * (x2 - x1) / np.where(y2 != y1, y2 - y1, 1.0)
        inside ^= crosses & (px < xc)
    return inside

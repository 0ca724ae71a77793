"""AERMOD's exact zeros of an area source that reaches AREAIN (kernels/plume.py ``_outside_plume``).

Hand-built hour tables make the geometry exact: sigma_y = 0.05 u (ln sigma_y linear in ln u, so
the table's interpolation is exact) and g(u) = 1. With the wind from 270 deg (sin = -1,
cos = 0 exactly) a point (dx, dy) from the receptor lies u = -dx upwind and v = dy crosswind.
"""

import math

import numpy as np
import pytest

from kernels import plume

SY_RATIO = 0.05  # sigma_y / u


def _tables():
    x = np.exp(plume.LN_X_MIN + plume.DLNX * np.arange(plume.NX))
    lng = np.zeros(plume.NX)
    lnsy = np.empty(plume.NX + 2)
    lnsy[:plume.NX] = np.log(SY_RATIO * x)
    # METINI's sigma-y coefficients for the lateral cutoff: sigma_y = a u / (1 + b u)^0.3
    lnsy[plume.NX] = SY_RATIO
    lnsy[plume.NX + 1] = 0.0
    return lng, lnsy


def _cell(v_near, cdf):
    """The 200 m x 200 m cell 800..1000 m upwind and v_near..v_near + 200 m crosswind."""
    lng, lnsy = _tables()
    stack = np.empty((2, plume.MAX_STACK))
    return plume.cell_concentration(-900.0, v_near + 100.0, 1.0, 0.0, 100.0, 100.0, -1.0, 0.0,
                                    lng, lnsy, stack, cdf)


def test_zbrent_returns_the_vertex_within_its_tolerance():
    """Hand trace of pitarea.f ZBRENT on the side u 1000 -> 800 m, v = 194.935 -> 200 m
    (v / sigma_y = 3.8987 -> 5.0; the +3.9 crossing at u = 999.67 m, 0.33 m from the first
    vertex). Step 1: the secant step (-0.33 m) is shorter than tol1 = 2e-3 * 1000 + 5e-4 =
    2.0005 m, so b moves by tol1 to 997.9995 m, beyond the root; step 2: the bracket
    (997.9995, 1000) has half-width 1.00025 <= tol1, and the end with the smaller |f|, the
    vertex u = 1000, is returned."""
    _, lnsy = _tables()
    v1, v2 = 3.8987 * SY_RATIO * 1000.0, 200.0
    vn1, vn2 = v1 / (SY_RATIO * 1000.0), v2 / (SY_RATIO * 800.0)
    assert plume._zbrent(1, 1000.0, 800.0, vn1, vn2, v1, v2, lnsy) == 1000.0
    # the same side walked the other way (AERMOD's order decides the direction): also the vertex
    assert plume._zbrent(1, 800.0, 1000.0, vn2, vn1, v2, v1, lnsy) == 1000.0


def test_zbrent_far_root_within_tolerance():
    """A crossing far from both vertices: ZBRENT stops within its tolerance of the root."""
    _, lnsy = _tables()
    v1, v2 = 150.0, 250.0  # v / sigma_y = 3.0 at u = 1000, 6.25 at u = 800
    root = 0.0
    # the root of (v1 + (u - 1000) (v2 - v1) / (800 - 1000)) / (0.05 u) = 3.9, solved by hand:
    # 150 - 0.5 (u - 1000) = 0.195 u  ->  u = 650 / 0.695
    root = 650.0 / 0.695
    u = plume._zbrent(1, 1000.0, 800.0, 3.0, 6.25, v1, v2, lnsy)
    assert abs(u - root) <= 2e-3 * root + 5e-4
    assert plume._zbrent(1, 1000.0, 800.0, 3.0, 3.5, v1, 175.0, lnsy) == -1.0  # no bracket


def test_sliver_within_zbrent_tolerance_is_an_exact_zero():
    """A cell whose nearest vertex lies just inside +3.9 sigma_y (3.8987), within ZBRENT's
    tolerance of the crossing: AERMOD integrates nothing (PSIDE's in-plume stretch is empty,
    the +3.9 segments of PSIDE2 cancel), so the AERMOD-table path gives exactly 0. The exact
    normal CDF (the national run's) keeps the tail beyond 3.9 sigma_y that AERMOD's table
    cuts (Phi(-3.9) = 4.8e-5): > 0 and < 1e-4 of the same cell on the plume axis."""
    on_axis = _cell(-100.0, plume.LATERAL_CDF_EXACT)
    v_near = 3.8987 * SY_RATIO * 1000.0
    assert _cell(v_near, plume.LATERAL_CDF_AERMOD_TABLE) == 0.0
    exact = _cell(v_near, plume.LATERAL_CDF_EXACT)
    assert 0.0 < exact < 1e-4 * on_axis
    # mirrored about the plume axis (the -3.9 side): the same exact zero
    lng, lnsy = _tables()
    stack = np.empty((2, plume.MAX_STACK))
    assert plume.cell_concentration(-900.0, -v_near - 100.0, 1.0, 0.0, 100.0, 100.0, -1.0, 0.0,
                                    lng, lnsy, stack, plume.LATERAL_CDF_AERMOD_TABLE) == 0.0


@pytest.mark.parametrize("vn_near", [3.85, 3.5, 2.0])
def test_vertex_well_inside_the_plume_edge_is_not_zeroed(vn_near):
    """Further inside (3.85, 3.5, 2 sigma_y: the crossing is >= 13 m from the vertex, beyond
    ZBRENT's 2 m tolerance) AERMOD integrates the stretch, and so do we: both paths > 0 and
    the table path within 1 % of the exact CDF where the cell holds > 1e-3 of its mass."""
    v_near = vn_near * SY_RATIO * 1000.0
    table = _cell(v_near, plume.LATERAL_CDF_AERMOD_TABLE)
    exact = _cell(v_near, plume.LATERAL_CDF_EXACT)
    assert table > 0.0 and exact > 0.0
    if exact > 1e-3 * _cell(-100.0, plume.LATERAL_CDF_EXACT):
        assert table == pytest.approx(exact, rel=0.01)


def test_polygon_path_applies_the_same_rule():
    """AREAPOLY through polygon_concentration: the same sliver gives 0 (vertices in AERMOD's
    order, here clockwise from the corner nearest the axis), as the cell does."""
    lng, lnsy = _tables()
    stack = np.empty((2, plume.MAX_STACK))
    v_near = 3.8987 * SY_RATIO * 1000.0
    # (dx, dy) = (-u, v): u 1000 -> 1000 -> 800 -> 800
    vx = np.array([-1000.0, -1000.0, -800.0, -800.0])
    vy = np.array([v_near, v_near + 200.0, v_near + 200.0, v_near])
    c = plume.polygon_concentration(vx, vy, -900.0, v_near + 100.0, -1.0, 0.0, lng, lnsy, stack,
                                    plume.LATERAL_CDF_AERMOD_TABLE)
    assert c == 0.0
    assert math.isfinite(c)

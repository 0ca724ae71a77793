"""AERMOD's mixed-layer means for XMIXED (metext.f ZIAVER) against hand derivations."""

import numpy as np
import pytest

from kernels import plume


def test_ziaver_linear_profile_is_exact_from_the_ground():
    """For p(z) = 3 + 0.5 z the mean over [0, zi] is 3 + 0.25 zi (hand integral), for zi on
    and between grid levels; ANYAVG (``_layer_average``) starts at 0.5 m and gives
    3 + 0.25 (zi + 0.5) instead, so the two must differ by 0.125 exactly."""
    prof = 3.0 + 0.5 * plume.GRID_HEIGHTS
    for zi in (14.0, 37.3, 678.0, 1999.0, 4000.0):
        assert plume._ziaver(prof, zi) == pytest.approx(3.0 + 0.25 * zi, rel=1e-13)
        assert plume._layer_average(prof, 0.0, zi) - plume._ziaver(prof, zi) == pytest.approx(
            0.125, rel=1e-9)


def test_ziaver_kinked_profile():
    """Piecewise-linear with a kink inside the layer: p = z up to 20 m, then 20 (constant).
    Mean over [0, 50 m] = (20^2 / 2 + 20 * 30) / 50 = 16 (hand integral)."""
    prof = np.minimum(plume.GRID_HEIGHTS, 20.0)
    assert plume._ziaver(prof, 50.0) == pytest.approx(16.0, rel=1e-13)

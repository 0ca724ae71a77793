"""The per-hour x-tables of the plume kernels and the lateral CDFs.

``ln g(x)`` and ``ln sigma_y(x)`` on a logarithmic x grid (``PTS_PER_DECADE`` points per
decade from ``X_MIN``), their interpolation, the exact normal CDF and AERMOD's 4-decimal table
(pitarea.f PWIDTH GA), and the spread order of the parallel loops. Part of the plume kernels
(:mod:`kernels.plume`).
"""

import math

import numpy as np
from numba import njit

from kernels import FASTMATH
from kernels.profiles import INV_SQRT2

_JIT = dict(nogil=True, cache=True, fastmath=FASTMATH)


#: table of ln g and ln sigma-y on x = X_MIN * 10**(k / PTS_PER_DECADE)
X_MIN = 1.0
X_MAX = 4.0e6
PTS_PER_DECADE = 160
NX = int(math.ceil(math.log10(X_MAX / X_MIN) * PTS_PER_DECADE)) + 1
DLNX = math.log(10.0) / PTS_PER_DECADE
LN_X_MIN = math.log(X_MIN)
LN_FLOOR = -700.0            # ln of "zero" (exp underflows to 0)

#: lateral (crosswind) CDF choices, passed to the kernels as an int flag
LATERAL_CDF_EXACT = 0          # exact normal CDF via erfc
LATERAL_CDF_AERMOD_TABLE = 1   # AERMOD's 4-decimal table GA(79), linear interpolation
GA_STEP = 0.1                  # table step [sigma-y] (AERMOD PWIDTH)
GA_LIMIT = 3.9                 # table range +-3.9 sigma-y; 0 / 1 beyond
#: lower half of AERMOD's GA table: round(Phi(s), 4) at s = -3.9, -3.8, ..., 0.0 (40 values).
#: Computed here from the normal CDF; the upper half follows from Phi(-s) = 1 - Phi(s), which
#: makes the tabulated CDF exactly antisymmetric (plume symmetric about its axis).
GA_LOWER = np.array([round(0.5 * math.erfc((GA_LIMIT - GA_STEP * k) / math.sqrt(2.0)), 4)
                     for k in range(40)], dtype=np.float64)
GA_LOWER[39] = 0.5
#: Crossings of v / sigma_y = +-GA_LIMIT searched on this many ln-u intervals per piece


@njit(**_JIT)
def table_lookup(tab, x):
    """Linear interpolation of a ln-table at distance x [m] (linear in ln x)."""
    s = math.log(x / X_MIN) / DLNX
    if s <= 0.0:
        return tab[0]
    i = int(s)
    if i >= NX - 1:
        i = NX - 2
    f = s - i
    return tab[i] + f * (tab[i + 1] - tab[i])


@njit(**_JIT)
def _chord_fraction(vlo, vhi, sy):
    """Phi(vhi/sy) - Phi(vlo/sy), computed without cancellation."""
    a = vlo / sy * INV_SQRT2
    b = vhi / sy * INV_SQRT2
    if a >= 0.0:
        r = 0.5 * (math.erfc(a) - math.erfc(b))
    elif b <= 0.0:
        r = 0.5 * (math.erfc(-b) - math.erfc(-a))
    else:
        r = 1.0 - 0.5 * math.erfc(-a) - 0.5 * math.erfc(b)
    return r if r > 0.0 else 0.0


@njit(**_JIT)
def _ga_lower(s):
    """AERMOD's tabulated normal CDF for s <= 0: linear interpolation in GA, 0 below -3.9."""
    if s <= -GA_LIMIT:
        return 0.0
    z = (s + GA_LIMIT) / GA_STEP
    j = int(z)
    if j >= 39:
        return 0.5
    f = z - j
    return GA_LOWER[j] + f * (GA_LOWER[j + 1] - GA_LOWER[j])


@njit(**_JIT)
def _chord_fraction_table(vlo, vhi, sy):
    """P(vhi/sy) - P(vlo/sy) with AERMOD's tabulated CDF P (PWIDTH), from the lower tail.

    Uses P(s) = 1 - P(-s) so that only lower-tail values are differenced (no cancellation,
    exact mirror symmetry). Beyond +-3.9 sigma P is 0 or 1: the part of a side outside the
    plume contributes nothing and the part inside contributes 1 (AERMOD PSIDE2 segments).
    """
    a = vlo / sy
    b = vhi / sy
    if a >= 0.0:
        r = _ga_lower(-a) - _ga_lower(-b)
    elif b <= 0.0:
        r = _ga_lower(b) - _ga_lower(a)
    else:
        r = 1.0 - _ga_lower(a) - _ga_lower(-b)
    return r if r > 0.0 else 0.0


@njit(**_JIT)
def _table_position(t):
    """Index i and fraction f of t = ln(x) in the hour tables (ln-spaced, clamped to the ends)."""
    z = (t - LN_X_MIN) / DLNX
    if z <= 0.0:
        return 0, 0.0
    i = int(z)
    if i >= NX - 1:
        i = NX - 2
    return i, z - i


@njit(**_JIT)
def _spread_step(n):
    """A step p coprime to n near 0.618 n: ``k -> (k p) % n`` visits 0..n-1 once each.

    numba splits a ``prange`` into one contiguous block of iterations per thread; a loop
    over ``k`` that works on item ``(k p) % n`` gives every block items from all over the
    range (golden-ratio spacing). The parallel loops below use it for their outer index
    (kernel rows, receptors, hours), whose costs change smoothly with the index, so that a
    costly half (the downwind rows of a prevailing wind, the receptors near a source) is
    shared by the threads instead of landing on one. Results do not depend on the order.
    """
    if n <= 2:
        return 1
    p = max(1, int(0.6180339887498949 * n))
    while True:
        a = p
        b = n
        while b:
            a, b = b, a % b
        if a == 1:
            return p
        p += 1

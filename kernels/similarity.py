"""Monin-Obukhov similarity functions of the surface layer, each written once.

``psi_m`` is the stability correction of the log wind profile that AERMOD and AERMET use
(AERMOD formulation document, Cimorelli et al. 2004, EPA-454/R-03-004, eqs. 2-3 and 9;
AERMOD windgrid.f UNSTU/STBLU, AERMET UCALCO):

.. math::
    \\psi_m(\\zeta) = 2\\ln\\frac{1 + x}{2} + \\ln\\frac{1 + x^2}{2} - 2\\arctan x + \\frac{\\pi}{2},
    \\quad x = (1 - 16\\zeta)^{1/4} \\qquad (\\zeta < 0;\\ \\text{Businger-Dyer, Paulson 1970})

    \\psi_m(\\zeta) = -17\\,(1 - e^{-0.29\\zeta}) \\qquad (\\zeta \\ge 0;\\ \\text{van Ulden \\& Holtslag 1985})

with :math:`\\zeta = z/L`; the wind profile is
:math:`u(z) = (u_*/k)\\,[\\ln(z/z_0) - \\psi_m(z/L) + \\psi_m(z_0/L)]`.

Each branch is one plain numpy expression (``*_np``: evaluates elementwise on arrays, for the
engine's vectorised met code) compiled as it stands into the numba scalar function of the same
name without the suffix. The numba functions are inlined at numba-IR level (``inline="always"``)
and carry no fastmath of their own, so a kernel evaluates them under its own flags and a Python
caller gets exactly the value of the ``math`` expression.
"""

import numpy as np
from numba import njit

__all__ = ["psi_m", "psi_m_unstable", "psi_m_stable", "psi_m_unstable_np", "psi_m_stable_np"]

_INLINE = dict(inline="always", nogil=True, cache=True)


def psi_m_unstable_np(zeta):
    """psi_m [1] for zeta = z/L < 0 [1] (Businger-Dyer, Paulson 1970 integral form); arrays or scalars."""
    x = (1.0 - 16.0 * zeta) ** 0.25
    return 2.0 * np.log((1.0 + x) / 2.0) + np.log((1.0 + x * x) / 2.0) - 2.0 * np.arctan(x) + np.pi / 2.0


def psi_m_stable_np(zeta):
    """psi_m [1] for zeta = z/L >= 0 [1] (van Ulden & Holtslag 1985); arrays or scalars."""
    return -17.0 * (1.0 - np.exp(-0.29 * zeta))


psi_m_unstable = njit(**_INLINE)(psi_m_unstable_np)
psi_m_stable = njit(**_INLINE)(psi_m_stable_np)


@njit(**_INLINE)
def psi_m(zeta):
    """Stability function for momentum psi_m(zeta) [1] of zeta = z/L [1] (NaN in, NaN out)."""
    if zeta < 0.0:
        return psi_m_unstable(zeta)
    return psi_m_stable(zeta)

"""Physical constants and shared names, each defined once, with units and sources.

Every module takes these from here (house style: one ``g``, one ``kappa``; never a second
value under another name).

=====================  ==================  ===============================================
name                   value [unit]        source
=====================  ==================  ===============================================
``GRAVITY``            9.80616 [m s-2]     EPA AERMOD v24142 ``MODULES.f`` (``G = 9.80616``),
                                           the value AERMOD's plume and AERMET's boundary-
                                           layer formulas use
``VON_KARMAN``         0.4 [1]             AERMOD/AERMET (``VONKAR = 0.4``)
``SECONDS_PER_YEAR``   31 557 600 [s]      Julian year (IAU): converts g m-2 yr-1 to g m-2 s-1
``MEGACITY_POPULATION`` 10 000 000 [people] the paper's megacity threshold (Ramaswami et al.
                                           2017, Fig. 4 discussion)
=====================  ==================  ===============================================
"""

from __future__ import annotations

__all__ = [
    "GRAVITY",
    "VON_KARMAN",
    "SECONDS_PER_YEAR",
    "MEGACITY_POPULATION",
    "PM25_STANDARD_NAME",
    "PM25_UNITS",
    "SR_UNITS",
    "CRF_NAMES",
    "SOURCE_SETS",
    "per_year_to_per_second",
]

# g and the von Karman constant live in kernels.constants (the kernels may not import engine)
from kernels.constants import GRAVITY, VON_KARMAN  # noqa: E402
#: Julian year [s]
SECONDS_PER_YEAR = 31_557_600.0
#: population above which a city is a megacity [people]
MEGACITY_POPULATION = 10_000_000

#: CF standard name of the concentration variables
PM25_STANDARD_NAME = "mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air"
#: units of concentrations (UDUNITS)
PM25_UNITS = "ug m-3"
#: units of the source-receptor matrix: concentration per unit area-emission intensity
SR_UNITS = "ug m-3 (g m-2 s-1)-1"

#: concentration-response function families the health stage knows
CRF_NAMES = ("ier2010", "gemm_ncd_lri", "gemm_5cod", "loglinear_krewski2009", "user")

#: ``[dispersion] source_set`` choices: which sources a receptor city sees
SOURCE_SETS = ("own", "province", "nation")


def per_year_to_per_second(value):
    """Convert an intensity per year to per second: ``value / SECONDS_PER_YEAR``.

    Parameters
    ----------
    value : float or array-like [x yr-1]

    Returns
    -------
    float or ndarray [x s-1]
    """
    return value / SECONDS_PER_YEAR

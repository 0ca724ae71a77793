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
``SVMIN_M_S``          0.2 [m s-1]         AERMOD ``MODULES.f`` ``SVMIN``: lower limit on sigma-v
``SWMIN_M_S``          0.02 [m s-1]        AERMOD ``MODULES.f`` ``SWMIN``: lower limit on sigma-w
``MAX_MIXING_HEIGHT_M`` 4000 [m]           upper limit on the mixing heights: AERMOD
                                           ``SET_METDATA`` and AERMET ``MPPBL`` (``SBLMAX``)
``URBAN_ROUGHNESS_M``  1.0 [m]             AERMOD's default urban roughness length
                                           (user's guide, ``URBANOPT`` ``URBROUGH``)
=====================  ==================  ===============================================
"""

from __future__ import annotations

__all__ = [
    "GRAVITY",
    "VON_KARMAN",
    "SECONDS_PER_YEAR",
    "MEGACITY_POPULATION",
    "SVMIN_M_S",
    "SWMIN_M_S",
    "MAX_MIXING_HEIGHT_M",
    "URBAN_ROUGHNESS_M",
    "PM25_STANDARD_NAME",
    "PM25_UNITS",
    "SR_UNITS",
    "CRF_NAMES",
    "SOURCE_SETS",
    "per_year_to_per_second",
]

# g and the von Karman constant live in kernels.constants (the kernels may not import engine)
from kernels.constants import GRAVITY, SVMIN_M_S, SWMIN_M_S, VON_KARMAN  # noqa: E402
#: Julian year [s]
SECONDS_PER_YEAR = 31_557_600.0
#: population above which a city is a megacity [people]
MEGACITY_POPULATION = 10_000_000
#: upper limit on the convective and mechanical mixing heights [m] (AERMOD SET_METDATA; AERMET
#: MPPBL SBLMAX)
MAX_MIXING_HEIGHT_M = 4000.0
#: urban roughness length [m]: AERMOD's URBANOPT default (URBROUGH = 1 m), used by the urban
#: kernels and as the roughness of the Golder and STAR climatologies
URBAN_ROUGHNESS_M = 1.0

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

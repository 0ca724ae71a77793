"""Physical constants used inside the numba kernels, each defined once.

``engine.constants`` re-exports them (kernels never import ``engine``; the engine imports these),
so there is one value of g and one of the von Karman constant in the whole project.
"""

#: gravitational acceleration [m s-2] (EPA AERMOD v24142 MODULES.f, ``G = 9.80616``)
GRAVITY = 9.80616
#: von Karman constant [1] (AERMOD/AERMET ``VONKAR``)
VON_KARMAN = 0.4
#: AERMOD's lower limits on the lateral and vertical turbulence sigma-v, sigma-w [m s-1]
#: (EPA AERMOD v24142 MODULES.f ``SVMIN = 0.2``, ``SWMIN = 0.02``)
SVMIN_M_S = 0.2
SWMIN_M_S = 0.02
#: mean Earth radius R1 of the IUGG [m] (Moritz 2000, Geodetic Reference System 1980): the sphere of
#: every city frame (engine.dispersion.sphere) and of the compiled rasters (kernels.coverage)
EARTH_RADIUS_M = 6_371_008.8

"""Physical constants used inside the numba kernels, each defined once.

``engine.constants`` re-exports them (kernels never import ``engine``; the engine imports these),
so there is one value of g and one of the von Karman constant in the whole project.
"""

#: gravitational acceleration [m s-2] (EPA AERMOD v24142 MODULES.f, ``G = 9.80616``)
GRAVITY = 9.80616
#: von Karman constant [1] (AERMOD/AERMET ``VONKAR``)
VON_KARMAN = 0.4

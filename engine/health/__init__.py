"""Health: concentration-response functions, baseline rates and population, attributable and
avoided deaths with uncertainty over draws.

May import: :mod:`engine.output`, :mod:`engine.data`, :mod:`engine.config`, the floor modules and
:mod:`kernels`; never carbon or dispersion.
"""

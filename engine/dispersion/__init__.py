"""Dispersion: from area-emission intensities to primary PM2.5 concentration fields.

Owns: met (hourly files :mod:`.met`; climatologies and seasons, the package :mod:`.climatology`),
city and province geometry (:mod:`.geometry` over the sphere of :mod:`.sphere`; population grids
:mod:`.population`), the AERMOD area-source transfer functions (:mod:`.area`, over
:mod:`kernels.plume`), the gridded fields (:mod:`.fields`) and the source-receptor matrix
(:mod:`.srmatrix`).
May import: :mod:`engine.output`, :mod:`engine.data`, :mod:`engine.config`, the floor modules and
:mod:`kernels`; never carbon, health or anything above.
"""

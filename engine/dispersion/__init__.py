"""Dispersion: from area-emission intensities to primary PM2.5 concentration fields.

Owns: met (hourly files, climatologies, seasons), city and province geometry, the AERMOD area-
source transfer functions (:mod:`.area`, over :mod:`kernels.plume`), the gridded fields and the
source-receptor matrix (:mod:`.srmatrix`).
May import: :mod:`engine.output`, :mod:`engine.data`, :mod:`engine.config`, the floor modules and
:mod:`kernels`; never carbon, health or anything above.
"""

"""Writing results to disk: the leaf every stage may use, importing no physics.

Owns: atomic files, output transactions and locks, the verified cache, file hashes and software
versions (:mod:`.persist`), the NetCDF writers (:mod:`.netcdf`) and the CSV / text writers
(:mod:`.tables`), both re-exported with JSON by :mod:`.writers`.
May import: :mod:`engine.constants`, :mod:`engine.errors`, :mod:`engine._version`; nothing from the stages above.
"""

"""Writing results to disk: the leaf every stage may use, importing no physics.

Owns: atomic files, output transactions and locks, the verified cache, file hashes and software
versions (:mod:`.persist`), and the NetCDF / CSV / JSON writers (:mod:`.writers`).
May import: :mod:`engine.errors`, :mod:`engine._version`; nothing from the stages above.
"""

"""AERMOD mode: read an AERMOD control file, run its area sources through the dispersion stage,
and write AERMOD's output files (listing, POSTFILE, PLOTFILE).

May import: :mod:`engine.dispersion` (and what it may import); nothing else of the stages.
"""

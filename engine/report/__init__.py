"""The report of a run folder: figures (PNG, SVG) and a static ``index.html``.

May import: :mod:`engine.output`, :mod:`engine.data` and the floor modules; it reads results from
files, so it needs no stage.
"""

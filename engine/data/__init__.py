"""The embedded default data (cities, provinces, grids, health tables, met) and its loader
(:mod:`.dataset`). Each CSV names its source in its header; ``README.md`` lists them.

May import: :mod:`engine.errors` only.
"""

"""cobenefits engine: orchestration, physics wrappers, data, I/O and the command line.

Python entry points (nothing is written to disk)::

    import engine
    ds = engine.run(cities="Hebei")          # xarray.Dataset over (scenario, city)

The stages of a run are importable one by one (:mod:`engine.pipeline`): ``prepare``,
``carbon``, ``emissions``, ``sr_matrix``, ``superpose``, ``health``, ``metrics``. Marginal
damages, co-benefit intensities and targeted adoption: ``engine.marginal_damages``,
``engine.cobenefit_intensity``, ``engine.target`` (:mod:`engine.marginal`).
"""

from engine._version import __version__

__all__ = ["__version__", "run", "prepare", "carbon", "emissions", "sr_matrix", "superpose", "health",
           "metrics", "sweep", "marginal_damages", "cobenefit_intensity", "target"]


def __getattr__(name):
    # lazy: `python -m engine --help` and the kernels need not import xarray and the pipeline
    if name == "sweep":  # the module engine.sensitivity.sweep, callable as engine.sensitivity.sweep(spec)
        import importlib

        return importlib.import_module("engine.sensitivity.sweep")
    if name in ("marginal_damages", "cobenefit_intensity", "target"):
        from engine import marginal

        return getattr(marginal, name)
    if name in __all__ and name != "__version__":
        from engine import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")

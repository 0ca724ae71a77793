"""cobenefits engine: orchestration, physics wrappers, data, I/O and the command line.

Python entry points (nothing is written to disk)::

    import engine
    ds = engine.run(cities="Hebei")          # xarray.Dataset over (scenario, city)

The stages of a run are importable one by one (:mod:`engine.pipeline`): ``prepare``,
``carbon``, ``emissions``, ``sr_matrix``, ``superpose``, ``health``, ``metrics``. A sensitivity
sweep of the national run (:mod:`engine.sensitivity`)::

    ds = engine.sweep("config/sweeps/co2_cut_screening.toml", samples=16)

Marginal damages, co-benefit intensities and targeted adoption: ``engine.marginal_damages``,
``engine.cobenefit_intensity``, ``engine.target`` (:mod:`engine.marginal`).
"""

from engine._version import __version__

__all__ = ["__version__", "run", "prepare", "carbon", "emissions", "sr_matrix", "superpose", "health",
           "metrics", "sweep", "marginal_damages", "cobenefit_intensity", "target"]


def sweep(spec, **kwargs):
    """A sensitivity sweep of the national run: :func:`engine.sensitivity.driver.sweep`."""
    from engine.sensitivity import sweep as _sweep

    return _sweep(spec, **kwargs)


def __getattr__(name):
    # lazy: `python -m engine --help` and the kernels need not import xarray and the pipeline
    if name in ("marginal_damages", "cobenefit_intensity", "target"):
        from engine import marginal

        return getattr(marginal, name)
    if name in __all__ and name not in ("__version__", "sweep"):
        from engine import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'engine' has no attribute {name!r}")

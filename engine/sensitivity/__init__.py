"""Sensitivity sweeps of the national run: the sweep file and its sample design
(:mod:`~engine.sensitivity.spec`), chunked evaluation, resume and the output files
(:mod:`~engine.sensitivity.driver`), sensitivity indices (:mod:`~engine.sensitivity.indices`).
The model a sweep evaluates is the pipeline's, with a sample axis (:mod:`engine.sampled`).

>>> import engine
>>> ds = engine.sweep("config/sweeps/avoided_deaths_drivers.toml", samples=64)   # doctest: +SKIP
>>> ds.national_avoided_deaths.to_series().describe()                          # doctest: +SKIP

May import: :mod:`engine.sampled`, :mod:`engine.pipeline` and everything below them.
"""

from engine.sampled import (CARBON_OUTPUTS, DEFAULT_OUTPUTS, EMISSION_SECTORS, OUTPUTS, KeyInfo, NationalModel,
                            evaluate_chunk)
from engine.sensitivity.driver import sweep
from engine.sensitivity.indices import analyze, city_indices
from engine.sensitivity.spec import (DISTRIBUTIONS, METHODS, Parameter, SweepSpec, check_parameters, expected_count,
                                     load_spec, parse_spec, sample)

__all__ = ["sweep", "SweepSpec", "Parameter", "KeyInfo", "NationalModel", "parse_spec", "load_spec",
           "check_parameters", "sample", "expected_count", "analyze", "city_indices", "evaluate_chunk", "METHODS",
           "DISTRIBUTIONS", "OUTPUTS", "CARBON_OUTPUTS", "DEFAULT_OUTPUTS", "EMISSION_SECTORS"]

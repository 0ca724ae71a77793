"""The national run's stages with a leading sample axis: what a sensitivity sweep evaluates.

The stages are :mod:`engine.pipeline`'s; here they take many parameter sets at once. Once the
source-receptor matrix ``S`` of a dispersion level exists (:func:`engine.pipeline.sr_matrix`,
computed once per distinct level and cached), a chunk of ``n`` samples costs:

1. :func:`carbon_samples`: the carbon stage vectorised over samples
   (:func:`engine.carbon.accounting.evaluate`, rows ``base``, the scenario and its
   efficiency-only twin) -> emission intensities ``q[n, 2, source]`` [g m-2 s-1] mapped to the
   sources as :func:`engine.pipeline.emissions` maps them, their seasonal shares, national CO2;
2. :func:`concentrations`: :func:`engine.pipeline.superpose_arrays`, the one place ``C = S @ q``
   (and its season sum) is written, per dispersion level;
3. :func:`health_samples`: deaths per sample and city, one parameter draw per sample
   (:func:`kernels.sweep.impact_per_sample`) or the mean over draws at the cost of one curve
   (:class:`engine.health.expected.DrawMeanTable`), with the ``[health] background`` applied as
   :func:`engine.health.impact.health_impact` applies it.

:class:`NationalModel` builds the shared arrays once (:meth:`NationalModel.tables`) and says
which keys can be swept (:meth:`NationalModel.key_info`); :func:`evaluate_chunk` chains the
three stages. Sampling, chunking and indices live in :mod:`engine.sensitivity`.

Sweepable keys
--------------
=====================================  ===================================================
``carbon.<key>``                       numeric ``[carbon]`` keys of the scenario (ranges from
                                       :mod:`engine.config`); ``efficiency_level`` and
                                       ``symbiosis`` as a choice
``emissions.pm25_multiplier.<sector>`` multiplier [1] of a PM2.5 emission factor, sectors
                                       :data:`EMISSION_SECTORS`; range [0, 10]
``health.crf``                         concentration-response function (choice)
``health.draw``                        parameter-draw index (integer, ``0 .. draws-1``);
                                       not sampled = mean over the ``[health] draws``
``health.baseline_rate_multiplier``    multiplier [1] of every baseline death rate; (0, 10]
``dispersion.<key>``, ``met.<key>``    keys that change the source-receptor matrix, as a
                                       finite list of levels (``dist = "choice"``)
=====================================  ===================================================
"""

from engine.sampled.carbon import carbon_samples
from engine.sampled.chunk import evaluate_chunk
from engine.sampled.concentrations import concentrations
from engine.sampled.health import health_samples
from engine.sampled.keys import (CARBON_ARGS, CARBON_OUTPUTS, DEFAULT_OUTPUTS, EMISSION_SECTORS, NOT_S, OUTPUTS,
                                 KeyInfo, config_key_info, suggest)
from engine.sampled.model import NationalModel
from engine.sampled.tables import HealthTable, SampleTables

__all__ = ["KeyInfo", "NationalModel", "SampleTables", "HealthTable", "evaluate_chunk", "carbon_samples",
           "concentrations", "health_samples", "config_key_info", "suggest", "OUTPUTS", "CARBON_OUTPUTS",
           "DEFAULT_OUTPUTS", "EMISSION_SECTORS", "CARBON_ARGS", "NOT_S"]

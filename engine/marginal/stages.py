"""The pipeline stages the marginal analyses share, run once: prepared inputs, carbon result,
emissions, source-receptor matrix; and the health model in the form its derivative needs.

Everything here calls :mod:`engine.pipeline`'s public stages; the health model is read from
:func:`engine.health.impact.health_impact`'s own output (population, baseline rates,
exposure), so the weights below are the health stage's, not a copy of its rules.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from engine import pipeline as pl
from engine.constants import SECONDS_PER_YEAR
from engine.errors import InputError

__all__ = ["Stages", "run_stages", "HealthModel", "health_model", "G_PER_KT", "source_area_km2",
           "kt_per_q"]

#: grams in a kilotonne
G_PER_KT = 1e9


@dataclasses.dataclass
class Stages:
    """Results of the pipeline's first stages (:func:`run_stages`).

    Attributes
    ----------
    prep : engine.pipeline.Prepared
    carbon : the carbon stage's result (``cities``, ``rop``, ``national`` tables)
    q : xarray.Dataset from :func:`engine.pipeline.emissions`
    S : xarray.Dataset from :func:`engine.pipeline.sr_matrix`
    """

    prep: object
    carbon: object
    q: object
    S: object

    @property
    def base(self):
        return pl.base_scenario(self.prep.cfg)


def run_stages(config=None, *, cities=None, scenarios=None, data=None, carbon_fn=None, use_cache=True,
               workers=None, quiet=True, prep=None, S=None):
    """prepare -> carbon -> emissions -> sr_matrix (:mod:`engine.pipeline`); ``prep`` and ``S``
    may be given to reuse them."""
    if prep is None:
        prep = pl.prepare(config, cities=cities, scenarios=scenarios, data=data)
    cres = pl.carbon(prep, carbon_fn=carbon_fn)
    q = pl.emissions(prep, cres)
    if S is None:
        S = pl.sr_matrix(prep, use_cache=use_cache, workers=workers, quiet=quiet)
    return Stages(prep, cres, q, S)


def source_area_km2(prep):
    """Area of every source as the carbon stage divides by it [km2]: the data set's
    ``area_km2`` of the city, or of the rest of province (0 where a province is wholly covered
    by its cities)."""
    c = prep.data.cities["area_km2"]
    r = prep.data.rop["area_km2"] if "area_km2" in prep.data.rop else None
    out = np.zeros(len(prep.sources))
    for k, s in enumerate(prep.sources):
        if s.kind == "city":
            out[k] = float(c.loc[s.id])
        elif r is not None and s.id in r.index:
            out[k] = max(float(r.loc[s.id]), 0.0)
    return out


def kt_per_q(prep):
    """Annual emission [kt yr-1] of a source per unit emission intensity [g m-2 s-1]:
    area [m2] x seconds per year / grams per kt (the carbon stage's ``q_g_m2_s`` =
    ``pm25_t / area_km2 / SECONDS_PER_YEAR``)."""
    return source_area_km2(prep) * 1e6 * SECONDS_PER_YEAR / G_PER_KT


@dataclasses.dataclass
class HealthModel:
    """The ``[health]`` function as sums over curves: deaths of city r at exposure z are
    :math:`D_r = \\sum_k W_{r,k}\\, PAF_k(z_r)` (:func:`kernels.crf.impact_over_draws`).

    Attributes
    ----------
    crf : str
    model : int                    kernels.crf.MODEL_*
    params_central : (n_curve, 1, N_PARAMS)
    params_draws : (n_curve, n_draw, N_PARAMS)
    weight : (n_city, n_curve)     population x baseline rate [deaths yr-1]
    background_ug_m3 : (n_city,) or None
        Total PM2.5 of each city when ``[health] background`` is set: the functions are then
        evaluated at background - (primary base - primary), floored at 0 (as the health stage).
    pif : bool                     avoided deaths as a potential impact fraction
    """

    crf: str
    model: int
    params_central: np.ndarray
    params_draws: np.ndarray
    weight: np.ndarray
    background_ug_m3: object
    pif: bool

    @property
    def n_draw(self):
        return self.params_draws.shape[1]

    def exposure(self, conc_base, conc):
        """Exposure the functions see [ug m-3] for primary concentrations ``conc`` (any leading
        dims, cities last) given the base primary ``conc_base`` (cities)."""
        conc = np.asarray(conc, dtype=float)
        if self.background_ug_m3 is None:
            return conc
        return np.maximum(self.background_ug_m3 - (np.asarray(conc_base, dtype=float) - conc), 0.0)


def health_model(prep, conc_base, *, age_population_fn=None):
    """The :class:`HealthModel` of ``prep.cfg.health`` for the selected cities.

    ``conc_base`` : (n_city,) base primary PM2.5 [ug m-3] (for the check of the inputs).
    Raises :class:`InputError` where the health stage would (bad rates, functions, background).
    """
    from engine.health import age_population, curve_set, health_impact

    h = prep.cfg.health
    sel = prep.selected
    pop = (age_population(sel) if age_population_fn is None else age_population_fn(prep.data, sel)).loc[sel]
    ds = health_impact(np.asarray(conc_base, dtype=float), pop, crf=h.crf, cohort=h.cohort,
                       rates=h.rates_file or None, draws=0, seed=h.seed, avoided_method=h.avoided_method,
                       functions=h.functions_file or None, background=h.background or None)
    cs = curve_set(h.crf, cohort=h.cohort, draws=h.draws, seed=h.seed, functions=h.functions_file or None)
    rate = ds["baseline_rate"].values / 1e5                        # (cause, age), 0 where not applied
    A = np.zeros((rate.shape[1], len(cs.curve_label)))
    for ci in range(rate.shape[0]):
        for ai in range(rate.shape[1]):
            k = cs.age_curve[ci, ai]
            if k >= 0:
                A[ai, k] += rate[ci, ai]
    weight = np.ascontiguousarray(ds["population"].values @ A)     # (city, curve)
    bg = ds["concentration"].values.copy() if "primary_concentration" in ds else None
    if cs.params_draws.shape[1] == 0 and h.draws:
        raise InputError(f"[health] draws = {h.draws}: the function has no parameter draws")
    return HealthModel(h.crf, int(cs.model), np.ascontiguousarray(cs.params_central),
                       np.ascontiguousarray(cs.params_draws), weight, bg, h.avoided_method == "pif")

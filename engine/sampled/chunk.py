"""One chunk of samples through the three stages (:func:`evaluate_chunk`)."""

from __future__ import annotations

import numpy as np

from engine.sampled.carbon import carbon_samples
from engine.sampled.concentrations import concentrations
from engine.sampled.health import health_samples

__all__ = ["evaluate_chunk"]


def evaluate_chunk(tb, values, outputs):
    """Outputs of the national model for a table of parameter values (one row per sample):
    :func:`carbon_samples` -> :func:`concentrations` -> :func:`health_samples`.

    Parameters
    ----------
    tb : SampleTables from :meth:`NationalModel.tables`
    values : pandas.DataFrame  parameter values, columns = keys
    outputs : sequence of output names (:data:`OUTPUTS`)

    Returns
    -------
    dict {name: ndarray (n,) or (n, n_city)}
    """
    out, q, share = carbon_samples(tb, values, outputs)
    if tb.health is None:
        return {k: out[k] for k in outputs}
    C = concentrations(tb, values, q, share)
    Cb, Cs = C[:, 0], C[:, 1]
    Db, _, Da = health_samples(tb, values, Cb, Cs)
    pop = tb.population
    out["national_avoided_deaths"] = Da.sum(axis=1)
    out["national_deaths_base"] = Db.sum(axis=1)
    # row-wise sums (not a BLAS matrix-vector product) so a sample's value does not depend on its chunk
    out["pop_weighted_conc_reduction_ug_m3"] = ((Cb - Cs) * pop).sum(axis=1) / pop.sum()
    out["city_avoided_deaths"] = Da
    out["city_conc_reduction_pct"] = np.divide(100.0 * (Cb - Cs), Cb, out=np.full(Cb.shape, np.nan), where=Cb > 0)
    out["city_conc_base_ug_m3"] = np.ascontiguousarray(Cb)
    out["city_conc_scenario_ug_m3"] = np.ascontiguousarray(Cs)
    return {k: out[k] for k in outputs}

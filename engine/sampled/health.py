"""The health stage with a sample axis: deaths per sample and city."""

from __future__ import annotations

import numpy as np

from engine.sampled.concentrations import same_rows

__all__ = ["health_samples"]


def health_samples(tb, values, conc_base, conc_scenario):
    """Deaths per sample and city: base, scenario and avoided ``(n, n_city)`` [deaths yr-1].

    The health functions see the exposure as :func:`engine.health.impact.health_impact` does:
    the primary concentrations, or with ``[health] background`` the background (base) and the
    background minus the primary change, floored at 0 (scenario). Per sample: the sampled
    ``health.draw``, else the mean over the ``[health] draws`` (a
    :class:`engine.health.expected.DrawMeanTable`; with ``avoided_method = "pif"`` directly over
    the draws), times ``health.baseline_rate_multiplier``.
    """
    n, n_city = conc_base.shape
    cols = set(values.columns)
    if tb.background is not None:
        zb = np.broadcast_to(tb.background, (n, n_city))
        zs = np.maximum(zb - (conc_base - conc_scenario), 0.0)
    else:
        zb, zs = conc_base, conc_scenario
    crf = values["health.crf"].astype(str).to_numpy() if "health.crf" in cols else np.full(n, tb.health_default["crf"])
    draw = values["health.draw"].to_numpy(np.int64) if "health.draw" in cols else np.full(n, -1, dtype=np.int64)
    scale = values["health.baseline_rate_multiplier"].to_numpy(float) if "health.baseline_rate_multiplier" in cols \
        else np.ones(n)
    Db, Ds, Da = (np.empty((n, n_city)) for _ in range(3))
    for name in sorted(set(crf)):
        ht = tb.health[name]
        idx = np.nonzero(crf == name)[0]
        d = np.where(draw[idx] >= 0, np.minimum(draw[idx], ht.params.shape[1] - 1), -1)
        b, s_ = np.ascontiguousarray(zb[idx]), np.ascontiguousarray(zs[idx])
        by_table = (d < 0) & (ht.mean is not None)
        if by_table.any():
            t = np.nonzero(by_table)[0]
            mb, ms = _once_per_exposure(ht.mean, b[t]), _once_per_exposure(ht.mean, s_[t])
            sc = scale[idx[t], None]
            Db[idx[t]], Ds[idx[t]], Da[idx[t]] = sc * mb, sc * ms, sc * (mb - ms)
        rest = np.nonzero(~by_table)[0]
        if rest.size:
            Db[idx[rest]], Ds[idx[rest]], Da[idx[rest]] = _by_draw(ht, b[rest], s_[rest], d[rest], scale[idx[rest]])
    return Db, Ds, Da


def _once_per_exposure(fn, z):
    """``fn(z)`` for ``z (n, n_city)``; when every sample has the same exposure (a carbon-knob
    sweep's base, a health-only sweep) evaluated once and broadcast."""
    if same_rows(z):
        return np.broadcast_to(fn(np.ascontiguousarray(z[:1])), z.shape)
    return fn(np.ascontiguousarray(z))


def _by_draw(ht, zb, zs, draw, scale):
    """Deaths at each sample's parameter draw (:func:`kernels.sweep.impact_per_sample`; draw -1:
    the direct mean over draws). When every sample has the same exposure, each distinct draw is
    evaluated once at scale 1 and scaled per sample (deaths are linear in the baseline rate;
    the kernel's last step is the same product)."""
    from kernels.sweep import impact_per_sample

    n, n_city = zb.shape
    if same_rows(zb) and same_rows(zs):
        du, inv = np.unique(draw, return_inverse=True)
        m = len(du)
        zb, zs = np.repeat(zb[:1], m, axis=0), np.repeat(zs[:1], m, axis=0)
        draw, sc = du, np.ones(m)
    else:
        inv, m, sc = None, n, scale
    ob, os_, oa = (np.empty((m, n_city)) for _ in range(3))
    impact_per_sample(ht.model, np.ascontiguousarray(zb), np.ascontiguousarray(zs), ht.params,
                      np.ascontiguousarray(draw, dtype=np.int64), ht.weight, np.ascontiguousarray(sc), ht.pif,
                      ob, os_, oa)
    if inv is None:
        return ob, os_, oa
    inv = inv.reshape(-1)
    s = scale[:, None]
    return s * ob[inv], s * os_[inv], s * oa[inv]

"""City exposure of every sample: :func:`engine.pipeline.superpose_arrays` per dispersion level."""

from __future__ import annotations

import numpy as np

from engine import pipeline as pl
from engine.sampled.keys import _plain

__all__ = ["concentrations", "same_rows"]


def same_rows(a, axis=0):
    """Whether every slice of ``a`` along ``axis`` equals the first (a broadcast axis is; no copy)."""
    a = np.asarray(a)
    if a.shape[axis] <= 1 or a.strides[axis] == 0:
        return True
    first = np.take(a, [0], axis=axis)
    return bool((a == first).all())


def _levels(tb, values):
    if not tb.level_keys:
        return [()] * len(values)
    return [tuple(_plain(v) for v in r) for r in values[list(tb.level_keys)].itertuples(index=False)]


def concentrations(tb, values, q, share):
    """City exposure of the base and the scenario for every sample, through
    :func:`engine.pipeline.superpose_arrays` with each sample's dispersion level.

    Samples of one level with the same emissions (a sweep of health keys only) share one
    product: it is computed once and copied.

    Returns ``(n, 2, n_city)`` float64 [ug m-3] (base, scenario)."""
    n = len(values)
    C = np.empty((n, 2, len(tb.city)))
    lv = _levels(tb, values)
    for level in sorted(set(lv), key=repr):
        idx = np.array([i for i, x in enumerate(lv) if x == level], dtype=np.int64)
        Ss = tb.S_season.get(level) if tb.S_season else None
        if Ss is not None and share is None:
            raise ValueError("seasonal S needs seasonal emission shares")
        sh = None
        if Ss is not None:
            sh = np.broadcast_to(share, (share.shape[0], n) + share.shape[2:])[:, idx]
        qi = q[idx]
        if len(idx) > 1 and same_rows(qi) and (sh is None or same_rows(sh, axis=1)):
            C[idx] = pl.superpose_arrays(tb.S[level], qi[:1], S_season=Ss, share=None if sh is None else sh[:, :1])
        else:
            C[idx] = pl.superpose_arrays(tb.S[level], qi, S_season=Ss, share=sh)
    return C

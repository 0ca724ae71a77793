"""City exposure of every sample: :func:`engine.pipeline.superpose_arrays` per dispersion level."""

from __future__ import annotations

import numpy as np

from engine import pipeline as pl
from engine.sampled.keys import _plain

__all__ = ["concentrations"]


def _levels(tb, values):
    if not tb.level_keys:
        return [()] * len(values)
    return [tuple(_plain(v) for v in r) for r in values[list(tb.level_keys)].itertuples(index=False)]


def concentrations(tb, values, q, share):
    """City exposure of the base and the scenario for every sample, through
    :func:`engine.pipeline.superpose_arrays` with each sample's dispersion level.

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
        C[idx] = pl.superpose_arrays(tb.S[level], q[idx], S_season=Ss, share=sh)
    return C

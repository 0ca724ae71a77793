"""Electricity savings pooled per regional grid (Ramaswami et al. 2017, Methods d).

The electricity saved or generated from waste heat by every place of a grid region is pooled,
and the resulting fractional cut in fossil generation is applied equally to every generator of
that region, in cities and rest of province alike:

.. math:: r_g = \\frac{\\sum_{p \\in g} \\Delta E_p}{\\sum_{p \\in g} G_p}, \\qquad G'_p = G_p (1 - r_g)
"""

from __future__ import annotations

import numpy as np

__all__ = ["pool_savings"]

#: a grid cannot shed more than this share of its fossil generation (guard against nonsense input)
MAX_CUT = 0.95


def pool_savings(savings_twh, generation_twh, grid_onehot):
    """Generation after pooling and the cut fraction per place.

    Parameters
    ----------
    savings_twh : (..., S, P) electricity saved or displaced per place [TWh]
    generation_twh : (P,) fossil generation per place [TWh]
    grid_onehot : (P, G) place -> grid membership

    Returns
    -------
    generation : (..., S, P) [TWh];  cut : (..., S, P) fraction
    """
    sav_g = savings_twh @ grid_onehot
    gen_g = generation_twh @ grid_onehot
    r = np.divide(sav_g, gen_g, out=np.zeros(np.broadcast(sav_g, gen_g).shape), where=gen_g > 0)
    r = np.clip(r, 0.0, MAX_CUT)
    cut = r @ grid_onehot.T
    return generation_twh * (1.0 - cut), cut

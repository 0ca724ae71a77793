"""Plausibility checks of what a user gives the health stage, with one message wherever the
input enters (``cobenefits health --functions/--background``, ``[health] functions_file`` and
``background`` of a run or a sweep); see docs/reliability.md.

* :func:`check_user_function`: the sign and size of a user function's beta and of its standard
  error, and its incidence rate against the population (no more deaths than people).
* :func:`check_background`: a total-PM2.5 background at least the modelled primary PM2.5 of the
  same region (the primary part cannot exceed the total).

The ``[health]`` files of a configuration are read and checked before any dispersion work by
:func:`engine.health.inputs.check_health_config` (called by :func:`engine.pipeline.prepare`),
with the readers that apply these checks.
"""

from __future__ import annotations

import math

import numpy as np

from engine.errors import InputError

__all__ = ["BETA_MAX", "MAX_INCIDENCE_PER_100K", "check_user_function", "check_background"]

#: largest plausible beta of each user-function form. Log-linear [(ug m-3)^-1]: 0.05 is a relative
#: risk of exp(0.5) = 1.65 per 10 ug m-3, above every long-term PM2.5 mortality estimate in the
#: BenMAP-CE and GBD function sets (Krewski et al. 2009 all-cause 0.0058; Lepeule et al. 2012
#: 0.0131; the steepest GEMM cause-specific slopes near 0.02-0.03 at low concentrations, Burnett et
#: al. 2018 PNAS 115:9592). Log-log [1]: RR = (z/zcf)^beta, 1 is RR = 1000 at z/zcf = 1000.
#: Linear [deaths person-1 yr-1 (ug m-3)^-1]: 1e-3 makes the deaths at the largest plausible
#: concentration (1000 ug m-3) equal the population.
BETA_MAX = {"log_linear": 0.05, "log_log": 1.0, "linear": 1.0e-3}
#: an incidence rate cannot exceed 100,000 per 100,000 per year: every person dying of the cause
MAX_INCIDENCE_PER_100K = 1.0e5


def check_user_function(f, where):
    """Raise :class:`InputError` unless the user function ``f`` is plausible.

    Parameters
    ----------
    f : engine.health.inputs.UserFunction
    where : str
        The file and line, e.g. ``"functions file f.csv line 3"``.

    Notes
    -----
    beta must be > 0: a negative beta makes PM2.5 protective and the attributable deaths
    negative (R17's deaths are attributable, not prevented, by exposure). beta and its standard
    error may not exceed :data:`BETA_MAX` of the form: the Monte Carlo draws Normal(beta, SE)
    would otherwise reach relative risks that overflow (SE = 5 gave -inf deaths). The incidence
    rate may not exceed :data:`MAX_INCIDENCE_PER_100K` (more deaths than people).
    """
    hi = BETA_MAX[f.form]
    if not f.beta > 0:
        raise InputError(f"{where}, column beta: {f.beta:g}; expected beta > 0 (a negative or zero beta makes PM2.5 "
                         f"protective: negative attributable deaths); allowed range (0, {hi:g}] for the {f.form} form")
    if f.beta > hi:
        raise InputError(f"{where}, column beta: {f.beta:g}; allowed range (0, {hi:g}] for the {f.form} form "
                         "(larger than any published PM2.5 mortality function: a unit error, e.g. per 10 ug m-3 "
                         "or a relative risk instead of its log?)")
    if f.beta_se > hi:
        raise InputError(f"{where}, column beta_se: {f.beta_se:g}; allowed range [0, {hi:g}] for the {f.form} form "
                         "(the draws Normal(beta, SE) would reach implausible relative risks)")
    inc = f.incidence_per_100k
    if math.isfinite(inc) and inc > MAX_INCIDENCE_PER_100K:
        raise InputError(f"{where}, column incidence_per_100k: {inc:g}; allowed range [0, {MAX_INCIDENCE_PER_100K:g}] "
                         "deaths per 100,000 per year (more would be more deaths than people)")


def check_background(background_ug_m3, primary_ug_m3, labels, where="background"):
    """Raise :class:`InputError` where a region's total-PM2.5 background is below its modelled
    primary PM2.5 (the total includes the primary part), naming the region and both values."""
    bg = np.asarray(background_ug_m3, dtype=float)
    pr = np.asarray(primary_ug_m3, dtype=float)
    bad = bg < pr * (1.0 - 1e-12)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{where}: region {labels[i]!r} has a total-PM2.5 background of {bg[i]:.6g} ug m-3, below "
                         f"its modelled primary PM2.5 of {pr[i]:.6g} ug m-3 ({int(bad.sum())} region(s) like it); "
                         "the background is the total, which includes the primary part: allowed range "
                         f"[{pr[i]:.6g}, 1000] ug m-3 for this region (is it a secondary-only or a wrong-year "
                         "background?)")

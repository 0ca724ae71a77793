"""Consistency and plausibility of a climatology, with one message wherever it enters
(``[met] climatology_file`` of a run or a sweep, :func:`.files.read_climatology`); see
docs/reliability.md.

:func:`check_climatology` refuses, naming the file and the line of the class row:

* season frequencies (header ``season_frequency``) that do not sum to 1 (a sum of 1.8 gave
  +20 % avoided deaths), and a ``calm_frequency`` header that names other seasons;
* a header that contradicts the rows: a season of the year (frequency > 0, not all calm) with
  no class row, or class rows for a season with frequency 0 or all hours calm (they would be
  ignored);
* a class whose wind speed is below the calm threshold (0.5 m/s) or not finite: the classes
  are the non-calm hours (calms are the header's ``calm_frequency``, EPA calms policy), and a
  zero wind makes the plume formula divide by zero;
* a boundary-layer field that is not finite (u* = inf, ...; |L| = inf is exactly neutral and
  allowed) or missing (w*, z_ic and the gradient may be empty). The physical ranges of
  the fields are :meth:`engine.dispersion.met.MetHours._validate`'s, shared with hourly met.
"""

from __future__ import annotations

import numpy as np

from engine.errors import InputError

from .classes import CALM_THRESHOLD_M_S, CLASS_FIELDS

__all__ = ["SEASON_SUM_TOLERANCE", "check_climatology"]

#: |sum of season frequencies - 1| allowed (files store them with 10 significant digits)
SEASON_SUM_TOLERANCE = 1e-4


def check_climatology(clim, where, row_lines=None):
    """Raise :class:`InputError` if ``clim`` (a :class:`.classes.Climatology`) is inconsistent.

    Parameters
    ----------
    clim : Climatology
    where : str
        The file, e.g. ``"climatology file c.csv"``.
    row_lines : sequence of int, optional
        The file line of each class row (for messages); else the row index is named.
    """

    def at(i):
        return f"{where}, line {row_lines[i]}" if row_lines is not None else f"{where}, class row {i + 1}"

    sf, cf = clim.season_frequency, clim.calm_frequency
    tot = float(sum(sf.values()))
    if abs(tot - 1.0) > SEASON_SUM_TOLERANCE:
        raise InputError(f"{where}: header season_frequency sums to {tot:.6g} "
                         f"({', '.join(f'{s}={v:g}' for s, v in sf.items())}); the seasons share the year: "
                         f"allowed 1 +- {SEASON_SUM_TOLERANCE:g}")
    if set(cf) != set(sf):
        raise InputError(f"{where}: header calm_frequency names season(s) {', '.join(cf) or 'none'} but "
                         f"season_frequency names {', '.join(sf)}; give both for the same seasons")
    seasons = np.asarray(clim.classes["season"]).astype(str)
    for s in sf:
        has_rows = bool((seasons == s).any())
        in_year = sf[s] > 0 and cf[s] < 1
        if in_year and not has_rows:
            raise InputError(f"{where}: season {s!r} has season_frequency {sf[s]:g} and calm_frequency {cf[s]:g} "
                             "in the header but no class rows; add its classes or set its frequency to 0")
        if has_rows and not in_year:
            i = int(np.flatnonzero(seasons == s)[0])
            raise InputError(f"{at(i)}: a class of season {s!r}, whose header season_frequency is {sf[s]:g} and "
                             f"calm_frequency {cf[s]:g}: its classes would never count; fix the header or drop the "
                             "rows")
    c = clim.classes
    u = np.asarray(c["wind_speed_m_s"], dtype=float)
    bad = ~np.isfinite(u) | (u < CALM_THRESHOLD_M_S)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{at(i)}, column 'wind_speed_m_s': {u[i]:g}; allowed range [{CALM_THRESHOLD_M_S:g}, 90) "
                         "m/s: a class holds non-calm hours (calms are the header's calm_frequency)")
    for k in CLASS_FIELDS:
        a = np.asarray(c[k], dtype=float)
        inf = np.isinf(a) if k != "monin_obukhov_length_m" else np.zeros(a.shape, bool)  # |L| = inf: neutral
        bad = inf | (np.isnan(a) & (k not in ("convective_velocity_m_s", "conv_mixing_height_m",
                                                      "theta_gradient_k_m")))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"{at(i)}, column '{k}': {a[i]:g}; expected a finite number (empty only for w*, the "
                             "convective mixing height and the potential-temperature gradient)")

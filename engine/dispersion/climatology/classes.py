"""Seasons and met classes: the :class:`Climatology` (joint frequencies of season, stability,
speed and sector, each class with representative boundary-layer parameters), the class indices,
and the grouping of met hours into classes (:func:`classify_hours`, :func:`climatology_from_met`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.errors import InputError

from .golder import GOLDER_1972, SECTORS, STAR_SPEED_EDGES_M_S

__all__ = ["SEASONS", "HEATING_MONTHS", "SEASON_DAYS", "STABILITY_CLASSES", "CALM_THRESHOLD_M_S",
           "CLIMATOLOGY_SPEED_EDGES_M_S", "CLASS_FIELDS", "season_of_month", "stability_class_index",
           "speed_class_index", "sector_index", "Climatology", "classify_hours", "climatology_from_met"]


#: the seasons of a seasonal climatology, in this order
SEASONS = ("heating", "non_heating")
#: months of the heating season (engine/data/met/climate_region_seasons.csv, header)
HEATING_MONTHS = (11, 12, 1, 2, 3)
#: days of each season in a 365-day year
SEASON_DAYS = {"heating": 30 + 31 + 31 + 28 + 31, "non_heating": 365 - (30 + 31 + 31 + 28 + 31)}
#: stability classes of a climatology: Pasquill A-F by Golder (1972) at the hour's z0, D split by
#: the sign of L (DU convective side, DS stable side) and G = more stable than F (:func:`stability_class_index`)
STABILITY_CLASSES = ("A", "B", "C", "DU", "DS", "E", "F", "G")
#: speed-class edges [m s-1] of a climatology: the STAR/ISCLT edges, the first class starting at
#: the calm threshold and split at 1 m/s (ISC's minimum wind; concentrations ~ 1/u vary most
#: there: the LOVETT check of tests/test_climatology.py goes from 0.919 to 0.934 of the hourly mean)
CALM_THRESHOLD_M_S = 0.5
CLIMATOLOGY_SPEED_EDGES_M_S = (CALM_THRESHOLD_M_S, 1.0) + STAR_SPEED_EDGES_M_S[1:]

def season_of_month(month):
    """Season name of each month (1-12): 'heating' for Nov-Mar, else 'non_heating'."""
    m = np.asarray(month, dtype=int)
    return np.where(np.isin(m, HEATING_MONTHS), SEASONS[0], SEASONS[1])


def stability_class_index(monin_obukhov_length_m, roughness_length_m):
    """Index into :data:`STABILITY_CLASSES` of each hour, from 1/L and z0.

    The Golder (1972) lines 1/L = a + b log10(z0) (:data:`GOLDER_1972`) of the Pasquill classes
    are computed at each hour's z0; a class owns the 1/L values closer to its line than to its
    neighbours' (boundaries midway between lines). Neutral (D) is split by the sign of L; 1/L
    beyond F by more than half the E-F spacing is class G.
    """
    inv = 1.0 / np.asarray(monin_obukhov_length_m, dtype=float)
    z0 = np.asarray(roughness_length_m, dtype=float)
    if z0.size > 1 and z0.ndim == 1 and inv.shape == z0.shape:
        # z0 in a few runs (a region's seasons): per run the class boundaries are 7 numbers, the same
        # numbers the lines below give for each hour
        starts = np.concatenate(([0], np.flatnonzero(z0[1:] != z0[:-1]) + 1, [z0.size]))
        if starts.size <= 65:
            bounds = [_class_boundaries(np.log10(z0[a:a + 1])) for a in starts[:-1]]
            if all((np.diff(b) > 0).all() for b in bounds):
                idx = np.empty(z0.size, dtype=int)
                for b, a, e in zip(bounds, starts[:-1], starts[1:]):
                    idx[a:e] = np.searchsorted(b, inv[a:e], side="right")
                return idx
    lz = np.log10(z0)
    line = {c: GOLDER_1972[c][0] + GOLDER_1972[c][1] * lz for c in "ABCDEF"}
    ab, bc, cd = (line["A"] + line["B"]) / 2, (line["B"] + line["C"]) / 2, (line["C"] + line["D"]) / 2
    de, ef = (line["D"] + line["E"]) / 2, (line["E"] + line["F"]) / 2
    fg = line["F"] + (line["F"] - ef)
    idx = np.select([inv < ab, inv < bc, inv < cd, inv < 0.0, inv < de, inv < ef, inv < fg],
                    [0, 1, 2, 3, 4, 5, 6], default=7)
    return idx.astype(int)


def _class_boundaries(lz):
    """The seven 1/L boundaries (A|B, B|C, C|D, D-|D+ at 0, D|E, E|F, F|G) at log10 z0 = ``lz`` (one value)."""
    line = {c: float(GOLDER_1972[c][0] + GOLDER_1972[c][1] * lz[0]) for c in "ABCDEF"}
    ef = (line["E"] + line["F"]) / 2
    return np.array([(line["A"] + line["B"]) / 2, (line["B"] + line["C"]) / 2, (line["C"] + line["D"]) / 2, 0.0,
                     (line["D"] + line["E"]) / 2, ef, line["F"] + (line["F"] - ef)])


def speed_class_index(wind_speed_m_s, edges=CLIMATOLOGY_SPEED_EDGES_M_S):
    """0-based speed class of each wind speed [m s-1]; -1 below the calm threshold."""
    u = np.asarray(wind_speed_m_s, dtype=float)
    return np.searchsorted(np.asarray(edges), u, side="right") - 1


def sector_index(wind_from_deg, n_sectors=SECTORS):
    """0-based wind-direction sector (sector k centred on k * 360/n degrees, 0 = N)."""
    width = 360.0 / n_sectors
    return (np.floor((np.asarray(wind_from_deg, dtype=float) % 360.0) / width + 0.5).astype(int)) % n_sectors


#: the boundary-layer fields of a class (MetHours names, SI units)
CLASS_FIELDS = ("wind_speed_m_s", "reference_height_m", "friction_velocity_m_s", "convective_velocity_m_s",
                 "monin_obukhov_length_m", "conv_mixing_height_m", "mech_mixing_height_m",
                 "roughness_length_m", "temperature_k", "temperature_height_m", "theta_gradient_k_m")


@dataclass(frozen=True, eq=False)
class Climatology:
    """A seasonal met climatology: joint frequencies of season, stability class, speed class and
    wind-direction sector, each class with representative boundary-layer parameters.

    Attributes
    ----------
    classes : dict of 1-D arrays, one entry per class (row): ``season`` (str), ``stability_class``
        (str, :data:`STABILITY_CLASSES`), ``speed_class`` (int, 1 = lowest), ``sector`` (int, 1 = N),
        ``wind_from_deg`` [deg], ``frequency`` [1] (share of the season's non-calm hours; sums to
        1 within each season), and the MetHours fields of :data:`CLASS_FIELDS` in SI units.
    season_frequency : dict season -> share of the year's hours [1]
    calm_frequency : dict season -> share of the season's hours that are calm [1]
    source : str  what the climatology was made from, and how
    profile_heights_m : tuple [m]
        Levels of the optional observed-turbulence profile of each class (``classes`` then holds
        ``profile_sigma_v_m_s`` and ``profile_sigma_w_m_s`` of shape (n_class, n_level), NaN =
        not observed; AERMOD fills those from similarity). Empty = no profile.
    """

    classes: dict
    season_frequency: dict
    calm_frequency: dict
    source: str
    profile_heights_m: tuple = ()

    @property
    def seasons(self):
        return tuple(s for s in SEASONS if s in self.season_frequency) + tuple(
            s for s in self.season_frequency if s not in SEASONS)

    def __len__(self):
        return int(self.classes["frequency"].shape[0])

    def valid_weight(self, season):
        """Share of the year's hours that are in ``season`` and not calm [1]."""
        return self.season_frequency[season] * (1.0 - self.calm_frequency[season])

    def met(self, season=None):
        """:class:`engine.dispersion.met.MetHours` of one season, or of the year (``season=None``).

        The annual met weights each season's classes by its non-calm share of the year
        (:meth:`valid_weight`), so its period mean equals AERMOD's annual mean (calms excluded
        from the denominator, EPA calms policy).
        """
        c = self.classes
        if season is None:
            w = np.zeros(len(self))
            for s in self.seasons:
                sel = c["season"] == s
                w[sel] = c["frequency"][sel] * self.valid_weight(s)
            sel = w > 0
        else:
            if season not in self.season_frequency:
                raise InputError(f"climatology has no season {season!r}; it has {', '.join(self.seasons)}")
            sel = c["season"] == season
            w = c["frequency"]
        if not sel.any():
            raise InputError(f"climatology ({self.source}): no non-calm class in season {season!r}")
        arrays = {k: c[k][sel] for k in CLASS_FIELDS}
        arrays["wind_from_deg"] = c["wind_from_deg"][sel]
        arrays["weight"] = w[sel] / w[sel].sum()
        if self.profile_heights_m:
            n = int(sel.sum())
            nan = np.full((n, len(self.profile_heights_m)), np.nan)
            arrays.update(profile_height_m=np.tile(np.asarray(self.profile_heights_m, float), (n, 1)),
                          profile_wind_speed_m_s=nan, profile_wind_from_deg=nan, profile_temperature_k=nan,
                          profile_sigma_v_m_s=c["profile_sigma_v_m_s"][sel],
                          profile_sigma_w_m_s=c["profile_sigma_w_m_s"][sel])
        from engine.dispersion.met import MetHours

        return MetHours.from_arrays(**arrays, source=f"climatology {self.source} season {season or 'annual'}")

    def seasonal_met(self):
        """``{season: MetHours}`` for every season with non-calm classes."""
        return {s: self.met(s) for s in self.seasons if (self.classes["season"] == s).any()}

    def season_coefficients(self):
        """``{season: c_s}`` with which a seasonal superposition gives AERMOD's annual mean.

        With K_s the period kernel of ``met(s)`` and a sector emitting the share ``share_s`` of
        its annual emission in season s (:func:`seasonal_emission_shares`), the annual-mean
        concentration per unit annual-mean emission rate q is

        .. math:: C = \\sum_s c_s\\, \\mathrm{share}_s\\, K_s q, \\qquad
                  c_s = \\frac{1 - \\mathrm{calm}_s}{\\sum_{s'} f_{s'} (1 - \\mathrm{calm}_{s'})}

        (f_s: season frequency; the season's emission rate is q share_s / f_s, and its hours weigh
        f_s (1 - calm_s) in the annual mean). Without calms every c_s is 1; a flat sector
        (share_s = f_s) gets the annual kernel of :meth:`met`.
        """
        tot = sum(self.valid_weight(s) for s in self.seasons)
        return {s: (1.0 - self.calm_frequency[s]) / tot for s in self.seasons}


def classify_hours(hours, *, season, weight, source, calm=None, sector_frequencies=None,
                   n_sectors=SECTORS, speed_edges=CLIMATOLOGY_SPEED_EDGES_M_S,
                   calm_threshold_m_s=CALM_THRESHOLD_M_S, profile_heights_m=()):
    """Group met hours into climatology classes with representative boundary-layer parameters.

    Parameters
    ----------
    hours : dict of 1-D arrays
        The fields of :data:`CLASS_FIELDS` (MetHours names and units) and, unless
        ``sector_frequencies`` is given, ``wind_from_deg`` [deg]. NaN ``conv_*`` in stable hours.
    season : array of str
        Season of each hour.
    weight : array [1]
        Weight of each hour (1 for an observed hour, a probability for synthetic hours).
    calm : bool array, optional
        Calm hours (counted in ``calm_frequency``, not classed). Hours with a speed below
        ``calm_threshold_m_s`` [m s-1] are calm as well (0 for an AERMET file, whose calms AERMET
        has already flagged; :data:`CALM_THRESHOLD_M_S` for synthetic hours).
    sector_frequencies : dict season -> array (n_sectors,), optional
        Direction distribution, taken independent of the other class variables (synthetic hours).
    profile_heights_m : tuple [m], optional
        Levels of observed turbulence: ``hours`` then holds ``profile_sigma_v_m_s`` and
        ``profile_sigma_w_m_s`` (n, n_level) [m s-1], NaN where not observed; each class gets
        their harmonic means over the hours that observed them (concentration ~ 1/sigma).

    Returns
    -------
    Climatology

    Notes
    -----
    Key of a class: (season, stability class by :func:`stability_class_index`, speed class by
    :data:`CLIMATOLOGY_SPEED_EDGES_M_S`, reference height, sector). Representative values are
    weight means over the class's hours: wind speed, u*, mechanical mixing height, temperature,
    temperature height, dtheta/dz above zi (over the hours that have it); 1/L (so that neutral
    hours average correctly); z0 as a geometric mean; w* and the convective mixing height over
    the convective hours (the class is convective when the mean 1/L < 0). Boundary-layer
    parameters are shared by the sectors of one (season, stability, speed, height) group.
    """
    h = {k: np.asarray(hours[k], dtype=float) for k in CLASS_FIELDS}
    n = h["wind_speed_m_s"].shape[0]
    season = np.asarray(season).astype(str)
    weight = np.broadcast_to(np.asarray(weight, dtype=float), (n,))
    calm_a = np.zeros(n, bool) if calm is None else np.asarray(calm, bool)
    calm_a = calm_a | (h["wind_speed_m_s"] < calm_threshold_m_s)
    in_season, season_names = _season_masks(season)
    season_frequency, calm_frequency = _season_frequencies(in_season, season_names, weight, calm_a, source)
    ok = ~calm_a & (weight > 0)
    stab = stability_class_index(h["monin_obukhov_length_m"], h["roughness_length_m"])
    spd = np.clip(speed_class_index(h["wind_speed_m_s"], speed_edges), 0, None)
    zref = np.round(h["reference_height_m"], 1)
    if sector_frequencies is None:
        sec = sector_index(hours["wind_from_deg"], n_sectors)
    else:
        sec = np.zeros(n, int)
    prof_keys = ("profile_sigma_v_m_s", "profile_sigma_w_m_s") if profile_heights_m else ()
    prof = {k: np.asarray(hours[k], dtype=float) for k in prof_keys}
    rows = {k: [] for k in ("season", "stability_class", "speed_class", "sector", "wind_from_deg", "frequency",
                            *CLASS_FIELDS, *prof_keys)}
    for s in season_names:
        in_s = ok & in_season[s]
        ws_valid = weight[in_s].sum()
        if ws_valid <= 0:
            continue
        # one int64 key per hour: stability, speed class, reference height [0.1 m] (< 10^6)
        zr10 = np.round(zref[in_s] * 10).astype(np.int64)
        keys = (stab[in_s].astype(np.int64) * 100 + spd[in_s]) * 1_000_000 + zr10
        idx_s = np.flatnonzero(in_s)
        uniq, inv = np.unique(keys, return_inverse=True)
        inv = inv.ravel()
        for key, members in zip(uniq, _group_members(idx_s, inv, len(uniq))):
            k_stab, k_spd = int(key // 1_000_000) // 100, int(key // 1_000_000) % 100
            w = weight[members]
            wt = w.sum()
            rep = _representative({k: v[members] for k, v in h.items()}, w)
            for k in prof_keys:
                rep[k] = _harmonic_profile(prof[k][members], w)
            if sector_frequencies is None:
                sec_w = np.bincount(sec[members], weights=w, minlength=n_sectors)
            else:
                sec_w = wt * np.asarray(sector_frequencies[s], dtype=float)
            for d in np.flatnonzero(sec_w > 0):
                rows["season"].append(s)
                rows["stability_class"].append(STABILITY_CLASSES[k_stab])
                rows["speed_class"].append(int(k_spd) + 1)
                rows["sector"].append(int(d) + 1)
                rows["wind_from_deg"].append(d * 360.0 / n_sectors)
                rows["frequency"].append(sec_w[d] / ws_valid)
                for k in (*CLASS_FIELDS, *prof_keys):
                    rows[k].append(rep[k])
    classes = {k: np.asarray(v) for k, v in rows.items()}
    for k in prof_keys:
        classes[k] = classes[k].reshape(-1, len(profile_heights_m))
    for k in ("speed_class", "sector"):
        classes[k] = classes[k].astype(int)
    return Climatology(classes=classes, season_frequency=season_frequency, calm_frequency=calm_frequency,
                       source=source, profile_heights_m=tuple(float(z) for z in profile_heights_m))


def _season_masks(season):
    """``({season: bool mask of its hours}, season names in order)``: :data:`SEASONS` first, then any
    other name sorted; each comparison made once (a million hours: tens of ms each)."""
    in_season = {s: season == s for s in SEASONS}
    known = np.logical_or.reduce(list(in_season.values()))
    others = sorted(set(season[~known].tolist()))
    for s in others:
        in_season[s] = season == s
    return in_season, [s for s in SEASONS if in_season[s].any()] + others


def _group_members(index, group, n_groups):
    """Per group 0..n_groups-1, the entries of ``index`` whose ``group`` it is, in their order (one
    stable sort, not one scan of every hour per group)."""
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n_groups + 1))
    return [index[order[bounds[g]:bounds[g + 1]]] for g in range(n_groups)]


def _season_frequencies(in_season, season_names, weight, calm, source):
    """``({season: share of the year's weight}, {season: calm share of the season's weight})``;
    ``in_season``: {season: bool mask of its hours}."""
    total_w = weight.sum()
    if total_w <= 0:
        raise InputError(f"{source}: no hours to build a climatology from")
    season_frequency, calm_frequency = {}, {}
    for s in season_names:
        ws = weight[in_season[s]].sum()
        season_frequency[s] = float(ws / total_w)
        calm_frequency[s] = float(weight[in_season[s] & calm].sum() / ws) if ws > 0 else 0.0
    return season_frequency, calm_frequency


def _harmonic_profile(a, w):
    """Weighted harmonic mean over hours of an (hour, level) profile [m s-1], per level, over the
    hours that observed it (finite, > 0); NaN where none did."""
    okp = np.isfinite(a) & (a > 0)
    num = np.sum(np.where(okp, w[:, None], 0.0), axis=0)
    den = np.sum(np.where(okp, w[:, None] / np.where(okp, a, 1.0), 0.0), axis=0)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _representative(h, w):
    """Representative boundary-layer parameters of one class (see :func:`classify_hours`)."""
    wt = w.sum()

    def mean(a, mask=None):
        m = np.isfinite(a) if mask is None else (mask & np.isfinite(a))
        return float(np.sum(w[m] * a[m]) / np.sum(w[m])) if np.sum(w[m]) > 0 else math.nan

    def harmonic(a, mask=None):
        inv = mean(1.0 / a, mask)
        return 1.0 / inv if inv > 0 else math.nan

    out = {k: mean(h[k]) for k in ("reference_height_m", "temperature_k", "temperature_height_m",
                                   "theta_gradient_k_m")}
    for k in ("wind_speed_m_s", "friction_velocity_m_s", "mech_mixing_height_m"):
        out[k] = harmonic(h[k])
    out["roughness_length_m"] = float(math.exp(np.sum(w * np.log(h["roughness_length_m"])) / wt))
    inv_l = mean(1.0 / h["monin_obukhov_length_m"])
    if inv_l < 0.0:
        conv = h["monin_obukhov_length_m"] < 0
        out["monin_obukhov_length_m"] = 1.0 / inv_l
        out["conv_mixing_height_m"] = harmonic(h["conv_mixing_height_m"], conv)
        out["convective_velocity_m_s"] = harmonic(h["convective_velocity_m_s"], conv)
    else:
        out["monin_obukhov_length_m"] = 1.0 / inv_l if inv_l > 1e-8 else 1.0e8
        out["conv_mixing_height_m"] = math.nan
        out["convective_velocity_m_s"] = math.nan
    if not np.isfinite(out["temperature_height_m"]):
        out["temperature_height_m"] = 2.0
    return out


def climatology_from_met(met, *, source=None):
    """The climatology of an hourly :class:`engine.dispersion.met.MetHours` (e.g. from an AERMET file).

    Seasons from the hours' dates (``YYMMDDHH``; Nov-Mar heating); missing hours are dropped,
    calm hours (AERMOD: reference wind 0, or below :data:`CALM_THRESHOLD_M_S`) are counted in
    ``calm_frequency``; every other hour is classed by :func:`classify_hours`. With a profile,
    the lowest level's wind is the transport wind, and observed sigma-v/sigma-w (when every hour
    has the same levels) are carried per class (LOVETT check: 0.934 -> 0.956 of the hourly mean).
    """
    keep = ~met.missing
    if not keep.any():
        raise InputError(f"{met.source}: every hour is missing; no climatology can be made")
    m = met.select(keep)
    month = (np.asarray(m.date) // 10000) % 100
    if ((month < 1) | (month > 12)).any():
        raise InputError(f"{met.source}: hour labels must be YYMMDDHH dates to assign seasons")
    hours = {k: getattr(m, k) for k in CLASS_FIELDS}
    hours["temperature_height_m"] = (m.temperature_height_m if m.temperature_height_m is not None
                                     else np.full(len(m), 2.0))
    hours["wind_from_deg"] = m.wind_from_deg
    if m.profile_height_m is not None:
        # AERMOD transports a near-ground plume with the observed profile wind below the lowest
        # level held at that level's value (caseD notes): the lowest level with speed and
        # direction replaces the reference wind
        z = m.profile_height_m
        ok = np.isfinite(z) & np.isfinite(m.profile_wind_speed_m_s) & np.isfinite(m.profile_wind_from_deg) \
            & (m.profile_wind_speed_m_s > 0)
        zz = np.where(ok, z, np.inf)
        j = np.argmin(zz, axis=1)
        has = np.isfinite(zz[np.arange(len(m)), j])
        r = np.arange(len(m))
        hours["wind_speed_m_s"] = np.where(has, m.profile_wind_speed_m_s[r, j], m.wind_speed_m_s)
        hours["wind_from_deg"] = np.where(has, m.profile_wind_from_deg[r, j], m.wind_from_deg)
        hours["reference_height_m"] = np.where(has, z[r, j], m.reference_height_m)
        # observed turbulence at the profile's levels, when every hour has the same levels
        levels = [np.unique(z[:, col][np.isfinite(z[:, col])]) for col in range(z.shape[1])]
        if all(lv.size == 1 for lv in levels) and np.isfinite(z).all():
            sv, sw = m.profile_sigma_v_m_s, m.profile_sigma_w_m_s
            if np.isfinite(sv).any() or np.isfinite(sw).any():
                heights = tuple(float(lv[0]) for lv in levels)
                hours["profile_sigma_v_m_s"], hours["profile_sigma_w_m_s"] = sv, sw
                return classify_hours(hours, season=season_of_month(month), weight=m.weight, calm=m.calm,
                                      source=source or f"hourly file {met.source}", calm_threshold_m_s=0.0,
                                      profile_heights_m=heights)
    return classify_hours(hours, season=season_of_month(month), weight=m.weight, calm=m.calm,
                          source=source or f"hourly file {met.source}", calm_threshold_m_s=0.0)

"""AERMOD mode: the concentrations of an AERMOD control file's source groups.

The physics layer between a parsed control file (:func:`engine.aermod.control.read_aermod_inp`) and
the writers: builds the sources of each card, partitions them by source group and urban/rural,
computes hourly concentrations (:mod:`engine.dispersion.area`), zeroes calm and missing hours and
averages over the period as AERMOD does. ``cobenefits aermod`` reads the files, calls
:func:`compute_groups` and writes AERMOD's outputs.
"""

from __future__ import annotations

import numpy as np

from engine.errors import InputError

__all__ = ["compute_groups", "group_concentrations", "turbulence_label"]


def compute_groups(ctl, met, *, method="auto", lateral_cdf="aermod_table"):
    """Hourly and period concentrations [ug m-3] of every source group of a control file.

    AERMOD writes 0 for calm and missing hours in its hourly outputs; the period average is
    :func:`engine.dispersion.area.period_average` of those hours.

    Returns
    -------
    hourly_by_group : dict {group: (n_hours, n_receptors) ndarray}
    period_by_group : dict {group: (n_receptors,) ndarray}
    """
    from engine.dispersion.area import period_average

    hourly_by_group = group_concentrations(ctl, met, method=method, lateral_cdf=lateral_cdf)
    n_hours = int(np.asarray(met.wind_speed_m_s).size)
    skip = np.zeros(n_hours, dtype=bool)
    for flag in ("calm", "missing"):
        if getattr(met, flag, None) is not None:
            skip |= np.asarray(getattr(met, flag), dtype=bool)
    period_by_group = {}
    for g, hourly in hourly_by_group.items():
        if skip.any():
            hourly = hourly.copy()
            hourly[skip] = 0.0
            hourly_by_group[g] = hourly
        period_by_group[g] = np.asarray(period_average(hourly, met), dtype=np.float64)
    return hourly_by_group, period_by_group


def turbulence_label(met):
    """AERMOD's options-line label for observed turbulence in the profile file (PFLCNV):
    "SigA&SigW", "SigA Data", "SigW Data" or ""."""
    sv = getattr(met, "profile_sigma_v_m_s", None)
    sw = getattr(met, "profile_sigma_w_m_s", None)
    sa = sv is not None and bool(np.isfinite(sv).any())
    sw = sw is not None and bool(np.isfinite(sw).any())
    return "SigA&SigW" if sa and sw else "SigA Data" if sa else "SigW Data" if sw else ""


def group_concentrations(ctl, met, *, method="auto", lateral_cdf="aermod_table"):
    """Hourly concentrations [ug m-3] of every source group of the control file.

    Sources are partitioned by the set of groups they belong to (and by urban/rural), each
    partition computed once (AREA sources through :func:`engine.dispersion.area.area_concentrations`,
    gridded where the layout allows; AREAPOLY and AREACIRC through
    :func:`engine.dispersion.area.polygon_concentrations`); a group is the sum of its partitions
    (AERMOD SUMVAL adds each source's value to every group that holds it).
    """
    rec = ctl.receptors
    n_hours = int(np.asarray(met.wind_speed_m_s).size)
    members = {g: set(ids) for g, ids in ctl.groups}
    parts = {}
    for s in ctl.sources:
        key = (tuple(g for g, _ in ctl.groups if s.source_id in members[g]), s.urban)
        parts.setdefault(key, []).append(s)
    out = {g: np.zeros((n_hours, len(rec))) for g, _ in ctl.groups}
    # receptor heights above ground only when CO FLAGPOLE is on (AERMOD ignores ZFLAG otherwise)
    height = {"receptor_z_m": rec.flagpole_m} if ctl.flagpole else {}
    for (groups, urban), cards in parts.items():
        if not groups:
            continue
        kw = dict(height)
        if urban:  # AERMOD urban boundary layer for URBANSRC sources (URBANOPT)
            kw.update(urban_population=ctl.urban_option[0], urban_roughness_m=ctl.urban_option[2])
        conc = np.zeros((n_hours, len(rec)))
        rect = [c for c in cards if c.source_type == "AREA"]
        poly = [c for c in cards if c.source_type != "AREA"]
        if rect:
            from engine.dispersion.area import area_concentrations

            conc += area_concentrations(_area_sources(ctl, rect), rec.x_m, rec.y_m, met,
                                        method=method, lateral_cdf=lateral_cdf, **kw)
        if poly:
            from engine.dispersion.area import polygon_concentrations

            conc += polygon_concentrations(_polygon_sources(ctl, poly), rec.x_m, rec.y_m, met,
                                           lateral_cdf=lateral_cdf, **kw)
        for g in groups:
            out[g] += conc
    return out


def _polygon_sources(ctl, cards):
    """PolygonSources for AREAPOLY (AREAVERT vertices) and AREACIRC (AERMOD's equal-area
    regular polygon, GENCIR) cards; range errors name the SRCPARAM line."""
    from engine.dispersion.area import PolygonSources, regular_polygon_vertices

    def verts(c):
        if c.source_type == "AREACIRC":
            return regular_polygon_vertices(c.x_sw_m, c.y_sw_m, c.radius_m, c.n_vertices)
        return (np.array([v[0] for v in c.vertices]), np.array([v[1] for v in c.vertices]))

    for c in cards:
        try:
            PolygonSources([verts(c)], [c.rate_g_m2_s], [c.release_height_m],
                           [c.initial_sigma_z_m])
        except ValueError as one:
            raise InputError(f"{ctl.path}, line {c.line}: SRCPARAM {c.source_id}: {one}") from None
    return PolygonSources([verts(c) for c in cards], [c.rate_g_m2_s for c in cards],
                          [c.release_height_m for c in cards],
                          [c.initial_sigma_z_m for c in cards])


def _area_sources(ctl, cards):
    """Build the physics layer's AreaSources; its range errors name the SRCPARAM line."""
    from engine.dispersion.area import AreaSources as cls

    def build(cards):
        return cls(
            x_sw_m=np.array([s.x_sw_m for s in cards]),
            y_sw_m=np.array([s.y_sw_m for s in cards]),
            x_len_m=np.array([s.x_len_m for s in cards]),
            y_len_m=np.array([s.y_len_m for s in cards]),
            angle_deg=np.array([s.angle_deg for s in cards]),
            rate_g_m2_s=np.array([s.rate_g_m2_s for s in cards]),
            release_height_m=np.array([s.release_height_m for s in cards]),
            initial_sigma_z_m=np.array([s.initial_sigma_z_m for s in cards]),
        )

    try:
        return build(cards)
    except ValueError as exc:  # InputError is a ValueError too
        for s in cards:  # find the first source the physics layer rejects
            try:
                build([s])
            except ValueError as one:
                raise InputError(f"{ctl.path}, line {s.line}: SRCPARAM {s.source_id}: "
                                 f"{one}") from None
        raise InputError(f"{ctl.path}: SO pathway: {exc}") from None

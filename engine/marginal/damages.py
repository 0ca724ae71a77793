"""Marginal damages: national premature deaths per kt yr-1 of primary PM2.5 emitted by each source.

.. math:: MD_j = \\frac{\\partial D}{\\partial E_j} = \\sum_i f_i'(C_i)\\, \\frac{\\partial C_i}{\\partial E_j}

with :math:`D = \\sum_i f_i(C_i)` the attributable deaths of the receptor cities
(:class:`engine.marginal.stages.HealthModel`, slopes :mod:`kernels.crf_derivative`) and
:math:`\\partial C / \\partial E_j` the response of every city to one more kt yr-1 at source j,
formed by :func:`engine.pipeline.superpose` itself on a unit-emission basis: the extra kt is
spread over the source's area as the carbon stage spreads its emission and over the seasons
with the source's own seasonal shares (a kt more of the source's present mix), so that the
seasonal matrices are used exactly as in the national run. An emission-height axis of ``q``
and ``S`` would make the basis one unit per (source, height) with no other change.

The same draw index serves every city (as the national totals); the 95 % interval is over
draws of the national sum.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from engine import pipeline as pl
from engine.marginal.stages import G_PER_KT, health_model, kt_per_q, run_stages
from engine.constants import SECONDS_PER_YEAR
from engine.errors import InputError

__all__ = ["marginal_damages", "damages_at", "unit_response", "part_responses", "health_slope", "LANDS"]

#: where a source's damage lands, relative to the source
LANDS = {"own_city": "in the source city itself",
         "other_cities_same_province": "in the other cities of the source's province",
         "other_provinces": "in the cities of other provinces"}

_MD_UNITS = "deaths yr-1 (kt yr-1)-1"


def _unit_rates(area_km2):
    """1 kt yr-1 spread over each source's area [g m-2 s-1]; 0 for a source with no area (it cannot emit)."""
    area_m2 = np.asarray(area_km2, dtype=float) * 1e6
    return np.divide(G_PER_KT, area_m2 * SECONDS_PER_YEAR, out=np.zeros(area_m2.shape), where=area_m2 > 0)


def unit_response(S, q, scenario, area_km2):
    """``dC/dE[unit, city]`` [ug m-3 per kt yr-1]: the exposure of every city from 1 kt yr-1
    more at each source, by :func:`engine.pipeline.superpose` on a unit-emission basis.

    Parameters
    ----------
    S : xarray.Dataset from :func:`engine.pipeline.sr_matrix`
    q : xarray.Dataset from :func:`engine.pipeline.emissions`
    scenario : str          whose seasonal shares the extra kt follows
    area_km2 : (n_source,)  :func:`engine.marginal.stages.source_area_km2` [km2]
    """
    labels = q["source"].values
    n = len(labels)
    dq = _unit_rates(area_km2)
    basis = xr.Dataset({"q": (("unit", "source"), np.diag(dq))},
                       coords={"unit": labels, "source": labels})
    if "season_share" in q:
        sh = q["season_share"].sel(scenario=scenario).transpose("season", "source")
        basis["season_share"] = (("season", "unit", "source"), np.broadcast_to(sh.values[:, None, :], (sh.sizes["season"], n, n)))
        basis = basis.assign_coords(season=sh["season"].values)
    for name in ("height_share", "season_height_share"):  # emission heights: the source's class mix
        if name in q:
            sh = q[name].sel(scenario=scenario)
            lead = [d for d in sh.dims if d != "source"]
            v = sh.transpose(*lead, "source").values
            basis[name] = ((*lead, "unit", "source"), np.broadcast_to(v[..., None, :], v.shape[:-1] + (n, n)))
            basis = basis.assign_coords({d: sh[d].values for d in lead})
    return pl.superpose(S, basis, parts=False)["conc_ug_m3"].transpose("unit", "city")


def part_responses(S, q, scenario, area_km2):
    """``dC/dE`` of 1 kt yr-1 more at each source, emitted wholly in one part of the year and the
    air: ``(J, parts)``, ``J`` (n_part, source, city) [ug m-3 per kt yr-1] and ``parts`` the
    (season, height class) of each (:func:`engine.pipeline.superpose_terms`: the terms the
    superposition sums). A source's response to a kt of its present mix is ``sum_p share_p J_p``.

    An action that cuts one sector moves the mix (power stacks, household stoves): with the
    emission change of each part, ``sum_p dE_p MD_p`` is the first-order change of deaths
    whatever the mix does, where the MD of the present mix assumes it stays.
    """
    dq = _unit_rates(area_km2)
    mats, _, parts = pl.superpose_terms(S, q.sel(scenario=scenario) if "scenario" in q.dims else q)
    if mats is None:
        mats = np.asarray(S["S"].values, dtype=float)[None]
    return np.stack([dq[:, None] * M.T for M in mats]), parts


def health_slope(hm, z, *, central=False):
    """:math:`G_{r,d} = \\sum_k W_{r,k} PAF'_{k,d}(z_r)` [deaths yr-1 (ug m-3)-1], ``(n_city,
    n_draw)`` (``central``: ``(n_city, 1)`` at the central parameters)."""
    from kernels.crf_derivative import weighted_fraction_slope

    params = hm.params_central if central else hm.params_draws
    out = np.empty((len(z), params.shape[1]))
    weighted_fraction_slope(hm.model, np.ascontiguousarray(z, dtype=float), params, hm.weight, out)
    return out


def _land_masks(S):
    Sa = S["S"]
    city = Sa["city"].values
    kind = Sa["source_kind"].values
    own = (kind[None, :] == "city") & (Sa["source_id"].values[None, :] == city[:, None])
    same = Sa["source_province"].values[None, :] == Sa["city_province"].values[:, None]
    return {"own_city": own, "other_cities_same_province": same & ~own, "other_provinces": ~same}


def damages_at(stages, scenario, hm=None, *, age_population_fn=None):
    """Marginal damages of every source at one scenario (:func:`marginal_damages` for one).

    Returns
    -------
    xarray.Dataset over ``source`` (and ``draw`` for ``md_draws``).
    """
    S, q, prep = stages.S, stages.q, stages.prep
    base = stages.base
    q = q.reindex(source=S["source"].values)
    conc = pl.superpose(S, q, parts=False)["conc_ug_m3"].transpose("scenario", "city")
    cb = conc.sel(scenario=base).values
    if hm is None:
        hm = health_model(prep, cb, age_population_fn=age_population_fn)
    z = hm.exposure(cb, conc.sel(scenario=scenario).values)
    area = _area_for(stages, S)
    J = unit_response(S, q, scenario, area).values                     # (source, city)
    Gc = health_slope(hm, z, central=True)[:, 0]
    out = {"md_central": J @ Gc}
    masks = _land_masks(S)
    for name, m in masks.items():
        out[f"md_{name}_central"] = (J * m.T) @ Gc
    if hm.n_draw:
        Gd = health_slope(hm, z)                                         # (city, draw)
        D = J @ Gd                                                       # (source, draw)
        out["md_draws"] = D
        out["md_mean"] = D.mean(axis=1)
        out["md_p2_5"], out["md_p97_5"] = np.percentile(D, [2.5, 97.5], axis=1)
        for name, m in masks.items():
            out[f"md_{name}_mean"] = ((J * m.T) @ Gd).mean(axis=1)
    Jp, parts = part_responses(S, q, scenario, area)
    out["md_part_central"] = np.stack([J @ Gc for J in Jp], axis=1)      # (source, part)
    no_area = area <= 0
    for k in out:
        out[k] = np.where(no_area[:, None] if out[k].ndim == 2 else no_area, np.nan, out[k])
    e_kt = (q["q"].sel(scenario=scenario).values * kt_per_q(prep)[_order(stages, S)])
    ds = xr.Dataset(coords={"source": S["source"].values,
                            **{c: ("source", S[c].values) for c in ("source_kind", "source_id", "source_province")}})
    for k, v in out.items():
        dims = ("source", "part") if k == "md_part_central" else ("source", "draw") if v.ndim == 2 else ("source",)
        ds[k] = (dims, v, {"units": _MD_UNITS, "long_name": _long_name(k)})
    ds = ds.assign_coords(part_season=("part", [a for a, _ in parts]), part_height=("part", [b for _, b in parts]))
    ds["emission_kt_yr"] = ("source", e_kt, {"units": "kt yr-1", "long_name": "primary PM2.5 emission of the source"})
    ds["exposure_ug_m3"] = ("city", z, {"units": "ug m-3", "long_name": "exposure the health function is evaluated at"})
    ds = ds.assign_coords(city=S["city"].values)
    ds["health_slope_central"] = ("city", Gc, {"units": "deaths yr-1 (ug m-3)-1",
                                               "long_name": "slope of the city's attributable deaths with exposure, "
                                                            "central parameters"})
    return ds


def _order(stages, S):
    labels = list(stages.prep.source_labels)
    pos = {lab: k for k, lab in enumerate(labels)}
    return np.array([pos[lab] for lab in S["source"].values])


def _area_for(stages, S):
    from engine.marginal.stages import source_area_km2

    return source_area_km2(stages.prep)[_order(stages, S)]


def _long_name(k):
    if k == "md_part_central":
        return ("marginal damage of a kt yr-1 emitted wholly in one season and emission-height class "
                "(part_season, part_height); central parameters")
    stat = ("central parameters" if k.endswith("_central") else "mean over draws" if k.endswith("_mean")
            else "2.5th percentile over draws" if k.endswith("p2_5") else "97.5th percentile over draws"
            if k.endswith("p97_5") else "per parameter draw (same draw in every city)")
    for name, what in LANDS.items():
        if f"_{name}_" in k:
            return f"marginal damage landing {what}; {stat}"
    return f"marginal damage: national premature deaths per kt yr-1 more primary PM2.5 from the source; {stat}"


def marginal_damages(config=None, *, scenarios=None, cities=None, data=None, carbon_fn=None,
                     age_population_fn=None, use_cache=True, workers=None, quiet=True, stages=None):
    """Deaths per kt yr-1 of primary PM2.5 for every source (each city and rest of province).

    Parameters
    ----------
    config : None, path, list of paths or engine.config.Config
        Scenario TOML files (default: the shipped scenarios).
    scenarios : str or list of str, optional
        Scenarios to evaluate the marginal damages at (default: every scenario of the
        configuration, the Base-Case first).
    cities : str, optional
        Receptor-city selector (``[data] cities``).
    stages : engine.marginal.stages.Stages, optional
        The pipeline's first stages, already run (:func:`engine.marginal.stages.run_stages`).

    Returns
    -------
    xarray.Dataset
        Dimensions ``(scenario, source)`` (``draw`` for ``md_draws``): ``md_central``,
        ``md_mean``, ``md_p2_5``, ``md_p97_5`` [deaths yr-1 (kt yr-1)-1] and their split by
        where the deaths occur (``md_own_city_*``, ``md_other_cities_same_province_*``,
        ``md_other_provinces_*``), the source's emission ``emission_kt_yr``.
    """
    if stages is None:
        stages = run_stages(config, cities=cities, data=data, carbon_fn=carbon_fn, use_cache=use_cache,
                            workers=workers, quiet=quiet)
    names = list(stages.prep.cfg.scenario_names)
    want = names if scenarios is None else ([scenarios] if isinstance(scenarios, str) else list(scenarios))
    unknown = [s for s in want if s not in names]
    if unknown:
        raise InputError(f"scenarios: {unknown} not in the configuration; known: {', '.join(names)}")
    conc_b = pl.superpose(stages.S, stages.q, parts=False)["conc_ug_m3"].sel(scenario=stages.base).values
    hm = health_model(stages.prep, conc_b, age_population_fn=age_population_fn)
    parts = [damages_at(stages, s, hm) for s in want]
    ds = xr.concat(parts, dim=xr.DataArray(want, dims="scenario", name="scenario"), data_vars="all",
                   coords="minimal", compat="override", join="override")
    ct = stages.prep.city_table.set_index("city_id")
    prov = stages.prep.data.provinces
    cname = "name_en" if "name_en" in ct else "name"
    pname = "name_en" if "name_en" in prov else "name" if "name" in prov else None
    names_src = [ct.loc[s.id, cname] if s.kind == "city" else f"rest of {prov.loc[s.id, pname]}"
                 if pname else f"rest of province {s.id}" for s in stages.prep.sources]
    lab = {s.label: n for s, n in zip(stages.prep.sources, names_src)}
    src = {s.label: s for s in stages.prep.sources}
    ds = ds.assign_coords(source_name=("source", [str(lab[x]) for x in ds["source"].values]),
                          source_lat=("source", [src[x].lat for x in ds["source"].values]),
                          source_lon=("source", [src[x].lon for x in ds["source"].values]))
    ds.attrs.update({"title": "marginal damages of primary PM2.5 by source", "crf": hm.crf,
                     "base_scenario": stages.base, "draws": hm.n_draw,
                     "method": "MD_j = sum_i f_i'(C_i) dC_i/dE_j; dC/dE by engine.pipeline.superpose on a unit-"
                               "emission basis (1 kt yr-1 over the source's area, the source's seasonal shares); "
                               "f' analytic (kernels.crf_derivative); receptors: the selected cities' populations",
                     "health_concentration": "background" if hm.background_ug_m3 is not None else "primary"})
    return ds

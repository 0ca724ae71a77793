"""The national run as a library: named stages on plain data, no file I/O.

::

    prepare -> carbon -> emissions -> sr_matrix -> superpose -> health -> metrics

Each stage is a function of the previous stages' results (xarray Datasets with units in
``attrs``, or pandas tables); none writes a file. :func:`run` chains them for a notebook and
returns one Dataset with dimensions ``(scenario, city)``; ``cobenefits run`` calls the same
stages and then the writers (:mod:`engine.commands.run`); a sweep reuses ``sr_matrix`` and
evaluates ``superpose`` / ``health`` for many emission vectors.

>>> import engine
>>> ds = engine.run(cities="Hebei")                                   # doctest: +SKIP
>>> ds.conc_ug_m3.sel(scenario="fyp_symbiosis").to_series().describe() # doctest: +SKIP

Concentration is linear in emissions: with the source-receptor matrix ``S[city, source]``
[ug m-3 per g m-2 s-1] (:mod:`engine.dispersion.srmatrix`) and the emission intensities ``q[scenario,
source]`` [g m-2 s-1], city exposure is ``C = S @ q`` (:func:`superpose`, the one place this
formula is written).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from engine.dispersion import climatology as clim
from engine.dispersion import fields as fl
from engine.dispersion import geometry as geo
from engine.dispersion import plumerise as pr
from engine.dispersion import srmatrix as srm
from engine.dispersion.footprints import read_geojson_footprints
from engine.health import check_health_config
from engine.constants import MEGACITY_POPULATION, PM25_STANDARD_NAME, SR_UNITS, per_year_to_per_second
from engine.errors import InputError
from engine.output.persist import save_verified_npz, sha256_file

__all__ = [
    "Prepared",
    "prepare",
    "carbon",
    "emissions",
    "sr_matrix",
    "receptor_pass",
    "superpose",
    "superpose_arrays",
    "superpose_terms",
    "sr_dataset",
    "as_config",
    "health",
    "metrics",
    "run",
    "base_scenario",
    "r_squared",
]

log = logging.getLogger("cobenefits")


# --------------------------------------------------------------------------- prepare
@dataclasses.dataclass
class Prepared:
    """Everything checked and loaded before any work: configuration, data, geometry, met.

    Attributes
    ----------
    cfg : engine.config.Config
    data : engine.data.dataset.NationalData
    selected : list of int          receptor city ids, sorted
    geometries : dict {city_id: CityGeometry}   every city of the data set
    met_specs : dict {city_id: MetSpec}         the selected cities' met
    sources : list of engine.dispersion.srmatrix.Source    every city and rest of province
    receptor_sources : dict {city_id: list of int}  indices into ``sources`` each city sees
    lattices : dict {city_id: (fine, coarse, block)}
    population, population_key : population-density callable and its content key, or None
    inputs : dict   user files used: {key: {path, sha256, ...}}
    met_seasons : dict {city_id: tuple of MetSeason}   the seasons of each city's met
        (:func:`met_seasons`); one season named ``annual`` for non-seasonal met
    heights : engine.dispersion.plumerise.EmissionHeights or None
        ``[dispersion] emission_heights = "sector"``: the height classes and sector shares;
        None: every source at ``release_height_m`` (one class, ``ground``)
    """

    cfg: object
    data: object
    selected: list
    geometries: dict
    met_specs: dict
    sources: list
    receptor_sources: dict
    lattices: dict
    population: object = None
    population_key: str = ""
    inputs: dict = dataclasses.field(default_factory=dict)
    met_seasons: dict = dataclasses.field(default_factory=dict)
    heights: object = None

    @property
    def height_classes(self):
        """Emission-height classes of the run, ``('ground',)`` for ``emission_heights = "ground"``."""
        return self.heights.classes if self.heights is not None else ("ground",)

    @property
    def seasons(self):
        """Season names of the run, in order (``('annual',)`` without seasonal met)."""
        names = []
        for ms in self.met_seasons.values():
            names += [m.season for m in ms if m.season not in names]
        return tuple(names) or ("annual",)

    @property
    def city_table(self):
        c = self.data.cities
        return c.reset_index() if "city_id" not in c.columns else c

    @property
    def source_labels(self):
        return [s.label for s in self.sources]


def as_config(config, cities=None, scenarios=None):
    from engine.config import Config, load_config

    overrides = {"data": {"cities": cities}} if cities is not None else None
    if isinstance(config, Config):
        cfg = config
        if cities is not None:
            cfg = cfg.replace(data=dataclasses.replace(cfg.data, cities=cities))
    else:
        paths = None if config is None else ([config] if isinstance(config, (str, Path)) else list(config))
        cfg = load_config(paths, overrides=overrides)
    if scenarios is not None:
        want = [scenarios] if isinstance(scenarios, str) else list(scenarios)
        names = list(cfg.scenario_names)
        unknown = [s for s in want if s not in names]
        if unknown:
            raise InputError(f"scenarios: {unknown} not in the configuration; known: {', '.join(names)}")
        base = base_scenario(cfg)
        keep = set(want) | {base}
        cfg = cfg.replace(scenarios=tuple(sc for sc in cfg.scenarios if sc[0].name in keep))
    return cfg


def prepare(config=None, *, cities=None, scenarios=None, data=None, footprints=None, province_footprints=None,
            population=None, population_key=""):
    """Load and check everything a run needs; raise :class:`InputError` before any work.

    Parameters
    ----------
    config : None, path, list of paths or engine.config.Config
        Scenario TOML files (default: the shipped scenarios).
    cities : str, optional
        City selector (``"all"``, ids, names or provinces, comma-separated); overrides
        ``[data] cities``.
    scenarios : str or list of str, optional
        Scenarios to run (the base scenario is always kept).
    data : engine.data.dataset.NationalData, optional
        A data set in memory instead of ``[data] dir``.
    footprints : dict {city_id: Polygon}, optional
        Polygons instead of ``[dispersion] footprints_geojson``.
    population : callable (lat, lon) -> people km-2, optional
        Instead of ``[dispersion] population_grid``; ``population_key`` identifies its content.
    """
    from engine.data.dataset import load_dataset, select_cities

    cfg = as_config(config, cities, scenarios)
    files = cfg.dispersion.resolve_paths(cfg.paths)
    data = data if data is not None else load_dataset(cfg.data.dir or None)
    selected = sorted(int(c) for c in select_cities(data, cfg.data.cities).cities.index)
    if not selected:
        raise InputError(f"[data] cities = {cfg.data.cities!r} selects no city")
    c = data.cities
    ct = c.reset_index() if "city_id" not in c.columns else c
    p = data.provinces
    pt = p.reset_index() if "province_id" not in p.columns else p
    inputs = {}
    if "footprints_geojson" in files and footprints is None:
        fp_path = files["footprints_geojson"]
        centroids = {int(r.city_id): (float(r.centroid_lat), float(r.centroid_lon))
                     for r in ct.itertuples(index=False)}
        footprints = read_geojson_footprints(fp_path, id_property="city_id", valid_ids=centroids,
                                                 centroids=centroids)
        inputs["footprints_geojson"] = {"path": str(fp_path), "sha256": sha256_file(fp_path),
                                        "city_ids": sorted(footprints)}
    if footprints:
        unknown = sorted(set(footprints) - set(ct.city_id.astype(int)))
        if unknown:
            raise InputError(f"footprints: city_id(s) {unknown[:5]} are not in the data set")
    if "population_grid" in files and population is None:
        pg_path = files["population_grid"]
        population = geo.read_population_grid(pg_path)
        population_key = population.key
        inputs["population_grid"] = {"path": str(pg_path), "sha256": sha256_file(pg_path), "units": population.units,
                                     "content_key": population.key}
    elif population is not None and not population_key:
        population_key = getattr(population, "key", "") or ""
    d = cfg.dispersion
    # ROP = province minus ALL its cities in the data set (not only the selected ones)
    geoms = geo.build_city_geometries(ct, pt, city_resolution_m=d.city_resolution_m,
                                      rop_resolution_m=d.rop_resolution_m, city_margin_m=d.city_margin_m,
                                      footprints=footprints, province_footprints=province_footprints)
    prov_of = dict(zip(ct.city_id.astype(int), ct.province_id.astype(int)))
    specs = {cid: clim.met_spec_for_city(cfg.met, cid, prov_of[cid]) for cid in selected}
    # a broken met file stops the run here, before any work; the regions' met is built side by side
    # (the built-in climatology: seconds per region, mostly NumPy on whole arrays)
    unique = list({s.digest: s for s in specs.values()}.values())
    if len(unique) > 1:
        from concurrent.futures import ThreadPoolExecutor

        from engine.parallel import available_cores

        with ThreadPoolExecutor(max_workers=max(1, min(len(unique), available_cores()))) as pool:
            list(pool.map(clim.load_met, unique))
    else:
        for spec in unique:
            clim.load_met(spec)
    check_health_config(cfg.health)  # [health] functions_file, background, rates_file: before any work
    if cfg.run.scheduler:
        from engine.parallel import connect

        connect(cfg.run.scheduler).close()
    sources = srm.source_table(geoms)
    reach = d.source_reach_km * 1000.0
    rsrc = {cid: srm.sources_for_receptor(geoms[cid], sources, d.source_set, reach) for cid in selected}
    lattices = {cid: srm.receptor_lattices(geoms[cid], [sources[k] for k in rsrc[cid]], source_set=d.source_set,
                                           source_reach_m=reach) for cid in selected}
    if isinstance(population, geo.PopulationGrid):
        population = _crop_population(population, [lattices[c][0] for c in selected])
    seasons = met_seasons(specs, seasonal=cfg.met.seasonal_emissions)
    heights = pr.load_emission_heights() if d.emission_heights == "sector" else None
    return Prepared(cfg, data, selected, geoms, specs, sources, rsrc, lattices, population, population_key, inputs,
                    seasons, heights)


@dataclasses.dataclass(frozen=True)
class MetSeason:
    """One season of a city's met: the season's kernels and its weight in the annual mean.

    Attributes
    ----------
    season : str            ``heating`` | ``non_heating`` | ``annual`` (non-seasonal met)
    digest : str            content key of the season's met (kernel and row cache key)
    coefficient : float     c_s of :meth:`engine.dispersion.climatology.Climatology.season_coefficients`
                            (calms), 1 for ``annual`` [1]
    flat_share : float      share of a flat source's annual emission in the season
                            (days / 365; 1 for ``annual``) [1]
    """

    season: str
    digest: str
    coefficient: float
    flat_share: float


_SEASONAL_CACHE = {}


def met_seasons(specs, *, seasonal=True):
    """``{city_id: tuple of MetSeason}`` for ``{city_id: MetSpec}``.

    A climatology with both seasons of :data:`engine.dispersion.climatology.SEASONS` (the default AERMET-way
    climatology, or a climatology file made from a full year) gives one entry per season, so
    that heating-season emissions meet heating-season met (:func:`engine.dispersion.climatology.load_seasonal_met`);
    hourly, STAR and Golder met, a climatology file lacking a season, or ``seasonal=False`` give
    one ``annual`` entry (the annual met of :func:`engine.dispersion.climatology.load_met`).
    """
    out = {}
    for cid, spec in specs.items():
        entry = (MetSeason("annual", spec.digest, 1.0, 1.0),)
        if seasonal and spec.kind in ("aermet_climatology", "climatology_file"):
            sea = _seasonal_met(spec)
            if all(s in sea for s in clim.SEASONS):
                entry = tuple(MetSeason(s, sea[s][2], float(sea[s][1]), clim.SEASON_DAYS[s] / 365.0)
                              for s in clim.SEASONS)
        out[cid] = entry
    return out


def _seasonal_met(spec):
    """:func:`engine.dispersion.climatology.load_seasonal_met` of ``spec``, built once per process."""
    if spec.digest not in _SEASONAL_CACHE:
        _SEASONAL_CACHE[spec.digest] = clim.load_seasonal_met(spec)
    return _SEASONAL_CACHE[spec.digest]


def _season_met(spec, season):
    """The MetHours of one season of ``spec`` (``annual``: the annual met)."""
    if season == "annual":
        return clim.load_met(spec)
    return _seasonal_met(spec)[season][0]


def season_summary(prep, q):
    """How the annual mean was formed (for ``summary.json``): one matrix per season with the
    spread of the sources' heating-season shares, or one annual matrix and why."""
    if prep.seasons == ("annual",):
        why = ("[met] seasonal_emissions = false" if not prep.cfg.met.seasonal_emissions
               else "the met has no seasons (hourly, STAR, golder or a one-season climatology file)")
        return {"seasons": ["annual"], "method": f"one annual source-receptor matrix, flat emissions ({why})"}
    share = q["season_share"].sel(season="heating")
    return {"seasons": list(prep.seasons),
            "method": ("one source-receptor matrix per season (times the season's calm coefficient); each "
                       "source's annual emission split by season from its PM2.5 by sector "
                       "(engine/data/met/seasonal_emission_profiles.csv: heat-driven shares of heating and "
                       "power); C = sum over seasons of S_season @ (share * q)"),
            "heating_share_of_emissions": {"min": float(share.min()), "median": float(share.median()),
                                           "max": float(share.max()),
                                           "flat": clim.SEASON_DAYS["heating"] / 365.0}}


def _crop_population(pg, grids):
    """The part of a population grid the receptor grids can reach (less to ship to workers).

    Cropping keeps every value a receptor looks up, so it changes no result; the cache key stays
    the whole grid's content hash.
    """
    lats, lons = [], []
    for g in grids:
        lat, lon = g.latlon()
        lats += [float(lat.min()), float(lat.max())]
        lons += [float(lon.min()), float(lon.max())]
    ny, nx = pg.density.shape
    j0 = max(0, int(np.floor((min(lats) - pg.lat_first) / pg.step_lat)) - 1)
    j1 = min(ny, int(np.ceil((max(lats) - pg.lat_first) / pg.step_lat)) + 2)
    west = pg.lon_first - 0.5 * pg.step_lon
    lo = [(x - west) % 360.0 + west for x in lons]
    i0 = max(0, int(np.floor((min(lo) - pg.lon_first) / pg.step_lon)) - 1)
    i1 = min(nx, int(np.ceil((max(lo) - pg.lon_first) / pg.step_lon)) + 2)
    if j0 >= j1 or i0 >= i1 or max(lo) - min(lo) > 180.0:
        return pg  # nothing to crop to, or cities across the grid's longitude seam: keep it whole
    return dataclasses.replace(pg, lat_first=pg.lat_first + j0 * pg.step_lat,
                               lon_first=pg.lon_first + i0 * pg.step_lon,
                               density=np.ascontiguousarray(pg.density[j0:j1, i0:i1]))


# --------------------------------------------------------------------------- carbon, emissions
def base_scenario(cfg):
    """Name of the scenario others are compared against: ``base``, else the first with no
    efficiency and no symbiosis, else the first."""
    names = cfg.scenario_names
    if "base" in names:
        return "base"
    for s, c in cfg.scenarios:
        if c.efficiency_level == "none" and not c.symbiosis:
            return s.name
    return names[0]


def carbon(prep, *, carbon_fn=None):
    """The carbon front stage for every scenario (``engine.carbon.run_carbon``).

    Returns the carbon stage's result: ``cities``, ``rop`` and ``national`` tables (CO2 [t],
    PM2.5 [t] and intensities per city and ROP and scenario; Table 1-2 line items [Mt CO2]).
    """
    if carbon_fn is None:
        from engine.carbon import run_carbon as carbon_fn
    return carbon_fn(prep.cfg, prep.data)


def _q_column(df):
    if "q_g_m2_s" in df:
        return df["q_g_m2_s"].astype(float)
    return per_year_to_per_second(df["pm25_intensity_g_m2_yr"].astype(float))


def emissions(prep, carbon_result):
    """Emission intensity of every source in every scenario.

    Returns
    -------
    xarray.Dataset
        ``q(scenario, source)`` [g m-2 s-1] from the carbon stage's ``q_g_m2_s`` (or its
        ``pm25_intensity_g_m2_yr`` / seconds per year); coordinates ``source_kind``
        (city | rop), ``source_id``, ``source_province``. A rest of province with no row
        (a province wholly covered by its cities) emits 0.
    """
    scen = list(prep.cfg.scenario_names)
    cc = carbon_result.cities
    cc = cc[cc["scenario"].isin(scen)]
    rop = carbon_result.rop[carbon_result.rop["scenario"].isin(scen)]
    qc = pd.DataFrame({"scenario": cc["scenario"].values, "id": cc["city_id"].astype(int).values,
                       "q": _q_column(cc).values}).pivot(index="id", columns="scenario", values="q")
    qr = pd.DataFrame({"scenario": rop["scenario"].values, "id": rop["province_id"].astype(int).values,
                       "q": _q_column(rop).values}).pivot(index="id", columns="scenario", values="q")
    q = np.zeros((len(scen), len(prep.sources)))
    missing = []
    for k, s in enumerate(prep.sources):
        tab = qc if s.kind == "city" else qr
        if s.id in tab.index:
            q[:, k] = tab.loc[s.id].reindex(scen).to_numpy(dtype=float)
        elif s.kind == "city":
            missing.append(s.id)
    bad = ~np.isfinite(q)
    if missing or bad.any():
        ids = missing or [prep.sources[k].label for k in np.nonzero(bad.any(axis=0))[0]]
        raise InputError(f"carbon stage gave no finite q_g_m2_s / pm25_intensity_g_m2_yr for source(s) {ids[:5]}")
    if (q < 0).any():
        k = int(np.nonzero((q < 0).any(axis=0))[0][0])
        raise InputError(f"carbon stage gave a negative emission intensity for {prep.sources[k].label}")
    ds = xr.Dataset(
        {"q": (("scenario", "source"), q, {"long_name": "PM2.5 area-emission intensity", "units": "g m-2 s-1"})},
        coords=_source_coords(prep) | {"scenario": scen})
    seasons = prep.seasons
    if seasons != ("annual",):
        share = _season_shares(prep, cc, rop, scen)
        ds["season_share"] = (("season", "scenario", "source"), share,
                              {"long_name": "share of the source's annual PM2.5 emission emitted in the season "
                                            "(heat-driven sectors in the heating season)", "units": "1"})
        ds = ds.assign_coords(season=list(seasons))
    if prep.heights is not None:
        hs, joint = _height_shares(prep, cc, rop, scen)
        ds["height_share"] = (("height", "scenario", "source"), hs, {
            "long_name": "share of the source's annual PM2.5 emission released in the emission-height class "
                         "(engine/data/emission_heights.csv)", "units": "1"})
        if joint is not None:
            ds["season_height_share"] = (("season", "height", "scenario", "source"), joint, {
                "long_name": "share of the source's annual PM2.5 emission released in the season and height "
                             "class", "units": "1"})
        ds = ds.assign_coords(height=list(prep.height_classes))
    return ds


def _pm25_sectors(cc):
    """The sectors of the carbon stage's ``pm25_<sector>_t`` columns (none for a replaced ``carbon_fn``
    without them)."""
    return [c[len("pm25_"):-len("_t")] for c in cc.columns
            if c.startswith("pm25_") and c.endswith("_t") and c != "pm25_t"]


def _sector_emissions(prep, cc, rop, name, sectors):
    """(n_source, n_sector) PM2.5 [t] of scenario ``name`` by sector (carbon-stage columns)."""
    cols = [f"pm25_{sec}_t" for sec in sectors]
    e = np.zeros((len(prep.sources), len(sectors)))
    for kind, tab, idcol in (("city", cc, "city_id"), ("rop", rop, "province_id")):
        t = tab[tab["scenario"] == name]
        t = t.set_index(t[idcol].astype(int)).reindex(columns=cols)
        pos = [k for k, s in enumerate(prep.sources) if s.kind == kind]
        ids = [prep.sources[k].id for k in pos]
        e[pos] = t.reindex(ids).fillna(0.0).to_numpy(dtype=float)
    return e


def _height_shares(prep, cc, rop, scen):
    """``share[height, scenario, source]`` (and with seasonal met the joint ``[season, height,
    scenario, source]``) from the carbon stage's PM2.5 by sector and the sectors' height classes
    (:class:`engine.dispersion.plumerise.EmissionHeights`).

    A source's share in class h is ``sum_k e_k a_kh / sum_k e_k`` over sectors k (a_kh the
    sector's share in h); the joint share is that class's emission's seasonal split
    (:func:`engine.dispersion.climatology.seasonal_source_shares` of ``e_k a_kh``) times its
    height share. A source with no emission, or a carbon stage without sector columns, is
    all ground.
    """
    classes = prep.height_classes
    seasons = prep.seasons
    sectors = _pm25_sectors(cc)
    ns = len(prep.sources)
    hs = np.zeros((len(classes), len(scen), ns))
    hs[0] = 1.0
    seasonal = seasons != ("annual",)
    joint = None
    if seasonal:
        flat = np.array([clim.SEASON_DAYS[s] / 365.0 for s in seasons])
        joint = np.zeros((len(seasons), len(classes), len(scen), ns))
        joint[:, 0] = flat[:, None, None]
    if not sectors:
        log.info("carbon stage gave no PM2.5 by sector: every source at the ground")
        return hs, joint
    regions = np.array([clim.climate_region_of(s.province_id) for s in prep.sources])
    a = np.array([[prep.heights.sector_share(sec, c) for c in classes] for sec in sectors])  # (sector, class)
    for si, name in enumerate(scen):
        e = _sector_emissions(prep, cc, rop, name, sectors)
        tot = e.sum(axis=1)
        eh = e @ a  # (source, class)
        with np.errstate(invalid="ignore", divide="ignore"):
            sh = np.where(tot[:, None] > 0, eh / np.where(tot > 0, tot, 1.0)[:, None], 0.0)
        sh[tot <= 0, 0] = 1.0
        hs[:, si] = sh.T
        if seasonal:
            for h in range(len(classes)):
                ss = clim.seasonal_source_shares({sec: e[:, j] * a[j, h] for j, sec in enumerate(sectors)}, regions)
                for j, season in enumerate(seasons):
                    joint[j, h, si] = ss[season] * sh[:, h]
    return hs, joint


def _season_shares(prep, cc, rop, scen):
    """``share[season, scenario, source]`` from the carbon stage's PM2.5 by sector.

    :func:`engine.dispersion.climatology.seasonal_source_shares` on the ``pm25_<sector>_t`` columns of the
    carbon tables, with each source's climate region (its province's). A carbon stage without
    sector columns (a replaced ``carbon_fn``) gives flat shares (days / 365): no covariance.
    """
    seasons = prep.seasons
    sectors = _pm25_sectors(cc)
    flat = np.array([clim.SEASON_DAYS[s] / 365.0 for s in seasons])
    share = np.repeat(flat[:, None, None], len(scen), axis=1).repeat(len(prep.sources), axis=2)
    if not sectors:
        log.info("carbon stage gave no PM2.5 by sector: flat seasonal emissions")
        return share
    regions = np.array([clim.climate_region_of(s.province_id) for s in prep.sources])
    for si, name in enumerate(scen):
        e = _sector_emissions(prep, cc, rop, name, sectors)
        sh = clim.seasonal_source_shares({sec: e[:, j] for j, sec in enumerate(sectors)}, regions)
        for j, season in enumerate(seasons):
            share[j, si] = sh[season]
    return share


def _source_coords(prep):
    s = prep.sources
    return {"source": [x.label for x in s], "source_kind": ("source", [x.kind for x in s]),
            "source_id": ("source", np.array([x.id for x in s], dtype=np.int64)),
            "source_province": ("source", np.array([x.province_id for x in s], dtype=np.int64))}


# --------------------------------------------------------------------------- source-receptor matrix
def _receptor_task(item, shared):
    cid = item
    prep_s = shared["prep"]
    geom = prep_s["geometries"][cid]
    idx = prep_s["receptor_sources"][cid]
    src = [prep_s["sources"][k] for k in idx]
    kern = shared["kernels"]
    o = shared["options"]
    q = shared["q"][:, idx] if shared.get("q") is not None else None
    seasons = prep_s["met_seasons"][cid]
    urban = shared.get("urban_class")  # [dispersion] urban: urban city sources get their node kernels
    # (class, kernel-key suffix, row-cache key); "" = ground
    heights = shared.get("heights") or (("ground", "", ""),)
    hshare = shared.get("height_share")  # (height, scenario, source), or None
    jshare = shared.get("season_height_share")  # (season, height, scenario, source), or None
    single = len(seasons) == 1 and len(heights) == 1
    base = None
    if hshare is not None:
        hb = hshare[:, shared.get("base_index", 0)]
        base = (hb[:, prep_s["sources"].index(next(s for s in src if s.label == f"c{cid}"))],
                hb[:, prep_s["sources"].index(next(s for s in src if s.label == f"r{geom.province_id}"))])
    parts = []  # season-major: (season met, part)
    for m in seasons:
        si = shared["season_index"].get(m.season)
        for hi, (_cls, hkey, rkey) in enumerate(heights):
            qs = None
            if q is not None:
                # the season's emission rate q share_s / f_s weighs f_s (1 - calm_s) / sum(...) in the
                # annual mean: c_s share_s q (engine.dispersion.climatology.Climatology.season_coefficients);
                # a height class takes its share of q (share_{s,h} jointly with seasons)
                if m.season == "annual":
                    qs = q if hshare is None else hshare[hi][:, idx] * q
                elif jshare is not None:
                    qs = m.coefficient * jshare[si, hi][:, idx] * q
                else:
                    qs = m.coefficient * shared["season_share"][si][:, idx] * q
            sfx = (hkey,) if hkey else ()
            kf, kc = kern[(m.digest, "fine") + sfx], kern[(m.digest, "coarse") + sfx]
            if urban is None:
                sk = None if not hkey else [((1.0, kf, kc),)] * len(src)
                ukey = rkey
            else:
                sk = _source_kernels(src, urban, kern, m.digest, sfx)
                ukey = repr(("nodes", sorted((s.label, urban[s.id]) for s in src if s.kind == "city"))) + (
                    f"|{rkey}" if rkey else "")
            # the unit fields of a flat emission: c_s f_s times the base scenario's height share
            wu = m.coefficient * m.flat_share
            parts.append(srm.ReceptorPart(kf, kc, sk, m.digest, ukey, qs, (wu * (1.0 if base is None else base[0][hi]),
                                                                          wu * (1.0 if base is None else base[1][hi]))))
    common = dict(lattices=prep_s["lattices"][cid], population=shared.get("population"),
                  population_key=o["population_key"], use_cache=o["use_cache"], release_height_m=o["release_height_m"],
                  initial_sigma_z_m=o["initial_sigma_z_m"], source_set=o["source_set"],
                  source_reach_m=o["source_reach_m"], raster_memo={})
    if single or o.get("parts_method") == "per_part":
        # one compute_receptor per part (the reference the spectral path is tested against)
        res = [srm.compute_receptor(geom, src, p.kernel_fine, p.kernel_coarse, q=p.q, met_digest=p.met_digest,
                                    mosaic=shared.get("mosaic") if single else None, source_kernels=p.source_kernels,
                                    urban_key=p.urban_key, **common) for p in parts]
        return res[0] if single else _combine_parts(res, seasons, len(heights), shared.get("mosaic"), base)
    rows, fields = srm.compute_receptor_parts(geom, src, parts, **common)
    res = _combine_parts(rows, seasons, len(heights), None)
    if fields is not None:
        for k, v in fields.items():
            setattr(res, k, v)
        if shared.get("mosaic") is not None:
            res.mosaic = srm.mosaic_values(res.grid, res.city_fraction, res.pm25, shared["mosaic"])
    return res


def _combine_parts(parts, seasons, n_height, mosaic, base_height_share=None):
    """One ReceptorResult from a city's per-(season, height class) results (season-major order).

    ``row``, ``unit_city`` and ``unit_rop`` are those of a flat (all-year) emission of the ground
    class, sum_s c_s f_s X_s; ``season_rows`` holds c_s row_s per season (what the seasonal
    superposition uses). With height classes, ``height_rows[h]`` = sum_s c_s f_s row_{s,h} and
    ``season_height_rows[s, h]`` = c_s row_{s,h}; the unit fields then take each class with the
    own city's / own rest of province's base-scenario height share (``base_height_share``, a pair
    of (n_height,) arrays). The scenario fields ``pm25`` (already weighted by c_s share_{s,h}) add up.
    """
    grid = [[parts[i * n_height + h] for h in range(n_height)] for i in range(len(seasons))]
    ground = [g[0] for g in grid]
    res = dataclasses.replace(parts[0])
    w = [m.coefficient * m.flat_share for m in seasons]
    res.row = sum(wi * p.row for wi, p in zip(w, ground))
    if len(seasons) > 1 or seasons[0].season != "annual":
        res.season_rows = np.stack([m.coefficient * p.row for m, p in zip(seasons, ground)])
    if n_height > 1:
        res.height_rows = np.stack([sum(wi * g[h].row for wi, g in zip(w, grid)) for h in range(n_height)])
        if res.season_rows is not None:
            res.season_height_rows = np.stack([[m.coefficient * g[h].row for h in range(n_height)]
                                               for m, g in zip(seasons, grid)])
    res.from_cache = all(p.from_cache for p in parts)
    res.timings = {k: sum(p.timings.get(k, 0.0) for p in parts) for k in parts[0].timings}
    if parts[0].pm25 is not None:
        hw_city, hw_rop = (np.ones(n_height), np.ones(n_height)) if base_height_share is None else base_height_share
        res.unit_city = sum(wi * sum(hw_city[h] * g[h].unit_city for h in range(n_height)) for wi, g in zip(w, grid))
        res.unit_rop = sum(wi * sum(hw_rop[h] * g[h].unit_rop for h in range(n_height)) for wi, g in zip(w, grid))
        res.pm25 = sum(p.pm25 for p in parts)
        if mosaic is not None:
            res.mosaic = srm.mosaic_values(res.grid, res.city_fraction, res.pm25, mosaic)
    return res


def _urban_classes(prep):
    """``{city_id: URBANOPT population}`` of every city of the data set ([dispersion] urban), or
    None when no city is urban (the rural run). Which cities are urban and their population:
    :func:`engine.dispersion.urban.classify_cities`; a rural city gets 0 and its sources stay
    rural. An urban city's kernel is the interpolation between node kernels
    (:func:`engine.dispersion.fields.urban_node_weights`)."""
    from engine.dispersion.urban import classify_cities

    cls = classify_cities(prep.data.cities, prep.cfg.dispersion.urban, source=f"{prep.data.source}/cities.csv")
    if not cls["urban"].any():
        return None
    return {int(cid): float(p) if u else 0.0 for cid, u, p in zip(cls.index, cls["urban"], cls["urbanopt_population"])}


def _urban_seen(prep, urban, cid):
    """The urban node populations of the city sources receptor city ``cid`` sees."""
    return {node for k in prep.receptor_sources[cid]
            if prep.sources[k].kind == "city" and urban[prep.sources[k].id] > 0
            for node, _ in fl.urban_node_weights(urban[prep.sources[k].id])}


def _source_kernels(src, urban, kern, digest, sfx=()):
    """Per source, its ``(weight, fine kernel, coarse kernel)`` terms: the rural pair, or for an
    urban city the node kernels weighted by :func:`engine.dispersion.fields.urban_node_weights`;
    ``sfx`` the emission-height class's kernel-key suffix (``()`` for the ground class)."""
    rural = ((1.0, kern[(digest, "fine") + sfx], kern[(digest, "coarse") + sfx]),)
    return [tuple((w, kern[(digest, "fine", p) + sfx], kern[(digest, "coarse", p) + sfx])
                  for p, w in fl.urban_node_weights(urban[s.id]))
            if s.kind == "city" and urban[s.id] > 0 else rural for s in src]


def kernel_plan(prep, seasons, urban):
    """The transfer kernels a receptor pass needs.

    Returns
    -------
    plan : dict {key: engine.dispersion.fields.KernelSpec}
        Keys ``(met_digest, 'fine'|'coarse'[, urban node population][, 'h:<class>'])``.
    met_of : dict {met_digest: (met spec, season)}
    heights : list of (class, key suffix, row-cache tag), ground first
    """
    d = prep.cfg.dispersion
    sel = prep.selected
    plan, met_of = {}, {}
    for name in prep.seasons:
        digest = {c: m.digest for c in sel for m in seasons[c] if m.season == name}
        for c, dg in digest.items():
            met_of[dg] = (prep.met_specs[c], name)
        for key, spec in srm.sr_kernel_plan({c: prep.geometries[c] for c in digest}, digest, prep.lattices,
                                            release_height_m=d.release_height_m,
                                            initial_sigma_z_m=d.initial_sigma_z_m,
                                            urban_classes=None if urban is None else {
                                                c: _urban_seen(prep, urban, c) for c in digest}).items():
            if key not in plan or plan[key].n_half < spec.n_half:
                plan[key] = spec
    # emission heights: every kernel again for each stack class (key suffix "h:<class>")
    heights = [("ground", "", "")]
    if prep.heights is not None:
        for cls in prep.height_classes[1:]:
            stack = prep.heights.stacks[cls]
            heights.append((cls, f"h:{cls}", f"h={cls}|{stack.key()}"))  # the row cache knows the stack
            for key, spec in list(plan.items()):
                if len(key) == 2 or not isinstance(key[-1], str):
                    plan[key + (f"h:{cls}",)] = dataclasses.replace(spec, stack=stack, release_height_m=0.0,
                                                                    initial_sigma_z_m=0.0)
    return plan, met_of, heights


def kernel_families(plan):
    """``plan`` split into families ``{(met_digest, height suffix): {key: spec}}``: the kernels of one met
    and emission height (fine and coarse, rural and urban nodes), computed together by
    :func:`engine.dispersion.fields.compute_kernels`."""
    families = {}
    for key, spec in plan.items():
        sfx = key[-1] if len(key) > 2 and isinstance(key[-1], str) else ""
        families.setdefault((key[0], sfx), {})[key] = spec
    return dict(sorted(families.items()))


def transfer_kernels(plan, met_of, *, use_cache=True, quiet=False, kernel_fn=None):
    """Every kernel of ``plan`` (:func:`kernel_plan`): ``{key: kernel}``.

    By family (:func:`kernel_families`, :func:`engine.dispersion.fields.compute_kernels`); with a
    caller's ``kernel_fn`` one :func:`engine.dispersion.fields.compute_kernel` call per kernel.
    """
    from engine.parallel import Progress

    kernels = {}
    prog = Progress(len(plan), desc="transfer kernels", quiet=quiet, log_every=1)
    if kernel_fn is not None:
        for key, spec in sorted(plan.items(), key=_kernel_order):
            met = _season_met(*met_of[key[0]])
            kernels[key] = fl.compute_kernel(spec, met, kernel_fn=kernel_fn, use_cache=use_cache)
            prog.update()
        return kernels
    from concurrent.futures import ThreadPoolExecutor

    from engine.parallel import blas_limits

    # the cache entries (hundreds of MB nationally) are written by a thread while the next families
    # are computed; every write has finished, or raised, before the kernels are returned. BLAS (the
    # families' small weighted sums) runs in the calling thread: numba's parallel integration holds
    # every core, and idle OpenBLAS threads would spin on them (16 families: 8.4-8.8 s -> 5.9-6.2 s)
    with blas_limits(1), ThreadPoolExecutor(max_workers=1, thread_name_prefix="kernel-cache") as writer:
        futures = []

        def write(path, **arrays):
            futures.append(writer.submit(save_verified_npz, path, **arrays))

        families = list(kernel_families(plan).items())

        def one(item):
            (digest, _), specs = item
            return fl.compute_kernels(specs, _season_met(*met_of[digest]), use_cache=use_cache, write=write)

        lanes = _kernel_lanes(len(families))
        if lanes > 1:
            # two families at a time: one family's table building, hashing and turning (Python, one
            # thread) overlaps the other's numba integration; each family is computed alone, so the
            # kernels do not depend on the lanes
            with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="kernel-family") as pool:
                for (_, specs), got in zip(families, pool.map(one, families)):
                    kernels.update(got)
                    prog.update(len(specs))
        else:
            for item in families:
                kernels.update(one(item))
                prog.update(len(item[1]))
        for f in futures:
            f.result()
    return kernels


def _kernel_lanes(n_families):
    """Kernel families computed at once: 2 when numba's threading layer runs parallel regions from
    several threads safely (OpenMP, TBB), else 1 (the workqueue layer aborts on concurrent use)."""
    if n_families < 2 or os.environ.get("COBENEFITS_KERNEL_LANES") == "1":
        return 1
    from kernels.plume import threading_layer_name

    return 2 if threading_layer_name() in ("omp", "tbb") else 1


def _kernel_order(kv):
    """Per met and lattice (and height class): the rural kernel, then the urban nodes from the largest
    population down (each node's rural hours contain the next smaller one's: urban._rural_part)."""
    k = kv[0]
    sfx = k[-1] if len(k) > 2 and isinstance(k[-1], str) else ""
    pop = k[2] if len(k) > 2 and not isinstance(k[2], str) else None
    return (k[0], k[1], sfx, -pop if pop is not None else -1e300)


def receptor_pass(prep, *, q=None, mosaic=None, use_cache=True, workers=None, scheduler=None, client=None,
                  quiet=False, kernel_fn=None):
    """Kernels, then one task per receptor city (Dask): rows of S and, with ``q``, the fields.

    With seasonal met (:attr:`Prepared.met_seasons`) every city gets one row per season and its
    fields are the sum over seasons of the season's kernel applied to the season's emissions
    (``q['season_share']``).

    Parameters
    ----------
    q : xarray.Dataset from :func:`emissions`, optional
        Given, every city's scenario fields (and with ``mosaic`` its mosaic contribution) are
        computed in the same pass, from the same rasters as its row of S.
    use_cache : bool
        Transfer kernels and rows of S are read from / written to the cache; False recomputes both.

    Returns
    -------
    results : dict {city_id: engine.dispersion.srmatrix.ReceptorResult}
    timings : dict
    """
    from engine.parallel import run_tasks

    cfg = prep.cfg
    d = cfg.dispersion
    t0 = time.perf_counter()
    sel = prep.selected
    seasons = prep.met_seasons or met_seasons({c: prep.met_specs[c] for c in sel},
                                              seasonal=cfg.met.seasonal_emissions)
    urban = _urban_classes(prep)
    plan, met_of, heights = kernel_plan(prep, seasons, urban)
    kernels = transfer_kernels(plan, met_of, use_cache=use_cache, quiet=quiet, kernel_fn=kernel_fn)
    t_kernels = time.perf_counter() - t0
    qarr = None if q is None else np.asarray(q["q"].transpose("scenario", "source").values, dtype=float)
    share = None
    if q is not None and "season_share" in q:
        share = np.asarray(q["season_share"].transpose("season", "scenario", "source").values, dtype=float)
    elif q is not None and prep.seasons != ("annual",):
        raise ValueError("seasonal met: q needs season_share (engine.pipeline.emissions)")
    hshare = jshare = None
    if q is not None and prep.heights is not None:
        if "height_share" not in q:
            raise ValueError("[dispersion] emission_heights = 'sector': q needs height_share (engine.pipeline.emissions)")
        hshare = np.asarray(q["height_share"].transpose("height", "scenario", "source").values, dtype=float)
        if "season_height_share" in q:
            jshare = np.asarray(q["season_height_share"].transpose("season", "height", "scenario", "source").values,
                                dtype=float)
    scen = list(q["scenario"].values) if q is not None else []
    base = base_scenario(cfg)
    shared = {"kernels": kernels, "mosaic": mosaic, "population": prep.population, "q": qarr, "urban_class": urban,
              "heights": tuple(heights), "height_share": hshare, "season_height_share": jshare,
              "base_index": scen.index(base) if base in scen else 0,
              "season_share": share, "season_index": {s: j for j, s in enumerate(prep.seasons)},
              "prep": {"geometries": {c: prep.geometries[c] for c in sel}, "sources": prep.sources,
                       "receptor_sources": prep.receptor_sources, "lattices": prep.lattices,
                       "met_seasons": {c: seasons[c] for c in sel}},
              "options": {"use_cache": use_cache, "population_key": prep.population_key,
                          "release_height_m": d.release_height_m, "initial_sigma_z_m": d.initial_sigma_z_m,
                          "source_set": d.source_set, "source_reach_m": d.source_reach_km * 1000.0}}
    w = cfg.run.workers if workers is None else workers
    sch = cfg.run.scheduler if scheduler is None else scheduler
    # forked workers only where every city takes the spectral path (numpy and serial kernels): the
    # single-part path may convolve with numba's parallel kernels, which GNU OpenMP forbids in a fork
    spectral = len(heights) > 1 or all(len(seasons[c]) > 1 for c in sel)
    t1 = time.perf_counter()
    res = run_tasks(_receptor_task, [(c, c) for c in _longest_first(prep, sel)], shared=shared, workers=w,
                    scheduler=sch or None, client=client, quiet=quiet, desc="cities",
                    stall_timeout_s=cfg.run.stall_timeout_s or None, pool=cfg.run.pool if spectral else "threads")
    res = {c: res[c] for c in sel}  # the cities' order, whatever order they ran in
    return res, {"kernels_s": t_kernels, "fields_s": time.perf_counter() - t1, "n_kernels": len(kernels)}


def _longest_first(prep, sel):
    """The cities by their task's likely cost, largest first (lattice cells times sources: the
    transforms' size and count), so that no worker is left alone with a large city at the end."""
    def cost(c):
        fine, coarse, _ = prep.lattices[c]
        return (fine.nx * fine.ny + coarse.nx * coarse.ny) * len(prep.receptor_sources[c])

    return sorted(sel, key=lambda c: (-cost(c), c))


def sr_dataset(prep, results):
    sel = prep.selected
    pos = {lab: k for k, lab in enumerate(prep.source_labels)}
    S = np.zeros((len(sel), len(prep.sources)))
    seen = np.zeros(S.shape, dtype=bool)
    for i, c in enumerate(sel):
        r = results[c]
        cols = [pos[lab] for lab in r.labels]
        S[i, cols] = r.row
        seen[i, cols] = True
    d = prep.cfg.dispersion
    extra = {}
    if prep.seasons != ("annual",):
        # rows of cities on annual met serve every season (their shares sum to 1)
        Ss = np.zeros((len(prep.seasons),) + S.shape)
        for i, c in enumerate(sel):
            r = results[c]
            cols = [pos[lab] for lab in r.labels]
            Ss[:, i, cols] = r.season_rows if r.season_rows is not None else r.row[None, :]
        extra["S_season"] = (("season", "city", "source"), Ss, {
            "long_name": "source-receptor matrix per season, times the season's calm coefficient c_s: "
                         "C = sum over seasons of S_season @ (season_share * q)", "units": SR_UNITS})
    if prep.heights is not None:
        classes = list(prep.height_classes)
        Sh = np.zeros((len(classes),) + S.shape)
        Ssh = np.zeros((len(prep.seasons), len(classes)) + S.shape) if extra else None
        for i, c in enumerate(sel):
            r = results[c]
            cols = [pos[lab] for lab in r.labels]
            Sh[:, i, cols] = r.height_rows
            if Ssh is not None:
                Ssh[:, :, i, cols] = (r.season_height_rows if r.season_height_rows is not None
                                      else np.broadcast_to(r.height_rows, (len(prep.seasons),) + r.height_rows.shape))
        extra["S_height"] = (("height", "city", "source"), Sh, {
            "long_name": "source-receptor matrix per emission-height class, for a source emitting at a flat rate "
                         "all year in that class (S is the ground class's)", "units": SR_UNITS})
        if Ssh is not None:
            extra["S_season_height"] = (("season", "height", "city", "source"), Ssh, {
                "long_name": "source-receptor matrix per season and emission-height class, times the season's calm "
                             "coefficient c_s: C = sum over seasons and classes of S_season_height @ "
                             "(season_height_share * q)", "units": SR_UNITS})
    return xr.Dataset(
        {**extra,
         "S": (("city", "source"), S, {"long_name": "source-receptor matrix: exposure-weighted mean concentration "
                                                    "in the receptor city per unit area-emission intensity of the "
                                                    "source, emitting at a flat rate all year",
                                       "units": SR_UNITS}),
         "seen": (("city", "source"), seen, {"long_name": "whether the receptor city sees the source "
                                                          "(source_set); S is 0 where not"})},
        coords={"city": np.array(sel, dtype=np.int64),
                "city_province": ("city", np.array([prep.geometries[c].province_id for c in sel], dtype=np.int64)),
                "exposure": ("city", [results[c].exposure for c in sel]),
                "city_area_km2": ("city", [results[c].city_area_km2 for c in sel]),
                "rop_area_km2": ("city", [results[c].rop_area_km2 for c in sel]),
                "met": ("city", [prep.met_specs[c].describe() for c in sel])} | _source_coords(prep)
        | ({"season": list(prep.seasons)} if "S_season" in extra else {})
        | ({"height": list(prep.height_classes)} if prep.heights is not None else {}),
        attrs={"source_set": d.source_set, "source_reach_km": d.source_reach_km,
               "emission_heights": d.emission_heights,
               "n_from_cache": int(sum(1 for c in sel if results[c].from_cache))})


def sr_matrix(prep, *, use_cache=True, workers=None, scheduler=None, client=None, quiet=False, kernel_fn=None):
    """The source-receptor matrix of the selected cities (:mod:`engine.dispersion.srmatrix`).

    Returns
    -------
    xarray.Dataset
        ``S(city, source)`` [ug m-3 per g m-2 s-1], ``seen(city, source)``; per-city
        coordinates ``exposure``, ``city_area_km2``, ``rop_area_km2``, ``met``; per-source
        ``source_kind``, ``source_id``, ``source_province``. ``attrs['timings_s']``.
    """
    res, t = receptor_pass(prep, use_cache=use_cache, workers=workers, scheduler=scheduler, client=client,
                           quiet=quiet, kernel_fn=kernel_fn)
    ds = sr_dataset(prep, res)
    ds.attrs["timings_s"] = t
    return ds


# --------------------------------------------------------------------------- superpose
def superpose(S, q, *, parts=True):
    """City exposure ``C = S @ q`` and its split by where the PM2.5 comes from.

    The one place the superposition is written. Any dimensions of ``q`` besides ``source``
    (``scenario``, ``sample``, ...) are kept; the product is one BLAS matrix multiplication.
    With seasonal met (``S_season`` in ``S`` and ``season_share`` in ``q``) it is one product
    per season, :math:`C = \\sum_s S_s (\\mathrm{share}_s \\odot q)`; with emission heights
    (``[dispersion] emission_heights = "sector"``: ``S_season_height`` / ``S_height`` in ``S``,
    ``season_height_share`` / ``height_share`` in ``q``) one per season and height class,
    :math:`C = \\sum_s \\sum_h S_{s,h} (\\mathrm{share}_{s,h} \\odot q)`. A ``q`` without shares
    is taken as emitted at a flat rate all year at the ground (``S``).

    Parameters
    ----------
    S : xarray.Dataset from :func:`sr_matrix` (``S(city, source)`` with coordinates
        ``city_province``, ``source_kind``, ``source_id``, ``source_province``)
    q : xarray.Dataset from :func:`emissions` (``q(scenario, source)``) [g m-2 s-1], or a
        DataArray with a ``source`` dimension and any others (e.g. ``sample``)
    parts : bool
        Also the split by origin (four more products); ``False`` gives the total only.

    Returns
    -------
    xarray.Dataset
        ``conc_ug_m3`` [ug m-3] and (``parts``) ``conc_from_city_ug_m3`` (the city's own
        emissions), ``conc_from_other_cities_ug_m3`` (other cities of its province),
        ``conc_from_rop_ug_m3`` (its own rest of province) and
        ``conc_from_other_provinces_ug_m3``; the parts sum to the total.
    """
    qa = q["q"] if isinstance(q, xr.Dataset) else q
    Sa = S["S"]
    labels = Sa["source"].values
    qa = qa.reindex(source=labels, fill_value=0.0)
    other = [d for d in qa.dims if d != "source"]
    qt = qa.transpose(*other, "source")
    Q = np.asarray(qt.values, dtype=float)
    city = Sa["city"].values
    out_dims = (*other, "city")
    coords = {d: qt[d] for d in other if d in qt.coords} | {"city": city}
    qd = q if isinstance(q, xr.Dataset) else xr.Dataset()
    S_season, sh, _ = superpose_terms(S, qd, other)
    Sm = np.asarray(Sa.values, dtype=float)

    def product(mask):
        v = superpose_arrays(Sm, Q, S_season=S_season, share=sh, mask=mask)
        return xr.DataArray(v, dims=out_dims, coords=coords)

    total = product(None)
    total.attrs = {"long_name": "primary PM2.5 exposure (annual mean)", "units": "ug m-3",
                   "standard_name": PM25_STANDARD_NAME}
    ds = xr.Dataset({"conc_ug_m3": total})
    if not parts:
        return ds
    kind = Sa["source_kind"].values
    sid = Sa["source_id"].values
    sprov = Sa["source_province"].values
    cprov = Sa["city_province"].values
    own_city = (kind[None, :] == "city") & (sid[None, :] == city[:, None])
    same_prov = sprov[None, :] == cprov[:, None]
    split = {"conc_from_city_ug_m3": (own_city, "from the city's own emissions"),
             "conc_from_other_cities_ug_m3": ((kind[None, :] == "city") & same_prov & ~own_city,
                                              "from the other cities of its province"),
             "conc_from_rop_ug_m3": ((kind[None, :] == "rop") & same_prov, "from its own rest of province"),
             "conc_from_other_provinces_ug_m3": (~same_prov, "from other provinces' cities and rests of province")}
    for name, (mask, what) in split.items():
        ds[name] = product(mask)
        ds[name].attrs = {"long_name": f"primary PM2.5 exposure {what}", "units": "ug m-3"}
    return ds


def superpose_terms(S, q, other=()):
    """The terms of :func:`superpose`: ``(S_p, share_p, parts)`` with ``C = sum_p S_p (share_p * q)``.

    ``S_p`` (n_part, n_city, n_source) are the matrices of the parts a source's emission is split
    into -- (season, height class) season-major with seasonal met and emission heights, height
    classes with annual met, seasons without heights -- and ``share_p`` (n_part, *other, n_source)
    the share of each source's annual emission in part p (from ``q``'s ``season_height_share``,
    ``height_share`` or ``season_share``, dimensions ``other`` before ``source``); ``parts`` the
    (season, height class) of each part ("annual" / "ground" where the axis is absent). ``(None,
    None, [("annual", "ground")])``: one flat, ground-level term, ``S`` itself.
    """
    labels = S["S"]["source"].values
    shape = S["S"].shape
    if "S_season_height" in S and "season_height_share" in q:
        # seasonal met and emission heights: one term per (season, height class), season-major
        mats = np.asarray(S["S_season_height"].transpose("season", "height", "city", "source").values,
                          dtype=float).reshape((-1,) + shape)
        sh = np.asarray(q["season_height_share"].reindex(source=labels, fill_value=0.0)
                        .sel(season=S["season"].values, height=S["height"].values)
                        .transpose("season", "height", *other, "source").values, dtype=float)
        return mats, sh.reshape((-1,) + sh.shape[2:]), [(str(a), str(b)) for a in S["season"].values
                                                          for b in S["height"].values]
    if "S_height" in S and "height_share" in q and "S_season" not in S:
        # annual met and emission heights: one term per height class
        mats = np.asarray(S["S_height"].transpose("height", "city", "source").values, dtype=float)
        sh = np.asarray(q["height_share"].reindex(source=labels, fill_value=0.0).sel(height=S["height"].values)
                        .transpose("height", *other, "source").values, dtype=float)
        return mats, sh, [("annual", str(b)) for b in S["height"].values]
    if "height_share" in q and "S_height" not in S:
        raise ValueError("superpose: q has emission-height shares but S has no S_height (run the matrix with "
                         "[dispersion] emission_heights = 'sector')")
    if "S_season" in S and "season_share" in q:
        mats = np.asarray(S["S_season"].transpose("season", "city", "source").values, dtype=float)
        sh = np.asarray(q["season_share"].reindex(source=labels, fill_value=1.0 / S.sizes["season"])
                        .sel(season=S["season"].values).transpose("season", *other, "source").values, dtype=float)
        return mats, sh, [(str(a), "ground") for a in S["season"].values]
    return None, None, [("annual", "ground")]


def superpose_arrays(S, q, *, S_season=None, share=None, mask=None):
    """``C = S @ q`` on plain arrays: the superposition every caller uses (:func:`superpose`,
    the sweep's sample axis in :mod:`engine.sampled`).

    Parameters
    ----------
    S : (n_city, n_source) float64 [ug m-3 per g m-2 s-1]
        Source-receptor matrix of a flat (all-year) emission.
    q : (..., n_source) float64 [g m-2 s-1]
        Emission intensities; any leading axes (scenario, sample, ...) are kept.
    S_season : (n_season, n_city, n_source) float64, or a sequence of n_season sparse matrices, optional
        One matrix per season, times the season's calm coefficient c_s (:func:`sr_matrix`'s
        ``S_season``); with ``share``, :math:`C = \\sum_s (\\mathrm{share}_s \\odot q) S_s^T`.
        Sparse (``scipy.sparse``, CSR) matrices give the same sums with the zero entries skipped:
        a city sees only its province's sources, ~5 % of S (the sweep passes them so).
    share : (n_season, ..., n_source) float64, optional
        Share of each source's annual emission emitted in each season (:func:`emissions`'
        ``season_share``), broadcastable against ``q``. Without it (or without ``S_season``)
        ``q`` is emitted at a flat rate all year: ``C = q S^T``.
    mask : (n_city, n_source) bool, optional
        Only the sources where True (the split by origin of :func:`superpose`).

    Returns
    -------
    (..., n_city) float64 [ug m-3]
    """
    q = np.asarray(q, dtype=float)
    n_src = q.shape[-1]
    lead = q.shape[:-1]
    q2 = q.reshape(-1, n_src)
    if S_season is not None and share is not None:
        n_term = len(S_season)
        sh = np.broadcast_to(share, (n_term,) + lead + (n_src,)).reshape(n_term, -1, n_src)
        terms = [(S_season[j], q2 * sh[j]) for j in range(n_term)]
    else:
        terms = [(S, q2)]
    c = sum(_times_transpose(qs, Ms, mask) for Ms, qs in terms)
    return c.reshape(lead + (c.shape[-1],))


def _times_transpose(qs, M, mask):
    """``qs @ M.T`` for a dense or a ``scipy.sparse`` M (sparse: each entry summed over the
    non-zero sources of its row in a fixed order, whatever the number of rows of ``qs``)."""
    if hasattr(M, "tocsr"):
        if mask is not None:
            raise ValueError("superpose_arrays: mask needs dense matrices")
        return np.asarray(M @ qs.T).T
    return qs @ (M if mask is None else np.where(mask, M, 0.0)).T


# --------------------------------------------------------------------------- health
def health(prep, conc, *, health_fn=None, age_population_fn=None):
    """Attributable and avoided deaths per city and scenario (``[health]`` settings).

    Parameters
    ----------
    conc : xarray.Dataset from :func:`superpose` (``conc_ug_m3(city, scenario)``)
    health_fn : callable(cfg, conc_base, conc_scenario, pop_by_age) -> xarray.Dataset, optional
        Default :func:`engine.health.impact.health_impact` with ``[health]``.
    age_population_fn : callable(data, city_ids) -> DataFrame, optional
        Default :func:`engine.health.impact.age_population` (2010 census).

    Returns
    -------
    dict {scenario: xarray.Dataset}  (the health stage's Dataset over ``region`` = city)
    """
    cfg = prep.cfg
    sel = prep.selected
    if health_fn is None:
        health_fn = _default_health
    if age_population_fn is None:
        from engine.health import age_population

        def age_population_fn(data, ids):
            return age_population(ids)
    pop = age_population_fn(prep.data, sel).loc[sel]
    base = base_scenario(cfg)
    c = conc["conc_ug_m3"].transpose("scenario", "city")
    cb = pd.Series(c.sel(scenario=base).values, index=sel)
    out = {}
    for s in cfg.scenario_names:
        cs = None if s == base else pd.Series(c.sel(scenario=s).values, index=sel)
        out[s] = health_fn(cfg, cb, cs, pop)
    return out


def _default_health(cfg, conc_base, conc_scen, pop):
    from engine.health import health_impact

    h = cfg.health
    return health_impact(conc_base, pop, conc_scenario=conc_scen, crf=h.crf, cohort=h.cohort,
                         rates=h.rates_file or None, draws=h.draws, seed=h.seed, avoided_method=h.avoided_method,
                         functions=h.functions_file or None, background=h.background or None)


def _health_values(ds, var, sel):
    if var not in ds:
        return np.full(len(sel), np.nan)
    da = ds[var]
    m = dict(zip([int(x) for x in da["region"].values], np.asarray(da.values, dtype=float)))
    return np.array([m.get(int(c), np.nan) for c in sel])


# --------------------------------------------------------------------------- metrics
def r_squared(x, y):
    """Coefficient of determination of a least-squares line of y on x (squared Pearson r);
    NaN with fewer than 3 finite pairs or no spread."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.var(x[ok]) == 0 or np.var(y[ok]) == 0:
        return float("nan")
    r = np.corrcoef(x[ok], y[ok])[0, 1]
    return float(r * r)


def _pct(base, new):
    base = np.asarray(base, float)
    new = np.asarray(new, float)
    return np.divide(100.0 * (base - new), base, out=np.full(base.shape, np.nan), where=base > 0)


def metrics(prep, carbon_result, conc, health_results, S=None):
    """Per-city table, national table and the paper's figures.

    High-High (Ramaswami et al. 2017, Fig. 4): a city whose **percentage** CO2 cut and
    **percentage** reduction of premature deaths both exceed the means over the cities. R2:
    of the percentage concentration reduction against the percentage PM2.5 emission-intensity
    reduction (the paper reports 0.65). The absolute variants are kept, named ``*_absolute``.

    Returns
    -------
    cities : pandas.DataFrame   one row per (scenario, city): the carbon columns, exposures and
                                their parts, shares, deaths and avoided deaths with intervals
    national : pandas.DataFrame one row per scenario
    summary : dict              national totals and the paper's figures per scenario
    """
    cfg = prep.cfg
    sel = prep.selected
    scen = list(cfg.scenario_names)
    base = base_scenario(cfg)
    ct = prep.city_table.set_index("city_id")
    cc = carbon_result.cities
    cc = cc[cc["city_id"].astype(int).isin(sel) & cc["scenario"].isin(scen)]
    rows = []
    for s in scen:
        hs = health_results[s]
        dcol = "deaths_scenario" if s != base else "deaths"
        cs = conc.sel(scenario=s).reindex(city=sel)
        part = pd.DataFrame({"city_id": sel, "scenario": s})
        for v in ("conc_ug_m3", "conc_from_city_ug_m3", "conc_from_other_cities_ug_m3", "conc_from_rop_ug_m3",
                  "conc_from_other_provinces_ug_m3"):
            part[v] = cs[v].values
        tot = part.conc_ug_m3.to_numpy()
        part["rop_share"] = np.divide(part.conc_from_rop_ug_m3, tot, out=np.full(len(sel), np.nan), where=tot > 0)
        nb = (part.conc_from_other_cities_ug_m3 + part.conc_from_rop_ug_m3 + part.conc_from_other_provinces_ug_m3).to_numpy()
        part["neighbour_share"] = np.divide(nb, tot, out=np.full(len(sel), np.nan), where=tot > 0)
        for qn in ("central", "mean", "p2_5", "p97_5"):  # central curve and mean over draws side by side
            part[f"deaths_{qn}"] = _health_values(hs, f"{dcol}_all_{qn}", sel)
            part[f"avoided_deaths_{qn}"] = (_health_values(hs, f"avoided_all_{qn}", sel) if s != base
                                            else np.zeros(len(sel)))
        if S is not None:
            Ssel = S["S"].reindex(city=sel)
            part["unit_response_city"] = [float(Ssel.sel(city=c, source=f"c{c}")) for c in sel]
            part["unit_response_rop"] = [float(Ssel.sel(city=c, source=f"r{prep.geometries[c].province_id}"))
                                         for c in sel]
            part["exposure"] = S["exposure"].reindex(city=sel).values
        part["met"] = [prep.met_specs[c].describe() for c in sel]
        rows.append(part)
    extra = pd.concat(rows, ignore_index=True)
    cities_out = cc.merge(extra, on=["scenario", "city_id"], how="right")
    national, summary = _national(cfg, carbon_result, cities_out, health_results, base, scen, ct, sel)
    return cities_out, national, summary


def _national(cfg, carbon_result, cities_out, health_results, base, scen, ct, sel):
    from engine.health import national_totals

    rows, summ = [], {"base_scenario": base, "scenarios": {},
                      "definitions": {
                          "high_high_cities": "cities whose percentage CO2 cut and percentage reduction of premature "
                                              "deaths both exceed the means over the cities (Ramaswami et al. 2017 Fig. 4)",
                          "high_high_cities_absolute": "the same with absolute CO2 cut [t] and avoided deaths",
                          "r2_conc_reduction_vs_intensity_reduction": "R2 of the percentage concentration reduction "
                                                                      "against the percentage PM2.5 emission-intensity reduction",
                          "r2_conc_reduction_vs_intensity_reduction_absolute": "the same with absolute reductions"}}
    summ["health_concentration_method"] = health_results[base].attrs.get("concentration_method", "")
    pop = ct.loc[sel, "population"].astype(float)
    mega = pop.index[pop > MEGACITY_POPULATION]
    cb = cities_out[cities_out.scenario == base].set_index("city_id").loc[sel]
    for s in scen:
        cs = cities_out[cities_out.scenario == s].set_index("city_id").loc[sel]
        nt = national_totals(health_results[s])
        dname = "deaths_scenario" if s != base else "deaths"
        row = {"scenario": s}
        if carbon_result.national is not None and "item" in carbon_result.national:
            nat = carbon_result.national[carbon_result.national.scenario == s].set_index("item")["co2_mt"]
            row["national_co2_mt"] = float(nat.get("national_co2", np.nan))
            for item, v in nat.items():
                if item != "national_co2":
                    row[f"{item}_co2_cut_mt"] = float(v)
        row["cities_co2_t"] = float(cs["co2_t"].sum()) if "co2_t" in cs else np.nan
        row["cities_pm25_t"] = float(cs["pm25_t"].sum()) if "pm25_t" in cs else np.nan
        row["pop_weighted_conc_ug_m3"] = float((cs.conc_ug_m3 * pop).sum() / pop.sum())
        for qn in ("central", "mean", "p2_5", "p97_5"):
            v = nt.get(f"{dname}_all_{qn}")
            row[f"deaths_{qn}"] = float(v) if v is not None else np.nan
            a = nt.get(f"avoided_all_{qn}")
            row[f"avoided_deaths_{qn}"] = float(a) if (a is not None and s != base) else 0.0
        rows.append(row)
        info = {k: row[k] for k in row if k != "scenario"}
        info["conc_range_ug_m3"] = [float(cs.conc_ug_m3.min()), float(cs.conc_ug_m3.median()),
                                    float(cs.conc_ug_m3.max())]
        for share in ("rop_share", "neighbour_share"):
            v = cs[share].to_numpy(dtype=float)
            ok = np.isfinite(v)
            info[share] = {"median": float(np.median(v[ok])) if ok.any() else float("nan"),
                           "population_weighted": float((v[ok] * pop.values[ok]).sum() / pop.values[ok].sum())
                           if ok.any() else float("nan")}
        if s != base:
            dco2 = (cb["co2_t"] - cs["co2_t"]) if "co2_t" in cs else pd.Series(np.nan, index=sel)
            pco2 = pd.Series(_pct(cb["co2_t"], cs["co2_t"]), index=sel) if "co2_t" in cs else dco2 * np.nan
            avoided = cs["avoided_deaths_mean"]
            pdeaths = pd.Series(np.divide(100.0 * avoided.to_numpy(float), cb["deaths_mean"].to_numpy(float),
                                          out=np.full(len(sel), np.nan), where=cb["deaths_mean"].to_numpy(float) > 0),
                                index=sel)
            ok = pco2.notna() & pdeaths.notna()
            info["high_high_cities"] = int(((pco2 > pco2[ok].mean()) & (pdeaths > pdeaths[ok].mean()) & ok).sum())
            info["high_high_cities_absolute"] = int(((dco2 > dco2.mean()) & (avoided > avoided.mean())).sum())
            has_q = "pm25_intensity_g_m2_yr" in cs
            qb = cb["pm25_intensity_g_m2_yr"] if has_q else None
            qs = cs["pm25_intensity_g_m2_yr"] if has_q else None
            info["r2_conc_reduction_vs_intensity_reduction"] = (
                r_squared(_pct(qb, qs), _pct(cb.conc_ug_m3, cs.conc_ug_m3)) if has_q else float("nan"))
            info["r2_conc_reduction_vs_intensity_reduction_absolute"] = (
                r_squared(qb - qs, cb.conc_ug_m3 - cs.conc_ug_m3) if has_q else float("nan"))
            tot_co2 = float(dco2.sum())
            tot_av = float(avoided.sum())
            info["megacities"] = {
                "n": int(len(mega)),
                "share_of_city_co2_mitigation": float(dco2.loc[mega].sum() / tot_co2) if tot_co2 else float("nan"),
                "share_of_avoided_deaths": float(avoided.loc[mega].sum() / tot_av) if tot_av else float("nan")}
        summ["scenarios"][s] = info
    return pd.DataFrame(rows), summ


# --------------------------------------------------------------------------- run
def run(config=None, *, cities=None, scenarios=None, data=None, use_cache=True, workers=None, scheduler=None,
        client=None, quiet=False, footprints=None, population=None, population_key="", carbon_fn=None,
        health_fn=None, age_population_fn=None, kernel_fn=None):
    """The national run in memory: every stage, nothing written.

    Parameters
    ----------
    config : None, path, list of paths or engine.config.Config
        Scenario TOML files (default: the four shipped scenarios).
    cities : str, optional
        ``"all"``, or comma-separated city ids, names or provinces (e.g. ``"Hebei"``).
    scenarios : str or list, optional
        Scenario names to run (the base scenario is always included).
    use_cache : bool
        Reuse cached transfer kernels and rows of S (False recomputes them).
    workers, scheduler, client :
        Local Dask threads (0 = all cores), or a ``dask.distributed`` scheduler address/client.
    quiet : bool
        No progress output (progress goes to stderr: a bar on a terminal, log lines otherwise).

    Returns
    -------
    xarray.Dataset
        Dimensions ``(scenario, city)``: exposures and their parts [ug m-3], shares, deaths and
        avoided deaths (mean, 2.5 and 97.5 percentiles), CO2 [t] and PM2.5 [t] and intensity
        per city; national variables over ``scenario``; ``S(city, source)`` and ``q(scenario,
        source)``; ``attrs['summary']`` (JSON) with the paper's figures.
    """
    import json

    t0 = time.perf_counter()
    prep = prepare(config, cities=cities, scenarios=scenarios, data=data, footprints=footprints,
                   population=population, population_key=population_key)
    t = time.perf_counter()
    cres = carbon(prep, carbon_fn=carbon_fn)
    q = emissions(prep, cres)
    t_carbon = time.perf_counter() - t
    S = sr_matrix(prep, use_cache=use_cache, workers=workers, scheduler=scheduler, client=client, quiet=quiet,
                  kernel_fn=kernel_fn)
    conc = superpose(S, q)
    t = time.perf_counter()
    hres = health(prep, conc, health_fn=health_fn, age_population_fn=age_population_fn)
    t_health = time.perf_counter() - t
    cities_out, national, summary = metrics(prep, cres, conc, hres, S)
    ds = to_dataset(prep, cities_out, national, S, q)
    summary["timings_s"] = {"carbon_s": t_carbon, **S.attrs.get("timings_s", {}), "health_s": t_health,
                            "total_s": time.perf_counter() - t0}
    ds.attrs["summary"] = json.dumps(summary, default=float)
    return ds


def to_dataset(prep, cities_out, national, S, q):
    """The per-city and national tables as one Dataset over ``(scenario, city)``."""
    sel = prep.selected
    scen = list(prep.cfg.scenario_names)
    c = cities_out.set_index(["scenario", "city_id"])
    vars_ = {}
    for col in c.columns:
        if col in ("name", "province", "grid_region", "typology", "met", "exposure", "province_id"):
            continue
        s = c[col]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            continue
        arr = np.full((len(scen), len(sel)), np.nan)
        for i, sc in enumerate(scen):
            arr[i] = s.xs(sc, level="scenario").reindex(sel).to_numpy(dtype=float)
        vars_[col] = (("scenario", "city"), arr, {"units": _units_of(col)})
    n = national.set_index("scenario").reindex(scen)
    for col in n.columns:
        vars_[f"national_{col}" if not col.startswith("national_") else col] = (
            ("scenario",), n[col].to_numpy(dtype=float), {"units": _units_of(col)})
    ct = prep.city_table.set_index("city_id").loc[sel]
    coords = {"scenario": scen, "city": np.array(sel, dtype=np.int64),
              "city_name": ("city", ct["name"].astype(str).to_numpy()),
              "province_id": ("city", ct["province_id"].astype(np.int64).to_numpy())}
    for k in ("centroid_lat", "centroid_lon"):
        if k in ct:
            coords[k.replace("centroid_", "")] = ("city", ct[k].astype(float).to_numpy())
    ds = xr.Dataset(vars_, coords=coords)
    ds["S"] = S["S"].reindex(city=sel)
    ds["q"] = q["q"]
    ds["exposure"] = ("city", S["exposure"].reindex(city=sel).values)
    ds["met"] = ("city", [prep.met_specs[c_].describe() for c_ in sel])
    ds.attrs.update({"source_set": prep.cfg.dispersion.source_set, "base_scenario": base_scenario(prep.cfg),
                     "title": "cobenefits national run (in memory)"})
    return ds


#: units of the per-city and national columns, by name suffix (first match wins)
_UNIT_SUFFIXES = (("_ug_m3", "ug m-3"), ("_g_m2_yr", "g m-2 yr-1"), ("_g_m2_s", "g m-2 s-1"), ("_mt", "Mt CO2 yr-1"),
                  ("_t", "t yr-1"), ("_pct", "%"), ("_km2", "km2"), ("_twh", "TWh yr-1"))


def _units_of(col):
    for suffix, units in _UNIT_SUFFIXES:
        if col.endswith(suffix):
            return units
    if col.startswith(("deaths", "avoided_deaths")):
        return "deaths yr-1"
    if col.startswith("unit_response"):
        return SR_UNITS
    return "1"

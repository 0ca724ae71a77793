"""``cobenefits run``: the national run, carbon -> emissions -> dispersion -> health, every city.

Outputs (in ``--out``, each written atomically): ``concentration.nc`` (CF-1.8 national mosaic and
one group per city), ``cities.csv`` (one row per scenario and city), ``national.csv`` (one row
per scenario) and ``summary.json``.

Everything that can be checked is checked before any work starts (configuration, data set,
met files, ``[dispersion] footprints_geojson`` and ``population_grid``, output folder, scheduler),
so bad input fails in seconds with exit 2. City exposure is the population-weighted mean over the
city's receptors when a population grid is given, else the area mean; ``cities.csv`` (column
``exposure``) and ``summary.json`` record which one each city got.
Per-city fields are cached (``COBENEFITS_CACHE_DIR``); a re-run or a run interrupted half-way
reuses every finished city; changing emissions or health settings recomputes no field.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from engine import climatology as clim
from engine import fields as fl
from engine import geometry as geo
from engine import io as eio
from engine.config import config_to_dict, load_config
from engine.errors import InputError

NAME = "run"
HELP = "national run: CO2, PM2.5 fields (NetCDF) and avoided deaths for every city and scenario"

__all__ = ["NAME", "HELP", "add_arguments", "run", "run_national", "prepare_run", "RunResult",
           "SECONDS_PER_YEAR"]

log = logging.getLogger("cobenefits")
#: Julian year [s], converts g m-2 yr-1 to g m-2 s-1
SECONDS_PER_YEAR = 31_557_600.0
MEGACITY_POPULATION = 10_000_000


def add_arguments(p):
    p.add_argument("config", nargs="*", metavar="CONFIG",
                   help="scenario TOML files (default: the four shipped scenarios)")
    p.add_argument("--out", default="out", metavar="DIR", help="output folder")
    p.add_argument("--cities", default=None, metavar="SELECTOR",
                   help="'all', or comma-separated city ids, city names or provinces (default: [data] cities)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a dask.distributed scheduler (default: local threads)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local Dask worker threads (default: [run] workers; 0 = all cores)")
    p.add_argument("--no-cache", action="store_true",
                   help="recompute every field (compiled kernels are still reused)")


def run(args):
    overrides = {}
    if args.workers is not None:
        if args.workers < 0:
            raise InputError(f"--workers {args.workers}: must be >= 0 (0 = all cores)")
        overrides.setdefault("run", {})["workers"] = args.workers
    if args.scheduler is not None:
        overrides.setdefault("run", {})["scheduler"] = args.scheduler
    if args.cities is not None:
        overrides.setdefault("data", {})["cities"] = args.cities
    cfg = load_config(args.config or None, overrides=overrides)
    res = run_national(cfg, args.out, use_cache=not args.no_cache, quiet=getattr(args, "quiet", False))
    if not getattr(args, "quiet", False):
        print(res.message())
    return 0


# --------------------------------------------------------------------------- plan
@dataclasses.dataclass
class RunResult:
    out_dir: Path
    cities: pd.DataFrame
    national: pd.DataFrame
    summary: dict
    n_cities: int
    n_from_cache: int
    timings: dict

    def message(self):
        return (f"{self.n_cities} cities x {len(self.national)} scenarios -> {self.out_dir} "
                f"({self.n_from_cache} cities' fields from the cache; {self.timings.get('total_s', 0):.1f} s)")


@dataclasses.dataclass
class Prepared:
    cfg: object
    data: object
    selected: list  # city ids, sorted
    geometries: dict
    met_specs: dict  # city_id -> MetSpec
    out_dir: Path
    population: object = None
    population_key: str = ""
    inputs: dict = dataclasses.field(default_factory=dict)  # user files used: {key: {path, sha256, ...}}


def _load_data(cfg):
    from engine.dataset import load_dataset

    return load_dataset(cfg.data.dir or None)


def _select(data, selector):
    from engine.dataset import select_cities

    return sorted(int(c) for c in select_cities(data, selector).cities.index)


def _city_table(data):
    c = data.cities
    c = c.reset_index() if "city_id" not in c.columns else c
    return c


def _province_table(data):
    p = data.provinces
    return p.reset_index() if "province_id" not in p.columns else p


def prepare_run(cfg, out_dir, *, data=None, footprints=None, province_footprints=None, population=None,
                population_key=""):
    """Load and check everything a run needs; raise :class:`InputError` before any work starts.

    ``footprints`` ({city_id: Polygon}) and ``population`` (callable (lat, lon) -> people km-2,
    with ``population_key`` identifying its content for the cache) given here take precedence
    over ``[dispersion] footprints_geojson`` / ``population_grid``, which are read otherwise.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"--out {out_dir}: cannot write there ({exc.strerror})") from None
    # [dispersion] files: exist? (relative to the config files' folder)
    files = cfg.dispersion.resolve_paths(cfg.paths)
    data = data if data is not None else _load_data(cfg)
    selected = _select(data, cfg.data.cities)
    if not selected:
        raise InputError(f"[data] cities = {cfg.data.cities!r} selects no city")
    ct, pt = _city_table(data), _province_table(data)
    inputs = {}
    if "footprints_geojson" in files and footprints is None:
        fp_path = files["footprints_geojson"]
        centroids = {int(r.city_id): (float(r.centroid_lat), float(r.centroid_lon))
                     for r in ct.itertuples(index=False)}
        footprints = geo.read_geojson_footprints(fp_path, id_property="city_id", valid_ids=centroids,
                                                 centroids=centroids)
        inputs["footprints_geojson"] = {"path": str(fp_path), "sha256": _sha256(fp_path),
                                        "city_ids": sorted(footprints)}
    if footprints:
        unknown = sorted(set(footprints) - set(ct.city_id.astype(int)))
        if unknown:
            raise InputError(f"footprints: city_id(s) {unknown[:5]} are not in the data set")
    if "population_grid" in files and population is None:
        pg_path = files["population_grid"]
        population = geo.read_population_grid(pg_path)
        population_key = population.key
        inputs["population_grid"] = {"path": str(pg_path), "sha256": _sha256(pg_path), "units": population.units,
                                     "content_key": population.key}
    elif population is not None and not population_key:
        population_key = getattr(population, "key", "") or ""
    d = cfg.dispersion
    # ROP = province minus ALL its cities in the data set (not only the selected ones)
    geoms_all = geo.build_city_geometries(ct, pt, city_resolution_m=d.city_resolution_m,
                                          rop_resolution_m=d.rop_resolution_m, city_margin_m=d.city_margin_m,
                                          footprints=footprints, province_footprints=province_footprints)
    geoms = {cid: geoms_all[cid] for cid in selected}
    prov_of = dict(zip(ct.city_id.astype(int), ct.province_id.astype(int)))
    specs = {cid: clim.met_spec_for_city(cfg.met, cid, prov_of[cid]) for cid in selected}
    # parse every distinct met once now, so a broken file stops the run before any work
    for spec in {s.digest: s for s in specs.values()}.values():
        clim.load_met(spec)
    if cfg.run.scheduler:
        from engine.parallel import connect

        connect(cfg.run.scheduler).close()
    if isinstance(population, geo.PopulationGrid):
        population = _crop_population(population, geoms.values())
    return Prepared(cfg, data, selected, geoms, specs, out_dir, population, population_key, inputs)


def _sha256(path):
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _crop_population(pg, geoms):
    """The part of a population grid the selected cities' grids can reach (less to ship to workers).

    Cropping keeps every value a receptor looks up, so it changes no result; the cache key stays
    the whole grid's content hash.
    """
    lats, lons = [], []
    for g in geoms:
        lat, lon = geo.city_grid(g).latlon()
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


# --------------------------------------------------------------------------- tasks
def _city_task(item, shared):
    """One city: fields (cached) + mosaic contribution; runs on a Dask worker."""
    geom, digest = item
    kern = shared["kernels"]
    o = shared["options"]
    t0 = time.perf_counter()
    cf = fl.load_or_compute_city_field(
        geom, digest, kern[(digest, "fine")], kern[(digest, "coarse")], use_cache=o["use_cache"],
        population=shared.get("population"), population_key=o["population_key"],
        release_height_m=o["release_height_m"], initial_sigma_z_m=o["initial_sigma_z_m"])
    cf.timings["field_s"] = time.perf_counter() - t0
    mosaic = fl.mosaic_contribution(cf, shared["mosaic"])
    return cf, mosaic


def compute_fields(prep, *, use_cache=True, workers=None, scheduler=None, client=None, quiet=False,
                   kernel_fn=None, mosaic=None):
    """Kernels (once per met and resolution) then every city's fields, in parallel."""
    from engine.parallel import run_tasks

    cfg = prep.cfg
    d = cfg.dispersion
    t0 = time.perf_counter()
    plan = fl.kernel_plan(prep.geometries, {c: s.digest for c, s in prep.met_specs.items()},
                          release_height_m=d.release_height_m, initial_sigma_z_m=d.initial_sigma_z_m)
    by_digest = {s.digest: s for s in prep.met_specs.values()}
    kernels = {}
    for key, spec in sorted(plan.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        met = clim.load_met(by_digest[key[0]])
        kernels[key] = fl.compute_kernel(spec, met, kernel_fn=kernel_fn, use_cache=True)
    t_kernels = time.perf_counter() - t0
    shared = {"kernels": kernels, "mosaic": mosaic, "population": prep.population,
              "options": {"use_cache": use_cache, "population_key": prep.population_key,
                          "release_height_m": d.release_height_m, "initial_sigma_z_m": d.initial_sigma_z_m}}
    items = [(cid, (prep.geometries[cid], prep.met_specs[cid].digest)) for cid in prep.selected]
    w = cfg.run.workers if workers is None else workers
    sch = cfg.run.scheduler if scheduler is None else scheduler
    t1 = time.perf_counter()
    res = run_tasks(_city_task, items, shared=shared, workers=w, scheduler=sch or None, client=client,
                    quiet=quiet, desc="cities")
    return res, {"kernels_s": t_kernels, "fields_s": time.perf_counter() - t1, "n_kernels": len(kernels)}


# --------------------------------------------------------------------------- the run
def _carbon(cfg, data):
    try:
        from engine.carbon import run_carbon
    except ImportError:  # until engine.carbon re-exports it
        from engine.carbon.accounting import run_carbon

    return run_carbon(cfg, data)


def _health(cfg, conc_base, conc_scen, pop):
    from engine.health import health_impact

    h = cfg.health
    return health_impact(conc_base, pop, conc_scenario=conc_scen, crf=h.crf, cohort=h.cohort,
                         rates=h.rates_file or None, draws=h.draws, seed=h.seed, avoided_method=h.avoided_method)


def _age_population(data, city_ids):
    from engine.health import age_population

    return age_population(city_ids)


def _base_name(cfg):
    names = cfg.scenario_names
    if "base" in names:
        return "base"
    for s, c in cfg.scenarios:
        if c.efficiency_level == "none" and not c.symbiosis:
            return s.name
    return names[0]


def _r2(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.var(x[ok]) == 0 or np.var(y[ok]) == 0:
        return float("nan")
    r = np.corrcoef(x[ok], y[ok])[0, 1]
    return float(r * r)


def run_national(cfg, out_dir, *, use_cache=True, quiet=False, workers=None, scheduler=None, client=None,
                 data=None, footprints=None, province_footprints=None, population=None, population_key="",
                 carbon_fn=None, health_fn=None, age_population_fn=None, kernel_fn=None):
    """The national run (see module docstring). Returns a :class:`RunResult`.

    Integration points (replaceable for tests): ``carbon_fn(cfg, data) -> CarbonResult`` (default
    :func:`engine.carbon.run_carbon`), ``health_fn(cfg, conc_base, conc_scenario, pop_by_age) ->
    xarray.Dataset`` (default :func:`engine.health.health_impact` with ``[health]``),
    ``age_population_fn(data, city_ids) -> DataFrame`` (default :func:`engine.health.age_population`).
    """
    t_start = time.perf_counter()
    carbon_fn = carbon_fn or _carbon
    health_fn = health_fn or _health
    age_population_fn = age_population_fn or _age_population
    # ---- 1. everything checked before any work
    prep = prepare_run(cfg, out_dir, data=data, footprints=footprints, province_footprints=province_footprints,
                       population=population, population_key=population_key)
    data = prep.data
    sel = prep.selected
    ct = _city_table(data).set_index("city_id")
    pop_by_age = age_population_fn(data, sel)
    # ---- 2. carbon
    t = time.perf_counter()
    carbon = carbon_fn(cfg, data)
    t_carbon = time.perf_counter() - t
    scen = list(cfg.scenario_names)
    cc = carbon.cities.copy()
    cc = cc[cc["city_id"].astype(int).isin(sel) & cc["scenario"].isin(scen)]
    rop = carbon.rop[carbon.rop["scenario"].isin(scen)].copy()
    q_city = cc.pivot(index="city_id", columns="scenario", values="pm25_intensity_g_m2_yr").reindex(
        index=sel, columns=scen) / SECONDS_PER_YEAR
    q_rop_p = rop.pivot(index="province_id", columns="scenario", values="pm25_intensity_g_m2_yr").reindex(
        columns=scen) / SECONDS_PER_YEAR
    prov = ct.loc[sel, "province_id"].astype(int)
    q_rop = q_rop_p.reindex(prov.values).set_axis(sel, axis=0).fillna(0.0)
    if q_city.isna().any().any():
        bad = q_city.index[q_city.isna().any(axis=1)].tolist()[:5]
        raise InputError(f"carbon stage gave no pm25_intensity_g_m2_yr for city/cities {bad}")
    # ---- 3. fields
    mosaic = _mosaic_spec(prep, cfg.dispersion.mosaic_resolution_deg)
    results, tf = compute_fields(prep, use_cache=use_cache, workers=workers, scheduler=scheduler, client=client,
                                 quiet=quiet, kernel_fn=kernel_fn, mosaic=mosaic)
    n_cached = sum(1 for cf, _ in results.values() if cf.from_cache)
    mean_city = pd.Series({c: results[c][0].mean_city for c in sel})
    mean_rop = pd.Series({c: results[c][0].mean_rop for c in sel})
    conc_city = q_city.mul(mean_city, axis=0)
    conc_rop = q_rop.mul(mean_rop, axis=0)
    conc = conc_city + conc_rop
    # ---- 4. health
    t = time.perf_counter()
    base = _base_name(cfg)
    pop_by_age = pop_by_age.loc[sel]
    health = {}
    for s in scen:
        health[s] = health_fn(cfg, conc[base].rename(None), None if s == base else conc[s].rename(None), pop_by_age)
    t_health = time.perf_counter() - t
    # ---- 5. tables
    rows = []
    for s in scen:
        hs = health[s]
        dcol = "deaths_scenario" if s != base else "deaths"
        part = pd.DataFrame({"city_id": sel, "scenario": s,
                             "conc_ug_m3": conc[s].values, "conc_from_city_ug_m3": conc_city[s].values,
                             "conc_from_rop_ug_m3": conc_rop[s].values})
        part["rop_share"] = np.where(part.conc_ug_m3 > 0, part.conc_from_rop_ug_m3 / part.conc_ug_m3, np.nan)
        for q in ("mean", "p2_5", "p97_5"):
            part[f"deaths_{q}"] = _health_values(hs, f"{dcol}_all_{q}", sel)
            part[f"avoided_deaths_{q}"] = (_health_values(hs, f"avoided_all_{q}", sel) if s != base
                                           else np.zeros(len(sel)))
        part["unit_response_city"] = mean_city.values
        part["unit_response_rop"] = mean_rop.values
        part["met"] = [prep.met_specs[c].describe() for c in sel]
        part["exposure"] = [results[c][0].exposure for c in sel]
        rows.append(part)
    extra = pd.concat(rows, ignore_index=True)
    cities_out = cc.merge(extra, on=["scenario", "city_id"], how="right")
    national, summary = _national(cfg, carbon, cities_out, health, base, scen, ct, sel)
    # ---- 6. outputs
    t = time.perf_counter()
    out = prep.out_dir
    attrs = _global_attrs(cfg, prep)
    _write_netcdf(out / "concentration.nc", scen, mosaic, results, q_city, q_rop, ct, sel, attrs)
    eio.write_csv(cities_out, out / "cities.csv")
    eio.write_csv(national, out / "national.csv")
    eio.write_csv(rop, out / "provinces.csv")
    timings = {"carbon_s": t_carbon, **tf, "health_s": t_health, "write_s": time.perf_counter() - t,
               "total_s": time.perf_counter() - t_start}
    summary.update({"n_cities": len(sel), "n_fields_from_cache": n_cached, "timings_s": timings,
                    "met": sorted({s.describe() for s in prep.met_specs.values()}),
                    "exposure": _exposure_summary(prep, results, sel),
                    "footprints": _footprint_summary(prep, sel),
                    "config": config_to_dict(cfg), "versions": eio.versions()})
    eio.write_json(summary, out / "summary.json")
    return RunResult(out, cities_out, national, summary, len(sel), n_cached, timings)


def _exposure_summary(prep, results, sel):
    """Which exposure mean each city got, and from which population grid."""
    by_city = {str(c): results[c][0].exposure for c in sel}
    kinds = sorted(set(by_city.values()))
    return {"method": {"population_weighted": "population-weighted mean over the city's receptors",
                       "area_mean": "area mean over the city footprint (no population grid)",
                       "area_mean_no_population": "area mean: the population grid has nobody in the city"},
            "population_grid": prep.inputs.get("population_grid"),
            "counts": {k: sum(1 for v in by_city.values() if v == k) for k in kinds},
            "by_city": by_city}


def _footprint_summary(prep, sel):
    given = prep.inputs.get("footprints_geojson")
    poly = [int(c) for c in sel if isinstance(prep.geometries[c].footprint, geo.Polygon)]
    return {"file": given, "polygon_city_ids": poly, "n_disc": len(sel) - len(poly)}


def _health_values(ds, var, sel):
    if var not in ds:
        return np.full(len(sel), np.nan)
    da = ds[var]
    labels = list(da["region"].values)
    m = dict(zip([int(x) for x in labels], np.asarray(da.values, dtype=float)))
    return np.array([m.get(int(c), np.nan) for c in sel])


def _national(cfg, carbon, cities_out, health, base, scen, ct, sel):
    from engine.health import national_totals

    rows, summ = [], {"base_scenario": base, "scenarios": {}}
    pop = ct.loc[sel, "population"].astype(float)
    mega = pop.index[pop > MEGACITY_POPULATION]
    for s in scen:
        cs = cities_out[cities_out.scenario == s].set_index("city_id").loc[sel]
        nt = national_totals(health[s])
        dname = "deaths_scenario" if s != base else "deaths"
        row = {"scenario": s}
        if carbon.national is not None and "item" in carbon.national:
            # the carbon stage's Table 1/2 line items, one column each (Mt CO2)
            nat = carbon.national[carbon.national.scenario == s].set_index("item")["co2_mt"]
            row["national_co2_mt"] = float(nat.get("national_co2", np.nan))
            for item, v in nat.items():
                if item != "national_co2":
                    row[f"{item}_co2_cut_mt"] = float(v)
        row["cities_co2_t"] = float(cs["co2_t"].sum()) if "co2_t" in cs else np.nan
        row["cities_pm25_t"] = float(cs["pm25_t"].sum()) if "pm25_t" in cs else np.nan
        row["pop_weighted_conc_ug_m3"] = float((cs.conc_ug_m3 * pop).sum() / pop.sum())
        for q in ("mean", "p2_5", "p97_5"):
            v = nt.get(f"{dname}_all_{q}")
            row[f"deaths_{q}"] = float(v) if v is not None else np.nan
            a = nt.get(f"avoided_all_{q}")
            row[f"avoided_deaths_{q}"] = float(a) if (a is not None and s != base) else 0.0
        rows.append(row)
        info = {k: row[k] for k in row if k != "scenario"}
        info["conc_range_ug_m3"] = [float(cs.conc_ug_m3.min()), float(cs.conc_ug_m3.median()), float(cs.conc_ug_m3.max())]
        if s != base:
            cb = cities_out[cities_out.scenario == base].set_index("city_id").loc[sel]
            dco2 = (cb["co2_t"] - cs["co2_t"]) if "co2_t" in cs else pd.Series(np.nan, index=sel)
            avoided = cs["avoided_deaths_mean"]
            hh = int(((dco2 > dco2.mean()) & (avoided > avoided.mean())).sum())
            dq = (cb["pm25_intensity_g_m2_yr"] - cs["pm25_intensity_g_m2_yr"]) if "pm25_intensity_g_m2_yr" in cs else None
            dconc = cb.conc_ug_m3 - cs.conc_ug_m3
            info["high_high_cities"] = hh
            info["r2_conc_reduction_vs_intensity_reduction"] = _r2(dq, dconc) if dq is not None else float("nan")
            tot_co2 = float(dco2.sum())
            tot_av = float(avoided.sum())
            info["megacities"] = {
                "n": int(len(mega)),
                "share_of_city_co2_mitigation": float(dco2.loc[mega].sum() / tot_co2) if tot_co2 else float("nan"),
                "share_of_avoided_deaths": float(avoided.loc[mega].sum() / tot_av) if tot_av else float("nan")}
        summ["scenarios"][s] = info
    return pd.DataFrame(rows), summ


def _mosaic_spec(prep, step):
    lats, lons = [], []
    for g in prep.geometries.values():
        fine = geo.city_grid(g)
        la, lo = geo.aeqd_inverse(np.array([fine.x[0], fine.x[-1], fine.x[0], fine.x[-1]]),
                                  np.array([fine.y[0], fine.y[0], fine.y[-1], fine.y[-1]]), fine.lat0, fine.lon0)
        lats += [la.min(), la.max(), g.centre_lat]
        lons += [lo.min(), lo.max()]
    pad = step
    return fl.MosaicSpec.covering(min(lats) - pad, max(lats) + pad, min(lons) - pad, max(lons) + pad, step)


def _global_attrs(cfg, prep):
    return {
        "title": "Annual-mean primary PM2.5 from city and rest-of-province emissions, by scenario",
        "institution": "cobenefits engine",
        "source": f"cobenefits {eio.versions().get('cobenefits', '')}: Gaussian-plume (AERMOD-style) transfer "
                  "kernels convolved with uniform area emission intensities (Ramaswami et al. 2017 method)",
        "history": f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} cobenefits run",
        "references": "Ramaswami et al. 2017, Nature Climate Change 7:736; Cimorelli et al. 2005, J. Appl. Meteor. 44:682",
        "comment": ("primary PM2.5 only (no secondary aerosol); each city sees its own and its rest-of-province "
                    "emissions; footprints are discs of the real areas unless polygons were given"),
        "met": "; ".join(sorted({s.describe() for s in prep.met_specs.values()})),
        "met_is_default_climatology": int(all(s.kind == "default" for s in prep.met_specs.values())),
        "cobenefits_config": json.dumps(config_to_dict(cfg)),
        "cobenefits_versions": json.dumps(eio.versions()),
    }


def _write_netcdf(path, scen, mosaic, results, q_city, q_rop, ct, sel, attrs):
    contribs = {c: results[c][1] for c in sel}
    owner, ucity, urop, _ = fl.merge_mosaic(contribs, mosaic)
    qc = q_city.reindex(sel).values
    qr = q_rop.reindex(sel).values
    pos = {c: i for i, c in enumerate(sel)}
    o = owner.ravel()
    has = o >= 0
    idx = np.array([pos[c] for c in o[has]], dtype=int)
    mos = np.full((len(scen), owner.size), np.nan)
    for k in range(len(scen)):
        mos[k, has] = qc[idx, k] * ucity.ravel()[has] + qr[idx, k] * urop.ravel()[has]
    mos = mos.reshape(len(scen), *owner.shape)

    def city_groups():
        for c in sel:
            cf = results[c][0]
            i = pos[c]
            pm = qc[i][:, None, None] * cf.unit_city[None] + qr[i][:, None, None] * cf.unit_rop[None]
            row = ct.loc[c]
            yield {"city_id": c, "name": str(row.get("name", "")), "province_id": int(row["province_id"]),
                   "grid": cf.grid, "pm25": pm, "unit_city": cf.unit_city, "unit_rop": cf.unit_rop,
                   "city_fraction": cf.city_fraction,
                   "attrs": {"exposure_unit_response_city": cf.mean_city, "exposure_unit_response_rop": cf.mean_rop,
                             "city_area_km2": cf.city_area_km2, "rop_area_km2": cf.rop_area_km2,
                             "exposure": cf.exposure}}

    eio.write_concentration_netcdf(path, scenarios=scen, mosaic_lat=mosaic.lat, mosaic_lon=mosaic.lon,
                                   mosaic_pm25=mos, mosaic_owner=owner, cities=city_groups(),
                                   global_attrs=attrs, earth_radius_m=geo.EARTH_RADIUS_M)

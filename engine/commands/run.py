"""``cobenefits run``: the national run, carbon -> emissions -> dispersion -> health, every city.

A thin caller: the stages are :mod:`engine.pipeline`'s; this module checks the output folder,
calls them and writes the files. Outputs (in ``--out``, each written atomically):
``concentration.nc`` (CF-1.8 national mosaic; one file per city in ``cities/``),
``sr_matrix.nc`` (the source-receptor matrix), ``cities.csv`` (one row per scenario and city),
``national.csv`` (one row per scenario), ``provinces.csv`` and ``summary.json``.

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
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from engine.dispersion import fields as fl
from engine.dispersion import geometry as geo
from engine.output import writers as eio
from engine import pipeline as pl
from engine.config import config_to_dict, input_paths, load_config
from engine.constants import SECONDS_PER_YEAR
from engine.data.dataset import add_city_labels
from engine.errors import InputError
from engine.output.persist import OutputTransaction
from engine.parallel import Background

NAME = "run"
HELP = "national run: CO2, PM2.5 fields (NetCDF) and avoided deaths for every city and scenario"

__all__ = ["NAME", "HELP", "add_arguments", "run", "run_national", "RunResult", "SECONDS_PER_YEAR"]

log = logging.getLogger("cobenefits")


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
                   help="recompute every transfer kernel, source-receptor row and field (compiled numba "
                        "kernels are still reused)")
    p.add_argument("--source-set", choices=("own", "province", "nation"), default=None,
                   help="sources each city sees (default: [dispersion] source_set, 'province')")
    p.add_argument("--city-files", choices=("combined", "per_city", "both"), default="combined",
                   help="city fields: one city_fields.nc, one cities/c<id>.nc per city (for CDO), or both")
    p.add_argument("--no-report", action="store_true", help="do not write the figures and report/index.html")


def run(args):
    overrides = {}
    if args.workers is not None:
        if args.workers < 0:
            raise InputError(f"--workers {args.workers}: must be >= 0 (0 = all cores)")
        overrides.setdefault("run", {})["workers"] = args.workers
    for value, section, key in ((args.scheduler, "run", "scheduler"), (args.cities, "data", "cities"),
                                (args.source_set, "dispersion", "source_set")):
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    cfg = load_config(args.config or None, overrides=overrides)
    res = run_national(cfg, args.out, use_cache=not args.no_cache, quiet=getattr(args, "quiet", False),
                       city_files=args.city_files, report=not args.no_report)
    if not getattr(args, "quiet", False):
        from engine.report.html import headline_lines

        report_dir = res.out_dir / "report" if not args.no_report else None
        print(res.message())
        print("\n".join(headline_lines(res.out_dir, report_dir)))
    return 0


# --------------------------------------------------------------------------- the run
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
                f"({self.n_from_cache} cities' source-receptor rows from the cache; "
                f"{self.timings.get('total_s', 0):.1f} s)")


def run_national(cfg, out_dir, *, use_cache=True, quiet=False, workers=None, scheduler=None, client=None,
                 data=None, footprints=None, province_footprints=None, population=None, population_key="",
                 carbon_fn=None, health_fn=None, age_population_fn=None, kernel_fn=None, city_files="combined",
                 report=False):
    """The national run: :mod:`engine.pipeline`'s stages, then the writers. Returns a :class:`RunResult`.

    Integration points (replaceable for tests) are the pipeline's: ``carbon_fn(cfg, data)``,
    ``health_fn(cfg, conc_base, conc_scenario, pop_by_age)``, ``age_population_fn(data, city_ids)``,
    ``kernel_fn`` (the period-kernel function).
    """
    t_start = time.perf_counter()
    # the output transaction first: lock, --out/input overlap and foreign-folder errors come in
    # seconds; everything is written into a staging folder and swapped in at the end, with
    # manifest.json, so an interrupted run leaves the previous output as it was
    with OutputTransaction(out_dir, inputs=input_paths(cfg), config=config_to_dict(cfg), command="run") as tx:
        t = time.perf_counter()
        prep = pl.prepare(cfg, data=data, footprints=footprints, province_footprints=province_footprints,
                          population=population, population_key=population_key)
        t_prepare = time.perf_counter() - t
        cfg = prep.cfg
        t = time.perf_counter()
        carbon = pl.carbon(prep, carbon_fn=carbon_fn)
        q = pl.emissions(prep, carbon)
        t_carbon = time.perf_counter() - t
        mosaic = _mosaic_spec(prep, cfg.dispersion.mosaic_resolution_deg)
        results, tf = pl.receptor_pass(prep, q=q, mosaic=mosaic, use_cache=use_cache, workers=workers,
                                       scheduler=scheduler, client=client, quiet=quiet, kernel_fn=kernel_fn)
        attrs = eio.run_global_attrs(cfg.dispersion.source_set, cfg.dispersion.source_reach_km,
                                     prep.met_specs.values(), config_to_dict(cfg))
        scen = list(cfg.scenario_names)
        # the concentration files (the largest output) are written by a forked child while this
        # process computes health and metrics (engine.parallel.Background; at once, here, where the
        # run has one worker, threads or no fork)
        t = [time.perf_counter()]  # stage boundaries
        fork = cfg.run.pool == "processes" and (cfg.run.workers if workers is None else workers) != 1
        nc = Background(_write_netcdf, tx.path("concentration.nc"), scen, mosaic, results, prep, attrs,
                        city_files=city_files, fork=fork, what="the writing of concentration.nc")
        try:
            t.append(time.perf_counter())
            S = pl.sr_dataset(prep, results)
            conc = pl.superpose(S, q)
            t.append(time.perf_counter())
            health = pl.health(prep, conc, health_fn=health_fn, age_population_fn=age_population_fn)
            t.append(time.perf_counter())
            cities_out, national, summary = pl.metrics(prep, carbon, conc, health, S)
            t.append(time.perf_counter())
            names = prep.city_table.set_index("city_id")["name"]
            eio.write_sr_dataset_netcdf(tx.path("sr_matrix.nc"), S, global_attrs=attrs,
                                        receptor_names=[str(names.get(int(c), "")) for c in S["city"].values])
            cities_out = add_city_labels(cities_out, prep.data)
            eio.write_csv(cities_out, tx.path("cities.csv"), significant_digits=6)
            eio.write_csv(national, tx.path("national.csv"), significant_digits=6)
            eio.write_csv(carbon.rop[carbon.rop["scenario"].isin(scen)], tx.path("provinces.csv"),
                          significant_digits=6)
            t.append(time.perf_counter())
            nc_info = nc.result()
            t.append(time.perf_counter())
        finally:
            nc.close()
        t_start_nc, t_superpose, t_health, t_metrics, t_tables, t_wait = np.diff(t).tolist()
        n_cached = int(S.attrs["n_from_cache"])
        timings = {"prepare_s": t_prepare, "carbon_s": t_carbon, **tf, "superpose_s": t_superpose,
                   "health_s": t_health, "metrics_s": t_metrics,
                   # the writing that kept this process busy or waiting: everything but health and metrics
                   "write_s": t_start_nc + t_tables + t_wait,
                   "concentration_write_s": float(sum(nc_info["write_s"].values()))}
        sel = prep.selected
        summary.update({"n_cities": len(sel), "n_rows_from_cache": n_cached, "n_fields_from_cache": n_cached,
                        "timings_s": timings, "source_set": cfg.dispersion.source_set,
                        "met": sorted({s.describe() for s in prep.met_specs.values()}),
                        "seasons": pl.season_summary(prep, q),
                        "exposure": _exposure_summary(prep, S),
                        "footprints": _footprint_summary(prep),
                        "config": config_to_dict(cfg), "versions": eio.versions()})
        timings["total_s"] = time.perf_counter() - t_start
        eio.write_json(summary, tx.path("summary.json"))
        if report:
            from engine.report.html import build_report

            t = time.perf_counter()
            build_report(tx.staging, out_dir=tx.path("report"))
            timings["report_s"] = time.perf_counter() - t
    return RunResult(tx.out_dir, cities_out, national, summary, len(sel), n_cached, timings)


def _exposure_summary(prep, S):
    """Which exposure mean each city got, and from which population grid."""
    by_city = {str(int(c)): str(e) for c, e in zip(S["city"].values, S["exposure"].values)}
    kinds = sorted(set(by_city.values()))
    return {"method": {"population_weighted": "population-weighted mean over the city's receptors",
                       "area_mean": "area mean over the city footprint (no population grid)",
                       "area_mean_no_population": "area mean: the population grid has nobody in the city"},
            "population_grid": prep.inputs.get("population_grid"),
            "counts": {k: sum(1 for v in by_city.values() if v == k) for k in kinds},
            "by_city": by_city}


def _footprint_summary(prep):
    given = prep.inputs.get("footprints_geojson")
    poly = [int(c) for c in prep.selected if isinstance(prep.geometries[c].footprint, geo.Polygon)]
    return {"file": given, "polygon_city_ids": poly, "n_disc": len(prep.selected) - len(poly)}


def _mosaic_spec(prep, step):
    lats, lons = [], []
    for c in prep.selected:
        fine = prep.lattices[c][0]
        la, lo = geo.aeqd_inverse(np.array([fine.x[0], fine.x[-1], fine.x[0], fine.x[-1]]),
                                  np.array([fine.y[0], fine.y[0], fine.y[-1], fine.y[-1]]), fine.lat0, fine.lon0)
        lats += [la.min(), la.max(), prep.geometries[c].centre_lat]
        lons += [lo.min(), lo.max()]
    pad = step
    return fl.MosaicSpec.covering(min(lats) - pad, max(lats) + pad, min(lons) - pad, max(lons) + pad, step)


def _write_netcdf(path, scen, mosaic, results, prep, attrs, city_files="combined"):
    from engine.dispersion.srmatrix import merge_mosaic_values

    sel = prep.selected
    ct = prep.city_table.set_index("city_id")
    owner, mos = merge_mosaic_values({c: results[c].mosaic for c in sel}, mosaic)

    def city_groups():
        for c in sel:
            r = results[c]
            row = ct.loc[c]
            yield {"city_id": c, "name": str(row.get("name", "")), "province_id": int(row["province_id"]),
                   "name_en": str(row.get("name_en", "")), "province_name": str(row.get("province", "")),
                   "grid": r.grid, "pm25": r.pm25, "unit_city": r.unit_city, "unit_rop": r.unit_rop,
                   "city_fraction": r.city_fraction,
                   "attrs": {"exposure_unit_response_city": float(r.row[r.labels.index(f"c{c}")]),
                             "exposure_unit_response_rop": float(r.row[r.labels.index(f"r{int(row['province_id'])}")]),
                             "city_area_km2": r.city_area_km2, "rop_area_km2": r.rop_area_km2,
                             "exposure": r.exposure, "met": prep.met_specs[c].describe()}}

    return eio.write_concentration_netcdf(path, scenarios=scen, mosaic_lat=mosaic.lat, mosaic_lon=mosaic.lon,
                                          mosaic_pm25=mos, mosaic_owner=owner, cities=city_groups(),
                                          global_attrs=attrs, earth_radius_m=geo.EARTH_RADIUS_M,
                                          city_fields=city_files)

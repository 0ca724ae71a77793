"""``cobenefits marginal``: deaths per kt of primary PM2.5 by source and deaths avoided per Mt CO2
of every city action (:mod:`engine.marginal`).

Outputs (in ``--out``, one output transaction): ``marginal_damages.nc`` (CF-1.8),
``marginal_damages.csv`` (one row per scenario and source), ``cobenefit_intensity.csv`` (one row
per place or province and action, ranked), ``summary.json`` and the figures
``marginal_damage_map.png`` and ``top_intensities.png``.
"""

from __future__ import annotations

import json
import logging
import time

from engine.errors import InputError

NAME = "marginal"
HELP = ("marginal damages (deaths per kt yr-1 of primary PM2.5, every source, with intervals) and the co-benefit "
        "intensity of every city action (deaths avoided per Mt CO2)")

__all__ = ["NAME", "HELP", "add_arguments", "run", "common_arguments", "load"]

log = logging.getLogger("cobenefits")


def common_arguments(p):
    p.add_argument("config", nargs="*", metavar="CONFIG",
                   help="scenario TOML files (default: the four shipped scenarios)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--cities", default=None, metavar="SELECTOR",
                   help="receptor cities: 'all', or comma-separated city ids, names or provinces")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local Dask worker threads for the source-receptor matrix (0 = all cores)")
    p.add_argument("--no-cache", action="store_true", help="recompute transfer kernels and source-receptor rows")
    p.add_argument("--reference", default=None, metavar="SCENARIO",
                   help="scenario whose [carbon] parameters the actions use and targeting compares with "
                        "(default: fyp_symbiosis)")


def add_arguments(p):
    common_arguments(p)
    p.add_argument("--scenario", action="append", default=None, metavar="NAME",
                   help="scenario to evaluate the marginal damages at (repeatable; default: every scenario)")
    p.add_argument("--no-intensity", action="store_true", help="marginal damages only")


def load(args):
    """Config and the pipeline's first stages from the command's arguments."""
    from engine.config import load_config
    from engine.marginal.stages import run_stages

    overrides = {}
    if args.workers is not None:
        if args.workers < 0:
            raise InputError(f"--workers {args.workers}: must be >= 0 (0 = all cores)")
        overrides.setdefault("run", {})["workers"] = args.workers
    if args.cities is not None:
        overrides.setdefault("data", {})["cities"] = args.cities
    cfg = load_config(args.config or None, overrides=overrides)
    return cfg, run_stages(cfg, use_cache=not args.no_cache, quiet=getattr(args, "quiet", False))


def run(args):
    from engine.config import config_to_dict, input_paths
    from engine.marginal import cobenefit_intensity, marginal_damages
    from engine.marginal import figures, tables
    from engine.output import writers as eio
    from engine.output.persist import OutputTransaction

    t0 = time.perf_counter()
    cfg, st = load(args)
    with OutputTransaction(args.out, inputs=input_paths(cfg), config=config_to_dict(cfg), command=NAME) as tx:
        md = marginal_damages(stages=st, scenarios=args.scenario)
        tables.write_cf_netcdf(md, tx.path("marginal_damages.nc"), title="marginal damages of primary PM2.5 by source",
                               drop=("md_draws",))
        eio.write_csv(tables.damages_table(md), tx.path("marginal_damages.csv"), significant_digits=6)
        figures.plot_damage_map(md, tx.path("marginal_damage_map.png"))
        summary = {"base_scenario": st.base, "crf": md.attrs["crf"], "draws": int(md.attrs["draws"]),
                   "sources": int(md.sizes["source"]), "receptor_cities": len(st.prep.selected)}
        import numpy as np

        b = md["md_central"].sel(scenario=md.attrs["base_scenario"]) if md.attrs["base_scenario"] in \
            md["scenario"].values else md["md_central"].isel(scenario=0)
        summary["md_central_deaths_per_kt"] = {"min": float(np.nanmin(b)), "median": float(np.nanmedian(b)),
                                               "max": float(np.nanmax(b))}
        if not args.no_intensity:
            it = cobenefit_intensity(stages=st, reference=args.reference)
            eio.write_csv(tables.intensity_table(it), tx.path("cobenefit_intensity.csv"), significant_digits=6)
            figures.plot_top_intensities(it, tx.path("top_intensities.png"))
            summary["intensity"] = {"options": int(it.sizes["option"]), "reference_scenario": it.attrs["reference_scenario"],
                                    "timings_s": it.attrs["timings_s"]}
        summary["total_s"] = time.perf_counter() - t0
        eio.write_json(summary, tx.path("summary.json"))
    if not getattr(args, "quiet", False):
        print(f"marginal: {summary['sources']} sources, {summary['receptor_cities']} receptor cities -> {args.out}")
        print(json.dumps(summary.get("md_central_deaths_per_kt", {})))
    return 0

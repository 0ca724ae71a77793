"""``cobenefits sweep``: a sensitivity sweep of the national run (:func:`engine.sensitivity.driver.sweep`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

NAME = "sweep"
HELP = ("sensitivity sweep: sample carbon, emission, dispersion and health assumptions (SALib: Sobol', Morris, "
        "LHS, grid, Monte Carlo), evaluate every sample nationally, write samples.csv, sweep.nc, indices.csv, "
        "summary.json; re-running with the same sweep file resumes")

log = logging.getLogger("cobenefits")


def add_arguments(p):
    p.add_argument("sweep_file", type=Path, metavar="SWEEP.toml", help="sweep file (examples in config/sweeps/)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder, written as one transaction "
                   "(new, empty or a previous sweep's); the finished chunks a re-run reuses are kept beside it in "
                   ".DIR.chunks/")
    p.add_argument("--samples", type=int, default=None, metavar="N",
                   help="base samples N (Sobol': N(D+2) evaluations; Morris: N trajectories); default: the file's")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="random seed; default: the file's")
    p.add_argument("--chunk-size", type=int, default=None, metavar="N",
                   help="samples per chunk (memory and resume granularity); default: the file's, else 500")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local Dask threads (0 = all cores); default: all cores")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a dask.distributed scheduler (tcp://host:8786); default: local threads")
    p.add_argument("--no-cache", action="store_true",
                   help="recompute transfer kernels, source-receptor rows and the draw-mean tables")


def run(args):
    from engine.sensitivity import sweep

    ds = sweep(args.sweep_file, out=args.out, samples=args.samples, seed=args.seed, chunk_size=args.chunk_size,
               workers=args.workers, scheduler=args.scheduler, quiet=getattr(args, "quiet", False),
               use_cache=not args.no_cache)
    s = json.loads(ds.attrs["summary"])
    log.info("%s sweep: %d evaluations (%s), %d chunks (%d reused), %.1f s", s["method"], s["evaluations"],
             s["count_rule"], s["chunks"], s["chunks_reused"], s["timings_s"]["total_s"])
    for o, d in s.get("national_distribution", {}).items():
        if "mean" in d:
            log.info("%-34s mean %12.4g  95%% interval [%.4g, %.4g]", o, d["mean"], d["p2_5"], d["p97_5"])
        else:
            log.warning("%-34s %d sample(s) without a finite value", o, d.get("non_finite_samples", 0))
    for o, st in s.get("indices", {}).items():
        if not st.get("computed") and st.get("reason"):
            log.warning("%s: no sensitivity indices: %s", o, st["reason"])
    log.info("wrote %s/{samples.csv,sweep.nc,indices.csv,summary.json}", args.out)
    ds.close()
    return 0

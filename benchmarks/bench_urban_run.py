"""Urban kernels in the receptor pass: this release against the former scheme, same process.

For the cities of one selector (default: Hebei, 18 urban cities of 36 under ``urban = "auto"``),
runs :func:`engine.pipeline.receptor_pass` (transfer kernels, then rows of S and the fields of
two scenarios) on an empty kernel/row cache, three ways, one after the other in this process
with numba compiled first:

* ``rural``: ``urban = false``, the baseline;
* ``former``: ``urban = "auto"`` the way the previous release built urban kernels -- one kernel
  per population class (4 per decade, each city at its class centre) over all hours
  (``area.period_kernel``) -- emulated by replacing the node weights and passing
  ``area.period_kernel`` as ``kernel_fn`` (one call per kernel);
* ``nodes``: ``urban = "auto"`` as shipped (decade nodes interpolated in log population, urban
  hours only: :mod:`engine.dispersion.urban`).

Reports wall and CPU seconds (``time.process_time``: every thread of the process), the number
of kernels and the stage timings, and the largest relative difference of the rows between
``former`` and ``nodes`` (the node interpolation against the classes). Machine load is recorded
before and after.

    python benchmarks/bench_urban_run.py [--cities Hebei] [--workers 2] [--out DIR]
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's engine, not an installed one


def _former_weights(p):
    """The previous release's classes: 4 per decade, the bin's geometric centre, weight 1."""
    n = 4
    k = math.floor(math.log10(float(p)) * n)
    return ((float(round(10.0 ** ((k + 0.5) / n), 1)), 1.0),)


def _pass(cities, urban, workers, kernel_fn=None):
    import xarray as xr

    from engine import pipeline as pl
    from engine.config import load_config

    os.environ["COBENEFITS_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-urban-")
    prep = pl.prepare(load_config(None, overrides={"data": {"cities": cities}, "dispersion": {"urban": urban}}))
    rng = np.random.default_rng(0)
    q = xr.Dataset({"q": (("scenario", "source"), rng.uniform(0.5, 2.0, (2, len(prep.sources))) * 1e-7)},
                   coords={"scenario": ["a", "b"], "source": prep.source_labels})
    shares = np.full((len(prep.seasons), 2, len(prep.sources)), 1.0 / len(prep.seasons))
    q["season_share"] = (("season", "scenario", "source"), shares)
    w0, c0 = time.perf_counter(), time.process_time()
    res, t = pl.receptor_pass(prep, q=q, quiet=True, workers=workers, kernel_fn=kernel_fn)
    out = {"wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - c0, **t,
           "n_cities": len(prep.selected)}
    return out, {c: res[c].row for c in prep.selected}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cities", default="Hebei")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    from engine.dispersion import area, fields as fl, urban as ub

    res = {"cities": args.cities, "workers": args.workers, "cpu_count": os.cpu_count(),
           "load_average_before": os.getloadavg()}
    _pass("Tianjin", False, args.workers)  # compile numba's kernels, outside the timings
    res["rural"], _ = _pass(args.cities, False, args.workers)
    keep = ub.urban_node_weights
    ub.urban_node_weights = _former_weights
    try:  # one period_kernel call (all hours) per kernel, as the previous release
        res["former"], rows_former = _pass(args.cities, "auto", args.workers, kernel_fn=area.period_kernel)
    finally:
        ub.urban_node_weights = keep
    res["nodes"], rows_nodes = _pass(args.cities, "auto", args.workers)
    res["rows_max_rel_diff_nodes_vs_former"] = max(
        float(np.max(np.abs(rows_nodes[c] - rows_former[c]) / np.maximum(np.abs(rows_former[c]), 1e-300)))
        for c in rows_nodes)
    own = [abs(rows_nodes[c][i] / rows_former[c][i] - 1) for c in rows_nodes
           for i in range(len(rows_nodes[c])) if rows_former[c][i] > 0.01 * rows_former[c].max()]
    res["rows_median_rel_diff_entries_above_1pct_of_row_max"] = float(np.median(own))
    res["speedup_nodes_vs_former_wall"] = res["former"]["wall_s"] / res["nodes"]["wall_s"]
    res["speedup_nodes_vs_former_cpu"] = res["former"]["cpu_s"] / res["nodes"]["cpu_s"]
    res["nodes_over_rural_cpu"] = res["nodes"]["cpu_s"] / res["rural"]["cpu_s"]
    res["load_average_after"] = os.getloadavg()
    out = Path(args.out) if args.out else Path(__file__).parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_urban_run.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()

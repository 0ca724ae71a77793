"""Rows of S and fields of the receptor pass: the spectral per-city pass against the former one.

For the cities of one selector (default: Hebei), with the four shipped scenarios' emissions and
the national mosaic, runs :func:`engine.pipeline.receptor_pass` for two physics set-ups:

* ``ground_rural``: ``[dispersion] emission_heights = "ground"``, ``urban = false``;
* ``sector_auto``: ``emission_heights = "sector"``, ``urban = "auto"`` (4 height classes, urban
  node kernels: 16 (season, class) parts per city with seasonal met).

First one pass fills the transfer-kernel cache (not timed; on an empty cache this takes minutes).
Then, with the kernels read from the cache and the row cache off, the city tasks are timed the
two ways, alternately, ``--repeat`` times each, in this process:

* ``per_part``: the former pass, one ``srmatrix.compute_receptor`` per (season, class) part,
  then ``pipeline._combine_parts``;
* ``spectral``: ``srmatrix.compute_receptor_parts`` (engine.dispersion.spectra).

Reports the fields stage (wall, from receptor_pass's timings) and CPU seconds of the process
(``time.process_time``: every thread), the best of the repeats, the speed-up ratios, the
largest relative difference between the two passes' rows and fields, and the machine load
before and after. Numba's kernels are compiled by the first pass, outside the timings.

    python benchmarks/bench_rows.py [--cities Hebei] [--workers 2] [--repeat 2] [--out FILE]

``COBENEFITS_CACHE_DIR`` chooses the kernel cache (default: the user cache, shared with runs).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's engine, not an installed one

SETUPS = {"ground_rural": {"emission_heights": "ground", "urban": False},
          "sector_auto": {"emission_heights": "sector", "urban": "auto"}}


def _prepare(cities, dispersion):
    from engine import pipeline as pl
    from engine.commands.run import _mosaic_spec
    from engine.config import load_config

    prep = pl.prepare(load_config(None, overrides={"data": {"cities": cities}, "dispersion": dispersion}))
    q = pl.emissions(prep, pl.carbon(prep))
    return prep, q, _mosaic_spec(prep, prep.cfg.dispersion.mosaic_resolution_deg)


def _timed_pass(prep, q, mosaic, workers, method):
    """receptor_pass with kernels from the cache, rows recomputed, the city tasks done ``method``'s way."""
    from engine import parallel
    from engine import pipeline as pl

    real = parallel.run_tasks

    def run_tasks(fn, items, shared=None, **kw):
        shared["options"].update(use_cache=False, parts_method=method)  # the row cache off, kernels cached
        return real(fn, items, shared=shared, **kw)

    parallel.run_tasks = run_tasks
    try:
        w0, c0 = time.perf_counter(), time.process_time()
        res, t = pl.receptor_pass(prep, q=q, mosaic=mosaic, use_cache=True, quiet=True, workers=workers)
        return {"wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - c0, **t}, res
    finally:
        parallel.run_tasks = real


def _max_rel(a, b):
    worst = 0.0
    for c in a:
        for k in ("row", "season_rows", "height_rows", "season_height_rows", "unit_city", "unit_rop", "pm25"):
            x, y = getattr(a[c], k), getattr(b[c], k)
            if x is None:
                continue
            x, y = np.asarray(x), np.asarray(y)
            worst = max(worst, float(np.max(np.abs(x - y)) / max(float(np.max(np.abs(x))), 1e-300)))
        worst = max(worst, float(np.max(np.abs(a[c].mosaic["values"] - b[c].mosaic["values"]))
                                 / np.max(np.abs(a[c].mosaic["values"]))))
    return worst


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cities", default="Hebei")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--setups", default=",".join(SETUPS))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_rows.json"))
    args = p.parse_args(argv)
    from engine import pipeline as pl
    from engine.dispersion import spectra

    out = {"cities": args.cities, "workers": args.workers, "repeat": args.repeat, "cpu_count": os.cpu_count(),
           "load_average_before": os.getloadavg(), "setups": {}}
    for name in args.setups.split(","):
        prep, q, mosaic = _prepare(args.cities, SETUPS[name])
        t0 = time.perf_counter()
        pl.receptor_pass(prep, q=q, mosaic=mosaic, use_cache=True, quiet=True, workers=args.workers)
        rec = {"n_cities": len(prep.selected), "n_seasons": len(prep.seasons),
               "n_height_classes": len(prep.height_classes), "fill_kernel_cache_s": time.perf_counter() - t0}
        best, results = {}, {}
        for _ in range(args.repeat):
            for method in ("per_part", "spectral"):
                spectra.KERNEL_SPECTRA.clear()  # each spectral repeat starts without kernel spectra
                t, results[method] = _timed_pass(prep, q, mosaic, args.workers, method)
                if method not in best or t["fields_s"] < best[method]["fields_s"]:
                    best[method] = t
        rec.update(best)
        rec["speedup_fields_wall"] = best["per_part"]["fields_s"] / best["spectral"]["fields_s"]
        rec["speedup_cpu"] = best["per_part"]["cpu_s"] / best["spectral"]["cpu_s"]
        rec["max_rel_difference"] = _max_rel(results["per_part"], results["spectral"])
        out["setups"][name] = rec
        print(f"{name}: fields {best['per_part']['fields_s']:.1f} s -> {best['spectral']['fields_s']:.1f} s "
              f"({rec['speedup_fields_wall']:.2f}x wall), CPU {best['per_part']['cpu_s']:.1f} -> "
              f"{best['spectral']['cpu_s']:.1f} s ({rec['speedup_cpu']:.2f}x); max rel. difference "
              f"{rec['max_rel_difference']:.1e}", flush=True)
    s = out["setups"]
    if "ground_rural" in s and "sector_auto" in s:
        out["sector_auto_over_ground_rural_fields"] = {
            m: s["sector_auto"][m]["fields_s"] / s["ground_rural"][m]["fields_s"] for m in ("per_part", "spectral")}
    out["load_average_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=float))
    print(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()

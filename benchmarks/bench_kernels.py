"""Transfer kernels of a cold run: kernel families against the former one-call-per-kernel loop.

For the cities of one selector (default: Hebei) and for the national plan, and for each of
``[dispersion] emission_heights`` x ``urban`` in (ground, sector) x (false, auto):

* the kernel plan (:func:`engine.pipeline.kernel_plan`): number of kernels and of families
  (one met x one emission height: fine + coarse, rural + urban nodes);
* ``former``: every kernel by its own :func:`engine.dispersion.fields.compute_kernel` call, in the
  order the previous release used (urban nodes from the largest population down, the rural
  hours shared through ``engine.dispersion.urban._rural_part``);
* ``families``: :func:`engine.pipeline.transfer_kernels` as shipped
  (:func:`engine.dispersion.fields.compute_kernels`);

one after the other in this process, numba compiled first (compile time reported apart), no
kernel cache (``use_cache=False``; the cache folder is a fresh temporary one). Reports wall and
CPU seconds (``time.process_time``: every thread of the process), their ratio, and the largest
relative difference between the two kernel sets. For the national plan (``--national``) the
kernels of ``--sample`` met digests are timed (the first ones in digest order) and the
national total estimated by the kernel count. Machine load is recorded before and after.

    python benchmarks/bench_kernels.py [--cities Hebei] [--national] [--sample 1] [--out DIR]
    python benchmarks/bench_kernels.py --accuracy Beijing   # smaller exact half widths: cost, error
    python benchmarks/bench_kernels.py --symmetry Hebei     # kernels by lattice symmetry vs hour by hour
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's engine, not an installed one

CONFIGS = (("ground", False), ("sector", False), ("ground", "auto"), ("sector", "auto"))


def _plan(cities, heights, urban):
    from engine import pipeline as pl
    from engine.config import load_config

    over = {"dispersion": {"urban": urban, "emission_heights": heights}}
    if cities:
        over["data"] = {"cities": cities}
    prep = pl.prepare(load_config(None, overrides=over))
    sel = prep.selected
    seasons = prep.met_seasons or pl.met_seasons({c: prep.met_specs[c] for c in sel},
                                                 seasonal=prep.cfg.met.seasonal_emissions)
    plan, met_of, _ = pl.kernel_plan(prep, seasons, pl._urban_classes(prep))
    return len(sel), plan, met_of


def _former(plan, met_of):
    """The previous release's loop: one compute_kernel per kernel."""
    from engine import pipeline as pl
    from engine.dispersion import fields as fl
    from engine.dispersion import urban as ub

    ub._RURAL_PARTS.clear()
    return {key: fl.compute_kernel(spec, pl._season_met(*met_of[key[0]]), use_cache=False)
            for key, spec in sorted(plan.items(), key=pl._kernel_order)}


def _families(plan, met_of):
    from engine import pipeline as pl

    return pl.transfer_kernels(plan, met_of, use_cache=False, quiet=True)


def _timed(fn, *a):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn(*a)
    return out, {"wall_s": round(time.perf_counter() - w0, 3), "cpu_s": round(time.process_time() - c0, 3)}


def _compare(plan, met_of, former=True):
    from engine import pipeline as pl

    res = {"n_kernels": len(plan), "n_families": len(pl.kernel_families(plan))}
    new, res["families"] = _timed(_families, plan, met_of)
    if former:
        old, res["former"] = _timed(_former, plan, met_of)
        res["speedup_wall"] = round(res["former"]["wall_s"] / res["families"]["wall_s"], 3)
        res["speedup_cpu"] = round(res["former"]["cpu_s"] / res["families"]["cpu_s"], 3)
        res["max_rel_diff"] = max(float(np.max(np.abs(new[k] - old[k])) / max(np.max(np.abs(old[k])), 1e-300))
                                  for k in plan)
    return res


def _compile():
    from engine.config import load_config
    from engine import pipeline as pl
    from engine.dispersion import fields as fl

    prep = pl.prepare(load_config(None, overrides={"data": {"cities": "Tianjin"}}))
    c = prep.selected[0]
    met = pl._season_met(prep.met_specs[c], prep.seasons[0])
    spec = fl.KernelSpec("compile", 5000.0, 3)
    t0 = time.perf_counter()
    fl.compute_kernels({"k": spec}, met, use_cache=False)
    fl.compute_kernel(spec, met, use_cache=False)
    return round(time.perf_counter() - t0, 3)


def _accuracy(city, widths):
    """Cost and error of a smaller exact half width (not the run's setting; data for choosing one):
    per emission-height class, the family of ``city``'s first season (fine n=149 and coarse n=33,
    rural and the 10^7 node) at each width against the shipped one: kernel sum, and the mean and
    the largest relative error of the field of a 41 x 41-cell uniform source over its cells."""
    import dataclasses

    from scipy.signal import fftconvolve

    from engine import pipeline as pl
    from engine.config import load_config
    from engine.dispersion import fields as fl

    prep = pl.prepare(load_config(None, overrides={"data": {"cities": city},
                                                   "dispersion": {"emission_heights": "sector"}}))
    c = prep.selected[0]
    met = pl._season_met(prep.met_specs[c], prep.seasons[0])
    out = {}
    for cls in prep.height_classes:
        specs = {}
        for kind, sp, n in (("fine", 1000.0, 149), ("coarse", 5000.0, 33)):
            base = fl.KernelSpec(met.digest(), sp, n, stack=prep.heights.stacks[cls])
            specs[kind] = base
            specs[f"{kind}_urban_1e7"] = dataclasses.replace(base, urban_population=1e7)
        ref, t_ref = _timed(fl.compute_kernels, specs, met)
        out[cls] = {"shipped": {"exact_half_width": fl.EXACT_HALF_WIDTH, **t_ref}}
        src = np.ones((41, 41))
        for ex in widths:
            got, t = _timed(lambda: fl.compute_kernels(specs, met, use_cache=False, exact_half_width=ex))
            err = {}
            for k in specs:
                fa, fb = (fftconvolve(src, x[k], mode="same") for x in (got, ref))
                err[k] = {"sum_pct": round(abs(got[k].sum() / ref[k].sum() - 1) * 100, 4),
                          "source_mean_pct": round(abs(fa.mean() / fb.mean() - 1) * 100, 4),
                          "max_pct": round(float(np.max(np.abs(fa / fb - 1))) * 100, 4)}
            out[cls][f"x{ex}"] = {**t, "errors": err}
        print(cls, json.dumps(out[cls]), flush=True)
    return out


def _hour_by_hour(met_tables, weights, cell, spacing, n_half):
    """The former weighted kernel: every hour integrated (``kernels.plume.weighted_offset_kernel``)."""
    from kernels import plume

    lng, lnsy, wd = met_tables
    out = np.zeros((2 * n_half + 1, 2 * n_half + 1))
    if weights.any():
        plume.weighted_offset_kernel(float(cell), float(cell), float(spacing), float(spacing), int(n_half),
                                     int(n_half), weights, lng, lnsy, wd, out, plume.LATERAL_CDF_EXACT)
    return out


def _symmetry(cities):
    """The kernel families of ``cities`` (default configuration) as shipped -- one single-direction
    kernel per (table, base direction) turned onto the lattice's symmetric directions
    (:func:`engine.dispersion.symmetry.square_kernel`) -- against every hour integrated, back to back in
    this process, no cache; kernels compared."""
    from engine.dispersion import area, symmetry
    from engine.dispersion import urban as ub

    n, plan, met_of = _plan(cities, "sector", "auto")
    area._TABLE_CACHE.clear()
    new, t_new = _timed(_families, plan, met_of)
    shipped = ub.weighted_kernel
    ub.weighted_kernel = _hour_by_hour
    try:
        area._TABLE_CACHE.clear()
        old, t_old = _timed(_families, plan, met_of)
    finally:
        ub.weighted_kernel = shipped
    diff = max(float(np.max(np.abs(new[k] - old[k])) / max(np.max(np.abs(old[k])), 1e-300)) for k in plan)
    return {"n_cities": n, "n_kernels": len(plan), "symmetric": t_new, "hour_by_hour": t_old,
            "speedup_wall": round(t_old["wall_s"] / t_new["wall_s"], 3),
            "speedup_cpu": round(t_old["cpu_s"] / t_new["cpu_s"], 3), "max_rel_diff": diff}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cities", default="Hebei", help="cities selector for the regional comparison ('' to skip)")
    p.add_argument("--national", action="store_true", help="also the national plan (counts + a timed sample)")
    p.add_argument("--sample", type=int, default=1, help="national: met digests timed")
    p.add_argument("--configs", default=",".join(f"{h}+{u}" for h, u in CONFIGS),
                   help="comma-separated heights+urban (urban: False or auto)")
    p.add_argument("--no-former", action="store_true", help="time the families only")
    p.add_argument("--accuracy", default="", help="CITY: cost and error of exact half widths 16 and 24 instead")
    p.add_argument("--symmetry", default="", help="CITIES: kernels by lattice symmetry against hour by hour instead")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.symmetry:
        os.environ["COBENEFITS_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-kernels-")
        res = {"cities": args.symmetry, "cpu_count": os.cpu_count(), "load_average_before": os.getloadavg(),
               "compile_s": _compile(), **_symmetry(args.symmetry), "load_average_after": os.getloadavg()}
        out = Path(args.out) if args.out else Path(__file__).parent / "results"
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench_kernels_symmetry.json").write_text(json.dumps(res, indent=2) + "\n")
        print(json.dumps(res, indent=2))
        return
    if args.accuracy:
        os.environ["COBENEFITS_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-kernels-")
        res = {"city": args.accuracy, "load_average_before": os.getloadavg(), "compile_s": _compile(),
               "classes": _accuracy(args.accuracy, (16, 24)), "load_average_after": os.getloadavg()}
        out = Path(args.out) if args.out else Path(__file__).parent / "results"
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench_kernels_accuracy.json").write_text(json.dumps(res, indent=2) + "\n")
        return
    os.environ["COBENEFITS_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-kernels-")
    configs = [(h, {"False": False, "auto": "auto", "True": True}[u])
               for h, u in (c.split("+") for c in args.configs.split(","))]
    res = {"cities": args.cities, "cpu_count": os.cpu_count(), "load_average_before": os.getloadavg(),
           "numba_threads": int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count())),
           "compile_s": _compile(), "regional": {}, "national": {}}
    for heights, urban in configs:
        name = f"{heights}+{'auto' if urban else 'rural'}"
        if args.cities:
            n, plan, met_of = _plan(args.cities, heights, urban)
            res["regional"][name] = {"n_cities": n, **_compare(plan, met_of, not args.no_former)}
            print(name, json.dumps(res["regional"][name]), flush=True)
        if args.national:
            n, plan, met_of = _plan(None, heights, urban)
            digests = sorted({k[0] for k in plan})[:args.sample]
            sample = {k: s for k, s in plan.items() if k[0] in digests}
            r = {"n_cities": n, "n_kernels": len(plan), "n_families": len(__import__("engine.pipeline").pipeline
                                                                          .kernel_families(plan)),
                 "n_met_digests": len({k[0] for k in plan}), "sample": _compare(sample, met_of, not args.no_former)}
            scale = len(plan) / len(sample)
            r["estimated_total_families_wall_s"] = round(r["sample"]["families"]["wall_s"] * scale, 1)
            r["estimated_total_families_cpu_s"] = round(r["sample"]["families"]["cpu_s"] * scale, 1)
            if not args.no_former:
                r["estimated_total_former_wall_s"] = round(r["sample"]["former"]["wall_s"] * scale, 1)
            res["national"][name] = r
            print(name, "national", json.dumps(r), flush=True)
    res["load_average_after"] = os.getloadavg()
    out = Path(args.out) if args.out else Path(__file__).parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_kernels.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()

"""Urban transfer kernels: accuracy of the node interpolation and cost of the hour split.

On the default met of one city (both seasons, 1 km cells, half width 10 cells):

1. **accuracy**: for populations at 1/4, 1/2 and 3/4 of the way between nodes (n per decade,
   n = 1, 2, 4), the exact urban kernel against (a) the interpolation in log population of the
   two node kernels (engine.dispersion.urban.urban_node_weights, n = 1 in the run) and (b) the
   former classes (each population at its bin's geometric centre); worst relative error at the
   cell itself and summed over 11 x 11 cells;
2. **cost**: engine.dispersion.urban.split_period_kernel (urban hours only, rural ones shared
   between nodes, from the largest population down) against area.period_kernel with the urban
   option, same process, same nodes, half width 32 (one pyramid level), numba compiled first.

    python benchmarks/bench_urban_kernels.py [--city Beijing] [--out DIR]
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


def _metric(a, b):
    return (abs(a[10, 10] / b[10, 10] - 1), abs(a[5:16, 5:16].sum() / b[5:16, 5:16].sum() - 1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--city", default="Beijing")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    from engine import pipeline as pl
    from engine.config import load_config
    from engine.dispersion import urban as ub
    from engine.dispersion.area import period_kernel

    prep = pl.prepare(load_config(None, overrides={"data": {"cities": args.city}}))
    c = prep.selected[0]
    res = {"city": args.city, "load_average_before": os.getloadavg(), "accuracy": {}, "cost": {}}
    for m in prep.met_seasons[c]:
        met = pl._season_met(prep.met_specs[c], m.season)
        kw = dict(cell_size_m=1000.0, spacing_m=1000.0, n_half=10)

        def K(P):
            return period_kernel(met, urban_population=P, urban_roughness_m=1.0, **kw)

        acc = {}
        for n in (1, 2, 4):
            cls, itp = np.zeros(2), np.zeros(2)
            for lo in np.arange(5.0, 7.5, 1.0 / n):
                k_lo, k_hi, k_mid = K(10**lo), K(10**(lo + 1.0 / n)), K(10**(lo + 0.5 / n))
                cls = np.maximum(cls, _metric(k_mid, k_lo))  # a population at the bin edge
                for f in (0.25, 0.5, 0.75):
                    exact = K(10**(lo + f / n))
                    cls = np.maximum(cls, _metric(k_mid, exact))
                    itp = np.maximum(itp, _metric((1 - f) * k_lo + f * k_hi, exact))
            acc[f"{n}_per_decade"] = {"classes_cell": cls[0], "classes_11x11": cls[1],
                                      "interpolation_cell": itp[0], "interpolation_11x11": itp[1]}
        res["accuracy"][m.season] = acc
        kw32 = dict(cell_size_m=1000.0, spacing_m=1000.0, n_half=32)
        nodes = (1e8, 1e7, 1e6, 1e5)
        period_kernel(met, **kw32)  # compile, and the rural tables
        for P in nodes:  # the tables of every node, so that both paths find them built
            ub.urban_hours(met, P)
        ub._RURAL_PARTS.clear()
        t0 = time.perf_counter()
        full = [period_kernel(met, urban_population=P, urban_roughness_m=1.0, **kw32) for P in nodes]
        t_full = time.perf_counter() - t0
        t0 = time.perf_counter()
        split = [ub.split_period_kernel(met, urban_population=P, **kw32) for P in nodes]
        t_split = time.perf_counter() - t0
        res["cost"][m.season] = {
            "nodes": list(nodes), "urban_hours": [int(ub.urban_hours(met, P).sum()) for P in nodes],
            "hours": len(met), "period_kernel_s": t_full, "split_s": t_split, "ratio": t_split / t_full,
            "max_rel_diff": max(float(np.abs(s / f - 1).max()) for s, f in zip(split, full))}
    res["load_average_after"] = os.getloadavg()
    out = Path(args.out) if args.out else Path(__file__).parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_urban_kernels.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()

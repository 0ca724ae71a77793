"""Throughput of the linear tail: city exposures for many emission vectors, ``C = S @ Q``.

S has the national shape (654 receptor cities x 685 sources: 654 cities + 31 rests of
province) and the sparsity of ``source_set = 'province'`` (a city sees its own province's
sources); values and emissions are random (the cost does not depend on them). Times, in one
process:

* ``engine.pipeline.superpose(S, Q)`` for 10,000 emission vectors at once, the total alone
  (``parts=False``, what a sweep needs) and with the four parts by origin, and the bare
  ``Q @ S.T`` matrix product;
* the baseline: one ``superpose`` call per emission vector (measured on 200, scaled to 10,000).

Writes ``benchmarks/results/bench_superpose.json``.

    python benchmarks/bench_superpose.py [--samples 10000]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import xarray as xr

from engine import pipeline as pl


def national_like_S(rng, n_city=654, n_prov=31):
    prov_of_city = np.sort(rng.integers(0, n_prov, n_city))
    labels = [f"c{i}" for i in range(n_city)] + [f"r{p}" for p in range(n_prov)]
    kind = ["city"] * n_city + ["rop"] * n_prov
    sid = np.r_[np.arange(n_city), np.arange(n_prov)]
    sprov = np.r_[prov_of_city, np.arange(n_prov)]
    seen = sprov[None, :] == prov_of_city[:, None]
    S = np.where(seen, rng.uniform(1e5, 3e7, (n_city, n_city + n_prov)), 0.0)
    return xr.Dataset({"S": (("city", "source"), S)},
                      coords={"city": np.arange(n_city), "city_province": ("city", prov_of_city),
                              "source": labels, "source_kind": ("source", kind), "source_id": ("source", sid),
                              "source_province": ("source", sprov)})


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=10_000)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    S = national_like_S(rng)
    Q = xr.DataArray(rng.uniform(0, 1e-6, (args.samples, S.sizes["source"])), dims=("sample", "source"),
                     coords={"source": S.source.values})
    pl.superpose(S, Q.isel(sample=slice(0, 10)))  # warm-up
    best, med = best_of(lambda: pl.superpose(S, Q))
    tbest, tmed = best_of(lambda: pl.superpose(S, Q, parts=False))
    mbest, mmed = best_of(lambda: Q.values @ S.S.values.T)
    n_base = 200
    t0 = time.perf_counter()
    for k in range(n_base):
        pl.superpose(S, Q.isel(sample=k))
    per_call = (time.perf_counter() - t0) / n_base
    res = {"samples": args.samples, "S_shape": list(S.S.shape),
           "superpose_with_parts_s": {"best": best, "median": med},
           "superpose_total_only_s": {"best": tbest, "median": tmed},
           "matmul_s": {"best": mbest, "median": mmed},
           "baseline_loop_s_per_vector": per_call,
           "baseline_loop_s_extrapolated": per_call * args.samples,
           "speedup_vs_loop": per_call * args.samples / tbest}
    out = Path(__file__).parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_superpose.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()

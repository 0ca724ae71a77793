"""Benchmark of the health stage: 654 regions x 1000 draws x all causes and ages.

Runs standalone (``python benchmarks/bench_health.py [--regions N] [--draws D] [--crf NAME]``)
and writes ``benchmarks/results/bench_health.json``. Seeded synthetic concentrations; the
population by age is the embedded 2010 census table (654 cities). Compile time is measured in a
fresh numba cache folder and reported separately; every speed figure is a ratio against a plain
NumPy implementation of the same computation measured in the same run.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-health-numba-")  # true compile time

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def numpy_baseline(cs, zb, zs, weight, has_scen):
    """Same result as kernels.crf.impact_over_draws, vectorised with NumPy over (region, draw)."""
    n_r, n_c, n_d = zb.size, len(cs.causes), cs.params_draws.shape[1]
    base = np.zeros((n_r, n_c, n_d))
    scen = np.zeros((n_r, n_c, n_d))
    p = cs.params_draws

    def rr(z, k):
        if cs.model == 0:
            a, g, d, zcf = (p[k, :, i][None, :] for i in range(4))
            x = np.maximum(z[:, None] - zcf, 0.0)
            return np.where(x > 0, 1.0 + a * (1.0 - np.exp(-g * x ** d)), 1.0)
        if cs.model == 1:
            th, a, mu, nu, zcf = (p[k, :, i][None, :] for i in range(5))
            x = np.maximum(z[:, None] - zcf, 0.0)
            return np.exp(th * np.log1p(x / a) / (1.0 + np.exp(-(x - mu) / nu)))
        b, zcf = p[k, :, 0][None, :], p[k, :, 1][None, :]
        return np.exp(b * np.maximum(z[:, None] - zcf, 0.0))

    for k in range(p.shape[0]):
        c = cs.curve_cause[k]
        base[:, c, :] += weight[:, k, None] * (1.0 - 1.0 / rr(zb, k))
        if has_scen:
            scen[:, c, :] += weight[:, k, None] * (1.0 - 1.0 / rr(zs, k))
    return base, scen


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times), float(np.median(times))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regions", type=int, default=654)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--crf", default="ier2010")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_health.json"))
    args = ap.parse_args(argv)

    import numba

    t_import = time.perf_counter()
    import engine.health as health
    from kernels import crf as k
    t_import = time.perf_counter() - t_import

    rng = np.random.default_rng(20170901)
    pop = health.age_population()
    reps = int(np.ceil(args.regions / len(pop)))
    pop = pop.iloc[np.tile(np.arange(len(pop)), reps)[: args.regions]].reset_index(drop=True)
    zb = rng.uniform(5.0, 150.0, args.regions)
    zs = zb * rng.uniform(0.8, 1.0, args.regions)
    cs = health.curve_set(args.crf, draws=args.draws, seed=1)
    n_k = len(cs.curve_label)
    weight = rng.uniform(0.0, 50.0, (args.regions, n_k))
    n_c, n_d = len(cs.causes), args.draws
    outs = [np.empty((args.regions, n_c, n_d)) for _ in range(3)]
    fsum = np.empty((args.regions, n_k, 3))

    def kernel(has_scen):
        k.impact_over_draws(cs.model, zb, zs, cs.params_draws, weight, cs.curve_cause, False,
                            *outs, fsum, has_scen)

    t = time.perf_counter()
    kernel(True)
    t_first = time.perf_counter() - t
    steady_one, _ = best_of(lambda: kernel(True), 1)
    compile_s = t_first - steady_one

    res = {}
    for label, has_scen in (("burden", False), ("burden_and_scenario", True)):
        best, med = best_of(lambda: kernel(has_scen), args.repeat)
        np_best, _ = best_of(lambda: numpy_baseline(cs, zb, zs, weight, has_scen), args.repeat)
        nb_base, nb_scen = numpy_baseline(cs, zb, zs, weight, has_scen)
        kernel(has_scen)
        err = float(np.max(np.abs(outs[0] - nb_base)) / np.max(np.abs(nb_base)))  # relative to the largest
        n_eval = args.regions * n_k * n_d * (2 if has_scen else 1)
        res[label] = {"kernel_best_s": best, "kernel_median_s": med, "numpy_best_s": np_best,
                      "speedup_vs_numpy": np_best / best, "rr_evaluations": n_eval,
                      "rr_evaluations_per_s": n_eval / best, "max_diff_vs_numpy_rel_to_max": err}

    # the whole Python API call (validation, kernels, percentiles, xarray Dataset)
    health.health_impact(zb, pop, conc_scenario=zs, crf=args.crf, draws=args.draws)
    api = {}
    for label, scen in (("burden", None), ("burden_and_scenario", zs)):
        best, med = best_of(lambda: health.health_impact(zb, pop, conc_scenario=scen, crf=args.crf,
                                                         draws=args.draws), max(1, args.repeat // 2 + 1))
        api[label] = {"best_s": best, "median_s": med}

    report = {
        "benchmark": "health", "crf": args.crf, "regions": args.regions, "draws": n_d,
        "curves": n_k, "causes": n_c, "age_groups": len(health.AGE_GROUPS),
        "threads": numba.get_num_threads(), "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "numba": numba.__version__, "numpy": np.__version__,
        "import_s": t_import, "compile_s": compile_s, "first_call_s": t_first,
        "kernel": res, "health_impact_api": api,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark of the carbon stage: all 654 cities + 31 ROPs x 4 scenarios, and a sweep batch.

Runs standalone (``python benchmarks/bench_carbon.py [--samples N]``) and writes
``benchmarks/results/bench_carbon.json``. The baseline, measured in the same run, is the same
computation done one scenario at a time in a Python loop (what a per-scenario script does);
the sweep figure compares one batched call over N parameter samples with N single calls.
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.carbon.accounting import _scenario_arrays, evaluate, prepare, run_carbon  # noqa: E402
from engine.carbon.parameters import load_parameters  # noqa: E402
from engine.config import load_config  # noqa: E402
from engine.data.dataset import load_dataset  # noqa: E402


def best_of(fn, repeat):
    t = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t), float(np.median(t))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=1000, help="parameter samples in the sweep batch")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_carbon.json")
    a = ap.parse_args(argv)

    t0 = time.perf_counter()
    data = load_dataset()
    cfg = load_config()
    params = load_parameters()
    load_s = time.perf_counter() - t0

    full_best, full_med = best_of(lambda: run_carbon(cfg, data, params=params), a.repeat)
    prep = prepare(data, params)
    arr = _scenario_arrays(cfg.scenarios)
    vec_best, vec_med = best_of(lambda: evaluate(prep, params, **arr), a.repeat)

    def loop():
        for i in range(len(cfg.scenarios)):
            evaluate(prep, params, **{k: v[i:i + 1] for k, v in arr.items()})
    loop_best, _ = best_of(loop, a.repeat)

    # sweep: N samples of seasonality and availability of low-grade heat, 1 scenario (fyp_symbiosis)
    rng = np.random.default_rng(2017)
    n = a.samples
    sweep = {k: v[2:3] for k, v in arr.items()}
    sweep["seasonality"] = rng.uniform(0.2, 1.0, (n, 1, 1))
    sweep["avail_low"] = rng.uniform(0.5, 1.0, (n, 1, 1))
    batch_best, _ = best_of(lambda: evaluate(prep, params, **sweep), max(1, a.repeat // 2))
    m = min(n, 50)

    def single_loop():
        for i in range(m):
            evaluate(prep, params, **{**sweep, "seasonality": sweep["seasonality"][i], "avail_low": sweep["avail_low"][i]})
    single_best, _ = best_of(single_loop, 1)
    per_single = single_best / m

    res = {
        "benchmark": "carbon_stage",
        "machine": {"python": platform.python_version(), "cpu_count": __import__("os").cpu_count()},
        "places": int(len(prep.places)), "scenarios": len(cfg.scenarios),
        "load_data_s": load_s,
        "run_carbon_s_best": full_best, "run_carbon_s_median": full_med,
        "evaluate_vectorised_s_best": vec_best, "evaluate_vectorised_s_median": vec_med,
        "evaluate_loop_over_scenarios_s_best": loop_best,
        "speedup_vectorised_vs_scenario_loop": loop_best / vec_best,
        "sweep_samples": n, "sweep_batch_s": batch_best,
        "sweep_single_call_s": per_single,
        "speedup_batch_vs_single_calls": per_single * n / batch_best,
        "sweep_samples_per_s": n / batch_best,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=2) + "\n")
    tmp.replace(a.out)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()

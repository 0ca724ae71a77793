"""Throughput and wall-time benchmark of the AERMOD-compatible area-source kernels.

Runs standalone (``python benchmarks/bench_plume.py``) and writes
``benchmarks/results/bench_plume.json``. Measures, in one process:

1. the AERMOD timing case ``caseC_20x20_timing`` (400 cells of 1 km, 41 x 41 receptors at
   500 m, 24 h ``synth24`` met) through ``area_concentrations(method="auto")`` (gridded path),
   wall time (median of repeats, tables rebuilt every repeat) against AERMOD v24142's 112.3 s,
   plus its PERIOD accuracy against AERMOD's ``period_all.pst``;
2. direct-kernel throughput in (source cell, receptor, hour) evaluations per second, next to a
   plain vectorised NumPy implementation of the same physics (``tests/reference``) on the same
   cells and hours (subset of receptors), with their agreement;
3. ``period_kernel`` time for a national-scale kernel (n_half=300, 100 weighted classes).

Compile time is reported separately: the kernels are compiled into a fresh, empty cache
directory on the first call (``--warm-cache`` keeps the user's cache instead). Synthetic inputs
are seeded.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "aermod"
AERMOD_WALL_S = 112.3          # EPA AERMOD v24142 on this 2-core machine (data README)
AERMOD_FASTAREA_WALL_S = 36.4


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="numba threads (default 2)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement")
    p.add_argument("--seed", type=int, default=20240521, help="seed for synthetic emission rates")
    p.add_argument("--direct-receptors", type=int, default=21, help="receptor grid side, direct test")
    p.add_argument("--numpy-receptors", type=int, default=40, help="receptors in the NumPy baseline")
    p.add_argument("--warm-cache", action="store_true", help="reuse the numba cache (compile time ~0)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bench_plume.json"))
    return p.parse_args()


def main():
    args = parse_args()
    os.environ["NUMBA_NUM_THREADS"] = str(args.threads)
    if not args.warm_cache:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench_plume_numba_")
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    import numpy as np

    from engine.dispersion import area as disp
    from engine.dispersion.met import MetHours, read_aermet
    from kernels import plume
    from reference.plume_reference import numpy_direct_hourly

    rng = np.random.default_rng(args.seed)
    met = read_aermet(DATA / "met" / "synth24.sfc", DATA / "met" / "synth24.pfl")
    xs = np.arange(-10000.0, 10000.1, 500.0)
    gx, gy = np.meshgrid(xs, xs)
    rx, ry = gx.ravel(), gy.ravel()
    sw = np.arange(-10000.0, 10000.0, 1000.0)
    sx, sy = np.meshgrid(sw, sw)
    src = disp.AreaSources(sx.ravel(), sy.ravel(), 1000.0, 1000.0, rate_g_m2_s=1e-6)

    def timed(fn, repeats):
        ts = []
        out = None
        for _ in range(repeats):
            disp._TABLE_CACHE.clear()
            t = time.perf_counter()
            out = fn()
            ts.append(time.perf_counter() - t)
        return float(np.median(ts)), float(min(ts)), out

    # ---- compile (first calls) ------------------------------------------------------------
    t = time.perf_counter()
    disp._TABLE_CACHE.clear()
    disp.area_concentrations(src, rx[:5], ry[:5], met.select(slice(0, 2)), method="gridded")
    disp.area_concentrations(src, rx[:2], ry[:2], met.select(slice(0, 2)), method="direct")
    disp.period_kernel(met.select(slice(0, 2)), cell_size_m=1000.0, spacing_m=500.0, n_half=2)
    compile_s = time.perf_counter() - t

    # ---- 1. the AERMOD timing case ----------------------------------------------------------
    def case_c():
        return disp.period_average(disp.area_concentrations(src, rx, ry, met), met)

    med, best, period = timed(case_c, args.repeats)
    ref = []
    for line in (DATA / "caseC_20x20_timing" / "period_all.pst").read_text().splitlines():
        if not line.startswith("*") and line.strip():
            ref.append(float(line.split()[2]))
    ref = np.array(ref)
    sel = ref > 0.01 * ref.max()
    err = np.abs(period[sel] / ref[sel] - 1)
    n_eval_c = len(src) * rx.size * len(met)
    case_c_res = dict(
        wall_s_median=med, wall_s_min=best, evaluations=n_eval_c,
        speedup_vs_aermod=AERMOD_WALL_S / med, speedup_vs_aermod_fastarea=AERMOD_FASTAREA_WALL_S / med,
        aermod_wall_s=AERMOD_WALL_S,
        period_rel_error={"receptors_compared": int(sel.sum()), "frac_within_2pct": float(np.mean(err <= 0.02)),
                          "median": float(np.median(err)), "p95": float(np.quantile(err, 0.95)),
                          "max": float(err.max())},
        zero_pattern_identical=bool(np.array_equal(period == 0, ref == 0)),
    )

    # ---- 2. direct kernel vs NumPy baseline ---------------------------------------------------
    rates = rng.uniform(0.5e-6, 1.5e-6, len(src))
    src_r = disp.AreaSources(sx.ravel(), sy.ravel(), 1000.0, 1000.0, rate_g_m2_s=rates)
    n = args.direct_receptors
    dx = np.linspace(-9750.0, 9750.0, n)
    drx, dry = [a.ravel() for a in np.meshgrid(dx, dx)]
    tables = disp.hour_tables(met)
    med_d, best_d, direct = timed(lambda: disp.area_concentrations(src_r, drx, dry, met, method="direct"),
                                  max(1, args.repeats // 2))
    n_eval_d = len(src_r) * drx.size * len(met)
    pick = rng.choice(drx.size, size=min(args.numpy_receptors, drx.size), replace=False)
    cx, cy, e1x, e1y, hx, hy = src_r.geometry()
    lng, lnsy, wd = tables
    t = time.perf_counter()
    base = numpy_direct_hourly(drx[pick], dry[pick], cx, cy, hx, hy, rates, lng, lnsy, wd,
                               plume.X_MIN, plume.DLNX)
    t_np = time.perf_counter() - t
    n_eval_np = len(src_r) * pick.size * len(met)
    big = direct[:, pick] > 1e-6 * direct.max()
    agree = np.abs(base[big] / direct[:, pick][big] - 1)
    thr_numba = n_eval_d / med_d
    thr_numpy = n_eval_np / t_np
    direct_res = dict(
        cells=len(src_r), receptors=int(drx.size), hours=len(met), evaluations=n_eval_d,
        wall_s_median=med_d, throughput_eval_per_s=thr_numba,
        numpy_baseline=dict(receptors=int(pick.size), evaluations=n_eval_np, wall_s=t_np,
                            throughput_eval_per_s=thr_numpy,
                            rel_diff_vs_numba_median=float(np.median(agree)),
                            rel_diff_vs_numba_max=float(agree.max())),
        speedup_vs_numpy=thr_numba / thr_numpy,
    )

    # ---- 3. national-scale period kernel ------------------------------------------------------
    idx = np.arange(100) % len(met)
    fields_ = ("wind_speed_m_s", "friction_velocity_m_s", "monin_obukhov_length_m", "mech_mixing_height_m",
               "roughness_length_m", "temperature_k", "convective_velocity_m_s", "conv_mixing_height_m")
    climate = MetHours.from_arrays(**{f: getattr(met, f)[idx] for f in fields_},
                                   wind_from_deg=np.arange(100) * 3.6, weight=rng.random(100))
    med_k, best_k, K = timed(lambda: disp.period_kernel(climate, cell_size_m=5000.0, spacing_m=5000.0,
                                                        n_half=300), max(1, args.repeats // 2))
    kernel_res = dict(n_half=300, classes=100, cell_size_m=5000.0, spacing_m=5000.0, wall_s_median=med_k,
                      offsets=int(K.size))

    result = dict(
        benchmark="bench_plume", seed=args.seed, threads=args.threads,
        machine=dict(platform=platform.platform(), python=platform.python_version(), cpus=os.cpu_count()),
        versions=dict(numpy=np.__version__, numba=__import__("numba").__version__),
        compile_s=compile_s, cold_cache=not args.warm_cache,
        timing_case=case_c_res, direct_kernel=direct_res, period_kernel=kernel_res,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark of ``cobenefits sweep``: N national samples x all 654 cities x the four outputs.

Runs standalone (``python benchmarks/bench_sweep.py [--samples 10000] [--workers 2]``) and writes
``benchmarks/results/bench_sweep.json``. Steps, each timed on its own:

1. one dispersion level: the source-receptor matrix ``S`` of all cities from an empty cache
   (transfer kernels and every row computed; the cost a new ``dispersion.*`` level adds);
2. the sweep itself in a child process (so its peak memory is its own): Monte Carlo samples of
   carbon knobs, PM2.5 emission-factor multipliers, the IER draw index (one draw per sample) and
   the baseline-rate multiplier; outputs ``national_co2_cut_mt``, ``national_avoided_deaths``,
   ``city_avoided_deaths``, ``city_conc_reduction_pct``; ``S`` cached (given to the sweep);
3. the baseline, measured in the same run: single evaluations through ``engine.run`` (base and
   one scenario, cached S, warm), timed a few times and extrapolated to N;
4. optionally (``--big N``) a second child sweep of N samples to show memory bounded by the chunk.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PARAMETERS = [
    {"key": "carbon.seasonality_fraction", "dist": "uniform", "bounds": [0.4, 1.0]},
    {"key": "carbon.heat_availability_low", "dist": "uniform", "bounds": [0.5, 1.0]},
    {"key": "carbon.heat_availability_medium", "dist": "uniform", "bounds": [0.1, 0.5]},
    {"key": "carbon.orc_efficiency", "dist": "triangular", "bounds": [0.10, 0.15, 0.20]},
    {"key": "emissions.pm25_multiplier.power", "dist": "uniform", "bounds": [0.5, 1.5]},
    {"key": "emissions.pm25_multiplier.industrial_boiler", "dist": "uniform", "bounds": [0.5, 2.0]},
    {"key": "emissions.pm25_multiplier.heating_individual", "dist": "uniform", "bounds": [0.5, 2.0]},
    {"key": "emissions.pm25_multiplier.cooking", "dist": "uniform", "bounds": [0.5, 2.0]},
    {"key": "health.draw", "dist": "integer", "bounds": [0, 999]},
    {"key": "health.baseline_rate_multiplier", "dist": "normal", "mean": 1.0, "sd": 0.1, "bounds": [0.7, 1.3]},
]
OUTPUTS = ["national_co2_cut_mt", "national_avoided_deaths", "city_avoided_deaths", "city_conc_reduction_pct"]


def _spec(samples, chunk_size):
    return {"sweep": {"method": "mc", "samples": samples, "seed": 2017, "scenario": "fyp_symbiosis",
                      "outputs": OUTPUTS, "chunk_size": chunk_size, "parameter": PARAMETERS}}


def child(args):
    """Run one sweep with S read from a file; print wall time and peak RSS as JSON."""
    import numpy as np
    import xarray as xr

    import engine
    from engine.sensitivity import sweep as sw

    S = xr.open_dataset(args.sr_file).load()

    def sr_fn(prep):
        return S

    spec = sw.parse_spec(_spec(args.samples, args.chunk_size), source="bench_sweep")
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        ds = engine.sensitivity.sweep(spec, out=out, workers=args.workers, sr_fn=sr_fn, quiet=True)
        wall = time.perf_counter() - t0
        s = json.loads(ds.attrs["summary"])
        nat = float(np.mean(ds.national_avoided_deaths.values))
        ds.close()
        nc_mb = Path(out, "sweep.nc").stat().st_size / 2**20
    print(json.dumps({"wall_s": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "evaluations": s["evaluations"], "chunks": s["chunks"], "timings_s": s["timings_s"],
                      "n_cities": s["n_cities"], "mean_national_avoided_deaths": nat, "sweep_nc_mb": nc_mb}))


def _run_child(sr_file, samples, workers, chunk_size):
    cmd = [sys.executable, __file__, "--child", "--sr-file", str(sr_file), "--samples", str(samples),
           "--workers", str(workers), "--chunk-size", str(chunk_size)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--chunk-size", type=int, default=1000)
    ap.add_argument("--baseline-runs", type=int, default=2, help="engine.run evaluations timed for the baseline")
    ap.add_argument("--big", type=int, default=0, help="also run a sweep of this many samples (bounded memory)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--sr-file", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_sweep.json")
    a = ap.parse_args(argv)
    if a.child:
        return child(a)

    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        os.environ["COBENEFITS_CACHE_DIR"] = str(Path(tmp) / "cache")  # empty: the true cost of one S
        import engine
        from engine import pipeline as pl
        from engine.config import load_config
        from engine.output.writers import versions

        cfg = load_config()
        t0 = time.perf_counter()
        prep = pl.prepare(cfg, scenarios=["fyp_symbiosis"])
        prep_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        S = pl.sr_matrix(prep, workers=a.workers, quiet=True)
        sr_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        S_warm = pl.sr_matrix(prep, workers=a.workers, quiet=True)
        sr_warm = time.perf_counter() - t0
        sr_file = Path(tmp) / "S.nc"
        s_only = S[[v for v in ("S", "S_season") if v in S]].copy()  # seasonal met: one matrix per season
        s_only.attrs = {}
        s_only.to_netcdf(sr_file)

        sweep_res = _run_child(sr_file, a.samples, a.workers, a.chunk_size)

        times, note = [], "engine.run(cfg, scenarios=['fyp_symbiosis']) with cached S"
        for _ in range(a.baseline_runs):
            t0 = time.perf_counter()
            try:
                engine.run(cfg, scenarios=["fyp_symbiosis"], workers=a.workers, quiet=True)
            except ValueError as exc:  # engine.run's final to_dataset; time the same stages without it
                note = (f"engine.run raised in to_dataset ({exc}); timed its stages prepare -> carbon -> "
                        "emissions -> sr_matrix (cached) -> superpose -> health -> metrics instead")
                t0 = time.perf_counter()
                p = pl.prepare(cfg, scenarios=["fyp_symbiosis"])
                cres = pl.carbon(p)
                q = pl.emissions(p, cres)
                Sx = pl.sr_matrix(p, workers=a.workers, quiet=True)
                conc = pl.superpose(Sx, q)
                h = pl.health(p, conc)
                pl.metrics(p, cres, conc, h, Sx)
            times.append(time.perf_counter() - t0)
        per_run = min(times)
        big = _run_child(sr_file, a.big, a.workers, a.chunk_size) if a.big else None

    n = a.samples
    res = {
        "benchmark": "sweep",
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "workers": a.workers},
        "versions": versions(),
        "problem": {"samples": n, "cities": sweep_res["n_cities"], "sources": int(S.sizes["source"]),
                    "outputs": OUTPUTS, "parameters": [p["key"] for p in PARAMETERS], "method": "mc",
                    "health": "IER (GBD 2010), one parameter draw per sample", "chunk_size": a.chunk_size},
        "one_dispersion_level": {"prepare_s": prep_s, "sr_matrix_cold_s": sr_cold,
                                 "sr_matrix_from_cache_s": sr_warm, "timings_s": S.attrs.get("timings_s"),
                                 "n_from_cache_warm": int(S_warm.attrs.get("n_from_cache", 0))},
        "sweep": sweep_res,
        "sweep_samples_per_s": n / sweep_res["timings_s"]["evaluate_s"],
        "sweep_wall_s_with_cached_S": sweep_res["wall_s"],
        "baseline_engine_run": {"what": note, "evaluations_timed": a.baseline_runs, "seconds_each": times,
                                "extrapolated_s_for_samples": per_run * n, "samples_per_s": 1.0 / per_run},
        "speedup_vs_engine_run_loop": per_run * n / sweep_res["wall_s"],
        "targets": {"wall_s_le_60": sweep_res["wall_s"] <= 60.0, "peak_rss_le_4gb": sweep_res["peak_rss_mb"] <= 4096},
    }
    if big:
        res["big_sweep"] = big
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = a.out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(res, indent=2, default=float) + "\n")
    tmp_out.replace(a.out)
    print(json.dumps(res, indent=2, default=float))


if __name__ == "__main__":
    main()

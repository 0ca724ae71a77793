"""Benchmark of ``cobenefits sweep`` on the specs users write: samples/s in evaluation, the whole
process's wall time and peak memory, all 654 cities.

Runs standalone (``python benchmarks/bench_sweep.py [--samples 10000] [--workers 2]``) and writes
``benchmarks/results/bench_sweep.json``. Steps:

1. **cold**: the shipped ``config/sweeps/avoided_deaths_drivers.toml`` (two ``source_set``
   levels: two matrices ``S``) as a whole ``python -m engine sweep`` process from an empty
   cache (``S``, transfer kernels and the built-in climatology computed), ``--cold-samples``
   base samples;
2. **warm**: each spec below as a whole process with that cache (``S`` read from it):
   ``carbon_knobs`` (the three carbon knobs of issue 18, LHS; national CO2 cut and avoided
   deaths; no ``health.draw``), ``emission_factors`` (the nine PM2.5 emission-factor
   multipliers, LHS), ``health_mean`` (CRF choice and baseline-rate multiplier, no draw: the
   mean over the 1,000 draws from :class:`engine.health.expected.DrawMeanTable`),
   ``health_draw`` (the same with ``health.draw`` sampled), ``shipped`` (the shipped file,
   ``--samples`` evaluations in total); then ``carbon_knobs`` again, its draw-mean table's bases
   now read from the cache (``$COBENEFITS_CACHE_DIR/health``) as ``S`` is;
3. **baseline, same process**: the previous way to a sample's draw-mean deaths, every draw per
   sample (:func:`kernels.sweep.impact_per_sample` with draw -1), against the table, on the
   same concentrations (the ratio is the speed-up of the health stage without a draw);
4. **the model against a git revision, same process** (``--against REV``, default ``3b2bbba``,
   the code before the sample-axis shortcuts): each warm spec's evaluation by this code and by
   ``REV:engine/sampled.py`` on the same samples and prepared inputs, interleaved, best of 4:
   process CPU seconds (all threads), their ratio, the largest relative difference of the outputs.

One command for a quiet machine: ``python benchmarks/bench_sweep.py``. Timings from each sweep's
``summary.json`` (``evaluate_s``: chunks only; ``draw_mean_table_*``: the one-off table;
``prepare_s``, ``sr_and_tables_s``) and the process's wall clock, peak RSS (``/usr/bin/time -f %M``
where present, else ``resource.getrusage`` of the children) and CPU seconds (all threads). The machine load is recorded.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CARBON = [{"key": "carbon.heat_availability_low", "bounds": [0.5, 1.0]},
          {"key": "carbon.orc_efficiency", "bounds": [0.10, 0.20]},
          {"key": "carbon.seasonality_fraction", "bounds": [0.4, 1.0]}]
SECTORS = ["power", "steel", "cement", "industrial_boiler", "other_industry", "heating_des", "heating_individual",
           "cooking", "other"]
SPECS = {
    "carbon_knobs": {"method": "lhs", "outputs": ["national_co2_cut_mt", "national_avoided_deaths"],
                     "parameter": CARBON},
    "emission_factors": {"method": "lhs", "outputs": ["national_avoided_deaths", "city_avoided_deaths"],
                         "parameter": [{"key": f"emissions.pm25_multiplier.{s}", "bounds": [0.5, 2.0]}
                                       for s in SECTORS]},
    "health_mean": {"method": "lhs", "outputs": ["national_avoided_deaths", "city_avoided_deaths"],
                    "parameter": [{"key": "health.crf", "dist": "choice", "levels": ["ier2010", "gemm_ncd_lri"]},
                                  {"key": "health.baseline_rate_multiplier", "dist": "normal", "mean": 1.0,
                                   "sd": 0.1, "bounds": [0.7, 1.3]}]},
    "health_draw": {"method": "lhs", "outputs": ["national_avoided_deaths", "city_avoided_deaths"],
                    "parameter": [{"key": "health.crf", "dist": "choice", "levels": ["ier2010", "gemm_ncd_lri"]},
                                  {"key": "health.draw", "dist": "integer", "bounds": [0, 999]},
                                  {"key": "health.baseline_rate_multiplier", "dist": "normal", "mean": 1.0,
                                   "sd": 0.1, "bounds": [0.7, 1.3]}]},
}
SHIPPED = ROOT / "config" / "sweeps" / "avoided_deaths_drivers.toml"


def _toml(name, samples, path):
    s = SPECS[name]
    lines = ["[sweep]", f'method = "{s["method"]}"', f"samples = {samples}", "seed = 18",
             'scenario = "fyp_symbiosis"', "chunk_size = 2000",
             "outputs = [" + ", ".join(f'"{o}"' for o in s["outputs"]) + "]"]
    for p in s["parameter"]:
        lines.append("[[sweep.parameter]]")
        for k, v in p.items():
            lines.append(f"{k} = {json.dumps(v)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _process(sweep_file, out, samples, workers, env):
    """One whole ``python -m engine sweep`` process: wall [s], peak RSS [MB], its summary."""
    cmd = [sys.executable, "-m", "engine", "--quiet", "sweep", str(sweep_file), "--out", str(out),
           "--workers", str(workers)] + (["--samples", str(samples)] if samples else [])
    timer = shutil.which("time") and Path("/usr/bin/time").exists()
    if timer:
        cmd = ["/usr/bin/time", "-f", "MAXRSS_KB %M"] + cmd
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stderr[-3000:]}")
    peak = None
    for line in r.stderr.splitlines():
        if line.startswith("MAXRSS_KB "):
            peak = int(line.split()[1])
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # an upper bound: the largest child so far
    s = json.loads((Path(out) / "summary.json").read_text())
    t = s["timings_s"]
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak / 1024,
            "evaluations": s["evaluations"], "evaluate_s": t["evaluate_s"],
            "samples_per_s": s["evaluations"] / t["evaluate_s"],
            "prepare_s": t.get("prepare_s"), "sr_and_tables_s": t.get("sr_and_tables_s"),
            "draw_mean_tables_s": {k: v for k, v in t.items() if k.startswith("draw_mean_table")},
            "indices_s": t.get("indices_s"), "total_s": t.get("total_s"),
            "national_distribution": s.get("national_distribution")}


def _baseline(n, workers):
    """Draw-mean deaths of ``n`` samples: every draw per sample vs the table, same concentrations."""
    import numpy as np

    from engine.config import load_config
    from engine.health import age_population
    from engine.health.expected import DrawMeanTable, curves_and_weights
    from kernels.sweep import impact_per_sample

    cfg = load_config()
    cities = sorted(int(c) for c in age_population().index)
    pop = age_population(cities).loc[cities]
    model, params, weight = curves_and_weights(cfg.health, "ier2010", pop)
    rng = np.random.default_rng(18)
    zb = np.exp(rng.uniform(np.log(0.5), np.log(400.0), (n, len(cities))))  # the run's range of city exposures
    zs = 0.9 * zb
    t0 = time.perf_counter()
    table = DrawMeanTable(model, params, weight)
    t_table = time.perf_counter() - t0
    table(zb[:2])  # compiled
    t0 = time.perf_counter()
    a = table(zb) - table(zs)
    t_fast = time.perf_counter() - t0
    m = max(2, n // 50)
    b, s, av = (np.empty((m, len(cities))) for _ in range(3))
    impact_per_sample(model, zb[:2], zs[:2], params, np.full(2, -1), weight, np.ones(2), False, b[:2], s[:2], av[:2])
    t0 = time.perf_counter()
    impact_per_sample(model, zb[:m], zs[:m], params, np.full(m, -1), weight, np.ones(m), False, b, s, av)
    t_direct = (time.perf_counter() - t0) * n / m
    err = float(np.max(np.abs(a[:m] - av) / np.maximum(np.abs(b), 1e-300)))
    return {"what": f"IER, 1000 draws, {len(cities)} cities, avoided deaths of {n} samples (base, 0.9 x base)",
            "table_build_s": t_table, "table_s": t_fast, "table_samples_per_s": n / t_fast,
            "every_draw_s_extrapolated": t_direct, "every_draw_samples_per_s": n / t_direct,
            "every_draw_samples_timed": m, "speedup": t_direct / t_fast,
            "max_abs_error_relative_to_base_deaths": err}


def _evaluate_cpu(mod, tb, values, outputs, chunk=1024, repeat=2):
    """Best of ``repeat``: CPU and wall seconds of ``mod.evaluate_chunk`` over ``values`` in
    chunks (as the sweep driver's evaluator), and the outputs."""
    best = (float("inf"), float("inf"), None)
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        parts = [mod.evaluate_chunk(tb, values.iloc[s:s + chunk], outputs) for s in range(0, len(values), chunk)]
        c, w = time.process_time() - c0, time.perf_counter() - t0
        if c < best[0]:
            best = (c, w, parts)
    return best


def _same_process(rev, names, n, tmp):
    """Evaluation of each spec by this code and by ``engine/sampled.py`` of git revision ``rev``
    (before the package split), in this process, on the same samples and the same prepared
    inputs: CPU seconds (all threads), the ratio, and the largest relative difference of the
    outputs."""
    import importlib.util

    import numpy as np

    import engine.sampled as new
    from engine.sensitivity.spec import check_parameters, load_spec, sample

    src = subprocess.run(["git", "show", f"{rev}:engine/sampled.py"], cwd=ROOT, capture_output=True, text=True)
    if src.returncode != 0:
        return {"skipped": f"git show {rev}:engine/sampled.py failed: {src.stderr.strip()[:200]}"}
    path = tmp / "sampled_old.py"
    path.write_text(src.stdout)
    spec_ = importlib.util.spec_from_file_location("sampled_old", path)
    old = importlib.util.module_from_spec(spec_)
    sys.modules["sampled_old"] = old  # dataclasses look their module up
    spec_.loader.exec_module(old)
    out = {"against": rev, "samples": n, "what": "evaluate_chunk in chunks of 1,024, best of 4 (interleaved), "
                                                  "process CPU s"}
    for name in names:
        sp = load_spec(_toml(name, n, tmp / f"{name}-same.toml"))
        built, prep = {}, None
        for label, mod in (("new", new), ("old", old)):
            model = mod.NationalModel(sp, quiet=True)
            if prep is not None:
                model._prep = prep  # the same prepared inputs (data, geometry, met)
            spc = check_parameters(sp, model.key_info)
            model.spec = spc
            _, values = sample(spc)
            built[label] = (mod, model.tables(values))
            prep = model.prep
            mod.evaluate_chunk(built[label][1], values.iloc[:8], spc.outputs)  # compiled
        r, ys = {}, {}
        for label in ("new", "old", "new", "old"):  # interleaved: a change of machine load hits both
            mod, tb = built[label]
            cpu, wall, parts = _evaluate_cpu(mod, tb, values, spc.outputs)
            if label not in r or cpu < r[label]["cpu_s"]:
                ys[label] = {k: np.concatenate([p[k] for p in parts]) for k in spc.outputs}
                r[label] = {"cpu_s": cpu, "wall_s": wall, "samples_per_cpu_s": n / cpu}
        r["cpu_ratio_old_over_new"] = r["old"]["cpu_s"] / r["new"]["cpu_s"]
        r["max_rel_diff"] = max(float(np.nanmax(np.abs(ys["new"][k] - ys["old"][k])
                                               / np.maximum(np.abs(ys["old"][k]), 1e-300))) for k in ys["new"])
        out[name] = r
        print("same process", name, json.dumps(r), flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=10000, help="samples of each warm spec")
    ap.add_argument("--cold-samples", type=int, default=16, help="base samples of the cold shipped sweep")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--specs", default=",".join([*SPECS, "shipped"]), help="comma-separated subset")
    ap.add_argument("--cache", type=Path, default=None, help="a cache folder to use (skips the cold step)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_sweep.json")
    ap.add_argument("--against", default="3b2bbba",
                    help="git revision whose engine/sampled.py is the same-process baseline ('' to skip)")
    ap.add_argument("--same-process-samples", type=int, default=2048)
    a = ap.parse_args(argv)
    load = os.getloadavg()
    res = {"benchmark": "sweep", "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                                             "workers": a.workers, "load_avg_1_5_15_start": load}}
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        tmp = Path(tmp)
        env = os.environ.copy()
        env["COBENEFITS_CACHE_DIR"] = str(a.cache or tmp / "cache")
        if a.cache is None:
            res["cold_shipped"] = _process(SHIPPED, tmp / "cold", a.cold_samples, a.workers, env)
            res["cold_shipped"]["what"] = (f"{SHIPPED.name}, --samples {a.cold_samples}, empty cache: two S "
                                           "(source_set own, province), kernels, climatology")
        for name in a.specs.split(","):
            if name == "shipped":
                base = max(1, a.samples // 15)  # Sobol' N(D+2), D = 13
                r = _process(SHIPPED, tmp / name, base, a.workers, env)
            else:
                r = _process(_toml(name, a.samples, tmp / f"{name}.toml"), tmp / name, None, a.workers, env)
            res[name] = r
            print(name, json.dumps({k: r[k] for k in ("wall_s", "samples_per_s", "evaluations")}), flush=True)
            shutil.rmtree(tmp / name, ignore_errors=True)
        if "carbon_knobs" in a.specs.split(","):
            # again, with the draw-mean table's bases now in the cache (as S is): the process a user reruns
            r = _process(_toml("carbon_knobs", a.samples, tmp / "carbon_knobs.toml"), tmp / "again", None,
                         a.workers, env)
            res["carbon_knobs_tables_cached"] = r
            print("carbon_knobs_tables_cached", json.dumps({k: r[k] for k in ("wall_s", "samples_per_s")}), flush=True)
        res["baseline_same_process"] = _baseline(min(a.samples, 2000), a.workers)
        if a.against:
            res["evaluation_against_" + a.against] = _same_process(
                a.against, [k for k in a.specs.split(",") if k in SPECS], a.same_process_samples, tmp)
    res["machine"]["load_avg_1_5_15_end"] = os.getloadavg()
    res["targets"] = {
        "carbon_knobs_10000_wall_le_60_s": res.get("carbon_knobs", {}).get("wall_s", 1e9) <= 60.0,
        "carbon_knobs_tables_cached_10000_wall_le_60_s":
            res.get("carbon_knobs_tables_cached", {}).get("wall_s", 1e9) <= 60.0,
        "carbon_knobs_peak_rss_le_4_gb": (res.get("carbon_knobs", {}).get("peak_rss_mb") or 0) <= 4096,
        "each_spec_ge_1000_samples_per_s": all(res[k]["samples_per_s"] >= 1000 for k in [*SPECS, "shipped"]
                                               if k in res)}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = a.out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(res, indent=2, default=float) + "\n")
    tmp_out.replace(a.out)
    print(json.dumps(res, indent=2, default=float))


if __name__ == "__main__":
    main()

"""End-to-end benchmark of `cobenefits run` on the default data set (all cities, 4 scenarios).

Runs the national job twice in fresh subprocesses with the same cache folder:
  1. cold  - empty field/kernel cache (numba's compiled kernels may or may not be cached),
  2. warm  - `--no-cache`: every kernel... fields recomputed, compiled kernels reused
     (the target figure: <= 120 s wall on 2 cores, peak memory <= 4 GB),
and reports wall time, CPU seconds of the child (user + system: what to compare on a busy machine),
peak RSS (ru_maxrss: the largest single process), the peak proportional set size of the whole
process tree (sampled every 2 s; the forked workers of the receptor pass share the parent's pages,
PSS counts each once) and the run's own stage timings
(summary.json). Writes benchmarks/results/bench_run.json.

    python benchmarks/bench_run.py [--workers 2] [--cities all] [--out DIR] [--urban auto|true|false]

``--urban`` runs the four shipped scenarios with ``[dispersion] urban`` set (copies of the files
with the key appended); without it the shipped files run as they are (the default, "auto").
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _configs(urban, folder):
    """Copies of the shipped scenario files with ``[dispersion] urban`` set, or [] (the files as shipped)."""
    if urban is None:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    value = {"auto": '"auto"', "true": "true", "false": "false"}[urban]
    out = []
    shipped = Path(__file__).resolve().parents[1] / "config"
    for name in ("base", "fyp_efficiency", "fyp_symbiosis", "high_efficiency_symbiosis"):
        p = shipped / f"{name}.toml"
        q = folder / p.name
        q.write_text(p.read_text() + f"\n[dispersion]\nurban = {value}\n")
        out.append(str(q))
    return out


def _tree(pid):
    """``pid`` and its descendants (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def _tree_pss_mb(pid):
    """Proportional set size of the process tree [MB]: each shared page counted once in all (the
    forked workers share the parent's kernels copy-on-write, which a sum of RSS would count thrice)."""
    kb = 0
    for p in _tree(pid):
        try:
            kb += sum(int(line.split()[1]) for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines()
                      if line.startswith("Pss:"))
        except (OSError, ValueError):
            pass
    return kb / 1024.0


def _one(args, cache, out, extra):
    env = dict(os.environ, COBENEFITS_CACHE_DIR=str(cache))
    cmd = [sys.executable, "-m", "engine", "--quiet", "run", "--out", str(out), "--workers", str(args.workers),
           "--cities", args.cities, "--source-set", args.source_set] + extra + args.config_files
    t0 = time.perf_counter()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = ru0.ru_maxrss
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        pss, proc_fs = 0.0, Path("/proc/self/smaps_rollup").exists()
        while child.poll() is None:  # every 2 s: the sampling costs < 0.1 % of a core
            if proc_fs:
                pss = max(pss, _tree_pss_mb(child.pid))
            time.sleep(2.0)
        stdout, stderr = child.communicate()
    proc = subprocess.CompletedProcess(cmd, child.returncode, stdout, stderr)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    summ = json.loads((Path(out) / "summary.json").read_text())
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb_upper_bound": max(before, peak_kb) / 1024.0,
            "peak_tree_pss_mb": pss,
            "stage_timings_s": summ.get("timings_s"), "n_cities": summ.get("n_cities"),
            "n_rows_from_cache": summ.get("n_rows_from_cache")}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cities", default="all")
    p.add_argument("--out", default=None)
    p.add_argument("--source-set", default="province", choices=("own", "province", "nation"))
    p.add_argument("--skip-warm", action="store_true", help="only the cold run and the cached re-run")
    p.add_argument("--urban", choices=("auto", "true", "false"), default=None,
                   help="[dispersion] urban for the run (default: the shipped files' setting)")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cobenefits-bench-"))
    args.config_files = _configs(args.urban, work / "config")
    cache = work / "cache"
    res = {"workers": args.workers, "cities": args.cities, "source_set": args.source_set,
           "urban": args.urban or "as shipped", "cpu_count": os.cpu_count(), "load_average_before": os.getloadavg()}
    res["cold"] = _one(args, cache, work / "out-cold", [])
    if not args.skip_warm:
        res["warm_no_cache"] = _one(args, cache, work / "out-warm", ["--no-cache"])
    res["rerun_cached"] = _one(args, cache, work / "out-cached", [])
    out = Path(args.out) if args.out else Path(__file__).parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    res["load_average_after"] = os.getloadavg()
    tag = f"_urban-{args.urban}" if args.urban else ""
    (out / f"bench_run_{args.source_set}{tag}.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()

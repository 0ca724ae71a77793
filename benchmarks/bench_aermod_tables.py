"""``cobenefits aermod`` with and without the issue-21 table and writer savings, in one process.

Runs standalone::

    python benchmarks/bench_aermod_tables.py [--repeat 3] [--case DIR ...]

and writes ``benchmarks/results/bench_aermod_tables.json``. For each case (default caseE,
caseG and caseH, the ones with flagpole receptors) the whole command
(:func:`engine.commands.aermod.run_control_file`: read, compute, write) is timed alternately

* ``baseline``: hour tables over the whole distance grid and for every hour, for every
  receptor height; the receptor columns formatted for every output file (the code before);
* ``new``: tables only up to the receptor-source distance bound, only for the hours a few
  flagpole receptors need (:func:`engine.dispersion.area.hour_tables` ``x_max_m``,
  ``hour_mask``), receptor columns formatted once;

after a first call that compiles the kernels, with the table caches cleared before every
call. Reported: best wall, best process CPU (all threads), compute and write seconds of
each, and the ratios new / baseline. The outputs of the two are bit-identical
(``tests/test_aermod_tables.py``).
"""

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ["caseE_polygon_circle_flagpole", "caseG_concave_city_polygon", "caseH_elevated_area"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--case", action="append", default=None,
                    help="case folder name under tests/data/aermod (repeatable)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                         "bench_aermod_tables.json"))
    args = ap.parse_args(argv)
    os.environ.setdefault("NUMBA_CACHE_DIR", tempfile.mkdtemp(prefix="bench-tables-numba-"))
    sys.path.insert(0, str(ROOT))
    import numba
    import numpy as np

    import engine.aermod.writers as wr
    import engine.dispersion.area as disp
    from engine.commands.aermod import run_control_file
    from engine.output.writers import write_json

    real = {"bound": disp._distance_bound, "need": disp._hours_needed,
            "cols": wr._receptor_columns}

    def cols_every_file(rec):
        wr._RECEPTOR_TEXT[:] = [None, None]
        return real["cols"](rec)

    def variant(label):
        base = label == "baseline"
        disp._distance_bound = (lambda *a: None) if base else real["bound"]
        disp._hours_needed = (lambda *a: None) if base else real["need"]
        wr._receptor_columns = cols_every_file if base else real["cols"]

    def clear():
        for name in dir(disp):
            obj = getattr(disp, name)
            if name.endswith("_CACHE") and hasattr(obj, "clear"):
                obj.clear()
        wr._RECEPTOR_TEXT[:] = [None, None]

    work = Path(tempfile.mkdtemp(prefix="bench-tables-out-"))
    results = []
    for case in args.case or CASES:
        control = ROOT / "tests" / "data" / "aermod" / case / "aermod.inp"
        load = list(os.getloadavg())
        t = time.perf_counter()
        run_control_file(control, outdir=work / case, method="auto")
        first = time.perf_counter() - t
        runs = {"baseline": [], "new": []}
        for _ in range(args.repeat):
            for label, rows in runs.items():
                variant(label)
                clear()
                t, c = time.perf_counter(), time.process_time()
                info = run_control_file(control, outdir=work / case, method="auto")
                rows.append({"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c,
                             "compute_s": info["compute_s"], "write_s": info["write_s"]})
        variant("new")
        rec = {"case": case, "first_call_s": first, "load_average_1_5_15_min_at_start": load}
        for label, rows in runs.items():
            rec[label] = {k: min(r[k] for r in rows) for k in rows[0]}
            rec[label]["all"] = rows
        rec["ratio_new_over_baseline"] = {k: rec["new"][k] / rec["baseline"][k]
                                          for k in ("wall_s", "cpu_s", "compute_s", "write_s")}
        results.append(rec)
        print(f"{case}: wall {rec['baseline']['wall_s']:.3f} -> {rec['new']['wall_s']:.3f} s, "
              f"CPU {rec['baseline']['cpu_s']:.3f} -> {rec['new']['cpu_s']:.3f} s "
              f"(ratio {rec['ratio_new_over_baseline']['cpu_s']:.2f}), load {load[0]:.1f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json({"cases": results, "repeat": args.repeat,
                "machine": {"platform": platform.platform(), "python": platform.python_version(),
                            "numpy": np.__version__, "numba": numba.__version__,
                            "cpu_count": os.cpu_count(), "numba_threads": numba.get_num_threads()}},
               out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

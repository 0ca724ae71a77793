"""Cost per receptor-hour of AREA, AREAPOLY (convex, concave) and AREACIRC sources in AERMOD mode.

Runs standalone::

    python benchmarks/bench_aermod_shapes.py [--repeat 5] [--met lovett|synth24]

and writes ``benchmarks/results/bench_aermod_shapes.json``. One source at a time, all of equal
area (1 km2) and centred at the origin, on the same receptors (a 41 x 41 grid at 250 m from
-5 km to 5 km, so inside, at the edges and up to 5 km away) and the same met hours, through the
physics layer ``cobenefits aermod`` uses (``lateral_cdf="aermod_table"``, release height 0,
ground-level receptors):

* ``AREA``: a 1 km square, rotated 30 degrees (``area_concentrations(method="direct")``,
  the chord integral of :func:`kernels.plume.direct_hourly`);
* ``AREAPOLY_convex``: an irregular convex hexagon;
* ``AREAPOLY_concave``: a 12-vertex L-shaped outline with an inlet;
* ``AREACIRC``: AERMOD's equal-area 20-gon (GENCIR);

the polygons through ``polygon_concentrations`` (AERMOD's side-by-side integral,
:mod:`kernels.areain`). Reported per shape: the best of ``--repeat`` calls (tables built once,
outside the timed call, as they are shared by every source of a run), wall and process CPU
seconds, and microseconds per receptor-hour (CPU seconds / (receptors x valid hours), so that
the machine's load and thread count matter less), and the ratio of each shape to ``AREA``,
all measured in the same process. Compile time is the first call's excess, reported apart.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "aermod"
METS = {"lovett": ("lovett1988_0627_0701.sfc", "lovett1988_0627_0701.pfl"),
        "synth24": ("synth24.sfc", "synth24.pfl")}


def _shapes():
    """(name, vertices x, vertices y) of the polygons, each scaled to 1 km2 about the origin."""
    from engine.dispersion.area import polygon_area_centroid, regular_polygon_vertices

    hexagon = (np.array([-520.0, -180.0, 430.0, 610.0, 260.0, -450.0]),
               np.array([-300.0, -560.0, -420.0, 120.0, 540.0, 380.0]))
    concave = (np.array([0.0, 1000.0, 1000.0, 600.0, 600.0, 800.0, 800.0, 400.0, 400.0, 200.0,
                         200.0, 0.0]),
               np.array([0.0, 0.0, 300.0, 300.0, 500.0, 500.0, 900.0, 900.0, 300.0, 300.0,
                         900.0, 900.0]))
    out = []
    for name, (x, y) in (("AREAPOLY_convex", hexagon), ("AREAPOLY_concave", concave)):
        a, cx, cy = polygon_area_centroid(x, y)
        k = 1.0 / np.sqrt(abs(a) / 1.0e6)
        out.append((name, (x - cx) * k, (y - cy) * k))
    out.append(("AREACIRC",) + tuple(regular_polygon_vertices(0.0, 0.0, 1000.0 / np.sqrt(np.pi), 20)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--met", choices=sorted(METS), default="lovett")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                         "bench_aermod_shapes.json"))
    args = ap.parse_args(argv)
    os.environ.setdefault("NUMBA_CACHE_DIR", tempfile.mkdtemp(prefix="bench-shapes-numba-"))
    sys.path.insert(0, str(ROOT))
    import numba

    from engine.dispersion import area as disp
    from engine.dispersion.met import read_aermet

    load_start = os.getloadavg()
    met = read_aermet(*(DATA / "met" / f for f in METS[args.met]))
    n_valid = int(np.sum(~np.isnan(disp.hour_tables(met)[2])))
    g = np.arange(-5000.0, 5000.1, 250.0)
    gx, gy = np.meshgrid(g, g)
    rx, ry = gx.ravel(), gy.ravel()
    side = 1000.0
    th = np.deg2rad(30.0)  # SW corner so that the rotated square is centred at the origin
    x_sw = -0.5 * side * (np.cos(th) + np.sin(th))
    y_sw = -0.5 * side * (np.cos(th) - np.sin(th))
    runs = {"AREA": lambda: disp.area_concentrations(
        disp.AreaSources([x_sw], [y_sw], side, side, angle_deg=30.0), rx, ry, met,
        method="direct", lateral_cdf="aermod_table")}
    for name, x, y in _shapes():
        src = disp.PolygonSources([(x, y)])
        runs[name] = (lambda s=src: disp.polygon_concentrations(s, rx, ry, met,
                                                                lateral_cdf="aermod_table"))
    results = {}
    for name, fn in runs.items():
        t = time.perf_counter()
        conc = fn()  # compiles the kernels this path uses; builds the (shared) hour tables
        first = time.perf_counter() - t
        walls, cpus = [], []
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.process_time()
            fn()
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        rh = rx.size * n_valid
        results[name] = {"first_call_s": first, "wall_best_s": min(walls),
                         "cpu_best_s": min(cpus), "receptor_hours": rh,
                         "us_per_receptor_hour_cpu": 1e6 * min(cpus) / rh,
                         "us_per_receptor_hour_wall": 1e6 * min(walls) / rh,
                         "period_max_ug_m3": float(np.nanmax(disp.period_average(conc, met)))}
    base = results["AREA"]
    for r in results.values():
        r["ratio_to_AREA_cpu"] = r["us_per_receptor_hour_cpu"] / base["us_per_receptor_hour_cpu"]
        r["ratio_to_AREA_wall"] = r["us_per_receptor_hour_wall"] / base["us_per_receptor_hour_wall"]
    for name, r in results.items():
        print(f"{name:18s} {r['us_per_receptor_hour_cpu']:7.2f} us/receptor-hour CPU "
              f"({r['ratio_to_AREA_cpu']:.2f} x AREA), wall {r['us_per_receptor_hour_wall']:.2f} us "
              f"({r['ratio_to_AREA_wall']:.2f} x)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from engine.output.writers import write_json

    write_json({"shapes": results, "met": args.met, "receptors": int(rx.size),
                "valid_hours": n_valid, "repeat": args.repeat,
                "machine": {"platform": platform.platform(), "python": platform.python_version(),
                            "numpy": np.__version__, "numba": numba.__version__,
                            "cpu_count": os.cpu_count(), "numba_threads": numba.get_num_threads(),
                            "load_average_1_5_15_min": {"start": list(load_start),
                                                        "end": list(os.getloadavg())}}}, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

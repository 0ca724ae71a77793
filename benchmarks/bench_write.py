"""Write time and size of the city fields: one padded ``city_fields.nc`` against one file per city.

The grids are the default data set's real city grids (654 cities, 1 km cells, the run's
``[dispersion]`` settings); the fields are smooth, seeded synthetic stand-ins (a bump over the
footprint on a decaying background, the shape of a real field: compression depends on it), 4
scenarios. Times both writers of :mod:`engine.output.writers` in one process, each the best of ``--repeat``.

Writes ``benchmarks/results/bench_write.json``.

    python benchmarks/bench_write.py [--cities N] [--repeat 1]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.dispersion import geometry as geo
from engine.output import writers as eio
from engine.config import load_config
from engine.data.dataset import load_dataset


def city_dicts(n=None, seed=0):
    cfg = load_config(None)
    d = cfg.dispersion
    data = load_dataset()
    ct, pt = data.cities.reset_index(), data.provinces.reset_index()
    geoms = geo.build_city_geometries(ct, pt, city_resolution_m=d.city_resolution_m,
                                      rop_resolution_m=d.rop_resolution_m, city_margin_m=d.city_margin_m)
    rng = np.random.default_rng(seed)
    out = []
    for cid in sorted(geoms)[:n]:
        g = geo.city_grid(geoms[cid])
        X, Y = np.meshgrid(g.x, g.y)
        r = np.hypot(X, Y) / max(1.0, (g.nx * g.spacing_m) / 4)
        unit_city = (1e6 * np.exp(-r ** 2) + 1e5 * np.exp(-r)).astype(np.float32)
        unit_rop = (2e5 * (1 + 0.1 * X / X.max())).astype(np.float32)
        q = rng.uniform(1e-7, 1e-6, (4, 2))
        pm25 = q[:, :1, None] * unit_city + q[:, 1:, None] * unit_rop
        out.append({"city_id": int(cid), "name": str(ct.set_index("city_id").loc[cid, "name"]),
                    "province_id": int(geoms[cid].province_id), "grid": g, "pm25": pm25.astype(np.float32),
                    "unit_city": unit_city, "unit_rop": unit_rop,
                    "city_fraction": (r < 1).astype(np.float32), "attrs": {"city_area_km2": 1.0}})
    return out


def best(fn, repeat):
    t = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cities", type=int, default=None, help="first N cities (default: all 654)")
    p.add_argument("--repeat", type=int, default=1)
    args = p.parse_args(argv)
    cities = city_dicts(args.cities)
    scen = ["base", "fyp_efficiency", "fyp_symbiosis", "high_efficiency_symbiosis"]
    kw = {"scenarios": scen, "global_attrs": {}, "earth_radius_m": geo.EARTH_RADIUS_M}
    cells = int(sum(c["grid"].nx * c["grid"].ny for c in cities))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        comb = tmp / "city_fields.nc"
        t_comb = best(lambda: eio.write_city_fields_netcdf(comb, cities, **kw), args.repeat)
        d = tmp / "cities"
        d.mkdir()

        def per_city():
            for c in cities:
                eio.write_city_netcdf(d / f"c{c['city_id']}.nc", c, **kw)
        t_per = best(per_city, args.repeat)
        res = {"n_cities": len(cities), "cells": cells, "scenarios": len(scen),
               "combined": {"write_s": t_comb, "bytes": comb.stat().st_size},
               "per_city": {"write_s": t_per, "bytes": sum(f.stat().st_size for f in d.glob("*.nc"))}}
    res["combined_over_per_city_time"] = res["combined"]["write_s"] / res["per_city"]["write_s"]
    res["bytes_per_cell_combined"] = res["combined"]["bytes"] / cells
    out = Path(__file__).parent / "results" / "bench_write.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

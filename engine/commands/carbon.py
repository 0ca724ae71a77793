"""``cobenefits carbon``: the carbon front stage for every scenario, national and per place."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from engine.carbon.accounting import run_carbon
from engine.config import config_to_dict, input_paths, load_config
from engine.data.dataset import load_dataset, select_cities
from engine.output.writers import write_csv, write_json
from engine.output.persist import OutputTransaction

NAME = "carbon"
HELP = ("CO2 and primary PM2.5 by city and rest of province for each scenario "
        "(Ramaswami et al. 2017 Tables 1-2); writes national.csv, cities.csv, provinces.csv")

log = logging.getLogger("cobenefits")


def add_arguments(p):
    p.add_argument("configs", nargs="*", metavar="CONFIG",
                   help="scenario TOML files (default: the four shipped in config/)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="output folder, replaced as a whole when the run succeeds (staged beside it, with "
                        "manifest.json); must be new, empty or a previous output, and apart from the inputs")
    p.add_argument("--data", type=Path, metavar="DIR", default=None,
                   help="data folder with cities.csv, provinces.csv, grids.csv (default: embedded 2010 data set)")
    p.add_argument("--seasonality", type=float, default=None, metavar="FRACTION",
                   help="override carbon.seasonality_fraction of every scenario (0-1]; 0.4 = paper sensitivity")


def run(args):
    overrides = {}
    if args.data:
        overrides["data"] = {"dir": str(args.data)}
    cfg = load_config(args.configs or None, overrides=overrides)
    if args.seasonality is not None:
        import dataclasses

        from engine.config import parse_config
        parse_config({"carbon": {"seasonality_fraction": args.seasonality}}, source="--seasonality")
        cfg = cfg.replace(scenarios=tuple((s, dataclasses.replace(c, seasonality_fraction=args.seasonality))
                                          for s, c in cfg.scenarios))
    data = load_dataset(cfg.data.dir or None)
    data = select_cities(data, cfg.data.cities)
    t0 = time.perf_counter()
    res = run_carbon(cfg, data)
    log.info("carbon stage: %d scenarios x %d places in %.3f s", len(res.scenario_names),
             len(data.cities) + len(data.rop), time.perf_counter() - t0)
    conf = config_to_dict(cfg)
    with OutputTransaction(args.out, inputs=input_paths(cfg), config=conf, command="carbon") as tx:
        write_csv(res.national, tx.path("national.csv"), float_format="%.6g")
        write_csv(res.cities, tx.path("cities.csv"), float_format="%.6g")
        write_csv(res.rop, tx.path("provinces.csv"), float_format="%.6g")
        write_json({"config": conf, "data": data.source, "versions": _versions()},
                   tx.path("carbon_config.json"))
    out = tx.out_dir
    nat = res.national.pivot(index="item", columns="scenario", values="co2_mt")
    for name in res.scenario_names:
        log.info("%-26s single-sector %7.1f Mt  symbiosis %6.1f Mt  total %8.1f Mt", name,
                 nat.loc["single_sector_total", name], nat.loc["symbiosis_total", name],
                 nat.loc["national_co2", name])
    log.info("wrote %s/{national,cities,provinces}.csv", out)
    return 0


def _versions():
    import numpy
    import pandas

    import engine
    return {"cobenefits": engine.__version__, "numpy": numpy.__version__, "pandas": pandas.__version__}

"""``cobenefits target``: the allocation of city actions that avoids the most deaths at a national
CO2 cut, re-evaluated through the whole pipeline and compared with uniform adoption
(:func:`engine.marginal.target`).

Outputs (in ``--out``, one output transaction): ``allocation.csv`` (the adopted options),
``cobenefit_intensity.csv`` (every option, with ``adopted``), ``target.nc`` (CF-1.8),
``target_cities.csv`` (per scenario and city), ``summary.json`` and ``targeted_vs_uniform.png``.
"""

from __future__ import annotations

import json
import logging
import math

from engine.commands.marginal import common_arguments, load
from engine.errors import InputError

NAME = "target"
HELP = ("targeted adoption: which cities adopt which actions to avoid the most deaths at a national CO2 cut "
        "(HiGHS integer programme), re-evaluated through the pipeline, against uniform adoption")

__all__ = ["NAME", "HELP", "add_arguments", "run"]

log = logging.getLogger("cobenefits")


def add_arguments(p):
    common_arguments(p)
    p.add_argument("--co2-cut-mt", type=float, default=None, metavar="X",
                   help="national CO2 cut [Mt yr-1] (default: the reference scenario's, FYP + symbiosis)")
    p.add_argument("--tolerance", type=float, default=0.01, metavar="F",
                   help="CO2 band [X, X (1 + F)] of the integer programme (default 0.01)")


def run(args):
    from engine.config import config_to_dict, input_paths
    from engine.marginal import figures, tables, target
    from engine.output import writers as eio
    from engine.output.persist import OutputTransaction

    if args.co2_cut_mt is not None and not (math.isfinite(args.co2_cut_mt) and args.co2_cut_mt > 0):
        raise InputError(f"--co2-cut-mt {args.co2_cut_mt}: must be a CO2 cut > 0 Mt yr-1")
    if not 0 <= args.tolerance <= 1:
        raise InputError(f"--tolerance {args.tolerance}: must be in [0, 1]")
    cfg, st = load(args)
    with OutputTransaction(args.out, inputs=input_paths(cfg), config=config_to_dict(cfg), command=NAME) as tx:
        res = target(stages=st, co2_cut_mt=args.co2_cut_mt, reference=args.reference, tolerance=args.tolerance)
        eio.write_csv(tables.allocation_table(res), tx.path("allocation.csv"), significant_digits=6)
        eio.write_csv(tables.intensity_table(res), tx.path("cobenefit_intensity.csv"), significant_digits=6)
        cities = res[[v for v in res.data_vars if v.startswith("city_")]].to_dataframe().reset_index()
        eio.write_csv(cities, tx.path("target_cities.csv"), significant_digits=6)
        tables.write_cf_netcdf(res, tx.path("target.nc"), title="targeted adoption of city actions")
        figures.plot_targeted_vs_uniform(res, tx.path("targeted_vs_uniform.png"))
        summary = json.loads(res.attrs["summary"])
        eio.write_json(summary, tx.path("summary.json"))
    if not getattr(args, "quiet", False):
        u, t = summary["uniform"], summary["targeted"]
        print(f"target: CO2 cut {summary['co2_target_mt']:.1f} Mt yr-1 -> {args.out}")
        print(f"  uniform ({summary['reference_scenario']}): {u['avoided_deaths_mean']:,.0f} deaths avoided yr-1 "
              f"(95 % {u['avoided_deaths_p2_5']:,.0f}-{u['avoided_deaths_p97_5']:,.0f}), CO2 cut {u['co2_cut_mt']:.1f} Mt")
        print(f"  targeted: {t['avoided_deaths_mean']:,.0f} deaths avoided yr-1 "
              f"(95 % {t['avoided_deaths_p2_5']:,.0f}-{t['avoided_deaths_p97_5']:,.0f}), CO2 cut {t['co2_cut_mt']:.1f} Mt, "
              f"{t['n_options_adopted']} options; High-High cities {len(u['high_high_cities'])} -> "
              f"{len(t['high_high_cities'])}")
    return 0

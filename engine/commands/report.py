"""``cobenefits report``: figures (PNG, SVG) and a static ``index.html`` of a run and a sweep."""

from __future__ import annotations

from engine.errors import InputError

NAME = "report"
HELP = "figures (PNG + SVG) and a static index.html of a run folder (and optionally a sweep folder)"

__all__ = ["NAME", "HELP", "add_arguments", "run"]


def add_arguments(p):
    p.add_argument("run_dir", metavar="RUN_DIR", help="folder written by 'cobenefits run --out'")
    p.add_argument("sweep_dir", nargs="?", default=None, metavar="SWEEP_DIR",
                   help="sweep folder with indices.csv and/or sweep.nc (optional)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: RUN_DIR/report, recorded in the run's manifest so that the run "
                        "folder still verifies; elsewhere: its own output folder, not inside RUN_DIR)")
    p.add_argument("--city", default=None, metavar="CITY",
                   help="city for the city-field figure: id or name (default: most avoided deaths)")
    p.add_argument("--scenario", default=None, metavar="NAME",
                   help="scenario of the city figures (default: fyp_symbiosis, else the last non-base one)")
    p.add_argument("--formats", default="png,svg", metavar="LIST", help="image formats: png, svg, pdf")


def run(args):
    from engine.report.publish import write_report

    if args.sweep_dir is not None:
        from pathlib import Path

        if not Path(args.sweep_dir).is_dir():
            raise InputError(f"report: sweep folder {args.sweep_dir} does not exist")
    res = write_report(args.run_dir, args.sweep_dir, out_dir=args.out, city=args.city, scenario=args.scenario,
                       formats=[f.strip() for f in args.formats.split(",") if f.strip()])
    if not getattr(args, "quiet", False):
        print(f"report: {res.index} ({len(res.figures)} figures"
              + (f"; skipped: {', '.join(res.skipped)}" if res.skipped else "") + ")")
    return 0

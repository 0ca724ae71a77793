"""``cobenefits validate RUN_DIR [MEASURED.csv]``: modelled primary against measured total PM2.5."""

from __future__ import annotations

from engine.errors import InputError

NAME = "validate"
HELP = ("compare a run's base-case primary PM2.5 with measured annual-mean total PM2.5 by city (default: the "
        "shipped US diplomatic-post table, five cities 2010-2015): ratio distribution, Spearman rank correlation, "
        "log-log scatter by region, map of the ratio, cities outside the plausible band; writes RUN_DIR/validation")

__all__ = ["NAME", "HELP", "add_arguments", "run"]


def add_arguments(p):
    p.add_argument("run_dir", metavar="RUN_DIR", help="folder written by 'cobenefits run --out'")
    p.add_argument("measured", nargs="?", default=None, metavar="MEASURED.csv",
                   help="CSV with city_id or city (name), year, pm25_ug_m3 [µg m-3], optional lat, lon, valid_hours "
                        "(default: the shipped US-post table, engine/data/measured/us_posts_pm25.csv)")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: RUN_DIR/validation)")
    p.add_argument("--band", default="0.2,0.8", metavar="LO,HI",
                   help="plausible band of modelled primary / measured total (default 0.2,0.8: docs/validation.md)")
    p.add_argument("--year", default="first", metavar="YEAR",
                   help="measured year: 'first' (each city's first year with enough valid hours), 'mean' (mean of "
                        "those years) or a year (default: first)")
    p.add_argument("--min-valid-hours", type=int, default=7000, metavar="N",
                   help="a year counts with at least N valid hours, when the table has valid_hours (default 7000)")
    p.add_argument("--max-distance-km", type=float, default=50.0, metavar="KM",
                   help="name matching with lat/lon: largest distance to the city centre (default 50)")
    p.add_argument("--formats", default="png,svg", metavar="LIST", help="image formats: png, svg, pdf")


def run(args):
    from engine.report.validation import validate_run

    try:
        band = tuple(float(x) for x in args.band.split(","))
    except ValueError:
        band = ()
    if len(band) != 2:
        raise InputError(f"validate: --band {args.band!r}: give two numbers LO,HI with 0 < LO < HI")
    if not 0 <= args.min_valid_hours <= 8784:
        raise InputError(f"validate: --min-valid-hours {args.min_valid_hours}: allowed 0-8784")
    if not args.max_distance_km > 0:
        raise InputError(f"validate: --max-distance-km {args.max_distance_km:g}: allowed > 0")
    res = validate_run(args.run_dir, args.measured, out_dir=args.out, band=band, year=args.year,
                       min_valid_hours=args.min_valid_hours, max_distance_km=args.max_distance_km,
                       formats=[f.strip() for f in args.formats.split(",") if f.strip()],
                       command="validate")
    if not getattr(args, "quiet", False):
        s = res["statistics"]
        print(f"validate: {s['n_cities']} cities matched ({res['n_unmatched_rows']} measured rows unmatched); "
              f"modelled primary / measured total: median {s['ratio_median']:.3g} "
              f"(10th-90th pct {s['ratio_p10']:.3g}-{s['ratio_p90']:.3g}), {100 * s['fraction_above_1']:.0f} % above 1, "
              f"{100 * s['fraction_in_band']:.0f} % in the band {res['band'][0]:g}-{res['band'][1]:g}, "
              f"Spearman rho {s['spearman_rho']:.3g}")
        for r in res["outside_band"][:20]:
            print(f"  outside the band: {r['name_en'] or r['city_id']} ratio {r['ratio']:.3g} {r['flag']}")
        print(f"validate: {res['out_dir']}")
    return 0

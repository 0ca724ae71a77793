"""``cobenefits met-climatology``: an hourly AERMET file -> the project's climatology format."""

from __future__ import annotations

import logging
import time

NAME = "met-climatology"
HELP = ("Build a climatology (joint frequencies of season, stability class, wind-speed class and "
        "direction sector, each class with representative u*, L, w*, mixing heights, z0) from an AERMET "
        "hourly surface file and, optionally, its profile file; use it with [met] climatology_file.")

log = logging.getLogger("cobenefits")


def add_arguments(parser):
    parser.add_argument("sfc", metavar="SFC", help="AERMET surface file (.SFC)")
    parser.add_argument("pfl", metavar="PFL", nargs="?", default=None,
                        help="AERMET profile file (.PFL); its lowest level with a wind gives the transport "
                             "wind of each hour, as AERMOD uses it for near-ground releases")
    parser.add_argument("--out", metavar="FILE", required=True,
                        help="climatology file to write (CSV with '#' header lines; written atomically, "
                             "never over SFC or PFL; a second writer of the same file is refused)")


def run(args):
    from engine.dispersion import climatology as clim
    from engine.dispersion.met import read_aermet
    from engine.output.persist import FileTransaction

    t0 = time.perf_counter()
    # the guard first: --out equal to SFC or PFL (also through a link) is refused before any reading
    with FileTransaction({"--out": args.out}, inputs={"SFC": args.sfc, "PFL": args.pfl},
                         command=NAME) as tx:
        met = read_aermet(args.sfc, args.pfl)
        c = clim.climatology_from_met(met, source=f"hourly AERMET {args.sfc}" + (f" + {args.pfl}" if args.pfl else ""))
        clim.write_climatology(c, tx.path("--out"))
    n_missing = int(met.missing.sum())
    log.info("%d hour(s) (%d missing, %d calm) -> %d classes in season(s) %s; wrote %s in %.2f s",
             len(met), n_missing, int(met.calm.sum()), len(c), ", ".join(c.seasons), args.out,
             time.perf_counter() - t0)
    return 0

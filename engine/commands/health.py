"""``cobenefits health``: premature deaths attributable to PM2.5 (and avoided by a scenario)."""

from __future__ import annotations

import logging
import time

from engine.errors import InputError

NAME = "health"
HELP = ("Premature deaths attributable to PM2.5 per region and cause, and deaths avoided by a "
        "scenario, with Monte Carlo uncertainty over the concentration-response parameters.")

log = logging.getLogger("cobenefits")


def add_arguments(parser):
    from engine.health import AVOIDED_METHODS, COHORTS, CRF_NAMES, POPULATION_COLUMNS

    parser.add_argument(
        "input", metavar="INPUT.csv",
        help="CSV with columns region, pm25 [ug m-3, annual mean], optional pm25_scenario [ug m-3], "
             f"and population by age [persons]: {', '.join(POPULATION_COLUMNS)}")
    parser.add_argument("--crf", choices=CRF_NAMES, default="ier2010",
                        help="concentration-response function: IER GBD 2010 (Burnett 2014), GEMM NCD+LRI "
                             "or 5 causes (Burnett 2018), log-linear Krewski 2009 (BenMAP form)")
    parser.add_argument("--functions", metavar="FUNCTIONS.csv", default=None,
                        help="user-defined functions (implies --crf user): columns form (log_linear, log_log, "
                             "linear), cause, beta, beta_se, min_age [years], optional function, max_age, "
                             "zcf [ug m-3], incidence_per_100k [deaths per 100,000 per year]")
    parser.add_argument("--background", metavar="BACKGROUND.csv", default=None,
                        help="total PM2.5 per region (columns region, pm25_total_ug_m3 [ug m-3]): the health "
                             "functions are evaluated at the total, with the primary change (pm25 - "
                             "pm25_scenario) applied on top of it; the method is stated in every output")
    parser.add_argument("--benmap-out", metavar="BENMAP.csv", default=None,
                        help="also write the BenMAP-style table: population, baseline deaths, concentrations "
                             "and delta [ug m-3], point estimate, mean, SD and the 20 percentiles 2.5..97.5 "
                             "[deaths yr-1] per region and cause")
    parser.add_argument("--cohort", choices=COHORTS, default="with_china",
                        help="GEMM cohort set, with or without the Chinese male cohort (GEMM only)")
    parser.add_argument("--rates", metavar="RATES.csv", default=None,
                        help="baseline rates CSV cause,age_group,rate_per_100k [deaths per 100,000 per year] "
                             "replacing the default China 2010 rates (GBD 2019 round); causes ihd, stroke, "
                             "copd, lc, lri, ncd_lri")
    parser.add_argument("--draws", type=int, default=1000,
                        help="Monte Carlo draws of the function's parameters (0 = central parameters only; "
                             "IER: the first N of the 1000 GBD 2010 draws)")
    parser.add_argument("--seed", type=int, default=20170901,
                        help="random seed of the GEMM / log-linear Normal(theta, SE) draws")
    parser.add_argument("--avoided-method", choices=AVOIDED_METHODS, default="subtraction",
                        help="avoided deaths as the difference of the two burdens, or as a potential "
                             "impact fraction (BenMAP form)")
    parser.add_argument("--adult-min-age", type=int, default=25,
                        help="lower age bound [years] of the adult causes (multiple of 5, 25..80)")
    parser.add_argument("--out", metavar="OUT.csv", required=True,
                        help="output CSV: region, cause (and 'all'), deaths_central, deaths_mean, "
                             "deaths_p2_5, deaths_p97_5 [deaths yr-1], and avoided_* with a scenario "
                             "(central curve and mean over draws side by side), concentration_method; "
                             "written atomically")


def run(args):
    import engine.health as health
    from engine.output.persist import FileTransaction
    from engine.output.writers import write_csv

    if args.draws < 0:
        raise InputError(f"--draws {args.draws}: must be >= 0")
    if not 0 <= args.seed < 2**32:
        raise InputError(f"--seed {args.seed}: must be in [0, 2**32)")
    t0 = time.perf_counter()
    crf = args.crf
    if args.functions:
        if crf not in ("ier2010", "user"):  # ier2010 is the default: --functions alone means user
            raise InputError(f"--functions with --crf {crf}: user functions replace the built-in function; "
                             "drop --crf or give --crf user")
        crf = "user"
    elif crf == "user":
        raise InputError("--crf user needs --functions FUNCTIONS.csv")
    outputs = {"--out": args.out, "--benmap-out": args.benmap_out}
    inputs = {"INPUT.csv": args.input, "--functions": args.functions, "--background": args.background,
              "--rates": args.rates}
    # the guard first: an output over an input, or --benmap-out equal to --out, is refused before any work
    with FileTransaction(outputs, inputs=inputs, command=NAME) as tx:
        base, scen, pop = health.read_exposure_table(args.input)
        _check_units(args.input, base, scen, pop)
        ds = health.health_impact(base, pop, conc_scenario=scen, crf=crf, cohort=args.cohort,
                                  rates=args.rates or None, draws=args.draws, seed=args.seed,
                                  avoided_method=args.avoided_method, adult_min_age=args.adult_min_age,
                                  functions=args.functions or None, background=args.background or None)
        table = health.impact_table(ds)
        write_csv(table, tx.path("--out"), float_format="%.6g")
        if args.benmap_out:
            write_csv(health.benmap_table(ds), tx.path("--benmap-out"), float_format="%.6g")
    tot = table[table.cause == "all"]
    msg = f"{len(pop)} region(s), {crf}, {ds.attrs['draws']} draw(s): " \
          f"{tot.deaths_central.sum():.6g} deaths yr-1 (central)"
    if "avoided_central" in tot:
        msg += f", {tot.avoided_central.sum():.6g} avoided (central)"
    log.info("%s; wrote %s in %.2f s", msg, args.out, time.perf_counter() - t0)
    return 0


#: an input whose every concentration is below this [ug m-3] is taken to be in mg m-3: ambient
#: annual means of total PM2.5 are above ~2 ug m-3 even at the cleanest populated sites (WHO
#: ambient air quality database 2022), and the IER/GEMM counterfactuals are 2.4-5.9 ug m-3
MIN_MAX_PM25_UG_M3 = 1.0


#: largest plausible population of one region [persons]: 1.5x China's 1.34e9 of the 2010 census
MAX_REGION_POPULATION = 2.0e9


def _check_units(path, base, scen, pop):
    """Refuse a table that looks like mg m-3 (every value < 1) or whose region population exceeds
    :data:`MAX_REGION_POPULATION`; the concentration upper bound is checked by
    :func:`engine.health.impact.health_impact` (> 1000 ug m-3)."""
    from engine.health import PM25_PLAUSIBLE_MAX_UG_M3

    total = pop.sum(axis=1)
    big = total[total > MAX_REGION_POPULATION]
    if len(big):
        raise InputError(f"input file {path}: region {big.index[0]!r} has {float(big.iloc[0]):.4g} persons in its "
                         f"population columns; the allowed range is [0, {MAX_REGION_POPULATION:.3g}] persons per "
                         f"region (more than any nation: a wrong unit or a typo?)")

    top = max(float(base.max()), float(scen.max()) if scen is not None else 0.0)
    if top < MIN_MAX_PM25_UG_M3:
        raise InputError(f"input file {path}: every pm25 value is below {MIN_MAX_PM25_UG_M3:g} ug m-3 (largest "
                         f"{top:g}); annual-mean PM2.5 is given in ug m-3, not mg m-3 (multiply by 1000); the "
                         f"allowed range is [0, {PM25_PLAUSIBLE_MAX_UG_M3:g}] ug m-3 with at least one value >= "
                         f"{MIN_MAX_PM25_UG_M3:g}")

"""``cobenefits validate-data DIR``: check a user's data tables and report every problem."""

from __future__ import annotations

from pathlib import Path

from engine.data.dataset import validate_dataset
from engine.errors import InputErrors

NAME = "validate-data"
HELP = ("check cities.csv, provinces.csv and grids.csv in DIR (schema, units in column names, "
        "negative energy, unknown province/grid, duplicate ids, cities exceeding their province, "
        "implausible values: inf, zero area, > 10x the 2010 national total, per-person intensity or "
        "density beyond 10x the 2010 range, e.g. a sector in kt instead of Mt); lists all problems at once")


def add_arguments(p):
    p.add_argument("dir", type=Path, metavar="DIR", help="data folder to check")


def run(args):
    problems, tables = validate_dataset(args.dir)
    if problems:
        raise InputErrors(problems, header=f"{args.dir}: data set has problems")
    cities, provs, grids = tables
    print(f"{args.dir}: OK ({len(cities)} cities, {len(provs)} provinces, {len(grids)} grid regions)")
    return 0

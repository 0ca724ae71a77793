"""Reading a run folder for the report: the run's tables, checked for what a truncated or edited
file leaves (field counts per line, the same cities in every scenario), and the run's name as the
user knows it (never the name of the staging folder a run writes its report from); and
:class:`RunOutput`, where ``report`` and ``validate`` write about a run without breaking it."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import InputError

__all__ = ["run_name", "read_run", "RunOutput", "pick_city"]


#: the staging folder of an output transaction (engine.output.persist): ``.<name>.staging-<pid>``
_STAGING_NAME = re.compile(r"^\.(?P<name>.+)\.staging-\d+$")


def run_name(run_dir):
    """The run folder's name as the user knows it: ``national`` for ``.national.staging-7496``
    (the staging folder a run writes its report from)."""
    name = Path(run_dir).resolve().name
    m = _STAGING_NAME.match(name)
    return m["name"] if m else name


def _read_run(run_dir):
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"report: run folder {run_dir} does not exist")
    need = ("cities.csv", "national.csv", "summary.json")
    missing = [n for n in need if not (run_dir / n).exists()]
    if missing:
        raise InputError(f"report: {run_dir} is not a run folder: missing {', '.join(missing)} "
                         f"(written by 'cobenefits run --out {run_dir}')")
    try:
        cities = pd.read_csv(run_dir / "cities.csv")
        national = pd.read_csv(run_dir / "national.csv")
        summary = json.loads((run_dir / "summary.json").read_text())
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"report: cannot read {run_dir}: {exc}") from None
    for col in ("scenario", "city_id"):
        if col not in cities.columns:
            raise InputError(f"report: {run_dir / 'cities.csv'} has no column '{col}'")
    if "scenario" not in national.columns:
        raise InputError(f"report: {run_dir / 'national.csv'} has no column 'scenario'")
    if not isinstance(summary, dict):
        raise InputError(f"report: {run_dir / 'summary.json'} is not a JSON object (written by 'cobenefits run')")
    for name in ("cities.csv", "national.csv"):
        _check_field_counts(run_dir / name)
    _check_city_rows(run_dir, cities, national)
    return cities, national, summary


def _check_field_counts(path):
    """Every line of a run's CSV has the header's number of fields (a truncated file does not:
    pandas would fill the missing fields with NaN and the figures would fail later)."""
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        rows = csv.reader(fh)
        header = next(rows, None)
        if not header:
            raise InputError(f"report: {path} is empty; re-run 'cobenefits run'")
        for n, row in enumerate(rows, start=2):
            if row and len(row) != len(header):
                raise InputError(f"report: {path}, line {n}: {len(row)} fields, the header has {len(header)} "
                                 "(a truncated or edited file?); re-run 'cobenefits run'")


def _check_city_rows(run_dir, cities, national):
    """Whole numbers for city_id, and the same cities in every scenario of national.csv."""
    path = Path(run_dir) / "cities.csv"
    ids = pd.to_numeric(cities["city_id"], errors="coerce")
    bad = ~np.isfinite(ids.to_numpy(dtype=float)) | (ids.to_numpy(dtype=float) % 1 != 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"report: {path}, line {i + 2}, column city_id: {cities['city_id'].iloc[i]!r}; expected "
                         "a whole number (a city id)")
    scen = cities["scenario"].astype(str)
    want = [str(s) for s in national["scenario"]]
    sets = {s: set(ids[scen == s].astype(int)) for s in want}
    for s in want:
        if not sets[s]:
            raise InputError(f"report: {path} has no row of scenario {s!r}, which {Path(run_dir) / 'national.csv'} "
                             "lists (a truncated file?); re-run 'cobenefits run'")
        if sets[s] != sets[want[0]]:
            diff = sorted(sets[want[0]] ^ sets[s])
            raise InputError(f"report: {path}: scenario {s!r} has {len(sets[s])} cities, {want[0]!r} has "
                             f"{len(sets[want[0]])} (differing: {', '.join(map(str, diff[:5]))}); every scenario "
                             "lists the same cities (a truncated file?); re-run 'cobenefits run'")


read_run = _read_run


class RunOutput:
    """Where a command that writes *about* a run (``report``, ``validate``) writes, as one output
    transaction (:mod:`engine.output.persist`).

    * ``out_dir`` None or ``RUN_DIR/<folder>``: an *amendment* of the run folder when it has a
      ``manifest.json``: the run's other files are kept, ``<folder>/`` is replaced as a whole, and
      the run's manifest lists the new files and records the amendment, so the run folder still
      verifies; the run's lock is held meanwhile. A run folder that no longer matches its manifest
      is not amended (exit 2). A folder without a manifest gets ``RUN_DIR/<folder>`` as its own
      output folder.
    * any other ``out_dir``: its own output folder with its own manifest; it may not lie inside
      the run folder or another input folder (it would change the run's files).

    Use as a context manager; write into :attr:`folder` (staged), find the result in :attr:`final`.
    """

    def __init__(self, run_dir, out_dir, folder, *, inputs=(), command="", config=None):
        from engine.output.persist import MANIFEST_NAME, OutputTransaction

        run_dir = Path(run_dir)
        inside = run_dir.resolve() / folder
        target = None if out_dir is None else Path(os.path.abspath(Path(out_dir).expanduser()))
        inputs = [p for p in inputs if p is not None]
        self._sub = None
        if target is None or target.resolve() == inside:
            if (run_dir / MANIFEST_NAME).is_file():
                self.tx = OutputTransaction(run_dir, inputs=inputs, command=command, amend=(folder,),
                                            option="RUN_DIR", extra={"config": config} if config else None)
                self._sub = folder
                self.final = run_dir / folder
            else:
                self.tx = OutputTransaction(inside, inputs=inputs, command=command, config=config)
                self.final = inside
        else:
            self.tx = OutputTransaction(target, inputs=[run_dir, *inputs], command=command, config=config)
            self.final = target
        self.folder = None

    def __enter__(self):
        self.tx.__enter__()
        self.folder = self.tx.path(self._sub) if self._sub else Path(self.tx.staging)
        return self

    def __exit__(self, *exc):
        return self.tx.__exit__(*exc)


def pick_city(cs, city):
    """The city id of ``--city`` (id, Chinese or English name) in ``cs``; default: the most avoided deaths."""
    if city is None:
        col = "avoided_deaths_mean" if "avoided_deaths_mean" in cs else "conc_ug_m3"
        return int(cs[col].astype(float).idxmax()) if col in cs and len(cs) else int(cs.index[0])
    tok = str(city).strip()
    if tok.isdigit() and int(tok) in cs.index:
        return int(tok)
    for col in ("name", "name_en"):
        if col in cs:
            hit = cs.index[cs[col].astype(str).str.lower() == tok.lower()]
            if len(hit):
                return int(hit[0])
    import difflib

    names = [str(n) for n in cs.get("name_en", cs.get("name", pd.Series(dtype=str)))]
    close = difflib.get_close_matches(tok, names, n=3, cutoff=0.5)
    raise InputError(f"report: --city {tok!r} is not a city of this run"
                     + (f"; did you mean {', '.join(close)}?" if close else ""))

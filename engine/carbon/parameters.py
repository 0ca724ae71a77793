"""The carbon stage's parameter table (``engine/data/carbon_parameters.csv``): one named value per
row with its unit and source. Calibrated rows are written by :mod:`engine.carbon.calibrate`."""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

import pandas as pd

from engine.errors import InputError

__all__ = ["load_parameters", "parameters_table", "PARAMETER_FILE"]

PARAMETER_FILE = "carbon_parameters.csv"


def parameters_table(path=None):
    """The parameter table as a DataFrame indexed by ``parameter`` (value, unit, source)."""
    path = Path(path) if path else Path(str(resources.files("engine") / "data" / PARAMETER_FILE))
    df = pd.read_csv(path, comment="#")
    dup = df["parameter"][df["parameter"].duplicated()]
    if len(dup):
        raise InputError(f"{path}: duplicate parameter(s) {', '.join(dup)}")
    return df.set_index("parameter")


class Parameters(dict):
    """``dict`` of float parameters whose missing keys raise an error with a suggestion."""

    def __missing__(self, key):
        close = difflib.get_close_matches(key, list(self), n=1)
        raise InputError(f"carbon parameter '{key}' is not defined"
                         + (f"; did you mean '{close[0]}'?" if close else ""))


def load_parameters(path=None, overrides=None):
    """Parameters as a :class:`Parameters` mapping ``name -> float``.

    ``overrides`` (mapping) replaces values, e.g. for sensitivity runs; unknown names are errors.
    """
    table = parameters_table(path)
    p = Parameters({k: float(v) for k, v in table["value"].items()})
    for k, v in (overrides or {}).items():
        if k not in p:
            p[k]  # raises with suggestion
        p[k] = v
    return p

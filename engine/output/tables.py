"""Table and text writers: CSV (optionally rounded to significant digits) and plain text, each
written atomically through :func:`engine.output.persist.atomic_path`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.output.persist import atomic_path

__all__ = ["write_csv", "round_significant", "write_text"]


def write_csv(df, path, *, significant_digits=None, **kwargs):
    """Write a pandas DataFrame as CSV atomically (index off unless asked).

    ``significant_digits``: write floats with that many significant digits (``%.<n>g``; 6 keeps
    latitude/longitude to ~10 m and every emission or death figure to 1 ppm of itself); None
    writes full precision. Integers and text are never rounded. Full precision stays in NetCDF.
    """
    kwargs.setdefault("index", False)
    if significant_digits is not None:
        n = int(significant_digits)
        if not 1 <= n <= 17:
            raise ValueError(f"significant_digits={significant_digits}: allowed 1..17")
        kwargs.setdefault("float_format", f"%.{n}g")
    with atomic_path(path) as tmp:
        df.to_csv(tmp, **kwargs)


def round_significant(values, digits=4):
    """``values`` rounded to ``digits`` significant digits (array or DataFrame; NaN and 0 kept).

    For tables shown to people (report, CSV); numbers are never rounded before they are summed.
    """
    import pandas as pd

    if isinstance(values, pd.DataFrame):
        out = values.copy()
        for col in out.columns:
            if pd.api.types.is_float_dtype(out[col]):
                out[col] = round_significant(out[col].to_numpy(), digits)
        return out
    x = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.floor(np.log10(np.abs(x)))
        scale = np.where(np.isfinite(mag), 10.0 ** (digits - 1 - mag), 1.0)
        return np.where(np.isfinite(mag), np.round(x * scale) / scale, x)


def write_text(text, path):
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


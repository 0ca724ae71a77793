"""ISC-style STAR joint-frequency tables: reader and conversion to met classes."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from engine.errors import InputError, read_text_file

from .golder import (MIN_CLASS_FREQUENCY, STAR_SPEED_CLASS_M_S, URBAN_ROUGHNESS_M, class_hour,
                     rows_to_arrays)

__all__ = ["read_star", "star_to_arrays"]


# --------------------------------------------------------------------------- STAR
_STAB = "ABCDEF"


def read_star(path):
    """Read an ISC-style STAR joint-frequency table -> (6 stability, 6 speed, 16 sector) array.

    Accepted layouts (comment lines starting with ``#`` or ``*`` are skipped):

    * **ISCLT block text**: 36 records of 16 numbers, stability A..F outermost, then speed
      class 1..6, then sectors N, NNE, ..., NNW (the direction the wind blows FROM);
      extra leading label tokens on a record (``A 1`` ...) are ignored.
    * **CSV, long**: a header with columns ``stability`` (A-F), ``speed_class`` (1-6),
      ``sector`` (1-16, 1 = N) or ``direction_deg`` (sector centre) and ``frequency``.

    Frequencies are normalised to sum to 1. Raises :class:`InputError` with the file and line.
    """
    path = Path(path)
    text = read_text_file(path, "STAR file")
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines())]
    lines = [(i, ln) for i, ln in lines if ln and ln[0] not in "#*"]
    if not lines:
        raise InputError(f"{path}: no data")
    freq = np.zeros((6, 6, 16))
    first = lines[0][1]
    if re.search(r"[a-zA-Z_]{3,}", first) and "," in first:
        cols = [c.strip().lower() for c in first.split(",")]
        need = {"stability", "speed_class", "frequency"}
        if not need <= set(cols) or not ({"sector", "direction_deg"} & set(cols)):
            raise InputError(f"{path}, line {lines[0][0]}: CSV STAR needs columns stability, speed_class, "
                             f"sector (or direction_deg) and frequency; found {', '.join(cols)}")
        for lineno, ln in lines[1:]:
            vals = dict(zip(cols, (v.strip() for v in ln.split(","))))
            try:
                s = _STAB.index(vals["stability"].upper())
                c = int(float(vals["speed_class"])) - 1
                if "sector" in vals:
                    d = int(float(vals["sector"])) - 1
                else:
                    d = int(round(float(vals["direction_deg"]) / 22.5)) % 16
                f = float(vals["frequency"])
                if not (0 <= c < 6 and 0 <= d < 16) or not (f >= 0):
                    raise ValueError
            except (ValueError, KeyError):
                raise InputError(f"{path}, line {lineno}: expected stability A-F, speed_class 1-6, "
                                 f"sector 1-16 and a frequency >= 0; got {ln!r}") from None
            freq[s, c, d] += f
    else:
        records = []
        for lineno, ln in lines:
            toks = ln.replace(",", " ").split()
            nums = []
            for t in toks:
                try:
                    nums.append(float(t))
                except ValueError:
                    continue
            if len(nums) > 16:
                nums = nums[-16:]  # leading numeric labels (speed class) dropped
            if len(nums) != 16:
                raise InputError(f"{path}, line {lineno}: expected 16 sector frequencies, found {len(nums)}")
            records.append((lineno, nums))
        if len(records) != 36:
            raise InputError(f"{path}: expected 36 records (6 stability x 6 speed classes) of 16 "
                             f"frequencies, found {len(records)}")
        arr = np.array([r for _, r in records])
        if (arr < 0).any() or not np.isfinite(arr).all():
            bad = next(ln for ln, r in records if min(r) < 0 or not all(map(math.isfinite, r)))
            raise InputError(f"{path}, line {bad}: frequencies must be finite and >= 0")
        freq = arr.reshape(6, 6, 16)
    total = freq.sum()
    if total <= 0:
        raise InputError(f"{path}: all frequencies are zero")
    return freq / total


def star_to_arrays(freq, *, temperature_k=288.0, daytime_mixing_height_m=1000.0,
                   roughness_length_m=URBAN_ROUGHNESS_M, speeds_m_s=STAR_SPEED_CLASS_M_S):
    """MetHours fields of a STAR table (classes with frequency >= :data:`MIN_CLASS_FREQUENCY`).

    Each (stability, speed, sector) cell becomes one class with the ISCLT representative speed,
    L from Golder (1972), u* from the AERMOD profile and mixing heights as in the default
    climatology (:mod:`.golder`, steps 3-5).
    """
    rows = []
    for s in range(6):
        for c in range(6):
            base = None
            for d in range(16):
                w = float(freq[s, c, d])
                if w < MIN_CLASS_FREQUENCY:
                    continue
                if base is None:
                    base = class_hour(float(speeds_m_s[c]), _STAB[s], roughness_length_m, temperature_k,
                                       daytime_mixing_height_m)
                rows.append({**base, "wind_from_deg": d * 22.5, "weight": w, "stability": _STAB[s]})
    if not rows:
        raise InputError("STAR table: no class has a frequency >= 1e-4")
    return rows_to_arrays(rows)

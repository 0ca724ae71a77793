"""Climatology files: a :class:`.classes.Climatology` as CSV with ``#`` header lines, written
atomically and read back with every bad value named by file, line and column."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from engine.errors import InputError, read_text_file

from .checks import check_climatology
from .classes import CLASS_FIELDS, STABILITY_CLASSES, Climatology

__all__ = ["CLIMATOLOGY_FORMAT", "write_climatology", "read_climatology"]

#: format tag on the first line of a climatology file

CLIMATOLOGY_FORMAT = "cobenefits-climatology-v1"


def write_climatology(clim, path):
    """Write a :class:`Climatology` as CSV with ``#`` header lines (atomic: temp file + rename).

    Header lines: the format name, the source, ``season_frequency`` and ``calm_frequency``
    (``season=value`` pairs). Columns: season, stability_class, speed_class, sector,
    wind_from_deg, frequency and the boundary-layer fields (SI units in the names; empty = NaN).
    """
    path = Path(path)
    cols = ["season", "stability_class", "speed_class", "sector", "wind_from_deg", "frequency", *CLASS_FIELDS]
    nl = len(clim.profile_heights_m)
    pcols = [f"{k}_{i + 1}" for k in ("profile_sigma_v_m_s", "profile_sigma_w_m_s") for i in range(nl)]
    lines = [f"# {CLIMATOLOGY_FORMAT}",
             f"# source: {clim.source}",
             "# season_frequency: " + ",".join(f"{s}={clim.season_frequency[s]:.10g}" for s in clim.seasons),
             "# calm_frequency: " + ",".join(f"{s}={clim.calm_frequency[s]:.10g}" for s in clim.seasons),
             "# frequency: share of the season's non-calm hours; calms follow the EPA calms policy "
             "(zero concentration, excluded from period means)"]
    if nl:
        lines.append("# profile_heights_m: " + ",".join(f"{z:g}" for z in clim.profile_heights_m)
                     + "  (profile_sigma_*_i: observed turbulence at level i; empty = not observed)")
    lines.append(",".join(cols + pcols))
    c = clim.classes
    for i in range(len(clim)):
        vals = []
        for k in cols:
            v = c[k][i]
            if isinstance(v, (str, np.str_)):
                vals.append(str(v))
            elif k in ("speed_class", "sector"):
                vals.append(str(int(v)))
            else:
                vals.append("" if not np.isfinite(v) else f"{float(v):.8g}")
        for k in ("profile_sigma_v_m_s", "profile_sigma_w_m_s")[: 2 if nl else 0]:
            vals += ["" if not np.isfinite(v) else f"{float(v):.8g}" for v in c[k][i]]
        lines.append(",".join(vals))
    from engine.output.persist import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")


def _read_sections(path):
    """``({header key: value}, [(line number, data line), ...])`` of a climatology file."""
    text = read_text_file(path, "climatology file")
    header, body = {}, []
    for lineno, ln in enumerate(text.splitlines(), start=1):
        if ln.startswith("#"):
            if ":" in ln:
                k, v = ln[1:].split(":", 1)
                header[k.strip()] = v.strip()
            elif ln[1:].strip():
                header["format"] = ln[1:].strip()
        elif ln.strip():
            body.append((lineno, ln))
    if header.get("format") != CLIMATOLOGY_FORMAT:
        raise InputError(f"climatology file {path}: first line must be '# {CLIMATOLOGY_FORMAT}'")
    if not body:
        raise InputError(f"climatology file {path}: no column header and no classes")
    return header, body


def _header_pairs(path, header, key):
    """The ``season=value`` pairs of header line ``key`` (values in 0..1)."""
    if key not in header:
        raise InputError(f"climatology file {path}: header line '# {key}: season=value,...' is missing")
    out = {}
    for item in header[key].split(","):
        try:
            s, v = item.split("=")
            out[s.strip()] = float(v)
        except ValueError:
            raise InputError(f"climatology file {path}: header '{key}' item {item!r} is not season=number") from None
        if not 0.0 <= out[s.strip()] <= 1.0:
            raise InputError(f"climatology file {path}: header '{key}' {item!r} outside 0..1")
    return out


def _read_rows(path, body, cols, need, season_frequency):
    """The class rows of a climatology file as lists per column (``need``), each value checked."""
    data = {k: [] for k in need}
    for lineno, ln in body[1:]:
        vals = [v.strip() for v in ln.split(",")]
        if len(vals) != len(cols):
            raise InputError(f"climatology file {path}, line {lineno}: {len(vals)} fields, expected {len(cols)}")
        row = dict(zip(cols, vals))
        if row["season"] not in season_frequency:
            raise InputError(f"climatology file {path}, line {lineno}, column 'season': {row['season']!r} is not in "
                             f"the header's season_frequency ({', '.join(season_frequency)})")
        if row["stability_class"] not in STABILITY_CLASSES:
            raise InputError(f"climatology file {path}, line {lineno}, column 'stability_class': "
                             f"{row['stability_class']!r}; expected one of {', '.join(STABILITY_CLASSES)}")
        data["season"].append(row["season"])
        data["stability_class"].append(row["stability_class"])
        for k in need[2:]:
            v = row[k]
            try:
                x = float(v) if v != "" else math.nan
            except ValueError:
                raise InputError(f"climatology file {path}, line {lineno}, column '{k}': {v!r} is not a number") from None
            if k in ("speed_class", "sector") and not (x == int(x) and x >= 1 if math.isfinite(x) else False):
                raise InputError(f"climatology file {path}, line {lineno}, column '{k}': {v!r}; expected an "
                                 "integer >= 1")
            if k == "wind_from_deg" and not (0.0 <= x <= 360.0):
                raise InputError(f"climatology file {path}, line {lineno}, column '{k}': {v!r}; expected 0..360 deg")
            data[k].append(x)
    return data


def read_climatology(path):
    """Read a climatology file written by :func:`write_climatology` (or by hand, same layout).

    Raises :class:`InputError` naming the file, line and column of a bad value.
    """
    path = Path(path)
    header, body = _read_sections(path)
    season_frequency = _header_pairs(path, header, "season_frequency")
    calm_frequency = _header_pairs(path, header, "calm_frequency")
    heights = ()
    if "profile_heights_m" in header:
        try:
            heights = tuple(float(v) for v in header["profile_heights_m"].split()[0].split(","))
        except (ValueError, IndexError):
            raise InputError(f"climatology file {path}: header 'profile_heights_m' must be comma-separated "
                             f"heights [m], got {header['profile_heights_m']!r}") from None
        if not all(0 < z < 9000 for z in heights):
            raise InputError(f"climatology file {path}: profile_heights_m must lie in 0..9000 m")
    cols = [c.strip() for c in body[0][1].split(",")]
    pcols = [f"{k}_{i + 1}" for k in ("profile_sigma_v_m_s", "profile_sigma_w_m_s") for i in range(len(heights))]
    need = ["season", "stability_class", "speed_class", "sector", "wind_from_deg", "frequency", *CLASS_FIELDS,
            *pcols]
    missing = [c for c in need if c not in cols]
    if missing:
        raise InputError(f"climatology file {path}, line {body[0][0]}: missing column(s) {', '.join(missing)}")
    data = _read_rows(path, body, cols, need, season_frequency)
    classes = {k: np.asarray(v) for k, v in data.items() if k not in pcols}
    for k in ("speed_class", "sector"):
        classes[k] = classes[k].astype(int)
    if heights:
        for k in ("profile_sigma_v_m_s", "profile_sigma_w_m_s"):
            classes[k] = np.column_stack([np.asarray(data[f"{k}_{i + 1}"], float) for i in range(len(heights))]) \
                if data["season"] else np.zeros((0, len(heights)))
            bad = np.isfinite(classes[k]) & (classes[k] <= 0)
            if bad.any():
                i, j = (int(v[0]) for v in np.nonzero(bad))
                raise InputError(f"climatology file {path}, line {body[1 + i][0]}, column '{k}_{j + 1}': must be > 0 "
                                 "m/s or empty")
    f = classes["frequency"]
    if (~np.isfinite(f) | (f < 0)).any():
        i = int(np.flatnonzero(~np.isfinite(f) | (f < 0))[0])
        raise InputError(f"climatology file {path}, line {body[1 + i][0]}, column 'frequency': must be >= 0")
    for s in season_frequency:
        tot = f[classes["season"] == s].sum()
        if (classes["season"] == s).any() and abs(tot - 1.0) > 1e-4:
            raise InputError(f"climatology file {path}: frequencies of season {s!r} sum to {tot:.6g}, expected 1")
    clim = Climatology(classes=classes, season_frequency=season_frequency, calm_frequency=calm_frequency,
                       source=header.get("source", str(path)), profile_heights_m=heights)
    check_climatology(clim, f"climatology file {path}", row_lines=[ln for ln, _ in body[1:]])
    for s in clim.seasons:  # range checks of the boundary-layer fields (names the class row)
        try:
            clim.met(s)
        except InputError as exc:
            raise InputError(f"climatology file {path}: {exc}") from None
    return clim

"""Modelled primary PM2.5 of a run against measured total PM2.5 by city (``cobenefits validate``).

The model gives **primary** PM2.5 (directly emitted particles) as each city's exposure mean;
monitors measure **total** PM2.5 (primary + secondary aerosol formed in the air). So the ratio
modelled / measured should lie below 1, near the primary share of the annual mean. That share is
36-43 % in Chinese cities (secondary 57.1 % of PM2.5 in northern and 63.5 % in southern cities,
2014-2018, national monitoring network: Zhang, H. et al. 2022, Atmos. Chem. Phys. 22, 5495-5514).

The **plausible band** of the ratio is 0.2-0.8 by default (``--band``): the 36-43 % central
share widened by about a factor of two either way, for what one comparison cannot resolve --
one monitor at an urban site against a city-wide exposure mean, a measurement year other than
the model's 2010 emissions, and the spread of the primary share between cities around its
regional mean. A ratio above 1 (more primary than total) is impossible whatever the band.

Matching a measured row to a city of the run: by ``city_id`` when the row has one; otherwise
by name (the Chinese ``name``, with or without 市, or the pinyin ``name_en``, case-insensitive),
and when the row also has ``lat``/``lon``, the city centre must lie within
``max_distance_km`` (default 50 km) -- that also picks between cities of the same name.

Region (colours): the six administrative regions of China by the first digit of the province's
GB/T 2260 code (1 North, 2 Northeast, 3 East, 4 South Central, 5 Southwest, 6 Northwest).

Units: concentrations [ug m-3], distances [km].
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import InputError

__all__ = ["DEFAULT_BAND", "PRIMARY_SHARE", "MIN_VALID_HOURS", "REGIONS", "read_measured", "match_cities",
           "summarise", "validate_run", "shipped_measured_path", "spearman"]

#: default plausible band of modelled primary / measured total (module docstring)
DEFAULT_BAND = (0.2, 0.8)
#: primary share of annual-mean PM2.5 in Chinese cities (Zhang et al. 2022, ACP 22:5495)
PRIMARY_SHARE = (0.36, 0.43)
#: a year counts when it has this many valid hours (80 % of 8,760), if the table gives them
MIN_VALID_HOURS = 7000
#: largest distance between a measured site and the matched city centre [km] (name matching)
MAX_DISTANCE_KM = 50.0
#: allowed ranges of the measured table's columns
PM25_RANGE = (0.0, 1000.0)          # ug m-3, lower bound open
YEAR_RANGE = (1980, 2100)
REGIONS = {1: "North", 2: "Northeast", 3: "East", 4: "South Central", 5: "Southwest", 6: "Northwest"}


def shipped_measured_path():
    """The shipped table: US diplomatic posts, five cities, 2010-2015 (engine/data/build_measured.py)."""
    from engine.data.dataset import default_data_dir

    return Path(default_data_dir()) / "measured" / "us_posts_pm25.csv"


# --------------------------------------------------------------------------- the measured table
def read_measured(path):
    """Read and check a measured table.

    Columns: ``city_id`` or ``city`` (a name; both allowed), ``year`` (integer, 1980-2100),
    ``pm25_ug_m3`` (annual mean total PM2.5, > 0 and <= 1000); optional ``lat``, ``lon``
    [degrees], ``valid_hours``. Lines starting with ``#`` are comments.

    Returns
    -------
    DataFrame with ``row`` (line number in the file, 1-based, header included) added.

    Raises
    ------
    InputError
        naming the file, the row (line) and the column, and the allowed range.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"validate: measured table {path} does not exist (a CSV with city_id or city, year, "
                         "pm25_ug_m3)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"validate: {path}: cannot be read as UTF-8 text ({exc})") from None
    lines = text.splitlines()
    data_lines = [k + 1 for k, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")]
    try:
        df = pd.read_csv(path, comment="#", skip_blank_lines=True, dtype=str, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise InputError(f"validate: {path}: not a readable CSV table ({exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    if "city_id" not in df and "city" not in df:
        raise InputError(f"validate: {path}: needs a column city_id or city (found: {', '.join(df.columns)})")
    for col in ("year", "pm25_ug_m3"):
        if col not in df:
            raise InputError(f"validate: {path}: missing column {col} (found: {', '.join(df.columns)}); "
                             "columns: city_id or city, year, pm25_ug_m3 [ug m-3], optional lat, lon, valid_hours")
    df["row"] = data_lines[1:len(df) + 1]

    def fail(i, col, what):
        raise InputError(f"validate: {path}: line {df['row'].iloc[i]}, column {col}: {what}")

    def number(col, lo, hi, *, lo_open=False, integer=False, optional=False):
        out = np.full(len(df), np.nan)
        for i, v in enumerate(df[col]):
            if pd.isna(v) or str(v).strip() == "":
                if optional:
                    continue
                fail(i, col, f"empty; allowed {_range(lo, hi, lo_open)}")
            try:
                x = float(str(v).strip())
            except ValueError:
                fail(i, col, f"{v!r} is not a number; allowed {_range(lo, hi, lo_open)}")
            bad = not math.isfinite(x) or (x <= lo if lo_open else x < lo) or x > hi
            if integer and not bad and x != int(x):
                fail(i, col, f"{v!r} is not a whole number; allowed {_range(lo, hi, lo_open)}")
            if bad:
                fail(i, col, f"{v!r} is outside the allowed range {_range(lo, hi, lo_open)}")
            out[i] = x
        return out

    df["year"] = number("year", *YEAR_RANGE, integer=True).astype(int)
    df["pm25_ug_m3"] = number("pm25_ug_m3", *PM25_RANGE, lo_open=True)
    if "city_id" in df:
        df["city_id"] = number("city_id", 1, 999_999_999, integer=True, optional="city" in df)
    if "lat" in df or "lon" in df:
        for col, lo, hi in (("lat", -90.0, 90.0), ("lon", -180.0, 180.0)):
            if col not in df:
                raise InputError(f"validate: {path}: has {'lon' if col == 'lat' else 'lat'} but no {col}")
            df[col] = number(col, lo, hi, optional=True)
    if "valid_hours" in df:
        df["valid_hours"] = number("valid_hours", 0, 8784, integer=True, optional=True)
    if "city" in df:
        df["city"] = df["city"].fillna("").astype(str).str.strip()
        if "city_id" not in df:
            for i, v in enumerate(df["city"]):
                if not v:
                    fail(i, "city", "empty (and there is no city_id column)")
    if len(df) == 0:
        raise InputError(f"validate: {path}: no data rows")
    return df


def _range(lo, hi, lo_open):
    return f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"


# --------------------------------------------------------------------------- matching
def _norm(name):
    s = str(name).strip().lower()
    return s[:-1] if s.endswith("市") else s


def _distance_km(lat1, lon1, lat2, lon2):
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(np.asarray(lon2) - lon1)
    c = np.sin(p1) * np.sin(p2) + np.cos(p1) * np.cos(p2) * np.cos(dl)
    return 6371.0088 * np.arccos(np.clip(c, -1.0, 1.0))


def match_cities(measured, cities, *, max_distance_km=MAX_DISTANCE_KM):
    """The run's city of every measured row.

    Parameters
    ----------
    measured : DataFrame from :func:`read_measured`
    cities : DataFrame, one row per city of the run, with ``city_id`` and ``name``/``name_en``,
        ``lat``/``lon`` where known

    Returns
    -------
    DataFrame: the measured rows with ``matched_city_id`` (NaN when unmatched), ``match``
    (``id``, ``name``, ``name+distance``) and ``unmatched_reason``, ``distance_km``.
    """
    out = measured.copy()
    ids = set(int(c) for c in cities["city_id"])
    names = {}
    for col in ("name", "name_en"):
        if col in cities:
            for cid, n in zip(cities["city_id"], cities[col]):
                names.setdefault(_norm(n), set()).add(int(cid))
    pos = cities.set_index("city_id")
    matched, how, why, dist = [], [], [], []
    for _, r in measured.iterrows():
        cid, m, reason, d = np.nan, "", "", np.nan
        rid = r.get("city_id", np.nan)
        if pd.notna(rid) and not (isinstance(rid, str) and not rid.strip()):
            if int(rid) in ids:
                cid, m = int(rid), "id"
            else:
                reason = f"city_id {int(rid)} is not a city of the run"
        if np.isnan(cid) and "city" in measured and str(r.get("city", "")).strip():
            cand = sorted(names.get(_norm(r["city"]), ()))
            has_pos = "lat" in measured and pd.notna(r.get("lat")) and pd.notna(r.get("lon"))
            if not cand:
                reason = (reason + "; " if reason else "") + f"no city of the run is named {r['city']!r}"
            elif has_pos and {"lat", "lon"} <= set(pos.columns):
                dd = _distance_km(float(r["lat"]), float(r["lon"]), pos.loc[cand, "lat"].to_numpy(float),
                                  pos.loc[cand, "lon"].to_numpy(float))
                k = int(np.argmin(dd))
                if dd[k] <= max_distance_km:
                    cid, m, d, reason = cand[k], "name+distance", float(dd[k]), ""
                else:
                    reason = f"{r['city']!r} is {dd[k]:.0f} km from the city centre (> {max_distance_km:g} km)"
            elif len(cand) == 1:
                cid, m, reason = cand[0], "name", ""
            else:
                reason = (f"{len(cand)} cities are named {r['city']!r} (ids {', '.join(map(str, cand))}); give "
                          "city_id or lat/lon")
        matched.append(cid)
        how.append(m)
        why.append(reason)
        dist.append(d)
    out["matched_city_id"] = matched
    out["match"] = how
    out["unmatched_reason"] = why
    out["distance_km"] = dist
    return out


def _pick_years(m, year, min_valid_hours):
    """One measured row per matched city: ``year`` (int), or each city's first year with at least
    ``min_valid_hours`` valid hours (``"first"``; every year counts when the table has no
    ``valid_hours``), or the mean over the years that count (``"mean"``)."""
    ok = m[m["matched_city_id"].notna()].copy()
    if "valid_hours" in ok:
        enough = ok["valid_hours"].isna() | (ok["valid_hours"] >= min_valid_hours)
    else:
        enough = pd.Series(True, index=ok.index)
    if year not in ("first", "mean"):
        sel = ok[(ok["year"] == int(year)) & enough]
        return sel.drop_duplicates("matched_city_id", keep="first")
    ok = ok[enough].sort_values(["matched_city_id", "year", "row"])
    if year == "first":
        return ok.drop_duplicates("matched_city_id", keep="first")
    g = ok.groupby("matched_city_id", as_index=False)
    first = g.first()
    first["pm25_ug_m3"] = g["pm25_ug_m3"].mean()["pm25_ug_m3"].to_numpy()
    first["year"] = g["year"].agg(lambda y: f"{min(y)}-{max(y)}")["year"].to_numpy()
    return first


# --------------------------------------------------------------------------- statistics
def spearman(x, y):
    """Spearman rank correlation (Pearson correlation of average ranks); NaN below 3 pairs."""
    x, y = pd.Series(np.asarray(x, float)), pd.Series(np.asarray(y, float))
    if len(x) < 3:
        return float("nan")
    rx, ry = x.rank(), y.rank()
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def summarise(table, band=DEFAULT_BAND):
    """Distribution of the ratio, Spearman rho and band counts of a matched table."""
    r = table["ratio"].to_numpy(float)
    n = int(r.size)
    q = (lambda p: float(np.percentile(r, p))) if n else (lambda p: float("nan"))
    return {"n_cities": n, "ratio_median": q(50), "ratio_p10": q(10), "ratio_p90": q(90),
            "ratio_min": float(r.min()) if n else float("nan"), "ratio_max": float(r.max()) if n else float("nan"),
            "ratio_geometric_mean": float(np.exp(np.mean(np.log(r)))) if n else float("nan"),
            "fraction_above_1": float(np.mean(r > 1)) if n else float("nan"),
            "fraction_in_band": float(np.mean((r >= band[0]) & (r <= band[1]))) if n else float("nan"),
            "n_below_band": int(np.sum(r < band[0])), "n_above_band": int(np.sum(r > band[1])),
            "spearman_rho": spearman(table["modelled_ug_m3"], table["measured_ug_m3"])}


# --------------------------------------------------------------------------- the command
def _run_cities(run_dir):
    """Base-case rows of the run's cities.csv, with coordinates, and the run's summary."""
    from engine.report.html import base_scenario, with_coordinates
    from engine.report.runfolder import read_run

    cities, national, summary = read_run(run_dir)
    if "conc_ug_m3" not in cities:
        raise InputError(f"validate: {Path(run_dir) / 'cities.csv'} has no column conc_ug_m3 (modelled PM2.5)")
    base = base_scenario(summary, national)
    cb = with_coordinates(cities[cities["scenario"].astype(str) == str(base)].copy(), summary)
    if cb.empty:
        raise InputError(f"validate: {Path(run_dir) / 'cities.csv'} has no rows of the base scenario {base!r}")
    return cb, summary, base


def validate_run(run_dir, measured_path=None, *, out_dir=None, band=DEFAULT_BAND, year="first",
                 min_valid_hours=MIN_VALID_HOURS, max_distance_km=MAX_DISTANCE_KM, formats=("png", "svg"),
                 command="validate"):
    """Compare a run's base-case primary PM2.5 with a measured table; write the results.

    Writes into ``out_dir`` (default ``<run_dir>/validation``) through an output transaction:
    ``validation.csv`` (one row per matched city), ``unmatched.csv`` (measured rows without a
    city, and why), ``validation.json`` (the band, its source, the statistics), and the figures
    ``validation_scatter``, ``validation_ratio`` and ``validation_map`` (PNG, and SVG/PDF as asked).

    Returns
    -------
    dict : the contents of ``validation.json``
    """
    from engine.output.persist import write_json
    from engine.report.runfolder import RunOutput
    from engine.output.writers import write_csv
    from engine.report import validation_figures as vf

    run_dir = Path(run_dir)
    lo, hi = (float(b) for b in band)
    if not (0.0 < lo < hi):
        raise InputError(f"validate: --band {lo:g},{hi:g}: allowed 0 < low < high")
    if year not in ("first", "mean"):
        try:
            year = int(year)
        except (TypeError, ValueError):
            raise InputError(f"validate: --year {year!r}: allowed 'first', 'mean' or a year "
                             f"{YEAR_RANGE[0]}-{YEAR_RANGE[1]}") from None
    measured_path = Path(measured_path) if measured_path is not None else shipped_measured_path()
    measured = read_measured(measured_path)
    cb, summary, base = _run_cities(run_dir)
    m = match_cities(measured, cb, max_distance_km=max_distance_km)
    picked = _pick_years(m, year, min_valid_hours)
    cbi = cb.set_index("city_id")
    rows = []
    for _, r in picked.iterrows():
        cid = int(r["matched_city_id"])
        c = cbi.loc[cid]
        pid = int(c["province_id"]) if "province_id" in cbi else int(str(cid)[:2]) * 10000
        mod, meas = float(c["conc_ug_m3"]), float(r["pm25_ug_m3"])
        ratio = mod / meas
        rows.append({"city_id": cid, "name": c.get("name", ""), "name_en": c.get("name_en", ""),
                     "province_id": pid, "region": REGIONS.get(pid // 100000, "other"),
                     "lat": c.get("lat", np.nan), "lon": c.get("lon", np.nan), "year": r["year"],
                     "measured_ug_m3": meas, "modelled_ug_m3": mod, "ratio": ratio,
                     "in_band": bool(lo <= ratio <= hi),
                     "flag": "above 1 (more primary than total)" if ratio > 1 else
                     ("above band" if ratio > hi else ("below band" if ratio < lo else "")),
                     "valid_hours": r.get("valid_hours", np.nan), "match": r["match"],
                     "distance_km": r["distance_km"], "measured_line": int(r["row"])})
    table = pd.DataFrame(rows, columns=["city_id", "name", "name_en", "province_id", "region", "lat", "lon", "year",
                                        "measured_ug_m3", "modelled_ug_m3", "ratio", "in_band", "flag",
                                        "valid_hours", "match", "distance_km", "measured_line"])
    unmatched = m[m["matched_city_id"].isna()][[c for c in ("row", "city_id", "city", "year", "pm25_ug_m3",
                                                            "unmatched_reason") if c in m]]
    stats = summarise(table, (lo, hi))
    result = {
        "run_dir": str(run_dir.resolve()), "measured": str(measured_path.resolve()),
        "scenario": str(base), "modelled": "primary PM2.5, city exposure mean (cities.csv conc_ug_m3)",
        "measured_quantity": "total PM2.5, annual mean",
        "band": [lo, hi],
        "band_reason": ("modelled primary / measured total: the primary share of the annual mean in Chinese cities "
                        f"is {PRIMARY_SHARE[0]:.2f}-{PRIMARY_SHARE[1]:.2f} (Zhang et al. 2022, Atmos. Chem. Phys. "
                        "22:5495), widened about twofold either way for one monitor against a city mean, another "
                        "year than the model's 2010 and the spread between cities; above 1 is impossible"),
        "year_rule": (f"each city's first year with >= {min_valid_hours} valid hours" if year == "first" else
                      f"mean of the years with >= {min_valid_hours} valid hours" if year == "mean" else
                      f"year {year}"),
        "statistics": stats, "n_measured_rows": int(len(measured)), "n_unmatched_rows": int(len(unmatched)),
        "outside_band": table.loc[~table["in_band"], ["city_id", "name_en", "ratio", "flag"]].to_dict("records"),
        "urban": ((summary.get("config") or {}).get("dispersion") or {}).get("urban"),
    }
    formats = tuple(dict.fromkeys(("png",) + tuple(f.lower().lstrip(".") for f in formats)))
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad:
        raise InputError(f"validate: image format(s) {bad} not supported; allowed png, svg, pdf")
    # RUN_DIR/validation amends the run's transaction (the run keeps verifying); elsewhere its own
    with RunOutput(run_dir, out_dir, "validation", inputs=[measured_path], command=command,
                   config={"band": [lo, hi], "year": str(year), "min_valid_hours": min_valid_hours,
                           "max_distance_km": max_distance_km}) as out:
        stage = out.folder
        write_csv(table, stage / "validation.csv")
        write_csv(unmatched, stage / "unmatched.csv")
        result["figures"] = vf.draw_all(table, cb, stage, formats, (lo, hi), stats, REGIONS.values())
        write_json(result, stage / "validation.json")
    result["out_dir"] = str(out.final)
    return result


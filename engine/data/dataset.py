"""City, province and grid-region tables: load, validate schema and units, derive the rest of
province (ROP = province - its cities).

A data set is a folder with three CSV files (lines starting with ``#`` are comments):

``cities.csv``     one row per city (``city_id`` unique)
``provinces.csv``  one row per province (``province_id`` unique); activity columns are
                   provincial TOTALS, cities included
``grids.csv``      the regional power grids (``grid_region`` names)

Units are part of the column names (``_mt`` megatonnes, ``_mtce`` megatonnes of coal
equivalent, ``_twh`` terawatt-hours, ``_m2`` square metres, ``_km2`` square kilometres,
``_100m_cny`` 10^8 yuan). :func:`validate_dataset` reports every problem at once.

Example
-------
>>> data = load_dataset()                 # the embedded default (654 cities, 31 provinces)
>>> data.rop.loc[110000, "population"]    # doctest: +SKIP
785106
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import InputError, InputErrors

__all__ = ["NationalData", "load_dataset", "validate_dataset", "CITY_COLUMNS", "PROVINCE_COLUMNS",
           "ACTIVITY_COLUMNS", "select_cities", "default_data_dir", "city_labels",
           "add_city_labels", "plausible_ranges", "plausibility_problems", "PLAUSIBILITY_FACTOR"]

#: activity columns carried by cities and provinces (ROP = province - cities), with units
ACTIVITY_COLUMNS = {
    "area_km2": "km2",
    "population": "persons",
    "urban_population": "persons",
    "households": "households",
    "gdp_primary_100m_cny": "1e8 CNY",
    "gdp_secondary_100m_cny": "1e8 CNY",
    "gdp_tertiary_100m_cny": "1e8 CNY",
    "steel_mt": "Mt crude steel",
    "pig_iron_mt": "Mt pig iron",
    "cement_mt": "Mt cement",
    "industrial_boiler_mtce": "Mtce",
    "fuel_chemicals_mtce": "Mtce",
    "fuel_food_beverage_mtce": "Mtce",
    "fuel_textiles_mtce": "Mtce",
    "fuel_pulp_paper_mtce": "Mtce",
    "fuel_other_key_mtce": "Mtce",
    "power_generation_twh": "TWh (fossil thermal)",
    "urban_floor_area_m2": "m2",
    "heating_mtce": "Mtce",
    "des_floor_area_m2": "m2",
    "cooking_mtce": "Mtce",
    "elec_steel_twh": "TWh",
    "elec_cement_twh": "TWh",
    "elec_other_industry_twh": "TWh",
    "elec_buildings_twh": "TWh",
    "elec_other_twh": "TWh",
    "fuel_other_mtce": "Mtce",
}
_CITY_ONLY = {
    "city_id": ("int", None, None),
    "name": ("str", None, None),
    "province_id": ("int", None, None),
    "grid_region": ("str", None, None),
    "lat": ("float", 15.0, 55.0),
    "lon": ("float", 70.0, 140.0),
    "centroid_lat": ("float", 15.0, 55.0),
    "centroid_lon": ("float", 70.0, 140.0),
    "hdd_k_day": ("float", 0.0, 10000.0),
    "heating_zone": ("float", 0.0, 1.0),
}
_PROVINCE_ONLY = {
    "province_id": ("int", None, None),
    "name": ("str", None, None),
    "grid_region": ("str", None, None),
    "centroid_lat": ("float", 15.0, 55.0),
    "centroid_lon": ("float", 70.0, 140.0),
    "hdd_k_day": ("float", 0.0, 10000.0),
    "heating_zone": ("float", 0.0, 1.0),
}
CITY_COLUMNS = {**_CITY_ONLY, **{k: ("float", 0.0, None) for k in ACTIVITY_COLUMNS}}
PROVINCE_COLUMNS = {**_PROVINCE_ONLY, **{k: ("float", 0.0, None) for k in ACTIVITY_COLUMNS}}
CITY_COLUMNS["area_km2"] = PROVINCE_COLUMNS["area_km2"] = ("float", 0.0, None)
# a place with no area or nobody in it cannot carry per-area emissions or per-person exposure
#: columns whose values must be strictly above their minimum
_OPEN_LOW = ("area_km2", "population")
#: 6-digit 2010 administrative codes (GB/T 2260); other positive integers are accepted
_ID_RANGE = (1, 999_999_999)
#: plausibility margin: a value may be this many times the extreme of the embedded 2010 data set
PLAUSIBILITY_FACTOR = 10.0
_NOT_SUMMED = ("centroid_lat", "centroid_lon", "hdd_k_day", "heating_zone")
# relative slack for "cities exceed their province" (CSV rounding to 6 significant digits)
_SUM_RTOL = 1e-4


@dataclasses.dataclass(frozen=True)
class NationalData:
    """A validated data set.

    Attributes
    ----------
    cities : DataFrame indexed by ``city_id``
    provinces : DataFrame indexed by ``province_id`` (provincial totals)
    rop : DataFrame indexed by ``province_id``: province minus its cities (>= 0), with the
        province's climate and grid region
    grids : DataFrame of grid regions
    source : str
        folder the tables came from
    """

    cities: pd.DataFrame
    provinces: pd.DataFrame
    rop: pd.DataFrame
    grids: pd.DataFrame
    source: str

    @property
    def places(self):
        """Cities then ROPs as one table (index ``place``: ``c<city_id>`` / ``r<province_id>``)."""
        c = self.cities.reset_index()
        c.insert(0, "place", "c" + c["city_id"].astype(str))
        c["kind"] = "city"
        r = self.rop.reset_index()
        r.insert(0, "place", "r" + r["province_id"].astype(str))
        r["kind"] = "rop"
        r["city_id"] = -1
        return pd.concat([c, r], ignore_index=True).set_index("place")


def default_data_dir():
    return Path(str(resources.files("engine") / "data"))


#: a header line ``# rows: N`` declares the number of data rows, so that a file cut at a line
#: boundary (which still parses) is caught; the embedded data set carries it
_ROWS_LINE = re.compile(r"^#\s*rows:\s*(\S+)\s*$")


def _declared_rows(path):
    """N of a ``# rows: N`` header line (in the leading comment lines), or None; ValueError if not a count."""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.startswith("#"):
                return None
            m = _ROWS_LINE.match(line.strip())
            if m:
                v = m.group(1)
                if not v.isdigit():
                    raise ValueError(v)  # not a count
                return int(v)
    return None


def _read(path, problems):
    if not path.exists():
        problems.append(f"{path}: file is missing")
        return None
    try:
        df = pd.read_csv(path, comment="#")
    except Exception as exc:  # malformed CSV
        problems.append(f"{path}: cannot be read as CSV ({exc})")
        return None
    try:
        want = _declared_rows(path)
    except ValueError as exc:
        problems.append(f"{path}: header line '# rows: {exc}' is not a row count (a whole number >= 0)")
        return df
    if want is not None and want != len(df):
        problems.append(f"{path}: the header line '# rows: {want}' declares {want} data rows but {len(df)} were "
                        f"read; the file is {'truncated' if len(df) < want else 'longer than declared'} "
                        "(restore it, or correct the '# rows:' line after editing it on purpose)")
    return df


def _shown(value):
    """A cell as the user typed it: text quoted, a missing cell as 'empty'."""
    if isinstance(value, str):
        return repr(value)
    return "empty" if pd.isna(value) else str(value)


def _check_columns(df, spec, path, key, problems):
    """Schema, type and range checks; every problem is appended, none raised."""
    cols = list(df.columns)
    for col, (kind, lo, hi) in spec.items():
        if col not in df.columns:
            hint = difflib.get_close_matches(col, cols, n=1, cutoff=0.6)
            unit_hint = ""
            if hint:
                unit_hint = (f"; found '{hint[0]}' - wrong unit or name? this column must be "
                             f"'{col}'" + (f" in {ACTIVITY_COLUMNS[col]}" if col in ACTIVITY_COLUMNS else ""))
            problems.append(f"{path}: missing column '{col}'{unit_hint}")
            continue
        s = df[col]
        if kind in ("int", "float"):
            unit = f" [{ACTIVITY_COLUMNS[col]}]" if col in ACTIVITY_COLUMNS else ""
            num = pd.to_numeric(s, errors="coerce")
            bad = num.isna()
            for i in np.flatnonzero(bad.values)[:5]:
                problems.append(f"{path}: row {i + 1} ({key}={df[key].iloc[i] if key in df else '?'}): "
                                f"column '{col}' = {_shown(s.iloc[i])} is not a number")
            if bad.sum() > 5:
                problems.append(f"{path}: column '{col}': {bad.sum() - 5} more non-numeric values")
            inf = ~bad & ~np.isfinite(num.astype(float))
            for i in np.flatnonzero(inf.values)[:5]:
                problems.append(f"{path}: row {i + 1} ({key}={df[key].iloc[i] if key in df else '?'}): "
                                f"column '{col}' = {num.iloc[i]} is not finite{unit}")
            num = num.where(~inf)
            if kind == "int":
                lo, hi = _ID_RANGE
                frac = num.notna() & (num != np.round(num))
                for i in np.flatnonzero(frac.values)[:5]:
                    problems.append(f"{path}: row {i + 1}: column '{col}' = {num.iloc[i]:g} is not an integer")
            if lo is not None:
                open_low = col in _OPEN_LOW
                low = (num <= lo) if open_low else (num < lo)
                for i in np.flatnonzero(low.values)[:5]:
                    neg = " (negative energy/activity)" if lo == 0.0 and num.iloc[i] < 0 else ""
                    what = f"must be above {lo:g}" if open_low else f"is below the allowed minimum {lo:g}"
                    problems.append(f"{path}: row {i + 1} ({key}={df[key].iloc[i] if key in df else '?'}): "
                                    f"column '{col}' = {num.iloc[i]:g}{unit} {what}{neg}")
                if low.sum() > 5:
                    problems.append(f"{path}: column '{col}': {low.sum() - 5} more values below {lo:g}")
            if hi is not None:
                high = num > hi
                for i in np.flatnonzero(high.values)[:5]:
                    problems.append(f"{path}: row {i + 1} ({key}={df[key].iloc[i] if key in df else '?'}): "
                                    f"column '{col}' = {num.iloc[i]:g}{unit} is above the allowed maximum {hi:g}")
        elif kind == "str":
            blank = s.isna() | (s.astype(str).str.strip() == "")
            for i in np.flatnonzero(blank.values)[:5]:
                problems.append(f"{path}: row {i + 1}: column '{col}' is empty")
    if len(df) == 0:
        problems.append(f"{path}: no data rows")
    if key in df.columns:
        dup = df[key][df[key].duplicated(keep=False)]
        for v in sorted(set(dup.tolist()))[:10]:
            rows = [int(i) + 1 for i in np.flatnonzero((df[key] == v).values)]
            problems.append(f"{path}: duplicate {key} {v} in rows {rows}")


def validate_dataset(path=None):
    """Check a data folder and return ``(problems, tables)``; never raises on data problems.

    Checks: missing files and columns (with a hint when a column exists under another unit),
    non-numeric values, negative energy/activity, coordinates out of range, duplicate ids,
    unknown province or grid region, cities whose sum exceeds their province.
    """
    folder = Path(path) if path else default_data_dir()
    problems = []
    if not folder.is_dir():
        return [f"{folder}: data folder does not exist"], None
    cp, pp, gp = folder / "cities.csv", folder / "provinces.csv", folder / "grids.csv"
    cities, provs, grids = _read(cp, problems), _read(pp, problems), _read(gp, problems)
    if cities is not None:
        _check_columns(cities, CITY_COLUMNS, cp, "city_id", problems)
    if provs is not None:
        _check_columns(provs, PROVINCE_COLUMNS, pp, "province_id", problems)
    if grids is not None and "grid_region" not in grids.columns:
        problems.append(f"{gp}: missing column 'grid_region'")
    if cities is None or provs is None or grids is None:
        return problems, None
    needed = {"city_id", "province_id", "grid_region"}
    if not needed <= set(cities.columns) or not {"province_id", "grid_region"} <= set(provs.columns) \
            or "grid_region" not in grids.columns:
        return problems, None  # keys missing: cross-table checks would only repeat errors
    problems += plausibility_problems(cities, cp, "city_id", "city")
    problems += plausibility_problems(provs, pp, "province_id", "province")

    def ids_ok(col):
        v = pd.to_numeric(col, errors="coerce")
        return bool(v.notna().all() and np.isfinite(v).all() and (v == np.round(v)).all())

    if not (ids_ok(cities["city_id"]) and ids_ok(cities["province_id"]) and ids_ok(provs["province_id"])):
        return problems, None  # text or fractions in an id column, already listed above

    def text(col):  # pandas >= 3 keeps NaN through astype(str); an empty cell is ""
        return col.map(lambda v: "" if pd.isna(v) else str(v))

    blank = text(grids["grid_region"]).str.strip() == ""
    for i in np.flatnonzero(blank.values)[:5]:
        problems.append(f"{gp}: row {i + 1}: column 'grid_region' is empty")
    grid_names = set(text(grids["grid_region"])) - {""}
    for df, p, key in ((cities, cp, "city_id"), (provs, pp, "province_id")):
        unknown = ~text(df["grid_region"]).isin(grid_names)
        for i in np.flatnonzero(unknown.values)[:10]:
            problems.append(f"{p}: row {i + 1} ({key}={df[key].iloc[i]}): unknown grid_region "
                            f"'{df['grid_region'].iloc[i]}' (known: {', '.join(sorted(grid_names))})")
    prov_ids = set(provs["province_id"].astype(int))
    unknown = ~cities["province_id"].astype(int).isin(prov_ids)
    for pid in sorted(set(cities["province_id"][unknown].astype(int))):
        rows = [int(i) + 1 for i in np.flatnonzero((cities["province_id"] == pid).values)]
        more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
        problems.append(f"{cp}: rows {rows[:5]}{more}: unknown province_id {pid} (not in {pp})")
    if not unknown.any():
        pg = provs.drop_duplicates("province_id").set_index("province_id")["grid_region"]
        mism = cities["grid_region"].values != pg.loc[cities["province_id"].astype(int)].values
        for i in np.flatnonzero(mism)[:10]:
            problems.append(f"{cp}: row {i + 1} (city_id={cities['city_id'].iloc[i]}): grid_region "
                            f"'{cities['grid_region'].iloc[i]}' differs from its province's "
                            f"'{pg.loc[int(cities['province_id'].iloc[i])]}'")
        summed = [c for c in ACTIVITY_COLUMNS if c not in _NOT_SUMMED
                  and c in cities.columns and c in provs.columns
                  and pd.api.types.is_numeric_dtype(cities[c]) and pd.api.types.is_numeric_dtype(provs[c])]
        tot = cities.groupby("province_id")[summed].sum()
        pv = provs.drop_duplicates("province_id").set_index("province_id").loc[tot.index, summed]
        over = tot > pv * (1 + _SUM_RTOL) + 1e-9
        for pid, row in over.iterrows():
            for col in np.array(summed)[row.values]:
                problems.append(f"{cp}: cities of province_id {pid} sum to {tot.loc[pid, col]:.6g} in "
                                f"'{col}', more than the province total {pv.loc[pid, col]:.6g} in {pp}")
    return problems, (None if problems else (cities, provs, grids))


@functools.lru_cache(maxsize=1)
def plausible_ranges():
    """Plausibility limits derived from the embedded 2010 data set (``engine/data``).

    Returns
    -------
    dict with
        ``per_capita`` : {kind: {column: (max value per person in the 2010 data, row id)}} for
            kind ``city`` and ``province`` and every activity column but area and population
            [column unit per person]
        ``density`` : {kind: (min, max)} population density of the 2010 data [persons km-2]
        ``national`` : {column: national 2010 total (sum of the provinces)} [column unit]

    A value is implausible when it exceeds :data:`PLAUSIBILITY_FACTOR` times the 2010 national
    total, its per-person intensity exceeds that factor times the highest of any 2010 place of
    its kind, or its density lies outside the 2010 range widened by that factor. Intensities,
    not levels, are compared so that a large province is not flagged while a sector entered in
    the wrong unit (steel in kt in ``steel_mt``: x1000) is.
    """
    d = default_data_dir()
    tabs = {"city": pd.read_csv(d / "cities.csv", comment="#"),
            "province": pd.read_csv(d / "provinces.csv", comment="#")}
    keys = {"city": "city_id", "province": "province_id"}
    out = {"per_capita": {}, "density": {}, "national": {}}
    for kind, df in tabs.items():
        pc = {}
        for col in ACTIVITY_COLUMNS:
            if col in ("area_km2", "population") or col not in df:
                continue
            v = df[col] / df["population"]
            i = int(np.nanargmax(v.values))
            pc[col] = (float(v.iloc[i]), int(df[keys[kind]].iloc[i]))
        out["per_capita"][kind] = pc
        dens = df["population"] / df["area_km2"]
        out["density"][kind] = (float(dens.min()), float(dens.max()))
    out["national"] = {col: float(tabs["province"][col].sum()) for col in ACTIVITY_COLUMNS
                       if col in tabs["province"]}
    return out


def plausibility_problems(df, path, key, kind):
    """Values that pass the schema but are implausible against the 2010 data (see :func:`plausible_ranges`).

    Parameters
    ----------
    df : DataFrame with numeric activity columns and ``population``, ``area_km2``
    path : file name used in the messages
    key : id column (``city_id`` / ``province_id``)
    kind : ``"city"`` or ``"province"``

    Returns
    -------
    list of str, one per problem (at most 5 per column), each naming the row, id, column, the
    value with its unit, and the allowed limit with its source.
    """
    f = PLAUSIBILITY_FACTOR
    rng = plausible_ranges()
    problems = []
    ids = df[key].values if key in df else np.full(len(df), "?")
    pop = pd.to_numeric(df["population"], errors="coerce").astype(float) if "population" in df else None

    def add(mask, msg):
        idx = np.flatnonzero(np.asarray(mask, dtype=bool))
        for i in idx[:5]:
            problems.append(f"{path}: row {i + 1} ({key}={ids[i]}): " + msg(i))
        if idx.size > 5:
            problems.append(f"{path}: {idx.size - 5} more such rows")

    for col, unit in ACTIVITY_COLUMNS.items():
        if col not in df or col not in rng["national"]:
            continue
        v = pd.to_numeric(df[col], errors="coerce").values.astype(float)
        v = np.where(np.isfinite(v), v, np.nan)  # non-numbers and inf are reported by the schema check
        cap = f * rng["national"][col]
        add(v > cap, lambda i: (f"column '{col}' = {v[i]:.6g} [{unit}] is more than {f:g}x the national 2010 "
                                f"total {rng['national'][col]:.6g} (limit {cap:.6g}); wrong unit or a typo?"))
        if pop is None or col not in rng["per_capita"][kind]:
            continue
        top, at = rng["per_capita"][kind][col]
        with np.errstate(all="ignore"):  # an overflow to inf is judged "above the limit"
            per = v / pop.values
        lim = f * top
        add((per > lim) & (v <= cap) & (pop.values > 0),
            lambda i: (f"column '{col}' = {v[i]:.6g} [{unit}] is {per[i]:.3g} {unit} per person, more than "
                       f"{f:g}x the highest of any {kind} in the 2010 data ({top:.3g} per person, {at}; "
                       f"limit {lim:.3g}); wrong unit (e.g. thousands instead of millions)?"))
    if pop is not None and "area_km2" in df:
        area = pd.to_numeric(df["area_km2"], errors="coerce").values.astype(float)
        lo, hi = rng["density"][kind]
        with np.errstate(all="ignore"):  # an overflow to inf is judged "above the limit"
            dens = pop.values / area
        bad = (area > 0) & (pop.values > 0) & ((dens > f * hi) | (dens < lo / f))
        add(bad, lambda i: (f"population {pop.values[i]:.6g} on area_km2 = {area[i]:.6g} [km2] is "
                            f"{dens[i]:.4g} persons per km2, outside {f:g}x the 2010 range of {kind} densities "
                            f"[{lo:.3g}, {hi:.4g}] -> allowed [{lo / f:.3g}, {f * hi:.4g}]; area in m2 or ha, "
                            "or population in thousands?"))
    return problems


def load_dataset(path=None):
    """Load and validate a data set; raise :class:`InputErrors` listing every problem.

    Parameters
    ----------
    path : path-like, optional
        Folder with cities.csv, provinces.csv, grids.csv. Default: the embedded data set.
    """
    folder = Path(path) if path else default_data_dir()
    problems, tables = validate_dataset(folder)
    if problems:
        raise InputErrors(problems, header=f"data set {folder} has problems")
    cities, provs, grids = tables
    cities = cities.astype({"city_id": int, "province_id": int}).set_index("city_id", drop=False)
    cities.index.name = "city_id"
    cities = cities.drop(columns="city_id")
    provs = provs.astype({"province_id": int}).set_index("province_id")
    summed = [c for c in ACTIVITY_COLUMNS]
    tot = cities.groupby("province_id")[summed].sum().reindex(provs.index, fill_value=0.0)
    rop = (provs[summed] - tot).clip(lower=0.0)
    for col in ("name", "grid_region", "centroid_lat", "centroid_lon", "hdd_k_day", "heating_zone"):
        rop[col] = provs[col]
    if "name_en" in provs:
        rop["name_en"] = provs["name_en"]
    return NationalData(cities=cities, provinces=provs, rop=rop, grids=grids, source=str(folder))


#: old postal romanisations people still type, for "did you mean" only (never matched silently)
_ALIASES = {"peking": "Beijing", "canton": "Guangzhou", "nanking": "Nanjing", "tientsin": "Tianjin",
            "chungking": "Chongqing", "tsingtao": "Qingdao", "sian": "Xi'an", "amoy": "Xiamen",
            "mukden": "Shenyang", "hangchow": "Hangzhou", "soochow": "Suzhou"}


def city_labels(data):
    """Names and coordinates of every city, for tables people map.

    Returns
    -------
    DataFrame indexed by ``city_id`` with ``name`` (Chinese), ``name_en`` (Hanyu Pinyin, see
    ``engine/data/build_names.py``; the Chinese name where a data set has none), ``province_id``,
    ``province`` and ``province_en`` (from ``provinces.csv``), ``lat``/``lon`` [degrees] (the
    city seat; the footprint centroid where a data set has no seat) and ``centroid_lat``/
    ``centroid_lon`` [degrees].
    """
    c = data.cities
    out = pd.DataFrame(index=c.index)
    out["name"] = c["name"].astype(str)
    out["name_en"] = c["name_en"].astype(str) if "name_en" in c else out["name"]
    out["province_id"] = c["province_id"].astype(int)
    p = data.provinces
    out["province"] = (c["province"].astype(str) if "province" in c
                       else out["province_id"].map(p["name"]).astype(str))
    out["province_en"] = (out["province_id"].map(p["name_en"]).fillna(out["province"]).astype(str)
                          if "name_en" in p else out["province"])
    for col, fallback in (("lat", "centroid_lat"), ("lon", "centroid_lon")):
        out[col] = (c[col] if col in c else c[fallback]).astype(float)
    out["centroid_lat"] = c["centroid_lat"].astype(float)
    out["centroid_lon"] = c["centroid_lon"].astype(float)
    return out


def add_city_labels(table, data, *, after="name"):
    """``table`` (one row per city and scenario, column ``city_id``) with ``name_en``,
    ``province_en``, ``lat``, ``lon`` [degrees] (and ``name``, ``province`` when missing) inserted
    after column ``after``; existing columns are kept as they are."""
    lab = city_labels(data)
    out = table.copy()
    pos = out.columns.get_loc(after) + 1 if after in out.columns else len(out.columns)
    ids = out["city_id"].astype(int)
    for col in ("name", "name_en", "province", "province_en", "lat", "lon"):
        if col not in out.columns:
            out.insert(pos, col, ids.map(lab[col]).values)
            pos += 1
    return out


def _suggest(tok, data, n=3):
    """Up to ``n`` "did you mean" labels for an unmatched ``--cities`` token (difflib, case-blind)."""
    lab = city_labels(data)
    cands = {}
    for cid, r in lab.iterrows():
        label = f"{r['name_en']} ({r['name']}, {cid})"
        for key in (r["name"], r["name_en"], r["name_en"].replace("'", "")):
            cands.setdefault(str(key).lower(), label)
    for pid, r in data.provinces.iterrows():
        for key in (r.get("name"), r.get("name_en")):
            if isinstance(key, str) and key:
                cands.setdefault(key.lower(), f"{r.get('name_en', key)} (province {r.get('name', '')}, {pid})")
    for alias, target in _ALIASES.items():
        if target.lower() in cands:
            cands.setdefault(alias, cands[target.lower()])
    t = tok.strip().lower()
    out = []
    for key in difflib.get_close_matches(t, list(cands), n=n + 2, cutoff=0.5):
        if cands[key] not in out:
            out.append(cands[key])
    return out[:n]


def select_cities(data, selector):
    """Restrict a data set to some cities (their provinces and ROPs are kept whole).

    ``selector``: ``"all"``, or comma-separated city ids, city names or province names/ids.
    """
    if selector is None or selector == "all":
        return data
    if not any(t.strip() for t in str(selector).split(",")):
        raise InputError(f"--cities / [data] cities = {selector!r} selects no city; give 'all' or comma-separated "
                         "city ids, city names or provinces (an empty value is refused, not read as 'all')")
    keep = np.zeros(len(data.cities), bool)
    c = data.cities
    for tok in (t.strip() for t in str(selector).split(",")):
        if not tok:
            continue
        hit = (c["name"] == tok) | (c["province"] == tok) if "province" in c else (c["name"] == tok)
        hit = hit | (c["name"] == tok + "市")  # Chinese name without its 市 suffix
        if "name_en" in c:  # English (Pinyin) city names, case-blind, apostrophe optional
            low = tok.lower().replace("'", "")
            hit = hit | (c["name_en"].astype(str).str.lower().str.replace("'", "") == low)
        if tok.isdigit():
            hit = hit | (c.index == int(tok)) | (c["province_id"] == int(tok))
        if "name_en" in data.provinces:
            pids = data.provinces.index[data.provinces["name_en"].str.lower() == tok.lower()]
            hit = hit | c["province_id"].isin(pids)
        if not hit.any():
            close = _suggest(tok, data)
            raise InputError(f"--cities: '{tok}' matches no city id, city name (Chinese or English) or province"
                             + (f"; did you mean {'; '.join(close)}?" if close else ""))
        keep |= hit.values
    return dataclasses.replace(data, cities=c[keep])

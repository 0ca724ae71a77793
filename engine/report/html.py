"""Figures and a static HTML report of a run (and, optionally, of a sensitivity sweep).

:func:`build_report` reads a run folder (``cities.csv``, ``national.csv``, ``summary.json``,
``concentration.nc``, ``city_fields.nc`` or ``cities/c<id>.nc``) and writes PNG and SVG figures
and ``index.html`` into ``out_dir``. The page needs no server and no network: the images lie
beside it and the tables are in it.

Figures (analogues of Ramaswami et al. 2017, R17):

* ``fig2_national_reductions`` national CO2 cut by strategy, ours beside R17 Tables 1-2, and
  by scenario [Mt CO2 yr-1];
* ``fig3_city_co2_cut`` map of the city CO2 cut [% of the city's base] and the cut against the
  heat source/sink ratio by city typology (R17 Fig. 3);
* ``fig4_quadrants`` percentage CO2 cut against percentage deaths avoided, High-High marked,
  and the map of the four classes (R17 Fig. 4);
* ``concentration_map`` the national mosaic of primary PM2.5 [ug m-3] and its reduction;
* ``city_field`` one city's field: total, from its own emissions, from its rest of province;
* with ``<run_dir>/validation`` (``cobenefits validate``): its scatter, ratio and map figures and
  tables (:func:`_validation`);
* with a sweep folder: ``sweep_indices`` (Sobol S1/ST or Morris mu*/sigma bars) and
  ``sweep_avoided_deaths`` (distribution of national avoided deaths).

Colours: viridis / cividis for fields, Okabe & Ito (2008) for categories (colour-blind safe).
matplotlib runs on its Agg canvas (no display, no pyplot state).
"""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import InputError
from engine.report.runfolder import pick_city, run_name
from engine.report.runfolder import read_run as _read_run

__all__ = ["build_report", "check_run_folder", "run_name", "headline", "headline_lines", "PAPER_TABLE_CO2_CUT_MT", "PAPER_SCENARIO_CO2_CUT_MT",
           "OKABE_ITO", "ReportResult"]

log = logging.getLogger("cobenefits")

#: Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency
OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"]

#: R17 (Ramaswami et al. 2017, Nature Climate Change 7:736) Table 1 (single-sector efficiency,
#: FYP) and Table 2 (cross-sector symbiosis on top of FYP): national CO2 cut per line item [Mt].
#: Keys are the ``<item>_co2_cut_mt`` columns of ``national.csv``.
PAPER_TABLE_CO2_CUT_MT = {
    "steel": 66.3, "power": 341.6, "cement": 44.3, "buildings": 11.6, "industrial_boiler": 93.0,
    "other_industry": 197.0,
    "high_grade_orc": 14.5, "medium_cascade1_industry": 19.6, "medium_cascade2_existing_des": 22.9,
    "medium_cascade3_orc": 12.5, "low_grade_new_4gdh": 152.0, "fly_ash_cement": 9.2, "steel_slag_cement": 39.4,
}
#: R17 national totals per scenario [Mt CO2]: FYP single-sector 754; + symbiosis 270.1;
#: High-Efficiency single-sector 1,476 + symbiosis 218 (main text and Tables 1-2)
PAPER_SCENARIO_CO2_CUT_MT = {"fyp_efficiency": 754.0, "fyp_symbiosis": 754.0 + 270.1,
                             "high_efficiency_symbiosis": 1476.0 + 218.0}
#: R17: avoided deaths per year in FYP-Efficiency-plus-Symbiosis, mean (+10,240 / -21,874)
PAPER_AVOIDED_DEATHS = (47230.0, 47230.0 - 21874.0, 47230.0 + 10240.0)
PAPER_CITATION = "Ramaswami et al. 2017, Nature Climate Change 7:736, Tables 1-2"
_TABLE1 = ("steel", "power", "cement", "buildings", "industrial_boiler", "other_industry")
_LABELS = {
    "steel": "steel", "power": "power", "cement": "cement", "buildings": "buildings heating & cooking",
    "industrial_boiler": "industrial boilers", "other_industry": "other key industry",
    "high_grade_orc": "high-grade heat -> ORC power", "medium_cascade1_industry": "medium-grade -> industry",
    "medium_cascade2_existing_des": "medium-grade -> existing DES", "medium_cascade3_orc": "medium-grade -> ORC",
    "low_grade_new_4gdh": "low-grade -> new 4GDH", "fly_ash_cement": "fly ash -> cement",
    "steel_slag_cement": "steel slag -> cement",
}
_QUADRANTS = ("High-High", "High CO2, low health", "Low CO2, high health", "Low-Low")
#: cities whose base-case concentration is below the counterfactual: no attributable deaths, no percentage
_NO_DEATHS = "no base-case deaths"


@dataclasses.dataclass
class ReportResult:
    out_dir: Path
    index: Path
    figures: list  # Path of every PNG written
    skipped: dict  # figure -> reason
    headline: dict


# --------------------------------------------------------------------------- reading
def check_run_folder(run_dir, *, city=None, scenario=None, formats=("png",)):
    """Raise :class:`InputError` unless ``run_dir`` holds a readable run and the options fit it
    (image formats, ``--scenario``, ``--city``): every check of the report, before any writing."""
    cities, national, summary = _read_run(run_dir)
    _check_formats(formats)
    base = _base(summary, national)
    scen = _check_scenario(run_dir, national, scenario) or _main_scenario(list(national["scenario"].astype(str)), base)
    if city is not None:
        pick_city(cities[cities.scenario.astype(str) == scen].set_index("city_id", drop=False), city)


def _check_formats(formats):
    formats = tuple(dict.fromkeys(("png",) + tuple(str(f).lower().lstrip(".") for f in formats)))
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if bad:
        raise InputError(f"report: image format(s) {bad} not supported; allowed png, svg, pdf")
    return formats


def _check_scenario(run_dir, national, scenario):
    scen_all = list(national["scenario"].astype(str))
    if scenario is not None and scenario not in scen_all:
        raise InputError(f"report: --scenario {scenario!r} is not in {Path(run_dir) / 'national.csv'} "
                         f"(scenarios: {', '.join(scen_all)})")
    return scenario


def _with_coordinates(cities, summary):
    """Add lat/lon/name_en from the data set when the run's table lacks them."""
    if {"lat", "lon", "name_en"} <= set(cities.columns):
        return cities
    try:
        from engine.data.dataset import add_city_labels, load_dataset

        ddir = ((summary.get("config") or {}).get("data") or {}).get("dir") or None
        return add_city_labels(cities, load_dataset(ddir))
    except Exception as exc:  # a data set that moved: maps are skipped, not the report
        log.warning("report: no city coordinates (%s); maps are skipped", exc)
        return cities


def _scenario_names(ds):
    if "scenario_name" in ds:
        return [str(s) for s in ds["scenario_name"].values]
    return [str(s) for s in ds["scenario"].values]


def _base(summary, national):
    return summary.get("base_scenario") or str(national["scenario"].iloc[0])


def _main_scenario(scenarios, base):
    """The scenario the city figures show: R17's FYP-Efficiency-plus-Symbiosis when present."""
    others = [s for s in scenarios if s != base]
    for s in ("fyp_symbiosis",):
        if s in others:
            return s
    return others[-1] if others else base


# --------------------------------------------------------------------------- numbers
def headline(run_dir):
    """The run's headline numbers per scenario (dict): national CO2 and its cut [Mt], avoided
    deaths (mean, 95 % interval) [deaths yr-1], population-weighted concentration [ug m-3],
    High-High cities."""
    cities, national, summary = _read_run(run_dir)
    return _headline(national, summary)


def _headline(national, summary):
    base = _base(summary, national)
    nat = national.set_index("scenario")
    out = {"base_scenario": base, "scenarios": {}}
    b = nat.loc[base] if base in nat.index else None
    for s, r in nat.iterrows():
        co2 = float(r.get("national_co2_mt", np.nan))
        cut = float(b["national_co2_mt"] - co2) if b is not None and "national_co2_mt" in r else float("nan")
        out["scenarios"][s] = {
            "national_co2_mt": co2, "co2_cut_mt": cut,
            "co2_cut_pct": 100.0 * cut / float(b["national_co2_mt"]) if b is not None and b["national_co2_mt"] else
            float("nan"),
            "avoided_deaths": [float(r.get(f"avoided_deaths_{q}", np.nan)) for q in ("mean", "p2_5", "p97_5")],
            "deaths": [float(r.get(f"deaths_{q}", np.nan)) for q in ("mean", "p2_5", "p97_5")],
            "pop_weighted_conc_ug_m3": float(r.get("pop_weighted_conc_ug_m3", np.nan)),
            "high_high_cities": (summary.get("scenarios", {}).get(s, {}) or {}).get("high_high_cities"),
        }
    out["n_cities"] = summary.get("n_cities")
    return out


def _fmt(x, digits=3):
    """A number to ``digits`` significant digits with thousands separators; '-' for NaN/None."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    x = float(x)
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    dec = max(0, digits - 1 - mag)
    return f"{round(x, dec if dec else digits - 1 - mag):,.{dec}f}"


def headline_lines(run_dir, report_dir=None):
    """The lines a run ends with: national CO2 cut and avoided deaths (95 % interval) per scenario,
    and where the report is."""
    h = headline(run_dir)
    lines = []
    for s, v in h["scenarios"].items():
        if s == h["base_scenario"]:
            continue
        a = v["avoided_deaths"]
        lines.append(f"{s}: national CO2 cut {_fmt(v['co2_cut_mt'])} Mt ({_fmt(v['co2_cut_pct'], 2)} %), "
                     f"avoided deaths {_fmt(a[0])} per year (95 % interval {_fmt(a[1])}-{_fmt(a[2])}) "
                     f"in {h['n_cities']} cities")
    if report_dir is not None:
        lines.append(f"report: {Path(report_dir) / 'index.html'}")
    return lines


# --------------------------------------------------------------------------- figures
def _figure(w=7.0, h=4.5, ncols=1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), layout="constrained")
    axes = fig.subplots(1, ncols) if ncols > 1 else fig.subplots()
    return fig, axes


def _save(fig, out_dir, name, formats):
    paths = []
    for ext in formats:
        p = Path(out_dir) / f"{name}.{ext}"
        fig.savefig(p, dpi=110 if ext == "png" else None, metadata={"Date": None} if ext == "svg" else None)
        paths.append(p)
    return paths


def _fig2(national, base, out_dir, formats):
    nat = national.set_index("scenario")
    items = [k for k in PAPER_TABLE_CO2_CUT_MT if f"{k}_co2_cut_mt" in nat.columns]
    if not items:
        raise ValueError("national.csv has no <item>_co2_cut_mt columns")
    # each line item from the scenario R17 reports it in: Table 1 in FYP-Efficiency, Table 2 in FYP+Symbiosis
    ours = []
    for k in items:
        want = "fyp_efficiency" if k in _TABLE1 else "fyp_symbiosis"
        col = nat[f"{k}_co2_cut_mt"]
        ours.append(float(col.get(want, col.drop(base, errors="ignore").max())))
    fig, (ax, ax2) = _figure(10.0, 5.0, ncols=2)
    y = np.arange(len(items))
    ax.barh(y - 0.2, ours, height=0.4, color=OKABE_ITO[4], label="this run")
    ax.barh(y + 0.2, [PAPER_TABLE_CO2_CUT_MT[k] for k in items], height=0.4, color=OKABE_ITO[0],
            label="R17 Tables 1-2")
    ax.set_yticks(y, [_LABELS.get(k, k) for k in items])
    ax.invert_yaxis()
    ax.set_xlabel("national CO$_2$ cut [Mt CO$_2$ yr$^{-1}$]")
    ax.set_title("a  by strategy (Table 1: FYP efficiency; Table 2: symbiosis)", loc="left", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    scen = [s for s in nat.index if s != base]
    cut = [float(nat.loc[base, "national_co2_mt"] - nat.loc[s, "national_co2_mt"]) if "national_co2_mt" in nat else
           np.nan for s in scen]
    x = np.arange(len(scen))
    ax2.bar(x - 0.2, cut, width=0.4, color=OKABE_ITO[4], label="this run")
    ax2.bar(x + 0.2, [PAPER_SCENARIO_CO2_CUT_MT.get(s, np.nan) for s in scen], width=0.4, color=OKABE_ITO[0],
            label="R17")
    ax2.set_xticks(x, [s.replace("_", "\n") for s in scen], fontsize=8)
    ax2.set_xlabel("scenario")
    ax2.set_ylabel("national CO$_2$ cut [Mt CO$_2$ yr$^{-1}$]")
    ax2.set_title("b  by scenario", loc="left", fontsize=10)
    ax2.legend(fontsize=8)
    fig.text(0.01, 0.0, f"R17 = {PAPER_CITATION}", fontsize=7)
    table = pd.DataFrame({"strategy": [_LABELS.get(k, k) for k in items], "this run [Mt]": ours,
                          "R17 [Mt]": [PAPER_TABLE_CO2_CUT_MT[k] for k in items]})
    return _save(fig, out_dir, "fig2_national_reductions", formats), table


def _map_axes(ax):
    ax.set_xlabel("longitude [°E]")
    ax.set_ylabel("latitude [°N]")
    ax.set_aspect(1.0 / math.cos(math.radians(35.0)))  # equal distances at mid-China latitude


def _fig3(cs, out_dir, formats, scenario):
    if not {"lat", "lon", "co2_reduction_pct"} <= set(cs.columns):
        raise ValueError("cities.csv has no lat/lon or co2_reduction_pct")
    has_b = {"heat_source_sink_ratio", "typology"} <= set(cs.columns)
    fig, axes = _figure(11.0 if has_b else 6.0, 4.8, ncols=2 if has_b else 1)
    ax = axes[0] if has_b else axes
    sc = ax.scatter(cs["lon"], cs["lat"], c=cs["co2_reduction_pct"], cmap="viridis", s=14, edgecolors="none")
    fig.colorbar(sc, ax=ax, label="city CO$_2$ cut [% of the city's base]", shrink=0.8)
    _map_axes(ax)
    ax.set_title(f"a  city CO$_2$ cut, {scenario}", loc="left", fontsize=10)
    if has_b:
        ax2 = axes[1]
        r = cs["heat_source_sink_ratio"].astype(float)
        ok = r > 0
        fixed = {"commercial": OKABE_ITO[4], "industrial": OKABE_ITO[5], "mixed": OKABE_ITO[2]}
        for k, (typ, g) in enumerate(cs[ok].groupby("typology")):
            colour = fixed.get(str(typ), OKABE_ITO[(k + 6) % 8])  # the same colour for a typology in every run
            ax2.scatter(g["heat_source_sink_ratio"], g["co2_reduction_pct"], s=12, color=colour,
                        label=f"{typ} (n={len(g)})", alpha=0.8, edgecolors="none")
        ax2.set_xscale("log")
        ax2.axvline(1.0, color="0.5", lw=0.8, ls="--")
        ax2.set_xlabel("waste-heat source / heat sink ratio [1]")
        ax2.set_ylabel("city CO$_2$ cut [% of the city's base]")
        ax2.set_title("b  cut against heat source/sink ratio, by typology", loc="left", fontsize=10)
        ax2.legend(fontsize=8)
    return _save(fig, out_dir, "fig3_city_co2_cut", formats)


def _quadrants(cs, cb):
    """Percentage CO2 cut and percentage deaths avoided per city, and the quadrant class
    (above/below the mean of all cities on each axis; R17 Fig. 4)."""
    co2 = cs["co2_reduction_pct"].astype(float) if "co2_reduction_pct" in cs else (
        100.0 * (cb["co2_t"] - cs["co2_t"]) / cb["co2_t"])
    base_deaths = cb["deaths_mean"].astype(float).replace(0.0, np.nan)
    dpct = 100.0 * cs["avoided_deaths_mean"].astype(float) / base_deaths
    ok = np.isfinite(dpct) & np.isfinite(co2)
    hi_c, hi_d = co2 > co2[ok].mean(), dpct > dpct[ok].mean()
    cls = np.where(hi_c & hi_d, _QUADRANTS[0], np.where(hi_c, _QUADRANTS[1],
                                                        np.where(hi_d, _QUADRANTS[2], _QUADRANTS[3])))
    cls = np.where(ok, cls, _NO_DEATHS)
    return co2, dpct, pd.Series(cls, index=cs.index)


def _fig4(cs, cb, out_dir, formats, scenario):
    co2, dpct, cls = _quadrants(cs, cb)
    has_map = {"lat", "lon"} <= set(cs.columns)
    fig, axes = _figure(11.0 if has_map else 6.0, 4.8, ncols=2 if has_map else 1)
    ax = axes[0] if has_map else axes
    colours = dict(zip(_QUADRANTS + (_NO_DEATHS,), (OKABE_ITO[5], OKABE_ITO[0], OKABE_ITO[1], "0.45", "0.8")))
    ok = cls != _NO_DEATHS
    for q in _QUADRANTS:
        m = cls == q
        ax.scatter(co2[m], dpct[m], s=12, color=colours[q], label=f"{q} (n={int(m.sum())})", edgecolors="none")
    ax.axvline(co2[ok].mean(), color="0.3", lw=0.8, ls="--")
    ax.axhline(dpct[ok].mean(), color="0.3", lw=0.8, ls="--")
    ax.set_xlabel("city CO$_2$ cut [% of the city's base]")
    ax.set_ylabel("deaths avoided [% of the city's base-case deaths]")
    ax.set_title(f"a  quadrants (dashed: means), {scenario}", loc="left", fontsize=10)
    ax.legend(fontsize=8)
    if has_map:
        ax2 = axes[1]
        for q in (_NO_DEATHS,) + _QUADRANTS[::-1]:
            m = cls == q
            if m.any():
                ax2.scatter(cs["lon"][m], cs["lat"][m], s=12, color=colours[q], edgecolors="none",
                            label=f"{q} (n={int(m.sum())})" if q == _NO_DEATHS else q)
        ax2.legend(fontsize=8)
        _map_axes(ax2)
        ax2.set_title("b  map of the classes", loc="left", fontsize=10)
    return _save(fig, out_dir, "fig4_quadrants", formats), int((cls == _QUADRANTS[0]).sum()), int((~ok).sum())


def _concentration_map(run_dir, out_dir, formats, base, scenario):
    import xarray as xr

    p = Path(run_dir) / "concentration.nc"
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing")
    with xr.open_dataset(p) as ds:
        names = _scenario_names(ds)
        pm = ds["pm25"].values
        lat_e = _edges(ds, "lat")
        lon_e = _edges(ds, "lon")
    ib, isc = names.index(base) if base in names else 0, names.index(scenario) if scenario in names else -1
    fig, (ax, ax2) = _figure(11.0, 4.8, ncols=2)
    # colour scale to the 99th percentile (a few city-centre cells would flatten the rest); "extend" marks it
    m = ax.pcolormesh(lon_e, lat_e, np.ma.masked_invalid(pm[ib]), cmap="viridis", rasterized=True,
                      vmin=0.0, vmax=_p99(pm[ib]))
    fig.colorbar(m, ax=ax, label="primary PM$_{2.5}$ [µg m$^{-3}$]", extend="max", shrink=0.8)
    _map_axes(ax)
    ax.set_title(f"a  annual mean, {names[ib]}", loc="left", fontsize=10)
    d = np.ma.masked_invalid(pm[ib] - pm[isc])
    m2 = ax2.pcolormesh(lon_e, lat_e, d, cmap="cividis", rasterized=True, vmax=_p99(d.filled(np.nan)))
    fig.colorbar(m2, ax=ax2, label="reduction of primary PM$_{2.5}$ [µg m$^{-3}$]", extend="max", shrink=0.8)
    _map_axes(ax2)
    ax2.set_title(f"b  {names[ib]} minus {names[isc]}", loc="left", fontsize=10)
    return _save(fig, out_dir, "concentration_map", formats)


def _p99(a):
    a = np.asarray(a, float)
    a = a[np.isfinite(a)]
    return float(np.percentile(a, 99.0)) if a.size else None


def _edges(ds, name):
    b = ds.get(f"{name}_bnds")
    if b is not None:
        b = np.asarray(b.values)
        return np.append(b[:, 0], b[-1, 1])
    v = np.asarray(ds[name].values, float)
    step = v[1] - v[0] if v.size > 1 else 1.0
    return np.append(v - step / 2, v[-1] + step / 2)


def _city_dataset(run_dir, city_id):
    from engine.output.writers import open_city

    run_dir = Path(run_dir)
    for p in (run_dir / "city_fields.nc", run_dir / "cities" / f"c{int(city_id)}.nc"):
        if p.exists():
            try:
                return open_city(p, city_id)
            except KeyError:
                continue
    raise FileNotFoundError(f"no field of city {city_id} in {run_dir} (city_fields.nc or cities/c{city_id}.nc)")


def _city_field(run_dir, cs, out_dir, formats, city_id, scenario):
    ds = _city_dataset(run_dir, city_id)
    row = cs.set_index("city_id").loc[int(city_id)]
    total = ds["pm25"].sel(scenario=scenario).values.astype(float)
    # own part = q_city x unit field; ROP part = q_rop x unit field, with q_rop = C_rop / U_rop (city means)
    q_city = float(row["q_g_m2_s"]) if "q_g_m2_s" in row else float(row["conc_from_city_ug_m3"] /
                                                                      row["unit_response_city"])
    q_rop = float(row["conc_from_rop_ug_m3"] / row["unit_response_rop"]) if row["unit_response_rop"] else 0.0
    own = q_city * ds["unit_response_city"].values.astype(float)
    rop = q_rop * ds["unit_response_rop"].values.astype(float)
    # neighbours (other cities, other provinces' sources the run's source set includes) = the rest
    nb = total - own - rop
    x = ds["xc"].values / 1000.0 if "xc" in ds else ds["x"].values / 1000.0
    y = ds["yc"].values / 1000.0 if "yc" in ds else ds["y"].values / 1000.0
    frac = ds["city_fraction"].values
    vmax = float(np.nanmax(total))
    has_nb = bool(np.nanmax(np.abs(nb)) > 1e-3 * vmax)
    panels = [(total, "a  total"), (own, "b  from the city's own emissions"), (rop, "c  from its rest of province")]
    if has_nb:
        panels.append((nb, "d  from neighbouring cities and provinces"))
    fig, axes = _figure(4.3 * len(panels) + 0.8, 4.7, ncols=len(panels))
    # English name only in the figure: the default fonts have no CJK glyphs
    name = f"{row.get('name_en', 'city')} ({int(city_id)})"
    for ax, (f, t) in zip(axes, panels):
        m = ax.pcolormesh(x, y, f, cmap="viridis", vmin=0.0, vmax=vmax, shading="nearest", rasterized=True)
        ax.contour(x, y, frac, levels=[0.5], colors="white", linewidths=0.8)
        ax.set_aspect("equal")
        ax.set_xlabel("easting from the city centre [km]")
        ax.set_ylabel("northing from the city centre [km]")
        ax.set_title(t, loc="left", fontsize=10)
    fig.colorbar(m, ax=list(axes), label="primary PM$_{2.5}$ [µg m$^{-3}$]")
    fig.suptitle(f"{name}, {scenario} (white: city footprint"
                 + ("" if has_nb else "; no neighbouring source in this run's source set") + ")", fontsize=10)
    return _save(fig, out_dir, "city_field", formats), name


# --------------------------------------------------------------------------- sweeps
_INDEX_COLUMNS = (("S1", "ST"), ("mu_star", "sigma"))


def _sweep_indices(sweep_dir, out_dir, formats):
    p = Path(sweep_dir) / "indices.csv"
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing")
    t = pd.read_csv(p, comment="#")
    pcol = next((c for c in ("parameter", "name", "factor", "input") if c in t.columns), t.columns[0])
    pair = next((pr for pr in _INDEX_COLUMNS if any(c in t.columns for c in pr)), None)
    if pair is None:
        raise ValueError(f"{p}: no S1/ST or mu_star/sigma column (columns: {', '.join(t.columns)})")
    cols = [c for c in pair if c in t.columns]
    ocol = next((c for c in ("output", "metric", "target") if c in t.columns), None)
    groups = list(t.groupby(ocol)) if ocol else [("", t)]
    fig, axes = _figure(5.0 * len(groups), 0.35 * t[pcol].nunique() + 1.8, ncols=len(groups))
    axes = np.atleast_1d(axes)
    for ax, (out_name, g) in zip(axes, groups):
        g = g.sort_values(cols[-1], ascending=True)
        yy = np.arange(len(g))
        for k, c in enumerate(cols):
            err = g.get(f"{c}_conf")
            ax.barh(yy + (k - (len(cols) - 1) / 2) * 0.4, g[c], height=0.4, color=OKABE_ITO[4 if k else 0],
                    xerr=None if err is None else err, label=c)
        ax.set_yticks(yy, g[pcol].astype(str))
        kind = "Sobol index [1]" if pair[0] == "S1" else "Morris elementary effect [units of the output]"
        ax.set_xlabel(kind)
        ax.set_title(str(out_name) or "sensitivity", loc="left", fontsize=10)
        ax.legend(fontsize=8)
    return _save(fig, out_dir, "sweep_indices", formats), t


def _sweep_deaths(sweep_dir, out_dir, formats):
    import xarray as xr

    p = Path(sweep_dir) / "sweep.nc"
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing")
    with xr.open_dataset(p) as ds:
        names = [v for v in ds.data_vars if "avoided" in v and "death" in v]
        if not names:
            raise ValueError(f"{p}: no variable named like '*avoided*deaths*' (variables: {', '.join(ds.data_vars)})")
        v = ds[sorted(names, key=lambda n: ("national" not in n, "mean" not in n, n))[0]]
        other = [d for d in v.dims if d not in ("sample", "scenario")]
        tot = v.sum(other) if other else v
        vals = tot.values
        scen = [str(s) for s in (ds["scenario_name"].values if "scenario_name" in ds else
                                 tot["scenario"].values)] if "scenario" in tot.dims else [v.name]
        units = v.attrs.get("units", "deaths yr-1")
    vals = np.atleast_2d(vals if "scenario" not in tot.dims else np.moveaxis(vals, tot.dims.index("scenario"), 0))
    fig, ax = _figure(6.5, 4.0)
    stats = []
    for k, (s, row) in enumerate(zip(scen, vals)):
        row = row[np.isfinite(row)]
        if row.size == 0 or not np.any(row):
            continue
        ax.hist(row, bins=min(40, max(5, row.size // 10)), color=OKABE_ITO[k % 8], alpha=0.6, label=s)
        stats.append({"scenario": s, "samples": row.size, "mean": row.mean(), "p2_5": np.percentile(row, 2.5),
                      "p97_5": np.percentile(row, 97.5)})
    ax.set_xlabel(f"national avoided deaths [{units}]")
    ax.set_ylabel("sweep samples [count]")
    ax.legend(fontsize=8)
    return _save(fig, out_dir, "sweep_avoided_deaths", formats), pd.DataFrame(stats)


def _method_notes(summary):
    """How the run's numbers were made, from its summary.json: sources, met, seasons, health."""
    sources = {"own": "each city's own and its rest-of-province emissions",
               "province": "the emissions of every city of its province and its rest of province",
               "nation": "every city and rest of province within the source reach"}
    out = []
    ss = summary.get("source_set")
    if ss in sources:
        out.append(f"Concentrations are primary PM2.5 (no secondary aerosol) from {sources[ss]} "
                   f"(source_set = '{ss}').")
    urban = ((summary.get("config") or {}).get("dispersion") or {}).get("urban")
    if urban is not None:
        out.append({"auto": "City sources in urban areas (population density above 750 km-2, EPA's criterion) are "
                             "dispersed with AERMOD's urban boundary layer; rests of province are rural (urban = 'auto').",
                    True: "Every city source is dispersed with AERMOD's urban boundary layer; rests of province are "
                          "rural (urban = true).",
                    False: "Every source is dispersed as rural (urban = false)."}.get(urban, f"urban = {urban!r}."))
    met = summary.get("met") or []
    if met:
        out.append("Met: " + "; ".join(met[:3]) + (f"; and {len(met) - 3} more" if len(met) > 3 else "") + ".")
    seasons = summary.get("seasons") or {}
    if seasons.get("method"):
        out.append(f"Seasons ({', '.join(seasons.get('seasons', []))}): {seasons['method']}.")
    if summary.get("health_concentration_method"):
        out.append(f"Health: {summary['health_concentration_method']}.")
    return out


# --------------------------------------------------------------------------- HTML
def _table_html(df, digits=4, max_rows=None):
    from engine.output.writers import round_significant

    d = round_significant(df, digits)
    if max_rows is not None:
        d = d.head(max_rows)
    return d.to_html(index=False, border=0, classes="t", na_rep="-", float_format=lambda x: f"{x:,.{digits}g}")


_CSS = """body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1150px;margin:2em auto;
padding:0 1em;color:#222}h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}
figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}figcaption{font-size:.9em;color:#444}
table.t{border-collapse:collapse;font-size:.85em;margin:.5em 0}table.t td,table.t th{padding:2px 8px;
border-bottom:1px solid #ddd;text-align:right}table.t th{background:#f3f3f3}.cards{display:flex;flex-wrap:wrap;gap:1em}
.card{border:1px solid #ccc;border-radius:6px;padding:.7em 1em;min-width:15em}.card b{font-size:1.4em;display:block}
.note{color:#555;font-size:.9em}"""


def _html(title, head, figures, tables, notes):
    e = html.escape
    parts = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>",
             f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_CSS}</style></head><body>",
             f"<h1>{e(title)}</h1>"]
    parts.append("<div class='cards'>" + "".join(
        f"<div class='card'>{e(k)}<b>{e(v)}</b></div>" for k, v in head) + "</div>")
    for n in notes:
        parts.append(f"<p class='note'>{e(n)}</p>")
    parts.append("<h2>Figures</h2>")
    for fig_name, caption, files in figures:
        png = next(p for p in files if p.suffix == ".png")
        svg = next((p for p in files if p.suffix == ".svg"), None)
        link = f" <a href='{e(svg.name)}'>SVG</a>" if svg else ""
        parts.append(f"<figure id='{e(fig_name)}'><img src='{e(png.name)}' alt='{e(caption)}'>"
                     f"<figcaption>{e(caption)}{link}</figcaption></figure>")
    parts.append("<h2>Tables</h2>")
    for caption, table in tables:
        parts.append(f"<h3>{e(caption)}</h3>{table}")
    parts.append("</body></html>\n")
    return "\n".join(parts)


# --------------------------------------------------------------------------- the report
def _result_tables(national, cs, scen):
    """The national table and the 30 cities with the most avoided deaths in ``scen`` (title, HTML)."""
    nat_cols = [c for c in ("scenario", "national_co2_mt", "cities_co2_t", "pop_weighted_conc_ug_m3", "deaths_mean",
                            "avoided_deaths_mean", "avoided_deaths_p2_5", "avoided_deaths_p97_5")
                if c in national.columns]
    out = [("National results per scenario", _table_html(national[nat_cols]))]
    city_cols = [c for c in ("city_id", "name", "name_en", "province_en", "typology", "population", "co2_reduction_pct",
                             "conc_ug_m3", "rop_share", "avoided_deaths_mean", "avoided_deaths_p2_5",
                             "avoided_deaths_p97_5") if c in cs.columns]
    top = cs.sort_values("avoided_deaths_mean", ascending=False)[city_cols] if "avoided_deaths_mean" in cs else \
        cs[city_cols]
    out.append((f"The 30 cities with the most avoided deaths in {scen} (all cities: cities.csv)",
                _table_html(top, max_rows=30)))
    return out


def _headline_cards(head, cs, scen, base):
    """The headline cards (label, value) of the report page."""
    hs = head["scenarios"].get(scen, {})
    cards = [("cities", f"{head.get('n_cities') or cs.shape[0]}"),
             (f"national CO2 cut, {scen}", f"{_fmt(hs.get('co2_cut_mt'))} Mt ({_fmt(hs.get('co2_cut_pct'), 2)} %)"),
             (f"avoided deaths per year, {scen}",
              f"{_fmt((hs.get('avoided_deaths') or [np.nan])[0])} "
              f"({_fmt((hs.get('avoided_deaths') or [0, np.nan])[1])}-"
              f"{_fmt((hs.get('avoided_deaths') or [0, 0, np.nan])[2])})"),
             ("population-weighted primary PM2.5, base", f"{_fmt(head['scenarios'].get(base, {}).get('pop_weighted_conc_ug_m3'))} µg m-3")]
    return cards


def build_report(run_dir, sweep_dir=None, *, out_dir=None, city=None, scenario=None, formats=("png", "svg")):
    """Write the figures and ``index.html`` of a run (and a sweep) into ``out_dir``.

    Parameters
    ----------
    run_dir : path of a ``cobenefits run --out`` folder
    sweep_dir : optional path of a sweep folder (``indices.csv``, ``sweep.nc``); missing parts are
        skipped with the reason in the page
    out_dir : where to write, as it is (the caller's transaction owns the folder; required:
        :func:`engine.report.publish.write_report` writes ``RUN_DIR/report`` as an amendment of the run)
    city : city_id (int or str), or a Chinese/English name, for the city-field figure (default:
        the city with the most avoided deaths)
    scenario : the scenario of the city figures (default ``fyp_symbiosis``, else the last non-base one)
    formats : image formats; PNG is always written (the page shows it)

    Returns
    -------
    ReportResult
    """
    from engine.output.writers import write_text

    if out_dir is None:  # the transaction is the caller's: engine.report.publish.write_report
        raise ValueError("build_report needs out_dir; engine.report.publish.write_report writes RUN_DIR/report "
                         "as an amendment of the run's output transaction")
    run_dir = Path(run_dir)
    cities, national, summary = _read_run(run_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    formats = _check_formats(formats)
    base = _base(summary, national)
    scen = _check_scenario(run_dir, national, scenario) or _main_scenario(list(national["scenario"].astype(str)), base)
    cities = _with_coordinates(cities, summary)
    cs = cities[cities.scenario == scen].set_index("city_id", drop=False)
    cb = cities[cities.scenario == base].set_index("city_id", drop=False).reindex(cs.index)
    figures, tables, skipped, notes = [], [], {}, []
    head = _headline(national, summary)

    def attempt(name, fn):
        return _attempt(skipped, name, fn)

    # the two figures that read the NetCDF files are drawn by a forked child meanwhile (about half of
    # the report's time; at once, here, where there is no fork)
    import matplotlib.figure  # noqa: F401  imported (with its font cache) once, before the fork

    from engine.parallel import Background

    cid = pick_city(cs, city)
    maps = Background(_netcdf_figures, run_dir, cs, out_dir, formats, base, scen, cid,
                      what="the report's concentration figures")
    try:
        _table_figures(attempt, figures, tables, head, national, base, cs, cb, out_dir, formats, scen)
        try:
            r_map, r_city, skipped_maps = maps.result()
        except OSError as exc:  # the child died (memory): both figures are skipped, the report goes on
            r_map = r_city = None
            skipped_maps = {k: f"{type(exc).__name__}: {exc}" for k in ("concentration_map", "city_field")}
    finally:
        maps.close()
    skipped.update(skipped_maps)
    if r_map:
        figures.append(("concentration_map", "National mosaic of annual-mean primary PM2.5 (base case) and its "
                                             f"reduction in {scen}; white: no city grid.", r_map))
    if r_city:
        figures.append(("city_field", f"{r_city[1]}: annual-mean primary PM2.5 on the city's 1 km grid in {scen}, "
                                      "split into the parts from the city's own emissions, from its rest of province "
                                      "and from neighbouring cities and provinces (when the run's source set has "
                                      "them).", r_city[0]))
    for part, extra in zip((figures, tables, notes), attempt("validation", lambda: _validation(run_dir, out_dir)) or ()):
        part += extra  # cobenefits validate's figures, tables and band note, when the run has them
    if sweep_dir is not None:
        r = attempt("sweep_indices", lambda: _sweep_indices(sweep_dir, out_dir, formats))
        if r:
            figures.append(("sweep_indices", "Sensitivity indices of the sweep.", r[0]))
            tables.append(("Sensitivity indices", _table_html(r[1])))
        r = attempt("sweep_avoided_deaths", lambda: _sweep_deaths(sweep_dir, out_dir, formats))
        if r:
            figures.append(("sweep_avoided_deaths", "Distribution of national avoided deaths over the sweep "
                                                     "samples.", r[0]))
            tables.append(("National avoided deaths over the sweep [deaths per year]", _table_html(r[1])))
    tables[0:0] = _result_tables(national, cs, scen)
    cards = _headline_cards(head, cs, scen, base)
    notes.append(f"R17 (the paper) for comparison: FYP-Efficiency-plus-Symbiosis cuts 1,024 Mt CO2 "
                 f"(754 + 270.1) and avoids 47,230 deaths per year (25,356-57,470) in 637 cities ({PAPER_CITATION}).")
    notes += _method_notes(summary)
    for k, v in skipped.items():
        notes.append(f"figure {k} skipped: {v}")
    page = _html(f"cobenefits report: {run_name(run_dir)}", cards, figures, tables, notes)
    index = out_dir / "index.html"
    write_text(page, index)
    pngs = [p for _, _, files in figures for p in files if p.suffix == ".png"]
    return ReportResult(out_dir, index, pngs, skipped, head)


def _table_figures(attempt, figures, tables, head, national, base, cs, cb, out_dir, formats, scen):
    """Figures 2-4 (from the run's tables), appended to ``figures`` and ``tables``."""
    r = attempt("fig2_national_reductions", lambda: _fig2(national, base, out_dir, formats))
    if r:
        figures.append(("fig2_national_reductions",
                        f"National CO2 cut by strategy and by scenario, this run beside {PAPER_CITATION} "
                        "(Fig. 2 analogue).", r[0]))
        tables.append(("National CO2 cut by strategy [Mt CO2 per year]", _table_html(r[1])))
    r = attempt("fig3_city_co2_cut", lambda: _fig3(cs, out_dir, formats, scen))
    if r:
        figures.append(("fig3_city_co2_cut", f"City CO2 cut in {scen}: map, and against the waste-heat "
                                             "source/sink ratio by typology (Fig. 3 analogue).", r))
    r = attempt("fig4_quadrants", lambda: _fig4(cs, cb, out_dir, formats, scen))
    if r:
        figures.append(("fig4_quadrants", f"Percentage CO2 cut against percentage deaths avoided per city in "
                                          f"{scen}; {r[1]} High-High cities (above the mean on both axes; Fig. 4 "
                                          f"analogue). {r[2]} cities have no base-case deaths (concentration below "
                                          "the counterfactual) and are left out of the means.", r[0]))
        head["scenarios"].setdefault(scen, {})["high_high_pct_cities"] = r[1]


def _attempt(skipped, name, fn):
    """``fn()``, or None with the reason in ``skipped[name]``: one figure's missing input never stops
    the report."""
    try:
        return fn()
    except Exception as exc:
        skipped[name] = f"{type(exc).__name__}: {exc}"
        log.warning("report: %s skipped (%s)", name, skipped[name])
        return None


def _netcdf_figures(run_dir, cs, out_dir, formats, base, scen, cid):
    """The concentration map and the city field (they read the run's NetCDF files):
    ``(map result, city result, {skipped name: reason})``."""
    skipped = {}
    r_map = _attempt(skipped, "concentration_map", lambda: _concentration_map(run_dir, out_dir, formats, base, scen))
    r_city = _attempt(skipped, "city_field", lambda: _city_field(run_dir, cs, out_dir, formats, cid, scen))
    return r_map, r_city, skipped


def _validation(run_dir, out_dir):
    """The validation section (``cobenefits validate``), or None: :func:`engine.report.validation_section.section`."""
    from engine.report.validation_section import section

    return section(run_dir, out_dir)


#: the helpers other report modules draw with (engine.report.validation, validation_figures)
figure, save_figure, map_axes, base_scenario, with_coordinates = _figure, _save, _map_axes, _base, _with_coordinates

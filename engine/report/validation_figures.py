"""Figures of ``cobenefits validate`` (:mod:`engine.report.validation`).

* ``validation_scatter``: modelled primary against measured total PM2.5, log-log, one colour per
  region (Okabe & Ito), the 1:1 line and the plausible band as dashed lines ``y = band x``;
* ``validation_ratio``: the distribution of the ratio (log axis) with the band shaded;
* ``validation_map``: the ratio by city on a longitude-latitude map, every city of the run in
  light grey underneath, cities outside the band outlined.

Units: concentrations [ug m-3].
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["draw_all"]


def draw_all(table, run_cities, out_dir, formats, band, stats, regions):
    """Draw the three figures into ``out_dir``; ``regions`` the region names in colour order.
    Returns ``{name: [file names]}``."""
    from engine.report.html import OKABE_ITO, save_figure

    out = {}
    if table.empty:
        return out
    colours = {r: OKABE_ITO[k % len(OKABE_ITO)] for k, r in enumerate(list(regions) + ["other"])}
    for name, fn in (("validation_scatter", _scatter), ("validation_ratio", _ratio),
                     ("validation_map", _map)):
        fig = fn(table, run_cities, band, stats, colours)
        if fig is None:
            continue
        out[name] = [p.name for p in save_figure(fig, out_dir, name, formats)]
    return out


def _plain_ticks(*axes):
    """Log axes labelled 20, 50, 100 rather than 2x10^1."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    fmt = FuncFormatter(lambda v, _: f"{v:g}")
    for a in axes:
        a.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        a.set_major_formatter(fmt)
        a.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def _scatter(table, run_cities, band, stats, col):
    from engine.report.html import figure

    fig, ax = figure(6.2, 5.2)
    for region, g in table.groupby("region", sort=False):
        ax.scatter(g["measured_ug_m3"], g["modelled_ug_m3"], s=26, color=col.get(region, "0.3"),
                   label=f"{region} (n={len(g)})", edgecolors="white", linewidths=0.4, zorder=3)
    if len(table) <= 12:
        for _, r in table.iterrows():
            ax.annotate(str(r["name_en"] or r["city_id"]), (r["measured_ug_m3"], r["modelled_ug_m3"]),
                        fontsize=7, xytext=(3, 3), textcoords="offset points")
    lo = min(table["measured_ug_m3"].min(), table["modelled_ug_m3"].min()) / 2
    hi = max(table["measured_ug_m3"].max(), table["modelled_ug_m3"].max()) * 2
    x = np.array([lo, hi])
    ax.plot(x, x, color="0.2", lw=1.0, label="1:1 (modelled primary = measured total)")
    for b in band:
        ax.plot(x, b * x, color="0.4", lw=0.8, ls="--")
    ax.fill_between(x, band[0] * x, band[1] * x, color="0.85", alpha=0.5, zorder=0,
                    label=f"plausible band {band[0]:g}-{band[1]:g} x measured")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_ticks(ax.xaxis, ax.yaxis)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured total PM$_{2.5}$ [µg m$^{-3}$]")
    ax.set_ylabel("modelled primary PM$_{2.5}$ [µg m$^{-3}$]")
    ax.set_title(f"median ratio {stats['ratio_median']:.2f}, Spearman ρ {stats['spearman_rho']:.2f}, "
                 f"{100 * stats['fraction_above_1']:.0f} % above 1", loc="left", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    return fig


def _ratio(table, run_cities, band, stats, colours):
    from engine.report.html import figure

    fig, ax = figure(6.2, 3.8)
    r = table["ratio"].to_numpy(float)
    lo, hi = min(r.min(), band[0]) / 1.5, max(r.max(), 1.0) * 1.5
    bins = np.logspace(math.log10(lo), math.log10(hi), max(8, min(40, int(2 * math.sqrt(len(r))) + 4)))
    ax.axvspan(band[0], band[1], color="0.85", label=f"plausible band {band[0]:g}-{band[1]:g}")
    ax.hist(r, bins=bins, color="#0072B2", edgecolor="white")
    ax.axvline(1.0, color="#D55E00", lw=1.0, label="1 (primary = total)")
    ax.axvline(stats["ratio_median"], color="0.2", lw=1.0, ls=":", label=f"median {stats['ratio_median']:.2f}")
    ax.set_xscale("log")
    _plain_ticks(ax.xaxis)
    ax.set_xlabel("modelled primary / measured total PM$_{2.5}$ [1]")
    ax.set_ylabel("cities")
    ax.legend(fontsize=7)
    return fig


def _map(table, run_cities, band, stats, colours):
    from matplotlib.colors import LogNorm

    from engine.report.html import figure, map_axes

    if table[["lat", "lon"]].isna().all().all():
        return None
    fig, ax = figure(6.8, 5.0)
    if {"lat", "lon"} <= set(run_cities.columns):
        ax.scatter(run_cities["lon"], run_cities["lat"], s=4, color="0.85", edgecolors="none", zorder=1)
    r = table["ratio"].to_numpy(float)
    vmin, vmax = min(r.min(), band[0]), max(r.max(), 1.0)
    sc = ax.scatter(table["lon"], table["lat"], c=r, cmap="cividis", norm=LogNorm(vmin=vmin, vmax=vmax), s=30,
                    edgecolors=np.where(table["in_band"], "none", "#D55E00"), linewidths=1.2, zorder=3)
    fig.colorbar(sc, ax=ax, label="modelled primary / measured total [1]", shrink=0.8)
    map_axes(ax)
    ax.set_title(f"ratio by city; outlined: outside {band[0]:g}-{band[1]:g}", loc="left", fontsize=9)
    return fig

"""Figures of the marginal analyses (PNG; matplotlib's Agg canvas, no pyplot state).

* :func:`plot_damage_map` deaths per kt of primary PM2.5 by source, on the sources' centres;
* :func:`plot_top_intensities` the options with the most deaths avoided per Mt CO2;
* :func:`plot_targeted_vs_uniform` national deaths avoided (95 % interval over draws) and CO2
  cut of the targeted allocation beside the uniform scenario, and per city.

Colours: viridis for values, Okabe & Ito (2008) for categories.
"""

from __future__ import annotations

import json

import numpy as np

__all__ = ["plot_damage_map", "plot_top_intensities", "plot_targeted_vs_uniform"]

_OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"]


def _figure(w, h):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=110)


def plot_damage_map(md, path, *, scenario=None):
    """Map of the central marginal damage of every source [deaths yr-1 per kt yr-1]."""
    from matplotlib.colors import LogNorm

    scenario = scenario or md.attrs.get("base_scenario", str(md["scenario"].values[0]))
    m = md.sel(scenario=scenario)
    v = m["md_central"].values
    ok = np.isfinite(v) & (v > 0)
    fig = _figure(7.5, 5.5)
    ax = fig.add_subplot(1, 1, 1)
    kind = m["source_kind"].values
    for k, marker, size in (("rop", "s", 40), ("city", "o", 14)):
        sel = ok & (kind == k)
        if sel.any():
            sc = ax.scatter(m["source_lon"].values[sel], m["source_lat"].values[sel], c=v[sel], s=size, marker=marker,
                            cmap="viridis", norm=LogNorm(vmin=v[ok].min(), vmax=v[ok].max()), edgecolors="none",
                            label={"rop": "rest of province", "city": "city"}[k])
    if ok.any():
        fig.colorbar(sc, ax=ax, label="deaths yr$^{-1}$ per kt yr$^{-1}$ of primary PM$_{2.5}$ (central)")
    ax.set_xlabel("longitude [deg E]")
    ax.set_ylabel("latitude [deg N]")
    ax.set_title(f"Marginal damage by source ({scenario}; {md.attrs.get('crf', '')})")
    ax.legend(loc="lower left", fontsize=8)
    fig.savefig(path)
    return path


def plot_top_intensities(intensity, path, *, top=25):
    """Horizontal bars of the ``top`` options by deaths avoided per Mt CO2 (central)."""
    df = intensity[["unit_name", "unit_kind", "action", "deaths_per_mt_co2", "co2_cut_mt"]].to_dataframe()
    df = df[np.isfinite(df["deaths_per_mt_co2"]) & (df["co2_cut_mt"] > 0.01)]
    df = df.sort_values("deaths_per_mt_co2", ascending=False).head(top)[::-1]
    fig = _figure(8.0, 0.28 * len(df) + 1.2)
    ax = fig.add_subplot(1, 1, 1)
    kinds = sorted(df["action"].str.replace(r"_(fyp|high)$", "", regex=True).unique())
    colour = {k: _OKABE_ITO[i % len(_OKABE_ITO)] for i, k in enumerate(kinds)}
    base = df["action"].str.replace(r"_(fyp|high)$", "", regex=True)
    ax.barh(np.arange(len(df)), df["deaths_per_mt_co2"], color=[colour[b] for b in base])
    ax.set_yticks(np.arange(len(df)))
    ax.set_yticklabels([f"{n} ({a})" for n, a in zip(df["unit_name"], df["action"])], fontsize=7)
    ax.set_xlabel("deaths avoided per Mt CO$_2$ cut (adopted alone, central)")
    ax.set_title("Highest co-benefit intensity")
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=colour[k], label=k) for k in kinds], fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_targeted_vs_uniform(result, path):
    """National deaths avoided and CO2 cut, targeted beside uniform; per-city avoided deaths."""
    s = json.loads(result.attrs["summary"])
    ref = s["reference_scenario"]
    fig = _figure(10.0, 4.2)
    ax = fig.add_subplot(1, 2, 1)
    names = ["uniform\n" + ref, "targeted"]
    vals = [s["uniform"], s["targeted"]]
    mean = np.array([v["avoided_deaths_mean"] for v in vals])
    lo = mean - np.array([v["avoided_deaths_p2_5"] for v in vals])
    hi = np.array([v["avoided_deaths_p97_5"] for v in vals]) - mean
    ax.bar([0, 1], mean, yerr=[lo, hi], color=[_OKABE_ITO[1], _OKABE_ITO[5]], capsize=6)
    for i, v in enumerate(vals):
        ax.text(i, 0.02 * mean.max(), f"CO$_2$ cut\n{v['co2_cut_mt']:.0f} Mt", ha="center", va="bottom",
                fontsize=8, color="white")
    ax.set_xticks([0, 1])
    ax.set_xticklabels(names)
    ax.set_ylabel("deaths avoided yr$^{-1}$ (mean, 95 % interval)")
    ax.set_title("At the same national CO$_2$ cut")
    ax2 = fig.add_subplot(1, 2, 2)
    u = result["city_avoided_deaths_mean"].sel(scenario=ref).values
    t = result["city_avoided_deaths_mean"].sel(scenario="targeted").values
    ax2.scatter(u, t, s=8, color=_OKABE_ITO[4])
    m = np.nanmax(np.concatenate([u, t])) if np.isfinite(u).any() else 1.0
    ax2.plot([0, m], [0, m], color="0.5", lw=0.8)
    ax2.set_xlabel("uniform: deaths avoided yr$^{-1}$ per city")
    ax2.set_ylabel("targeted: deaths avoided yr$^{-1}$ per city")
    ax2.set_title("Per city")
    fig.tight_layout()
    fig.savefig(path)
    return path

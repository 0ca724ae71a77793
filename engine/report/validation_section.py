"""The report's validation section (:func:`engine.report.html.build_report`), from what
``cobenefits validate`` wrote into ``<run_dir>/validation`` (:mod:`engine.report.validation`)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

__all__ = ["section"]


def _table_html(df, digits=3, max_rows=None):
    from engine.output.writers import round_significant

    d = round_significant(df, digits)
    if max_rows is not None:
        d = d.head(max_rows)
    return d.to_html(index=False, border=0, classes="t", na_rep="-", float_format=lambda x: f"{x:,.{digits}g}")


def section(run_dir, out_dir):
    """The report's validation part when ``<run_dir>/validation`` holds one (``cobenefits validate``,
    :mod:`engine.report.validation`): ``(figures, tables, notes)``, the figures copied into
    ``out_dir``; None when the run has no validation."""
    import shutil

    folder = Path(run_dir) / "validation"
    try:
        res = json.loads((folder / "validation.json").read_text())
    except (OSError, ValueError):
        return None
    s = res.get("statistics") or {}
    band = res.get("band") or [float("nan")] * 2
    figures = []
    captions = {
        "validation_scatter": "Validation: modelled primary PM2.5 (base case) against measured total PM2.5 by city, "
                              f"log-log, coloured by region; 1:1 line and the plausible band {band[0]:g}-{band[1]:g} "
                              "(primary is 36-43 % of the annual mean in Chinese cities, Zhang et al. 2022).",
        "validation_ratio": "Validation: distribution of modelled primary / measured total PM2.5 over the matched cities.",
        "validation_map": "Validation: the ratio by city; cities outside the band outlined.",
    }
    for name, files in (res.get("figures") or {}).items():
        paths = []
        for f in files:
            src = folder / f
            if src.is_file():
                dst = Path(out_dir) / f
                shutil.copyfile(src, dst)
                paths.append(dst)
        if any(p.suffix == ".png" for p in paths):
            figures.append((name, captions.get(name, name), paths))
    stats = pd.DataFrame([{"cities": s.get("n_cities"), "median ratio": s.get("ratio_median"),
                           "10th pct": s.get("ratio_p10"), "90th pct": s.get("ratio_p90"),
                           "above 1 [%]": 100 * (s.get("fraction_above_1") or 0.0),
                           "in band [%]": 100 * (s.get("fraction_in_band") or 0.0),
                           "Spearman rho": s.get("spearman_rho")}])
    tables = [(f"Validation against {Path(res.get('measured', '')).name} ({res.get('year_rule', '')})",
               _table_html(stats, digits=3))]
    csv = folder / "validation.csv"
    if csv.is_file():
        t = pd.read_csv(csv)
        cols = [c for c in ("city_id", "name_en", "region", "year", "measured_ug_m3", "modelled_ug_m3", "ratio", "flag")
                if c in t]
        tables.append(("Validation by city (validation/validation.csv)", _table_html(t[cols], digits=3, max_rows=60)))
    notes = [f"Validation band {band[0]:g}-{band[1]:g}: {res.get('band_reason', '')}."]
    return figures, tables, notes

"""The marginal analyses as tables and CF NetCDF (written by the commands through the output
transaction, :class:`engine.output.persist.OutputTransaction`)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from engine._version import __version__

__all__ = ["damages_table", "intensity_table", "allocation_table", "write_cf_netcdf"]


def damages_table(md):
    """One row per (scenario, source): ``marginal_damages.csv``."""
    cols = [v for v in md.data_vars if v.startswith("md_") and "draw" not in md[v].dims] + ["emission_kt_yr"]
    df = md[cols].to_dataframe().reset_index()
    coords = ["source_name", "source_kind", "source_id", "source_province", "source_lat", "source_lon"]
    keep = ["scenario", "source"] + [c for c in coords if c in df] + cols
    df = df[keep]
    df["damage_kt_yr_deaths_central"] = df["md_central"] * df["emission_kt_yr"]
    return df.rename(columns={"damage_kt_yr_deaths_central": "attributable_deaths_first_order_central"})


def intensity_table(intensity):
    """One row per (unit, action), ranked by deaths avoided per Mt CO2: ``cobenefit_intensity.csv``."""
    # the option variables only: a dataframe over (option, scenario, city) would be their product
    opt = intensity.drop_dims([d for d in intensity.dims if d != "option"])
    df = opt.to_dataframe().reset_index(drop=True)
    df = df.sort_values("deaths_per_mt_co2", ascending=False, na_position="last").reset_index(drop=True)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    df["linearisation_error_pct"] = 100.0 * np.divide(
        (df["avoided_deaths_md"] - df["avoided_deaths_central"]).to_numpy(float),
        df["avoided_deaths_central"].to_numpy(float), out=np.full(len(df), np.nan),
        where=np.abs(df["avoided_deaths_central"].to_numpy(float)) > 1e-9)
    return df


def allocation_table(result):
    """The adopted options of a targeted allocation: ``allocation.csv``."""
    df = intensity_table(result)
    return df[df["adopted"].astype(bool)].drop(columns=["adopted"]).reset_index(drop=True)


def write_cf_netcdf(ds, path, *, title, drop=()):
    """``ds`` as CF-1.8 NetCDF (strings as variable-length text, summary JSON in an attribute)."""
    out = ds.drop_vars([v for v in drop if v in ds])
    for name in list(out.variables):
        if out[name].dtype == object or out[name].dtype.kind in "U":
            out[name] = out[name].astype(str)
        if out[name].dtype == bool:
            out[name] = out[name].astype(np.int8)
    out.attrs = {k: (v if isinstance(v, (str, int, float)) else json.dumps(v, default=float))
                 for k, v in out.attrs.items()}
    out.attrs.update({"Conventions": "CF-1.8", "title": title, "source": f"cobenefits {__version__}",
                      "history": f"{pd.Timestamp.now(tz='UTC').isoformat(timespec='seconds')} cobenefits"})
    out.to_netcdf(path, engine="netcdf4")
    return path

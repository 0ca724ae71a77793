"""The marginal analyses as tables and CF NetCDF (written by the commands through the output
transaction, :class:`engine.output.persist.OutputTransaction`)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from engine._version import __version__

__all__ = ["damages_table", "intensity_table", "allocation_table", "write_cf_netcdf"]


def damages_table(md):
    """One row per (scenario, source): ``marginal_damages.csv`` (the damages by part, a third axis, are in
    the NetCDF file only)."""
    cols = [v for v in md.data_vars
            if v.startswith("md_") and "draw" not in md[v].dims and "part" not in md[v].dims] + ["emission_kt_yr"]
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


#: the Datasets' readable units -> UDUNITS (deaths are a count: dimensionless; 1 kt = 1 Gg, 1 Mt = 1 Tg)
_UDUNITS = {"deaths yr-1 (kt yr-1)-1": "Gg-1", "deaths yr-1 (ug m-3)-1": "yr-1 m3 ug-1", "deaths yr-1": "yr-1",
            "deaths (Mt CO2)-1": "Tg-1", "Mt yr-1": "Tg yr-1", "kt yr-1": "Gg yr-1"}
_COORD_NAMES = {"source_id": "city_id of a city source, province_id of a rest of province",
                "source_province": "province_id of the source", "source_lat": "latitude of the source's centre",
                "source_lon": "longitude of the source's centre", "city": "city_id of the receptor city",
                "unit_id": "city_id, or province_id of a rest of province or province", "option": "option index",
                "province_id": "province_id of the unit", "source_kind": "city or rop (rest of province)",
                "source_name": "name of the source", "unit_kind": "city, rop (rest of province) or province",
                "unit_name": "name of the unit", "action": "action (engine.marginal.actions.ACTIONS)",
                "action_kind": "efficiency, cascade or materials", "scenario": "scenario name",
                "source": "source label (c<city_id> or r<province_id>)", "season": "season"}


def write_cf_netcdf(ds, path, *, title, drop=()):
    """``ds`` as CF-1.8 NetCDF: strings as variable-length text, 32-bit integers, UDUNITS units
    (the readable unit kept in ``long_name``), the summary JSON in an attribute."""
    out = ds.drop_vars([v for v in drop if v in ds])
    for name in list(out.variables):
        v = out[name]
        attrs = dict(v.attrs)
        if v.dtype == object or v.dtype.kind in "U":
            v = v.astype(str)
        elif v.dtype == bool:
            v = v.astype(np.int8)
        elif v.dtype.kind == "i":
            v = v.astype(np.int32)
        u = attrs.get("units")
        if u in _UDUNITS:
            attrs["units"] = _UDUNITS[u]
            attrs["long_name"] = f"{attrs.get('long_name', name)} [{u}]"
        if "long_name" not in attrs and name in _COORD_NAMES:
            attrs["long_name"] = _COORD_NAMES[name]
        if name == "source_lat":
            attrs.update(units="degrees_north", standard_name="latitude")
        if name == "source_lon":
            attrs.update(units="degrees_east", standard_name="longitude")
        out[name] = v.assign_attrs(attrs)
    out.attrs = {k: (v if isinstance(v, (str, int, float)) else json.dumps(v, default=float))
                 for k, v in out.attrs.items()}
    out.attrs.update({"Conventions": "CF-1.8", "title": title, "source": f"cobenefits {__version__}",
                      "history": f"{pd.Timestamp.now(tz='UTC').isoformat(timespec='seconds')} cobenefits"})
    out.to_netcdf(path, engine="netcdf4")
    return path

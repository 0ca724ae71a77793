"""The main job end to end on the embedded data set (all 654 cities, 4 scenarios). Slow: ~1 min."""

import json

import netCDF4
import numpy as np
import pandas as pd
import pytest

from engine.cli import main


@pytest.mark.slow
def test_default_national_run(tmp_path, monkeypatch):
    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    assert main(["--quiet", "run", "--out", str(out)]) == 0
    cities = pd.read_csv(out / "cities.csv")
    assert len(cities) == 654 * 4
    assert np.isfinite(cities["conc_ug_m3"]).all() and (cities["conc_ug_m3"] > 0).all()
    assert ((cities["rop_share"] >= 0) & (cities["rop_share"] <= 1)).all()
    s = json.loads((out / "summary.json").read_text())["scenarios"]
    sym = s["fyp_symbiosis"]
    # concentration falls everywhere emissions fall, so deaths are avoided, inside their interval
    assert 0 < sym["avoided_deaths_p2_5"] <= sym["avoided_deaths_mean"] <= sym["avoided_deaths_p97_5"]
    assert s["high_efficiency_symbiosis"]["avoided_deaths_mean"] > sym["avoided_deaths_mean"] > \
        s["fyp_efficiency"]["avoided_deaths_mean"] > 0
    with netCDF4.Dataset(out / "concentration.nc") as nc:
        assert nc.Conventions == "CF-1.8" and nc["pm25"].units == "ug m-3"
    with netCDF4.Dataset(out / "city_fields.nc") as nc:
        assert nc.dimensions["city"].size == 654
    assert (out / "report" / "index.html").exists() and (out / "sr_matrix.nc").exists()
    from engine.output.persist import verify_output

    assert verify_output(out) == []
    # a re-run reuses every field
    assert main(["--quiet", "run", "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["n_rows_from_cache"] == 654

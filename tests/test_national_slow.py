"""The main job end to end. Slow.

* the whole data set (654 cities, 4 scenarios) with the paper's dispersion (``emission_heights =
  "ground"``, ``urban = false``): ~3 min cold on 2 cores;
* the default physics (height classes, urban by EPA's criterion) on Hebei and its neighbours
  (35 cities, 4 scenarios): a few minutes cold. The default national run itself takes far longer
  cold on 2 cores (docs/dispersion.md, "The defaults and what they cost"), too long for CI.
"""

import json
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest

from engine.cli import main

SCENARIOS = ("base", "fyp_efficiency", "fyp_symbiosis", "high_efficiency_symbiosis")


def _configs(folder, dispersion):
    """Copies of the shipped scenario files with a ``[dispersion]`` table appended."""
    shipped = Path(__file__).resolve().parents[1] / "config"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in SCENARIOS:
        p = folder / f"{name}.toml"
        p.write_text((shipped / f"{name}.toml").read_text() + "\n[dispersion]\n" + dispersion + "\n")
        out.append(str(p))
    return out


def _check_run(out, n_cities):
    cities = pd.read_csv(out / "cities.csv")
    assert len(cities) == n_cities * 4
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
        assert nc.dimensions["city"].size == n_cities
    assert (out / "report" / "index.html").exists() and (out / "sr_matrix.nc").exists()
    from engine.output.persist import verify_output

    assert verify_output(out) == []
    return cities


@pytest.mark.slow
def test_national_run_paper_dispersion(tmp_path, monkeypatch):
    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    cfg = _configs(tmp_path / "cfg", 'emission_heights = "ground"\nurban = false')
    assert main(["--quiet", "run", *cfg, "--out", str(out)]) == 0
    _check_run(out, 654)
    # a re-run reuses every row of S
    assert main(["--quiet", "run", *cfg, "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["n_rows_from_cache"] == 654


@pytest.mark.slow
def test_default_run_on_a_region(tmp_path, monkeypatch):
    """The shipped scenarios with the default [dispersion] (sector heights, urban "auto")."""
    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    assert main(["--quiet", "run", "--cities", "Beijing,Tianjin,Hebei", "--out", str(out)]) == 0
    cities = _check_run(out, 35)
    with netCDF4.Dataset(out / "sr_matrix.nc") as nc:
        assert nc.emission_heights == "sector" and nc.dimensions["height"].size == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["dispersion"]["urban"] == "auto"
    # Beijing and Tianjin are urban by EPA's density criterion; under urban dispersion and stack
    # heights their Base-Case primary PM2.5 is below the ground-level rural model's (docs/validation.md)
    base = cities[cities["scenario"] == "base"].set_index("city_id")["conc_ug_m3"]
    assert main(["--quiet", "run", "--cities", "Beijing", "--out", str(tmp_path / "g"),
                 *_configs(tmp_path / "gcfg", 'emission_heights = "ground"\nurban = false')[:1]]) == 0
    ground = pd.read_csv(tmp_path / "g" / "cities.csv").set_index("city_id")["conc_ug_m3"]
    assert base[110000] < 0.5 * ground[110000]

"""Configuration: validation messages, run-wide consistency, path resolution, recording."""

import json

import pytest

from engine.config import config_to_dict, load_config, parse_config
from engine.errors import InputError


@pytest.mark.parametrize("table, message", [
    ({"carbon": {"seasonality_fractoin": 0.4}}, "unknown key 'seasonality_fractoin' in [carbon]; did you mean 'seasonality_fraction'?"),
    ({"carbn": {}}, "unknown section [carbn]; did you mean 'carbon'?"),
    ({"carbon": {"seasonality_fraction": 0.0}}, "carbon.seasonality_fraction = 0.0 is outside the allowed range (0.0, 1.0]"),
    ({"carbon": {"efficiency_level": "max"}}, "carbon.efficiency_level = 'max' is not allowed; choose one of 'none', 'fyp', 'high'"),
    ({"carbon": {"symbiosis": "yes"}}, "carbon.symbiosis = 'yes' must be true or false"),
    ({"health": {"draws": 1.5}}, "health.draws = 1.5 must be an integer"),
    ({"dispersion": {"city_resolution_m": "1km"}}, "dispersion.city_resolution_m = '1km' must be a number"),
    ({"scenario": {"name": "a b"}}, "scenario.name = 'a b' must be non-empty letters, digits, _ or -"),
])
def test_validation_messages(table, message):
    with pytest.raises(InputError) as e:
        parse_config(table, source="s.toml")
    assert message in str(e.value) and str(e.value).startswith("s.toml: ")


def test_defaults_are_the_four_scenarios():
    cfg = load_config()
    assert cfg.scenario_names == ("base", "fyp_efficiency", "fyp_symbiosis", "high_efficiency_symbiosis")
    assert cfg.scenarios[2][1].seasonality_fraction == 1.0 and cfg.scenarios[2][1].symbiosis


def test_run_wide_sections_must_agree(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('[scenario]\nname = "a"\n[health]\ndraws = 10\n')
    b.write_text('[scenario]\nname = "b"\n[health]\ndraws = 20\n')
    with pytest.raises(InputError, match=r"\[health\] differs between .* \(key\(s\): draws\)"):
        load_config([a, b])
    b.write_text('[scenario]\nname = "a"\n[health]\ndraws = 10\n')
    with pytest.raises(InputError, match="scenario name\\(s\\) a appear in more than one file"):
        load_config([a, b])


def test_relative_paths_follow_the_config_file(tmp_path, monkeypatch):
    sub = tmp_path / "cfg"
    sub.mkdir()
    f = sub / "s.toml"
    f.write_text('[scenario]\nname = "s"\n[data]\ndir = "mydata"\n[health]\nrates_file = "../r.csv"\n')
    monkeypatch.chdir(tmp_path)
    cfg = load_config([f])
    assert cfg.data.dir == str(sub.resolve() / "mydata")
    assert cfg.health.rates_file == str(sub.resolve() / "../r.csv")
    # command-line overrides are relative to the current folder
    cfg = load_config([f], overrides={"data": {"dir": "other"}})
    assert cfg.data.dir == str(tmp_path / "other")


def test_resolved_config_is_recorded_as_plain_data():
    d = config_to_dict(load_config())
    json.dumps(d)
    assert [s["scenario"]["name"] for s in d["scenarios"]][0] == "base"
    assert d["health"]["crf"] == "ier2010" and d["dispersion"]["city_resolution_m"] == 1000.0


def test_missing_or_broken_toml(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_config([tmp_path / "none.toml"])
    bad = tmp_path / "bad.toml"
    bad.write_text("[scenario\nname=")
    with pytest.raises(InputError, match="not valid TOML"):
        load_config([bad])


def test_input_paths_lists_every_input(tmp_path):
    from engine.config import input_paths
    from engine.data.dataset import default_data_dir

    f = tmp_path / "s.toml"
    f.write_text('[scenario]\nname = "s"\n[data]\ndir = "d"\n[met]\nsfc_file = "m/x.sfc"\n[health]\nrates_file = "r.csv"\n')
    got = input_paths(load_config([f]))
    assert got == [f, tmp_path / "d", tmp_path / "m" / "x.sfc", tmp_path / "r.csv"]
    g = tmp_path / "t.toml"
    g.write_text('[scenario]\nname = "t"\n')
    assert input_paths(load_config([g])) == [g, default_data_dir()]

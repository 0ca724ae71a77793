"""validate-data, the carbon command and config errors, end to end through the CLI."""

import shutil

import pandas as pd
import pytest

from engine.cli import main
from engine.data.dataset import default_data_dir, load_dataset, select_cities
from engine.errors import InputError


@pytest.fixture
def data_copy(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    for f in ("cities.csv", "provinces.csv", "grids.csv"):
        shutil.copy(default_data_dir() / f, d / f)
    return d


def _edit(path, fn):
    df = pd.read_csv(path, comment="#")
    df = fn(df)
    df.to_csv(path, index=False)


def test_validate_data_ok(capsys):
    assert main(["validate-data", str(default_data_dir())]) == 0
    assert "OK (654 cities, 31 provinces, 6 grid regions)" in capsys.readouterr().out


def test_validate_data_reports_all_problems(data_copy, capsys):
    def cities(df):
        df = df.rename(columns={"cement_mt": "cement_kt"})
        df.loc[0, "heating_mtce"] = -2.0
        df.loc[2, "city_id"] = df.loc[1, "city_id"]
        df.loc[3, "lat"] = 95.0
        return df

    def provs(df):
        df.loc[4, "grid_region"] = "Mars Grid"
        return df

    _edit(data_copy / "cities.csv", cities)
    _edit(data_copy / "provinces.csv", provs)
    rc = main(["validate-data", str(data_copy)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err
    assert "missing column 'cement_mt'; found 'cement_kt' - wrong unit or name?" in err
    assert "row 1 (city_id=110000): column 'heating_mtce' = -2 [Mtce] is below the allowed minimum 0 (negative energy/activity)" in err
    assert "duplicate city_id 120000 in rows [2, 3]" in err
    assert "column 'lat' = 95 is above the allowed maximum 55" in err
    assert "unknown grid_region 'Mars Grid'" in err


def test_validate_data_cities_exceeding_province(data_copy, capsys):
    def cities(df):
        df.loc[df.city_id == 110000, "steel_mt"] = 1e4
        return df

    _edit(data_copy / "cities.csv", cities)
    assert main(["validate-data", str(data_copy)]) == 2
    assert "cities of province_id 110000 sum to 10000 in 'steel_mt', more than the province total" in \
        capsys.readouterr().err


def test_validate_data_missing_file(tmp_path, capsys):
    (tmp_path / "cities.csv").write_text("city_id\n1\n")
    assert main(["validate-data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "provinces.csv: file is missing" in err and "grids.csv: file is missing" in err


def test_carbon_command_writes_tables(tmp_path):
    out = tmp_path / "out"
    assert main(["--quiet", "carbon", "--out", str(out)]) == 0
    nat = pd.read_csv(out / "national.csv")
    assert list(nat.columns) == ["scenario", "item", "co2_mt", "quantity", "unit"]
    assert set(nat.scenario) == {"base", "fyp_efficiency", "fyp_symbiosis", "high_efficiency_symbiosis"}
    cities = pd.read_csv(out / "cities.csv")
    for col in ("city_id", "name", "province", "province_id", "typology", "population", "co2_t", "co2_reduction_pct",
                "pm25_t", "pm25_intensity_g_m2_yr", "heat_source_sink_ratio", "heating_fully_supplied"):
        assert col in cities.columns
    assert len(cities) == 4 * 654
    assert len(pd.read_csv(out / "provinces.csv")) == 4 * 31
    assert not list(out.glob("*.tmp"))


def test_carbon_command_user_data_and_seasonality(data_copy, tmp_path):
    out = tmp_path / "o"
    assert main(["--quiet", "carbon", "--data", str(data_copy), "--seasonality", "0.4", "--out", str(out)]) == 0
    assert main(["--quiet", "carbon", "--seasonality", "1.5", "--out", str(out)]) == 2


def test_broken_config_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[scenario]\nname = "x"\n[carbon]\nseasonality_fractoin = 0.4\n')
    assert main(["carbon", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'seasonality_fractoin' in [carbon]; did you mean 'seasonality_fraction'?" in err
    assert not (tmp_path / "o").exists()  # nothing started


def test_select_cities():
    d = load_dataset()
    s = select_cities(d, "110000,上海市")
    assert sorted(s.cities.index) == [110000, 310000]
    assert len(s.rop) == 31  # ROPs stay whole
    with pytest.raises(InputError, match="matches no city"):
        select_cities(d, "Atlantis")

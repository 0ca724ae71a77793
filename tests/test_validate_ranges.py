"""Plausibility ranges, hostile configs and exit codes (issue 13): each class of bad input is a
listed problem / InputError with exit 2, never a result or an internal error."""

import shutil

import numpy as np
import pandas as pd
import pytest

from engine.dispersion import geometry as geo
from engine.cli import KEEP_ERROR_LOGS, main
from engine.config import load_config
from engine.data.dataset import (PLAUSIBILITY_FACTOR, default_data_dir, load_dataset, plausible_ranges, select_cities,
                            validate_dataset)
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


def _set(col, row, value):
    def fn(df):
        df[col] = df[col].astype(object)
        df.loc[row, col] = value
        return df
    return fn


# --------------------------------------------------------------------------- data tables
@pytest.mark.parametrize("table,col,value,message", [
    ("cities.csv", "cement_mt", "inf", "column 'cement_mt' = inf is not finite [Mt cement]"),
    ("cities.csv", "cement_mt", "-inf", "column 'cement_mt' = -inf is not finite [Mt cement]"),
    ("provinces.csv", "heating_mtce", "1e308", "'heating_mtce' = 1e+308 [Mtce] is more than 10x the national 2010 total"),
    ("cities.csv", "area_km2", "0", "column 'area_km2' = 0 [km2] must be above 0"),
    ("cities.csv", "area_km2", "-5", "column 'area_km2' = -5 [km2] must be above 0 (negative energy/activity)"),
    ("cities.csv", "population", "0", "column 'population' = 0 [persons] must be above 0"),
    ("cities.csv", "province_id", "Hebei", "column 'province_id' = 'Hebei' is not a number"),
    ("cities.csv", "city_id", "110000.5", "column 'city_id' = 110000 is not an integer"),
    ("cities.csv", "steel_mt", "", "column 'steel_mt' = empty is not a number"),
    ("provinces.csv", "province_id", "x", "column 'province_id' = 'x' is not a number"),
])
def test_absurd_values_are_listed_problems(data_copy, capsys, table, col, value, message):
    _edit(data_copy / table, _set(col, 0 if col != "city_id" else 0, value))
    problems, tables = validate_dataset(data_copy)
    assert tables is None and any(message in p for p in problems), problems
    assert main(["validate-data", str(data_copy)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "internal error" not in err
    with pytest.raises(InputError):
        load_dataset(data_copy)
    # every command that reads data uses the same checks
    assert main(["--quiet", "carbon", "--data", str(data_copy), "--out", str(data_copy.parent / "o")]) == 2
    assert not (data_copy.parent / "o").exists()


def test_empty_grid_region_is_listed(data_copy):
    """Found by tests/test_fuzz.py: an empty grid name raised TypeError (pandas 3 keeps NaN in astype(str))."""
    _edit(data_copy / "grids.csv", _set("grid_region", 0, float("nan")))
    problems, tables = validate_dataset(data_copy)
    assert tables is None and any("grids.csv: row 1: column 'grid_region' is empty" in p for p in problems)


def test_sector_in_wrong_unit_is_an_intensity_outlier(data_copy):
    """Steel of one province entered in kt (x1000): its per-person intensity leaves the 2010 range.

    The limit is derived from the embedded 2010 data: 10x the highest per-person steel output
    of any province. Hebei, the largest producer, is below the national-total cap even x10, so
    the test takes a small producer whose x1000 value is below 10x the national total.
    """
    prov = pd.read_csv(data_copy / "provinces.csv", comment="#")
    top, at = plausible_ranges()["per_capita"]["province"]["steel_mt"]
    per = prov.steel_mt / prov.population
    assert per.max() == pytest.approx(top)                       # derived from the data, not typed in
    national = prov.steel_mt.sum()
    # the smallest producer whose kt value stays under the national-total cap
    i = int(np.flatnonzero((prov.steel_mt * 1000 < PLAUSIBILITY_FACTOR * national).values)[0])
    assert prov.steel_mt[i] * 1000 / prov.population[i] > PLAUSIBILITY_FACTOR * top
    _edit(data_copy / "provinces.csv", lambda df: df.assign(steel_mt=df.steel_mt.where(df.index != i,
                                                                                        df.steel_mt * 1000)))
    problems, _ = validate_dataset(data_copy)
    pid = int(prov.province_id[i])
    hit = [p for p in problems if f"province_id={pid}" in p and "'steel_mt'" in p]
    assert hit and "Mt crude steel per person" in hit[0] and "wrong unit" in hit[0], problems
    # the same province at its real value passes, and so does every real 2010 value x (factor - 1)
    _edit(data_copy / "provinces.csv", lambda df: df.assign(steel_mt=prov.steel_mt))
    assert validate_dataset(data_copy)[0] == []


def test_extreme_ratios_do_not_warn(data_copy):
    """Found by tests/test_fuzz.py: 1e308 / 5e-324 overflowed with a RuntimeWarning (an error in the tests)."""
    _edit(data_copy / "cities.csv", _set("population", 0, 5e-324))
    _edit(data_copy / "cities.csv", _set("steel_mt", 0, 1e308))
    _edit(data_copy / "cities.csv", _set("area_km2", 1, 5e-324))
    problems, _ = validate_dataset(data_copy)
    assert any("row 1 (city_id=110000): column 'steel_mt' = 1e+308" in p for p in problems)
    assert any("row 2" in p and "persons per km2" in p for p in problems), problems


def test_area_in_m2_is_a_density_outlier(data_copy):
    _edit(data_copy / "cities.csv", lambda df: df.assign(area_km2=df.area_km2.where(df.index != 9, df.area_km2 * 1e6)))
    problems, _ = validate_dataset(data_copy)
    assert any("persons per km2, outside 10x the 2010 range of city densities" in p for p in problems), problems


def test_embedded_data_passes_its_own_ranges():
    assert validate_dataset()[0] == []


def test_empty_city_selector_is_refused():
    d = load_dataset()
    for sel in ("", " ", ",", " , "):
        with pytest.raises(InputError, match="selects no city"):
            select_cities(d, sel)
    assert len(select_cities(d, "all").cities) == 654
    assert len(select_cities(d, None).cities) == 654


# --------------------------------------------------------------------------- configs
@pytest.mark.parametrize("content,message", [
    (b"# only a comment\n", "is empty (comments only)"),
    (b"", "is empty (comments only)"),
    (b"[carbon]\nefficiency_level = \"fyp\"\n", "has no [scenario] name"),
    ("[scenario]\nname = \"x\"\n".encode("utf-16"), "is UTF-16 encoded"),
    (b"\x80\x81[scenario]", "is not UTF-8"),
    (b"[scenario]\nname = \"fy", "not valid TOML"),
])
def test_bad_scenario_files(tmp_path, capsys, content, message):
    p = tmp_path / "s.toml"
    p.write_bytes(content)
    with pytest.raises(InputError) as exc:
        load_config([p])
    assert message in str(exc.value) and str(p) in str(exc.value)
    assert main(["--quiet", "carbon", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(p) in err and message in err


def test_utf8_bom_config_is_accepted(tmp_path):
    p = tmp_path / "s.toml"
    p.write_bytes(b"\xef\xbb\xbf[scenario]\nname = \"bom\"\n")
    assert load_config([p]).scenario_names == ("bom",)


def test_folder_as_config(tmp_path, capsys):
    assert main(["--quiet", "carbon", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert f"configuration file {tmp_path} is a folder" in capsys.readouterr().err


# --------------------------------------------------------------------------- sizes
def test_huge_receptor_grid_is_refused_before_allocation():
    d = load_dataset()
    c, p = d.cities.reset_index(), d.provinces.reset_index()
    with pytest.raises(InputError, match=r"its grid would be \d+ x \d+ cells at \[dispersion\] city_resolution_m "
                                         r"= 100 .*at most 2048 cells per side.*city_resolution_m >= \d+ m"):
        geo.build_city_geometries(c, p, city_resolution_m=100.0)
    g = geo.build_city_geometries(c[c.city_id == 110000], p, city_resolution_m=100.0)  # a small city fits
    assert max(geo.city_grid(g[110000]).shape) <= geo.MAX_GRID_SIDE_CELLS


# --------------------------------------------------------------------------- health
def _health_csv(tmp_path, pm25):
    from engine.health import POPULATION_COLUMNS

    rows = [{"region": f"r{i}", "pm25": v, **{c: 1000.0 for c in POPULATION_COLUMNS}} for i, v in enumerate(pm25)]
    p = tmp_path / "in.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    return p


@pytest.mark.parametrize("pm25,message", [
    ([80.0, 1e9], "is 1e+09 ug m-3 (more than any annual mean measured"),
    ([5000.0], "expected a finite annual-mean concentration in [0, 1000] ug m-3"),
    ([0.08, 0.05], "every pm25 value is below 1 ug m-3 (largest 0.08)"),
])
def test_health_concentration_in_wrong_unit(tmp_path, capsys, pm25, message):
    p = _health_csv(tmp_path, pm25)
    assert main(["--quiet", "health", str(p), "--draws", "0", "--out", str(tmp_path / "o.csv")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_health_population_beyond_any_nation(tmp_path, capsys):
    from engine.health import POPULATION_COLUMNS

    row = {"region": "r0", "pm25": 50.0, **{c: 1000.0 for c in POPULATION_COLUMNS}}
    row["pop_30_34"] = 1e308
    p = tmp_path / "in.csv"
    pd.DataFrame([row]).to_csv(p, index=False)
    assert main(["--quiet", "health", str(p), "--draws", "0", "--out", str(tmp_path / "o.csv")]) == 2
    assert "has 1e+308 persons in its population columns; the allowed range is [0, 2e+09]" in capsys.readouterr().err


# --------------------------------------------------------------------------- exit codes and logs
def test_io_error_is_exit_2_naming_the_file(tmp_path, capsys, monkeypatch):
    import engine.commands.carbon as cc

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "o" / "cities.csv"))

    monkeypatch.setattr(cc, "write_csv", denied)
    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["--quiet", "carbon", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "cities.csv: Permission denied" in err and "internal error" not in err
    assert str(tmp_path / "cache" / "logs") in err


def test_write_error_names_the_output_file(tmp_path, capsys, monkeypatch):
    import engine.commands.carbon as cc

    real = cc.write_csv

    def full(df, path, **kw):
        if path.name == "provinces.csv":
            raise OSError(28, "No space left on device", str(path))
        real(df, path, **kw)

    monkeypatch.setattr(cc, "write_csv", full)
    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["--quiet", "carbon", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'o' / 'provinces.csv'} (staged; --out is unchanged): No space left on device" in err
    assert not (tmp_path / "o").exists()


def test_memory_error_is_exit_2(tmp_path, capsys, monkeypatch):
    import engine.commands.carbon as cc

    def oom(*a, **k):
        raise MemoryError()

    monkeypatch.setattr(cc, "run_carbon", oom)
    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["--quiet", "carbon", "--out", str(tmp_path / "o")]) == 2
    assert "not enough memory" in capsys.readouterr().err


def test_bug_is_exit_1_and_logs_are_pruned(tmp_path, capsys, monkeypatch):
    import engine.commands.carbon as cc

    def bug(*a, **k):
        raise ZeroDivisionError("a real bug")

    monkeypatch.setattr(cc, "run_carbon", bug)
    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path / "cache"))
    for _ in range(KEEP_ERROR_LOGS + 3):
        assert main(["--quiet", "carbon", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "internal error: ZeroDivisionError: a real bug" in err
    logs = list((tmp_path / "cache" / "logs").glob("error-*.log"))
    assert len(logs) == KEEP_ERROR_LOGS
    assert "ZeroDivisionError" in logs[0].read_text()


def test_malformed_scheduler_address_is_input_error():
    from engine.parallel import connect

    with pytest.raises(InputError, match="not a scheduler address"):
        connect("no-port-here", timeout="1s")


def test_a_table_cut_at_a_line_boundary_is_caught(data_copy, capsys):
    # the cut file still parses (every line complete); only the '# rows: N' header line tells
    path = data_copy / "cities.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert "# rows: 654\n" in lines
    path.write_text("".join(lines[:-10]), encoding="utf-8")
    assert main(["validate-data", str(data_copy)]) == 2
    err = capsys.readouterr().err
    assert "cities.csv: the header line '# rows: 654' declares 654 data rows but 644 were read; " \
           "the file is truncated" in err
    with pytest.raises(InputError, match="644 were read"):
        load_dataset(data_copy)


def test_a_bad_row_count_line_is_a_listed_problem(data_copy):
    path = data_copy / "grids.csv"
    path.write_text(path.read_text(encoding="utf-8").replace("# rows: 6\n", "# rows: six\n"), encoding="utf-8")
    problems, _ = validate_dataset(data_copy)
    assert any("grids.csv: header line '# rows: six' is not a row count" in p for p in problems)
    # a table without the line is not checked (user data sets need not carry it)
    path.write_text(path.read_text(encoding="utf-8").replace("# rows: six\n", ""), encoding="utf-8")
    assert validate_dataset(data_copy)[0] == []

"""``cobenefits validate``: modelled primary against measured total PM2.5 (engine.report.validation).

Runs are small hand-made run folders (cities.csv, national.csv, summary.json), so every expected
number is derived in the test from the values written there.
"""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.cli import main
from engine.errors import InputError
from engine.report import validation as va

DATA = Path(__file__).resolve().parents[1] / "engine" / "data"

# five cities: id, name, name_en, province_id, lat, lon, modelled base-case primary [ug m-3]
CITIES = [(110000, "北京市", "Beijing", 110000, 39.9042, 116.407, 40.0),
          (310000, "上海市", "Shanghai", 310000, 31.2304, 121.474, 30.0),
          (440100, "广州市", "Guangzhou", 440000, 23.1291, 113.264, 60.0),
          (510100, "成都市", "Chengdu", 510000, 30.5729, 104.067, 20.0),
          (210100, "沈阳市", "Shenyang", 210000, 41.6773, 123.465, 50.0)]


def _run_dir(tmp_path, cities=CITIES):
    d = tmp_path / "run"
    d.mkdir()
    rows = []
    for scen, f in (("base", 1.0), ("cut", 0.8)):
        for cid, name, en, pid, lat, lon, conc in cities:
            rows.append({"scenario": scen, "city_id": cid, "name": name, "name_en": en, "province_id": pid,
                         "lat": lat, "lon": lon, "conc_ug_m3": conc * f})
    pd.DataFrame(rows).to_csv(d / "cities.csv", index=False)
    pd.DataFrame({"scenario": ["base", "cut"]}).to_csv(d / "national.csv", index=False)
    (d / "summary.json").write_text(json.dumps({"base_scenario": "base", "config": {"dispersion": {"urban": "auto"}}}))
    return d


def _measured(tmp_path, text, name="m.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_shipped_table_five_cities_first_years():
    """The shipped US-post table (engine/data/build_measured.py): each city's first year with at
    least 7,000 valid hours is Beijing 2010, Shanghai 2012, Guangzhou 2013, Chengdu 2013,
    Shenyang 2014 (the source's own annual-mean table gives the same values to 0.1 ug m-3)."""
    m = va.read_measured(va.shipped_measured_path())
    assert va.shipped_measured_path().read_text().startswith("# Annual-mean PM2.5")
    m["matched_city_id"] = m["city_id"]
    got = va._pick_years(m, "first", 7000).set_index("city")
    want = {"Beijing": (2010, 104.05), "Shanghai": (2012, 50.86), "Guangzhou": (2013, 55.48),
            "Chengdu": (2013, 97.1), "Shenyang": (2014, 78.25)}
    for city, (year, pm) in want.items():
        assert got.loc[city, "year"] == year
        assert got.loc[city, "pm25_ug_m3"] == pytest.approx(pm, abs=0.005)


def test_build_measured_from_the_raw_files(tmp_path):
    """The build script on a tiny hand-made raw file: mean of the valid hours per year, NA skipped."""
    from engine.data import build_measured as bm

    rows = "No,year,month,day,hour,season,PM_US Post\n1,2010,1,1,0,4,NA\n2,2010,1,1,1,4,10\n3,2010,1,1,2,4,30\n" \
           "4,2011,1,1,0,4,NA\n"
    import gzip

    for city in bm.POSTS:
        with gzip.open(tmp_path / f"{city}_us_post_2010_2015.csv.gz", "wt") as f:
            f.write(rows)
    t = bm.annual_means(tmp_path)
    assert len(t) == 5  # 2011 has no valid hour: left out
    assert (t["pm25_ug_m3"] == 20.0).all() and (t["valid_hours"] == 2).all() and (t["hours"] == 3).all()


def test_ratios_statistics_and_outputs(tmp_path):
    run = _run_dir(tmp_path)
    res = va.validate_run(run, va.shipped_measured_path())
    t = pd.read_csv(run / "validation" / "validation.csv").set_index("city_id")
    # hand values: modelled / measured of the first year with >= 7000 valid hours
    want = {110000: 40.0 / 104.05, 310000: 30.0 / 50.86, 440100: 60.0 / 55.48, 510100: 20.0 / 97.1,
            210100: 50.0 / 78.25}
    for cid, r in want.items():
        assert t.loc[cid, "ratio"] == pytest.approx(r, rel=1e-9)
    s = res["statistics"]
    ratios = np.array(sorted(want.values()))
    assert s["ratio_median"] == pytest.approx(ratios[2], rel=1e-12)
    assert s["fraction_above_1"] == pytest.approx(0.2)           # Guangzhou 1.08
    assert s["n_below_band"] == 0 and s["n_above_band"] == 1     # Chengdu 0.206 is inside 0.2-0.8
    # ranks: modelled 40,30,60,20,50 -> 3,2,5,1,4; measured 104.05,50.86,55.48,97.1,78.25 -> 5,1,2,4,3
    # rho = 1 - 6 sum d^2 / (n (n^2 - 1)) = 1 - 6 (4+1+9+9+1) / 120 = -0.2
    assert s["spearman_rho"] == pytest.approx(-0.2, abs=1e-12)
    assert t.loc[440100, "flag"].startswith("above 1") and t.loc[440100, "region"] == "South Central"
    assert t.loc[210100, "region"] == "Northeast"
    out = run / "validation"
    for f in ("validation.json", "unmatched.csv", "validation_scatter.png", "validation_scatter.svg",
              "validation_ratio.png", "validation_map.png", "manifest.json"):
        assert (out / f).is_file(), f
    js = json.loads((out / "validation.json").read_text())
    assert js["band"] == [0.2, 0.8] and "Zhang et al. 2022" in js["band_reason"]
    assert [r["city_id"] for r in js["outside_band"]] == [440100]


def test_name_matching_with_distance(tmp_path):
    run = _run_dir(tmp_path)
    m = _measured(tmp_path, "city,year,pm25_ug_m3,lat,lon\n"
                            "beijing,2014,80,39.95,116.45\n"      # pinyin, 6 km away
                            "上海,2014,50,31.2,121.5\n"             # Chinese without 市
                            "Chengdu,2014,60,35.0,104.0\n"         # 490 km away: not matched
                            "Nowhere,2014,60,,\n")
    va.validate_run(run, m, year=2014)
    t = pd.read_csv(run / "validation" / "validation.csv").set_index("city_id")
    assert sorted(t.index) == [110000, 310000]
    assert t.loc[110000, "match"] == "name+distance" and t.loc[110000, "distance_km"] < 10
    u = pd.read_csv(run / "validation" / "unmatched.csv")
    assert len(u) == 2
    assert "km from the city centre" in u["unmatched_reason"].iloc[0]
    assert "no city of the run is named 'Nowhere'" in u["unmatched_reason"].iloc[1]


@pytest.mark.parametrize("text, message", [
    ("city,year\nBeijing,2010\n", r"missing column pm25_ug_m3"),
    ("year,pm25_ug_m3\n2010,50\n", r"needs a column city_id or city"),
    ("city_id,year,pm25_ug_m3\n110000,2010,-5\n", r"line 2, column pm25_ug_m3: '-5' is outside the allowed range \(0, 1000\]"),
    ("# comment\ncity_id,year,pm25_ug_m3\n110000,2010,50\n110000,20x0,50\n",
     r"line 4, column year: '20x0' is not a number; allowed \[1980, 2100\]"),
    ("city_id,year,pm25_ug_m3\n110000,2010.5,50\n", r"line 2, column year: '2010.5' is not a whole number"),
    ("city_id,year,pm25_ug_m3\n110000,2010,inf\n", r"line 2, column pm25_ug_m3: 'inf' is outside"),
    ("city,year,pm25_ug_m3,lat\nBeijing,2010,50,39\n", r"has lat but no lon"),
])
def test_bad_tables_name_file_line_column_and_range(tmp_path, text, message):
    p = _measured(tmp_path, text)
    with pytest.raises(InputError, match=message) as exc:
        va.read_measured(p)
    assert str(p) in str(exc.value)


def test_cli_exit_codes(tmp_path, capsys):
    run = _run_dir(tmp_path)
    assert main(["--quiet", "validate", str(run)]) == 0
    bad = _measured(tmp_path, "city_id,year,pm25_ug_m3\n110000,2010,2000\n")
    assert main(["validate", str(run), str(bad), "--out", str(tmp_path / "v2")]) == 2
    err = capsys.readouterr().err
    assert "line 2, column pm25_ug_m3: '2000' is outside the allowed range (0, 1000]" in err
    assert main(["validate", str(run), "--band", "0.8,0.2", "--out", str(tmp_path / "v3")]) == 2
    assert main(["validate", str(tmp_path / "nope")]) == 2


def test_report_shows_the_validation(tmp_path):
    run = _run_dir(tmp_path)
    va.validate_run(run)
    from engine.report.html import _validation

    sec = _validation(run, tmp_path)
    assert sec is not None
    figures, tables, notes = sec
    assert [f[0] for f in figures] == ["validation_scatter", "validation_ratio", "validation_map"]
    assert (tmp_path / "validation_scatter.png").is_file()
    assert "Spearman" in tables[0][1] and "0.2-0.8" in notes[0]
    assert _validation(tmp_path / "elsewhere", tmp_path) is None


def test_spearman_hand_value_and_ties():
    assert va.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert va.spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    # ties get average ranks: x ranks 1.5,1.5,3 ; y ranks 1,2,3 -> Pearson of those = sqrt(3)/2
    assert va.spearman([5, 5, 7], [1, 2, 3]) == pytest.approx(math.sqrt(3) / 2, rel=1e-12)
    assert math.isnan(va.spearman([1, 2], [3, 4]))


def test_report_method_notes_state_the_urban_setting():
    from engine.report.html import _method_notes

    for urban, phrase in (("auto", "population density above 750 km-2"), (True, "Every city source"),
                          (False, "as rural (urban = false)")):
        notes = _method_notes({"config": {"dispersion": {"urban": urban}}})
        assert len(notes) == 1 and phrase in notes[0]

"""Tables people can map: English names, coordinates and province names; --cities suggestions."""

import re

import pandas as pd
import pytest

from engine.data.build_names import pinyin_name
from engine.data.dataset import add_city_labels, city_labels, load_dataset, select_cities
from engine.errors import InputError


@pytest.fixture(scope="module")
def data():
    return load_dataset()


def test_every_city_has_an_english_name(data):
    lab = city_labels(data)
    assert len(lab) == 654
    assert lab["name_en"].str.fullmatch(r"[A-Z][a-zü']+").all()
    # municipalities carry the provinces' English names; well-known cities their Pinyin
    for cid, en in {110000: "Beijing", 500000: "Chongqing", 130100: "Shijiazhuang", 610100: "Xi'an",
                    440100: "Guangzhou", 140400: "Changzhi", 211300: "Chaoyang",
                    230100: "Ha'erbin"}.items():  # Pinyin, not the customary "Harbin"
        assert lab.loc[cid, "name_en"] == en
    assert lab.loc[130100, "province_en"] == "Hebei"
    assert lab["lat"].between(15, 55).all() and lab["lon"].between(70, 140).all()
    # no two cities of one province share an English name
    assert not lab.duplicated(["province_id", "name_en"]).any()


def test_pinyin_rules():
    assert pinyin_name("西安市") == "Xi'an"  # GB/T 16159 apostrophe before a/o/e
    assert pinyin_name("吕梁市") == "Lüliang"
    assert pinyin_name("重庆市") == "Chongqing"  # polyphonic 重 read from the phrase
    assert pinyin_name("长治市") == "Changzhi"  # pypinyin reads zhang: overridden


def test_add_city_labels_to_a_result_table(data):
    t = pd.DataFrame({"scenario": ["a", "b"], "city_id": [130100, 110000], "name": ["石家庄市", "北京市"],
                      "conc_ug_m3": [1.0, 2.0]})
    out = add_city_labels(t, data)
    assert list(out.columns) == ["scenario", "city_id", "name", "name_en", "province", "province_en", "lat", "lon",
                                 "conc_ug_m3"]
    assert out.name_en.tolist() == ["Shijiazhuang", "Beijing"]
    assert out.lat.tolist() == pytest.approx([38.04, 39.90], abs=0.02)


@pytest.mark.parametrize("tok, first", [("Pekng", "Beijing"), ("Peking", "Beijing"), ("Shijiazuang", "Shijiazhuang"),
                                        ("Guangzou", "Guangzhou"), ("Hebie", None)])
def test_cities_suggestions(data, tok, first):
    with pytest.raises(InputError, match="did you mean") as e:
        select_cities(data, tok)
    msg = str(e.value)
    assert f"'{tok}'" in msg
    if first:
        assert re.search(r"did you mean (\S+)", msg).group(1) == first
    else:
        assert "Hebei (province" in msg


@pytest.mark.parametrize("tok, n", [("beijing", 1), ("XI'AN", 1), ("xian", 1), ("北京", 1), ("Hebei", 33)])
def test_english_and_short_names_select(data, tok, n):
    assert len(select_cities(data, tok).cities) == n

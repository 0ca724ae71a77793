"""Add English city names (column ``name_en``) to the embedded ``cities.csv``.

Source: Hanyu Pinyin of the Chinese name without its 市 ("city") suffix, without tone marks,
generated with the ``pypinyin`` package (MIT; its phrase dictionary resolves polyphonic
characters, e.g. 重庆 -> Chongqing), written as one word with the first letter capitalised and
an apostrophe before a syllable that starts with a, o or e (GB/T 16159-2012 sec. 5.1.6:
西安 -> Xi'an); ü kept (吕梁 -> Lüliang). The four municipalities take their province's English
name from ``provinces.csv`` (the NBS/GCAM spelling, also Pinyin). Build-time only: the package
never imports pypinyin.

Run: ``python -m engine.data.build_names`` (``pip install pypinyin``); also called by
``build_dataset.py`` after it writes cities.csv.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
NAME_EN_SOURCE = ("name_en: Hanyu Pinyin of the Chinese name without the 市 suffix (pypinyin, tone marks "
                  "dropped, GB/T 16159-2012 apostrophes); municipalities: provinces.csv name_en")


#: names whose polyphonic characters pypinyin 0.55 reads wrongly, with the reading of the
#: place name (Xiandai Hanyu Cidian; the cities' own romanisation): 长 chang, 朝 chao, 漯 luo,
#: 泊 bo, 勒 le, 都 du (in 都匀, 宜都)
OVERRIDES = {"长治市": "Changzhi", "朝阳市": "Chaoyang", "漯河市": "Luohe", "泊头市": "Botou",
             "天长市": "Tianchang", "长葛市": "Changge", "宜都市": "Yidu", "都匀市": "Duyun",
             "霍林郭勒市": "Huolinguole", "库尔勒市": "Ku'erle", "阿勒泰市": "Aletai"}


def pinyin_name(chinese):
    """English (Pinyin) form of a Chinese place name, e.g. '西安市' -> "Xi'an".

    Parameters
    ----------
    chinese : str
        Chinese name; a trailing 市 is dropped.
    """
    if chinese in OVERRIDES:
        return OVERRIDES[chinese]
    from pypinyin import Style, lazy_pinyin

    base = chinese[:-1] if chinese.endswith("市") and len(chinese) > 2 else chinese
    syl = lazy_pinyin(base, style=Style.NORMAL, v_to_u=True, errors="ignore")
    out = ""
    for i, s in enumerate(syl):
        if i and s[:1] in "aoe":
            out += "'"
        out += s
    return out[:1].upper() + out[1:]


def add_names_en(path=HERE / "cities.csv", provinces=HERE / "provinces.csv"):
    """Insert or refresh column ``name_en`` after ``name`` in ``path``; keep its comment header."""
    lines = Path(path).read_text().splitlines(keepends=True)
    header = [ln for ln in lines if ln.startswith("#") and "name_en:" not in ln]
    df = pd.read_csv(io.StringIO("".join(ln for ln in lines if not ln.startswith("#"))), dtype=str,
                     keep_default_na=False)
    prov = pd.read_csv(provinces, comment="#", dtype=str).set_index("province_id")["name_en"]
    names = [prov[pid] if (lvl == "municipality_proper" and pid in prov) else pinyin_name(n)
             for n, pid, lvl in zip(df["name"], df["province_id"], df.get("admin_level", [""] * len(df)))]
    if "name_en" in df:
        df = df.drop(columns="name_en")
    df.insert(df.columns.get_loc("name") + 1, "name_en", names)
    tmp = Path(path).with_suffix(".tmp")
    with open(tmp, "w") as fh:
        fh.write("".join(header) + f"# {NAME_EN_SOURCE}\n")
        df.to_csv(fh, index=False)
    tmp.replace(path)
    return df


if __name__ == "__main__":
    d = add_names_en()
    print(f"name_en written for {len(d)} cities; e.g. {', '.join(d['name_en'].head(6))}")

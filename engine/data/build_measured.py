"""Build ``engine/data/measured/us_posts_pm25.csv``: annual-mean PM2.5 at the US diplomatic posts.

Source: UCI Machine Learning Repository, "PM2.5 Data of Five Chinese Cities" (CC BY 4.0),
hourly ``PM_US Post`` [ug m-3] at the US embassy in Beijing and the US consulates in Shanghai,
Guangzhou, Chengdu and Shenyang, 2010-2015; Liang, X. et al. (2016), J. Geophys. Res. Atmos.
121, 10,220-10,236. The raw files (``<City>_us_post_2010_2015.csv.gz``, columns year, month,
day, hour, ``PM_US Post``; ``NA`` = missing) are read from the folder given on the command line.

Per city and calendar year: the mean of the valid hours, the number of valid hours and of
hours in the year. ``cobenefits validate`` picks each city's first year with at least 7,000
valid hours by default (80 % coverage; a year with fewer is dominated by the months it has).
These are **total** PM2.5 (primary + secondary) at one urban site.

    python -m engine.data.build_measured RAW_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

#: city -> (city_id of the data set, post)
POSTS = {
    "Beijing": (110000, "US Embassy Beijing"),
    "Shanghai": (310000, "US Consulate General Shanghai"),
    "Guangzhou": (440100, "US Consulate General Guangzhou"),
    "Chengdu": (510100, "US Consulate General Chengdu"),
    "Shenyang": (210100, "US Consulate General Shenyang"),
}
OUT = Path(__file__).parent / "measured" / "us_posts_pm25.csv"
HEADER = """\
# Annual-mean PM2.5 [ug m-3] measured at the US diplomatic posts in five Chinese cities, 2010-2015:
# total PM2.5 (primary + secondary) at one urban site per city, hourly beta-attenuation monitors.
# Source: UCI Machine Learning Repository, "PM2.5 Data of Five Chinese Cities" (CC BY 4.0),
# column "PM_US Post"; Liang, X. et al. (2016), J. Geophys. Res. Atmos. 121, 10220-10236.
# Built by engine/data/build_measured.py from the hourly files: mean of the valid hours of each
# calendar year; valid_hours = hours with a value, hours = hours in the year. Years with no
# valid hour are left out.
"""


def annual_means(raw_dir):
    """The table of the module docstring from the raw hourly files in ``raw_dir``."""
    rows = []
    for city, (cid, post) in POSTS.items():
        path = Path(raw_dir) / f"{city}_us_post_2010_2015.csv.gz"
        df = pd.read_csv(path, usecols=["year", "month", "day", "hour", "PM_US Post"])
        for year, g in df.groupby("year"):
            v = pd.to_numeric(g["PM_US Post"], errors="coerce").to_numpy(dtype=float)
            ok = np.isfinite(v)
            if not ok.any():
                continue
            rows.append({"city_id": cid, "city": city, "post": post, "year": int(year),
                         "pm25_ug_m3": round(float(v[ok].mean()), 2), "valid_hours": int(ok.sum()),
                         "hours": int(len(g))})
    return pd.DataFrame(rows)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m engine.data.build_measured RAW_DIR (the folder of the hourly "
                         "<City>_us_post_2010_2015.csv.gz files)")
    tab = annual_means(Path(argv[0]))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(HEADER + tab.to_csv(index=False))
    print(f"{OUT}: {len(tab)} rows")


if __name__ == "__main__":
    main()

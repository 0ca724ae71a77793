"""Release heights as AERMOD allows them (issue 21).

AERMOD accepts an AREA/AREAPOLY/AREACIRC source at any height and warns (W320) above 100 m
(soset.f APARM, APPARM, ACPARM). The reference cases ``caseH_elevated_area`` and
``caseH_elevated_area_urban`` (EPA AERMOD v24142, unmodified control files: AREA and AREAPOLY
sources at 10, 50, 100 and 200 m with Szinit 0-20 m, LOVETT met, rural and URBANOPT) are run
through ``cobenefits aermod``; the gridded and direct paths and the polygon and rectangle
paths are checked against each other at elevated heights.
"""

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main

DATA = Path(__file__).parent / "data" / "aermod"
H_CASES = ["caseH_elevated_area", "caseH_elevated_area_urban"]


def _num(text):
    """A Fortran E13.6 field; exponents beyond 99 drop the 'E' (0.129986-113)."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return float(re.sub(r"(\d)([+-]\d+)$", r"\1e\2", text))


def read_post(path):
    """X, Y, CONC and DATE columns of an AERMOD PLOT file (plain or gzipped)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as fh:
        lines = [ln for ln in fh if ln.strip() and not ln.startswith("*")]
    return (np.array([float(ln[0:14]) for ln in lines]), np.array([float(ln[14:28]) for ln in lines]),
            np.array([_num(ln[28:42]) for ln in lines]), np.array([int(ln[89:97]) for ln in lines]))


def period_files(case):
    """AERMOD's PERIOD POSTFILEs of a case: (reference path, output file name)."""
    refs = sorted((DATA / case).glob("period_*.pst*"))
    return [(p, p.name.removesuffix(".gz")) for p in refs]


class _LazyRuns(dict):
    """Each case run once through the CLI (unmodified control file, with a summary listing),
    on first use, so that ``-k`` selects only the runs it needs."""

    def __init__(self, factory):
        super().__init__()
        self.factory = factory

    def __missing__(self, case):
        out = self.factory.mktemp(case)
        rc = main(["aermod", str(DATA / case / "aermod.inp"), str(out / "listing.out"),
                   "--outdir", str(out), "--quiet"])
        self[case] = (rc, out)
        return self[case]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return _LazyRuns(tmp_path_factory)


def check_period(case, out):
    """Issue 21: every PERIOD group >= 99 % of the receptors above 1 % of the maximum within
    2 %, none beyond 5 %, and AERMOD's zeros are zeros."""
    for ref_path, name in period_files(case):
        _, _, ref, _ = read_post(ref_path)
        _, _, mine, _ = read_post(out / name)
        assert ref.shape == mine.shape, name
        sel = ref > 0.01 * ref.max()
        rel = np.abs(mine[sel] / ref[sel] - 1.0)
        assert np.mean(rel <= 0.02) >= 0.99, (name, np.mean(rel <= 0.02), rel.max())
        assert rel.max() <= 0.05, (name, rel.max())
        assert np.all(mine[ref == 0.0] == 0.0), name


def check_hourly(case, out, zero_exceptions=frozenset()):
    """>= 97 % of the receptor-hours above 1 % of the hour's maximum within 2 %; where AERMOD
    gives 0 so do we (but the (x, y, YYMMDDHH) in ``zero_exceptions``, each explained by the
    caller), and where we give 0 AERMOD's value is below 1e-12 of the hour's maximum."""
    x, y, ref, dates = read_post(DATA / case / "hourly_all.pst.gz")
    _, _, mine, mdates = read_post(out / "hourly_all.pst")
    bad = (ref == 0.0) & (mine != 0.0)
    assert {(float(a), float(b), int(d)) for a, b, d in zip(x[bad], y[bad], dates[bad])} == set(zero_exceptions)
    np.testing.assert_array_equal(dates, mdates)
    n_hours = np.unique(dates).size
    ref = ref.reshape(n_hours, -1)
    mine = mine.reshape(n_hours, -1)
    hmax = ref.max(axis=1, keepdims=True)
    sel = (ref > 0.01 * hmax) & (hmax > 0)
    rel = np.abs(mine[sel] / ref[sel] - 1.0)
    assert np.mean(rel <= 0.02) >= 0.97, (np.mean(rel <= 0.02), rel.max())
    assert np.all(ref[mine == 0.0] <= 1e-12 * np.broadcast_to(hmax, ref.shape)[mine == 0.0])


@pytest.mark.parametrize("case", H_CASES)
def test_elevated_period_accuracy(case, runs):
    """caseH (rural) and caseH_urban: every group (H10, H50, H100, H200, ALL) within the
    criterion. Measured: rural 100 % of receptors within 2 % in every group (max 1.76 %, H100),
    hourly 98.31 %; urban 100 % (max 1.31 %), hourly 98.62 %. Before issue 21 the rural H50
    group was 84 % (CENTROID for a release above zi/2) and the urban H200 group 58 % (urban
    theta-gradient profile in REFL_HT)."""
    rc, out = runs[case]
    assert rc == 0
    check_period(case, out)


@pytest.mark.parametrize("case", H_CASES)
def test_elevated_hourly_accuracy(case, runs):
    rc, out = runs[case]
    assert rc == 0
    check_hourly(case, out, zero_exceptions=ELEVATED_ZERO_EXCEPTIONS[case])


#: Receptor-hours AERMOD writes as 0 that are not 0 here. With AERMOD's exponent floor
#: (EXPLIM, kernels/sigmas.py) and its side-by-side quadrature (kernels/areain.py) 22 of the
#: rural case's 25 went to 0; the rest are receptors on an elevated source's edge or corner in
#: a convective hour ((-1000, 5000), (-500, 5000), (0, 5000): the north edge of H10S0), where
#: the clipped source is a sliver whose vertex at 1.01 m lies at v / sigma_y = 3.5 here and
#: beyond AERMOD's 3.9 there (AERMOD's sigma-y at 1 m comes from the PDF of the effective
#: sigma-w its previous call left, calc1.f PLUMEF; up to 1.2 % of the hour's maximum), and
#: (-6000, -2500), a far-lateral tail of H100S20 (<= 1.7e-7 of the hour's maximum)
ELEVATED_ZERO_EXCEPTIONS = {
    "caseH_elevated_area": {(-1000.0, 5000.0, 88062711), (-500.0, 5000.0, 88062711),
                            (-6000.0, -2500.0, 88070110)},
    "caseH_elevated_area_urban": {(-1000.0, 5000.0, 88062711), (-500.0, 5000.0, 88062711),
                                  (0.0, 5000.0, 88062808), (-6000.0, -2500.0, 88070108),
                                  (-6000.0, -2500.0, 88070110)},
}


@pytest.mark.parametrize("case", H_CASES)
def test_w320_echoed_in_listing_and_message_file(case, runs):
    """AERMOD warns W320 for the two 200 m sources (control-file lines 29 and 30, as its own
    errors.out says) and models them; so do we, in the listing and in ERRORFIL."""
    rc, out = runs[case]
    assert rc == 0
    theirs = (DATA / case / "errors.out").read_text()
    assert re.search(r"SO W320\s+29\s+APPARM", theirs) and re.search(r"SO W320\s+30\s+APARM", theirs)
    listing = (out / "listing.out").read_text()
    errors = (out / "errors.out").read_text()
    for line, sid in ((29, "H200S20"), (30, "H200S0")):
        msg = f"line {line}: SRCPARAM {sid}: release height 200 m is above 100 m"
        assert msg in listing and msg in errors
        assert "AERMOD W320" in listing


def test_release_height_beyond_the_profiles_exits_2(tmp_path, capsys):
    """Above the top of AERMOD's gridded profiles (5000 m) the source is refused with the
    control file, line and allowed range."""
    import shutil

    shutil.copytree(DATA / "met", tmp_path / "met")
    shutil.copytree(DATA / "caseH_elevated_area", tmp_path / "case")
    inp = tmp_path / "case" / "aermod.inp"
    text = inp.read_text()
    assert "SRCPARAM H200S0   1.000000E-06   200.0" in text
    inp.write_text(text.replace("SRCPARAM H200S0   1.000000E-06   200.0",
                                "SRCPARAM H200S0   1.000000E-06  6000.0"))
    assert main(["aermod", str(inp), "--outdir", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{inp}, line 30: SRCPARAM H200S0:" in err and "0..5000 m" in err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- the paths agree
@pytest.fixture(scope="module")
def lovett():
    from engine.dispersion.met import read_aermet

    return read_aermet(DATA / "met" / "lovett1988_0627_0701.sfc",
                       DATA / "met" / "lovett1988_0627_0701.pfl")


@pytest.mark.parametrize("height, szinit", [(50.0, 5.0), (200.0, 20.0)])
@pytest.mark.parametrize("urban", [0.0, 2.0e6])
def test_elevated_gridded_equals_direct(lovett, height, szinit, urban):
    """A 3 x 3 block of 500 m cells released at 50 m / 200 m: the gridded (offset-kernel)
    path and the direct path agree to 1e-6 relative, rural and urban (issue 21: release
    heights first-class in every kernel path)."""
    from engine.dispersion.area import AreaSources, area_concentrations

    i, j = np.meshgrid(np.arange(3), np.arange(3))
    src = AreaSources(-750.0 + 500.0 * i.ravel(), -750.0 + 500.0 * j.ravel(), 500.0, 500.0,
                      rate_g_m2_s=1e-6 * (1.0 + i.ravel() + 2.0 * j.ravel()),
                      release_height_m=height, initial_sigma_z_m=szinit)
    gx, gy = np.meshgrid(np.arange(-3000.0, 3001.0, 500.0), np.arange(-3000.0, 3001.0, 500.0))
    kw = dict(lateral_cdf="aermod_table", urban_population=urban)
    d = area_concentrations(src, gx.ravel(), gy.ravel(), lovett, method="direct", **kw)
    g = area_concentrations(src, gx.ravel(), gy.ravel(), lovett, method="gridded", **kw)
    big = d > 1e-9 * d.max()
    assert big.sum() > 1000
    np.testing.assert_allclose(g[big], d[big], rtol=1e-6)
    assert np.all(g[~big] <= 1e-9 * d.max())


@pytest.mark.parametrize("height, szinit", [(10.0, 20.0), (100.0, 0.0), (200.0, 20.0)])
def test_elevated_polygon_equals_rectangle(lovett, height, szinit):
    """A rotated AREA source and the same rectangle as an AREAPOLY give the same hourly
    values at every height (the polygon and the cell integrals are independent code)."""
    from engine.dispersion.area import (AreaSources, PolygonSources, area_concentrations,
                                        polygon_concentrations, rectangle_vertices)

    rect = AreaSources(-600.0, -400.0, 1200.0, 800.0, angle_deg=30.0, rate_g_m2_s=1e-6,
                       release_height_m=height, initial_sigma_z_m=szinit)
    poly = PolygonSources([rectangle_vertices(-600.0, -400.0, 1200.0, 800.0, 30.0)], 1e-6,
                          height, szinit)
    ang = np.deg2rad(np.arange(0.0, 360.0, 15.0))
    rx = np.concatenate([r * np.sin(ang) for r in (300.0, 1500.0, 6000.0)])
    ry = np.concatenate([r * np.cos(ang) for r in (300.0, 1500.0, 6000.0)])
    a = area_concentrations(rect, rx, ry, lovett, method="direct", lateral_cdf="aermod_table")
    p = polygon_concentrations(poly, rx, ry, lovett, lateral_cdf="aermod_table")
    big = a > 1e-6 * a.max()
    np.testing.assert_allclose(p[big], a[big], rtol=2e-4)

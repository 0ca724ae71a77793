"""`cobenefits report`: figures, index.html, the headline lines, sweeps, and a real headless browser."""

import dataclasses
import html
import json
import os
import re
import shutil
import struct
import subprocess

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import synthetic_nation as sn
from engine.report import html as rp
from engine.cli import main
from engine.commands.run import run_national
from engine.config import load_config

FIGS = ("fig2_national_reductions", "fig3_city_co2_cut", "fig4_quadrants", "concentration_map", "city_field")
ITEMS = {"steel": 60.0, "power": 300.0, "low_grade_new_4gdh": 120.0}


def _carbon_fn():
    """The synthetic carbon stage plus the columns the report maps: national line items (long
    table), CO2 cut %, typology and heat source/sink ratio."""
    inner = sn.carbon_fn()

    def fn(cfg, data):
        res = inner(cfg, data)
        c = res.cities.copy()
        base = c[c.scenario == "base"].set_index("city_id").co2_t
        c["co2_reduction_pct"] = 100.0 * (1.0 - c.co2_t / c.city_id.map(base))
        c["typology"] = c.city_id.map({130100: "industrial", 130200: "mixed", 410100: "commercial", 410200: "mixed"})
        c["heat_source_sink_ratio"] = c.city_id.map({130100: 0.5, 130200: 1.0, 410100: 2.0, 410200: 8.0})
        rows = []
        for s in ("base", "cut"):
            rows.append({"scenario": s, "item": "national_co2", "co2_mt": 1000.0 - (100.0 if s == "cut" else 0.0)})
            for k, v in ITEMS.items():
                rows.append({"scenario": s, "item": k, "co2_mt": v if s == "cut" else 0.0})
        return dataclasses.replace(res, cities=c, national=pd.DataFrame(rows))
    return fn


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rep")
    cfg = load_config(sn.write_configs(tmp / "cfg"))
    res = run_national(cfg, tmp / "out", data=sn.nation(), age_population_fn=sn.age_population_fn, quiet=True,
                       carbon_fn=_carbon_fn())
    # what the run writes once it adds the data set's labels (engine.data.dataset.add_city_labels)
    # (the synthetic cities are not in the default data set: their own centroids and names)
    c = pd.read_csv(res.out_dir / "cities.csv")
    lab = sn.CITIES.set_index("city_id")
    for k, (col, src) in enumerate((("lat", "centroid_lat"), ("lon", "centroid_lon"), ("name_en", "name"))):
        c = c.drop(columns=col, errors="ignore")
        c.insert(3 + k, col, c.city_id.map(lab[src]))
    c.to_csv(res.out_dir / "cities.csv", index=False)
    return res.out_dir


@pytest.fixture(scope="module")
def report(run_dir):
    return rp.build_report(run_dir, out_dir=run_dir / "report")


def _png_size(path):
    with open(path, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def test_every_figure_in_png_and_svg(report):
    assert report.skipped == {}
    for name in FIGS:
        w, h = _png_size(report.out_dir / f"{name}.png")
        assert w > 300 and h > 200
        svg = (report.out_dir / f"{name}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg


def test_index_html_is_static_and_shows_the_headline(report, run_dir):
    page = report.index.read_text()
    assert not re.search(r"(src|href)\s*=\s*['\"](https?:)?//", page)  # nothing from the network
    for name in FIGS:
        assert f"src='{name}.png'" in page
    nat = pd.read_csv(run_dir / "national.csv").set_index("scenario")
    cut = nat.loc["base", "national_co2_mt"] - nat.loc["cut", "national_co2_mt"]
    assert cut == pytest.approx(100.0)
    assert "100 Mt (10 %)" in page  # 100 Mt of 1000 Mt, from the synthetic line items
    av = nat.loc["cut", "avoided_deaths_mean"]
    assert rp._fmt(av) in page and av > 0
    assert "Ramaswami et al. 2017" in page


def test_fig2_table_is_ours_beside_the_paper(report):
    page = report.index.read_text()
    # ours (synthetic line items) and R17 Table 1/2 values in the same rows
    for k, ours in ITEMS.items():
        row = re.search(rf"<td>{re.escape(html.escape(rp._LABELS[k]))}</td>\s*<td>([\d,.]+)</td>\s*<td>([\d,.]+)</td>", page)
        assert row, k
        assert float(row.group(1).replace(",", "")) == pytest.approx(ours)
        assert float(row.group(2).replace(",", "")) == pytest.approx(rp.PAPER_TABLE_CO2_CUT_MT[k])
    assert rp.PAPER_TABLE_CO2_CUT_MT["power"] == 341.6 and rp.PAPER_TABLE_CO2_CUT_MT["low_grade_new_4gdh"] == 152.0


def test_quadrants_by_hand(run_dir):
    c = pd.read_csv(run_dir / "cities.csv")
    cs = c[c.scenario == "cut"].set_index("city_id")
    cb = c[c.scenario == "base"].set_index("city_id").loc[cs.index]
    co2, dpct, cls = rp._quadrants(cs, cb)
    # by hand: percent avoided = avoided / base deaths; classes against the means of both
    x = cs.co2_reduction_pct
    y = 100 * cs.avoided_deaths_mean / cb.deaths_mean
    ok = y.notna() & np.isfinite(y)
    hh = (x > x[ok].mean()) & (y > y[ok].mean()) & ok
    assert set(cls[hh]) <= {"High-High"} and (cls == "High-High").sum() == hh.sum()
    np.testing.assert_allclose(dpct[ok], y[ok])


def test_headline_lines(run_dir):
    lines = rp.headline_lines(run_dir, run_dir / "report")
    assert lines[0].startswith("cut: national CO2 cut 100 Mt (10 %), avoided deaths ")
    assert "95 % interval" in lines[0]
    assert lines[-1] == f"report: {run_dir / 'report' / 'index.html'}"


def test_sweep_figures_and_tolerance(run_dir, tmp_path):
    sw = tmp_path / "sweep"
    sw.mkdir()
    pd.DataFrame({"output": ["avoided_deaths"] * 3, "parameter": ["a", "b", "c"], "S1": [0.5, 0.2, 0.05],
                  "ST": [0.6, 0.3, 0.1], "S1_conf": [0.05] * 3, "ST_conf": [0.05] * 3}).to_csv(sw / "indices.csv",
                                                                                               index=False)
    rng = np.random.default_rng(1)
    # engine.sensitivity.sweep's layout: national_avoided_deaths(sample), city_avoided_deaths(sample, city)
    city = rng.normal(100.0, 10.0, (200, 4))
    xr.Dataset({"city_avoided_deaths": (("sample", "city"), city, {"units": "deaths yr-1"}),
                "national_avoided_deaths": (("sample",), city.sum(axis=1), {"units": "deaths yr-1"})}
               ).to_netcdf(sw / "sweep.nc")
    r = rp.build_report(run_dir, sw, out_dir=tmp_path / "r1", formats=("png",))
    assert not r.skipped
    assert (tmp_path / "r1" / "sweep_indices.png").exists() and (tmp_path / "r1" / "sweep_avoided_deaths.png").exists()
    assert not (tmp_path / "r1" / "sweep_indices.svg").exists()
    # the national total was picked (not the per-city variable): its mean is in the page's table
    assert f"{city.sum(axis=1).mean():,.4g}" in r.index.read_text()
    # Morris indices (engine.sensitivity.sweep's columns), two outputs: one panel each
    pd.DataFrame({"output": ["national_avoided_deaths"] * 2 + ["national_co2_cut_mt"] * 2, "parameter": ["a", "b"] * 2,
                  "mu": [1.0, -2.0, 3.0, 0.1], "mu_star": [1.0, 2.0, 3.0, 0.1], "mu_star_conf": [0.1] * 4,
                  "sigma": [0.5, 0.2, 0.1, 0.0]}).to_csv(sw / "indices.csv", index=False)
    r = rp.build_report(run_dir, sw, out_dir=tmp_path / "r3", formats=("png",))
    assert not r.skipped
    assert "mu_star" in r.index.read_text()
    # an empty sweep folder: the sweep figures are skipped with the reason, the rest is written
    empty = tmp_path / "empty"
    empty.mkdir()
    r = rp.build_report(run_dir, empty, out_dir=tmp_path / "r2", formats=("png",))
    assert set(r.skipped) == {"sweep_indices", "sweep_avoided_deaths"}
    assert "indices.csv is missing" in r.index.read_text()


def test_cli(run_dir, tmp_path, capsys):
    assert main(["report", str(run_dir), "--out", str(tmp_path / "r"), "--formats", "png", "--city", "Border-A"]) == 0
    assert "report: " in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["report", str(run_dir), "--out", str(tmp_path / "r"), "--city", "Bordr-A"]) == 2
    assert "did you mean Border-A" in capsys.readouterr().err
    assert main(["report", str(run_dir), "--scenario", "nope"]) == 2
    assert "scenarios: base, cut" in capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert re.match(r"cobenefits \S+\n", out)
    for lib in ("numpy", "numba", "xarray", "netCDF4", "matplotlib"):
        assert re.search(rf"^  {lib} \d", out, re.M), lib


# --------------------------------------------------------------------------- a real browser
_CHECK = """<script>
window.__errors=[];
window.addEventListener('error',function(e){window.__errors.push(String(e.message||(e.target&&e.target.src)))},true);
(function(){var ce=console.error;console.error=function(){window.__errors.push(Array.from(arguments).join(' '));
ce.apply(console,arguments)}})();
window.addEventListener('load',function(){var r=[];document.querySelectorAll('img').forEach(function(i){
var b=i.getBoundingClientRect();r.push([i.getAttribute('src'),i.naturalWidth,i.naturalHeight,b.width,b.height])});
var p=document.createElement('pre');p.id='__check';p.textContent=JSON.stringify({images:r,errors:window.__errors});
document.body.appendChild(p)});
</script>"""


def _browser():
    """The headless browser; skipped without one, except in CI (``COBENEFITS_CI=1``, set by
    ``.ci/run``, which installs Chromium): there a missing browser fails the test."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    why = "no headless browser: install Chromium with 'apt-get install -y chromium'"
    if os.environ.get("COBENEFITS_CI") == "1":
        pytest.fail(why + " (COBENEFITS_CI=1: the browser test must run in CI)")
    pytest.skip(why)


def _load_in_browser(page, tmp_path):
    """Open ``page`` (a copy with the checking script) in headless Chromium; return what it saw."""
    probe = page.with_name("_browser_check.html")
    probe.write_text(page.read_text().replace("<head>", "<head>" + _CHECK, 1))
    try:
        p = subprocess.run([_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                            "--disable-component-update", "--disable-sync", "--no-first-run",
                            f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
                            "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                           capture_output=True, text=True, timeout=120)
    finally:
        probe.unlink()
    m = re.search(r'<pre id="__check">(.*?)</pre>', p.stdout, re.S)
    assert m, f"the page did not finish loading: {p.stderr[-2000:]}"
    seen = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    seen["console"] = [ln for ln in p.stderr.splitlines() if ":CONSOLE(" in ln]
    return seen


def test_page_renders_in_a_real_browser(report, tmp_path):
    seen = _load_in_browser(report.index, tmp_path)
    assert seen["errors"] == [] and seen["console"] == []
    assert len(seen["images"]) == len(FIGS)
    for src, nw, nh, w, h in seen["images"]:
        assert nw > 0 and nh > 0 and w > 0 and h > 0, src


def test_browser_check_sees_a_broken_image(report, tmp_path):
    # the check can fail: a page whose image is missing reports it
    bad = tmp_path / "b"
    shutil.copytree(report.out_dir, bad)
    (bad / "city_field.png").unlink()
    seen = _load_in_browser(bad / "index.html", tmp_path)
    broken = [r for r in seen["images"] if r[1] == 0]
    assert [r[0] for r in broken] == ["city_field.png"]
    assert seen["errors"]


@pytest.mark.slow
def test_report_of_a_real_run(tmp_path):
    """A real run on the default data set (Beijing and Tianjin), its report, and the browser."""
    cfg = load_config(None, overrides={"data": {"cities": "Beijing,Tianjin"}})
    res = run_national(cfg, tmp_path / "out", quiet=True)
    from engine.report.publish import write_report

    r = write_report(res.out_dir)
    assert r.skipped == {}
    lines = rp.headline_lines(res.out_dir, r.out_dir)
    assert len(lines) == 4 and lines[-1].endswith("index.html")
    with xr.open_dataset(res.out_dir / "city_fields.nc") as ds:
        assert int(ds.sel(city=110000).grid_nx) > 0
    from engine.output.persist import verify_output

    assert verify_output(res.out_dir) == []  # the report amended the run's manifest
    if os.environ.get("COBENEFITS_CI") == "1" or any(shutil.which(b) for b in ("chromium", "chromium-browser",
                                                                                "google-chrome")):
        seen = _load_in_browser(r.index, tmp_path)
        assert seen["errors"] == [] and all(i[1] > 0 and i[3] > 0 for i in seen["images"])


def test_method_notes_state_sources_met_seasons_and_health():
    from engine.report.html import _method_notes

    notes = _method_notes({"source_set": "province", "met": ["m1", "m2"],
                           "seasons": {"seasons": ["heating", "non_heating"], "method": "one matrix per season"},
                           "health_concentration_method": "primary"})
    assert notes == ["Concentrations are primary PM2.5 (no secondary aerosol) from the emissions of every city "
                     "of its province and its rest of province (source_set = 'province').",
                     "Met: m1; m2.", "Seasons (heating, non_heating): one matrix per season.", "Health: primary."]
    assert _method_notes({}) == []


@pytest.mark.parametrize("fork", [True, False])
def test_concentration_figures_skipped_in_the_child_reach_the_page(run_dir, tmp_path, monkeypatch, fork):
    # the map and the city field are drawn by a forked child (engine.parallel.Background); without
    # the NetCDF files they are skipped there, with the reason, and the other figures are drawn here
    import shutil

    from engine import parallel

    monkeypatch.setattr(parallel, "fork_available", lambda: fork and parallel.sys.platform.startswith("linux"))
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("*.nc", "report"))
    r = rp.build_report(copy, out_dir=tmp_path / "rep", formats=("png",))
    assert set(r.skipped) == {"concentration_map", "city_field"}
    assert all("concentration.nc" in v or "city_fields.nc" in v or "No such file" in v for v in r.skipped.values())
    page = r.index.read_text()
    assert "figure concentration_map skipped" in page and "figure city_field skipped" in page
    assert (tmp_path / "rep" / "fig4_quadrants.png").exists()
    assert not (tmp_path / "rep" / "city_field.png").exists()

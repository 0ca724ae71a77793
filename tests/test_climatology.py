"""engine.dispersion.climatology: AERMET-way boundary-layer formulas, hourly -> climatology, seasonal shares, files."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.dispersion import climatology as clim
from engine.errors import InputError
from engine.dispersion.fields import KernelSpec, compute_kernel, same_convolution
from engine.dispersion.met import read_aermet

MET = Path(__file__).parent / "data" / "aermod" / "met"
ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- AERMET formulas
def test_stable_scales_hand_derivation():
    # g = 9.80616 m s-2, the project's one g (AERMOD's; AERMET's own G = 9.80655 is 4e-5 apart,
    # well inside the tolerances below)
    # u = 5 m/s at 10 m, z0 = 0.1 m, clear night (n = 0), T = 288 K, AERMET UCALST (non-ADJ_U*):
    # theta* = 0.09; C_D = 0.4/ln(100) = 0.0868589; u0^2 = 5.0*10*9.80616*0.09/288 = 0.153227
    # chek = 4 u0^2/(C_D u^2) = 4*0.153227/(0.0868589*25) = 0.282262
    # u* = C_D u/2 (1 + sqrt(1 - chek)) = 0.217147*(1 + 0.847194) = 0.401117; u* theta* = 0.0361 < 0.05
    # L = T u*^2/(k g theta*) = 288*0.160895/(0.4*9.80616*0.09) = 131.26 m
    us, th, L = clim.stable_scales(np.array([5.0]), 0.0, 288.0, 0.1)
    assert th[0] == pytest.approx(0.09, rel=1e-12)
    assert us[0] == pytest.approx(0.401117, rel=1e-5)
    assert L[0] == pytest.approx(131.26, rel=1e-4)


def test_stable_scales_low_wind_branch_scales_linearly():
    # below u_cr = 2 u0/sqrt(C_D) u* and theta* scale with u/u_cr (UCALST "imaginary solution")
    cdn = 0.4 / math.log(100.0)
    u0 = math.sqrt(5.0 * 10.0 * 9.80616 * 0.09 / 288.0)
    ucr = 2.0 * u0 / math.sqrt(cdn)
    u = np.array([0.5 * ucr, 0.25 * ucr])
    us, th, L = clim.stable_scales(u, 0.0, 288.0, 0.1)
    np.testing.assert_allclose(us, cdn * ucr / 2.0 * u / ucr, rtol=1e-12)
    np.testing.assert_allclose(th, 0.09 * u / ucr, rtol=1e-12)


def test_stable_heat_loss_cap():
    # strong wind over rough ground: u* theta* would exceed 0.05 m/s K; AERMET caps it (eq. 26)
    us, th, L = clim.stable_scales(np.array([12.0]), 0.0, 288.0, 1.0)
    assert us[0] * th[0] == pytest.approx(0.05, rel=1e-9)
    # and u* solves the stable quadratic with theta* = 0.05/u*
    cdn = 0.4 / math.log(10.0)
    c = 1.0 - 4.0 * 5.0 * 10.0 * 9.80616 * th[0] / (288.0 * cdn * 144.0)
    assert us[0] == pytest.approx(cdn * 12.0 / 2.0 * (1.0 + math.sqrt(c)), rel=1e-9)


def test_net_radiation_night_and_noon_hand_values():
    # night, clear: Rn = (c1 T^6 - sigma T^4)/(1 + c3) = (303.00 - 390.08)/1.12 = -77.75 W m-2 at 288 K
    t = 288.0
    night = (5.31e-13 * t**6 - 5.67e-8 * t**4) / 1.12
    assert clim.net_radiation(-10.0, 0.0, t, 0.2) == pytest.approx(night, rel=1e-12)
    assert night == pytest.approx(-77.75, abs=0.01)
    # sun at 60 deg, overcast n = 1: R = (990 sin 60 - 30)(1 - 0.75) = 206.84 W m-2,
    # albedo = 0.2 + 0.8 exp(-6 - 0.32) = 0.201441
    r = (990.0 * math.sin(math.radians(60.0)) - 30.0) * 0.25
    alb = 0.2 + 0.8 * math.exp(-0.1 * 60.0 - 0.5 * 0.64)
    want = ((1 - alb) * r + 5.31e-13 * t**6 - 5.67e-8 * t**4 + 60.0) / 1.12
    assert clim.net_radiation(60.0, 1.0, t, 0.2) == pytest.approx(want, rel=1e-12)


def test_convective_scales_solve_the_profile_and_L():
    u, hflux, t, z0 = np.array([2.0, 4.0]), np.array([150.0, 300.0]), 300.0, 0.1
    us, L = clim.convective_scales(u, hflux, t, z0)
    np.testing.assert_allclose(L, -1204.8 * t * us**3 / (0.4 * 9.80616 * hflux), rtol=1e-12)
    x = lambda z: (1 - 16 * z / L) ** 0.25  # noqa: E731
    psi = lambda z: 2 * np.log((1 + x(z)) / 2) + np.log((1 + x(z) ** 2) / 2) - 2 * np.arctan(x(z)) + np.pi / 2  # noqa: E731
    np.testing.assert_allclose(us, 0.4 * u / (np.log(10 / z0) - psi(10.0) + psi(z0)), rtol=1e-6)  # iteration converged


def test_surface_characteristics_are_the_aermet_table_values():
    # AERMET user's guide Tables 4-1..4-3, grassland: summer 0.18 / 0.8 / 0.10; autumn 0.20 / 1.0 / 0.01
    assert clim.surface_characteristics("north_china", "non_heating") == {
        "albedo": 0.18, "bowen_ratio": 0.8, "roughness_length_m": 0.10}
    assert clim.surface_characteristics("north_china", "heating") == {
        "albedo": 0.20, "bowen_ratio": 1.0, "roughness_length_m": 0.01}
    assert clim.surface_characteristics("northeast", "heating")["albedo"] == 0.60  # snow cover


def test_aermet_climatology_structure_and_physics():
    c = clim.aermet_climatology("north_china")
    assert set(c.seasons) == {"heating", "non_heating"}
    assert c.season_frequency["heating"] == pytest.approx(151 / 365)
    for s in c.seasons:
        assert c.classes["frequency"][c.classes["season"] == s].sum() == pytest.approx(1.0, rel=1e-12)
    # calms: Rayleigh mass below 0.5 m/s at the region's 2.3 m/s mean: 1 - exp(-pi/4 (0.5/2.3)^2)
    assert c.calm_frequency["heating"] == pytest.approx(1 - math.exp(-math.pi / 4 * (0.5 / 2.3) ** 2), rel=1e-9)
    k = c.classes
    stable = k["monin_obukhov_length_m"] > 0
    conv = ~stable
    assert np.isnan(k["conv_mixing_height_m"][stable]).all()
    assert (k["conv_mixing_height_m"][conv] > 0).all() and (k["convective_velocity_m_s"][conv] > 0).all()
    np.testing.assert_allclose(k["roughness_length_m"][k["season"] == "heating"], 0.01)
    # the met is valid MetHours, season by season and annual
    for s in (None, "heating", "non_heating"):
        m = c.met(s)
        assert m.valid.all() and m.weight.sum() == pytest.approx(1.0)
    # nights over a smooth met site are far more stable than the Golder class F at z0 = 1 m (L 28.6 m)
    g = k["stability_class"] == "G"
    assert np.median(k["monin_obukhov_length_m"][g]) < 10.0


def test_seasonal_emission_shares():
    f_heat = 151 / 365
    assert clim.seasonal_emission_shares("heating_individual", "south") == {"heating": 1.0, "non_heating": 0.0}
    flat = clim.seasonal_emission_shares("steel", "north_china")
    assert flat["heating"] == pytest.approx(f_heat) and sum(flat.values()) == pytest.approx(1.0)
    p = clim.seasonal_emission_shares("power", "north_china")
    assert p["heating"] == pytest.approx((1 - 0.303) * f_heat + 0.303)
    assert clim.seasonal_emission_shares("power", "south")["heating"] == pytest.approx(f_heat)
    with pytest.raises(ValueError, match="unknown climate region"):
        clim.seasonal_emission_shares("power", "atlantis")


def test_season_coefficients_flat_sector_gives_the_annual_kernel():
    c = clim.aermet_climatology("sichuan_basin")
    spec = lambda m: KernelSpec(m.digest(), 1000.0, 3)  # noqa: E731
    kern = {s: compute_kernel(spec(c.met(s)), c.met(s), use_cache=False) for s in c.seasons}
    annual = compute_kernel(spec(c.met()), c.met(), use_cache=False)
    coef = c.season_coefficients()
    flat = clim.seasonal_emission_shares("steel", "sichuan_basin")
    superposed = sum(coef[s] * flat[s] * kern[s] for s in c.seasons)
    np.testing.assert_allclose(superposed, annual, rtol=1e-9)  # linearity of the weighted period mean


# --------------------------------------------------------------------------- hourly -> climatology
def _city_field(met, n=30):
    k = compute_kernel(KernelSpec(met.digest(), 1000.0, n - 1), met, use_cache=False, exact_half_width=n)
    return same_convolution(k, np.ones((n, n)))


@pytest.mark.parametrize("files", [("synth24.sfc", "synth24.pfl"),
                                   ("lovett1988_0627_0701.sfc", "lovett1988_0627_0701.pfl")])
def test_climatology_from_hourly_reproduces_the_hourly_city(files, tmp_path):
    """Issue 10: the climatology of an hourly file reproduces the hourly run of a 30 km city
    (1 km cells, ground-level release): city mean within 10 %, receptors above 10 % of the
    maximum within 20 %. The climatology goes through its file format."""
    met = read_aermet(MET / files[0], MET / files[1])
    out = tmp_path / "clim.csv"
    clim.write_climatology(clim.climatology_from_met(met), out)
    c = clim.read_climatology(out)
    if files[0].startswith("lovett"):  # observed sigma-theta/sigma-w at 10, 50, 100 m carried per class
        assert c.profile_heights_m == (10.0, 50.0, 100.0)
        assert np.isfinite(c.classes["profile_sigma_w_m_s"][:, 0]).all()
    hourly = _city_field(met)
    classes = _city_field(c.met())
    assert classes.mean() / hourly.mean() == pytest.approx(1.0, abs=0.10)
    sel = hourly > 0.1 * hourly.max()
    ratio = classes[sel] / hourly[sel]
    assert ratio.min() > 0.8 and ratio.max() < 1.2


def test_hourly_climatology_counts_calm_and_missing(tmp_path):
    met = read_aermet(MET / "lovett1988_0627_0701.sfc")
    c = clim.climatology_from_met(met)
    assert c.seasons == ("non_heating",)  # June-July
    assert c.calm_frequency["non_heating"] == 0.0  # no calm hour in these 120 (AERMOD test notes)
    assert len(c) > 0
    lines = (MET / "synth24.sfc").read_text().splitlines()
    toks = lines[3].split()
    toks[15] = "0.00"  # reference wind 0 = calm (AERMOD)
    lines[3] = " ".join(toks)
    p = tmp_path / "calm.sfc"
    p.write_text("\n".join(lines) + "\n")
    c2 = clim.climatology_from_met(read_aermet(p))
    assert c2.calm_frequency["non_heating"] == pytest.approx(1 / 24)


def test_read_climatology_errors_name_line_and_column(tmp_path):
    met = read_aermet(MET / "synth24.sfc")
    good = tmp_path / "c.csv"
    clim.write_climatology(clim.climatology_from_met(met), good)
    lines = good.read_text().splitlines()
    hdr = lines[5].split(",")
    row = lines[6].split(",")
    row[hdr.index("friction_velocity_m_s")] = "fast"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines[:6] + [",".join(row)] + lines[7:]) + "\n")
    with pytest.raises(InputError, match=r"bad.csv, line 7, column 'friction_velocity_m_s'"):
        clim.read_climatology(bad)
    bad.write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(InputError, match="cobenefits-climatology-v1"):
        clim.read_climatology(bad)
    row = lines[6].split(",")
    row[hdr.index("stability_class")] = "Z"
    bad.write_text("\n".join(lines[:6] + [",".join(row)] + lines[7:]) + "\n")
    with pytest.raises(InputError, match=r"line 7, column 'stability_class': 'Z'"):
        clim.read_climatology(bad)
    row = lines[6].split(",")
    row[hdr.index("sector")] = ""
    bad.write_text("\n".join(lines[:6] + [",".join(row)] + lines[7:]) + "\n")
    with pytest.raises(InputError, match=r"line 7, column 'sector'"):
        clim.read_climatology(bad)


def test_met_spec_names_and_climatology_file(tmp_path):
    from engine.config import MetConfig

    s = clim.met_spec_for_city(MetConfig(climatology="aermet"), 110100, 110000)
    assert s.kind == "aermet_climatology" and s.name == "north_china"
    assert clim.met_spec_for_city(MetConfig(climatology="golder"), 110100, 110000).kind == "default"
    with pytest.raises(InputError, match="valid: default, golder, aermet"):
        clim.met_spec_for_city(MetConfig(climatology="isc"), 110100, 110000)
    out = tmp_path / "c.csv"
    r = subprocess.run([sys.executable, "-m", "engine", "--quiet", "met-climatology", str(MET / "synth24.sfc"),
                        str(MET / "synth24.pfl"), "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    spec = clim.met_spec_for_city(MetConfig(climatology_file=str(out)), 110100, 110000)
    assert spec.kind == "climatology_file"
    assert len(clim.load_met(spec)) == len(clim.read_climatology(out))
    r = subprocess.run([sys.executable, "-m", "engine", "met-climatology", str(tmp_path / "none.sfc"), "--out",
                        str(out)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "none.sfc" in r.stderr and "Traceback" not in r.stderr


def test_seasonal_source_shares_mix_sectors():
    e = {"heating_individual": np.array([10.0, 0.0, 0.0]), "steel": np.array([30.0, 5.0, 0.0]),
         "power": np.array([60.0, 5.0, 0.0])}
    sh = clim.seasonal_source_shares(e, ["north_china", "south", "south"])
    f = 151 / 365
    # source 0: (10 x 1 + 30 f + 60 ((1 - 0.303) f + 0.303))/100
    want0 = (10.0 + 30.0 * f + 60.0 * ((1 - 0.303) * f + 0.303)) / 100.0
    assert sh["heating"][0] == pytest.approx(want0, rel=1e-12)
    assert sh["heating"][1] == pytest.approx(f, rel=1e-12)  # the south: power is flat
    assert sh["heating"][2] == pytest.approx(f, rel=1e-12)  # no emission: flat
    np.testing.assert_allclose(sh["heating"] + sh["non_heating"], 1.0, rtol=1e-12)


def test_load_seasonal_met_keys_and_coefficients():
    from engine.config import MetConfig

    spec = clim.met_spec_for_city(MetConfig(climatology="aermet"), 510100, 510000)
    sm = clim.load_seasonal_met(spec)
    assert set(sm) == {"heating", "non_heating"}
    c = clim.load_climatology(spec)
    for s, (met, coef, dig) in sm.items():
        assert coef == pytest.approx((1 - c.calm_frequency[s]) / sum(
            c.season_frequency[t] * (1 - c.calm_frequency[t]) for t in c.seasons))
        assert len(met) == int((c.classes["season"] == s).sum())
    assert sm["heating"][2] != sm["non_heating"][2]


def test_aermet_hours_respect_aermet_limits():
    h, w = clim.aermet_hours("northeast", "heating")
    a = np.abs(h["monin_obukhov_length_m"])
    assert a.min() >= 1.0 and a.max() <= 8888.0  # AERMET MPPBL
    assert np.nanmax(h["mech_mixing_height_m"]) <= 4000.0
    assert w.sum() == pytest.approx(1.0, rel=1e-9)  # every (day, hour, cloud, speed) of the season


@pytest.mark.slow
@pytest.mark.parametrize("region", sorted(clim.CLIMATE_REGIONS))
def test_every_region_builds_a_valid_aermet_climatology(region):
    c = clim.aermet_climatology(region)
    for s in (None, *c.seasons):
        m = c.met(s)
        assert m.valid.all() and m.weight.sum() == pytest.approx(1.0)
    # heating-season nights over a smoother met site are more stable: mean 1/L of stable classes
    k = c.classes
    inv = {s: np.sum(k["frequency"] / k["monin_obukhov_length_m"] * ((k["season"] == s) & (k["monin_obukhov_length_m"] > 0)))
           for s in c.seasons}
    assert inv["heating"] > inv["non_heating"]


def test_stability_classes_by_z0_runs_equal_the_per_hour_lines():
    # z0 in a few runs (a region's two seasons) takes per-run boundaries; shuffled (hundreds of runs)
    # the per-hour Golder lines: the same class for every hour
    from engine.dispersion.climatology.classes import stability_class_index

    rng = np.random.default_rng(3)
    n = 20000
    inv_l = np.concatenate([rng.normal(0.0, 0.08, n), [1e-12, -1e-12, 1e-9, -1e-9]])
    z0 = np.where(np.arange(inv_l.size) < inv_l.size // 3, 0.05, 0.4)
    z0[-100:] = 1.3  # a third run
    runs = stability_class_index(1.0 / inv_l, z0)
    order = rng.permutation(inv_l.size)
    per_hour = np.empty_like(runs)
    per_hour[order] = stability_class_index(1.0 / inv_l[order], z0[order])
    assert np.array_equal(runs, per_hour)
    assert set(np.unique(runs)) == set(range(8))  # every class met, A to G

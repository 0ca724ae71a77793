"""Emission heights by sector (issue 17): plume rise per met class, height classes in S, superpose.

* plume rise: AERMOD's final rise (prise.f / calc2.f DISTF, PENFCT, CBLPR3) re-derived by hand
  here for one stable and two convective met classes;
* the composite kernel of a stack class is the mass-weighted sum over height bins (a fake
  area kernel equal to its release height returns the mass-weighted mean effective height);
* the data files are checked (each sector's shares sum to 1; a bad file names file and line);
* on the synthetic nation: the ground class of a "sector" run is the "ground" run's matrix,
  each source's height shares follow its sector mix, and the exposure is
  C = sum_s sum_h S_sh (share_sh q), the forward fields giving the same as the rows.
"""

import dataclasses
import math

import numpy as np
import pytest

import synthetic_nation as sn
from engine import pipeline as pl
from engine.config import load_config
from engine.dispersion import fields as fl
from engine.dispersion import plumerise as pr
from engine.dispersion.met import MetHours
from engine.errors import InputError

G = 9.80616  # AERMOD MODULES.f
K = 0.4


def _met(**kw):
    base = dict(wind_speed_m_s=5.0, wind_from_deg=270.0, friction_velocity_m_s=0.2, monin_obukhov_length_m=100.0,
                mech_mixing_height_m=300.0, roughness_length_m=0.1, temperature_k=280.0)
    base.update(kw)
    return MetHours.from_arrays(**base)


def test_stable_final_rise_by_hand():
    st = pr.Stack(100.0, 15.0, 400.0, 4.0)
    h, f, sz = pr.effective_heights(_met(), st)
    # FLUXES: F_b = g v r^2 (Ts - Ta) / Ts, F_m = v^2 r^2 Ta / Ts
    fb = G * 15.0 * 4.0 * (400.0 - 280.0) / 400.0
    fm = 15.0**2 * 4.0 * 280.0 / 400.0
    assert fb == pytest.approx(176.5109, rel=1e-6)
    # REFWS at 100 m: u*/k [ln(z/z0) - psi(z/L) + psi(z0/L)], psi(x) = -17 (1 - exp(-0.29 x)) (stable)
    psi = lambda x: -17.0 * (1.0 - math.exp(-0.29 * x))  # noqa: E731
    u = 0.2 / K * (math.log(100.0 / 0.1) - psi(1.0) + psi(0.001))
    assert u == pytest.approx(5.591, abs=1e-3)
    # REFPTG: theta* = T u*^2 / (g k L); dtheta/dz(100 m) = theta* / (k z) (1 + 5 z / L); N^2 = g tg / T
    thstar = 280.0 * 0.2**2 / (G * K * 100.0)
    n2 = G * (thstar / (K * 100.0) * 6.0) / 280.0
    # DISTF: min(2.66 (Fb / (N^2 u))^1/3, neutral 1.2 Ln^0.6 (hs + 1.2 Ln)^0.4, CBL rise at x_maxn, calm)
    stable = 2.66 * (fb / (n2 * u)) ** (1 / 3)
    ln = fb / (u * 0.2**2)
    neutral = 1.2 * ln**0.6 * (100.0 + 1.2 * ln) ** 0.4
    x = 119.0 * fb**0.4  # F_b >= 55
    cbl = (3 * fm * x / (0.36 * u**2) + 3 * fb * x**2 / (2 * 0.36 * u**3)) ** (1 / 3)
    calm = 4.0 * fb**0.25 / n2**0.375
    dh = min(stable, neutral, cbl, calm)
    # here the neutral/unstable limit (Briggs's rise at the distance of final rise) binds, just below 2.66 (...)^1/3
    assert dh == cbl and dh == pytest.approx(157.35, abs=0.01) and stable == pytest.approx(158.22, abs=0.01)
    # v_s = 15 > 1.5 u_s: no stack-tip downwash
    assert h[0, 0] == pytest.approx(100.0 + dh, rel=1e-9)
    assert f[0].tolist() == [1.0, 0.0]
    assert sz[0, 0] == pytest.approx(0.4 * dh / math.sqrt(2.0), rel=1e-9)  # BID


def test_convective_rise_and_penetration_by_hand():
    st = pr.Stack(210.0, 20.0, 323.0, 7.0)
    common = dict(monin_obukhov_length_m=-50.0, friction_velocity_m_s=0.4, convective_velocity_m_s=1.5,
                  temperature_k=290.0, roughness_length_m=0.1)
    deep = _met(conv_mixing_height_m=1200.0, mech_mixing_height_m=400.0, **common)
    shallow = _met(conv_mixing_height_m=300.0, mech_mixing_height_m=250.0, **common)
    fb = G * 20.0 * 3.5**2 * (323.0 - 290.0) / 323.0
    fm = 20.0**2 * 3.5**2 * 290.0 / 323.0
    # unstable psi_m (UNSTU), x = (1 - 16 z / L)^(1/4)
    def psi(z):
        x = (1.0 - 16.0 * z / -50.0) ** 0.25
        return 2 * math.log((1 + x) / 2) + math.log((1 + x * x) / 2) - 2 * math.atan(x) + math.pi / 2
    u = 0.4 / K * (math.log(210.0 / 0.1) - psi(210.0) + psi(0.1))
    x = 119.0 * fb**0.4
    dh = (3 * fm * x / (0.36 * u**2) + 3 * fb * x**2 / (2 * 0.36 * u**3)) ** (1 / 3)
    h, f, _ = pr.effective_heights(deep, st)
    # PENFCT: P_s = F_b / (u N_h^2 (z_i - h_s)^3), N_h^2 = g 0.005 / T (default gradient above z_i)
    ps = fb / (u * G * 0.005 / 290.0 * (1200.0 - 210.0) ** 3)
    hh = (17.576 * ps + 0.296296) ** (1 / 3)  # dh_e / dh_h, just above 2/3: ~1 % penetrates
    ppf = 1.5 - 1.0 / hh
    assert 0 < ppf < 0.02
    assert f[0].tolist() == pytest.approx([1.0 - ppf, ppf], rel=1e-9) and h[0, 0] == pytest.approx(210.0 + dh, rel=1e-9)
    h, f, _ = pr.effective_heights(shallow, st)
    ps = fb / (u * G * 0.005 / 290.0 * 90.0**3)
    hh = (17.576 * ps + 0.296296) ** (1 / 3)
    ppf = 1.0 if hh > 2 else 1.5 - 1.0 / hh
    assert 0 < ppf <= 1
    assert f[0, 1] == pytest.approx(ppf, rel=1e-9) and f[0].sum() == pytest.approx(1.0)
    assert h[0, 0] == pytest.approx(300.0, rel=1e-12)  # the direct plume capped at z_i
    dh3 = hh * 90.0 if ppf == 1.0 else 0.75 * 90.0 * hh + 0.5 * 90.0  # CBLPR3
    assert h[0, 1] == pytest.approx(210.0 + dh3, rel=1e-9) and h[0, 1] > 300.0


def _mixed_met():
    n = 6
    return MetHours.from_arrays(
        wind_speed_m_s=np.array([1.5, 3.0, 6.0, 2.0, 4.0, 8.0]), wind_from_deg=np.arange(n) * 60.0,
        friction_velocity_m_s=np.array([0.1, 0.2, 0.4, 0.3, 0.4, 0.6]),
        monin_obukhov_length_m=np.array([20.0, 80.0, 500.0, -20.0, -100.0, -1000.0]),
        convective_velocity_m_s=np.array([np.nan, np.nan, np.nan, 1.8, 1.4, 0.8]),
        conv_mixing_height_m=np.array([np.nan, np.nan, np.nan, 1500.0, 800.0, 400.0]),
        mech_mixing_height_m=np.array([80.0, 200.0, 600.0, 300.0, 500.0, 900.0]),
        roughness_length_m=0.3, temperature_k=285.0, weight=np.array([1.0, 2.0, 1.0, 3.0, 1.0, 2.0]))


@pytest.mark.parametrize("stack", [pr.Stack(35.0, 8.0, 423.0, 1.2), pr.Stack(210.0, 20.0, 323.0, 7.0)])
def test_height_bins_keep_mass_and_mean_height(stack):
    met = _mixed_met()
    h, f, _ = pr.effective_heights(met, stack)
    groups = pr.height_groups(met, stack)
    assert sum(g[4] for g in groups) == pytest.approx(1.0, rel=1e-12)
    mean = (met.weight[:, None] * f * h).sum() / met.weight.sum()
    assert sum(g[4] * g[2] for g in groups) == pytest.approx(mean, rel=1e-12)
    for rows, w, hm, _, _ in groups:  # a bin is at most HEIGHT_BIN_RATIO wide
        inside = h[rows][(f[rows] > 0)]
        assert hm >= inside.min() / pr.HEIGHT_BIN_RATIO and hm <= inside.max() * pr.HEIGHT_BIN_RATIO


def test_stack_kernel_is_the_mass_weighted_sum_of_area_kernels(tmp_path, monkeypatch):
    monkeypatch.setenv("COBENEFITS_CACHE_DIR", str(tmp_path))
    met = _mixed_met()
    stack = pr.Stack(100.0, 15.0, 403.0, 4.0)

    def fake(m, *, cell_size_m, spacing_m, n_half, release_height_m, initial_sigma_z_m, **kw):
        # an "area kernel" equal to its release height, weighted like period_kernel (valid weights)
        return np.full((2 * n_half + 1,) * 2, release_height_m)

    spec = fl.KernelSpec("m", 1000.0, 3, stack=stack)
    k = fl.compute_kernel(spec, met, kernel_fn=fake, use_cache=False)
    h, f, _ = pr.effective_heights(met, stack)
    mean = (met.weight[:, None] * f * h).sum() / met.weight.sum()
    np.testing.assert_allclose(k, mean, rtol=1e-12)
    assert fl.KernelSpec("m", 1000.0, 3).key() != spec.key()


def test_shipped_tables_are_consistent():
    eh = pr.load_emission_heights()
    assert eh.classes[0] == "ground" and eh.stacks["ground"] is None
    assert {"low_stack", "tall_stack"} <= set(eh.classes)
    for sec, d in eh.shares.items():
        assert sum(d.values()) == pytest.approx(1.0, abs=1e-9)
    assert eh.sector_share("power", "tall_stack") == 1.0
    assert eh.sector_share("heating_individual", "ground") == 1.0
    assert eh.sector_share("not_a_sector", "ground") == 1.0  # unlisted: ground


def test_bad_tables_name_file_and_line(tmp_path):
    classes = tmp_path / "classes.csv"
    classes.write_text("# c\nheight_class,stack_height_m,exit_velocity_m_s,exit_temperature_k,diameter_m\n"
                       "ground,,,,\nlow,35,8,423,-1\n")
    shares = tmp_path / "shares.csv"
    shares.write_text("sector,height_class,share\npower,low,1\n")
    with pytest.raises(InputError, match=r"classes.csv, line 4: diameter_m = -1"):
        pr.load_emission_heights(classes, shares)
    classes.write_text("height_class,stack_height_m,exit_velocity_m_s,exit_temperature_k,diameter_m\n"
                       "ground,,,,\nlow,35,8,423,1.2\n")
    shares.write_text("sector,height_class,share\npower,low,0.6\npower,ground,0.3\n")
    with pytest.raises(InputError, match=r"shares.csv: the shares of sector 'power' sum to 0.9"):
        pr.load_emission_heights(classes, shares)
    shares.write_text("sector,height_class,share\npower,tall,1\n")
    with pytest.raises(InputError, match=r"shares.csv, line 2: height_class 'tall' is not in"):
        pr.load_emission_heights(classes, shares)


# --------------------------------------------------------------------------- synthetic nation
def _sector_carbon_fn(cfg, data):
    """sn.carbon_fn's emissions split 50/50 between power (tall stack) and household heating (ground)."""
    res = sn.carbon_fn()(cfg, data)
    c, r = res.cities.copy(), res.rop.copy()
    for t in (c, r):
        tot = t["pm25_t"].where(t["pm25_t"] > 0, 1.0)  # sn gives the ROPs intensities only
        t["pm25_power_t"] = 0.5 * tot
        t["pm25_heating_individual_t"] = 0.5 * tot
    return dataclasses.replace(res, cities=c, rop=r)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for mode in ("ground", "sector"):
        tmp = tmp_path_factory.mktemp(mode)
        cfg = load_config(sn.write_configs(tmp, emission_heights=mode), overrides={"data": {"cities": "130100,130200"}})
        prep = pl.prepare(cfg, data=sn.nation())
        q = pl.emissions(prep, _sector_carbon_fn(prep.cfg, prep.data))
        res, _ = pl.receptor_pass(prep, q=q, quiet=True, workers=1, use_cache=False)
        out[mode] = (prep, q, res, pl.sr_dataset(prep, res))
    return out


def test_ground_class_is_the_ground_model(runs):
    _, _, _, Sg = runs["ground"]
    prep, _, _, Ss = runs["sector"]
    assert "S_height" not in Sg and Ss["S_height"].dims == ("height", "city", "source")
    assert list(Ss["height"].values) == list(prep.height_classes)
    np.testing.assert_allclose(Ss["S_height"].sel(height="ground").values, Sg["S"].values, rtol=1e-12)
    np.testing.assert_allclose(Ss["S"].values, Sg["S"].values, rtol=1e-12)
    # an elevated release gives less at the ground in its own city than the ground release
    assert (Ss["S_height"].sel(height="tall_stack").values[Ss["seen"].values]
            < Ss["S"].values[Ss["seen"].values]).all()


def test_height_shares_follow_the_sector_mix(runs):
    prep, q, _, _ = runs["sector"]
    hs = q["height_share"]
    np.testing.assert_allclose(hs.sum("height").values, 1.0, rtol=1e-12)
    np.testing.assert_allclose(hs.sel(height="tall_stack").values, 0.5, rtol=1e-12)
    np.testing.assert_allclose(hs.sel(height="ground").values, 0.5, rtol=1e-12)
    if "season_height_share" in q:
        j = q["season_height_share"]
        np.testing.assert_allclose(j.sum("season").values, hs.values, rtol=1e-12)
        np.testing.assert_allclose(j.sum("height").values, q["season_share"].values, rtol=1e-12)


def test_superpose_sums_seasons_and_heights_and_matches_the_fields(runs):
    prep, q, res, S = runs["sector"]
    conc = pl.superpose(S, q)
    if "S_season_height" in S:
        by_hand = np.einsum("shcj,shoj->oc", S["S_season_height"].values,
                            q["season_height_share"].values * q["q"].values[None, None])
    else:
        by_hand = np.einsum("hcj,hoj->oc", S["S_height"].values, q["height_share"].values * q["q"].values[None])
    np.testing.assert_allclose(conc["conc_ug_m3"].transpose("scenario", "city").values, by_hand, rtol=1e-12)
    parts = sum(conc[v] for v in conc.data_vars if v.startswith("conc_from_"))
    np.testing.assert_allclose(parts.values, conc["conc_ug_m3"].values, rtol=1e-12)
    ct = conc["conc_ug_m3"].transpose("scenario", "city").values
    for i, c in enumerate(prep.selected):
        r = res[c]
        w = r.exposure_weight / r.exposure_weight.sum()
        np.testing.assert_allclose((r.pm25 * w[None]).sum(axis=(1, 2)), ct[:, i], rtol=1e-9)
    # half the emission lifted to a tall stack: less exposure than all at the ground
    _, qg, _, Sg = runs["ground"]
    assert (ct < pl.superpose(Sg, qg)["conc_ug_m3"].transpose("scenario", "city").values).all()


def test_q_with_heights_needs_height_matrices(runs):
    _, q, _, _ = runs["sector"]
    _, _, _, Sg = runs["ground"]
    with pytest.raises(ValueError, match="emission-height shares but S has no S_height"):
        pl.superpose(Sg, q)


def test_config_key_is_checked():
    # "sector" is the default (issue 17); "ground" is the paper's approach, kept for comparison
    assert load_config(None).dispersion.emission_heights == "sector"
    assert load_config(None, overrides={"dispersion": {"emission_heights": "ground"}}).dispersion.emission_heights == "ground"
    assert load_config(None, overrides={"dispersion": {"emission_heights": "sector"}}).dispersion.emission_heights == "sector"
    with pytest.raises(InputError, match="emission_heights"):
        load_config(None, overrides={"dispersion": {"emission_heights": "tall"}})


def test_sr_matrix_file_holds_every_class(runs, tmp_path):
    import netCDF4

    from engine.output.netcdf import write_sr_dataset_netcdf

    _, _, _, S = runs["sector"]
    path = write_sr_dataset_netcdf(tmp_path / "sr_matrix.nc", S)
    with netCDF4.Dataset(path) as ds:
        np.testing.assert_array_equal(ds["S_height"][:], S["S_height"].values)
        v = ds["height_name"][:]
        names = v.tolist() if v.dtype.kind in "US" else netCDF4.chartostring(v).tolist()
        assert [str(n).strip() for n in names] == list(S["height"].values)
        if "S_season_height" in S:
            np.testing.assert_array_equal(ds["S_season_height"][:], S["S_season_height"].values)
        assert ds.emission_heights == "sector"

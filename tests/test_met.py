"""engine.dispersion.met: AERMET readers, missing codes, calm/missing hours, MetHours validation."""

from pathlib import Path

import numpy as np
import pytest

from engine.dispersion.area import AreaSources, area_concentrations
from engine.errors import InputError
from engine.dispersion.met import MetHours, read_aermet, read_pfl, read_sfc

MET = Path(__file__).parent / "data" / "aermod" / "met"


def test_read_sfc_values_and_missing_codes():
    s = read_sfc(MET / "synth5.sfc")
    assert s["date"].tolist() == [23070101, 23070102, 23070103, 23070104, 23070105]
    # hour 1 (NEUT_S, README table): u* 0.657, L 1000, zim 1225.8, u10 5.0 from 270
    assert s["friction_velocity_m_s"][0] == 0.657
    assert s["monin_obukhov_length_m"][0] == 1000.0
    assert s["mech_mixing_height_m"][0] == 1225.8
    # stable hours: w* -9, VPTG -9, zic -999 are AERMET missing codes -> NaN
    assert np.isnan(s["convective_velocity_m_s"][:3]).all()
    assert np.isnan(s["conv_mixing_height_m"][:3]).all()
    assert s["convective_velocity_m_s"][4] == 2.474


def test_read_pfl_sigma_missing_and_units():
    p = read_pfl(MET / "synth5.pfl")
    lv = p[23070101][0]
    assert lv["height_m"] == 10.0 and lv["wind_speed_m_s"] == 5.0
    assert lv["temperature_k"] == pytest.approx(293.15)  # 20.00 C
    assert np.isnan(lv["sigma_v_m_s"]) and np.isnan(lv["sigma_w_m_s"])  # 99 = missing


def test_read_aermet_builds_methours():
    met = read_aermet(MET / "synth24.sfc", MET / "synth24.pfl")
    assert len(met) == 24
    assert met.valid.all()
    assert met.profile_height_m.shape == (24, 1)
    assert (np.isnan(met.convective_velocity_m_s) == (met.monin_obukhov_length_m > 0)).all()


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_malformed_sfc_line_names_file_line_field(tmp_path):
    lines = (MET / "synth5.sfc").read_text().splitlines()
    toks = lines[2].split()
    toks[6] = "0.2x5"  # u*
    lines[2] = " ".join(toks)
    p = _write(tmp_path, "bad.sfc", "\n".join(lines) + "\n")
    with pytest.raises(InputError) as info:
        read_sfc(p)
    msg = str(info.value)
    assert "bad.sfc" in msg and "line 3" in msg and "friction_velocity_m_s" in msg


def test_short_sfc_line(tmp_path):
    lines = (MET / "synth5.sfc").read_text().splitlines()
    lines[1] = " ".join(lines[1].split()[:10])
    p = _write(tmp_path, "short.sfc", "\n".join(lines))
    with pytest.raises(InputError, match=r"short.sfc, line 2: only 10 fields.*mech_mixing_height_m"):
        read_sfc(p)


def test_malformed_pfl_line(tmp_path):
    text = (MET / "synth5.pfl").read_text().replace("270.0     5.00", "270.0     five", 1)
    p = _write(tmp_path, "bad.pfl", text)
    with pytest.raises(InputError, match=r"bad.pfl, line 1: field 'wind_speed_m_s' \(column 8\)"):
        read_pfl(p)


def test_missing_file():
    with pytest.raises(InputError, match="cannot read"):
        read_sfc(MET / "nope.sfc")


def test_calm_and_missing_hours(tmp_path):
    lines = (MET / "synth5.sfc").read_text().splitlines()
    t = lines[1].split()
    t[15] = "0.00"  # Uref = 0 -> calm
    lines[1] = " ".join(t)
    t = lines[2].split()
    t[6] = "-9.000"  # u* missing -> missing hour
    lines[2] = " ".join(t)
    p = _write(tmp_path, "cm.sfc", "\n".join(lines))
    met = read_aermet(p)
    assert met.calm.tolist() == [True, False, False, False, False]
    assert met.missing.tolist() == [False, True, False, False, False]
    c = area_concentrations(AreaSources([-500.0], [-500.0], 1000.0, 1000.0), [600.0], [0.0], met)
    assert c[0, 0] == 0.0 and c[1, 0] == 0.0 and c[2, 0] > 0


def test_from_arrays_validation():
    kw = dict(wind_speed_m_s=[5.0], wind_from_deg=[270.0], friction_velocity_m_s=[0.5],
              monin_obukhov_length_m=[100.0], mech_mixing_height_m=[500.0], roughness_length_m=[0.1])
    met = MetHours.from_arrays(**kw)
    assert met.weight.tolist() == [1.0] and met.valid.all()
    with pytest.raises(InputError, match="roughness_length_m.*allowed range"):
        MetHours.from_arrays(**{**kw, "roughness_length_m": [20.0]})
    with pytest.raises(InputError, match="wind_from_deg"):
        MetHours.from_arrays(**{**kw, "wind_from_deg": [400.0]})
    with pytest.raises(InputError, match="convective_velocity_m_s"):
        MetHours.from_arrays(**{**kw, "monin_obukhov_length_m": [-50.0], "conv_mixing_height_m": [800.0],
                                "convective_velocity_m_s": [-1.0]})


def test_observed_turbulence_and_multilevel_profile_are_used():
    base = read_aermet(MET / "synth5.sfc", MET / "synth5.pfl")
    # two-level profile with observed sigma-w and sigma-v: concentrations must change
    n = len(base)
    z = np.tile([10.0, 60.0], (n, 1))
    ws = np.stack([base.wind_speed_m_s, 1.6 * base.wind_speed_m_s], axis=1)
    kw = {f: getattr(base, f) for f in ("wind_speed_m_s", "wind_from_deg", "friction_velocity_m_s",
                                        "monin_obukhov_length_m", "mech_mixing_height_m",
                                        "roughness_length_m", "temperature_k",
                                        "convective_velocity_m_s", "conv_mixing_height_m")}
    obs = MetHours.from_arrays(**kw, profile_height_m=z, profile_wind_speed_m_s=ws,
                               profile_wind_from_deg=np.full((n, 2), 270.0),
                               profile_sigma_v_m_s=np.full((n, 2), 1.5),
                               profile_sigma_w_m_s=np.full((n, 2), 0.9),
                               profile_temperature_k=np.full((n, 2), 293.15))
    src = AreaSources([-500.0], [-500.0], 1000.0, 1000.0)
    c0 = area_concentrations(src, [3500.0], [0.0], base)
    c1 = area_concentrations(src, [3500.0], [0.0], obs)
    assert np.all(c1 > 0)
    assert np.all(np.abs(c1[:, 0] / c0[:, 0] - 1.0) > 0.05)
    # stable hours: observed sigma-v/sigma-w exceed similarity values, so the plume is diluted
    assert np.all(c1[:3, 0] < 0.95 * c0[:3, 0])


def test_sigma_v_from_sigma_theta_as_aermod_pflcnv():
    """AERMOD PFLCNV: sigma-v = s U sqrt(1 - eps^2), eps = sin(s) (1 - 0.073864 s), s in rad,
    floored at SVMIN = 0.2 m/s. Hand derivation for the LOVETT 10 m level of 1988-06-27 01
    (sigma-theta 31.30 deg, U 1.40 m/s): s = 0.546288 rad, sin s = 0.519519,
    eps = 0.519519 x 0.959649 = 0.498556, sqrt(1 - eps^2) = 0.866858,
    sigma-v = 0.546288 x 1.40 x 0.866858 = 0.66297 m/s (sigma-theta x U alone: 0.7648)."""
    from engine.dispersion.met import sigma_v_from_sigma_theta

    assert sigma_v_from_sigma_theta(31.30, 1.40) == pytest.approx(0.66297, rel=2e-5)
    # 5 deg at 1 m/s: 0.0873 x 0.9997 m/s < SVMIN -> 0.2
    assert sigma_v_from_sigma_theta(5.0, 1.0) == 0.2
    # missing sigma-theta, missing or zero wind speed -> missing
    assert np.isnan(sigma_v_from_sigma_theta(np.nan, 1.0))
    assert np.isnan(sigma_v_from_sigma_theta(10.0, np.nan))
    assert np.isnan(sigma_v_from_sigma_theta(10.0, 0.0))


def test_read_pfl_observed_turbulence_levels():
    """Three-level LOVETT profile: sigma-v from sigma-theta (PFLCNV), sigma-w floored at
    SWMIN = 0.02 m/s, 99 (missing) sigma-w at 50 m stays missing."""
    p = read_pfl(MET / "lovett1988_0627_0701.pfl")
    lv = p[88062701]
    assert [round(x["height_m"]) for x in lv] == [10, 50, 100]
    assert lv[0]["sigma_v_m_s"] == pytest.approx(0.66297, rel=2e-5)
    assert lv[0]["sigma_w_m_s"] == pytest.approx(0.34)
    assert np.isnan(lv[1]["sigma_w_m_s"])
    assert lv[0]["wind_from_deg"] == 321.0


# --------------------------------------------------------------------------- completeness
def _broken_met(tmp_path, kind):
    """synth5 copied into tmp_path/met with one completeness defect; returns the message
    each entry point must give."""
    met = tmp_path / "met"
    met.mkdir(exist_ok=True)
    sfc = (MET / "synth5.sfc").read_text().splitlines()
    pfl = (MET / "synth5.pfl").read_text().splitlines()
    s, p = met / "synth5.sfc", met / "synth5.pfl"
    if kind == "gap":  # hour 3 dropped from both files
        del sfc[3]
        del pfl[2]
        msg = f"{s}, line 4: 1-hour gap between 23070102 (line 3) and 23070104"
    elif kind == "duplicate":  # hour 2 written twice
        sfc.insert(3, sfc[2])
        pfl.insert(2, pfl[1])
        msg = f"{s}, line 4: hour 23070102 repeats line 3"
    elif kind == "pfl_date":  # profile hour 3 stamped as hour 6
        pfl[2] = pfl[2].replace("23  7  1  3", "23  7  1  6")
        msg = f"{p}, line 3: profile hour 23070106 does not match surface hour 23070103 ({s}, line 4)"
    elif kind == "pfl_short":
        del pfl[4]
        msg = f"{p}: profile file ends before surface hour 23070105 ({s}, line 6)"
    elif kind == "all_missing":  # u* coded missing (-9.000) in every hour
        sfc = [sfc[0]] + [ln[:25] + "  -9.000" + ln[33:] for ln in sfc[1:]]
        msg = f"{s}: no usable hour: all 5 hours (lines 2-6) are missing (5) or calm (0); e.g. line 2: u* missing"
    else:
        raise ValueError(kind)
    s.write_text("\n".join(sfc) + "\n")
    p.write_text("\n".join(pfl) + "\n")
    return s, p, msg


KINDS = ["gap", "duplicate", "pfl_date", "pfl_short", "all_missing"]


@pytest.mark.parametrize("kind", KINDS)
def test_met_completeness_read_aermet(tmp_path, kind):
    s, p, msg = _broken_met(tmp_path, kind)
    with pytest.raises(InputError) as ex:
        read_aermet(s, p)
    assert msg in str(ex.value)


@pytest.mark.parametrize("kind", KINDS)
def test_met_completeness_via_cobenefits_aermod(tmp_path, capsys, kind):
    """The same message through ``cobenefits aermod`` (exit 2, no traceback)."""
    import shutil

    from engine.cli import main

    _, _, msg = _broken_met(tmp_path, kind)
    case = tmp_path / "caseA_single"
    case.mkdir()
    shutil.copy(MET.parent / "caseA_single" / "aermod.inp", case / "aermod.inp")
    assert main(["aermod", str(case / "aermod.inp"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err
    assert not (case / "period_all.pst").exists()


@pytest.mark.parametrize("kind", ["gap", "pfl_date", "all_missing"])
def test_met_completeness_via_cobenefits_run(tmp_path, kind):
    """The same message through the national run with ``[met] sfc_file``/``pfl_file``, before
    any work starts."""
    import synthetic_nation as sn

    from engine.commands.run import run_national
    from engine.config import load_config

    s, p, msg = _broken_met(tmp_path, kind)

    def never(*a, **k):
        raise AssertionError("work started before the met was checked")

    cfg = load_config(sn.write_configs(tmp_path / "cfg",
                                       extra_met=f'sfc_file = "{s}"\npfl_file = "{p}"'))
    with pytest.raises(InputError) as ex:
        run_national(cfg, tmp_path / "out", data=sn.nation(), carbon_fn=never, kernel_fn=never,
                     age_population_fn=sn.age_population_fn, quiet=True)
    assert msg in str(ex.value)


def test_mixing_heights_limited_as_aermod(tmp_path):
    """SET_METDATA: zic and zim below 1 m become 1 m, above 4000 m become 4000 m."""
    sfc = (MET / "synth5.sfc").read_text().splitlines()
    # hour 5 (convective): zic 1500 -> 5000; hour 1: zim 1225.8 -> 0.5
    sfc[5] = sfc[5].replace("  1500.0   800.7", "  5000.0   800.7")
    sfc[1] = sfc[1].replace("  -999.0  1225.8", "  -999.0     0.5")
    (tmp_path / "m.sfc").write_text("\n".join(sfc) + "\n")
    met = read_aermet(tmp_path / "m.sfc", MET / "synth5.pfl")
    assert met.conv_mixing_height_m[4] == 4000.0
    assert met.mech_mixing_height_m[0] == 1.0

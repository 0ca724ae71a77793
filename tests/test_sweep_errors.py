"""Bad sweep files stop before any work with a message naming the file, the parameter and the range."""

import textwrap

import pytest

from engine import sensitivity as sw
from engine.cli import main
from engine.data.dataset import load_dataset
from engine.errors import InputError


def _never(*a, **k):
    raise AssertionError("work started before the sweep file was checked")


@pytest.fixture(scope="module")
def data():
    return load_dataset()


def _write(tmp_path, body, name="bad.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(body))
    return p


def _check(tmp_path, data, body, *needles):
    p = _write(tmp_path, body)
    with pytest.raises(InputError) as e:
        sw.sweep(p, out=tmp_path / "out", data=data, sr_fn=_never, carbon_fn=None)
    msg = str(e.value)
    assert str(p) in msg, msg
    for n in needles:
        assert n in msg, msg
    assert not (tmp_path / "out" / "samples.csv").exists()
    return msg


HEAD = """
[sweep]
method = "sobol"
samples = 8
scenario = "fyp_symbiosis"
"""


@pytest.mark.parametrize("body, needles", [
    (HEAD + '[[sweep.parameter]]\nkey = "carbon.seasonality_fraction"\nbounds = [0.0, 1.0]\n',
     ["carbon.seasonality_fraction", "(0.0, 1.0]"]),
    (HEAD + '[[sweep.parameter]]\nkey = "carbon.heat_availabilty_low"\nbounds = [0.5, 1.0]\n',
     ["carbon.heat_availabilty_low", "did you mean 'heat_availability_low'"]),
    (HEAD + '[[sweep.parameter]]\nkey = "carbon.orc_efficiency"\nbounds = [0.1, 0.9]\n',
     ["carbon.orc_efficiency", "(0.0, 0.5]"]),
    (HEAD + '[[sweep.parameter]]\nkey = "carbon.description"\nbounds = [0.1, 0.9]\n',
     ["carbon.description", "unknown key"]),
    (HEAD + '[[sweep.parameter]]\nkey = "dispersion.release_height_m"\nbounds = [0.0, 10.0]\n',
     ["dispersion.release_height_m", "levels", "[0.0, 20.0]"]),
    (HEAD + '[[sweep.parameter]]\nkey = "dispersion.release_height_m"\nlevels = [0.0, 50.0]\n',
     ["dispersion.release_height_m", "50.0", "[0.0, 20.0]"]),
    (HEAD + '[[sweep.parameter]]\nkey = "dispersion.source_set"\nlevels = ["own", "world"]\n',
     ["dispersion.source_set", "'world'", "'nation'"]),
    (HEAD + '[[sweep.parameter]]\nkey = "health.draw"\ndist = "integer"\nbounds = [0, 1000]\n',
     ["health.draw", "[0, 999]"]),
    (HEAD + '[[sweep.parameter]]\nkey = "health.crf"\nlevels = ["ier2010", "ier2013"]\n',
     ["health.crf", "'ier2013'", "'gemm_ncd_lri'"]),
    (HEAD + '[[sweep.parameter]]\nkey = "health.baseline_rate_multiplier"\ndist = "normal"\nmean = 1.0\nsd = 0.1\n',
     ["health.baseline_rate_multiplier", "truncation", "(0.0, 10.0]"]),
    (HEAD + '[[sweep.parameter]]\nkey = "emissions.pm25_multiplier.steal"\nbounds = [0.5, 2]\n',
     ["emissions.pm25_multiplier.steal", "did you mean 'steel'"]),
    (HEAD + '[[sweep.parameter]]\nkey = "carbon.efficiency_level"\nbounds = [0, 2]\n',
     ["carbon.efficiency_level", "choice", "'high'"]),
    (HEAD + '[[sweep.parameter]]\nkey = "carbon.orc_efficiency"\ndist = "lognormal"\nbounds = [0.1, 0.2]\n',
     ["carbon.orc_efficiency", "'lognormal'", "'triangular'"]),
    (HEAD + '[[sweep.parameter]]\nkey = "carbon.orc_efficiency"\ndist = "triangular"\nbounds = [0.1, 0.3, 0.2]\n',
     ["carbon.orc_efficiency", "lo <= mode <= hi"]),
    (HEAD.replace("sobol", "saltelli") + '[[sweep.parameter]]\nkey = "carbon.orc_efficiency"\nbounds = [0.1, 0.2]\n',
     ["method = 'saltelli'", "'morris'"]),
    (HEAD + 'sample = 3\n[[sweep.parameter]]\nkey = "carbon.orc_efficiency"\nbounds = [0.1, 0.2]\n',
     ["unknown key 'sample'", "did you mean 'samples'"]),
    (HEAD.replace("fyp_symbiosis", "fyp_symbiosys") + '[[sweep.parameter]]\nkey = "carbon.orc_efficiency"\n'
     'bounds = [0.1, 0.2]\n', ["fyp_symbiosys", "fyp_symbiosis"]),
    (HEAD.replace("fyp_symbiosis", "base") + '[[sweep.parameter]]\nkey = "carbon.orc_efficiency"\nbounds = [0.1, 0.2]\n',
     ["base scenario"]),
    (HEAD, ["no [[sweep.parameter]]"]),
    (HEAD + 'outputs = ["national_deaths_avoided"]\n[[sweep.parameter]]\nkey = "carbon.orc_efficiency"\n'
     'bounds = [0.1, 0.2]\n', ["national_deaths_avoided", "national_avoided_deaths"]),
    (HEAD + '[[sweep.parameter]]\nkey = "carbon.orc_efficiency"\nbounds = [0.1, 0.2]\n'
     '[[sweep.parameter]]\nkey = "carbon.orc_efficiency"\nbounds = [0.1, 0.2]\n', ["more than once"]),
    (HEAD + 'samples = 8\n', ["not valid TOML"]),
])
def test_bad_sweep_files(tmp_path, data, body, needles):
    _check(tmp_path, data, body, *needles)


def test_cli_exit_2_with_one_line(tmp_path, capsys):
    p = _write(tmp_path, HEAD + '[[sweep.parameter]]\nkey = "carbon.slag_saturation"\nbounds = [0.1, 1.5]\n')
    rc = main(["sweep", str(p), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(p) in err and "carbon.slag_saturation" in err and "[0.0, 1.0]" in err
    assert "Traceback" not in err
    assert main(["sweep", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["sweep", str(p), "--out", str(tmp_path / "o"), "--samples", "0"]) == 2

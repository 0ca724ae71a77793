"""engine.memory: the process-wide allocator settings of the command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json
import numpy as np
from engine import memory
try:
    from numpy._core.multiarray import _get_madvise_hugepage
except ImportError:
    from numpy.core.multiarray import _get_madvise_hugepage
before = bool(_get_madvise_hugepage())
applied = memory.tune()
again = memory.tune()
released = memory.release_before_fork()
print(json.dumps({"before": before, "applied": applied, "again": again, "hugepage": bool(_get_madvise_hugepage()),
                  "released": released}))
"""


def _probe(**env):
    e = {k: v for k, v in os.environ.items() if k not in ("COBENEFITS_TUNE_MEMORY", "NUMPY_MADVISE_HUGEPAGE")}
    e.update(env, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", PROBE], env=e, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_tune_turns_off_numpy_hugepages_once():
    r = _probe()
    assert r["applied"]["numpy_hugepage"] is False
    assert r["hugepage"] is False
    assert r["again"] == r["applied"]  # applied once, the same answer after


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux only")
def test_tune_sets_glibc_parameters_where_glibc():
    import platform

    r = _probe()
    glibc = platform.libc_ver()[0] == "glibc"
    assert r["applied"]["glibc_mallopt"] is glibc
    assert r["released"] is glibc  # malloc_trim before forking workers


def test_tune_can_be_turned_off():
    r = _probe(COBENEFITS_TUNE_MEMORY="0")
    assert r["applied"] == {} and r["released"] is False
    assert r["hugepage"] is r["before"]  # NumPy's own default is left as it was


def test_users_numpy_setting_wins():
    r = _probe(NUMPY_MADVISE_HUGEPAGE="1")
    assert "numpy_hugepage" not in r["applied"]
    assert r["hugepage"] is r["before"]

"""engine.parallel: same results on 1 or 2 local workers and on a distributed.LocalCluster."""

import io
import logging

import numpy as np
import pytest

from engine.errors import InputError
from engine.parallel import Progress, run_tasks


def _work(item, shared):
    # a deterministic numpy workload using the shared array (FFT: releases the GIL)
    seed, n = item
    a = np.random.default_rng(seed).random((n, n))
    return float(np.fft.irfft2(np.fft.rfft2(a) * np.fft.rfft2(shared["k"], a.shape), a.shape).sum())


ITEMS = [(i, (i, 32 + i)) for i in range(12)]
SHARED = {"k": np.arange(9.0).reshape(3, 3)}


def test_identical_on_1_and_2_workers():
    r1 = run_tasks(_work, ITEMS, shared=SHARED, workers=1, quiet=True)
    r2 = run_tasks(_work, ITEMS, shared=SHARED, workers=2, quiet=True)
    assert r1 == r2  # bitwise
    assert sorted(r1) == [k for k, _ in ITEMS]


def test_identical_on_local_cluster():
    distributed = pytest.importorskip("distributed")
    ref = run_tasks(_work, ITEMS, shared=SHARED, workers=1, quiet=True)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        got = run_tasks(_work, ITEMS, shared=SHARED, scheduler=cluster.scheduler_address, quiet=True)
    assert got == ref


def test_progress_log_lines_when_not_a_tty(caplog):
    with caplog.at_level(logging.INFO, logger="cobenefits"):
        run_tasks(_work, ITEMS, shared=SHARED, workers=2, log_every=5)
    lines = [r.getMessage() for r in caplog.records if "cities:" in r.getMessage()]
    assert [ln.split()[1] for ln in lines] == ["5/12", "10/12", "12/12"]


def test_progress_bar_on_a_tty():
    class TTY(io.StringIO):
        def isatty(self):
            return True

    s = TTY()
    p = Progress(3, stream=s)
    for _ in range(3):
        p.update()
    assert "3/3" in s.getvalue() and s.getvalue().endswith("\n")
    q = TTY()
    p = Progress(3, stream=q, quiet=True)
    p.update()
    assert q.getvalue() == ""


def test_unreachable_scheduler_is_input_error():
    from engine.parallel import connect

    with pytest.raises(InputError, match="cannot connect"):
        connect("tcp://127.0.0.1:9", timeout="1s")


def test_duplicate_keys_rejected():
    with pytest.raises(ValueError):
        run_tasks(_work, [(1, (1, 8)), (1, (2, 8))], shared=SHARED, quiet=True)

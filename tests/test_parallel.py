"""engine.parallel: same results on 1 or 2 local workers and on a distributed.LocalCluster."""

import io
import time
import logging
import re

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


def _hang_once(item, shared):
    """Task 3 hangs (15 s) the first time it runs, as a task on a wedged worker would."""
    import os
    import time

    seed, n = item
    marker = os.path.join(shared["dir"], f"started-{seed}")
    if seed == 3 and not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(15)
    return _work(item, shared)


def _hang_always(item, shared):
    import time

    if item[0] == 3:
        time.sleep(30)
    return _work(item, shared)


def _fail_on_3(item, shared):
    if item[0] == 3:
        raise ZeroDivisionError("task 3 itself is broken")
    return _work(item, shared)


@pytest.fixture
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cl, distributed.Client(cl) as client:
        yield client


def test_a_stalled_task_is_resubmitted_and_the_result_is_identical(cluster, tmp_path, caplog):
    ref = run_tasks(_work, ITEMS, shared=SHARED, workers=1, quiet=True)
    run_tasks(_work, ITEMS, shared=SHARED, client=cluster, quiet=True)  # workers warm: imports done
    t0 = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="cobenefits"):
        got = run_tasks(_hang_once, ITEMS, shared={**SHARED, "dir": str(tmp_path)}, client=cluster, quiet=True,
                        stall_timeout_s=2.0)
    assert got == ref  # bitwise, from the resubmitted copy
    assert time.perf_counter() - t0 < 12  # did not wait for the hung copy (15 s)
    # on a busy machine other tasks may still be queued when the 2 s pass: they are resubmitted too
    assert any(re.search(r"no task finished for 2 s; submitting \d+ task\(s\) again \(round 1 of 2\)",
                         r.getMessage()) for r in caplog.records)


def test_a_cluster_that_never_finishes_a_task_gives_a_scheduler_error(cluster):
    from engine.errors import SchedulerError

    run_tasks(_work, ITEMS, shared=SHARED, client=cluster, quiet=True)  # workers warm: imports done
    # on a busy machine more than task 3 may be unfinished at the first stall; task 3 always is
    with pytest.raises(SchedulerError, match=r"no task finished for 3 s, after 1 resubmissions; \d+ of 12 tasks "
                                             r"unfinished \(first: [0-9, ]*\b3\b"):
        run_tasks(_hang_always, ITEMS, shared=SHARED, client=cluster, quiet=True, stall_timeout_s=3.0,
                  retries=1)


def test_a_failing_task_is_an_error_not_a_retry(cluster):
    with pytest.raises(ZeroDivisionError, match="task 3 itself"):
        run_tasks(_fail_on_3, ITEMS, shared=SHARED, client=cluster, quiet=True, stall_timeout_s=30.0)


def test_stall_limit_rule():
    from engine.parallel import FIRST_RESULT_TIMEOUT_S, STALL_FLOOR_S, _stall_limit

    assert _stall_limit([], None) == FIRST_RESULT_TIMEOUT_S
    assert _stall_limit([0.5, 2.0], None) == STALL_FLOOR_S  # 10 x 2 s is under the floor
    assert _stall_limit([0.5, 30.0], None) == 300.0  # 10 x the slowest task
    assert _stall_limit([0.5], 7) == 7.0


def test_two_runs_at_once_on_one_cluster_keep_their_own_shared_inputs(cluster):
    # Both runs name their shared array "k"; each must see its own (a sweep and a run on one
    # scheduler). Scattering the mapping entry by entry keyed them both "k".
    from concurrent.futures import ThreadPoolExecutor

    other = {"k": np.arange(9.0).reshape(3, 3) + 1.0}
    ref_a = run_tasks(_work, ITEMS, shared=SHARED, workers=1, quiet=True)
    ref_b = run_tasks(_work, ITEMS, shared=other, workers=1, quiet=True)
    assert ref_a != ref_b
    with ThreadPoolExecutor(2) as ex:
        fa = ex.submit(run_tasks, _work, ITEMS, shared=SHARED, client=cluster, quiet=True)
        fb = ex.submit(run_tasks, _work, ITEMS, shared=other, client=cluster, quiet=True)
        assert fa.result() == ref_a and fb.result() == ref_b


# --------------------------------------------------------------------------- local process pool
def _pid_and_work(item, shared):
    import os

    return os.getpid(), _work(item, shared)


def _die_on_three(item, shared):
    import os

    if item == 3:
        os._exit(9)  # a worker killed mid-task (as by the kernel's out-of-memory killer)
    return item


@pytest.mark.skipif(not __import__("engine.parallel", fromlist=["x"]).fork_available(), reason="needs fork (Linux)")
def test_processes_give_the_threads_bits_and_share_unpicklable_inputs():
    import os
    import threading

    ref = run_tasks(_work, ITEMS, shared=SHARED, workers=1, quiet=True)
    # a lock cannot be pickled: forked workers inherit the shared inputs, nothing sends them
    shared = dict(SHARED, lock=threading.Lock())
    got = run_tasks(_pid_and_work, ITEMS, shared=shared, workers=2, quiet=True, pool="processes")
    assert {k: v for k, (_, v) in got.items()} == ref  # bitwise
    pids = {pid for pid, _ in got.values()}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


@pytest.mark.skipif(not __import__("engine.parallel", fromlist=["x"]).fork_available(), reason="needs fork (Linux)")
def test_a_dead_worker_process_is_a_scheduler_error_naming_the_way_out():
    from engine.errors import SchedulerError
    from engine.parallel import _SHARED

    with pytest.raises(SchedulerError, match=r"worker process.*died.*--workers.*pool = \"threads\""):
        run_tasks(_die_on_three, [(i, i) for i in range(8)], shared={}, workers=2, quiet=True, pool="processes")
    assert not _SHARED  # the pool's inputs are released


def test_one_worker_or_one_task_stays_in_this_process():
    import os

    got = run_tasks(_pid_and_work, ITEMS[:3], shared=SHARED, workers=1, quiet=True, pool="processes")
    assert {pid for pid, _ in got.values()} == {os.getpid()}
    got = run_tasks(_pid_and_work, ITEMS[:1], shared=SHARED, workers=2, quiet=True, pool="processes")
    assert {pid for pid, _ in got.values()} == {os.getpid()}


def test_progress_counts_process_tasks(caplog):
    with caplog.at_level(logging.INFO, logger="cobenefits"):
        run_tasks(_work, ITEMS, shared=SHARED, workers=2, log_every=6, pool="processes")
    lines = [r.getMessage() for r in caplog.records if "cities:" in r.getMessage()]
    assert [ln.split()[1] for ln in lines] == ["6/12", "12/12"]


def test_blas_threads_limited_to_cores_per_worker_inside_tasks():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from engine.parallel import available_cores

    def blas_threads(item, shared):
        return [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]

    got = run_tasks(blas_threads, [(0, 0), (1, 1)], shared={}, workers=2, quiet=True)
    want = max(1, available_cores() // 2)
    assert all(v and all(n == want for n in v) for v in got.values())  # numpy's BLAS is seen and limited


# ---- Background: one call in a forked child while the caller goes on

needs_fork = pytest.mark.skipif(not __import__("engine.parallel", fromlist=["x"]).fork_available(),
                                reason="forking needs Linux")


def _pid_and_sum(values, lock):
    import os

    with lock:  # an unpicklable input: it reaches the child by the fork, not by pickle
        return os.getpid(), float(np.sum(values))


@needs_fork
def test_background_runs_in_a_child_with_unpicklable_inputs():
    import os
    import threading

    from engine.parallel import Background

    bg = Background(_pid_and_sum, np.arange(10.0), threading.Lock(), what="a sum")
    pid, total = bg.result()
    assert pid != os.getpid() and total == 45.0
    assert bg.result() == (pid, total)  # the outcome is kept


def test_background_without_fork_runs_at_once_here():
    import os
    import threading

    from engine.parallel import Background

    bg = Background(_pid_and_sum, np.arange(4.0), threading.Lock(), fork=False)
    assert bg.result() == (os.getpid(), 6.0)


def _fail(path):
    raise FileNotFoundError(f"no folder for {path}")


@pytest.mark.parametrize("fork", [True, False])
def test_background_raises_the_childs_exception_in_the_caller(fork):
    from engine.parallel import Background

    bg = Background(_fail, "/nowhere/x.nc", fork=fork)
    with pytest.raises(FileNotFoundError, match="/nowhere/x.nc"):
        bg.result()


def _die():
    import os

    os._exit(9)


@needs_fork
def test_a_background_child_that_dies_is_an_os_error_naming_the_task():
    from engine.parallel import Background

    with pytest.raises(OSError, match=r"the writing of x.nc ended without a result \(exit code 9\)"):
        Background(_die, what="the writing of x.nc").result()


def _sleep(marker):
    from pathlib import Path

    time.sleep(30)
    Path(marker).write_text("finished")


@needs_fork
def test_close_stops_an_unfinished_child(tmp_path):
    from engine.parallel import Background

    marker = tmp_path / "done"
    bg = Background(_sleep, str(marker))
    proc = bg._proc
    t0 = time.perf_counter()
    bg.close()
    assert time.perf_counter() - t0 < 10 and not proc.is_alive()
    time.sleep(0.2)
    assert not marker.exists()

"""A Dask worker SIGKILLed mid-run on a LocalCluster: the run finishes with identical results.

The cluster runs in a child process with a hard time limit, so that a hang fails this test with
the child's stack dump instead of hanging the test session. Two ways a killed worker can end:

* the scheduler reruns the dead worker's tasks elsewhere (the default ``allowed-failures``);
* with ``allowed-failures = 0`` the scheduler gives up on those tasks (``KilledWorker``) and
  ``engine.parallel``'s watchdog submits them again.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent('''
    import faulthandler, json, os, signal, sys, tempfile, threading, time
    from pathlib import Path

    faulthandler.dump_traceback_later(float(sys.argv[3]), exit=True)  # a hang prints every stack
    import dask
    import distributed
    import numpy as np

    import engine.pipeline as pl
    import synthetic_nation as sn
    from engine.config import load_config


    class SlowUniformPopulation:
        """Density 1 km-2 everywhere, a second per call: tasks are running when the worker dies."""

        key = "uniform-slow"

        def __call__(self, lat, lon):
            time.sleep(1.0)
            return np.ones(np.shape(lat))


    if __name__ == "__main__":
        tmp, allowed = Path(sys.argv[1]), int(sys.argv[2])
        cfg = load_config(sn.write_configs(tmp / "cfg"))
        prep = pl.prepare(cfg, data=sn.nation(), population=SlowUniformPopulation(), population_key="uniform-slow")
        q = pl.emissions(prep, sn.carbon_fn()(cfg, prep.data))
        ref, _ = pl.receptor_pass(prep, q=q, use_cache=False, workers=1, quiet=True)
        killed = []
        with dask.config.set({"distributed.scheduler.allowed-failures": allowed}):
            with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                          dashboard_address=None) as cl, distributed.Client(cl) as client:
                nanny = next(iter(cl.workers.values()))

                def kill_one_worker():
                    time.sleep(0.6)  # the first city tasks are running (1 s population calls)
                    pid = nanny.process.process.pid
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)

                t = threading.Thread(target=kill_one_worker)
                t.start()
                res, _ = pl.receptor_pass(prep, q=q, use_cache=False, client=client, quiet=True)
                t.join()
        same = {str(c): bool(np.array_equal(res[c].row, ref[c].row) and np.array_equal(res[c].pm25, ref[c].pm25))
                for c in ref}
        print(json.dumps({"killed": len(killed), "same": same}))
''')


@pytest.mark.parametrize("allowed_failures", [3, 0], ids=["scheduler-reruns", "watchdog-resubmits"])
def test_a_killed_dask_worker_changes_no_result(tmp_path, allowed_failures):
    script = tmp_path / "kill_worker_run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"),
                                                        os.environ.get("PYTHONPATH", "")])}
    try:
        p = subprocess.run([sys.executable, str(script), str(tmp_path), str(allowed_failures), "200"],
                           capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    except subprocess.TimeoutExpired as exc:  # pragma: no cover - the failure this test exists for
        pytest.fail(f"the run hung after a worker was killed:\n{exc.stderr}")
    assert p.returncode == 0, p.stderr[-4000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["killed"] == 1
    assert out["same"] and all(out["same"].values()), out  # bitwise identical rows and fields
    if allowed_failures == 0:
        assert "submitting" in p.stderr and "again" in p.stderr, p.stderr[-4000:]  # the watchdog acted

"""Dask execution of per-city work: one task per city, local threads or a dask.distributed cluster.

* Default: Dask's local threaded scheduler with ``workers`` threads (0 = the machine's cores).
  The city tasks spend their time in numpy FFTs and ``nogil`` numba kernels, which release
  the GIL, so threads scale and nothing is pickled.
* ``scheduler="HOST:PORT"`` (or ``tcp://...``): the same tasks on an existing
  ``dask.distributed`` cluster; shared inputs (the transfer kernels) are scattered to every
  worker once.

Determinism: each task is a pure function of its inputs and results are collected into a dict
keyed by city, so the result is identical (bitwise) whatever the scheduler, worker count or
completion order. Numba threads inside a task are limited to ``cores // workers`` (one level of
parallelism per layer, STYLE.md 13); kernels parallelise over receptors only, so their result
does not depend on the thread count either.

Progress: a bar on a terminal, a log line every ``log_every`` cities otherwise, nothing with
``quiet``.
"""

from __future__ import annotations

import logging
import os
import sys
import time

__all__ = ["available_cores", "run_tasks", "Progress", "connect"]

log = logging.getLogger("cobenefits")


def available_cores():
    """CPU cores this process may use (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Progress:
    """Progress of ``total`` items: a bar on a TTY, log lines every ``log_every`` items otherwise."""

    def __init__(self, total, *, desc="cities", quiet=False, log_every=50, stream=None):
        self.total, self.desc, self.quiet = int(total), desc, quiet
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_every = max(1, int(log_every))
        self.done = 0
        self.t0 = time.perf_counter()
        self._last_draw = 0.0

    def update(self, n=1):
        self.done += n
        if self.quiet:
            return
        el = time.perf_counter() - self.t0
        if self.tty:
            if self.done == self.total or el - self._last_draw > 0.1:
                self._last_draw = el
                width = 30
                fill = int(width * self.done / max(self.total, 1))
                eta = el / self.done * (self.total - self.done) if self.done else 0.0
                self.stream.write(f"\r{self.desc}: [{'#' * fill}{'.' * (width - fill)}] "
                                  f"{self.done}/{self.total}  {el:6.1f} s  eta {eta:5.1f} s")
                if self.done == self.total:
                    self.stream.write("\n")
                self.stream.flush()
        elif self.done % self.log_every == 0 or self.done == self.total:
            log.info("%s: %d/%d done (%.1f s)", self.desc, self.done, self.total, el)


def connect(address, *, timeout="10s"):
    """A ``distributed.Client`` for ``address``; :class:`engine.errors.InputError` if unreachable."""
    from distributed import Client

    from engine.errors import InputError

    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise InputError(f"--scheduler {address}: cannot connect to a dask.distributed scheduler "
                         f"({exc})") from None
    except ValueError as exc:  # malformed address: no port, unknown scheme
        raise InputError(f"--scheduler {address}: not a scheduler address ({exc}); expected "
                         "tcp://HOST:PORT") from None


def _threads_per_task(workers):
    return max(1, available_cores() // max(1, workers))


def _wrap(func, numba_threads):
    def task(item, shared):
        try:
            import numba

            numba.set_num_threads(min(numba_threads, numba.config.NUMBA_NUM_THREADS))
        except (ImportError, ValueError):
            pass
        return func(item, shared)

    return task


def run_tasks(func, items, *, shared=None, workers=0, scheduler=None, client=None, quiet=False,
              log_every=50, desc="cities"):
    """Run ``func(item_value, shared)`` for every ``(key, item_value)`` of ``items``.

    Parameters
    ----------
    func : callable
        Pure function of one item and the shared inputs (must be picklable for a cluster).
    items : list of (key, value)
    shared : object
        Read-only inputs every task needs (scattered once on a cluster).
    workers : int
        Local threads (0 = all cores). On a cluster the cluster decides; ignored.
    scheduler : str, optional
        Address of a dask.distributed scheduler; ``None``/"" = local threads.
    client : distributed.Client, optional
        An existing client (takes precedence over ``scheduler``).

    Returns
    -------
    dict {key: result}
    """
    items = list(items)
    keys = [k for k, _ in items]
    if len(set(keys)) != len(keys):
        raise ValueError("task keys must be unique")
    prog = Progress(len(items), desc=desc, quiet=quiet, log_every=log_every)
    if not items:
        return {}
    if client is None and scheduler:
        client = connect(scheduler)
        own = True
    else:
        own = False
    try:
        if client is not None:
            return _run_distributed(func, items, shared, client, prog)
        return _run_local(func, items, shared, workers, prog)
    finally:
        if own:
            client.close()


def _run_local(func, items, shared, workers, prog):
    import dask
    from dask.callbacks import Callback

    nw = workers if workers and workers > 0 else available_cores()
    task = _wrap(func, _threads_per_task(nw))

    def bound(v):
        # the shared inputs are bound in a closure, not passed as an argument: dask would
        # otherwise traverse and tokenize them (geometries, source lists) once per task
        return task(v, shared)

    delayed = [dask.delayed(bound, pure=False, traverse=False)(v, dask_key_name=f"city-{k}") for k, v in items]
    names = {d.key for d in delayed}

    class _CB(Callback):
        def _posttask(self, key, result, dsk, state, worker_id):
            if key in names:
                prog.update()

    with _CB():
        results = dask.compute(*delayed, scheduler="threads", num_workers=nw)
    return {k: r for (k, _), r in zip(items, results)}


def _run_distributed(func, items, shared, client, prog):
    from distributed import as_completed

    info = client.scheduler_info()
    n_threads = sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()) or 1
    per_task = max(1, available_cores() // max(1, n_threads)) if len(info.get("workers", {})) else 1
    task = _wrap(func, per_task)
    shared_f = client.scatter(shared, broadcast=True) if shared is not None else None
    futs = {client.submit(task, v, shared_f, key=f"city-{k}-{id(items)}", pure=False): k for k, v in items}
    out = {}
    try:
        for fut in as_completed(list(futs)):
            out[futs[fut]] = fut.result()
            prog.update()
            fut.release()
    finally:
        for f in futs:
            f.cancel()
    return out

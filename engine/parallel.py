"""Dask execution of per-city work: one task per city, local threads or a dask.distributed cluster.

* Default: Dask's local threaded scheduler with ``workers`` threads (0 = the machine's cores).
  Nothing is pickled; numpy FFTs and ``nogil`` numba kernels release the GIL, but a city task's
  many small numpy calls do not (the national receptor pass ran 1.3x faster on 2 threads than on 1).
* ``pool="processes"`` (the receptor pass, ``[run] pool``): Dask's multiprocessing scheduler on
  ``workers`` processes forked from this one after the kernels are built, so they share them
  copy-on-write; only each city's key and result cross a pipe (Linux; elsewhere threads).
* ``scheduler="HOST:PORT"`` (or ``tcp://...``): the same tasks on an existing
  ``dask.distributed`` cluster; shared inputs (the transfer kernels) are scattered to every
  worker once. A watchdog resubmits tasks lost with a worker, or all unfinished tasks when the
  cluster stops making progress, and raises :class:`engine.errors.SchedulerError` (exit 2)
  after ``retries`` rounds.

Determinism: each task is a pure function of its inputs and results are collected into a dict
keyed by city, so the result is identical (bitwise) whatever the scheduler, worker count or
completion order. Numba and BLAS threads inside a task are limited to ``cores // workers`` (one
level of parallelism per layer, docs/design.md, rule 13); kernels parallelise over receptors only, so their result
does not depend on the thread count either.

Progress: a bar on a terminal, a log line every ``log_every`` cities otherwise, nothing with
``quiet``.
"""

from __future__ import annotations

import logging
import os
import sys
import time

__all__ = ["available_cores", "run_tasks", "Progress", "connect", "Background"]

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
              log_every=50, desc="cities", stall_timeout_s=None, retries=2, pool="threads"):
    """Run ``func(item_value, shared)`` for every ``(key, item_value)`` of ``items``.

    Parameters
    ----------
    func : callable
        Pure function of one item and the shared inputs (must be picklable for a cluster).
    items : list of (key, value)
        Local tasks start in this order (put the longest first).
    shared : object
        Read-only inputs every task needs (scattered once on a cluster).
    workers : int
        Local threads (0 = all cores). On a cluster the cluster decides; ignored.
    scheduler : str, optional
        Address of a dask.distributed scheduler; ``None``/"" = local threads.
    client : distributed.Client, optional
        An existing client (takes precedence over ``scheduler``).
    stall_timeout_s : float, optional
        Cluster only: seconds without any finished task after which the unfinished tasks are
        submitted again [s]. Default: :data:`FIRST_RESULT_TIMEOUT_S` until the first result,
        then ``max(STALL_FLOOR_S, STALL_FACTOR x the slowest task so far)``.
    retries : int
        Cluster only: resubmission rounds before :class:`engine.errors.SchedulerError`.
    pool : {"threads", "processes"}
        Local only: Dask threads, or worker processes forked from this one (Linux; elsewhere, with
        one worker or one task, threads). Forked workers share the inputs copy-on-write, nothing
        is pickled but each item and result; ``func`` must be importable and must not start
        numba parallel regions (GNU OpenMP aborts in a forked child).

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
            return _run_distributed(func, items, shared, client, prog, stall_timeout_s=stall_timeout_s,
                                    retries=retries)
        return _run_local(func, items, shared, workers, prog, pool=pool)
    finally:
        if own:
            client.close()


def _local_key(i, key, n):
    """Dask key of the ``i``-th of ``n`` local tasks: Dask's local schedulers start independent tasks
    in descending key order, so the rank (counted down) keeps the caller's order: the longest tasks
    first, when the caller lists them so, leave the shortest for the end (no core idles behind one
    large city)."""
    return f"city-{n - 1 - i:06d}-{key}"


def _run_local(func, items, shared, workers, prog, pool="threads"):
    import dask
    from dask.callbacks import Callback

    nw = workers if workers and workers > 0 else available_cores()
    task = _wrap(func, _threads_per_task(nw))

    def bound(v):
        # the shared inputs are bound in a closure, not passed as an argument: dask would
        # otherwise traverse and tokenize them (geometries, source lists) once per task
        return task(v, shared)

    class _CB(Callback):
        def __init__(self, names):
            super().__init__()
            self.names = names

        def _posttask(self, key, result, dsk, state, worker_id):
            if key in self.names:
                prog.update()

    if pool == "processes" and nw > 1 and len(items) > 1 and fork_available():
        return _run_processes(func, items, shared, nw, prog, _CB)
    delayed = [dask.delayed(bound, pure=False, traverse=False)(v, dask_key_name=_local_key(i, k, len(items)))
               for i, (k, v) in enumerate(items)]
    with _CB({d.key for d in delayed}), blas_limits(_threads_per_task(nw)):
        results = dask.compute(*delayed, scheduler="threads", num_workers=nw)
    return {k: r for (k, _), r in zip(items, results)}


#: the shared inputs of the running local process pool, by token: forked workers inherit them (pages
#: shared copy-on-write), so a task pickles only the token and its own item
_SHARED = {}


def fork_available():
    """True where a local process pool can fork its workers (Linux)."""
    import multiprocessing

    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def blas_limits(n):
    """Context limiting BLAS (numpy's matrix products) to ``n`` threads: one level of parallelism
    per layer, the workers being the outer one. OpenBLAS's idle threads spin, waiting for the next
    product, on the cores the outer layer's threads need (the transfer kernels: 30 % of the stage's
    CPU time went to that wait, :func:`engine.pipeline.transfer_kernels`)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(n), user_api="blas")


def _process_init(blas_threads):
    blas_limits(blas_threads)  # for the worker's lifetime (the returned context is never exited)


def _process_task(func, token, item):
    return func(item, _SHARED[token])


def _run_processes(func, items, shared, nw, prog, callback):
    """The tasks in ``nw`` forked worker processes (Dask's multiprocessing scheduler on our pool)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    import dask

    from engine.errors import SchedulerError
    from engine.memory import release_before_fork

    token = f"{os.getpid()}-{time.monotonic_ns()}"
    _SHARED[token] = shared
    release_before_fork()  # the workers' pages fresh, not copies of the parent's free heap
    delayed = [dask.delayed(_process_task, pure=False, traverse=False)(func, token, v,
                                                                       dask_key_name=_local_key(i, k, len(items)))
               for i, (k, v) in enumerate(items)]
    pool = ProcessPoolExecutor(nw, mp_context=multiprocessing.get_context("fork"), initializer=_process_init,
                               initargs=(_threads_per_task(nw),))
    ok = False
    try:
        with callback({d.key for d in delayed}):
            results = dask.compute(*delayed, scheduler="processes", pool=pool, chunksize=1)
        ok = True
    except BrokenProcessPool as exc:
        raise SchedulerError(f"a worker process of the local pool died ({exc}); killed for memory? Rerun with "
                             "fewer workers (--workers) or [run] pool = \"threads\"") from None
    finally:
        pool.shutdown(wait=ok, cancel_futures=True)
        _SHARED.pop(token, None)
    return {k: r for (k, _), r in zip(items, results)}


class Background:
    """``fn(*args, **kwargs)`` in a process forked from this one, while this one goes on.

    The child inherits ``fn``'s inputs copy-on-write (nothing is pickled but the return value);
    :meth:`result` waits for it and returns its value or raises its exception here. Where
    forking is not possible (``fork=False``, or not on Linux) the call runs at once, in this
    process, and :meth:`result` gives its outcome. :meth:`close` stops an unfinished child (the
    caller's ``finally``: an interrupted run leaves no process behind). The child runs neither
    numba parallel regions nor threads of its own (GNU OpenMP aborts those in a forked child): give
    it I/O such as writing a file.
    """

    def __init__(self, fn, *args, fork=True, what="a background task", **kwargs):
        self.what = what
        self._proc = self._conn = None
        self._outcome = None
        if fork and fork_available():
            import multiprocessing

            from engine.memory import release_before_fork

            ctx = multiprocessing.get_context("fork")
            release_before_fork()
            token = f"bg-{os.getpid()}-{time.monotonic_ns()}"
            _SHARED[token] = (fn, args, kwargs)
            try:
                self._conn, send = ctx.Pipe(duplex=False)
                self._proc = ctx.Process(target=_background_main, args=(token, send), daemon=True,
                                         name="cobenefits-background")
                self._proc.start()  # forks here: the child has its own copy of _SHARED
                send.close()
            finally:
                _SHARED.pop(token, None)
        else:
            try:
                self._outcome = (True, fn(*args, **kwargs))
            except Exception as exc:  # raised by result(), where a forked child's would be
                self._outcome = (False, exc)

    def result(self):
        """The call's return value (waits for the child); its exception is raised here."""
        if self._outcome is None:
            try:
                self._outcome = self._conn.recv()
            except EOFError:
                self._proc.join()
                self._outcome = (False, OSError(f"the process running {self.what} ended without a result "
                                                f"(exit code {self._proc.exitcode}); killed for memory?"))
            finally:
                self.close()
        ok, value = self._outcome
        if not ok:
            raise value
        return value

    def close(self):
        """Stop the child if it still runs (nothing to do once :meth:`result` returned)."""
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.terminate()
            self._proc.join()
            self._conn.close()
            self._proc = None


def _background_main(token, conn):
    """The forked child of :class:`Background`: run the call, send ``(ok, value or exception)``."""
    fn, args, kwargs = _SHARED[token]
    try:
        out = (True, fn(*args, **kwargs))
    except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the parent
        out = (False, exc)
    try:
        conn.send(out)
    except Exception as exc:  # an unpicklable value or exception: its text instead
        conn.send((False, RuntimeError(f"{type(out[1]).__name__}: {out[1]} (not picklable: {exc})")))
    finally:
        conn.close()


#: before the first task finishes, a cluster may be importing and JIT-compiling: wait this long [s]
FIRST_RESULT_TIMEOUT_S = 900.0
#: once tasks finish: a stall is no result for max(STALL_FLOOR_S, STALL_FACTOR x slowest task) [s]
STALL_FLOOR_S = 120.0
STALL_FACTOR = 10.0


def _stall_limit(durations, stall_timeout_s):
    """Seconds without any finished task after which the pending tasks are resubmitted."""
    if stall_timeout_s:
        return float(stall_timeout_s)
    if not durations:
        return FIRST_RESULT_TIMEOUT_S
    return max(STALL_FLOOR_S, STALL_FACTOR * max(durations))


def _lost_worker(exc):
    """True for failures that say a worker died or vanished, not that the task itself failed."""
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(names & {"KilledWorker", "CommClosedError", "FutureCancelledError", "CancelledError"})


def _run_distributed(func, items, shared, client, prog, *, stall_timeout_s=None, retries=2):
    """Tasks on a cluster, with a watchdog.

    A worker that dies mid-task is normally handled by the scheduler (its tasks are rerun on
    another worker). Two failures are not: a task the scheduler gives up on (``KilledWorker``
    after ``allowed-failures`` deaths) and a cluster that silently stops making progress (seen
    once in six runs after a worker was SIGKILLed). Both are handled the same way: the pending
    tasks are submitted again under new keys, with the shared inputs scattered again, and the
    first copy of each task to finish wins (tasks are pure, so every copy returns the same
    bits). After ``retries`` such rounds a :class:`engine.errors.SchedulerError` names what is
    left.
    """
    from distributed import wait

    from engine.errors import SchedulerError

    info = client.scheduler_info()
    n_threads = sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()) or 1
    per_task = max(1, available_cores() // max(1, n_threads)) if len(info.get("workers", {})) else 1
    task = _wrap(func, per_task)
    values = dict(items)
    tag = f"{id(items):x}-{time.monotonic_ns():x}"

    scattered = []  # every round's copy of the shared inputs stays alive until the end

    def submit_all(keys, attempt):
        # One future for the whole mapping, under a fresh random key each round: scattering the
        # dict itself would key each entry by its name ("k"), and a second scatter under the same
        # key races the release of the first (CI saw "lost dependencies" for key 'k').
        shared_f = client.scatter([shared], broadcast=True, hash=False)[0] if shared is not None else None
        scattered.append(shared_f)
        return {client.submit(task, values[k], shared_f, key=f"city-{k}-{tag}-{attempt}", pure=False): k
                for k in keys}

    live = submit_all(list(values), 0)  # future -> task key, every copy still running
    started = {f: time.perf_counter() for f in live}
    out, durations, attempt = {}, [], 0
    try:
        while len(out) < len(values):
            limit = _stall_limit(durations, stall_timeout_s)
            try:
                done = wait(list(live), timeout=limit, return_when="FIRST_COMPLETED").done if live else set()
            except TimeoutError:  # distributed.wait raises instead of returning an empty set
                done = set()
            lost = []
            for fut in done:
                k = live.pop(fut)
                if k in out:
                    continue
                if fut.status == "finished":
                    out[k] = fut.result()
                    durations.append(time.perf_counter() - started.pop(fut))
                    prog.update()
                    for other in [f for f, kk in live.items() if kk == k]:  # a slower copy
                        del live[other]
                        other.cancel()
                    continue
                exc = fut.exception() if fut.status == "error" else None
                if exc is not None and not _lost_worker(exc):
                    raise exc  # the task itself failed: a real error, not the cluster's
                if not any(kk == k for kk in live.values()):
                    lost.append(k)
                fut.release()
            stalled = not done
            if not (stalled or lost):
                continue
            attempt += 1
            pending = [k for k in values if k not in out]  # in submission order
            if attempt > retries:
                why = (f"no task finished for {limit:.0f} s" if stalled
                       else f"tasks lost with their workers ({', '.join(map(str, lost[:5]))})")
                raise SchedulerError(
                    f"the dask.distributed cluster stopped making progress: {why}, after {retries} "
                    f"resubmissions; {len(pending)} of {len(values)} tasks unfinished (first: "
                    f"{', '.join(map(str, pending[:5]))}). Check the workers (memory, restarts) or "
                    "run on local threads (no --scheduler)")
            again = pending if stalled else lost
            log.warning("cluster: %s; submitting %d task(s) again (round %d of %d)",
                        f"no task finished for {limit:.0f} s" if stalled else "tasks lost with a worker",
                        len(again), attempt, retries)
            new = submit_all(again, attempt)
            now = time.perf_counter()
            started.update({f: now for f in new})
            live.update(new)
    finally:
        for f in live:
            f.cancel()
    return out

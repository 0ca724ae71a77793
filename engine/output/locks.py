"""What every writing command shares: the lock beside an output, the guard that no output is an
input (or another output), and SIGTERM turned into a clean exit while a transaction is open.

Used by :class:`engine.output.persist.OutputTransaction` (an output *folder*: ``run``, ``carbon``,
``sweep``, ``report``) and :class:`engine.output.persist.FileTransaction` (output *files*:
``met-climatology``, ``health``); see docs/reliability.md.

* :class:`OutputLock` is a file ``.<name>.lock`` beside the output (created with ``O_EXCL``,
  holding the writer's pid, host, start time and command). A second writer of the same output
  is refused with exit 2 naming the holder; a lock whose process no longer runs on this host
  is taken over (logged).
* :func:`check_outputs` refuses an output that is, contains or lies inside an input, and two
  outputs that are the same file, naming both options and paths.
* :class:`SigtermAsExit` turns SIGTERM into ``SystemExit(143)`` in the main thread, so that the
  ``finally`` blocks of a transaction remove its staging files; :func:`sigterm_blocked` defers
  SIGTERM around the final renames.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import signal
import socket
import threading
from pathlib import Path

from engine.errors import InputError

__all__ = ["OutputLock", "LOCK_SUFFIX", "check_outputs", "same_path", "within", "SigtermAsExit",
           "sigterm_blocked"]

log = logging.getLogger("cobenefits")

LOCK_SUFFIX = ".lock"


def within(inner, outer):
    """``inner`` equals ``outer`` or lies inside it (both resolved paths)."""
    return inner == outer or outer in inner.parents


def same_path(a, b):
    """``a`` and ``b`` name the same file: equal once resolved, or the same inode (a hard link)."""
    a, b = Path(a).expanduser().resolve(), Path(b).expanduser().resolve()
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _label(option, path):
    return f"{option} {path}" if option else str(path)


def check_outputs(outputs, inputs, *, what="an output"):
    """Refuse outputs that overlap an input or each other.

    Parameters
    ----------
    outputs : list of (option, path, kind)
        ``option`` names the command-line option (``"--out"``), ``kind`` is ``"dir"`` (replaced
        as a whole) or ``"file"``.
    inputs : list of (option, path)
        Input files and folders; ``option`` names where the input came from (``"SFC"``,
        ``"--functions"``) or is ``""``.
    what : str
        How the message calls the output (``"an output folder"``).

    Raises
    ------
    InputError
        Naming both paths and options and the rule broken.
    """
    rin = []
    for opt, p in inputs:
        if p in (None, ""):
            continue
        try:
            rin.append((opt, Path(p).expanduser().resolve()))
        except OSError:
            continue
    for i, (oopt, opath, kind) in enumerate(outputs):
        out = Path(opath).expanduser().resolve()
        for iopt, rp in rin:
            name = _label(iopt, rp) if iopt else f"the input {'folder' if rp.is_dir() else 'file'} {rp}"
            if rp.is_dir():
                if kind == "dir" and (within(out, rp) or within(rp, out)):
                    rel = "is" if out == rp else ("lies inside" if within(out, rp) else "contains")
                    raise InputError(f"{_label(oopt, opath)} {rel} {name}; {what} must be separate from every "
                                     "input (it is replaced as a whole)")
                if kind == "file" and out == rp:
                    raise InputError(f"{_label(oopt, opath)} is {name}, a folder; give a file name")
            elif (kind == "dir" and within(rp, out)) or (kind == "file" and same_path(out, rp)):
                rel = "contains" if kind == "dir" and out != rp else "is"
                raise InputError(f"{_label(oopt, opath)} {rel} {name}; {what} must not overwrite an input "
                                 "(choose another output name)")
        for oopt2, opath2, kind2 in outputs[i + 1:]:
            out2 = Path(opath2).expanduser().resolve()
            nested = (kind2 == "dir" and within(out, out2)) or (kind == "dir" and within(out2, out))
            if same_path(out, out2) or nested:
                raise InputError(f"{_label(oopt, opath)} and {_label(oopt2, opath2)} name the same output; "
                                 "give each output its own name")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputLock:
    """The lock file ``.<name>.lock`` beside ``target`` (a folder or a file), one writer at a time.

    Parameters
    ----------
    target : path-like
        The output whose writers are serialised.
    command : str
        Recorded in the lock file (shown to a refused second writer).
    option : str
        The option that named ``target`` (for messages).
    """

    def __init__(self, target, *, command="", option="--out"):
        self.target = Path(os.path.abspath(Path(target).expanduser()))
        self.path = self.target.parent / f".{self.target.name}{LOCK_SUFFIX}"
        self.command = command
        self.option = option
        self.held = False

    def acquire(self):
        """Take the lock; raise :class:`InputError` naming the holder if another process has it."""
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "command": self.command}
        label = _label(self.option, self.target)
        for _attempt in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    held = json.loads(self.path.read_text())
                except (OSError, ValueError):
                    held = {}
                pid, host = held.get("pid"), held.get("host")
                if isinstance(pid, int) and host == info["host"] and not _pid_alive(pid):
                    log.warning("removing the stale lock %s of process %d, which no longer runs", self.path, pid)
                    with contextlib.suppress(FileNotFoundError):
                        self.path.unlink()
                    continue
                who = (f"process {pid} on {host}, started {held.get('started_utc', '?')}"
                       + (f" ({held['command']})" if held.get("command") else "") if pid else "another process")
                raise InputError(f"{label} is being written by {who} (lock file {self.path}); wait for it to "
                                 "finish, use another output name, or delete the lock file if no such process "
                                 "runs") from None
            except OSError as exc:
                raise InputError(f"{label}: cannot create the lock file {self.path} ({exc.strerror})") from None
            with os.fdopen(fd, "w") as fh:
                json.dump(info, fh)
            self.held = True
            return self
        raise InputError(f"{label}: could not take the lock {self.path}")

    def release(self):
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


class SigtermAsExit:
    """While installed (main thread only), SIGTERM raises ``SystemExit(128 + 15)``."""

    def __init__(self):
        self._prev = None

    def install(self):
        if threading.current_thread() is not threading.main_thread():
            return

        def on_term(signum, frame):
            raise SystemExit(128 + signum)

        self._prev = signal.signal(signal.SIGTERM, on_term)

    def restore(self):
        if self._prev is not None:
            signal.signal(signal.SIGTERM, self._prev)
            self._prev = None


@contextlib.contextmanager
def sigterm_blocked():
    """Defer SIGTERM (delivered on exit) while the final renames of a commit run."""
    blocked = hasattr(signal, "pthread_sigmask")
    if blocked:
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        if blocked:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

"""Persistence: atomic files, output transactions with a manifest and a lock, a verified cache.

Three guarantees (docs/design.md, "Outputs never overwrite a previous run's files half-way"):

* :func:`atomic_path` writes one file: to a temporary name in the target's folder, flushed to
  disk, then renamed over the target. A reader sees the old file or the new one, never half.
* :class:`OutputTransaction` writes a whole output *set*: every file goes to a staging folder
  beside ``--out``; at the end a ``manifest.json`` (files, sizes, SHA-256, config, versions,
  ``complete: true``) is written and the staging folder replaces ``--out`` in one rename
  (``renameat2(RENAME_EXCHANGE)`` on Linux, else two renames with recovery on the next run).
  An interruption (exception, SIGTERM, SIGKILL, power loss) leaves the previous complete output
  as it was, or no ``--out`` at all; never a mixed set, never a set that looks complete but is
  not. Files of a previous run that this run does not write (another ``--cities``) are gone.
  A lock file beside ``--out`` refuses a second writer; ``--out`` may not be, contain or lie in
  an input folder; an existing non-empty ``--out`` without a manifest (not ours) is refused.
* :func:`save_verified_npz` / :func:`load_verified_npz` keep a SHA-256 sidecar next to each cache
  entry; an entry that is truncated, corrupt or has no sidecar is deleted and reported as a miss,
  so it is recomputed instead of failing every run.

Example
-------
>>> with OutputTransaction("out", inputs=["data/"], config={"a": 1}, command="carbon") as tx:  # doctest: +SKIP
...     df.to_csv(tx.path("cities.csv"))
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as _dt
import errno
import hashlib
import io
import json
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
from pathlib import Path

import numpy as np

from engine.errors import InputError

__all__ = ["atomic_path", "atomic_write_bytes", "sha256_file", "OutputTransaction", "read_manifest",
           "verify_output", "save_verified_npz", "load_verified_npz", "MANIFEST_NAME", "LOCK_SUFFIX"]

log = logging.getLogger("cobenefits")

MANIFEST_NAME = "manifest.json"
LOCK_SUFFIX = ".lock"
MANIFEST_FORMAT = "cobenefits-output-1"

_UMASK = os.umask(0)
os.umask(_UMASK)


# --------------------------------------------------------------------------- one file
@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; fsync and rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are for other tools too
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)


def sha256_file(path, *, chunk=1 << 20):
    """SHA-256 hex digest of a file's content."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path):
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------- verified cache
def _sidecar(path):
    return path.with_name(path.name + ".sha256")


def save_verified_npz(path, **arrays):
    """Save arrays as ``path`` (.npz) with a ``<path>.sha256`` sidecar, both atomically.

    The sidecar is written last: an entry whose writer died between the two files has no
    sidecar and is treated as corrupt by :func:`load_verified_npz`.
    """
    path = Path(path)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    atomic_write_bytes(path, data)
    atomic_write_bytes(_sidecar(path), (hashlib.sha256(data).hexdigest() + "\n").encode())


def _discard(path, why):
    log.warning("cache entry %s is %s; deleted, it will be recomputed", path, why)
    for p in (path, _sidecar(path)):
        with contextlib.suppress(OSError):
            p.unlink()


def load_verified_npz(path, names):
    """The arrays ``names`` of a cache entry written by :func:`save_verified_npz`, or ``None``.

    ``None`` when the entry is absent; also when it is truncated, corrupt, lacks its sidecar
    or one of ``names``, in which case both files are deleted (logged) so that the caller
    recomputes and rewrites it.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = path.read_bytes()
        expected = _sidecar(path).read_text().strip()
    except FileNotFoundError:
        _discard(path, "missing its checksum file (interrupted write)")
        return None
    except OSError as exc:
        _discard(path, f"unreadable ({exc.strerror})")
        return None
    if hashlib.sha256(data).hexdigest() != expected:
        _discard(path, f"corrupt (SHA-256 differs from {_sidecar(path).name})")
        return None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return {k: z[k] for k in names}
    except Exception as exc:  # noqa: BLE001 - any decoding failure of a cache entry is a miss
        _discard(path, f"unreadable ({type(exc).__name__}: {exc})")
        return None


# --------------------------------------------------------------------------- output transaction
def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _rename_exchange(a, b):
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    rc = fn(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def _within(inner, outer):
    """``inner`` equals ``outer`` or lies inside it (both resolved)."""
    return inner == outer or outer in inner.parents


def read_manifest(out_dir):
    """The parsed ``manifest.json`` of an output folder, or ``None`` if absent or unreadable."""
    p = Path(out_dir) / MANIFEST_NAME
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def verify_output(out_dir):
    """Problems of an output folder against its manifest (``[]`` = complete and intact).

    Checks that the manifest exists and says ``complete``, that every listed file exists with
    its size and SHA-256, and that no unlisted file is present.
    """
    out_dir = Path(out_dir)
    man = read_manifest(out_dir)
    if man is None:
        return [f"{out_dir}: no readable {MANIFEST_NAME}"]
    problems = []
    if man.get("complete") is not True:
        problems.append(f"{out_dir}: manifest says complete = {man.get('complete')!r}")
    listed = {}
    for f in man.get("files", []):
        listed[f["path"]] = f
        p = out_dir / f["path"]
        if not p.is_file():
            problems.append(f"{p}: listed in the manifest but missing")
        elif p.stat().st_size != f["size_bytes"]:
            problems.append(f"{p}: {p.stat().st_size} bytes, manifest says {f['size_bytes']}")
        elif sha256_file(p) != f["sha256"]:
            problems.append(f"{p}: SHA-256 differs from the manifest")
    for p in sorted(out_dir.rglob("*")):
        rel = p.relative_to(out_dir).as_posix()
        if p.is_file() and rel != MANIFEST_NAME and rel not in listed:
            problems.append(f"{p}: not listed in the manifest")
    return problems


class OutputTransaction:
    """Write a complete output set into ``out_dir``, all or nothing.

    Parameters
    ----------
    out_dir : path-like
        The ``--out`` folder. Must not be, contain or lie inside an input folder, must not
        contain an input file, and if it exists it must be empty or hold a previous
        cobenefits output (a ``manifest.json``).
    inputs : iterable of path-like
        Input files and folders of the run (data folder, configs, met files, ...); recorded in
        the manifest (files with size and SHA-256).
    config : dict, optional
        Resolved configuration, recorded in the manifest.
    command : str
        The command line or subcommand name, recorded in the manifest.
    extra : dict, optional
        Further JSON-serialisable entries for the manifest.

    Use as a context manager; write every file under :meth:`path` (or :attr:`staging`). On a
    normal exit the set is committed; on an exception (or SIGTERM, which is turned into
    ``SystemExit(143)`` while the transaction is open in the main thread) the staging folder is
    removed and ``out_dir`` keeps its previous content.

    Raises
    ------
    InputError
        ``out_dir`` overlaps an input, is a file, is a non-empty folder that is not a cobenefits
        output, cannot be written, or another process holds its lock.
    """

    def __init__(self, out_dir, *, inputs=(), config=None, command="", extra=None):
        self.out_dir = Path(os.path.abspath(Path(out_dir).expanduser()))
        self.inputs = [Path(p) for p in inputs if p not in (None, "")]
        self.config = config
        self.command = command
        self.extra = dict(extra or {})
        name = self.out_dir.name
        if not name:
            raise InputError(f"--out {out_dir}: the file-system root cannot be an output folder")
        self.parent = self.out_dir.parent
        self.lock_path = self.parent / f".{name}{LOCK_SUFFIX}"
        self.staging = self.parent / f".{name}.staging-{os.getpid()}"
        self._old = self.parent / f".{name}.old-{os.getpid()}"
        self._locked = False
        self._prev_sigterm = None
        self.manifest = None

    # ---------------------------------------------------------------- checks
    def _check_out(self):
        out = self.out_dir.resolve()
        for p in self.inputs:
            try:
                rp = p.expanduser().resolve()
            except OSError:
                continue
            if rp.is_dir() and (_within(out, rp) or _within(rp, out)):
                rel = "is" if out == rp else ("lies inside" if _within(out, rp) else "contains")
                raise InputError(f"--out {self.out_dir} {rel} the input folder {rp}; an output folder must "
                                 "be separate from every input (it is replaced as a whole)")
            if not rp.is_dir() and _within(rp, out):
                raise InputError(f"--out {self.out_dir} contains the input file {rp}; an output folder must "
                                 "be separate from every input (it is replaced as a whole)")
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise InputError(f"--out {self.out_dir}: exists and is not a folder")
        if self.out_dir.is_dir() and any(self.out_dir.iterdir()) and read_manifest(self.out_dir) is None:
            raise InputError(f"--out {self.out_dir}: the folder is not empty and holds no {MANIFEST_NAME} of a "
                             "previous cobenefits run; it would be replaced as a whole, so choose a new or "
                             "empty folder (or delete this one)")
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--out {self.out_dir}: cannot create {self.parent} ({exc.strerror})") from None
        if not os.access(self.parent, os.W_OK | os.X_OK):
            raise InputError(f"--out {self.out_dir}: cannot write in its parent folder {self.parent} "
                             "(the output is staged beside it)")

    def _lock(self):
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "command": self.command}
        for _attempt in range(2):
            try:
                fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    held = json.loads(self.lock_path.read_text())
                except (OSError, ValueError):
                    held = {}
                pid, host = held.get("pid"), held.get("host")
                if isinstance(pid, int) and host == info["host"] and not _pid_alive(pid):
                    log.warning("removing the stale lock %s of process %d, which no longer runs", self.lock_path, pid)
                    with contextlib.suppress(FileNotFoundError):
                        self.lock_path.unlink()
                    continue
                who = (f"process {pid} on {host}, started {held.get('started_utc', '?')}" if pid
                       else "another process")
                raise InputError(f"--out {self.out_dir} is being written by {who} (lock file {self.lock_path}); "
                                 "wait for it to finish, use another --out, or delete the lock file if no such "
                                 "process runs") from None
            except OSError as exc:
                raise InputError(f"--out {self.out_dir}: cannot create the lock file {self.lock_path} "
                                 f"({exc.strerror})") from None
            with os.fdopen(fd, "w") as fh:
                json.dump(info, fh)
            self._locked = True
            return
        raise InputError(f"--out {self.out_dir}: could not take the lock {self.lock_path}")

    def _recover(self):
        """Clean what killed runs left beside ``out_dir`` (we hold the lock, so none is live)."""
        name = self.out_dir.name
        olds = sorted(self.parent.glob(f".{name}.old-*"))
        if not self.out_dir.exists() and olds:
            # killed between the two renames of a non-atomic swap: the previous output is intact
            for old in olds:
                man = read_manifest(old)
                if man and man.get("complete") is True:
                    os.replace(old, self.out_dir)
                    log.warning("restored the previous output %s from %s (an earlier run was interrupted "
                                "while replacing it)", self.out_dir, old)
                    break
        for stale in list(self.parent.glob(f".{name}.staging-*")) + list(self.parent.glob(f".{name}.old-*")):
            log.info("removing %s left by an interrupted run", stale)
            shutil.rmtree(stale, ignore_errors=True)

    # ---------------------------------------------------------------- use
    def __enter__(self):
        self._check_out()
        self._lock()
        try:
            self._recover()
            self.staging.mkdir()
            self._install_sigterm()
        except BaseException:
            self._release()
            raise
        return self

    def path(self, relative):
        """Where to write ``relative`` (e.g. ``"cities/c110000.nc"``): inside the staging folder."""
        rel = Path(relative)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"output path {relative!r} must be relative and inside the output folder")
        p = self.staging / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def __exit__(self, exc_type, exc, tb):
        if isinstance(exc, OSError) and exc.filename and str(exc.filename).startswith(str(self.staging)):
            # name the file the user asked for, not its staging copy
            rel = os.path.relpath(exc.filename, self.staging)
            exc.filename = str(self.out_dir / rel) + " (staged; --out is unchanged)"
        try:
            if exc_type is None:
                self._commit()
        finally:
            self._restore_sigterm()
            shutil.rmtree(self.staging, ignore_errors=True)
            self._release()
        return False

    def _manifest(self):
        files = []
        for p in sorted(self.staging.rglob("*")):
            if p.is_file() and p.name != MANIFEST_NAME:
                if p.name.endswith(".tmp") and p.name.startswith("."):
                    p.unlink()  # a writer's leftover temporary file is not part of the output
                    continue
                files.append({"path": p.relative_to(self.staging).as_posix(), "size_bytes": p.stat().st_size,
                              "sha256": sha256_file(p)})
        inputs = []
        for p in self.inputs:
            rp = p.expanduser().resolve()
            entry = {"path": str(rp)}
            if rp.is_file():
                entry.update(size_bytes=rp.stat().st_size, sha256=sha256_file(rp))
            inputs.append(entry)
        return {"format": MANIFEST_FORMAT, "complete": True, "command": self.command,
                "finished_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "versions": versions(), "config": self.config, "inputs": inputs, **self.extra,
                "files": files}

    def _commit(self):
        self.manifest = self._manifest()
        write_json(self.manifest, self.staging / MANIFEST_NAME)
        _fsync_dir(self.staging)
        # SIGTERM waits until the swap is done (SIGKILL cannot: _recover() repairs that window)
        blocked = hasattr(signal, "pthread_sigmask")
        if blocked:
            old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            if self.out_dir.exists():
                if _rename_exchange(self.staging, self.out_dir):
                    pass  # the staging name now holds the previous output; __exit__ removes it
                else:
                    os.replace(self.out_dir, self._old)
                    os.replace(self.staging, self.out_dir)
                    shutil.rmtree(self._old, ignore_errors=True)
            else:
                os.replace(self.staging, self.out_dir)
            _fsync_dir(self.parent)
        finally:
            if blocked:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    def _release(self):
        if self._locked:
            with contextlib.suppress(FileNotFoundError):
                self.lock_path.unlink()
            self._locked = False

    def _install_sigterm(self):
        if threading.current_thread() is not threading.main_thread():
            return

        def on_term(signum, frame):
            raise SystemExit(128 + signum)

        self._prev_sigterm = signal.signal(signal.SIGTERM, on_term)

    def _restore_sigterm(self):
        if self._prev_sigterm is not None:
            signal.signal(signal.SIGTERM, self._prev_sigterm)
            self._prev_sigterm = None


# --------------------------------------------------------------------------- JSON, versions
def write_json(obj, path):
    """Write JSON atomically (indented, keys in insertion order)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=2, default=_json_default)
            fh.write("\n")


def _json_default(o):
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def versions():
    """Versions of the engine and the libraries that shape its numbers."""
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version()}
    for pkg in ("cobenefits", "numpy", "numba", "pandas", "xarray", "netCDF4", "dask", "distributed",
                "matplotlib"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out

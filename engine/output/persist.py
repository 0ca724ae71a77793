"""Persistence: atomic files, output transactions with a manifest and a lock, a verified cache.

Three guarantees, shared by every command that writes (docs/design.md, "Outputs never overwrite a
previous run's files half-way"; docs/reliability.md):

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
  With ``amend=("report",)`` an existing output is amended instead (``cobenefits report``): the
  other files are kept and the manifest records the amendment, so the folder still verifies.
  :class:`FileTransaction` gives commands that write single files (``met-climatology``,
  ``health``) the same guard, lock and all-or-nothing rename. The guard and the lock live in
  :mod:`engine.output.locks`.
* :func:`save_verified_npz` / :func:`load_verified_npz` keep a SHA-256 sidecar next to each cache
  entry; an entry that is truncated, corrupt or has no sidecar is deleted and reported as a miss,
  so it is recomputed instead of failing every run. Cache entries are renamed into place like any
  file but not flushed to disk first: the checksum, not the flush, is what guards them (a power
  loss may cost an entry, which is then recomputed), and a national run writes about 12,000 of
  them (an ``fsync`` costs 0.3 ms each on the benchmark machine).

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
import tempfile
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.output.locks import (LOCK_SUFFIX, OutputLock, SigtermAsExit, check_outputs, sigterm_blocked,
                                 within)

__all__ = ["atomic_path", "atomic_write_bytes", "sha256_file", "OutputTransaction", "FileTransaction",
           "read_manifest", "verify_output", "check_outputs", "save_verified_npz", "load_verified_npz", "MANIFEST_NAME", "LOCK_SUFFIX"]

log = logging.getLogger("cobenefits")

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "cobenefits-output-1"

_UMASK = os.umask(0)
os.umask(_UMASK)


# --------------------------------------------------------------------------- one file
@contextlib.contextmanager
def atomic_path(path, *, fsync=True):
    """Yield a temporary path beside ``path``; fsync and rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched. ``fsync=False``
    skips the flush (the rename stays atomic for readers; only a power loss could leave the file
    short): for entries that are verified when read, such as the cache's.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if fsync:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are for other tools too
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data, *, fsync=True):
    """Write ``data`` (bytes) to ``path`` atomically (:func:`atomic_path`)."""
    with atomic_path(path, fsync=fsync) as tmp, open(tmp, "wb") as fh:
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
    sidecar and is treated as corrupt by :func:`load_verified_npz`. Neither file is flushed to disk
    before its rename (module docstring): the checksum catches whatever a power loss leaves.
    """
    path = Path(path)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    atomic_write_bytes(path, data, fsync=False)
    atomic_write_bytes(_sidecar(path), (hashlib.sha256(data).hexdigest() + "\n").encode(), fsync=False)


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


_within = within  # the name earlier callers used


def read_manifest(out_dir):
    """The parsed ``manifest.json`` of an output folder, or ``None`` if absent or unreadable."""
    p = Path(out_dir) / MANIFEST_NAME
    try:
        man = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return man if isinstance(man, dict) else None


def verify_output(out_dir):
    """Problems of an output folder against its manifest (``[]`` = complete and intact).

    Checks that the manifest exists and says ``complete``, that every listed file exists with
    its size and SHA-256, and that no unlisted file is present. A manifest of the wrong shape
    (not written by cobenefits) is one problem, never an exception.
    """
    out_dir = Path(out_dir)
    man = read_manifest(out_dir)
    if man is None:
        return [f"{out_dir}: no readable {MANIFEST_NAME}"]
    problems = []
    if man.get("complete") is not True:
        problems.append(f"{out_dir}: manifest says complete = {man.get('complete')!r}")
    listed = {}
    files = man.get("files", [])
    if not isinstance(files, list):
        return problems + [f"{out_dir / MANIFEST_NAME}: 'files' is not a list"]
    for f in files:
        if not (isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("size_bytes"), int)
                and isinstance(f.get("sha256"), str)):
            problems.append(f"{out_dir / MANIFEST_NAME}: a 'files' entry is not {{path, size_bytes, sha256}}: "
                            f"{str(f)[:80]}")
            continue
        listed[f["path"]] = f
        rel = Path(f["path"])
        if rel.is_absolute() or ".." in rel.parts:
            problems.append(f"{out_dir / MANIFEST_NAME}: listed path {f['path']!r} is outside the folder")
            continue
        p = out_dir / rel
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


def _under(rel, prefixes):
    return any(rel == p or rel.startswith(p.rstrip("/") + "/") for p in prefixes)


def _link_or_copy(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # no hard links here (another file system, FAT, a quota): copy
        shutil.copy2(src, dst)


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
    amend : iterable of str, optional
        Amend an existing complete output instead of replacing it: the files of ``out_dir``
        outside these relative paths (e.g. ``("report",)``) are kept (hard-linked into the
        staging folder, so nothing is copied), those under them are replaced by what this
        transaction writes, and the manifest keeps the previous command, configuration and
        inputs and records the amendment (``amended``: command, time, paths, inputs). ``out_dir``
        must verify against its manifest outside the amended paths. Used by ``cobenefits report
        RUN_DIR`` so that the run folder keeps verifying.
    option : str
        The option that named ``out_dir``, for messages (default ``"--out"``).

    Use as a context manager; write every file under :meth:`path` (or :attr:`staging`). On a
    normal exit the set is committed; on an exception (or SIGTERM, which is turned into
    ``SystemExit(143)`` while the transaction is open in the main thread) the staging folder is
    removed and ``out_dir`` keeps its previous content.

    Raises
    ------
    InputError
        ``out_dir`` overlaps an input, is a file, is a non-empty folder that is not a cobenefits
        output, cannot be written, or another process holds its lock (any command: the lock is
        :class:`engine.output.locks.OutputLock`, shared by every writing command).
    """

    def __init__(self, out_dir, *, inputs=(), config=None, command="", extra=None, amend=None, option="--out"):
        self.out_dir = Path(os.path.abspath(Path(out_dir).expanduser()))
        self.inputs = [Path(p) for p in inputs if p not in (None, "")]
        self.config = config
        self.command = command
        self.extra = dict(extra or {})
        self.amend = tuple(amend) if amend else ()
        self.option = option
        name = self.out_dir.name
        if not name:
            raise InputError(f"{option} {out_dir}: the file-system root cannot be an output folder")
        self.parent = self.out_dir.parent
        self._lock_obj = OutputLock(self.out_dir, command=command, option=option)
        self.lock_path = self._lock_obj.path
        self.staging = self.parent / f".{name}.staging-{os.getpid()}"
        self._old = self.parent / f".{name}.old-{os.getpid()}"
        self._sigterm = SigtermAsExit()
        self._previous = None
        self.manifest = None

    # ---------------------------------------------------------------- checks
    def _check_out(self):
        check_outputs([(self.option, self.out_dir, "dir")], [("", p) for p in self.inputs],
                      what="an output folder")
        label = f"{self.option} {self.out_dir}"
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise InputError(f"{label}: exists and is not a folder")
        if self.amend:
            if read_manifest(self.out_dir) is None:
                raise InputError(f"{label}: no {MANIFEST_NAME}; only a complete cobenefits output can be amended")
        elif self.out_dir.is_dir() and any(self.out_dir.iterdir()) and read_manifest(self.out_dir) is None:
            raise InputError(f"{label}: the folder is not empty and holds no {MANIFEST_NAME} of a "
                             "previous cobenefits run; it would be replaced as a whole, so choose a new or "
                             "empty folder (or delete this one)")
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{label}: cannot create {self.parent} ({exc.strerror})") from None
        if not os.access(self.parent, os.W_OK | os.X_OK):
            raise InputError(f"{label}: cannot write in its parent folder {self.parent} "
                             "(the output is staged beside it)")

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

    def _start_amend(self):
        """Keep the previous output's files outside :attr:`amend` (verified, then hard-linked)."""
        prev = read_manifest(self.out_dir)
        label = f"{self.option} {self.out_dir}"
        if prev is None or prev.get("complete") is not True:
            raise InputError(f"{label}: {MANIFEST_NAME} is missing or not complete; only a complete cobenefits "
                             "output can be amended")
        mine = tuple(f"{self.out_dir / a}{sep}" for a in self.amend for sep in (os.sep, ":"))
        problems = [p for p in verify_output(self.out_dir) if not p.startswith(mine)]
        if problems:
            raise InputError(f"{label}: the folder no longer matches its {MANIFEST_NAME}, so it is not amended: "
                             + "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3
                                                         else "") + "; re-run the command that wrote it, or "
                             "write to another folder")
        for f in prev.get("files", []):
            if not _under(f["path"], self.amend):
                _link_or_copy(self.out_dir / f["path"], self.staging / f["path"])
        self._previous = prev

    # ---------------------------------------------------------------- use
    def __enter__(self):
        self._check_out()
        self._lock_obj.acquire()
        try:
            self._recover()
            self.staging.mkdir()
            self._sigterm.install()
            if self.amend:
                self._start_amend()
        except BaseException:
            self._sigterm.restore()
            shutil.rmtree(self.staging, ignore_errors=True)
            self._release()
            raise
        return self

    def path(self, relative):
        """Where to write ``relative`` (e.g. ``"cities/c110000.nc"``): inside the staging folder."""
        rel = Path(relative)
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"output path {relative!r} must be relative and inside the output folder")
        if self.amend and not _under(rel.as_posix(), self.amend):
            raise ValueError(f"output path {relative!r}: this transaction amends only {', '.join(self.amend)}")
        p = self.staging / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def __exit__(self, exc_type, exc, tb):
        if isinstance(exc, OSError) and exc.filename and str(exc.filename).startswith(str(self.staging)):
            # name the file the user asked for, not its staging copy
            rel = os.path.relpath(exc.filename, self.staging)
            exc.filename = str(self.out_dir / rel) + f" (staged; {self.option} is unchanged)"
        try:
            if exc_type is None:
                self._commit()
        finally:
            self._sigterm.restore()
            shutil.rmtree(self.staging, ignore_errors=True)
            self._release()
        return False

    def _files(self):
        files = []
        for p in sorted(self.staging.rglob("*")):
            if p.is_file() and p.name != MANIFEST_NAME:
                if p.name.endswith(".tmp") and p.name.startswith("."):
                    p.unlink()  # a writer's leftover temporary file is not part of the output
                    continue
                files.append({"path": p.relative_to(self.staging).as_posix(), "size_bytes": p.stat().st_size,
                              "sha256": sha256_file(p)})
        return files

    def _input_entries(self):
        inputs = []
        for p in self.inputs:
            rp = p.expanduser().resolve()
            entry = {"path": str(rp)}
            if rp.is_file():
                entry.update(size_bytes=rp.stat().st_size, sha256=sha256_file(rp))
            inputs.append(entry)
        return inputs

    def _manifest(self):
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        if self._previous is not None:
            man = {k: v for k, v in self._previous.items() if k != "files"}
            man["amended"] = list(man.get("amended") or []) + [
                {"command": self.command, "utc": now, "paths": list(self.amend), "inputs": self._input_entries(),
                 "versions": versions(), **self.extra}]
            man["files"] = self._files()
            return man
        return {"format": MANIFEST_FORMAT, "complete": True, "command": self.command,
                "finished_utc": now, "versions": versions(), "config": self.config,
                "inputs": self._input_entries(), **self.extra, "files": self._files()}

    def _commit(self):
        self.manifest = self._manifest()
        write_json(self.manifest, self.staging / MANIFEST_NAME)
        _fsync_dir(self.staging)
        # SIGTERM waits until the swap is done (SIGKILL cannot: _recover() repairs that window)
        with sigterm_blocked():
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

    def _release(self):
        self._lock_obj.release()

    @property
    def _locked(self):
        return self._lock_obj.held


class FileTransaction:
    """Write one or more output *files* (``met-climatology --out``, ``health --out --benmap-out``)
    with the guard and lock of :class:`OutputTransaction`.

    Every output is checked against every input (and the other outputs) before anything is
    read: an output that is an input file (also through a symbolic or hard link), or two outputs
    with the same name, are refused with exit 2 naming both. Each output gets the lock
    ``.<name>.lock`` beside it (a second writer is refused) and is written to ``.<name>.staging-<pid>``
    beside it; at the end the staged files are renamed over their targets, SIGTERM deferred. An
    exception, SIGTERM or SIGKILL before that leaves every target as it was. (Several files are
    renamed one after the other: only a SIGKILL or power loss between two renames, microseconds,
    can leave one new and one old.)

    Parameters
    ----------
    outputs : dict
        option -> path of every output file this command writes (``{"--out": "x.csv"}``).
    inputs : dict
        option or argument name -> path of every input file or folder.
    command : str
        Recorded in the lock files.

    Examples
    --------
    >>> with FileTransaction({"--out": "c.csv"}, inputs={"SFC": "x.sfc"}, command="met-climatology") as tx:  # doctest: +SKIP
    ...     write_climatology(c, tx.path("--out"))
    """

    def __init__(self, outputs, *, inputs=None, command=""):
        self.targets = {opt: Path(os.path.abspath(Path(p).expanduser())) for opt, p in outputs.items()
                        if p not in (None, "")}
        self.inputs = {opt: p for opt, p in (inputs or {}).items() if p not in (None, "")}
        self.command = command
        self._locks = [OutputLock(t, command=command, option=opt) for opt, t in self.targets.items()]
        self._staged = {opt: t.parent / f".{t.name}.staging-{os.getpid()}" for opt, t in self.targets.items()}
        self._sigterm = SigtermAsExit()

    def check(self):
        """The guard alone (also run by ``__enter__``): raise :class:`InputError` on an overlap."""
        check_outputs([(opt, t, "file") for opt, t in self.targets.items()], list(self.inputs.items()),
                      what="an output file")
        for opt, t in self.targets.items():
            if t.is_dir():
                raise InputError(f"{opt} {t}: is a folder; give a file name")
            try:
                t.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"{opt} {t}: cannot create the folder {t.parent} ({exc.strerror})") from None
            if not os.access(t.parent, os.W_OK | os.X_OK):
                raise InputError(f"{opt} {t}: cannot write in the folder {t.parent}")

    def __enter__(self):
        self.check()
        taken = []
        try:
            for lk in sorted(self._locks, key=lambda lk: str(lk.path)):  # one order: no deadlock
                taken.append(lk.acquire())
            for t in self.targets.values():
                for stale in t.parent.glob(f".{t.name}.staging-*"):
                    log.info("removing %s left by an interrupted run", stale)
                    with contextlib.suppress(OSError):
                        stale.unlink()
            self._sigterm.install()
        except BaseException:
            for lk in taken:
                lk.release()
            raise
        return self

    def path(self, option):
        """The staging path to write the output named by ``option`` to."""
        return self._staged[option]

    def __exit__(self, exc_type, exc, tb):
        if isinstance(exc, OSError) and exc.filename:
            for opt, st in self._staged.items():
                if str(exc.filename) == str(st):
                    exc.filename = f"{self.targets[opt]} (staged; {opt} is unchanged)"
        try:
            if exc_type is None:
                self._commit()
        finally:
            self._sigterm.restore()
            for st in self._staged.values():
                with contextlib.suppress(FileNotFoundError):
                    st.unlink()
            for lk in self._locks:
                lk.release()
        return False

    def _commit(self):
        missing = [opt for opt, st in self._staged.items() if not st.is_file()]
        if missing:
            raise RuntimeError(f"FileTransaction: nothing was written for {', '.join(missing)}")
        for st in self._staged.values():
            with open(st, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(st, 0o666 & ~_UMASK)
        with sigterm_blocked():
            for opt, st in self._staged.items():
                os.replace(st, self.targets[opt])
            for parent in {t.parent for t in self.targets.values()}:
                _fsync_dir(parent)


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

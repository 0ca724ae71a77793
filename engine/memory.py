"""Process-wide memory settings that make large NumPy temporaries cheap (the command line applies them).

A national run creates and frees tens of thousands of arrays of megabytes (synthetic met hours,
padded transforms, fields). By default each one above glibc's dynamic ``mmap`` threshold is
mapped from the kernel and unmapped when freed, and NumPy asks the kernel to back every array of
4 MB or more with transparent huge pages (``madvise(MADV_HUGEPAGE)``): every new array then costs
fresh page faults, and on virtual machines each fault is expensive. Measured on the 2-core machine
of ``docs/performance.md`` (a Firecracker VM), the eight regions' default climatology took 15.8 s
wall, 6.0 s of it in the kernel (355,000 page faults); with the settings below 10.0 s and 0.2 s.

:func:`tune` therefore

* turns off NumPy's huge-page advice (``NUMPY_MADVISE_HUGEPAGE=0`` does the same from the
  environment; NumPy documents both);
* on glibc, fixes ``M_MMAP_THRESHOLD`` at its largest value (32 MiB: smaller blocks come from
  the heap and are reused), ``M_TRIM_THRESHOLD`` at 128 MiB (up to that much freed heap memory is kept
  for the next array instead of being returned and faulted in again) and ``M_TOP_PAD`` at 128 MiB (the heap
  grows in large steps; untouched pages cost nothing), with ``mallopt(3)``.

Results are unaffected (the same arithmetic on the same numbers). Up to 128 MiB of freed memory
stays with each process; :func:`release_before_fork` returns the rest before workers are forked
(the national run's process tree peaks at 2.4 GB, against 2.7 GB before these settings). Forked
workers inherit the settings. ``COBENEFITS_TUNE_MEMORY=0`` leaves the process as it was.
"""

from __future__ import annotations

import functools
import os
import sys

__all__ = ["tune", "release_before_fork", "MMAP_THRESHOLD_BYTES", "TRIM_THRESHOLD_BYTES", "TOP_PAD_BYTES"]

#: glibc's largest settable mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX) [bytes]
MMAP_THRESHOLD_BYTES = 32 * 2**20
#: free heap memory kept before it is returned to the system [bytes]
TRIM_THRESHOLD_BYTES = 128 * 2**20
#: extra heap requested whenever the heap grows [bytes]
TOP_PAD_BYTES = 128 * 2**20

# mallopt(3) parameter numbers (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

_applied = None


def tune():
    """Apply the settings once per process; returns what was applied, e.g. ``{"numpy_hugepage":
    False, "glibc_mallopt": True}`` (an empty dict when ``COBENEFITS_TUNE_MEMORY=0``)."""
    global _applied
    if _applied is not None:
        return dict(_applied)
    done = {}
    if _off():
        _applied = done
        return {}
    try:  # NumPy >= 1.20 (numpy._core in 2.x, numpy.core before)
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core.multiarray import _set_madvise_hugepage
    if "NUMPY_MADVISE_HUGEPAGE" not in os.environ:  # the user's own choice wins
        _set_madvise_hugepage(False)
        done["numpy_hugepage"] = False
    if sys.platform.startswith("linux"):
        done["glibc_mallopt"] = _glibc_mallopt()
    _applied = done
    return dict(done)


def _off():
    return os.environ.get("COBENEFITS_TUNE_MEMORY", "1").strip().lower() in ("0", "false", "no", "off")


def release_before_fork():
    """Return the heap's free pages to the system (glibc ``malloc_trim(0)``) before forking workers.

    A forked child allocates from the free blocks of the heap it inherits; where those pages are
    still resident, its every first write to one copies the parent's page (copy-on-write). After
    the transfer kernels (hundreds of MB allocated and freed) that slowed the national receptor
    pass from 45.9-47.4 s to 52.2-54.2 s (same process, two workers); released first, the child's
    pages are fresh zero pages. Takes about 30 ms. Returns False where there is no glibc, or with
    ``COBENEFITS_TUNE_MEMORY=0``.
    """
    libc = None if _off() else _glibc()
    if libc is None:
        return False
    import ctypes

    libc.malloc_trim.argtypes = (ctypes.c_size_t,)
    libc.malloc_trim(0)
    return True


@functools.lru_cache(maxsize=None)
def _glibc():
    """The C library when it is glibc (with mallopt and malloc_trim), else None (looked up once)."""
    import ctypes
    import ctypes.util
    import platform

    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018  both must exist
    except (OSError, AttributeError):
        return None
    return libc


def _glibc_mallopt():
    """Set the three glibc parameters; False where the C library is not glibc (musl has no mallopt)."""
    import ctypes

    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = True
    for param, value in ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
                         (_M_TOP_PAD, TOP_PAD_BYTES)):
        ok &= mallopt(param, value) == 1
    return bool(ok)

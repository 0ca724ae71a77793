"""The ``cobenefits`` command line (also ``python -m engine``).

Each subcommand lives in ``engine/commands/<name>.py`` and defines ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``.

Exit codes: 0 success; 2 bad input or usage, and expected failures of the environment (I/O and
encoding errors, out of memory, an unreachable scheduler): a one-paragraph message, no traceback;
1 internal error (a bug). Tracebacks go to ``<cache folder>/logs/error-*.log`` (the last
:data:`KEEP_ERROR_LOGS` are kept), shown on screen only with ``--debug``.
"""

import argparse
import gc
import importlib
import logging
import os
import sys
import tempfile
import traceback

from engine.errors import InputError, SchedulerError

__all__ = ["main", "build_parser", "COMMAND_MODULES"]

#: subcommand modules, in the order ``--help`` lists them
COMMAND_MODULES = (
    "engine.commands.run",
    "engine.commands.carbon",
    "engine.commands.validate_data",
    "engine.commands.validate",
    "engine.commands.health",
    "engine.commands.aermod",
    "engine.commands.report",
    "engine.commands.met_climatology",
    "engine.commands.sweep",
    "engine.commands.marginal",
    "engine.commands.target",
)

log = logging.getLogger("cobenefits")


class _HelpFormatter(argparse.HelpFormatter):
    """Shows an option's default unless its help already states one or it has none."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text.lower() or action.default in (None, False, argparse.SUPPRESS)
                or action.option_strings == []):
            return text
        return f"{text} (default: {action.default})"


class _IntermixedParser(argparse.ArgumentParser):
    """A subcommand parser that takes options and positionals in any order:
    ``aermod X.inp --outdir D L.out`` as well as ``aermod X.inp L.out --outdir D``.

    argparse matches a subcommand's positionals in one go, so a positional after an option
    (``L.out`` above) was "unrecognized"; :meth:`argparse.ArgumentParser.parse_known_intermixed_args`
    parses the options first, then the positionals. It calls :meth:`parse_known_args` itself,
    hence the re-entrancy flag.
    """

    _inner = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inner:
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def version_text():
    """``cobenefits X.Y.Z`` then the versions of Python and the libraries that shape results."""
    from engine.output.writers import versions

    v = versions()
    head = f"cobenefits {v.pop('cobenefits', 'unknown (not installed; running from source)')}"
    return head + "\n" + "\n".join(f"  {k} {val}" for k, val in v.items())


class _VersionAction(argparse.Action):
    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def _command_modules(argv):
    """The subcommand modules to import for ``argv``: only the named command's module when the
    first word that is not an option names one (``cobenefits aermod ...`` then does not import
    xarray, pandas and the national pipeline: about 0.5 s of start-up), else all of them."""
    words = [a for a in (argv or ()) if not a.startswith("-")]
    if words:
        modname = "engine.commands." + words[0].replace("-", "_")
        if modname in COMMAND_MODULES:
            return (modname,)
    return COMMAND_MODULES


def build_parser(argv=None):
    """The argument parser; with ``argv``, only the subcommand it names is registered (see
    :func:`_command_modules`; ``--help`` and unknown commands still list them all)."""
    parser = argparse.ArgumentParser(
        prog="cobenefits",
        description="City energy actions -> CO2 cuts, primary PM2.5 fields and deaths avoided.",
    )
    parser.add_argument("--version", action=_VersionAction,
                        help="print the version and the versions of the key dependencies, then exit")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_IntermixedParser)
    for modname in (COMMAND_MODULES if argv is None else _command_modules(argv)):
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:  # a command whose module is not in this build
            if exc.name == modname:
                continue
            raise
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP,
                           formatter_class=_HelpFormatter)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks of internal errors")
        p.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="no progress bar or log lines")
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run, _memory_advice=getattr(mod, "MEMORY_ADVICE", None))
    return parser


def _setup_logging(quiet):
    level = logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)


#: error logs kept in the cache folder's ``logs/`` (older ones are deleted)
KEEP_ERROR_LOGS = 20


def _error_log(text):
    """Write ``text`` to a new log in ``<cache>/logs`` (else the temp folder); prune old logs."""
    import time

    try:
        from engine.dispersion.fields import cache_dir

        folder = cache_dir("logs")
        fd, path = tempfile.mkstemp(prefix=time.strftime("error-%Y%m%dT%H%M%S-"), suffix=".log", dir=folder)
    except OSError:
        folder = None
        fd, path = tempfile.mkstemp(prefix="cobenefits-error-", suffix=".log")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    if folder is not None:
        logs = sorted(folder.glob("error-*.log"), key=lambda p: (p.stat().st_mtime, p.name))
        for old in logs[:-KEEP_ERROR_LOGS]:
            try:
                old.unlink()
            except OSError:
                pass
    return path


#: what a command that runs out of memory can do about it (a command module's MEMORY_ADVICE overrides)
MEMORY_ADVICE = ("use fewer workers (--workers), fewer cities (--cities), or a coarser grid ([dispersion] "
                 "city_resolution_m in [100, 20000] m, smaller city_margin_m)")


def _expected_failure(exc, memory_advice=None):
    """The one-paragraph message of an expected failure that is not an InputError, or None."""
    if isinstance(exc, SchedulerError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return f"not enough memory for this run; {memory_advice or MEMORY_ADVICE}"
    if isinstance(exc, UnicodeError):
        obj = getattr(exc, "object", b"")
        return (f"a file is not UTF-8 text ({exc.reason if hasattr(exc, 'reason') else exc}; "
                f"{len(obj)} bytes read); save it as UTF-8")
    if isinstance(exc, OSError):
        name = exc.filename if exc.filename is not None else ""
        if exc.filename2 is not None:
            name = f"{name} -> {exc.filename2}"
        what = exc.strerror or str(exc) or type(exc).__name__
        if name:
            return f"{name}: {what} (file-system error; check the path, its permissions and the free space)"
        return f"{type(exc).__name__}: {what} (I/O or network error)"
    return None


def main(argv=None):
    command_line = argv is None
    argv = sys.argv[1:] if command_line else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    _setup_logging(getattr(args, "quiet", False))
    if command_line:  # a process of its own: large temporaries without page-fault storms (engine.memory)
        from engine.memory import tune

        tune()
    try:
        return int(args._run(args) or 0)
    except InputError as exc:
        print(f"cobenefits {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cobenefits: interrupted; finished work is kept and a re-run resumes", file=sys.stderr)
        return 130
    except Exception as exc:  # MemoryError is an Exception too
        tb = traceback.format_exc()
        if getattr(args, "debug", False):
            print(tb, file=sys.stderr)
        path = _error_log(tb)
        expected = _expected_failure(exc, getattr(args, "_memory_advice", None))
        if expected is not None:  # I/O, encoding, memory: the user's environment, not a bug
            print(f"cobenefits {args.command}: error: {expected}\n(details in {path})", file=sys.stderr)
            return 2
        print(f"cobenefits {args.command}: internal error: {tb.strip().splitlines()[-1]}\n"
              f"(traceback in {path}; re-run with --debug to show it)", file=sys.stderr)
        return 1
    finally:
        if command_line:
            # the process ends next: freezing the objects spares the interpreter's shutdown
            # garbage collection a traversal of every object numba created (0.05-0.15 s of
            # each `cobenefits aermod`, measured); outputs are written and closed by now
            gc.freeze()


if __name__ == "__main__":
    sys.exit(main())

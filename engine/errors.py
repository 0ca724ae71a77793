"""Exceptions that the command line turns into exit codes.

``InputError`` is bad input or usage: the CLI prints its one-paragraph message and exits 2,
with no traceback. Anything else is an internal error (exit 1).
"""

from pathlib import Path

__all__ = ["InputError", "InputErrors", "SchedulerError", "read_text_file"]


class InputError(ValueError):
    """Bad user input. The message names the file, line/row/key and what was expected."""


class InputErrors(InputError):
    """Several input problems found at once (``validate-data`` reports them all).

    Parameters
    ----------
    problems : list of str
        One human-readable line per problem.
    header : str
        First line of the message.
    """

    def __init__(self, problems, header="input problems"):
        self.problems = list(problems)
        body = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{header} ({len(self.problems)}):\n{body}")


class SchedulerError(RuntimeError):
    """A dask.distributed cluster stopped making progress or lost tasks beyond the retries.

    An expected failure of the environment (exit 2): the message names the tasks still pending,
    the time waited and how to change the limits.
    """


def read_text_file(path, what):
    """The text of ``path`` as UTF-8, or :class:`InputError` naming the file (and the line of
    the first byte that is not UTF-8), so that no reader reports "a file is not UTF-8 text"
    without saying which.

    Parameters
    ----------
    path : path-like
    what : str
        How the message calls the file (``"AERMET surface file"``).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot read ({exc.strerror})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError(f"{what} {path}, line {line}: not UTF-8 text (byte {data[exc.start]:#04x} at offset "
                         f"{exc.start}); save it as UTF-8 (or ASCII) text") from None

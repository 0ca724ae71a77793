"""Exceptions that the command line turns into exit codes.

``InputError`` is bad input or usage: the CLI prints its one-paragraph message and exits 2,
with no traceback. Anything else is an internal error (exit 1).
"""

__all__ = ["InputError", "InputErrors", "SchedulerError"]


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

"""User-facing errors: one line, naming the file and the problem, no traceback."""

from __future__ import annotations

from pathlib import Path


class NeuralignError(Exception):
    """An error caused by user input (bad file, bad option).

    The CLI prints ``neuralign: error: <message>`` on one line and exits with status 2.
    Raise it with a message that names the file (when there is one) and the problem.
    """

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        text = f"{self.path}: {message}" if self.path is not None else message
        super().__init__(text)


class NeuralignWarning(UserWarning):
    """A user-facing warning (the CLI prints it on one line, without a source excerpt)."""


def few(items, n: int = 5) -> str:
    """Format the first ``n`` items of a collection for an error message."""
    items = list(items)
    shown = ", ".join(repr(str(x)) for x in items[:n])
    more = f" (and {len(items) - n} more)" if len(items) > n else ""
    return shown + more

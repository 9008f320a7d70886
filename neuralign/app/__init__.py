"""The live Qt window (PySide6 + pyqtgraph) and the sources it reads snapshots from.

Import-light: importing :mod:`neuralign.app` does not import Qt. The window lives in
:mod:`neuralign.app.window` (``run_window``), the source protocol in :mod:`neuralign.app.source`
and the in-process replay source in :mod:`neuralign.app.replay`.
"""

from __future__ import annotations

from .source import ControllableSource, SnapshotSource, StaticSource

__all__ = ["ControllableSource", "SnapshotSource", "StaticSource", "run_window"]


def run_window(source, *, screenshot=None, exit_after=None, **kwargs) -> int:
    """Open the window on ``source`` (see :func:`neuralign.app.window.run_window`)."""
    from .window import run_window as _run

    return _run(source, screenshot=screenshot, exit_after=exit_after, **kwargs)

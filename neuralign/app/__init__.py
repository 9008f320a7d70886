"""The live Qt window (PySide6 + pyqtgraph) and the sources it reads snapshots from.

Import-light: importing :mod:`neuralign.app` does not import Qt. The window lives in
:mod:`neuralign.app.window` (``run_window``), the source protocol in :mod:`neuralign.app.source`
and the in-process replay source in :mod:`neuralign.app.replay`.
"""

from __future__ import annotations

import os as _os

# pyqtgraph picks its Qt binding when first imported: make it PySide6 (REFERENCE.md section 4),
# before any module of this package can import pyqtgraph. Exports draw report figures in a
# worker thread, so matplotlib must not pick a Qt backend either.
_os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
_os.environ.setdefault("QT_API", "pyside6")
_os.environ.setdefault("MPLBACKEND", "Agg")

from .source import AttributeSource, ControllableSource, SnapshotSource, StaticSource, as_source

__all__ = [
    "AttributeSource", "ControllableSource", "SnapshotSource", "StaticSource", "as_source",
    "run_window",
]


def run_window(source, *, screenshot=None, exit_after=None, **kwargs) -> int:
    """Open the window on ``source`` (see :func:`neuralign.app.window.run_window`)."""
    from .window import run_window as _run

    return _run(source, screenshot=screenshot, exit_after=exit_after, **kwargs)

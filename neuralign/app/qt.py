"""Qt bootstrap: pick PySide6 for pyqtgraph, choose the platform, make the QApplication.

Import this module before anything imports pyqtgraph: pyqtgraph picks its Qt binding at import
time and would take PyQt6 if that were installed too (REFERENCE.md section 4).
"""

from __future__ import annotations

import os
import sys

from ..errors import NeuralignError

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
os.environ.setdefault("QT_API", "pyside6")


def has_display() -> bool:
    """Whether a window system is reachable (X11/Wayland on Linux; always true elsewhere)."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def choose_platform(*, offscreen: bool) -> str | None:
    """Set ``QT_QPA_PLATFORM=offscreen`` when asked to, or when there is no display.

    Returns the platform in force (``None`` = Qt's default). Must run before the
    QApplication exists; an explicit ``QT_QPA_PLATFORM`` from the user always wins.
    """
    if "QT_QPA_PLATFORM" in os.environ:
        return os.environ["QT_QPA_PLATFORM"]
    if offscreen or not has_display():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return "offscreen"
    return None


def ensure_app(*, offscreen: bool = False):
    """The running QApplication, created if needed (after :func:`choose_platform`)."""
    try:
        from PySide6 import QtWidgets
    except ImportError as e:  # pragma: no cover - depends on the install
        raise NeuralignError(
            "the window needs the gui extra: pip install 'neuralign[gui]' "
            f"(PySide6-Essentials and pyqtgraph; {e})"
        ) from e
    app = QtWidgets.QApplication.instance()
    if app is None:
        choose_platform(offscreen=offscreen)
        app = QtWidgets.QApplication(sys.argv[:1])
        app.setApplicationName("neuralign")
        app.setOrganizationName("neuralign")
    return app

"""Qt bootstrap: choose the platform, make the QApplication, guard a PySide6 bug.

Nothing happens at import time. pyqtgraph picks its Qt binding when first imported, preferring
one that is already imported: the window's modules import PySide6 before pyqtgraph, so the
window draws with PySide6 even where PyQt6 is installed too (REFERENCE.md section 4; setting
``PYQTGRAPH_QT_LIB`` still wins). Report figures force matplotlib's Agg backend themselves.
"""

from __future__ import annotations

import os
import sys

from ..errors import NeuralignError


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
        _quiet_offscreen_warnings()
        app = QtWidgets.QApplication(sys.argv[:1])
        app.setApplicationName("neuralign")
        app.setOrganizationName("neuralign")
    install_refcount_guard()
    return app


# ---------------------------------------------------------------------------- garbage collection
# CPython collects reference cycles in whichever thread crosses the allocation threshold. The
# window runs Python threads beside the GUI (refresh worker, statistics, exports): a collection
# there can free a PySide wrapper, whose C++ deletion shiboken then queues to the GUI thread,
# which waits on a Qt lock while the worker waits for the GIL (a deadlock seen in
# tests/app: an export thread in matplotlib, the GUI thread in ~QMenu). pyqtgraph's
# GarbageCollector (the pattern of pyqtgraph and calibre) turns automatic collection off and
# collects on a GUI-thread QTimer instead.
_gc_pin = None


def pin_gc_to_gui_thread(interval_s: float = 1.0):
    """Collect reference cycles in the GUI thread only, on a timer (idempotent).

    Parameters
    ----------
    interval_s : float
        Seconds between checks of the collection thresholds.

    Returns
    -------
    pyqtgraph.util.garbage_collector.GarbageCollector
        The collector (its QTimer runs while the Qt event loop does).
    """
    global _gc_pin
    if _gc_pin is None:
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _gc_pin = GarbageCollector(interval=interval_s)
    return _gc_pin


def release_gc() -> None:
    """Undo :func:`pin_gc_to_gui_thread`: collect now (in this thread) and turn automatic
    collection back on (when the windows are gone and Python code goes on without Qt)."""
    global _gc_pin
    import gc

    if _gc_pin is not None:
        _gc_pin.timer.stop()
        _gc_pin = None
    gc.collect()
    gc.enable()


_QUIET = ("propagateSizeHints",)
_previous_handler = None


def _quiet_offscreen_warnings() -> None:
    """Drop the offscreen plugin's harmless 'does not support propagateSizeHints' lines."""
    global _previous_handler
    from PySide6 import QtCore

    def handler(mode, context, message) -> None:
        if any(q in message for q in _QUIET):
            return
        if _previous_handler is not None:
            _previous_handler(mode, context, message)
        else:
            sys.stderr.write(message + "\n")

    _previous_handler = QtCore.qInstallMessageHandler(handler)


# ---------------------------------------------------------------------------- PySide6 6.12.0 guard
# PySide6 6.12.0 on Python < 3.12 drops a reference to True (Signal.emit's return value) and to
# None on many calls; after a few thousand signals CPython aborts with "Fatal Python error:
# bool_dealloc / none_dealloc". Python 3.12+ makes these singletons immortal, and PySide6 <= 6.11
# does not have the bug. Where the bug is detected, the singletons get a large reference cushion
# that a timer tops up (they are never freed anyway), so the window keeps running.
_GUARD_MARGIN = 1 << 24
_guard_state: dict = {}


def _singletons() -> tuple:
    return (None, True, False)


def refcount_leak_detected() -> bool:
    """Whether this PySide6 loses references to ``True``/``None`` (probe with 64 emits)."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    from PySide6 import QtCore

    class _Probe(QtCore.QObject):
        sig = QtCore.Signal(object)

    p = _Probe()
    before = [sys.getrefcount(o) for o in _singletons()]
    for _ in range(64):
        p.sig.emit(p)
    after = [sys.getrefcount(o) for o in _singletons()]
    return any(a < b - 32 for a, b in zip(after, before))


def _pad_to(obj, target: int) -> None:
    import ctypes

    cell = ctypes.c_ssize_t.from_address(id(obj))
    deficit = target - sys.getrefcount(obj)
    if deficit > 0:
        cell.value += deficit


def install_refcount_guard() -> bool:
    """Protect against the PySide6 6.12.0 refcount leak (idempotent); True if active."""
    if "active" in _guard_state:
        top_up()
        return _guard_state["active"]
    active = refcount_leak_detected()
    _guard_state["active"] = active
    if active:
        _guard_state["targets"] = [sys.getrefcount(o) + _GUARD_MARGIN for o in _singletons()]
        top_up()
    return active


def top_up() -> None:
    """Restore the reference cushion of ``None``/``True``/``False`` (when the guard is on)."""
    targets = _guard_state.get("targets")
    if not targets:
        return
    for o, t in zip(_singletons(), targets):
        if sys.getrefcount(o) < t - _GUARD_MARGIN // 2:
            _pad_to(o, t)


def guard_timer(parent):
    """A QTimer (child of ``parent``) that tops the cushion up every second, if the guard is on."""
    if not install_refcount_guard():
        return None
    from PySide6 import QtCore

    timer = QtCore.QTimer(parent)
    timer.setInterval(1000)
    timer.timeout.connect(top_up)
    timer.start()
    return timer

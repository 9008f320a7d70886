"""Running the window: :func:`run_window` opens it on a source and runs the Qt event loop.

It starts and stops the source, saves a screenshot and closes after ``exit_after`` seconds
when asked (``--screenshot FILE.png --exit-after SECONDS``), and turns Ctrl-C / SIGTERM into
a normal close.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore

from ..base import fill_doc
from ..errors import NeuralignError
from ..realtime.source import SnapshotSource
from . import qt
from .window import MainWindow, SourceFactory


@fill_doc
def run_window(
    source: SnapshotSource | None,
    *,
    screenshot: str | Path | None = None,
    exit_after: float | None = None,
    title: str = "neuralign",
    source_factory: SourceFactory | None = None,
    settings_path: str | Path | None = None,
    manage_source: bool = True,
    size: tuple[int, int] = (1600, 1000),
    on_exit: Callable[[MainWindow], None] | None = None,
) -> int:
    """Open the window on ``source`` and run the Qt event loop until it closes.

    Parameters
    ----------
    %(snapshot_source)s
        ``None`` opens an empty window (connect to LSL from it with a factory).
    screenshot : path, optional
        Save the window as PNG just before exiting (renders offscreen unless
        ``QT_QPA_PLATFORM`` says otherwise). Without ``exit_after`` it exits after 5 s.
    exit_after : float, optional
        Seconds to run before closing the window and returning 0.
    title : str
        Window title.
    source_factory : callable | None
        Builds a live source for streams chosen in the window (see :class:`MainWindow`).
    settings_path : str | Path | None
        Where the window settings are kept.
    manage_source : bool
        Start the source before showing the window and stop it after (default True).
    size : (int, int)
        Initial window size in pixels (also the screenshot size).
    on_exit : callable, optional
        Called with the window just before it closes (e.g. to export results).

    Returns
    -------
    int
        0 on a normal exit.
    """
    if screenshot is not None and exit_after is None:
        exit_after = 5.0
    offscreen = screenshot is not None
    if not offscreen and exit_after is None and not qt.has_display() and (
        "QT_QPA_PLATFORM" not in os.environ
    ):
        raise NeuralignError(
            "no display to open the window on: run on a desktop (or --headless where offered), or make a "
            "screenshot with --screenshot FILE.png --exit-after SECONDS"
        )
    app = qt.ensure_app(offscreen=offscreen)
    win = MainWindow(source, source_factory=source_factory, settings_path=settings_path,
                     title=title)
    if screenshot is not None or not (win.settings.get("geometry")):
        win.resize(*size)
    if manage_source and source is not None:
        source.start()
    win.show()
    shot_error: list[str] = []
    exited: list[bool] = []

    def call_on_exit() -> None:
        if on_exit is not None and not exited:
            exited.append(True)
            on_exit(win)

    def finish() -> None:
        win.tick()
        app.processEvents()
        call_on_exit()
        if screenshot is not None:
            p = Path(screenshot)
            p.parent.mkdir(parents=True, exist_ok=True)
            if not win.grab().save(str(p)):
                shot_error.append(str(p))
        win.close()

    if exit_after is not None:
        QtCore.QTimer.singleShot(int(max(0.0, float(exit_after)) * 1000), finish)
    # Ctrl-C / SIGTERM / SIGHUP close the window like its close button; a pulse timer lets
    # Python run the signal handler while Qt's loop is waiting.
    in_main = threading.current_thread() is threading.main_thread()
    old = {}
    if in_main:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            old[sig] = signal.getsignal(sig)
            signal.signal(sig, lambda *_: QtCore.QTimer.singleShot(0, win.close))
    pulse = QtCore.QTimer()
    pulse.timeout.connect(qt.top_up)
    pulse.start(200)
    # A local event loop, not app.exec()/app.quit(): callers (tests, `session`) may run more
    # Qt code in the same QApplication afterwards.
    loop = QtCore.QEventLoop()
    win.closed.connect(loop.quit)
    try:
        loop.exec()
    finally:
        pulse.stop()
        for sig, handler in old.items():
            signal.signal(sig, handler)
        try:
            call_on_exit()
        finally:
            if manage_source and source is not None:
                source.stop()
            if win.source is not None and win.source is not source:
                win.source.stop()
            win.deleteLater()
    if shot_error:
        raise NeuralignError("could not write the screenshot", path=shot_error[0])
    return 0


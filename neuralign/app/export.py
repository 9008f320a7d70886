"""Saving what the window shows: plots as PNG, the latest maps as results and report.

:class:`Exporter` belongs to a :class:`~neuralign.app.window.MainWindow`. Writing the results
(``results.json``, ``maps.npz``, figures, ``report.html`` by
:func:`neuralign.report.write_outputs`) may run in a worker thread; its outcome comes back to
the GUI thread through a queued signal and is shown in the status bar.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from ..errors import NeuralignError
from ..report import write_outputs


class Exporter(QtCore.QObject):
    """Exports the plots and the latest maps of one window.

    Parameters
    ----------
    window : MainWindow
        The window (its ``plots``, ``settings``, ``current_result()`` and status bar).
    """

    done = QtCore.Signal(object)

    def __init__(self, window) -> None:
        super().__init__(window)
        self.window = window
        self.last: dict | None = None
        self._threads: list[threading.Thread] = []
        self.done.connect(self._finished)

    def _say(self, message: str) -> None:
        self.window.statusBar().showMessage(message)

    def png(self, name: str, path: str | Path) -> Path:
        """Save one plot as PNG.

        Parameters
        ----------
        name : str
            ``"window"`` or a key of the window's ``plots``.
        path : str | Path
            The PNG file.

        Returns
        -------
        Path
            ``path``.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        plots = self.window.plots
        widget = self.window if name == "window" else plots.get(name)
        if widget is None:
            raise NeuralignError(f"no plot {name!r}; choose from window, {', '.join(plots)}")
        if not widget.grab().save(str(path)):
            raise NeuralignError("could not write the PNG", path=path)
        return path

    def pngs(self, out_dir: str | Path) -> dict[str, Path]:
        """Save every plot and the whole window as PNGs.

        Parameters
        ----------
        out_dir : str | Path
            The folder.

        Returns
        -------
        dict of str to Path
            ``window`` and one entry per plot.
        """
        out = Path(out_dir)
        paths = {"window": self.png("window", out / "window.png")}
        for key in self.window.plots:
            paths[key] = self.png(key, out / f"{key}.png")
        return paths

    def results(self, out_dir: str | Path, *, background: bool = False) -> dict | None:
        """Write the latest maps (results.json, maps.npz, figures, report) into ``out_dir``.

        Parameters
        ----------
        out_dir : str | Path
            The folder.
        background : bool
            Write in a worker thread (report figures take a moment); the status bar says
            when it is done.

        Returns
        -------
        dict of str to Path | None
            The files written (``None`` in the background or when there is nothing yet).
        """
        result = self.window.current_result()
        if result is None:
            self._say("nothing to export yet: no refresh has finished")
            return None
        out = Path(out_dir)
        snap = self.window.latest_snapshot
        extra = {"exported_from": "neuralign gui"}
        if snap is not None:
            extra.update(session_time_s=snap.session_time, epochs_accepted=snap.epochs_accepted,
                         epochs_rejected=snap.epochs_rejected, eeg_stream=snap.health.eeg_name)
        title = self.window.windowTitle()

        def work() -> dict:
            return write_outputs(result, out, title=title, extra=extra)

        if not background:
            paths = work()
            self._finished(paths)
            return paths

        def run() -> None:
            try:
                self.done.emit(work())
            except Exception as e:  # noqa: BLE001 - reported in the status bar
                self.done.emit(e)

        t = threading.Thread(target=run, name="neuralign-export", daemon=True)
        self._threads.append(t)
        t.start()
        self._say(f"exporting to {out}…")
        return None

    @QtCore.Slot(object)
    def _finished(self, paths) -> None:
        if isinstance(paths, Exception):
            self._say(f"export failed: {paths}")
            return
        self.last = paths
        where = Path(next(iter(paths.values()))).parent if paths else ""
        self._say(f"exported {len(paths)} file(s) to {where}")

    def join(self, timeout: float) -> None:
        """Wait for background exports (each up to ``timeout`` seconds).

        Parameters
        ----------
        timeout : float
            Seconds per export.
        """
        for t in self._threads:
            t.join(timeout)

    # ------------------------------------------------------------------ dialogs
    def _pick_dir(self, caption: str) -> str:
        settings = self.window.settings
        start = settings.get("export_dir") or str(Path.cwd())
        d = QtWidgets.QFileDialog.getExistingDirectory(self.window, caption, start)
        if d:
            settings["export_dir"] = d
        return d

    def results_dialog(self) -> None:
        """Ask for a folder and export the results there in the background."""
        d = self._pick_dir("Export results to")
        if d:
            self.results(d, background=True)

    def png_dialog(self) -> None:
        """Ask for a file and save the plot chosen in the side panel."""
        key = self.window.controls.plot_choice.currentData()
        start = str(Path(self.window.settings.get("export_dir") or Path.cwd()) / f"{key}.png")
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self.window, "Save PNG", start,
                                                        "PNG (*.png)")
        if path:
            self._say(f"saved {self.png(key, path)}")

    def pngs_dialog(self) -> None:
        """Ask for a folder and save every plot there."""
        d = self._pick_dir("Save all plots to")
        if d:
            paths = self.pngs(d)
            self._say(f"saved {len(paths)} PNGs to {d}")

"""The main window: paints snapshots from a source on a QTimer, exports, keeps settings.

The window never computes maps. Every ``1 / gui_hz`` seconds a QTimer in the GUI thread asks the
source for its latest snapshot (a reference read, no lock, no wait) and repaints what changed.
Refreshes, acquisition and replay run in the source's own threads, so a slow refresh shows up as
an older "last refresh" time, never as a frozen window. The side panel is
:class:`~neuralign.app.controls.ControlPanel`; connecting to LSL goes through
:mod:`neuralign.app.connect`; :func:`neuralign.app.run.run_window` runs the event loop.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from ..base import fill_doc
from ..errors import NeuralignError
from ..lsl import visible_streams
from ..realtime.snapshot import Snapshot
from ..realtime.source import SnapshotSource
from . import qt
from .connect import ConnectDialog
from .controls import ControlPanel
from .export import Exporter
from .panels import CeilingPanel, MapPanel, PeakPanel, StreamPanel
from .settings import load_settings, save_settings
from .stats import StatisticsView, model_menu
from .traces import ErpPanel, ScopePanel

#: ``factory(settings) -> SnapshotSource``: builds a live source for the chosen streams.
SourceFactory = Callable[[dict], SnapshotSource]


@fill_doc
class MainWindow(QtWidgets.QMainWindow):
    """The live window.

    Parameters
    ----------
    %(snapshot_source)s
        ``None`` opens an empty window (connect to LSL from it with a factory).
    source_factory : callable | None
        ``factory(settings) -> source``: builds a live source when the user connects to LSL
        streams (settings hold the chosen streams, features, epoch window and filters).
    settings_path : str | Path | None
        Where settings are kept (default: :func:`neuralign.app.settings.settings_path`).
    title : str
        Window title.
    discover : callable
        Lists the visible LSL streams (for the Connect dialog).
    """

    closed = QtCore.Signal()

    def __init__(
        self,
        source: SnapshotSource | None = None,
        *,
        source_factory: SourceFactory | None = None,
        settings_path: str | Path | None = None,
        title: str = "neuralign",
        discover: Callable[[], list[dict]] = visible_streams,
    ) -> None:
        super().__init__()
        qt.pin_gc_to_gui_thread()  # Qt objects are freed in this (the GUI) thread only
        self.setWindowTitle(title)
        self.source = _checked(source)
        self.source_factory = source_factory
        self.settings_path = settings_path
        self.settings = load_settings(settings_path)
        self._discover = discover
        self.tick_count = 0
        self.paint_count = 0
        self._last_snap: Snapshot | None = None
        self._last_result = None
        self._last_paint_s = float("nan")

        self.stream_panel = StreamPanel()
        self.enc_map = MapPanel("Encoding r (layer x latency)", value_name="r")
        self.rsa_map = MapPanel("RSA rho (layer x latency)", value_name="rho")
        self.peak_panel = PeakPanel()
        self.ceiling_panel = CeilingPanel()
        self.scope_panel = ScopePanel()
        self.erp_panel = ErpPanel()
        self.stats_view = StatisticsView(self.enc_map, self.peak_panel)
        self.plots: dict[str, QtWidgets.QWidget] = {
            "encoding_map": self.enc_map,
            "rsa_map": self.rsa_map,
            "peak_latency": self.peak_panel,
            "noise_ceiling": self.ceiling_panel,
            "eeg_scope": self.scope_panel,
            "erp": self.erp_panel,
        }
        self.controls = ControlPanel(self.settings, list(self.plots))
        self.exporter = Exporter(self)
        self._layout()
        self._wire()
        geom = self.settings.get("geometry") or ""
        if geom:
            try:
                self.restoreGeometry(QtCore.QByteArray.fromHex(geom.encode()))
            except (ValueError, TypeError):
                pass
        self._guard = qt.guard_timer(self)  # PySide6 6.12.0 refcount bug (see qt.py)
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.tick)
        self.set_gui_hz(self.settings["gui_hz"])
        self.timer.start()
        self._show_source()

    def _layout(self) -> None:
        central = QtWidgets.QWidget()
        grid = QtWidgets.QGridLayout(central)
        grid.setContentsMargins(4, 4, 4, 4)
        for k, name in enumerate(self.plots):
            grid.addWidget(self.plots[name], k // 2, k % 2)
        for row, stretch in enumerate((5, 3, 3)):
            grid.setRowStretch(row, stretch)
        self.setCentralWidget(central)
        side = QtWidgets.QWidget()
        side_lay = QtWidgets.QVBoxLayout(side)
        side_lay.setContentsMargins(4, 4, 4, 4)
        side_lay.addWidget(self.stream_panel)
        side_lay.addWidget(self.stats_view.ranking)
        side_lay.addWidget(self.controls)
        side_lay.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        dock = QtWidgets.QDockWidget("Session", self)
        dock.setObjectName("session-dock")
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable)
        dock.setWidget(scroll)
        dock.setMinimumWidth(330)
        self.addDockWidget(QtCore.Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.statusBar().showMessage("ready")

    def _wire(self) -> None:
        c = self.controls
        c.connect_btn.clicked.connect(self.open_connect_dialog)
        c.start_btn.clicked.connect(self.start_source)
        c.stop_btn.clicked.connect(self.stop_source)
        c.pause_btn.toggled.connect(self.set_paused)
        c.speed.valueChanged.connect(self.set_speed)
        c.refresh_s.valueChanged.connect(self.set_refresh_interval)
        c.gui_hz.valueChanged.connect(self.set_gui_hz)
        for w in (c.features_edit, c.model_edit):
            w.editingFinished.connect(self._collect_settings)
        for w in (c.tmin, c.tmax, c.l_freq, c.h_freq):
            w.valueChanged.connect(self._collect_settings)
        c.normalized.toggled.connect(self._display_changed)
        c.rsa_kind.currentIndexChanged.connect(self._display_changed)
        self.stats_view.menu.currentIndexChanged.connect(self._model_changed)
        c.export_btn.clicked.connect(self.exporter.results_dialog)
        c.png_btn.clicked.connect(self.exporter.png_dialog)
        c.pngs_btn.clicked.connect(self.exporter.pngs_dialog)

    # ------------------------------------------------------------------ settings
    def _collect_settings(self, *_) -> dict:
        return self.controls.collect(self.settings)

    def save_settings(self) -> Path:
        """Write the current settings (and window geometry) to the settings file.

        Returns
        -------
        Path
            The settings file.
        """
        s = self._collect_settings()
        s["geometry"] = bytes(self.saveGeometry().toHex()).decode()
        return save_settings(s, self.settings_path)

    def _show_source(self) -> None:
        self.controls.show_source(self.source, can_connect=self.source_factory is not None)

    # ------------------------------------------------------------------ source actions
    def set_source(self, source: SnapshotSource | None) -> None:
        """Paint ``source`` from now on (the old source is stopped)."""
        source = _checked(source)
        old = self.source
        if old is not None and old is not source:
            old.stop()
        self.source = source
        self._last_snap = None
        self._last_result = None
        self._show_source()

    def open_connect_dialog(self) -> bool:
        """Let the user pick streams, then connect to them.

        Returns
        -------
        bool
            True when a live source was built and started.
        """
        dlg = ConnectDialog(self, eeg=self.settings["eeg_stream"],
                            markers=self.settings["marker_stream"], discover=self._discover)
        if dlg.exec() != QtWidgets.QDialog.DialogCode.Accepted:
            return False
        eeg, markers = dlg.choice()
        return self.connect_streams(eeg, markers)

    def connect_streams(self, eeg: str, markers: str) -> bool:
        """Build a live source for these streams with the factory and start it.

        Parameters
        ----------
        eeg, markers : str
            LSL stream specs.

        Returns
        -------
        bool
            True when the source was built and started.
        """
        self.settings["eeg_stream"], self.settings["marker_stream"] = eeg, markers
        if self.source_factory is None:
            self.statusBar().showMessage("this window has no live source factory")
            return False
        try:
            source = self.source_factory(dict(self._collect_settings()))
        except NeuralignError as e:
            self.controls.source_msg.setText(str(e))
            return False
        self.set_source(source)
        self.start_source()
        self.statusBar().showMessage(f"connected to {eeg} + {markers}")
        return True

    def start_source(self) -> None:
        """Start the source (or connect to the last streams when there is none)."""
        if self.source is None:
            if self.source_factory is not None:
                self.connect_streams(self.settings["eeg_stream"], self.settings["marker_stream"])
            return
        self.source.start()
        if self.controls.pause_btn.isChecked():
            self.controls.pause_btn.setChecked(False)
        self.statusBar().showMessage("running")

    def stop_source(self) -> None:
        """Stop the source."""
        if self.source is not None:
            self.source.stop()
            self.statusBar().showMessage("stopped")

    def set_paused(self, paused: bool) -> None:
        """Pause (``paused=True``) or resume a source that can pause."""
        if self.source is not None and "pause" in self.source.controls:
            self.source.set_paused(bool(paused))
        self.controls.pause_btn.setText("Resume" if paused else "Pause")
        self.statusBar().showMessage("paused" if paused else "running")

    def set_speed(self, speed: float) -> None:
        """Set a replay's ``speed`` (x real time; 0 = as fast as possible)."""
        self.settings["speed"] = float(speed)
        if self.source is not None and "speed" in self.source.controls:
            self.source.set_speed(float(speed) if speed > 0 else math.inf)

    def set_refresh_interval(self, seconds: float) -> None:
        """Set the ``seconds`` between map refreshes of a source that allows it."""
        self.settings["refresh_s"] = float(seconds)
        if self.source is not None and "refresh_interval" in self.source.controls:
            self.source.set_refresh_interval(float(seconds))

    def set_gui_hz(self, hz: float) -> None:
        """Set the repaint rate to ``hz`` per second (clipped to 0.5-60)."""
        hz = min(max(float(hz), 0.5), 60.0)
        self.settings["gui_hz"] = hz
        self.timer.setInterval(int(round(1000.0 / hz)))

    # ------------------------------------------------------------------ painting
    @QtCore.Slot()
    def tick(self) -> None:
        """QTimer slot: read the latest snapshot (never waits) and repaint what changed."""
        self.tick_count += 1
        qt.top_up()
        src = self.source
        snap = src.latest() if src is not None else None
        self.stream_panel.update_from(snap)
        if src is not None and src.progress is not None:
            self.controls.progress.setValue(int(1000 * float(src.progress)))
        err = src.error if src is not None else None
        self.controls.source_msg.setText(str(err) if err else "")
        if src is not None and src.refreshing:
            lab = self.stream_panel.labels["refresh"]
            lab.setText(lab.text() + "; refreshing…")
        if snap is not None and snap is not self._last_snap:
            self.apply_snapshot(snap)

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Repaint the scope, the ERP and (when they changed) the maps from ``snap``."""
        t0 = time.perf_counter()
        self._last_snap = snap
        h = snap.health
        names = h.ch_names or (tuple(snap.result.ch_names) if snap.result is not None else ())
        if names:
            self.scope_panel.set_channels(names)
            self.erp_panel.set_channels(names)
        self.scope_panel.set_scope(snap.scope, snap.scope_times, snap.marker_times)
        self.erp_panel.set_erp(snap.erp, snap.times, snap.epochs_accepted)
        models = snap.models
        model_menu(self.stats_view.menu, list(models))
        result = models.get(self.stats_view.selected, snap.result)
        if result is not None and result is not self._last_result:
            self.paint_result(result)
        if snap.stats is not self.stats_view.last:
            self.paint_statistics(snap.stats)
        self.paint_count += 1
        self._last_paint_s = time.perf_counter() - t0

    def _model_changed(self, *_) -> None:
        snap = self._last_snap
        if snap is not None:
            result = snap.models.get(self.stats_view.selected, snap.result)
            if result is not None:
                self.paint_result(result)
            self.paint_statistics(snap.stats)

    def paint_statistics(self, stats) -> None:
        """Paint intervals (peak plot), the mask (encoding map), ranking and stop rule.

        Parameters
        ----------
        stats : Statistics | None
            The snapshot's statistics (:class:`~neuralign.align.monitor.Statistics`).
        """
        self.stats_view.paint(stats)
        if stats is not None:
            self.statusBar().showMessage(stats.status_fragment())

    def _display_changed(self, *_) -> None:
        self._collect_settings()
        if self._last_result is not None:
            self.paint_result(self._last_result)

    def paint_result(self, result) -> None:
        """Paint the maps, peaks and ceilings of one ``result`` (an AlignmentResult)."""
        with warnings.catch_warnings():  # all-NaN layers (no score yet) are painted blank
            warnings.simplefilter("ignore", RuntimeWarning)
            self._paint_result(result)

    def _paint_result(self, result) -> None:
        self._last_result = result
        norm = self.controls.normalized.isChecked()
        enc = result.encoding_map(normalized=norm)
        lat, _ = result.peaks("encoding", normalized=norm)
        n_ep = result.counts.get("n_epochs", "?") if isinstance(result.counts, dict) else "?"
        self.enc_map.value_name = "r / ceiling" if norm else "r"
        self.enc_map.set_map(enc, layers=list(result.layers), times=result.times, peak_lat=lat,
                             note=f"({n_ep} epochs)")
        kind = self.controls.rsa_kind.currentData() or "rsa"
        rsa_norm = norm and kind == "rsa"  # the ceiling is that of the correlation RDM
        rsa = result.rsa_map(kind, normalized=rsa_norm)
        rlat, _ = result.peaks(kind, normalized=rsa_norm)
        self.rsa_map.value_name = "rho / ceiling" if rsa_norm else "rho"
        self.rsa_map.set_map(rsa, layers=list(result.layers), times=result.times, peak_lat=rlat,
                             note=f"({len(result.rsa_stimulus_ids)} stimuli)")
        self.peak_panel.set_peaks(list(result.layers), encoding=lat, rsa=rlat)
        self.ceiling_panel.set_ceiling(result)

    # ------------------------------------------------------------------ export
    @property
    def latest_snapshot(self) -> Snapshot | None:
        """The snapshot painted last."""
        return self._last_snap

    def current_result(self):
        """The newest maps: the source's latest result, else the last one painted."""
        snap = self.source.latest() if self.source is not None else None
        if snap is not None and snap.result is not None:
            return snap.result
        return self._last_result

    @property
    def last_export(self) -> dict | None:
        """The files of the last finished results export."""
        return self.exporter.last

    def export_png(self, name: str, path: str | Path) -> Path:
        """Save one plot as PNG (see :meth:`neuralign.app.export.Exporter.png`)."""
        return self.exporter.png(name, path)

    def export_pngs(self, out_dir: str | Path) -> dict[str, Path]:
        """Save every plot and the window as PNGs (:meth:`~.export.Exporter.pngs`)."""
        return self.exporter.pngs(out_dir)

    def export_results(self, out_dir: str | Path, *, background: bool = False):
        """Write the latest maps and report (:meth:`~.export.Exporter.results`)."""
        return self.exporter.results(out_dir, background=background)

    # ------------------------------------------------------------------ lifecycle
    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt name)
        """Stop repainting, save the settings, wait for exports, then close (Qt handler)."""
        self.timer.stop()
        try:
            self.save_settings()
        except OSError as e:
            self.statusBar().showMessage(f"could not save settings: {e}")
        self.exporter.join(30)
        super().closeEvent(event)
        self.closed.emit()


def _checked(source: SnapshotSource | None) -> SnapshotSource | None:
    if source is not None and not isinstance(source, SnapshotSource):
        raise TypeError(f"the window paints a SnapshotSource, not {type(source).__name__}")
    return source

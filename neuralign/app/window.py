"""The main window: paints snapshots from a source on a QTimer; controls; export; run_window.

The window never computes maps. Every ``1 / gui_hz`` seconds a QTimer in the GUI thread asks the
source for its latest snapshot (a reference read, no lock, no wait) and repaints what changed.
Refreshes, acquisition and replay run in the source's own threads, so a slow refresh shows up as
an older "last refresh" time, never as a frozen window.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402  (after the binding choice)

from ..errors import NeuralignError  # noqa: E402
from ..realtime.snapshot import Snapshot  # noqa: E402
from . import qt as _qt
from .export import write_results
from .panels import CeilingPanel, ErpPanel, MapPanel, PeakPanel, ScopePanel, StreamPanel
from .settings import load_settings, save_settings
from .source import as_source

SourceFactory = Callable[[dict], object]


# ---------------------------------------------------------------------------- LSL discovery
def discover_streams(wait_time: float = 1.0) -> list[dict]:
    """LSL streams visible on this machine (machine-scope config), as plain dicts."""
    from ..lsl import configure_lsl

    configure_lsl()
    import pylsl

    out = []
    for info in pylsl.resolve_streams(wait_time=wait_time):
        out.append(
            {
                "name": info.name(),
                "type": info.type(),
                "channels": info.channel_count(),
                "rate": info.nominal_srate(),
                "source_id": info.source_id(),
                "hostname": info.hostname(),
            }
        )
    return out


class _Bridge(QtCore.QObject):
    """Carries results from worker threads into the GUI thread (queued signals)."""

    streams_found = QtCore.Signal(list)
    export_done = QtCore.Signal(object)


class ConnectDialog(QtWidgets.QDialog):
    """Pick an EEG stream and a marker stream among those found on this machine."""

    def __init__(self, parent=None, *, eeg: str = "", markers: str = "",
                 discover: Callable[[], list[dict]] = discover_streams) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect to LSL streams")
        self._discover = discover
        self._bridge = _Bridge()
        self._bridge.streams_found.connect(self.set_streams)
        self.eeg = QtWidgets.QComboBox()
        self.markers = QtWidgets.QComboBox()
        self.eeg.setEditable(True)
        self.markers.setEditable(True)
        self.eeg.setEditText(eeg)
        self.markers.setEditText(markers)
        self.info = QtWidgets.QLabel("searching…")
        self.search = QtWidgets.QPushButton("Search again")
        self.search.clicked.connect(self.refresh)
        form = QtWidgets.QFormLayout()
        form.addRow("EEG stream:", self.eeg)
        form.addRow("Marker stream:", self.markers)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(form)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.info, 1)
        row.addWidget(self.search)
        lay.addLayout(row)
        lay.addWidget(buttons)
        self.streams: list[dict] = []
        self.refresh()

    def refresh(self) -> None:
        """Resolve streams in a worker thread (LSL resolve takes ~0.5-1 s)."""
        self.info.setText("searching…")
        self.search.setEnabled(False)

        def work() -> None:
            try:
                found = self._discover()
            except Exception as e:  # noqa: BLE001 - shown to the user, never fatal
                found = [{"error": str(e)}]
            self._bridge.streams_found.emit(found)

        threading.Thread(target=work, name="neuralign-resolve", daemon=True).start()

    @QtCore.Slot(list)
    def set_streams(self, streams: list[dict]) -> None:
        self.search.setEnabled(True)
        if streams and "error" in streams[0]:
            self.info.setText(f"search failed: {streams[0]['error']}")
            return
        self.streams = streams
        keep_eeg, keep_mk = self.eeg.currentText(), self.markers.currentText()
        self.eeg.clear()
        self.markers.clear()
        for s in streams:
            label = s["name"]
            if s.get("type", "").lower() == "markers" or s.get("rate", 1) == 0:
                self.markers.addItem(label, s)
            else:
                self.eeg.addItem(label, s)
        self.eeg.setEditText(keep_eeg or self.eeg.itemText(0))
        self.markers.setEditText(keep_mk or self.markers.itemText(0))
        self.info.setText(
            f"{len(streams)} stream(s) found: "
            + ", ".join(f"{s['name']} ({s['type']}, {s['channels']} ch)" for s in streams[:4])
            if streams else "no LSL streams found on this machine"
        )

    def choice(self) -> tuple[str, str]:
        return self.eeg.currentText().strip(), self.markers.currentText().strip()


# ---------------------------------------------------------------------------- main window
class MainWindow(QtWidgets.QMainWindow):
    """The live window.

    Parameters
    ----------
    source : SnapshotSource, optional
        Anything with ``latest() -> Snapshot | None``; optional ``start``, ``stop``,
        ``set_paused``, ``set_speed``, ``set_refresh_interval``, ``progress``, ``error``.
    source_factory : callable, optional
        ``factory(settings) -> source``: builds a live source when the user connects to LSL
        streams (settings hold the chosen streams, features, epoch window and filters).
    settings_path : path, optional
        Where settings are kept (default: :func:`neuralign.app.settings.settings_path`).
    title : str
        Window title.
    """

    closed = QtCore.Signal()

    def __init__(
        self,
        source=None,
        *,
        source_factory: SourceFactory | None = None,
        settings_path: str | Path | None = None,
        title: str = "neuralign",
        discover: Callable[[], list[dict]] = discover_streams,
    ) -> None:
        super().__init__()
        self.setWindowTitle(title)
        self.source = as_source(source)
        self.source_factory = source_factory
        self.settings_path = settings_path
        self.settings = load_settings(settings_path)
        self._discover = discover
        self._bridge = _Bridge()
        self._bridge.export_done.connect(self._export_finished)
        self.tick_count = 0
        self.paint_count = 0
        self._last_snap: Snapshot | None = None
        self._last_result = None
        self._last_paint_s = float("nan")
        self.last_export: dict | None = None
        self._exports: list[threading.Thread] = []

        self.stream_panel = StreamPanel()
        self.enc_map = MapPanel("Encoding r (layer x latency)", value_name="r")
        self.rsa_map = MapPanel("RSA rho (layer x latency)", value_name="rho")
        self.peak_panel = PeakPanel()
        self.ceiling_panel = CeilingPanel()
        self.scope_panel = ScopePanel()
        self.erp_panel = ErpPanel()
        self.plots: dict[str, QtWidgets.QWidget] = {
            "encoding_map": self.enc_map,
            "rsa_map": self.rsa_map,
            "peak_latency": self.peak_panel,
            "noise_ceiling": self.ceiling_panel,
            "eeg_scope": self.scope_panel,
            "erp": self.erp_panel,
        }

        central = QtWidgets.QWidget()
        grid = QtWidgets.QGridLayout(central)
        grid.setContentsMargins(4, 4, 4, 4)
        grid.addWidget(self.enc_map, 0, 0)
        grid.addWidget(self.rsa_map, 0, 1)
        grid.addWidget(self.peak_panel, 1, 0)
        grid.addWidget(self.ceiling_panel, 1, 1)
        grid.addWidget(self.scope_panel, 2, 0)
        grid.addWidget(self.erp_panel, 2, 1)
        grid.setRowStretch(0, 5)
        grid.setRowStretch(1, 3)
        grid.setRowStretch(2, 3)
        self.setCentralWidget(central)

        side = QtWidgets.QWidget()
        side_lay = QtWidgets.QVBoxLayout(side)
        side_lay.setContentsMargins(4, 4, 4, 4)
        side_lay.addWidget(self.stream_panel)
        side_lay.addWidget(self._build_source_controls())
        side_lay.addWidget(self._build_analysis_controls())
        side_lay.addWidget(self._build_export_controls())
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

        geom = self.settings.get("geometry") or ""
        if geom:
            try:
                self.restoreGeometry(QtCore.QByteArray.fromHex(geom.encode()))
            except (ValueError, TypeError):
                pass
        self._guard = _qt.guard_timer(self)  # PySide6 6.12.0 refcount bug (see qt.py)
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.tick)
        self.set_gui_hz(self.settings["gui_hz"])
        self.timer.start()
        self._sync_from_source()
        self._update_control_state()

    # ------------------------------------------------------------------ controls
    def _spin(self, lo, hi, value, step, *, decimals=2, suffix="", special=None):
        w = QtWidgets.QDoubleSpinBox()
        w.setRange(lo, hi)
        w.setDecimals(decimals)
        w.setSingleStep(step)
        w.setValue(value)
        if suffix:
            w.setSuffix(suffix)
        if special:
            w.setSpecialValueText(special)
        w.setKeyboardTracking(False)
        return w

    def _build_source_controls(self) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Source")
        lay = QtWidgets.QGridLayout(box)
        self.connect_btn = QtWidgets.QPushButton("Connect…")
        self.connect_btn.setToolTip("pick an EEG and a marker stream among the LSL streams found")
        self.connect_btn.clicked.connect(self.open_connect_dialog)
        self.start_btn = QtWidgets.QPushButton("Start")
        self.stop_btn = QtWidgets.QPushButton("Stop")
        self.pause_btn = QtWidgets.QPushButton("Pause")
        self.pause_btn.setCheckable(True)
        self.start_btn.clicked.connect(self.start_source)
        self.stop_btn.clicked.connect(self.stop_source)
        self.pause_btn.toggled.connect(self.set_paused)
        self.speed = self._spin(0.0, 1000.0, self.settings["speed"], 1.0, decimals=1,
                                suffix=" x", special="max")
        self.speed.setToolTip("replay speed (x real time); 'max' = as fast as possible")
        self.speed.valueChanged.connect(self.set_speed)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("%p% played")
        self.source_msg = QtWidgets.QLabel("")
        self.source_msg.setWordWrap(True)
        self.source_msg.setStyleSheet("color: #a33;")
        lay.addWidget(self.connect_btn, 0, 0, 1, 3)
        lay.addWidget(self.start_btn, 1, 0)
        lay.addWidget(self.pause_btn, 1, 1)
        lay.addWidget(self.stop_btn, 1, 2)
        lay.addWidget(QtWidgets.QLabel("Speed:"), 2, 0)
        lay.addWidget(self.speed, 2, 1, 1, 2)
        lay.addWidget(self.progress, 3, 0, 1, 3)
        lay.addWidget(self.source_msg, 4, 0, 1, 3)
        return box

    def _build_analysis_controls(self) -> QtWidgets.QGroupBox:
        s = self.settings
        box = QtWidgets.QGroupBox("Analysis")
        form = QtWidgets.QFormLayout(box)
        form.setVerticalSpacing(3)
        self.features_edit = QtWidgets.QLineEdit(s["features"])
        self.features_edit.setPlaceholderText("features.npz or feature cache")
        browse = QtWidgets.QToolButton()
        browse.setText("…")
        browse.clicked.connect(self._browse_features)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.features_edit, 1)
        row.addWidget(browse)
        form.addRow("Features:", row)
        self.model_edit = QtWidgets.QLineEdit(s["model"])
        self.model_edit.setPlaceholderText("model name (recorded)")
        form.addRow("Model:", self.model_edit)
        self.gui_hz = self._spin(1.0, 60.0, s["gui_hz"], 1.0, decimals=0, suffix=" Hz")
        self.gui_hz.setToolTip("how often the window repaints")
        self.gui_hz.valueChanged.connect(self.set_gui_hz)
        form.addRow("Repaint rate:", self.gui_hz)
        self.refresh_s = self._spin(0.2, 120.0, s["refresh_s"], 0.5, decimals=1, suffix=" s")
        self.refresh_s.setToolTip("seconds between engine refreshes (re-solves)")
        self.refresh_s.valueChanged.connect(self.set_refresh_interval)
        form.addRow("Refresh every:", self.refresh_s)
        self.tmin = self._spin(-2.0, 0.0, s["tmin"], 0.05, suffix=" s")
        self.tmax = self._spin(0.05, 5.0, s["tmax"], 0.05, suffix=" s")
        win = QtWidgets.QHBoxLayout()
        win.addWidget(self.tmin)
        win.addWidget(QtWidgets.QLabel("to"))
        win.addWidget(self.tmax)
        form.addRow("Epoch window:", win)
        self.l_freq = self._spin(0.0, 100.0, s["l_freq"], 0.1, suffix=" Hz", special="off")
        self.h_freq = self._spin(0.0, 1000.0, s["h_freq"], 1.0, decimals=1, suffix=" Hz",
                                 special="off")
        band = QtWidgets.QHBoxLayout()
        band.addWidget(self.l_freq)
        band.addWidget(QtWidgets.QLabel("to"))
        band.addWidget(self.h_freq)
        form.addRow("Band-pass:", band)
        for w in (self.features_edit, self.model_edit):
            w.editingFinished.connect(self._collect_settings)
        for w in (self.tmin, self.tmax, self.l_freq, self.h_freq):
            w.valueChanged.connect(self._collect_settings)
        note = QtWidgets.QLabel("features, window, filters: on next Connect")
        note.setWordWrap(True)
        note.setStyleSheet("color: #666; font-size: 9pt;")
        form.addRow(note)
        self.normalized = QtWidgets.QCheckBox("noise-ceiling normalised maps (r, RSA rho)")
        self.normalized.setChecked(bool(s["normalized"]))
        self.normalized.toggled.connect(self._display_changed)
        form.addRow(self.normalized)
        self.rsa_kind = QtWidgets.QComboBox()
        self.rsa_kind.addItem("Spearman, correlation RDM", "rsa")
        self.rsa_kind.addItem("Spearman, cross-validated RDM", "rsa_cv")
        self.rsa_kind.setCurrentIndex(max(0, self.rsa_kind.findData(s["rsa_kind"])))
        self.rsa_kind.currentIndexChanged.connect(self._display_changed)
        form.addRow("RSA:", self.rsa_kind)
        return box

    def _build_export_controls(self) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Export")
        lay = QtWidgets.QGridLayout(box)
        self.export_btn = QtWidgets.QPushButton("Export results…")
        self.export_btn.setToolTip("results.json, maps.npz, figures and report of the latest maps")
        self.export_btn.clicked.connect(self._export_results_dialog)
        self.plot_choice = QtWidgets.QComboBox()
        self.plot_choice.addItem("window", "window")
        for key in self.plots:
            self.plot_choice.addItem(key.replace("_", " "), key)
        self.png_btn = QtWidgets.QPushButton("Save PNG…")
        self.png_btn.clicked.connect(self._export_png_dialog)
        self.pngs_btn = QtWidgets.QPushButton("Save all PNGs…")
        self.pngs_btn.clicked.connect(self._export_pngs_dialog)
        lay.addWidget(self.export_btn, 0, 0, 1, 2)
        lay.addWidget(self.plot_choice, 1, 0)
        lay.addWidget(self.png_btn, 1, 1)
        lay.addWidget(self.pngs_btn, 2, 0, 1, 2)
        return box

    def _browse_features(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Features", self.features_edit.text(), "Features (*.npz);;All files (*)"
        )
        if path:
            self.features_edit.setText(path)
            self._collect_settings()

    def _collect_settings(self, *_) -> dict:
        s = self.settings
        s["features"] = self.features_edit.text().strip()
        s["model"] = self.model_edit.text().strip()
        s["gui_hz"] = float(self.gui_hz.value())
        s["refresh_s"] = float(self.refresh_s.value())
        s["tmin"], s["tmax"] = float(self.tmin.value()), float(self.tmax.value())
        s["l_freq"], s["h_freq"] = float(self.l_freq.value()), float(self.h_freq.value())
        s["speed"] = float(self.speed.value())
        s["normalized"] = bool(self.normalized.isChecked())
        s["rsa_kind"] = str(self.rsa_kind.currentData())
        return s

    def save_settings(self) -> Path:
        """Write the current settings (and window geometry) to the settings file."""
        s = self._collect_settings()
        s["geometry"] = bytes(self.saveGeometry().toHex()).decode()
        return save_settings(s, self.settings_path)

    def _sync_from_source(self) -> None:
        """Show the source's own speed / refresh interval in the controls (no feedback)."""
        src = self.source
        sp = getattr(src, "speed", None)
        if isinstance(sp, int | float):
            self.speed.blockSignals(True)
            self.speed.setValue(0.0 if not math.isfinite(sp) else float(sp))
            self.speed.blockSignals(False)
        ri = getattr(src, "refresh_interval", None)
        if isinstance(ri, int | float) and math.isfinite(ri):
            self.refresh_s.blockSignals(True)
            self.refresh_s.setValue(float(ri))
            self.refresh_s.blockSignals(False)

    def _has(self, name: str) -> bool:
        return self.source is not None and callable(getattr(self.source, name, None))

    def _update_control_state(self) -> None:
        self.start_btn.setEnabled(self._has("start") or self.source_factory is not None)
        self.stop_btn.setEnabled(self._has("stop"))
        self.pause_btn.setEnabled(self._has("set_paused"))
        self.speed.setEnabled(self._has("set_speed"))
        self.refresh_s.setEnabled(self._has("set_refresh_interval"))
        self.connect_btn.setEnabled(self.source_factory is not None)
        self.progress.setVisible(hasattr(self.source, "progress"))

    # ------------------------------------------------------------------ source actions
    def set_source(self, source) -> None:
        """Replace the source (the old one is stopped if it can be)."""
        source = as_source(source)
        old = self.source
        if old is not None and old is not source and callable(getattr(old, "stop", None)):
            old.stop()
        self.source = source
        self._last_snap = None
        self._last_result = None
        self._sync_from_source()
        self._update_control_state()

    def open_connect_dialog(self) -> bool:
        dlg = ConnectDialog(self, eeg=self.settings["eeg_stream"],
                            markers=self.settings["marker_stream"], discover=self._discover)
        if dlg.exec() != QtWidgets.QDialog.DialogCode.Accepted:
            return False
        eeg, markers = dlg.choice()
        return self.connect_streams(eeg, markers)

    def connect_streams(self, eeg: str, markers: str) -> bool:
        """Build a live source for these streams with the factory and start it."""
        self.settings["eeg_stream"], self.settings["marker_stream"] = eeg, markers
        if self.source_factory is None:
            self.statusBar().showMessage("this window has no live source factory")
            return False
        try:
            source = self.source_factory(dict(self._collect_settings()))
        except NeuralignError as e:
            self.source_msg.setText(str(e))
            return False
        self.set_source(source)
        self.start_source()
        self.statusBar().showMessage(f"connected to {eeg} + {markers}")
        return True

    def start_source(self) -> None:
        if self.source is None and self.source_factory is not None:
            self.connect_streams(self.settings["eeg_stream"], self.settings["marker_stream"])
            return
        if self._has("start"):
            self.source.start()
            if self.pause_btn.isChecked():
                self.pause_btn.setChecked(False)
            self.statusBar().showMessage("running")

    def stop_source(self) -> None:
        if self._has("stop"):
            self.source.stop()
            self.statusBar().showMessage("stopped")

    def set_paused(self, paused: bool) -> None:
        if self._has("set_paused"):
            self.source.set_paused(bool(paused))
        self.pause_btn.setText("Resume" if paused else "Pause")
        self.statusBar().showMessage("paused" if paused else "running")

    def set_speed(self, speed: float) -> None:
        self.settings["speed"] = float(speed)
        if self._has("set_speed"):
            self.source.set_speed(float(speed) if speed > 0 else math.inf)

    def set_refresh_interval(self, seconds: float) -> None:
        self.settings["refresh_s"] = float(seconds)
        if self._has("set_refresh_interval"):
            self.source.set_refresh_interval(float(seconds))

    def set_gui_hz(self, hz: float) -> None:
        hz = min(max(float(hz), 0.5), 60.0)
        self.settings["gui_hz"] = hz
        self.timer.setInterval(int(round(1000.0 / hz)))

    # ------------------------------------------------------------------ painting
    @QtCore.Slot()
    def tick(self) -> None:
        """QTimer slot: read the latest snapshot (never waits) and repaint what changed."""
        self.tick_count += 1
        _qt._top_up()
        src = self.source
        snap = src.latest() if src is not None else None
        self.stream_panel.update_from(snap)
        if src is not None and hasattr(src, "progress"):
            self.progress.setValue(int(1000 * float(src.progress)))
        err = getattr(src, "error", None)
        self.source_msg.setText(str(err) if err else "")
        if getattr(src, "refreshing", False):
            lab = self.stream_panel.labels["refresh"]
            lab.setText(lab.text() + "; refreshing…")
        if snap is not None and snap is not self._last_snap:
            self.apply_snapshot(snap)

    def apply_snapshot(self, snap: Snapshot) -> None:
        t0 = time.perf_counter()
        self._last_snap = snap
        h = snap.health
        names = h.ch_names or (tuple(snap.result.ch_names) if snap.result is not None else ())
        if names:
            self.scope_panel.set_channels(names)
            self.erp_panel.set_channels(names)
        self.scope_panel.set_scope(snap.scope, snap.scope_times, snap.marker_times)
        self.erp_panel.set_erp(snap.erp, snap.times, snap.epochs_accepted)
        if snap.result is not None and snap.result is not self._last_result:
            self.paint_result(snap.result)
        self.paint_count += 1
        self._last_paint_s = time.perf_counter() - t0

    def _display_changed(self, *_) -> None:
        self._collect_settings()
        if self._last_result is not None:
            self.paint_result(self._last_result)

    def paint_result(self, result) -> None:
        """Paint the maps, peaks and ceilings of one :class:`AlignmentResult`."""
        with warnings.catch_warnings():  # all-NaN layers (no score yet) are painted blank
            warnings.simplefilter("ignore", RuntimeWarning)
            self._paint_result(result)

    def _paint_result(self, result) -> None:
        self._last_result = result
        norm = self.normalized.isChecked()
        enc = result.encoding_map(normalized=norm)
        lat, _ = result.peaks("encoding", normalized=norm)
        n_ep = result.counts.get("n_epochs", "?") if isinstance(result.counts, dict) else "?"
        self.enc_map.value_name = "r / ceiling" if norm else "r"
        self.enc_map.set_map(enc, layers=list(result.layers), times=result.times, peak_lat=lat,
                             note=f"({n_ep} epochs)")
        kind = self.rsa_kind.currentData() or "rsa"
        rsa_norm = norm and kind == "rsa"  # the ceiling is that of the correlation RDM
        rsa = result.rsa_map(kind, normalized=rsa_norm)
        rlat, _ = result.peaks(kind, normalized=rsa_norm)
        self.rsa_map.value_name = "rho / ceiling" if rsa_norm else "rho"
        self.rsa_map.set_map(rsa, layers=list(result.layers), times=result.times, peak_lat=rlat,
                             note=f"({len(result.rsa_stimulus_ids)} stimuli)")
        self.peak_panel.set_peaks(list(result.layers), encoding=lat, rsa=rlat)
        self.ceiling_panel.set_ceiling(result)

    # ------------------------------------------------------------------ export
    def current_result(self):
        snap = self.source.latest() if self.source is not None else None
        if snap is not None and snap.result is not None:
            return snap.result
        return self._last_result

    def export_png(self, name: str, path: str | Path) -> Path:
        """Save one plot (``'window'`` or a key of :attr:`plots`) as PNG; return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        widget = self if name == "window" else self.plots.get(name)
        if widget is None:
            raise NeuralignError(f"no plot {name!r}; choose from window, {', '.join(self.plots)}")
        if not widget.grab().save(str(path)):
            raise NeuralignError("could not write the PNG", path=path)
        return path

    def export_pngs(self, out_dir: str | Path) -> dict[str, Path]:
        """Save every plot and the whole window as PNGs into ``out_dir``."""
        out = Path(out_dir)
        paths = {"window": self.export_png("window", out / "window.png")}
        for key in self.plots:
            paths[key] = self.export_png(key, out / f"{key}.png")
        return paths

    def export_results(self, out_dir: str | Path, *, background: bool = False):
        """Write the latest maps (results.json, maps.npz, figures, report) into ``out_dir``.

        With ``background=True`` the writing runs in a worker thread (report figures take a
        moment) and the status bar says when it is done; otherwise the paths are returned.
        """
        result = self.current_result()
        if result is None:
            self.statusBar().showMessage("nothing to export yet: no refresh has finished")
            return None
        out = Path(out_dir)
        snap = self._last_snap
        extra = {"exported_from": "neuralign gui"}
        if snap is not None:
            extra.update(
                session_time_s=snap.session_time,
                epochs_accepted=snap.epochs_accepted,
                epochs_rejected=snap.epochs_rejected,
                eeg_stream=snap.health.eeg_name,
            )

        def work():
            return write_results(result, out, title=self.windowTitle(), extra=extra)

        if not background:
            paths = work()
            self._export_finished(paths)
            return paths

        def run():
            try:
                self._bridge.export_done.emit(work())
            except Exception as e:  # noqa: BLE001 - reported in the status bar
                self._bridge.export_done.emit(e)

        t = threading.Thread(target=run, name="neuralign-export", daemon=True)
        self._exports.append(t)
        t.start()
        self.statusBar().showMessage(f"exporting to {out}…")
        return None

    @QtCore.Slot(object)
    def _export_finished(self, paths) -> None:
        if isinstance(paths, Exception):
            self.statusBar().showMessage(f"export failed: {paths}")
            return
        self.last_export = paths
        where = Path(next(iter(paths.values()))).parent if paths else ""
        self.statusBar().showMessage(f"exported {len(paths)} file(s) to {where}")

    def _pick_dir(self, caption: str) -> str:
        start = self.settings.get("export_dir") or str(Path.cwd())
        d = QtWidgets.QFileDialog.getExistingDirectory(self, caption, start)
        if d:
            self.settings["export_dir"] = d
        return d

    def _export_results_dialog(self) -> None:
        d = self._pick_dir("Export results to")
        if d:
            self.export_results(d, background=True)

    def _export_png_dialog(self) -> None:
        key = self.plot_choice.currentData()
        start = str(Path(self.settings.get("export_dir") or Path.cwd()) / f"{key}.png")
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save PNG", start, "PNG (*.png)")
        if path:
            p = self.export_png(key, path)
            self.statusBar().showMessage(f"saved {p}")

    def _export_pngs_dialog(self) -> None:
        d = self._pick_dir("Save all plots to")
        if d:
            paths = self.export_pngs(d)
            self.statusBar().showMessage(f"saved {len(paths)} PNGs to {d}")

    # ------------------------------------------------------------------ lifecycle
    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 (Qt name)
        self.timer.stop()
        try:
            self.save_settings()
        except OSError as e:
            self.statusBar().showMessage(f"could not save settings: {e}")
        for t in self._exports:
            t.join(30)
        super().closeEvent(event)
        self.closed.emit()


# ---------------------------------------------------------------------------- run_window
def run_window(
    source,
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
    source : SnapshotSource or None
        What to show. ``None`` opens an empty window (connect to LSL from it with a factory).
    screenshot : path, optional
        Save the window as PNG just before exiting (renders offscreen unless
        ``QT_QPA_PLATFORM`` says otherwise). Without ``exit_after`` it exits after 5 s.
    exit_after : float, optional
        Seconds to run before closing the window and returning 0.
    title, source_factory, settings_path
        See :class:`MainWindow`.
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
    if not offscreen and exit_after is None and not _qt.has_display() and (
        "QT_QPA_PLATFORM" not in os.environ
    ):
        raise NeuralignError(
            "no display to open the window on: run on a desktop (or --headless where offered), or make a "
            "screenshot with --screenshot FILE.png --exit-after SECONDS"
        )
    app = _qt.ensure_app(offscreen=offscreen)
    win = MainWindow(source, source_factory=source_factory, settings_path=settings_path,
                     title=title)
    if screenshot is not None or not (win.settings.get("geometry")):
        win.resize(*size)
    if manage_source and source is not None and callable(getattr(source, "start", None)):
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
    # Ctrl-C / SIGTERM close the window like its close button; a pulse timer lets Python
    # run the signal handler while Qt's loop is waiting.
    in_main = threading.current_thread() is threading.main_thread()
    old = {}
    if in_main:
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.getsignal(sig)
            signal.signal(sig, lambda *_: QtCore.QTimer.singleShot(0, win.close))
    pulse = QtCore.QTimer()
    pulse.timeout.connect(_qt._top_up)
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
            if manage_source and source is not None and callable(getattr(source, "stop", None)):
                source.stop()
            if win.source is not None and win.source is not source and callable(
                getattr(win.source, "stop", None)
            ):
                win.source.stop()
            win.deleteLater()
    if shot_error:
        raise NeuralignError("could not write the screenshot", path=shot_error[0])
    return 0


__all__ = ["ConnectDialog", "MainWindow", "discover_streams", "run_window", "write_results"]

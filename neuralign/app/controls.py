"""The window's side panel: source controls, analysis settings and export buttons.

:class:`ControlPanel` only builds the widgets and reads/writes their values; the main window
(:mod:`neuralign.app.window`) connects their signals to its actions. Which source controls are
enabled follows the source's declared :attr:`~neuralign.realtime.source.SnapshotSource.controls`.
"""

from __future__ import annotations

import math

from PySide6 import QtWidgets

from ..realtime.source import SnapshotSource


def spin_box(lo: float, hi: float, value: float, step: float, *, decimals: int = 2,
             suffix: str = "", special: str | None = None) -> QtWidgets.QDoubleSpinBox:
    """A double spin box that reports a value only when editing is finished.

    Parameters
    ----------
    lo, hi : float
        The range.
    value : float
        The initial value.
    step : float
        The single step.
    decimals : int
        Decimals shown.
    suffix : str
        Unit shown after the value.
    special : str | None
        Text shown at the minimum (e.g. ``"off"``).

    Returns
    -------
    QDoubleSpinBox
        The widget.
    """
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


class ControlPanel(QtWidgets.QWidget):
    """Source, analysis and export controls (widgets only; the window wires them).

    Parameters
    ----------
    settings : dict
        The window settings (:mod:`neuralign.app.settings`) the widgets start from.
    plot_keys : list of str
        The plots that can be saved as PNG.
    parent : QWidget | None
        The parent widget.
    """

    def __init__(self, settings: dict, plot_keys: list[str], parent=None) -> None:
        super().__init__(parent)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self._source_box(settings))
        lay.addWidget(self._analysis_box(settings))
        lay.addWidget(self._export_box(plot_keys))

    # ------------------------------------------------------------------ building
    def _source_box(self, s: dict) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Source")
        lay = QtWidgets.QGridLayout(box)
        self.connect_btn = QtWidgets.QPushButton("Connect…")
        self.connect_btn.setToolTip("pick an EEG and a marker stream among the LSL streams found")
        self.start_btn = QtWidgets.QPushButton("Start")
        self.stop_btn = QtWidgets.QPushButton("Stop")
        self.pause_btn = QtWidgets.QPushButton("Pause")
        self.pause_btn.setCheckable(True)
        self.speed = spin_box(0.0, 1000.0, s["speed"], 1.0, decimals=1, suffix=" x",
                              special="max")
        self.speed.setToolTip("replay speed (x real time); 'max' = as fast as possible")
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

    @staticmethod
    def _pair(a: QtWidgets.QWidget, b: QtWidgets.QWidget) -> QtWidgets.QHBoxLayout:
        row = QtWidgets.QHBoxLayout()
        row.addWidget(a)
        row.addWidget(QtWidgets.QLabel("to"))
        row.addWidget(b)
        return row

    def _analysis_box(self, s: dict) -> QtWidgets.QGroupBox:
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
        self.gui_hz = spin_box(1.0, 60.0, s["gui_hz"], 1.0, decimals=0, suffix=" Hz")
        self.gui_hz.setToolTip("how often the window repaints")
        form.addRow("Repaint rate:", self.gui_hz)
        self.refresh_s = spin_box(0.2, 120.0, s["refresh_s"], 0.5, decimals=1, suffix=" s")
        self.refresh_s.setToolTip("seconds between engine refreshes (re-solves)")
        form.addRow("Refresh every:", self.refresh_s)
        self.tmin = spin_box(-2.0, 0.0, s["tmin"], 0.05, suffix=" s")
        self.tmax = spin_box(0.05, 5.0, s["tmax"], 0.05, suffix=" s")
        form.addRow("Epoch window:", self._pair(self.tmin, self.tmax))
        self.l_freq = spin_box(0.0, 100.0, s["l_freq"], 0.1, suffix=" Hz", special="off")
        self.h_freq = spin_box(0.0, 1000.0, s["h_freq"], 1.0, decimals=1, suffix=" Hz",
                               special="off")
        form.addRow("Band-pass:", self._pair(self.l_freq, self.h_freq))
        note = QtWidgets.QLabel("features, window, filters: on next Connect")
        note.setWordWrap(True)
        note.setStyleSheet("color: #666; font-size: 9pt;")
        form.addRow(note)
        self.normalized = QtWidgets.QCheckBox("noise-ceiling normalised maps (r, RSA rho)")
        self.normalized.setChecked(bool(s["normalized"]))
        form.addRow(self.normalized)
        self.rsa_kind = QtWidgets.QComboBox()
        self.rsa_kind.addItem("Spearman, correlation RDM", "rsa")
        self.rsa_kind.addItem("Spearman, cross-validated RDM", "rsa_cv")
        self.rsa_kind.setCurrentIndex(max(0, self.rsa_kind.findData(s["rsa_kind"])))
        form.addRow("RSA:", self.rsa_kind)
        return box

    def _export_box(self, plot_keys: list[str]) -> QtWidgets.QGroupBox:
        box = QtWidgets.QGroupBox("Export")
        lay = QtWidgets.QGridLayout(box)
        self.export_btn = QtWidgets.QPushButton("Export results…")
        self.export_btn.setToolTip("results.json, maps.npz, figures and report of the latest maps")
        self.plot_choice = QtWidgets.QComboBox()
        self.plot_choice.addItem("window", "window")
        for key in plot_keys:
            self.plot_choice.addItem(key.replace("_", " "), key)
        self.png_btn = QtWidgets.QPushButton("Save PNG…")
        self.pngs_btn = QtWidgets.QPushButton("Save all PNGs…")
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
            self.features_edit.editingFinished.emit()

    # ------------------------------------------------------------------ values
    def collect(self, settings: dict) -> dict:
        """Write the widgets' values into ``settings``.

        Parameters
        ----------
        settings : dict
            The window settings (updated in place).

        Returns
        -------
        dict
            ``settings``.
        """
        s = settings
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

    def show_source(self, source: SnapshotSource | None, *, can_connect: bool) -> None:
        """Enable the controls ``source`` honours and show its speed and refresh interval.

        Parameters
        ----------
        source : SnapshotSource | None
            The window's source.
        can_connect : bool
            The window can build a live source (Connect… and Start are then enabled).
        """
        controls = source.controls if source is not None else frozenset()
        for widget, value in ((self.speed, None if source is None else source.speed),
                              (self.refresh_s, None if source is None else source.refresh_interval)):
            if isinstance(value, int | float):
                widget.blockSignals(True)  # showing the source's value is not a user change
                widget.setValue(0.0 if not math.isfinite(value) else float(value))
                widget.blockSignals(False)
        self.start_btn.setEnabled(source is not None or can_connect)
        self.stop_btn.setEnabled(source is not None)
        self.pause_btn.setEnabled("pause" in controls)
        self.speed.setEnabled("speed" in controls)
        self.refresh_s.setEnabled("refresh_interval" in controls)
        self.connect_btn.setEnabled(can_connect)
        self.progress.setVisible(source is not None and source.progress is not None)

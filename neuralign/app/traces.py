"""The window's EEG panels: the scrolling scope and the running ERP.

Both paint what a snapshot carries (raw EEG of the last seconds with the stimulus onsets, the
average epoch so far) for a selection of channels (all, one region, or a list).
"""

from __future__ import annotations

import warnings

import numpy as np

from PySide6 import QtCore, QtWidgets  # isort: skip  (before pyqtgraph: it picks PySide6)
import pyqtgraph as pg  # isort: skip

from .panels import PALETTE, PlotPanel, f32, region_of


def fill_channel_menu(menu: QtWidgets.QComboBox, ch_names: tuple[str, ...], first: list[str],
                      *, select: str = "") -> None:
    """Offer ``first`` entries, then ``region: ...`` entries, then every channel.

    Parameters
    ----------
    menu : QComboBox
        The selector (its signals are blocked while it is filled).
    ch_names : tuple of str
        The channels.
    first : list of str
        Entries before the regions (``"all"``...).
    select : str
        Entry to select when present (default: the first).
    """
    menu.blockSignals(True)
    menu.clear()
    regions = sorted({r for c in ch_names if (r := region_of(c))})
    for item in [*first, *(f"region: {r}" for r in regions), *ch_names]:
        menu.addItem(item)
    menu.setCurrentIndex(max(menu.findText(select), 0) if select else 0)
    menu.blockSignals(False)


def selected_rows(text: str, ch_names: tuple[str, ...]) -> list[int] | None:
    """The channel rows a menu entry stands for (``None`` for the menu's own entries).

    Parameters
    ----------
    text : str
        A ``region: ...`` entry or a channel name.
    ch_names : tuple of str
        The channels.

    Returns
    -------
    list of int | None
        Rows of the region's channels, or of the one channel.
    """
    if text.startswith("region: "):
        r = text.split(": ", 1)[1]
        return [i for i, c in enumerate(ch_names) if region_of(c) == r]
    if text in ch_names:
        return [ch_names.index(text)]
    return None


class ScopePanel(PlotPanel):
    """Scrolling raw EEG with channel selection, gain and marker ticks."""

    MAX_MARKERS = 200

    def __init__(self, parent=None) -> None:
        super().__init__("EEG scope", parent)
        self.channels = QtWidgets.QComboBox()
        self.channels.setToolTip("channels shown")
        self.channels.setMinimumContentsLength(12)
        self.gain = QtWidgets.QDoubleSpinBox()
        self.gain.setRange(0.05, 100.0)
        self.gain.setValue(1.0)
        self.gain.setSingleStep(0.25)
        self.gain.setPrefix("gain x")
        self.gain.setToolTip("vertical scaling (1 = 3 robust SDs per channel spacing)")
        self.controls.addWidget(QtWidgets.QLabel("show"))
        self.controls.addWidget(self.channels)
        self.controls.addWidget(self.gain)
        pi = self.plot.getPlotItem()
        pi.setLabel("bottom", "session time (s)")
        pi.getAxis("bottom").enableAutoSIPrefix(False)  # LSL clocks are large: no "ks"
        pi.setClipToView(True)
        pi.setDownsampling(auto=True, mode="peak")
        self.curves: list = []
        self.marker_lines: list = []
        self.ch_names: tuple[str, ...] = ()
        self.selected: list[int] = []
        self._spacing: float | None = None
        self.channels.currentIndexChanged.connect(self._selection_changed)

    def set_channels(self, ch_names) -> None:
        """Offer ``ch_names`` (sequence of str) in the channel selector (kept when unchanged)."""
        ch_names = tuple(ch_names)
        if ch_names == self.ch_names:
            return
        self.ch_names = ch_names
        fill_channel_menu(self.channels, ch_names, ["first 16", "all"])
        self._selection_changed()

    def select(self, text: str) -> None:
        """Select an entry of the channel menu by its text (``'all'``, ``'region: occipital'``, a channel)."""
        i = self.channels.findText(text)
        if i < 0:
            raise ValueError(f"no scope selection {text!r}")
        self.channels.setCurrentIndex(i)

    def _selection_changed(self, *_) -> None:
        text = self.channels.currentText()
        n = len(self.ch_names)
        sel = selected_rows(text, self.ch_names)
        if sel is None:
            sel = list(range(n if text == "all" else min(16, n)))
        self.selected = sel
        self._spacing = None
        pi = self.plot.getPlotItem()
        for c in self.curves:
            pi.removeItem(c)
        self.curves = [
            pi.plot(pen=pg.mkPen(PALETTE[k % len(PALETTE)], width=1)) for k in range(len(sel))
        ]
        ax = pi.getAxis("left")
        ax.setTicks([[(-k, self.ch_names[i]) for k, i in enumerate(sel)], []])

    def set_scope(self, data: np.ndarray | None, times: np.ndarray | None, markers) -> None:
        """Draw the last seconds of EEG.

        Parameters
        ----------
        data : ndarray, shape (n_channels, n_samples) | None
            Raw EEG.
        times : ndarray | None
            Its times (session clock, s).
        markers : sequence of float
            Stimulus onsets inside the window.
        """
        if data is None or times is None or not self.selected:
            return
        sub = data[self.selected]
        with warnings.catch_warnings():  # samples not covered yet are NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            self._draw_scope(sub, times, markers)

    def _draw_scope(self, sub: np.ndarray, times: np.ndarray, markers) -> None:
        if self._spacing is None:
            with np.errstate(all="ignore"):
                med = np.nanmedian(sub, axis=1, keepdims=True)
                mad = np.nanmedian(np.abs(sub - med))
            self._spacing = float(6 * 1.4826 * mad) if np.isfinite(mad) and mad > 0 else None
        spacing = (self._spacing or 1.0) / self.gain.value()
        t = f32(times)
        with np.errstate(all="ignore"):
            base = np.nanmean(sub, axis=1, keepdims=True)
        base = np.where(np.isfinite(base), base, 0.0)
        y = f32((sub - base) / spacing - np.arange(len(self.selected))[:, None])
        for k, curve in enumerate(self.curves):
            curve.setData(t, y[k], connect="finite")
        pi = self.plot.getPlotItem()
        markers = [m for m in markers if t[0] <= m <= t[-1]][-self.MAX_MARKERS:]
        while len(self.marker_lines) < len(markers):
            line = pg.InfiniteLine(angle=90, pen=pg.mkPen("#d62728", width=1))
            pi.addItem(line)
            self.marker_lines.append(line)
        for k, line in enumerate(self.marker_lines):
            if k < len(markers):
                line.setValue(markers[k])
                line.show()
            else:
                line.hide()
        pi.setXRange(float(t[0]), float(t[-1]), padding=0)
        pi.setYRange(-len(self.selected) + 0.2, 0.8, padding=0)
        self.status.setText(f"{len(markers)} markers in view, {len(self.selected)} channels")


class ErpPanel(PlotPanel):
    """Running average epoch (ERP) of one channel or a region (mean of its channels)."""

    def __init__(self, parent=None) -> None:
        super().__init__("Live ERP", parent)
        self.choice = QtWidgets.QComboBox()
        self.choice.setMinimumContentsLength(12)
        self.controls.addWidget(self.choice)
        pi = self.plot.getPlotItem()
        pi.setLabel("bottom", "time after onset", units="s")
        pi.setLabel("left", "amplitude")
        pi.addItem(pg.InfiniteLine(0.0, angle=90, pen=pg.mkPen("#888", style=QtCore.Qt.PenStyle.DashLine)))
        self.curve = pi.plot(pen=pg.mkPen(PALETTE[0], width=2))
        self.ch_names: tuple[str, ...] = ()
        self._last = None
        self.choice.currentIndexChanged.connect(lambda *_: self._redraw())

    def set_channels(self, ch_names) -> None:
        """Offer ``ch_names`` (sequence of str) in the channel selector (kept when unchanged)."""
        ch_names = tuple(ch_names)
        if ch_names == self.ch_names:
            return
        self.ch_names = ch_names
        fill_channel_menu(self.choice, ch_names, ["mean of all channels"],
                          select="region: occipital")

    def rows(self) -> list[int]:
        """Indices of the channels selected (all, a region, or one channel)."""
        rows = selected_rows(self.choice.currentText(), self.ch_names)
        return list(range(len(self.ch_names))) if rows is None else rows

    def set_erp(self, erp: np.ndarray | None, times: np.ndarray | None, n_epochs: int) -> None:
        """Draw the running average epoch.

        Parameters
        ----------
        erp : ndarray, shape (n_channels, n_times) | None
            The average so far.
        times : ndarray | None
            Epoch times (s).
        n_epochs : int
            Epochs averaged.
        """
        self._last = (erp, times, n_epochs)
        self._redraw()

    def _redraw(self) -> None:
        if self._last is None:
            return
        erp, times, n = self._last
        if erp is None or times is None:
            self.curve.setData([], [])
            return
        rows = self.rows() or list(range(erp.shape[0]))
        y = f32(np.mean(erp[rows], axis=0))
        self.curve.setData(f32(times), y)
        self.status.setText(f"{self.choice.currentText()}: average of {n} epochs")

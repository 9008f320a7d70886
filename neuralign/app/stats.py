"""What the window shows of the statistics: CI bands, mask contours, ranking, stopping.

Nothing here computes statistics: every number comes from the snapshot's
:class:`~neuralign.align.monitor.Statistics` (intervals, masks, ranking, stopping status).

- :class:`PeakBands`: the 95% peak-latency interval of every layer as a shaded band (and
  error bars) on the peak-latency plot;
- :class:`MaskContour`: the significant cells of the layer x time map outlined on the map;
- :class:`RankingPanel`: the model ranking table, the paired comparisons and the stopping
  progress (a bar, a line with the epochs still needed).
"""

from __future__ import annotations

import numpy as np

from PySide6 import QtCore, QtWidgets  # isort: skip  (before pyqtgraph: it picks PySide6)
import pyqtgraph as pg  # isort: skip

from .panels import PALETTE, f32, fmt


class PeakBands:
    """A shaded 95% interval band (and error bars) on a peak-latency plot.

    Parameters
    ----------
    plot : pyqtgraph.PlotWidget
        The peak-latency plot (x = layer index, y = latency in s).
    """

    def __init__(self, plot) -> None:
        pi = plot.getPlotItem()
        color = pg.mkColor(PALETTE[0])
        color.setAlpha(50)
        self.lower = pg.PlotDataItem([], [])
        self.upper = pg.PlotDataItem([], [])
        self.band = pg.FillBetweenItem(self.lower, self.upper, brush=pg.mkBrush(color))
        self.bars = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), beam=0.2,
                                    pen=pg.mkPen(PALETTE[0], width=1))
        pi.addItem(self.band)
        pi.addItem(self.bars)
        self.ci: np.ndarray | None = None

    def set_intervals(self, ci: np.ndarray | None) -> None:
        """Show ``ci`` (L, 2) latency intervals in s; None clears.

        Parameters
        ----------
        ci : ndarray (L, 2) | None
            Lower and upper bound per layer.
        """
        if ci is None or len(ci) == 0:
            self.ci = None
            for c in (self.lower, self.upper):
                c.setData([], [])
            self.bars.setData(x=np.zeros(0), y=np.zeros(0), top=np.zeros(0),
                              bottom=np.zeros(0))
            return
        ci = f32(ci)
        self.ci = ci
        ok = np.isfinite(ci).all(1)
        x = np.arange(ci.shape[0], dtype=np.float32)[ok]
        lo, hi = ci[ok, 0], ci[ok, 1]
        self.lower.setData(x, lo)
        self.upper.setData(x, hi)
        mid = (lo + hi) / 2
        self.bars.setData(x=x, y=mid, top=hi - mid, bottom=mid - lo)


class MaskContour:
    """The outline of a boolean layer x time mask drawn over a map's image.

    Parameters
    ----------
    image : pyqtgraph.ImageItem
        The map's image (row-major, layers x times); the contour follows its geometry.
    """

    def __init__(self, image) -> None:
        self.curve = pg.IsocurveItem(level=0.5, pen=pg.mkPen("#ff2020", width=2),
                                     axisOrder="row-major")
        self.curve.setParentItem(image)
        self.curve.setZValue(10)
        self.mask: np.ndarray | None = None

    def set_mask(self, mask: np.ndarray | None) -> None:
        """Outline the True cells of ``mask`` (L, T); None or no True cell clears.

        Parameters
        ----------
        mask : ndarray of bool (L, T) | None
            Significant cells.
        """
        self.mask = None if mask is None else np.asarray(mask, bool)
        if self.mask is None or not self.mask.any():
            self.curve.setData(None)
            return
        # a zero border closes the outline of cells at the edge; shifted back by the border,
        # the outline runs through the edges of the significant cells (checked on screen)
        padded = np.pad(self.mask.astype(np.float32), 1)
        self.curve.setData(padded)
        self.curve.setPos(-1.0, -1.0)


class RankingPanel(QtWidgets.QGroupBox):
    """Model ranking (best layer, peak r and latency with 95% CI), comparisons, stop rule."""

    HEAD = ("model", "best layer", "peak r [95% CI]", "peak ms [95% CI]")

    def __init__(self, parent=None) -> None:
        super().__init__("Models and confidence", parent)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        self.table = QtWidgets.QTableWidget(0, len(self.HEAD))
        self.table.setHorizontalHeaderLabels(list(self.HEAD))
        self.table.verticalHeader().setVisible(True)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMaximumHeight(140)
        lay.addWidget(self.table)
        self.comparisons = QtWidgets.QLabel("")
        self.comparisons.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.comparisons.setWordWrap(True)
        lay.addWidget(self.comparisons)
        self.confidence = QtWidgets.QLabel("no statistics yet")
        self.confidence.setWordWrap(True)
        lay.addWidget(self.confidence)
        self.stop_bar = QtWidgets.QProgressBar()
        self.stop_bar.setRange(0, 100)
        self.stop_bar.setFormat("stop rule %p%")
        self.stop_bar.setVisible(False)
        lay.addWidget(self.stop_bar)
        self.stop_line = QtWidgets.QLabel("")
        self.stop_line.setWordWrap(True)
        lay.addWidget(self.stop_line)

    def update_from(self, stats) -> None:
        """Show ``stats`` (a :class:`~neuralign.align.monitor.Statistics`, or None).

        Parameters
        ----------
        stats : Statistics | None
            The snapshot's statistics.
        """
        if stats is None:
            self.table.setRowCount(0)
            self.confidence.setText("no statistics yet")
            return
        rows = []
        if stats.ranking is not None:
            rows = [(r.label, r.best_layer, r.peak_r, r.peak_r_ci, r.peak_latency_s,
                     r.peak_latency_ci) for r in stats.ranking.rows]
        else:
            for label, m in stats.models.items():
                if m.peaks is None or not np.isfinite(m.peaks.peak_r).any():
                    continue
                i = int(np.nanargmax(m.peaks.peak_r))
                rows.append((label, m.layers[i] if m.layers else str(i), m.peaks.peak_r[i],
                             m.peaks.peak_r_ci[i], m.peaks.latency_s[i], m.peaks.latency_ci[i]))
        self.table.setRowCount(len(rows))
        for k, (label, layer, r, rci, lat, lci) in enumerate(rows):
            cells = (label, layer, f"{fmt(r)} [{fmt(rci[0])}, {fmt(rci[1])}]",
                     f"{fmt(1000 * lat, '.0f')} [{fmt(1000 * lci[0], '.0f')}, "
                     f"{fmt(1000 * lci[1], '.0f')}]")
            for j, text in enumerate(cells):
                self.table.setItem(k, j, QtWidgets.QTableWidgetItem(str(text)))
        self.table.resizeColumnsToContents()
        pairs = stats.ranking.pairs if stats.ranking is not None else {}
        self.comparisons.setText("<br>".join(
            f"{a} &gt; {b}: &Delta;r {fmt(v['diff'])} [{fmt(v['ci'][0])}, {fmt(v['ci'][1])}], "
            f"p = {v['p']:.3g}" for (a, b), v in pairs.items()))
        w = stats.widest_latency_ci()
        sig = stats.models.get(stats.watched)
        n_sig = None if sig is None or sig.significant is None else int(sig.significant.sum())
        self.confidence.setText(
            f"{stats.n_epochs} epochs; widest peak-latency CI "
            f"{'-' if w is None else f'{1000 * w:.0f} ms'}"
            + ("" if n_sig is None else f" ({n_sig} significant layers)")
            + f"; statistics took {fmt(stats.compute_s, '.2f', ' s')}")
        st = stats.stopping
        self.stop_bar.setVisible(st is not None)
        if st is None:
            self.stop_line.setText("")
            return
        self.stop_bar.setValue(int(round(100 * st.progress)))
        self.stop_line.setText(f"{st.detail.get('rule', '')}: {st.line()}")


class StatisticsView:
    """Everything statistical the window paints, attached to its encoding map and peak plot.

    Parameters
    ----------
    enc_map : MapPanel
        The encoding map (gets the mask contour and, in its header, the model selector).
    peak_panel : PeakPanel
        The peak-latency plot (gets the interval bands).
    """

    def __init__(self, enc_map, peak_panel) -> None:
        self.ranking = RankingPanel()
        self.menu = QtWidgets.QComboBox()
        self.menu.setToolTip("the model whose maps, intervals and mask are shown")
        self.menu.setVisible(False)
        enc_map.controls.insertWidget(1, self.menu)
        self.mask = MaskContour(enc_map.image)
        self.bands = PeakBands(peak_panel.plot)
        self.last = None

    @property
    def selected(self) -> str:
        """Label of the model shown (``"model"`` for a single model)."""
        return self.menu.currentText() or "model"

    def paint(self, stats) -> None:
        """Paint ``stats`` of the selected model: bands, mask, ranking, stop rule.

        Parameters
        ----------
        stats : Statistics | None
            The snapshot's statistics (:class:`~neuralign.align.monitor.Statistics`).
        """
        self.last = stats
        self.ranking.update_from(stats)
        m = None if stats is None else stats.models.get(self.selected)
        if m is None and stats is not None and len(stats.models) == 1:
            m = next(iter(stats.models.values()))
        self.bands.set_intervals(None if m is None or m.peaks is None else m.peaks.latency_ci)
        self.mask.set_mask(None if m is None or m.mask is None else m.mask.mask)


def model_menu(menu: QtWidgets.QComboBox, labels: list[str]) -> None:
    """Fill ``menu`` with model ``labels`` (keeping the current choice); hidden for one model.

    Parameters
    ----------
    menu : QComboBox
        The model selector.
    labels : list of str
        Model labels in the snapshot.
    """
    have = [menu.itemText(i) for i in range(menu.count())]
    if have != list(labels):
        current = menu.currentText()
        blocked = menu.blockSignals(True)
        menu.clear()
        menu.addItems(list(labels))
        if current in labels:
            menu.setCurrentText(current)
        menu.blockSignals(blocked)
    menu.setVisible(len(labels) > 1)

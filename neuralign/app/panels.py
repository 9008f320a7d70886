"""The window's panels. Each one paints from a snapshot and does no analysis of its own.

All arrays handed to pyqtgraph are float32 and C-contiguous; images get explicit levels
(REFERENCE.md section 4), so painting a refresh costs milliseconds.
"""

from __future__ import annotations

import math
import time

import numpy as np

from PySide6 import QtCore, QtWidgets  # isort: skip  (before pyqtgraph: it picks PySide6)
import pyqtgraph as pg  # isort: skip

from ..realtime.snapshot import Snapshot

PALETTE = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22",
]

# Channel-name prefixes of the usual 10-20 regions (longest prefixes first when matching).
REGIONS: dict[str, tuple[str, ...]] = {
    "occipital": ("O", "PO", "I"),
    "parietal": ("P", "CP"),
    "central": ("C", "FC"),
    "temporal": ("T", "FT", "TP"),
    "frontal": ("F", "AF", "Fp", "FP"),
}


def region_of(ch: str) -> str | None:
    """The 10-20 region of a channel name (``'PO7' -> 'occipital'``), or ``None``."""
    letters = "".join(c for c in ch if c.isalpha())
    best, best_len = None, 0
    for region, prefixes in REGIONS.items():
        for p in prefixes:
            if letters.upper().startswith(p.upper()) and len(p) > best_len:
                if p == "C" and letters.upper().startswith("CP"):
                    continue
                best, best_len = region, len(p)
    return best


def f32(a) -> np.ndarray:
    """float32, C-contiguous (what pyqtgraph draws fastest)."""
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def fmt(x: float, spec: str = ".3f", unit: str = "") -> str:
    """A number for a label: ``x`` formatted with ``spec`` and ``unit``, ``-`` when missing.

    Parameters
    ----------
    x : float
        The value (anything ``float()`` accepts).
    spec : str
        Format spec (``".3f"``).
    unit : str
        Appended unit.

    Returns
    -------
    str
        E.g. ``"0.123"`` or ``"-"``.
    """
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return "-"
    return "-" if not math.isfinite(xf) else f"{xf:{spec}}{unit}"


class StreamPanel(QtWidgets.QGroupBox):
    """Stream names, rate, channels, buffer, drops, latency, reconnects, counts, refresh."""

    FIELDS = (
        ("eeg", "EEG stream"),
        ("markers", "Marker stream"),
        ("rate", "Rate"),
        ("channels", "Channels"),
        ("buffer", "Buffer fill"),
        ("dropped", "Dropped samples"),
        ("latency", "Latency"),
        ("reconnects", "Reconnects"),
        ("epochs", "Epochs acc. / rej."),
        ("stimuli", "Stimuli seen"),
        ("session", "Session time"),
        ("refresh", "Last refresh"),
    )

    def __init__(self, parent=None) -> None:
        super().__init__("Streams", parent)
        form = QtWidgets.QFormLayout(self)
        form.setContentsMargins(6, 4, 6, 4)
        form.setVerticalSpacing(2)
        self.labels: dict[str, QtWidgets.QLabel] = {}
        for key, text in self.FIELDS:
            lab = QtWidgets.QLabel("-")
            lab.setWordWrap(True)
            lab.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
            self.labels[key] = lab
            form.addRow(text + ":", lab)

    def update_from(self, snap: Snapshot | None, *, now: float | None = None) -> None:
        """Show the stream health and counts of ``snap`` (dashes when ``None``).

        Parameters
        ----------
        snap : Snapshot | None
            The latest snapshot.
        now : float | None
            Wall clock for the "last refresh" age (default: now).
        """
        if snap is None:
            for lab in self.labels.values():
                lab.setText("-")
            self.labels["eeg"].setText("not connected")
            return
        h = snap.health
        now = time.time() if now is None else now
        if getattr(snap, "finished", False):
            state = "  (finished)"
        elif not h.connected:
            state = "  (disconnected)"
        elif getattr(h, "stalled_s", 0.0) > 0.5:
            state = f"  (no data for {h.stalled_s:.1f} s)"
        else:
            state = ""
        self.labels["eeg"].setText((h.eeg_name or "-") + state)
        self.labels["markers"].setText(h.marker_name or "-")
        self.labels["rate"].setText(fmt(h.sfreq, ".1f", " Hz"))
        self.labels["channels"].setText(str(h.n_channels))
        self.labels["buffer"].setText(fmt(100 * h.buffer_fill, ".0f", " %"))
        gaps = f"  ({h.gaps} gaps)" if h.gaps else ""
        self.labels["dropped"].setText(f"{h.dropped_samples}{gaps}")
        lat = fmt(1000 * h.latency_s, ".1f", " ms")
        med = getattr(h, "latency_median_s", float("nan"))
        if math.isfinite(med):
            lat += f" (median {1000 * med:.1f} ms)"
        self.labels["latency"].setText(lat)
        self.labels["reconnects"].setText(str(h.reconnects))
        extra = []
        if snap.unknown_markers:
            extra.append(f"{snap.unknown_markers} unknown ids")
        if getattr(h, "pending_markers", 0):
            extra.append(f"{h.pending_markers} pending")
        more = f"  ({', '.join(extra)})" if extra else ""
        self.labels["epochs"].setText(f"{snap.epochs_accepted} / {snap.epochs_rejected}{more}")
        self.labels["stimuli"].setText(str(snap.stimuli_seen))
        self.labels["session"].setText(fmt(snap.session_time, ".1f", " s"))
        if math.isfinite(snap.last_refresh_wall):
            age = max(0.0, now - snap.last_refresh_wall)
            self.labels["refresh"].setText(
                f"{age:.1f} s ago (took {fmt(snap.refresh_s, '.2f', ' s')})"
            )
        else:
            self.labels["refresh"].setText("none yet")


#: How every plot of the window looks (white background, no antialiasing: fast repaints).
PLOT_STYLE = {"antialias": False, "background": "w", "foreground": "k"}


class PlotPanel(QtWidgets.QWidget):
    """A titled pyqtgraph plot plus an optional row of controls and a status line.

    Parameters
    ----------
    title : str
        Shown above the plot.
    parent : QWidget | None
        The parent widget.
    """

    def __init__(self, title: str, parent=None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(**PLOT_STYLE)  # before the first plot is made (idempotent)
        self.title = title
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(2)
        self.controls = QtWidgets.QHBoxLayout()
        self.controls.setSpacing(4)
        head = QtWidgets.QLabel(f"<b>{title}</b>")
        self.controls.addWidget(head)
        self.controls.addStretch(1)
        lay.addLayout(self.controls)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumSize(200, 140)
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.plot.getPlotItem().getAxis("left").enableAutoSIPrefix(False)
        lay.addWidget(self.plot, 1)
        self.status = QtWidgets.QLabel(" ")
        self.status.setStyleSheet("color: #444;")
        lay.addWidget(self.status)

    def export_png(self, path) -> bool:
        """Save this panel (plot, colour bar and labels) as a PNG."""
        return bool(self.grab().save(str(path)))


class MapPanel(PlotPanel):
    """Layer x latency heat map with colour bar, hover read-out and per-layer peaks."""

    def __init__(self, title: str, *, value_name: str, parent=None) -> None:
        super().__init__(title, parent)
        self.value_name = value_name
        pi = self.plot.getPlotItem()
        pi.setLabel("bottom", "time after onset", units="s")
        pi.setLabel("left", "layer")
        pi.invertY(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(pg.colormap.get("viridis").getLookupTable(nPts=256))
        pi.addItem(self.image)
        self.colorbar = pg.ColorBarItem(
            values=(0.0, 1.0), colorMap=pg.colormap.get("viridis"), interactive=False, width=14
        )
        self.colorbar.setImageItem(self.image, insert_in=pi)
        self.peaks = pg.ScatterPlotItem(
            size=9, symbol="x", pen=pg.mkPen("w", width=2), brush=pg.mkBrush("w")
        )
        pi.addItem(self.peaks)
        self.onset = pg.InfiniteLine(0.0, angle=90, pen=pg.mkPen("#ffffff", width=1, style=QtCore.Qt.PenStyle.DashLine))
        pi.addItem(self.onset)
        self.data: np.ndarray | None = None
        self.layers: list[str] = []
        self.times: np.ndarray | None = None
        self.levels: tuple[float, float] = (0.0, 1.0)
        self.peak_lat: np.ndarray | None = None
        self._proxy = self.plot.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.status.setText("waiting for the first refresh")

    def set_map(
        self,
        data: np.ndarray,
        *,
        layers: list[str],
        times: np.ndarray,
        peak_lat: np.ndarray | None = None,
        note: str = "",
    ) -> None:
        """Show a (layers, times) map; NaN cells stay transparent."""
        data = f32(data)
        times = np.asarray(times, dtype=float)
        self.data, self.layers, self.times = data, list(layers), times
        finite = data[np.isfinite(data)]
        if finite.size:
            hi = float(np.max(finite))
            lo = float(min(0.0, np.min(finite)))
            hi = max(hi, lo + 1e-3)
        else:
            lo, hi = 0.0, 1.0
        self.levels = (lo, hi)
        self.image.setImage(data, levels=self.levels, autoLevels=False)
        self.colorbar.setLevels(self.levels)
        dt = float(np.median(np.diff(times))) if times.size > 1 else 1.0
        n_l, n_t = data.shape
        self.image.setRect(QtCore.QRectF(times[0] - dt / 2, -0.5, n_t * dt, n_l))
        ax = self.plot.getPlotItem().getAxis("left")
        step = max(1, int(math.ceil(n_l / 12)))
        ax.setTicks([[(i, self._short(layers[i])) for i in range(0, n_l, step)], []])
        self.plot.getPlotItem().setLimits()
        self.plot.getPlotItem().setRange(
            xRange=(times[0] - dt / 2, times[-1] + dt / 2), yRange=(-0.5, n_l - 0.5), padding=0
        )
        self.peak_lat = None if peak_lat is None else np.asarray(peak_lat, dtype=float)
        if self.peak_lat is not None:
            ok = np.isfinite(self.peak_lat)
            self.peaks.setData(x=self.peak_lat[ok], y=np.arange(n_l)[ok].astype(float))
        else:
            self.peaks.clear()
        best = ""
        if finite.size:
            li, ti = np.unravel_index(int(np.nanargmax(np.where(np.isfinite(data), data, -np.inf))), data.shape)
            best = (
                f"max {self.value_name} {data[li, ti]:.3f} at {self._short(layers[li])}, "
                f"{1000 * times[ti]:.0f} ms"
            )
        self.status.setText("  ".join(x for x in (best, note) if x) or " ")

    @staticmethod
    def _short(name: str) -> str:
        return name if len(name) <= 14 else "…" + name[-13:]

    def readout_at(self, x: float, y: float) -> str:
        """Text for the cell under plot coordinates (x = time s, y = layer index)."""
        if self.data is None or self.times is None or self.times.size == 0:
            return ""
        li = int(round(y))
        ti = int(np.argmin(np.abs(self.times - x)))
        n_l, n_t = self.data.shape
        dt = float(np.median(np.diff(self.times))) if self.times.size > 1 else 1.0
        if not (0 <= li < n_l) or abs(self.times[ti] - x) > dt:
            return ""
        v = self.data[li, ti]
        peak = ""
        if self.peak_lat is not None and np.isfinite(self.peak_lat[li]):
            peak = f"  (layer peak {1000 * self.peak_lat[li]:.0f} ms)"
        return (
            f"layer {self.layers[li]} · {1000 * self.times[ti]:.0f} ms · "
            f"{self.value_name} = {fmt(v)}{peak}"
        )

    def _on_mouse_moved(self, pos) -> None:
        vb = self.plot.getPlotItem().getViewBox()
        if not self.plot.sceneBoundingRect().contains(pos):
            return
        p = vb.mapSceneToView(pos)
        text = self.readout_at(p.x(), p.y())
        if text:
            self.status.setText(text)


class PeakPanel(PlotPanel):
    """Peak latency per layer (encoding and RSA)."""

    def __init__(self, parent=None) -> None:
        super().__init__("Peak latency per layer", parent)
        pi = self.plot.getPlotItem()
        pi.setLabel("bottom", "layer")
        pi.setLabel("left", "peak latency", units="s")
        pi.getAxis("left").enableAutoSIPrefix(True)
        pi.addLegend(offset=(5, 5))
        self.curves = {
            "encoding": pi.plot(pen=pg.mkPen(PALETTE[0], width=2), symbol="o", symbolSize=6,
                                symbolBrush=PALETTE[0], name="encoding r"),
            "rsa": pi.plot(pen=pg.mkPen(PALETTE[1], width=2), symbol="s", symbolSize=6,
                           symbolBrush=PALETTE[1], name="RSA rho"),
        }

    def set_peaks(self, layers: list[str], **lat: np.ndarray) -> None:
        """Plot per-layer peak latencies.

        Parameters
        ----------
        layers : list of str
            Layer names (x axis).
        **lat : ndarray
            ``encoding=`` and ``rsa=`` peak latencies in seconds, one per layer.
        """
        x = np.arange(len(layers), dtype=np.float32)
        for key, curve in self.curves.items():
            y = lat.get(key)
            if y is None:
                curve.setData([], [])
            else:
                y = f32(y)
                ok = np.isfinite(y)  # layers without a score yet are left out
                curve.setData(x[ok], y[ok])
        ax = self.plot.getPlotItem().getAxis("bottom")
        step = max(1, int(math.ceil(len(layers) / 8)))
        ax.setTicks([[(i, MapPanel._short(layers[i])) for i in range(0, len(layers), step)], []])
        enc = lat.get("encoding")
        if enc is not None and np.isfinite(enc).sum() >= 3:
            ok = np.isfinite(enc)
            slope = np.polyfit(x[ok], np.asarray(enc)[ok], 1)[0]
            self.status.setText(f"encoding peak latency slope: {1000 * slope:+.1f} ms per layer")


class CeilingPanel(PlotPanel):
    """Noise ceiling (mean over channels) over time."""

    KINDS = (
        ("r_ceiling", "r ceiling", 0),
        ("spearman_brown", "split-half (Spearman-Brown)", 2),
        ("things_lower", "THINGS lower", 4),
        ("things_upper", "THINGS upper", 3),
    )

    def __init__(self, parent=None) -> None:
        super().__init__("Noise ceiling over time", parent)
        pi = self.plot.getPlotItem()
        pi.setLabel("bottom", "time after onset", units="s")
        pi.setLabel("left", "ceiling (mean over channels)")
        pi.addLegend(offset=(5, 5))
        self.curves = {
            k: pi.plot(pen=pg.mkPen(PALETTE[c], width=2), name=label) for k, label, c in self.KINDS
        }

    def set_ceiling(self, result) -> None:
        """Plot the noise ceilings over time of ``result`` (an AlignmentResult)."""
        t = f32(result.times)
        shown = []
        for k, curve in self.curves.items():
            if k in result.noise_ceiling:
                y = f32(result.noise_ceiling_time(k))
                curve.setData(t, y, connect="finite")
                if np.isfinite(y).any():
                    shown.append(f"{k} max {np.nanmax(y):.2f}")
            else:
                curve.setData([], [])
        self.status.setText(", ".join(shown[:2]) or "no repetitions yet")

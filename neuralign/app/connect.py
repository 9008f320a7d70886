"""Connecting the window to LSL: the stream picker and the live source factory.

:class:`ConnectDialog` lists the streams visible on this machine (machine-scope LSL
configuration, :func:`neuralign.lsl.visible_streams`) in a worker thread;
:func:`live_source_factory` turns the chosen streams and the window settings into a
:class:`~neuralign.realtime.source.LiveSource`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from ..errors import NeuralignError
from ..io.features import load_features
from ..lsl import visible_streams
from ..realtime.session import LiveSession
from ..realtime.settings import EpochSettings
from ..realtime.source import LiveSource


class _StreamsFound(QtCore.QObject):
    """Carries the streams found by a worker thread into the GUI thread (a queued signal)."""

    found = QtCore.Signal(list)


class ConnectDialog(QtWidgets.QDialog):
    """Pick an EEG stream and a marker stream among those found on this machine.

    Parameters
    ----------
    parent : QWidget | None
        The parent window.
    eeg, markers : str
        The streams to preselect (editable).
    discover : callable
        Returns the visible streams as dicts (default :func:`neuralign.lsl.visible_streams`).
    """

    def __init__(self, parent=None, *, eeg: str = "", markers: str = "",
                 discover: Callable[[], list[dict]] = visible_streams) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect to LSL streams")
        self._discover = discover
        self._bridge = _StreamsFound()
        self._bridge.found.connect(self.set_streams)
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
            self._bridge.found.emit(found)

        threading.Thread(target=work, name="neuralign-resolve", daemon=True).start()

    @QtCore.Slot(list)
    def set_streams(self, streams: list[dict]) -> None:
        """Fill the stream lists (markers: type ``Markers`` or irregular rate).

        Parameters
        ----------
        streams : list of dict
            As :func:`neuralign.lsl.visible_streams` returns them (or one ``{"error": ...}``).
        """
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
        """The chosen ``(eeg_stream, marker_stream)``."""
        return self.eeg.currentText().strip(), self.markers.currentText().strip()


def live_source_factory(settings: dict, *, design=None, connect_timeout: float = 10.0,
                        on_connected=None, statistics=None, stats_every: int = 1,
                        closed_loop=None) -> LiveSource:
    """Build a live source from the window settings (streams, features, window, band).

    Parameters
    ----------
    settings : dict
        The window settings (``eeg_stream``, ``marker_stream``, ``features``, ``tmin``,
        ``tmax``, ``l_freq``, ``h_freq``, ``refresh_s``; ``out_dir`` for the recording).
    design : SessionDesign | None
        Its test stimuli score (:class:`neuralign.base.SessionDesign`); else nested CV.
    connect_timeout : float
        Seconds to wait for the streams.
    on_connected : callable | None
        Called with the session once it is connected.
    statistics : StatisticsMonitor | None
        Intervals, masks, ranking and stopping rule (default: the session's).
    stats_every : int
        Refreshes between two evaluations of the statistics.
    closed_loop : BlockPolicy | None
        Closed-loop order (:class:`neuralign.realtime.decisions.BlockPolicy`): the session
        chooses the presenter's next blocks.

    Returns
    -------
    LiveSource
        Not started.

    Raises
    ------
    NeuralignError
        When no streams or no features were chosen, or the features cannot be read.
    """
    eeg, markers = settings.get("eeg_stream", ""), settings.get("marker_stream", "")
    if not eeg or not markers:
        raise NeuralignError("choose an EEG stream and a marker stream (Connect…)")
    if not settings.get("features"):
        raise NeuralignError("choose the features file of the stimuli first (Analysis > Features)")
    feats = settings["features"]
    if isinstance(feats, dict):  # several models: label -> path
        features = {k: load_features(v) for k, v in feats.items()}
        features = features if len(features) > 1 else next(iter(features.values()))
    else:
        features = load_features(feats)
    lf = settings.get("l_freq") or None
    hf = settings.get("h_freq") or None
    epoch = EpochSettings(tmin=float(settings.get("tmin", -0.2)),
                          tmax=float(settings.get("tmax", 0.8)), l_freq=lf, h_freq=hf)
    out = settings.get("out_dir") or str(
        Path.cwd() / "neuralign_sessions" / time.strftime("%Y%m%d-%H%M%S")
    )
    refresh_s = float(settings.get("refresh_s", 2.0))
    session = LiveSession(features, eeg_stream=eeg, marker_stream=markers, out_dir=out,
                          settings=epoch, design=design, connect_timeout=connect_timeout,
                          refresh_every=max(refresh_s, 0.05), statistics=statistics,
                          stats_every=stats_every, closed_loop=closed_loop)
    return LiveSource(session, on_connected=on_connected)

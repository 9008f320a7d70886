"""The deterministic part of a session: clock offsets + marker classification + epoching.

A live session and the re-epocher of a recording drive the same :class:`SessionCore` with the
same calls in the same order (EEG chunks, marker chunks, clock offsets, as written to the
recording), so both produce the same epochs (up to BLAS rounding, ~1e-15).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from .epocher import EpochEvent, MarkerClassifier, OnlineEpocher
from .settings import EpochSettings

EEG, MARKERS = "eeg", "markers"


class SessionCore:
    """Apply clock offsets, classify markers, epoch.

    Parameters
    ----------
    settings : EpochSettings
    stream_sfreq : float
    n_channels : int
    classifier : MarkerClassifier
    """

    def __init__(self, settings: EpochSettings, *, stream_sfreq: float, n_channels: int,
                 classifier: MarkerClassifier) -> None:
        self.settings = settings
        self.epocher = OnlineEpocher(settings, stream_sfreq=stream_sfreq, n_channels=n_channels)
        self.classifier = classifier
        self.offsets = {EEG: 0.0, MARKERS: 0.0}
        self.n_markers = 0
        self.kinds: Counter = Counter()
        self.unknown: Counter = Counter()
        self.control: Counter = Counter()
        self.marker_times: list[float] = []  # session-clock onsets of stimulus markers

    def set_offset(self, stream: str, offset: float) -> None:
        """Use ``offset`` (s) as the clock offset of ``stream`` (``"eeg"`` or ``"markers"``)."""
        self.offsets[stream] = float(offset)

    def eeg(self, data: np.ndarray, raw_ts: np.ndarray) -> list[EpochEvent]:
        """Add an EEG chunk (raw LSL timestamps) and return the epochs it completes."""
        self.epocher.push_eeg(data, np.asarray(raw_ts, dtype=np.float64) + self.offsets[EEG])
        return self.epocher.poll()

    def markers(self, values: Sequence, raw_ts: Sequence[float]) -> list[EpochEvent]:
        """Add marker samples (first channel of each) and return the epochs now complete."""
        off = self.offsets[MARKERS]
        for v, t in zip(values, raw_ts):
            if isinstance(v, list | tuple | np.ndarray):
                v = v[0]
            kind, sid = self.classifier.classify(v)
            idx = self.n_markers
            self.n_markers += 1
            self.kinds[kind] += 1
            if kind == "stimulus":
                onset = float(t) + off
                self.marker_times.append(onset)
                self.epocher.add_marker(sid, onset, idx)
            elif kind == "unknown":
                self.unknown[sid] += 1
            else:
                self.control[sid] += 1
        return self.epocher.poll()

    def flush(self) -> list[EpochEvent]:
        """Cut every epoch still pending (end of data) and return the events."""
        return self.epocher.flush()

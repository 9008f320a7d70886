"""Immutable snapshots the live updater publishes and the GUI / CLI read without locking."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..align.data import AlignmentResult
from ..align.monitor import Statistics


@dataclass(frozen=True)
class StreamHealth:
    """State of the LSL streams at snapshot time."""

    eeg_name: str = ""
    marker_name: str = ""
    sfreq: float = float("nan")
    n_channels: int = 0
    ch_names: tuple[str, ...] = ()
    connected: bool = False
    buffer_fill: float = 0.0  # fraction of the ring buffer holding data
    samples_received: int = 0
    dropped_samples: int = 0
    reconnects: int = 0
    gaps: int = 0
    latency_s: float = float("nan")  # marker -> epoch-in-engine latency, last epoch
    markers_received: int = 0
    # added by the live updater (defaults keep older readers working)
    eeg_source_id: str = ""
    stalled_s: float = 0.0  # seconds since the last EEG sample arrived
    pending_markers: int = 0  # stimulus markers waiting for their data up to tmax
    latency_median_s: float = float("nan")  # over all epochs so far
    markers_connected: bool = True  # the marker stream is visible (StreamWatch)
    problem: str = ""  # why the EEG cannot be used (another channel count or rate on return)


@dataclass(frozen=True)
class Snapshot:
    """Everything a viewer needs at one moment of a session.

    ``result`` is ``None`` until the first refresh. ``erp`` is the running average epoch over
    all accepted epochs, shape (C, T) on ``times``; ``scope`` the last few seconds of raw EEG
    (C, n) with ``scope_times`` (s, session clock) and ``marker_times`` (s) inside that window.
    """

    wall_time: float
    session_time: float
    health: StreamHealth
    epochs_accepted: int = 0
    epochs_rejected: int = 0
    rejected_reasons: dict = field(default_factory=dict)
    stimuli_seen: int = 0
    unknown_markers: int = 0
    refresh_s: float = float("nan")
    last_refresh_wall: float = float("nan")
    result: AlignmentResult | None = None
    erp: np.ndarray | None = None
    times: np.ndarray | None = None
    scope: np.ndarray | None = None
    scope_times: np.ndarray | None = None
    marker_times: tuple[float, ...] = ()
    # added by the live updater
    control_markers: int = 0
    unknown_ids: tuple[str, ...] = ()
    n_refreshes: int = 0
    finished: bool = False
    #: several models: label -> maps (``result`` is the first model's); None for one model
    results: dict[str, AlignmentResult] | None = None
    #: intervals, masks, ranking and stopping status of the last evaluation
    stats: Statistics | None = None

    @property
    def models(self) -> dict[str, AlignmentResult]:
        """Label -> maps of every model (one ``"model"`` entry for a single model)."""
        if self.results:
            return dict(self.results)
        return {} if self.result is None else {"model": self.result}

    def status_line(self) -> str:
        """One line: time, epochs, rejections, unknown markers, drops, latency, refresh cost,
        and (with statistics) the widest peak-latency interval, the top model and the
        stopping progress.

        Returns
        -------
        str
            E.g. ``t=  12.0s epochs=58 rejected=2 ... latency=3ms refresh=210ms``.
        """
        h = self.health

        def ms(x: float) -> str:
            return f"{x * 1000:.0f}ms" if np.isfinite(x) else "-"

        forms = [] if self.result is None else [
            f for f in self.result.counts.get("solver_forms", []) if f != "-"]
        how = (" (" + ", ".join(f"{f} {forms.count(f)}" for f in sorted(set(forms))) + ")"
               if forms else "")  # how the last refresh solved the layers: (dual 3, primal 9)
        return (f"t={self.session_time:6.1f}s epochs={self.epochs_accepted} "
                f"rejected={self.epochs_rejected} unknown={self.unknown_markers} "
                f"stimuli={self.stimuli_seen} dropped={h.dropped_samples} gaps={h.gaps} "
                f"{'ok' if h.connected else 'LOST'} "
                f"{'' if h.markers_connected else 'markers LOST '}latency={ms(h.latency_s)} "
                f"refresh={ms(self.refresh_s)}{how}"
                + (f" PROBLEM: {h.problem}" if h.problem else "")
                + ("" if self.stats is None else " " + self.stats.status_fragment()))

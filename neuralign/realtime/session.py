"""The live updater: an acquisition thread and a refresh worker around one engine.

- Acquisition thread (``_acquire``): pulls EEG and marker chunks, writes them to the recording,
  epochs them (:class:`~neuralign.realtime.core.SessionCore`) and adds each epoch to the
  engine (O(C T) accumulation). Nothing slow runs here.
- Refresh worker (:meth:`~neuralign.realtime.publisher.SnapshotPublisher.refresh_loop`):
  re-solves the maps (``engine.refresh()``) every ``refresh_every`` seconds and publishes an immutable
  :class:`~neuralign.realtime.snapshot.Snapshot` several times a second. Readers take
  :attr:`LiveSession.snapshot` (one attribute read, no lock), so the GUI and the CLI never
  block acquisition.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..align.data import AlignmentResult
from ..align.monitor import Statistics, StatisticsMonitor
from ..base import FeatureSet, SessionDesign, fill_doc
from ..errors import NeuralignError
from ..io.backchannel import BackChannelOutlet
from ..lsl import get_pylsl, resolve
from .closed_loop import ClosedLoop, attach_back_channel
from .core import EEG, MARKERS, SessionCore
from .decisions import BlockPolicy
from .epocher import EpochEvent, MarkerClassifier
from .lsl_io import Inlet
from .publisher import SnapshotPublisher
from .recording import SessionRecorder
from .settings import EpochSettings
from .snapshot import Snapshot, StreamHealth
from .watch import StreamWatch

#: A live session re-selects each layer's alphas every this many refreshes, staggered over the
#: layers (alphas move slowly; a refit with kept alphas costs a fraction of a re-selection).
LIVE_RESELECT_EVERY = 4


def refresh_threads() -> int:
    """Threads a live refresh may use: one per core but one (at least one).

    The core left free runs acquisition, publishing and, on the same machine, the presenter.

    Returns
    -------
    int
        ``max(1, os.cpu_count() - 1)``.
    """
    return max(1, (os.cpu_count() or 1) - 1)


@fill_doc
class LiveSession:
    """One live session: connect, run, stop (flushes everything and returns the final maps).

    Parameters
    ----------
    features : FeatureSet | mapping of str to FeatureSet
        The features of the stimuli that may be shown; several models as ``{label: features}``
        (one epoching, shared: a :class:`~neuralign.align.ModelGroup` fed the same epochs).
    %(stream_spec)s
    out_dir : str | Path
        The recording goes to ``out_dir/recording/``.
    settings : EpochSettings
        Epoch window, rate, baseline, filters, rejection.
    design : SessionDesign | None
        Test stimuli and expected channel count; without it, nested cross-validation.
    codes : dict | None
        Integer marker code -> stimulus id (also read from the design).
    refresh_every : float
        Seconds between map re-solves (at least; only when new epochs arrived).
    connect_timeout : float
        Seconds to wait for each stream.
    engine_kw : dict | None
        Passed to :class:`~neuralign.align.AlignmentEngine`. ``reselect_every`` defaults to
        :data:`LIVE_RESELECT_EVERY` (each layer re-selects its alphas every 4th refresh,
        staggered; the final maps re-select every layer).
    scope_s : float
        Seconds of raw EEG in each snapshot.
    offset_every_s : float
        Seconds between clock-offset measurements.
    stall_s : float
        Seconds without EEG after which the stream counts as lost.
    blas_threads : int | None
        BLAS threads while the session runs (process-wide, restored by :meth:`stop`). The
        per-epoch work is a small matrix product that multi-threaded OpenBLAS slows down ~50x
        on a busy machine; 1 (default) keeps acquisition fast. ``None``: one per core but one
        (:func:`refresh_threads`; more threads can speed up refreshes of big models).
        The engine's refresh threads (``engine_kw["n_jobs"]``) default to
        :func:`refresh_threads` too, so one core stays free for acquisition and the presenter.
    poll_s : float
        Sleep of the acquisition thread when nothing arrived.
    publish_every : float
        Seconds between published snapshots. A third thread publishes them, apart from the
        refresh worker, so the status, the window and LOST detection keep updating during a
        long refresh.
    keep_epochs : bool
        Keep every epoch in :attr:`kept` (tests).
    statistics : StatisticsMonitor | None
        Intervals, masks, ranking and the stopping rule (default: a monitor with the engine's
        defaults and no rule). When the rule holds the presenter is told to stop over the back
        channel (:meth:`stop_presenter`).
    stats_every : int
        Map refreshes between two evaluations of the statistics (1 = every refresh).
    closed_loop : BlockPolicy | None
        Closed-loop order: answer the presenter's block requests (needs a design with test
        stimuli; :mod:`~neuralign.realtime.closed_loop`). ``None``: the presenter's own order.
    """

    def __init__(
        self,
        features: FeatureSet,
        *,
        eeg_stream: str,
        marker_stream: str,
        out_dir: str | Path,
        settings: EpochSettings | None = None,
        design: SessionDesign | None = None,
        codes: dict | None = None,
        refresh_every: float = 1.0,
        connect_timeout: float = 10.0,
        engine_kw: dict | None = None,
        scope_s: float = 3.0,
        offset_every_s: float = 5.0,
        stall_s: float = 1.0,
        blas_threads: int | None = 1,
        poll_s: float = 0.005,
        publish_every: float = 0.2,
        keep_epochs: bool = False,
        statistics: StatisticsMonitor | None = None,
        stats_every: int = 1,
        closed_loop: BlockPolicy | None = None,
    ) -> None:
        if isinstance(features, Mapping):
            if not features:
                raise NeuralignError("no feature sets given")
            self.models = {str(k): v for k, v in features.items()}
        else:
            self.models = {"model": features}
        features = next(iter(self.models.values()))
        self.features = features
        self.monitor = statistics if statistics is not None else StatisticsMonitor()
        if stats_every < 1:
            raise NeuralignError(f"--stats-every must be >= 1 refresh, got {stats_every}")
        self.stats_every = int(stats_every)
        #: set (by the refresh worker) when the stopping rule holds: the session should end
        self.rule_met = threading.Event()
        self.stop_reason: str | None = None
        self.eeg_spec, self.marker_spec = eeg_stream, marker_stream
        self.out_dir = Path(out_dir)
        self.settings = settings or EpochSettings()
        self.design = design
        self.codes = dict(codes or {})
        if design is not None and design.codes:
            self.codes.update(design.codes)
        if refresh_every <= 0:
            raise NeuralignError(f"--refresh-every must be > 0 s, got {refresh_every}")
        self.refresh_every = float(refresh_every)
        self.connect_timeout = float(connect_timeout)
        self.engine_kw = dict(engine_kw or {})
        self.engine_kw.setdefault("n_jobs", refresh_threads())
        self.engine_kw.setdefault("reselect_every", LIVE_RESELECT_EVERY)
        self.scope_s = float(scope_s)
        self.offset_every_s = float(offset_every_s)
        self.stall_s = float(stall_s)
        self.blas_threads = blas_threads
        self.poll_s = float(poll_s)
        self.publish_every = float(publish_every)
        self._blas_limit = None
        # ids of the epochs handed to the engine, in order; with keep_epochs (tests) the epochs
        # too. The recording holds the data: nothing here is needed for the final maps.
        self.keep_epochs = keep_epochs
        self.kept_ids: list[str] = []
        self.kept: list[np.ndarray] = []
        self.publisher: SnapshotPublisher | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ring_lock = threading.Lock()
        self._error: BaseException | None = None
        self._stopping = False
        self.connected = False
        if closed_loop is not None and len(self.models) > 1:
            raise NeuralignError("--order closed-loop chooses for one model: give one --features")
        if closed_loop is not None and (design is None or not design.test_ids):
            raise NeuralignError("--order closed-loop needs --design with test stimuli (the "
                                 "test set is fixed in advance)")
        self.closed_loop = closed_loop
        self.loop: ClosedLoop | None = None
        self.backchannel: BackChannelOutlet | None = None
        self._feeding = contextlib.nullcontext()

    @property
    def snapshot(self) -> Snapshot | None:
        """The newest published snapshot (``None`` before :meth:`connect`)."""
        return None if self.publisher is None else self.publisher.snapshot

    @property
    def result(self) -> AlignmentResult | None:
        """The maps of the last refresh (``None`` before the first; the first model's)."""
        return None if self.publisher is None else self.publisher.result

    @property
    def results(self) -> dict[str, AlignmentResult] | None:
        """Label -> maps of every model at the last refresh (``None`` for one model)."""
        return None if self.publisher is None else self.publisher.results

    @property
    def stats(self) -> Statistics | None:
        """Intervals, masks, ranking and stopping status of the last evaluation."""
        return None if self.publisher is None else self.publisher.stats

    # ------------------------------------------------------------------ connect
    def connect(self) -> None:
        """Resolve and open both streams, check them, open the recording and the engine."""
        from ..align.engine import AlignmentEngine
        from ..align.group import ModelGroup

        pylsl = get_pylsl()
        self._clock = pylsl.local_clock
        eeg_info = resolve(self.eeg_spec, what="EEG", timeout=self.connect_timeout)
        if eeg_info.channel_format() == 3:
            raise NeuralignError(f"EEG stream {self.eeg_spec!r} carries strings, not samples")
        if eeg_info.nominal_srate() <= 0:
            raise NeuralignError(f"EEG stream {self.eeg_spec!r} has an irregular rate")
        if self.design is not None:  # fail before opening anything
            self.design.check_channels(eeg_info.channel_count(), stream=eeg_info.name())
        fs = eeg_info.nominal_srate()
        self.settings.check_stream(fs, stream=eeg_info.name())
        mk_info = resolve(self.marker_spec, what="marker", timeout=self.connect_timeout)
        if mk_info.nominal_srate() > 0 or mk_info.uid() == eeg_info.uid():
            raise NeuralignError(
                f"marker stream {mk_info.name()!r} is a regular stream ({mk_info.channel_count()} "
                f"ch @ {mk_info.nominal_srate():g} Hz, type {mk_info.type()!r}): markers come "
                "at irregular times; give the marker stream, not an EEG stream")
        self.eeg = Inlet(eeg_info, max_chunk=max(1024, int(fs * 0.5)))
        self.mk = Inlet(mk_info, max_chunk=1024)
        if self.design is not None:
            self.design.check_channel_names(self.eeg.ch_names, stream=self.eeg.name)
        s = self.settings
        if s.sfreq > fs:
            raise NeuralignError(f"analysis rate {s.sfreq} Hz exceeds the stream's {fs} Hz")
        known = self.features.stimulus_ids.tolist()
        self.core = SessionCore(
            s, stream_sfreq=fs, n_channels=self.eeg.n_channels,
            classifier=MarkerClassifier(known, control=s.control_markers, codes=self.codes),
        )
        self.test_ids = None
        if self.design is not None:
            self.test_ids = [x for x in self.design.test_ids if x in self.features]
            if not self.test_ids:
                self.test_ids = None  # no test stimulus in the features: nested CV
        if len(self.models) > 1:
            self.engine = ModelGroup(self.models, times=self.core.epocher.times,
                                     ch_names=self.eeg.ch_names, test_ids=self.test_ids,
                                     **self.engine_kw)
        else:
            self.engine = AlignmentEngine(self.features, times=self.core.epocher.times,
                                          ch_names=self.eeg.ch_names, test_ids=self.test_ids,
                                          **self.engine_kw)
        meta = {
            "settings": s.to_dict(),
            "eeg": dict(self.eeg.describe(), spec=self.eeg_spec),
            "markers": dict(self.mk.describe(), spec=self.marker_spec),
            "known_ids": known,
            "test_ids": self.test_ids,
            "codes": self.codes,
            "design": None if self.design is None else self.design.path,
            "refresh_every_s": self.refresh_every,
            "order": "random" if self.closed_loop is None else "closed-loop",
            "engine": {k: v for k, v in self.engine_kw.items() if isinstance(v, str | int | float)},
            "features": dict(self.features.provenance),
            "models": {k: dict(v.provenance) for k, v in self.models.items()},
            "statistics": dict(self.monitor.settings, stats_every=self.stats_every),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self.recorder = SessionRecorder(
            self.out_dir / "recording", meta, eeg_header=self.eeg.header_xml(),
            eeg_format=self.eeg.fmt, n_channels=self.eeg.n_channels,
            marker_header=self.mk.header_xml(), marker_format=self.mk.fmt,
            marker_channels=self.mk.n_channels)
        for name, inlet in ((EEG, self.eeg), (MARKERS, self.mk)):
            off = inlet.time_correction(timeout=2.0)
            if off is not None:
                self._apply_offset(name, off)
        self._last_offset = time.monotonic()
        # counters (written by the acquisition thread only)
        self.t_start = self._clock()
        self.publisher = SnapshotPublisher(
            self.engine, interval_s=self.refresh_every,
            epoch_shape=(self.eeg.n_channels, self.core.epocher.n_times),
            annotate=self._annotate, monitor=self.monitor, stats_every=self.stats_every,
            on_stats=self._on_stats, stats_async=True)
        self.last_eeg_wall = time.monotonic()
        self.lost = False
        self.reconnects = 0
        # the back channel: blocks (closed loop) and stop requests for the presenter
        self.backchannel, self.loop = attach_back_channel(self)
        if self.loop is not None:
            self._feeding = self.loop.feeding()
        self.watch = StreamWatch(eeg=self.eeg, markers=self.mk, eeg_lost=lambda: self.lost,
                                 soa_s=None if self.design is None else self.design.soa_s)
        self.connected = True
        self._publish()

    def stop_presenter(self, reason: str) -> None:
        """Ask the presenter to stop at its next sequence (over the back channel).

        Parameters
        ----------
        reason : str
            Why (written to the presenter's run log).
        """
        if self.backchannel is not None:
            self.backchannel.stop(reason)

    def _apply_offset(self, stream: str, off: float) -> None:
        now = self._clock()
        self.recorder.offset(stream, now - off, off)
        self.core.set_offset(stream, off)

    # ------------------------------------------------------------------ run
    def start(self) -> None:
        """Connect (if needed) and start the acquisition and refresh threads."""
        if not self.connected:
            self.connect()
        from threadpoolctl import threadpool_limits

        self._blas_limit = threadpool_limits(limits=int(self.blas_threads or refresh_threads()),
                                             user_api="blas")
        self.watch.start()
        self._threads = [
            threading.Thread(target=self._guard(self._acquire), name="neuralign-acquire",
                             daemon=True),
            threading.Thread(target=self._guard(self._refresh_loop), name="neuralign-refresh",
                             daemon=True),
            threading.Thread(target=self._guard(self._publish_loop), name="neuralign-publish",
                             daemon=True),
        ]
        for t in self._threads:
            t.start()
        if self.loop is not None:
            self.loop.start()

    def _guard(self, fn):
        def run():
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - re-raised by stop()
                self._error = e
                self._stop.set()
        return run

    @property
    def running(self) -> bool:
        """Whether the worker threads are running."""
        return not self._stop.is_set()

    def _acquire(self) -> None:
        while not self._stop.is_set():
            if not self._step(pull_markers=True):
                time.sleep(self.poll_s)

    def _step(self, *, pull_markers: bool) -> bool:
        """One acquisition round; True if anything arrived."""
        got = False
        now_m = time.monotonic()
        if now_m - self._last_offset >= self.offset_every_s:
            self._last_offset = now_m
            for name, inlet in ((EEG, self.eeg), (MARKERS, self.mk)):
                off = inlet.time_correction(timeout=0.0)
                if off is not None and off != self.core.offsets[name]:
                    self._apply_offset(name, off)
        for _ in range(16):
            data, ts = self.eeg.pull()
            n = ts.shape[0]
            if n == 0:
                break
            got = True
            self.recorder.eeg(data, ts)
            with self._ring_lock:
                events = self.core.eeg(data, ts)
            self._handle(events)
            if self.lost:
                self.lost = False
                self.reconnects += 1
                self.recorder.log("eeg_back", samples=self.core.epocher.samples)
            self.last_eeg_wall = time.monotonic()
            if n < self.eeg.max_chunk:
                break
        if pull_markers:
            values, ts = self.mk.pull()
            if len(ts):
                got = True
                self.recorder.markers(values, ts)
                vals = list(values) if not self.mk.numeric else [float(v[0]) for v in values]
                if self.loop is not None:
                    self.loop.on_markers(vals)
                with self._ring_lock:
                    events = self.core.markers(vals, ts)
                self._handle(events)
        if not self.lost and time.monotonic() - self.last_eeg_wall > self.stall_s:
            self.lost = True
            self.recorder.log("eeg_lost", samples=self.core.epocher.samples)
        for event, fields in self.watch.drain():  # said out loud: the log and the status
            self.recorder.log(event, **fields)
        if not got:
            self.recorder.xdf.maybe_flush()
        return got

    def _handle(self, events: list[EpochEvent]) -> None:
        for ev in events:
            if ev.kind == "epoch":
                with self._feeding:  # closed loop: waits while a block is being chosen
                    self.engine.add_epoch(ev.stimulus_id, ev.data)
                self.publisher.accept(ev.data, latency=self._clock() - ev.onset)
                self.kept_ids.append(ev.stimulus_id)
                if self.keep_epochs:
                    self.kept.append(ev.data)
            else:
                self.publisher.reject(ev.reason)

    def _refresh_loop(self) -> None:
        self.publisher.refresh_loop(self._stop)

    def _publish_loop(self) -> None:
        # apart from the refresh worker: a refresh of many seconds does not freeze the status
        while not self._stop.wait(self.publish_every):
            self._publish()

    def _annotate(self, res: AlignmentResult) -> None:
        pub = self.publisher
        lat = pub.latency_median
        res.counts.update({
            "epochs_accepted": pub.accepted,
            "epochs_rejected": dict(pub.rejected),
            "unknown_markers": dict(self.core.unknown),
            "control_markers": int(sum(self.core.control.values())),
            "markers_received": self.core.n_markers,
            "gaps": len(self.core.epocher.gaps),
            "dropped_samples": int(self.core.epocher.dropped),
            "eeg_reconnects": self.reconnects,
            **self.watch.describe(),
            "latency_median_s": lat if np.isfinite(lat) else None,
        })
        res.settings.setdefault("live", {
            "epoching": self.settings.to_dict(), "eeg_stream": self.eeg.name,
            "marker_stream": self.mk.name, "refresh_every_s": self.refresh_every,
            "scoring": "design test set" if self.test_ids else "nested cross-validation",
            "order": "random" if self.closed_loop is None else "closed-loop",
        })

    def _on_stats(self, stats: Statistics) -> None:
        """Refresh worker: end the session when the stopping rule holds (once)."""
        st = stats.stopping
        if st is None or not st.satisfied or self.rule_met.is_set() or self._stopping:
            return
        self.stop_reason = (f"stop rule met after {stats.n_epochs} epochs: "
                            f"{self.monitor.rule.text}")
        self.rule_met.set()
        self.stop_presenter(self.stop_reason)

    def _publish(self, *, finished: bool = False) -> None:
        ep = self.core.epocher
        fs = ep.fs
        with self._ring_lock:
            n = min(ep.ring.filled, int(self.scope_s * fs))
            if n:
                data, ts = ep.ring.window(ep.ring.total - n, ep.ring.total)
                scope, scope_t = data.T, ts
            else:
                scope, scope_t = None, None
            pending = len(ep.pending)
            samples, dropped, gaps = ep.samples, ep.dropped, len(ep.gaps)
            fill = ep.ring.filled / ep.ring.capacity
        mt = ()
        if scope_t is not None and scope_t.size:
            mt = tuple(t for t in self.core.marker_times[-200:] if scope_t[0] <= t <= scope_t[-1])
        pub = self.publisher
        health = StreamHealth(
            eeg_name=self.eeg.name, marker_name=self.mk.name, sfreq=fs,
            n_channels=self.eeg.n_channels, ch_names=tuple(self.eeg.ch_names),
            connected=not self.lost, buffer_fill=fill, samples_received=samples,
            dropped_samples=int(dropped), reconnects=self.reconnects, gaps=gaps,
            latency_s=pub.latency_last, markers_received=self.core.n_markers,
            eeg_source_id=self.eeg.source_id,
            stalled_s=max(0.0, time.monotonic() - self.last_eeg_wall),
            pending_markers=pending, latency_median_s=pub.latency_median,
            markers_connected=self.watch.markers_connected, problem=self.watch.problem,
        )
        pub.publish(health, session_time=self._clock() - self.t_start, times=ep.times,
                    scope=scope, scope_times=scope_t, marker_times=mt,
                    unknown_markers=int(sum(self.core.unknown.values())),
                    unknown_ids=tuple(sorted(self.core.unknown)),
                    control_markers=int(sum(self.core.control.values())), finished=finished)

    # ------------------------------------------------------------------ stop
    def stop(self, *, drain_s: float | None = None) -> AlignmentResult:
        """Stop, let pending epochs complete (up to ``drain_s``), flush, final refresh."""
        if not self.connected:
            raise NeuralignError("session was never connected")
        self._stopping = True
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        self._threads = []
        if self.loop is not None:
            self.loop.stop()
        self.watch.stop()
        if self._error is None:
            # drain: EEG only (no new markers), until pending markers complete
            s = self.settings
            limit = time.monotonic() + (drain_s if drain_s is not None else s.tmax + 0.5)
            while self.core.epocher.pending and time.monotonic() < limit and not self.lost:
                if not self._step(pull_markers=False):
                    time.sleep(0.005)
        with self._ring_lock:
            events = self.core.flush()
        self._handle(events)
        # The final maps: one more refresh (alphas re-selected). `neuralign analyze` builds its
        # engine exactly like this one (all the features' stimuli, the design's test ids, the
        # same engine settings) and feeds it the recording's epochs in the same order, so live
        # and offline agree to rounding. The eigendecompositions that live refreshes extend
        # are rebuilt, so the arithmetic is the offline one.
        res = self.publisher.refresh(select_alphas=True, reanchor=True, stats=True)
        final = dict(res.counts)
        final.pop("refresh_s", None)
        for event, fields in self.watch.drain():
            self.recorder.log(event, **fields)
        if self.stop_reason:
            self.recorder.log("stop_rule_met", reason=self.stop_reason)
            final["stop_reason"] = self.stop_reason
        self.recorder.close(final=final)
        self.eeg.close()
        self.mk.close()
        if self.backchannel is not None:
            self.backchannel.close()
        self._publish(finished=True)
        self.connected = False
        if self._blas_limit is not None:
            self._blas_limit.restore_original_limits()
            self._blas_limit = None
        if self._error is not None:
            raise self._error
        return res

    def connected_line(self) -> str:
        """The ``connected: ...`` line commands print (``neuralign session`` watches for it).

        Returns
        -------
        str
            Streams, scoring and where the recording goes.
        """
        scoring = "design test set" if self.test_ids else "nested cross-validation"
        return (f"connected: {self.eeg.name} ({self.eeg.n_channels} ch @ {self.eeg.sfreq:g} Hz), "
                f"markers {self.mk.name}; scoring: {scoring}; recording to {self.recorder.dir}")

    def status_line(self) -> str:
        """A one-line status (:meth:`Snapshot.status_line`; ``"connecting..."`` before)."""
        return "connecting..." if self.snapshot is None else self.snapshot.status_line()

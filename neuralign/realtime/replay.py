"""In-process replay: feed an :class:`~neuralign.base.EpochData` through an
:class:`~neuralign.align.AlignmentEngine` in a worker thread, as if live.

The worker advances a replay clock at ``speed`` times real time (``inf`` = as fast as possible),
adds each epoch once the clock has passed its end (onset + tmax), and tells the shared
:class:`~neuralign.realtime.publisher.SnapshotPublisher`, whose refresh loop re-solves the maps
every ``refresh_interval`` seconds in a second thread. :meth:`ReplaySource.latest` hands out the
published :class:`~neuralign.realtime.snapshot.Snapshot` without locking. No Qt here: the same
source drives the window and ``replay --headless``.
"""

from __future__ import annotations

import inspect
import math
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from ..base import EpochData, FeatureSet, fill_doc
from ..errors import NeuralignError
from .publisher import SnapshotPublisher
from .snapshot import Snapshot, StreamHealth
from .source import SnapshotSource

DEFAULT_SOA_S = 0.2  # THINGS-EEG2 RSVP: 100 ms on, 100 ms off
#: Refresh errors a replay lives with (e.g. too few stimuli yet): shown, and playing goes on.
TOLERATED = (NeuralignError, ValueError, np.linalg.LinAlgError)


@fill_doc
def make_engine(data: EpochData, features: FeatureSet, **engine_kw):
    """An :class:`~neuralign.align.AlignmentEngine` on ``data``'s axes and test set.

    Parameters
    ----------
    %(epoch_data)s
        Its times, channels and test set make the engine's axes.
    %(features)s
    %(engine_kw)s

    Returns
    -------
    AlignmentEngine | ModelGroup
        An empty engine (a :class:`~neuralign.align.ModelGroup` when ``features`` maps
        several labels to feature sets).
    """
    from ..align.engine import AlignmentEngine
    from ..align.group import ModelGroup

    if isinstance(features, dict):
        if len(features) > 1:
            return ModelGroup(features, times=data.times, ch_names=list(data.ch_names),
                              test_ids=data.test_ids, **engine_kw)
        features = next(iter(features.values()))
    return AlignmentEngine(features, times=data.times, ch_names=list(data.ch_names),
                           test_ids=data.test_ids, **engine_kw)


def _onsets(data: EpochData, soa: float | None) -> np.ndarray:
    n = data.n_epochs
    given = data.info.get("onsets_s") if soa is None else None
    if given is not None and len(given) == n:
        on = np.asarray(given, dtype=float)
        if np.all(np.isfinite(on)) and np.all(np.diff(on) >= 0):
            return on - on[0]
    step = float(data.info.get("soa_s", DEFAULT_SOA_S)) if soa is None else float(soa)
    if not step > 0:
        raise NeuralignError(f"the stimulus onset asynchrony must be > 0 s, got {step}")
    return np.arange(n, dtype=float) * step


class ReplaySource(SnapshotSource):
    """Play epochs through an engine at a chosen speed; publish snapshots.

    Parameters
    ----------
    data : EpochData
        The epochs to play, in order.
    engine : AlignmentEngine
        Has ``add_epoch(stimulus_id, epoch) -> bool``, ``refresh() -> AlignmentResult``,
        ``n_epochs`` and ``n_stimuli_seen``. Only the worker threads touch it.
    speed : float
        Replay clock speed relative to real time; ``math.inf`` plays as fast as possible.
    soa : float | None
        Seconds between stimulus onsets; default ``data.info["onsets_s"]`` or
        ``data.info["soa_s"]`` or 0.2 s.
    refresh_interval : float
        Wall seconds between map refreshes (re-solves).
    scope_seconds : float
        Length of the scrolling EEG window in the snapshots.
    name : str
        Shown as the stream name.
    loop : bool
        Start again from the first epoch when the data run out (a demo loop; the engine keeps
        accumulating, so maps sharpen as if repetitions continued).
    monitor : StatisticsMonitor | None
        Intervals, masks, ranking and stopping rule after every ``stats_every``-th refresh;
        when the rule holds, the replay stops (:attr:`stop_reason`).
    stats_every : int
        Refreshes between two evaluations of the statistics.
    """

    controls = frozenset({"pause", "speed", "refresh_interval"})

    def __init__(
        self,
        data: EpochData,
        engine,
        *,
        speed: float = 1.0,
        soa: float | None = None,
        refresh_interval: float = 1.0,
        scope_seconds: float = 4.0,
        name: str = "replay",
        loop: bool = False,
        monitor=None,
        stats_every: int = 1,
    ) -> None:
        self.data = data
        self.engine = engine
        self.onsets = _onsets(data, soa)
        self.name = name
        self.loop = loop
        self.scope_seconds = float(scope_seconds)
        self._speed = 1.0
        self.set_speed(speed)
        self.publisher = SnapshotPublisher(engine, interval_s=refresh_interval,
                                           epoch_shape=data.epochs.shape[1:],
                                           tolerate=TOLERATED, monitor=monitor,
                                           stats_every=stats_every, on_stats=self._on_stats)
        self.rule_met = threading.Event()
        self.stop_reason: str | None = None
        self._final = False  # the last refresh was a final one
        self._paused = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.finished = False
        # worker state
        self._i = 0
        self._pass = 0
        self._clock = 0.0
        self._recent: deque[tuple[float, int]] = deque()

    # ------------------------------------------------------------------ controls
    @property
    def speed(self) -> float:
        """Replay clock speed (x real time; ``inf`` = as fast as possible)."""
        return self._speed

    def set_speed(self, speed: float) -> None:
        """Set the clock speed.

        Parameters
        ----------
        speed : float
            x real time; ``inf`` or any value <= 0 means as fast as possible.
        """
        speed = float(speed)
        self._speed = math.inf if (speed <= 0 or not math.isfinite(speed)) else speed

    @property
    def paused(self) -> bool:
        """Whether the replay clock is paused."""
        return self._paused.is_set()

    def set_paused(self, paused: bool) -> None:
        """Pause or resume the replay clock (no epochs and no refreshes while paused).

        Parameters
        ----------
        paused : bool
            True pauses.
        """
        (self._paused.set if paused else self._paused.clear)()

    @property
    def refresh_interval(self) -> float:
        """Wall seconds between map refreshes."""
        return self.publisher.interval_s

    def set_refresh_interval(self, seconds: float) -> None:
        """Set the seconds between map refreshes (from the next tick on).

        Parameters
        ----------
        seconds : float
            Seconds (negative values count as 0).
        """
        self.publisher.interval_s = max(0.0, float(seconds))

    @property
    def error(self) -> str | None:
        """The last tolerated refresh error (e.g. too few stimuli yet), else ``None``."""
        return self.publisher.error

    @property
    def refreshing(self) -> bool:
        """True while a map refresh is running."""
        return self.publisher.refreshing

    @property
    def progress(self) -> float:
        """Fraction of the epochs played in the current pass."""
        n = self.data.n_epochs
        return self._i / n if n else 1.0

    @property
    def running(self) -> bool:
        """Whether the worker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start (or resume after :meth:`stop`) the worker thread."""
        if self.running:
            self.set_paused(False)
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="neuralign-replay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the worker (it finishes the step it is in: a refresh may take a moment).

        Parameters
        ----------
        timeout : float | None
            Seconds to wait for the worker (``None``: as long as it takes).
        """
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def _on_stats(self, stats) -> None:
        """Refresh thread: stop the replay when the stopping rule holds (once)."""
        st = stats.stopping
        if st is not None and st.satisfied and not self.rule_met.is_set():
            self.stop_reason = f"stop rule met after {stats.n_epochs} epochs: {st.detail['rule']}"
            self.rule_met.set()
            self._stop.set()

    def latest(self) -> Snapshot | None:
        """The newest snapshot (``None`` before the worker started)."""
        return self.publisher.snapshot

    def final_result(self):
        """Stop, wait for a running refresh, and make the final maps (and statistics).

        An engine's final maps are those of a live session's end (alphas re-selected,
        eigendecompositions rebuilt: what ``analyze`` computes); a refresh runs unless the
        last one already was that. Blocks for up to one refresh: call it after the window
        has closed (or headless).

        Returns
        -------
        AlignmentResult | None
            The final maps (``None`` when no refresh succeeded).
        """
        self.stop(timeout=None)
        pub = self.publisher
        n_in_result = -1 if pub.result is None else int(pub.result.counts.get("n_epochs", -1))
        kw = self._final_kw()
        if self.engine.n_epochs and (n_in_result != int(self.engine.n_epochs)
                                     or (kw and not self._final)):
            pub.refresh(stats=True, **kw)
            self._final = True
            self._publish()
        elif pub.monitor is not None and pub.result is not None and (
                pub.stats is None or pub.stats.n_epochs != int(self.engine.n_epochs)):
            pub.evaluate_statistics()
            self._publish()
        return pub.result

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the replay has finished (not looping) or stopped.

        Parameters
        ----------
        timeout : float | None
            Seconds to wait at most.

        Returns
        -------
        bool
            True if the worker has ended.
        """
        t = self._thread
        if t is None:
            return self.finished
        t.join(timeout)
        return not t.is_alive()

    def run_to_end(self, *, progress: Callable[[int], None] | None = None,
                   refresher: bool = False) -> Snapshot:
        """Play everything in the calling thread at ``speed``, refresh once at the end.

        Parameters
        ----------
        progress : callable | None
            Called with 1 after each epoch (a progress bar's ``update``).
        refresher : bool
            Refresh the maps (and the statistics) every ``refresh_interval`` seconds while
            playing, in a second thread (a stopping rule needs them); else only at the end.

        Returns
        -------
        Snapshot
            The last snapshot, with the final maps.
        """
        self._stop.clear()
        self._run(progress=progress, refresher=refresher)
        return self.publisher.snapshot

    # ------------------------------------------------------------------ worker
    def _run(self, progress: Callable[[int], None] | None = None, refresher: bool = True) -> None:
        """Feeder loop; map refreshes run in a second thread so feeding keeps real time."""
        n = self.data.n_epochs
        tmax = float(self.data.times[-1]) if self.data.times.size else 0.0
        feeding_done = threading.Event()
        ref_thread = None
        if refresher:
            ref_thread = threading.Thread(
                target=self.publisher.refresh_loop, args=(self._stop,),
                kwargs={"done": feeding_done, "paused": self._paused.is_set},
                name="neuralign-refresh", daemon=True,
            )
            ref_thread.start()
        last_wall = time.monotonic()
        last_publish = 0.0
        self._publish()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._paused.is_set():
                    last_wall = now
                    self._publish()
                    self._stop.wait(0.05)
                    continue
                if math.isinf(self._speed):
                    self._clock = self.onsets[min(self._i + 63, n - 1)] + tmax if n else 0.0
                else:
                    self._clock += (now - last_wall) * self._speed
                last_wall = now
                fed = 0
                while self._i < n and self.onsets[self._i] + tmax <= self._clock and fed < 64:
                    self._feed(self._i)
                    self._i += 1
                    fed += 1
                    if progress is not None:
                        progress(1)
                if self._i >= n:
                    if self.loop and n:
                        self._pass += 1
                        self._i = 0
                        self._clock = 0.0
                        self._recent.clear()
                        continue
                    break
                t = time.monotonic()
                if t - last_publish >= 0.05 or (fed and not math.isinf(self._speed)):
                    self._publish()
                    last_publish = t
                if not math.isinf(self._speed):
                    wait = (self.onsets[self._i] + tmax - self._clock) / self._speed
                    self._stop.wait(min(max(wait, 0.0), 0.02))
        finally:
            feeding_done.set()
            if ref_thread is not None:
                ref_thread.join()
            elif not self._stop.is_set() and self.engine.n_epochs:
                self.publisher.refresh(**self._final_kw())
                self._final = True
            if self._i >= n and not self._stop.is_set():
                self.finished = True
            self._publish()

    def _final_kw(self) -> dict:
        """Options of a final refresh, for the engines that take them."""
        eng = self.engine
        try:
            params = inspect.signature(eng.refresh).parameters
        except (TypeError, ValueError):
            params = {}
        if hasattr(eng, "engines") or "reanchor" in params:
            return {"select_alphas": True, "reanchor": True}
        return {}

    def _feed(self, i: int) -> None:
        epoch = self.data.epochs[i]
        t = time.monotonic()
        ok = bool(self.engine.add_epoch(str(self.data.stimulus_ids[i]), epoch))
        if ok:
            self.publisher.accept(epoch, latency=time.monotonic() - t)
        else:
            self.publisher.reject("stimulus not in features")
        self._recent.append((float(self.onsets[i]), i))
        horizon = self._clock - self.scope_seconds - (self.data.times[-1] - self.data.times[0])
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()

    def _scope(self) -> tuple[np.ndarray | None, np.ndarray | None, tuple[float, ...]]:
        data = self.data
        sf = data.sfreq
        if not math.isfinite(sf) or sf <= 0:
            return None, None, ()
        n = max(2, int(round(self.scope_seconds * sf)))
        start = self._clock - self.scope_seconds
        grid = start + np.arange(n) / sf
        scope = np.full((data.epochs.shape[1], n), np.nan, dtype=np.float32)
        markers = []
        for onset, i in self._recent:
            idx = np.rint((onset + data.times - start) * sf).astype(np.int64)
            ok = (idx >= 0) & (idx < n)
            if ok.any():
                scope[:, idx[ok]] = data.epochs[i][:, ok]
            if start <= onset <= self._clock:
                markers.append(onset)
        # markers of epochs not complete yet (their onset passed, the epoch end has not)
        j = self._i
        while j < len(self.onsets) and self.onsets[j] <= self._clock:
            if self.onsets[j] >= start:
                markers.append(float(self.onsets[j]))
            j += 1
        return scope, grid, tuple(sorted(set(markers)))

    def _publish(self) -> None:
        data = self.data
        n_ep, n_ch, n_t = data.epochs.shape
        scope, scope_times, markers = self._scope()
        played = self._i + self._pass * n_ep
        pub = self.publisher
        health = StreamHealth(
            eeg_name=f"replay: {self.name}",
            marker_name=f"replay: {self.name} (stimulus ids)",
            sfreq=data.sfreq,
            n_channels=n_ch,
            ch_names=tuple(data.ch_names),
            connected=not self.finished,
            buffer_fill=min(1.0, self._clock / self.scope_seconds) if self.scope_seconds else 1.0,
            samples_received=played * n_t,
            latency_s=pub.latency_last,
            markers_received=played,
        )
        pub.publish(health, session_time=self._clock, times=data.times, scope=scope,
                    scope_times=scope_times, marker_times=markers,
                    unknown_markers=int(sum(pub.rejected.values())), finished=self.finished)

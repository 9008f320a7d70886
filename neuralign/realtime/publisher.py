"""The refresh worker and snapshot publisher that live sessions and replays share.

A source (a live session, a replay) feeds epochs to an
:class:`~neuralign.align.AlignmentEngine` in its own thread and tells the
:class:`SnapshotPublisher` about each one (:meth:`SnapshotPublisher.accept`,
:meth:`SnapshotPublisher.reject`: O(C T), nothing slow). The publisher's refresh loop
(:meth:`SnapshotPublisher.refresh_loop`, in a second thread) re-solves the maps at most every
``interval_s`` seconds while new epochs arrive, and :meth:`SnapshotPublisher.publish` builds
the immutable :class:`~neuralign.realtime.snapshot.Snapshot` that
:attr:`SnapshotPublisher.snapshot` hands to readers (one attribute read, no lock).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter, deque
from collections.abc import Callable

import numpy as np

from ..align.data import AlignmentResult
from ..align.monitor import Statistics, StatisticsMonitor
from .snapshot import Snapshot, StreamHealth


def frozen(a: np.ndarray | None) -> np.ndarray | None:
    """A read-only copy of ``a`` (``None`` stays ``None``): safe to hand to other threads.

    Parameters
    ----------
    a : ndarray | None
        Any array.

    Returns
    -------
    ndarray | None
        A copy with ``writeable=False``.
    """
    if a is None:
        return None
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


class SnapshotPublisher:
    """Counts epochs, refreshes an engine's maps in a worker loop, publishes snapshots.

    Parameters
    ----------
    engine : AlignmentEngine | ModelGroup
        The engine the source feeds (``refresh()``, ``n_epochs``, ``n_stimuli_seen``); a
        :class:`~neuralign.align.ModelGroup` for several models (its first model's maps are
        :attr:`result`, all of them :attr:`results`).
    interval_s : float
        Seconds between map refreshes (at most; only when new epochs arrived). May be changed
        while the loop runs.
    epoch_shape : (int, int)
        ``(n_channels, n_times)`` of the epochs.
    tolerate : tuple of exception types
        Refresh errors that are recorded in :attr:`error` (the loop goes on, e.g. "too few
        stimuli yet"); any other error ends the loop and propagates.
    annotate : callable | None
        ``annotate(result)`` adds the source's own counts to each new result.
    monitor : StatisticsMonitor | None
        Intervals, masks, ranking and the stopping rule, evaluated after every
        ``stats_every``-th refresh (and on a final one); None: none.
    stats_every : int
        Refreshes between two evaluations of the statistics (they may be slower than the
        maps: 1 = every refresh).
    on_stats : callable | None
        ``on_stats(statistics)`` after each evaluation (e.g. to stop when the rule holds).
    stats_async : bool
        Evaluate the statistics in a thread of their own beside the refresh loop (the maps
        keep their cadence while a slower evaluation runs; each evaluation takes the newest
        refresh). False: right after the refresh, in its thread.
    """

    def __init__(self, engine, *, interval_s: float, epoch_shape: tuple[int, int],
                 tolerate: tuple[type[BaseException], ...] = (),
                 annotate: Callable[[AlignmentResult], None] | None = None,
                 monitor: StatisticsMonitor | None = None, stats_every: int = 1,
                 on_stats: Callable[[Statistics], None] | None = None,
                 stats_async: bool = False) -> None:
        self.engine = engine
        self.stats_async = bool(stats_async)
        self._stats_lock = threading.Lock()
        self._stats_due = threading.Event()
        self.monitor = monitor
        self.stats_every = max(1, int(stats_every))
        self.on_stats = on_stats
        self.stats: Statistics | None = None
        self.results: dict[str, AlignmentResult] | None = None
        self.interval_s = float(interval_s)
        self.tolerate = tolerate
        self.annotate = annotate
        self.accepted = 0
        self.rejected: Counter = Counter()
        self.erp_sum = np.zeros(epoch_shape, dtype=np.float64)
        self.latencies: deque[float] = deque(maxlen=10000)
        self.result: AlignmentResult | None = None
        self.n_refreshes = 0
        self.refresh_s = float("nan")
        self.last_refresh_wall = float("nan")
        self.error: str | None = None
        self.refreshing = False
        self.snapshot: Snapshot | None = None

    # ------------------------------------------------------------------ epochs
    def accept(self, epoch: np.ndarray, *, latency: float) -> None:
        """Count an epoch the engine took.

        Parameters
        ----------
        epoch : ndarray, shape (n_channels, n_times)
            The epoch (added to the running ERP).
        latency : float
            Seconds from its marker (or its feeding) to the engine.
        """
        self.accepted += 1
        self.erp_sum += epoch
        self.latencies.append(float(latency))

    def reject(self, reason: str) -> None:
        """Count an epoch that did not reach the engine.

        Parameters
        ----------
        reason : str
            Why (``"flat"``, ``"stimulus not in features"``...).
        """
        self.rejected[reason] += 1

    @property
    def latency_median(self) -> float:
        """Median latency over all accepted epochs (NaN before the first)."""
        lat = list(self.latencies)
        return statistics.median(lat) if lat else float("nan")

    @property
    def latency_last(self) -> float:
        """Latency of the last accepted epoch (NaN before the first)."""
        return self.latencies[-1] if self.latencies else float("nan")

    # ------------------------------------------------------------------ refreshes
    @property
    def engines(self) -> dict:
        """Model label -> engine (one entry, ``"model"``, for a single engine)."""
        group = getattr(self.engine, "engines", None)
        return dict(group) if group is not None else {"model": self.engine}

    def refresh(self, *, stats: bool | None = None, **kw) -> AlignmentResult | None:
        """Re-solve the maps now, in the calling thread.

        Parameters
        ----------
        stats : bool | None
            Evaluate the statistics after this refresh (True), not (False), or on every
            ``stats_every``-th refresh (None).
        **kw
            Passed to the engine's ``refresh`` (e.g. ``select_alphas=True, reanchor=True``
            for a session's final maps).

        Returns
        -------
        AlignmentResult | None
            The new result, or ``None`` when a tolerated error occurred (see :attr:`error`).
        """
        t0 = time.monotonic()
        self.refreshing = True
        try:
            res = self.engine.refresh(**kw)
        except self.tolerate as e:
            self.error = str(e)
            return None
        finally:
            self.refreshing = False
        results = res if isinstance(res, dict) else None
        if results is not None:
            res = next(iter(results.values()))
        for r in (results or {"": res}).values():
            if self.annotate is not None:
                self.annotate(r)
        self.results = results
        self.result = res
        self.error = None
        self.refresh_s = time.monotonic() - t0
        self.last_refresh_wall = time.time()
        self.n_refreshes += 1
        due = stats if stats is not None else (self.n_refreshes - 1) % self.stats_every == 0
        if self.monitor is not None and due:
            if self.stats_async and stats is None:
                self._stats_due.set()  # the statistics thread takes it
            else:
                self.evaluate_statistics()
        return res

    def evaluate_statistics(self) -> Statistics | None:
        """Evaluate the monitor on the last refresh now (None without a monitor).

        Returns
        -------
        Statistics | None
            Also kept in :attr:`stats` (and given to ``on_stats``).
        """
        if self.monitor is None:
            return None
        with self._stats_lock:  # one evaluation at a time (the rule keeps a history)
            self._stats_due.clear()
            stats = self.monitor.evaluate(self.engines, n_epochs=int(self.engine.n_epochs))
            self.stats = stats
        if self.on_stats is not None:
            self.on_stats(stats)
        return stats

    def stats_loop(self, stop: threading.Event) -> None:
        """Evaluate the statistics whenever a refresh asks for it, until ``stop`` is set.

        Parameters
        ----------
        stop : threading.Event
            Ends the loop (an evaluation asked for and not started yet runs first).
        """
        while not stop.is_set():
            if self._stats_due.wait(0.1):
                self.evaluate_statistics()
        if self._stats_due.is_set():
            self.evaluate_statistics()

    def refresh_loop(self, stop: threading.Event, *, done: threading.Event | None = None,
                     paused: Callable[[], bool] = lambda: False,
                     on_tick: Callable[[], None] | None = None) -> None:
        """Refresh while new epochs arrive, until ``stop`` (or ``done``) is set.

        Parameters
        ----------
        stop : threading.Event
            Ends the loop at once.
        done : threading.Event | None
            Set when the feeding has ended: one last refresh (if epochs came in), then the
            loop ends.
        paused : callable
            No refreshes while it returns True (except the last one).
        on_tick : callable | None
            Called on every tick (about five times a second), e.g. to publish a snapshot.
        """
        worker, ended = None, threading.Event()
        if self.monitor is not None and self.stats_async:
            worker = threading.Thread(target=self.stats_loop, args=(ended,), daemon=True,
                                      name="neuralign-statistics")
            worker.start()
        try:
            self._refresh_loop(stop, done, paused, on_tick)
        finally:
            ended.set()
            if worker is not None:
                worker.join()

    def _refresh_loop(self, stop, done, paused, on_tick) -> None:
        last, n_last = time.monotonic() - self.interval_s, 0
        while not stop.is_set():
            finished = done is not None and done.is_set()
            n = int(self.engine.n_epochs)
            due = time.monotonic() - last >= self.interval_s
            if n != n_last and (finished or (due and not paused())):
                last, n_last = time.monotonic(), n
                self.refresh()
            if on_tick is not None:
                on_tick()
            if finished:
                return
            (done if done is not None else stop).wait(min(max(self.interval_s, 0.05), 0.2))

    # ------------------------------------------------------------------ snapshots
    def publish(self, health: StreamHealth, *, session_time: float, times: np.ndarray,
                scope: np.ndarray | None = None, scope_times: np.ndarray | None = None,
                marker_times: tuple[float, ...] = (), unknown_markers: int = 0,
                unknown_ids: tuple[str, ...] = (), control_markers: int = 0,
                finished: bool = False) -> Snapshot:
        """Build the current snapshot and make it :attr:`snapshot`.

        Parameters
        ----------
        health : StreamHealth
            The state of the streams (or of the replay).
        session_time : float
            Seconds since the session (or replay clock) started.
        times : ndarray
            The epoch time axis.
        scope, scope_times : ndarray | None
            The last seconds of raw EEG ``(C, n)`` and their times.
        marker_times : tuple of float
            Stimulus onsets inside the scope window.
        unknown_markers : int
            Markers whose id is not in the features.
        unknown_ids : tuple of str
            Those ids.
        control_markers : int
            Control markers seen (block starts, breaks...).
        finished : bool
            The source has ended.

        Returns
        -------
        Snapshot
            The published snapshot.
        """
        erp = self.erp_sum / self.accepted if self.accepted else None
        self.snapshot = Snapshot(
            wall_time=time.time(), session_time=session_time, health=health,
            epochs_accepted=self.accepted, epochs_rejected=int(sum(self.rejected.values())),
            rejected_reasons=dict(self.rejected),
            stimuli_seen=int(self.engine.n_stimuli_seen), unknown_markers=int(unknown_markers),
            refresh_s=self.refresh_s, last_refresh_wall=self.last_refresh_wall,
            result=self.result, erp=frozen(erp), times=frozen(times), scope=frozen(scope),
            scope_times=frozen(scope_times), marker_times=tuple(marker_times),
            control_markers=int(control_markers), unknown_ids=tuple(unknown_ids),
            n_refreshes=self.n_refreshes, finished=finished,
            results=self.results, stats=self.stats,
        )
        return self.snapshot

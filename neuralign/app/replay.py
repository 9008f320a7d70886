"""In-process replay: feed an :class:`~neuralign.offline.datasets.EpochData` through an
:class:`~neuralign.align.engine.AlignmentEngine` in a worker thread, as if live.

The worker advances a replay clock at ``speed`` times real time (``inf`` = as fast as possible),
adds each epoch once the clock has passed its end (onset + tmax), refreshes the maps every
``refresh_interval`` wall seconds, and publishes immutable
:class:`~neuralign.realtime.snapshot.Snapshot` objects that :meth:`ReplaySource.latest` hands
out without locking. No Qt here: the same source drives the window and ``replay --headless``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from ..errors import NeuralignError
from ..offline.datasets import EpochData
from ..realtime.snapshot import Snapshot, StreamHealth

DEFAULT_SOA_S = 0.2  # THINGS-EEG2 RSVP: 100 ms on, 100 ms off


def make_engine(data: EpochData, features, **engine_kw):
    """An :class:`~neuralign.align.engine.AlignmentEngine` on ``data``'s axes and test set."""
    from ..align.engine import AlignmentEngine

    return AlignmentEngine(
        features,
        times=data.times,
        ch_names=list(data.ch_names),
        test_ids=data.test_ids,
        **engine_kw,
    )


def _onsets(data: EpochData, soa: float | None) -> np.ndarray:
    n = data.epochs.shape[0]
    given = data.info.get("onsets_s") if soa is None else None
    if given is not None and len(given) == n:
        on = np.asarray(given, dtype=float)
        if np.all(np.isfinite(on)) and np.all(np.diff(on) >= 0):
            return on - on[0]
    step = float(data.info.get("soa_s", DEFAULT_SOA_S)) if soa is None else float(soa)
    if not step > 0:
        raise NeuralignError(f"the stimulus onset asynchrony must be > 0 s, got {step}")
    return np.arange(n, dtype=float) * step


class ReplaySource:
    """Play epochs through an engine at a chosen speed; publish snapshots.

    Parameters
    ----------
    data : EpochData
        The epochs to play, in order.
    engine : AlignmentEngine-like
        Has ``add_epoch(stimulus_id, epoch) -> bool``, ``refresh() -> AlignmentResult``,
        ``n_epochs`` and ``n_stimuli_seen``. Only the worker thread touches it.
    speed : float
        Replay clock speed relative to real time; ``math.inf`` plays as fast as possible.
    soa : float, optional
        Seconds between stimulus onsets; default ``data.info["onsets_s"]`` or
        ``data.info["soa_s"]`` or 0.2 s.
    refresh_interval : float
        Wall seconds between map refreshes (re-solves) in the worker.
    scope_seconds : float
        Length of the scrolling EEG window in the snapshots.
    name : str
        Shown as the stream name.
    loop : bool
        Start again from the first epoch when the data run out (a demo loop; the engine keeps
        accumulating, so maps sharpen as if repetitions continued).
    """

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
    ) -> None:
        self.data = data
        self.engine = engine
        self.onsets = _onsets(data, soa)
        self.name = name
        self.loop = loop
        self.scope_seconds = float(scope_seconds)
        self._speed = 1.0
        self.set_speed(speed)
        self.refresh_interval = float(refresh_interval)
        self._paused = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._latest: Snapshot | None = None
        self.error: str | None = None
        self.finished = False
        self.n_refreshes = 0
        self.refreshing = False
        self._t0_wall = time.time()
        # worker state
        self._i = 0
        self._pass = 0
        self._clock = 0.0
        self._accepted = 0
        self._rejected = 0
        self._erp_sum = np.zeros(data.epochs.shape[1:], dtype=np.float64)
        self._recent: deque[tuple[float, int]] = deque()
        self._result = None
        self._refresh_s = float("nan")
        self._last_refresh_wall = float("nan")
        self._latency = float("nan")

    # ------------------------------------------------------------------ controls
    @property
    def speed(self) -> float:
        return self._speed

    def set_speed(self, speed: float) -> None:
        """Clock speed (x real time); ``inf`` or any value <= 0 means as fast as possible."""
        speed = float(speed)
        self._speed = math.inf if (speed <= 0 or not math.isfinite(speed)) else speed

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def set_paused(self, paused: bool) -> None:
        (self._paused.set if paused else self._paused.clear)()

    def set_refresh_interval(self, seconds: float) -> None:
        self.refresh_interval = max(0.0, float(seconds))

    @property
    def progress(self) -> float:
        """Fraction of the epochs played in the current pass."""
        n = self.data.epochs.shape[0]
        return self._i / n if n else 1.0

    @property
    def running(self) -> bool:
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
        """Stop the worker (it finishes the step it is in: a refresh may take a moment)."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def latest(self) -> Snapshot | None:
        return self._latest

    def final_result(self):
        """Stop, wait for a running refresh, refresh once more if epochs came in since; result.

        Blocks for up to one refresh: call it after the window has closed (or headless).
        """
        self.stop(timeout=None)
        n_in_result = -1
        if self._result is not None:
            n_in_result = int(self._result.counts.get("n_epochs", -1))
        if self.engine.n_epochs and n_in_result != int(self.engine.n_epochs):
            self._refresh()
            self._publish()
        return self._result

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the replay has finished (not looping) or stopped; True if it did."""
        t = self._thread
        if t is None:
            return self.finished
        t.join(timeout)
        return not t.is_alive()

    def run_to_end(self, *, progress: Callable[[int], None] | None = None) -> Snapshot:
        """Play everything in the calling thread at ``speed``, refresh once at the end."""
        self._stop.clear()
        self._run(progress=progress, refresher=False)
        assert self._latest is not None
        return self._latest

    # ------------------------------------------------------------------ worker
    def _run(self, progress: Callable[[int], None] | None = None, refresher: bool = True) -> None:
        """Feeder loop; map refreshes run in a second thread so feeding keeps real time."""
        data = self.data
        n = data.epochs.shape[0]
        tmax = float(data.times[-1]) if data.times.size else 0.0
        feeding_done = threading.Event()
        ref_thread = None
        if refresher:
            ref_thread = threading.Thread(
                target=self._refresh_loop, args=(feeding_done,), name="neuralign-refresh",
                daemon=True,
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
                self._refresh()
            if self._i >= n and not self._stop.is_set():
                self.finished = True
            self._publish()

    def _refresh_loop(self, feeding_done: threading.Event) -> None:
        """Re-solve every ``refresh_interval`` s while new epochs arrive; once more at the end."""
        last_n = 0
        while True:
            done = feeding_done.wait(max(self.refresh_interval, 0.05))
            if self._stop.is_set():
                return
            if self._paused.is_set() and not done:
                continue
            n_now = int(self.engine.n_epochs)
            if n_now != last_n:
                last_n = n_now
                self._refresh()  # the feeder thread publishes the new result
            if done:
                return

    def _feed(self, i: int) -> None:
        epoch = self.data.epochs[i]
        t = time.monotonic()
        ok = bool(self.engine.add_epoch(str(self.data.stimulus_ids[i]), epoch))
        self._latency = time.monotonic() - t
        if ok:
            self._accepted += 1
            self._erp_sum += epoch
        else:
            self._rejected += 1
        self._recent.append((float(self.onsets[i]), i))
        horizon = self._clock - self.scope_seconds - (self.data.times[-1] - self.data.times[0])
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()

    def _refresh(self) -> None:
        t = time.monotonic()
        self.refreshing = True
        try:
            self._result = self.engine.refresh()
            self.error = None
        except (NeuralignError, ValueError, np.linalg.LinAlgError) as e:
            self.error = str(e)  # e.g. too few stimuli yet; keep playing
            return
        finally:
            self.refreshing = False
        self._refresh_s = time.monotonic() - t
        self._last_refresh_wall = time.time()
        self.n_refreshes += 1

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
        health = StreamHealth(
            eeg_name=f"replay: {self.name}",
            marker_name=f"replay: {self.name} (stimulus ids)",
            sfreq=data.sfreq,
            n_channels=n_ch,
            ch_names=tuple(data.ch_names),
            connected=not self.finished,
            buffer_fill=min(1.0, self._clock / self.scope_seconds) if self.scope_seconds else 1.0,
            samples_received=played * n_t,
            dropped_samples=0,
            reconnects=0,
            gaps=0,
            latency_s=self._latency,
            markers_received=played,
        )
        erp = (self._erp_sum / self._accepted).astype(np.float32) if self._accepted else None
        self._latest = Snapshot(
            wall_time=time.time(),
            session_time=self._clock,
            health=health,
            epochs_accepted=self._accepted,
            epochs_rejected=self._rejected,
            rejected_reasons={"stimulus not in features": self._rejected} if self._rejected else {},
            stimuli_seen=int(getattr(self.engine, "n_stimuli_seen", 0)),
            unknown_markers=self._rejected,
            refresh_s=self._refresh_s,
            last_refresh_wall=self._last_refresh_wall,
            result=self._result,
            erp=erp,
            times=np.asarray(data.times),
            scope=scope,
            scope_times=scope_times,
            marker_times=markers,
            n_refreshes=self.n_refreshes,
            finished=self.finished,
        )


def reorder(data: EpochData, order: str, *, seed: int = 0) -> EpochData:
    """``data`` with epochs in ``order``: ``"as-is"`` or ``"shuffle"`` (seeded permutation).

    Dataset files such as THINGS-EEG2 store all training epochs before the test epochs; a real
    session interleaves them, and a shuffled replay looks like one (test stimuli score early).
    """
    if order == "as-is":
        return data
    if order != "shuffle":
        raise NeuralignError(f"order must be 'as-is' or 'shuffle', got {order!r}")
    perm = np.random.default_rng(seed).permutation(data.epochs.shape[0])
    info = dict(data.info)
    info.pop("onsets_s", None)
    info["replay_order"] = f"shuffled (seed {seed})"
    return EpochData(data.epochs[perm], data.stimulus_ids[perm], data.times, list(data.ch_names),
                     test_ids=data.test_ids, info=info)


def truncate(data: EpochData, n: int) -> EpochData:
    """The first ``n`` epochs of ``data``."""
    if n >= data.epochs.shape[0]:
        return data
    info = dict(data.info)
    if "onsets_s" in info and len(info["onsets_s"]) == data.epochs.shape[0]:
        info["onsets_s"] = list(info["onsets_s"])[:n]
    return EpochData(data.epochs[:n], data.stimulus_ids[:n], data.times, list(data.ch_names),
                     test_ids=data.test_ids, info=info)

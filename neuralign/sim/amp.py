"""A simulated EEG amplifier on LSL: continuous :class:`~neuralign.sim.brain.SyntheticBrain`
background in real time, plus the planted evoked response of every stimulus marker it sees.

Samples for time ``t`` are pushed at ``t + delay_s`` stamped ``t`` (an amplifier's own
latency), so a marker pushed at its onset reaches the amplifier before the samples it must
modify. Markers come from another stream (a presenter) and/or from the amplifier's own
schedule (``schedule=``), which it pushes on its own marker outlet and describes in a session
design file.
"""

from __future__ import annotations

import math
import sys
import threading
from dataclasses import dataclass, field

import numpy as np

from ..base import SessionDesign
from ..errors import NeuralignError
from ..io.things import THINGS_EEG2_CHANNELS
from ..lsl import MarkerOutlet, get_pylsl, resolve


@dataclass
class Schedule:
    """A random presentation sequence (stimulus id per onset, relative to the schedule start)."""

    ids: list[str]
    onsets: list[float]
    design: SessionDesign
    extra: list[tuple[float, str]] = field(default_factory=list)  # (onset, marker) non-stimulus

    @property
    def duration(self) -> float:
        """Seconds from the first onset to one second after the last."""
        return (self.onsets[-1] if self.onsets else 0.0) + 1.0


def make_schedule(stimulus_ids, *, n_test: int, train_reps: int = 2, test_reps: int = 5,
                  soa: float = 0.2, jitter: float = 0.0, seed: int = 0, n_train: int | None = None,
                  unknown_every: int = 0, control_every: int = 0, marker_stream: str = "",
                  n_channels: int | None = None, ch_names=None) -> Schedule:
    """Shuffle ``train_reps`` x train + ``test_reps`` x test stimuli at ``soa`` (+ uniform jitter).

    ``unknown_every``/``control_every`` > 0 insert an unknown id / a ``block_N`` control marker
    every so many presentations (for tests and demos of the bookkeeping).
    """
    ids = [str(s) for s in stimulus_ids]
    rng = np.random.default_rng(seed)
    perm = [ids[i] for i in rng.permutation(len(ids))]
    n_test = max(0, min(n_test, len(ids)))
    test = perm[:n_test]
    train = perm[n_test:] if n_train is None else perm[n_test:n_test + n_train]
    seq = [s for s in train for _ in range(train_reps)] + [s for s in test for _ in range(test_reps)]
    seq = [seq[i] for i in rng.permutation(len(seq))]
    onsets, extra, out_ids = [], [], []
    t = 0.0
    for k, s in enumerate(seq):
        if control_every and k % control_every == 0:
            extra.append((t, f"block_{k // control_every}"))
            t += soa
        if unknown_every and k and k % unknown_every == 0:
            extra.append((t, f"unknown_stim_{k}"))
            t += soa
        out_ids.append(s)
        onsets.append(t)
        t += soa + (rng.uniform(0, jitter) if jitter else 0.0)
    roles = {s: "train" for s in train} | {s: "test" for s in test}
    reps = {s: train_reps for s in train} | {s: test_reps for s in test}
    design = SessionDesign(stimuli=tuple(train + test), roles=roles, marker_stream=marker_stream,
                           n_channels=n_channels, ch_names=tuple(ch_names) if ch_names else None,
                           reps=reps, soa_s=soa)
    return Schedule(out_ids, onsets, design, extra)


def default_ch_names(n: int) -> list[str]:
    """``n`` standard 10-05 names: the 17 THINGS-EEG2 channels first, then 10-20/10-10 ones."""
    names = list(THINGS_EEG2_CHANNELS)
    if n <= len(names):
        return names[:n]
    import mne

    pool = mne.channels.make_standard_montage("standard_1020").ch_names
    pool += [c for c in mne.channels.make_standard_montage("standard_1005").ch_names
             if c not in pool]
    for c in pool:
        if len(names) >= n:
            break
        if c not in names and not c.startswith(("A", "M", "T9", "T10", "LPA", "RPA", "Nz")):
            names.append(c)
    if len(names) < n:
        raise NeuralignError(f"cannot name {n} channels from the standard 10-05 system")
    return names


class SimulatedAmp:
    """Stream simulated EEG on an LSL outlet until :meth:`stop` (or ``duration``).

    Parameters
    ----------
    name, source_id : str
        EEG outlet name and source id (give a unique source id: inlets recover by it).
    sfreq : float
        Sampling rate in Hz.
    ch_names : list of str
        Channel names.
    brain : SyntheticBrain | None
        None streams white noise (fast; for delivery tests) with no evoked responses.
    listen : str | None
        Marker stream spec whose stimulus markers get planted responses.
    schedule : Schedule | None
        Own marker sequence, pushed on ``marker_name``.
    marker_name : str | None
        Name of the own marker stream (default ``<name>-markers``).
    counter : bool
        Channel 0 carries the sample index (drop/duplicate detection).
    chunk_s : float
        Seconds between pushes.
    delay_s : float
        Amplifier latency: samples of time t are pushed at t + delay.
    seed : int
        Seed of the background and the trial gains.
    nan_every, nan_len : float
        Every ``nan_every`` s of stream time, ``nan_len`` s of NaN on every channel.
    channel_format : {"float32", "double64"}
        Sample format of the outlet.
    lead_s : float
        Seconds between a consumer connecting and the first scheduled marker.
    wait_consumers_s : float
        Seconds to wait for consumers of both streams before the schedule starts anyway
        (with a warning on stderr; ``markers_unheard`` counts the markers nobody received).
    codes : dict | None
        Integer marker code -> stimulus id for an integer stream on ``listen``.
    """

    def __init__(self, *, name: str, source_id: str, sfreq: float, ch_names: list[str],
                 brain=None, listen: str | None = None, schedule: Schedule | None = None,
                 marker_name: str | None = None, counter: bool = False, chunk_s: float = 0.01,
                 delay_s: float = 0.02, seed: int = 0, nan_every: float = 0.0,
                 nan_len: float = 0.0, channel_format: str = "float32", lead_s: float = 1.0,
                 wait_consumers_s: float = 30.0, codes: dict | None = None) -> None:
        pylsl = get_pylsl()
        self.pylsl = pylsl
        self.sfreq = float(sfreq)
        self.ch_names = list(ch_names)
        self.C = len(self.ch_names)
        fmt = {"float32": pylsl.cf_float32, "double64": pylsl.cf_double64}[channel_format]
        info = pylsl.StreamInfo(name, "EEG", self.C, self.sfreq, fmt, source_id)
        info.set_channel_labels(self.ch_names)
        info.set_channel_types(["EEG"] * self.C)
        info.set_channel_units(["microvolts"] * self.C)
        self.dtype = np.float32 if channel_format == "float32" else np.float64
        self.outlet = pylsl.StreamOutlet(info, chunk_size=0, max_buffered=360)
        self.brain = brain
        self.noise = brain.noise_stream(sfreq=self.sfreq, seed=seed) if brain is not None else None
        self.rng = np.random.default_rng([seed, 7])
        self.counter = counter
        self.chunk_s, self.delay_s = float(chunk_s), float(delay_s)
        self.nan_every, self.nan_len = float(nan_every), float(nan_len)
        self.listen = listen
        self.schedule = schedule
        self.lead_s = float(lead_s)
        self.wait_consumers_s = float(wait_consumers_s)
        self.mk_outlet = None
        if schedule is not None:
            self.mk_outlet = MarkerOutlet(marker_name or f"{name}-markers",
                                          source_id=f"{source_id}-markers")
        self._stop = threading.Event()
        self._responses: list[tuple[int, np.ndarray]] = []  # (start sample, (C, n))
        self._resp_cache: dict[str, np.ndarray] = {}
        self.produced = 0
        self.late_markers = 0
        self.markers_seen = 0
        self.markers_pushed = 0
        self.markers_unheard = 0  # pushed while no marker consumer was connected
        self.started_unheard = False
        self._mk_inlet = None
        self._mk_offset = 0.0
        self.codes = {str(k): str(v) for k, v in (codes or {}).items()}

    def stop(self) -> None:
        """Ask :meth:`run` to stop (from any thread)."""
        self._stop.set()

    # ------------------------------------------------------------------ responses
    def _response(self, sid: str) -> np.ndarray | None:
        if self.brain is None or sid not in self.brain.features:
            return None
        r = self._resp_cache.get(sid)
        if r is None:
            r = self._resp_cache[sid] = self.brain.response(sid, sfreq=self.sfreq, tmax=0.8)
        gain = 1.0 + self.brain.trial_gain_sd * self.rng.standard_normal()
        return r * gain

    def _plant(self, sid: str, onset: float) -> None:
        r = self._response(sid)
        if r is None:
            return
        k0 = int(round((onset - self.t0) * self.sfreq))
        if k0 < self.produced:
            self.late_markers += 1
            cut = self.produced - k0
            if cut >= r.shape[1]:
                return
            r, k0 = r[:, cut:], self.produced
        self._responses.append((k0, r))

    def _listen_thread(self) -> None:
        try:
            info = resolve(self.listen, what="marker", timeout=60.0)
        except NeuralignError:
            return
        inlet = self.pylsl.StreamInlet(info, recover=True, processing_flags=0)
        try:
            self._mk_offset = float(inlet.time_correction(timeout=2.0))
        except Exception:  # noqa: BLE001
            self._mk_offset = 0.0
        self._mk_inlet = inlet

    # ------------------------------------------------------------------ loop
    def _block(self, n: int) -> np.ndarray:
        k0 = self.produced
        if self.noise is not None:
            x = self.noise.read(n)
        else:
            x = self.rng.standard_normal((self.C, n))
        x = np.asarray(x, dtype=np.float64)
        keep = []
        for s, r in self._responses:
            a, b = max(s, k0), min(s + r.shape[1], k0 + n)
            if a < b:
                x[:, a - k0 : b - k0] += r[:, a - s : b - s]
            if s + r.shape[1] > k0 + n:
                keep.append((s, r))
        self._responses = keep
        if self.nan_every > 0 and self.nan_len > 0:
            t = (k0 + np.arange(n)) / self.sfreq
            x[:, (t % self.nan_every) > self.nan_every - self.nan_len] = np.nan
        if self.counter:
            x[0] = k0 + np.arange(n)
        return x

    def run(self, duration: float | None = None) -> None:
        """Stream until :meth:`stop` or ``duration`` seconds (the schedule's end + 1 s by default)."""
        clock = self.pylsl.local_clock
        if self.listen:
            threading.Thread(target=self._listen_thread, daemon=True).start()
        self.t0 = clock()
        sched_t0 = None
        queue: list[tuple[float, str]] = []
        if self.schedule is not None:
            pending = True
        else:
            pending = False
        end = None if duration is None else self.t0 + duration
        while not self._stop.is_set():
            now = clock()
            if end is not None and now >= end:
                break
            # the schedule starts once someone listens to both streams (a session opens its
            # EEG inlet and then its marker inlet; under load the two can be seconds apart)
            if pending and ((self.mk_outlet.have_consumers() and self.outlet.have_consumers())
                            or now - self.t0 > self.wait_consumers_s):
                pending = False
                if not self.mk_outlet.have_consumers():
                    self.started_unheard = True
                    print(f"warning: no marker consumer after {self.wait_consumers_s:g} s: "
                          "starting the schedule anyway (markers sent before a session "
                          "connects are not recorded; raise --wait-consumer)",
                          file=sys.stderr, flush=True)
                sched_t0 = now + self.lead_s
                sch = self.schedule
                queue = sorted([(sched_t0 + t, s) for t, s in zip(sch.onsets, sch.ids)]
                               + [(sched_t0 + t, m) for t, m in sch.extra])
                for t, s in zip(sch.onsets, sch.ids):
                    self._plant(s, sched_t0 + t)
                if end is None:
                    end = sched_t0 + sch.duration + 1.0
            while queue and queue[0][0] <= now:
                t, m = queue.pop(0)
                if not self.mk_outlet.have_consumers():
                    self.markers_unheard += 1  # nobody was connected: this marker is lost
                self.mk_outlet.push(m, stamp=t)
                self.markers_pushed += 1
            if self._mk_inlet is not None:
                vals, ts = self._mk_inlet.pull_chunk(timeout=0.0)
                for v, t in zip(vals, ts):
                    self.markers_seen += 1
                    m = v[0]
                    key = m if isinstance(m, str) else str(int(m))
                    self._plant(self.codes.get(key, key), t + self._mk_offset)
            due = int(math.floor((now - self.delay_s - self.t0) * self.sfreq)) + 1 - self.produced
            if due > 0:
                x = self._block(due)
                last_t = self.t0 + (self.produced + due - 1) / self.sfreq
                self.outlet.push_chunk(np.ascontiguousarray(x.T, dtype=self.dtype), last_t)
                self.produced += due
            nxt = self.chunk_s
            if queue:
                nxt = min(nxt, max(0.0, queue[0][0] - clock()))
            self._stop.wait(nxt)

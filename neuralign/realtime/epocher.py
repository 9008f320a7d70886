"""Online epoching: EEG chunks + stimulus markers in, baseline-corrected resampled epochs out.

The same class serves the live session and the re-epocher that reads a recording back
(:mod:`neuralign.realtime.recording`), so live and offline epochs are identical by
construction: both feed it the same chunks, markers and clock offsets in the same order.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
from scipy import signal

from .ring import RingBuffer
from .settings import EpochSettings


@dataclass(frozen=True)
class EpochEvent:
    """One stimulus marker resolved: an accepted epoch or a rejection with its reason."""

    kind: str  # "epoch" | "reject"
    stimulus_id: str
    onset: float  # marker onset, session clock (s)
    marker_index: int  # position of the marker in the marker stream
    data: np.ndarray | None = None  # (C, T) float64 at the analysis rate
    reason: str | None = None  # nan | flat | ptp | gap | no_data | overrun


@dataclass
class _Pending:
    stimulus_id: str
    onset: float
    marker_index: int


class MarkerClassifier:
    """Sort marker values into stimulus ids, control markers and unknown ids.

    Parameters
    ----------
    known_ids : collection of str or None
        Stimulus ids of the features; ``None`` treats every non-control marker as a stimulus.
    control : str
        Regular expression (case-insensitive, ``re.search``) of control markers.
    codes : dict or None
        Integer marker code (as str) -> stimulus id, for numeric marker streams.
    """

    def __init__(self, known_ids=None, *, control: str = "", codes: dict | None = None) -> None:
        self.known = None if known_ids is None else set(map(str, known_ids))
        self.control = re.compile(control, re.IGNORECASE) if control else None
        self.codes = {str(k): str(v) for k, v in (codes or {}).items()}

    def to_id(self, value) -> str:
        """The marker's stimulus id text (integer codes mapped through the code table)."""
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str):
            f = float(value)
            key = str(int(f)) if f.is_integer() else repr(f)
            return self.codes.get(key, key)
        value = value.strip()
        return self.codes.get(value, value)

    def classify(self, value) -> tuple[str, str]:
        """``(kind, id)`` with kind ``stimulus``, ``control`` or ``unknown``."""
        sid = self.to_id(value)
        if self.known is not None and sid in self.known:
            return "stimulus", sid
        if self.control is not None and self.control.search(sid):
            return "control", sid
        if self.known is None:
            return "stimulus", sid
        return "unknown", sid


class OnlineEpocher:
    """Ring buffer + causal filter + pending markers -> epochs.

    Parameters
    ----------
    settings : EpochSettings
    stream_sfreq : float
        Nominal rate of the EEG stream (Hz).
    n_channels : int
    """

    def __init__(self, settings: EpochSettings, *, stream_sfreq: float, n_channels: int) -> None:
        self.settings = settings
        self.fs = float(stream_sfreq)
        self.n_channels = int(n_channels)
        self.ring = RingBuffer(settings.ring_samples(self.fs), self.n_channels)
        self.n_native = settings.n_native(self.fs)
        self.up, self.down = settings.resample_ratio(self.fs)
        self.times = settings.times()

        self.n_times = self.times.size
        if settings.baseline is not None:
            b0, b1 = settings.baseline
            b0 = settings.tmin if b0 is None else b0
            b1 = 0.0 if b1 is None else b1
            self._bmask = (self.times >= b0 - 1e-9) & (self.times <= b1 + 1e-9)
        else:
            self._bmask = None
        self._kernel = self._make_kernel()
        self.sos = None
        if settings.l_freq is not None or settings.h_freq is not None:
            settings.check_stream(self.fs)  # never drop a filter silently
            lo, hi = settings.l_freq, settings.h_freq
            if lo is not None and hi is not None:
                self.sos = signal.butter(settings.filter_order, [lo, hi], "bandpass", fs=self.fs,
                                         output="sos")
            elif lo is not None:
                self.sos = signal.butter(settings.filter_order, lo, "highpass", fs=self.fs,
                                         output="sos")
            elif hi is not None:
                self.sos = signal.butter(settings.filter_order, hi, "lowpass", fs=self.fs,
                                         output="sos")
        self._zi0 = None if self.sos is None else signal.sosfilt_zi(self.sos)
        self._zi: np.ndarray | None = None
        self._need_reset = True
        self.pending: list[_Pending] = []
        self.gaps: list[tuple[float, float]] = []
        self.dropped = 0  # samples missing inside gaps (estimated from timestamps)
        self.backwards = 0  # timestamp jumps backwards (duplicates / clock resets)
        self.first_ts = float("nan")
        self.samples = 0
        self.rejected = Counter()
        self._half = 0.5 / self.fs

    # ------------------------------------------------------------------ EEG
    def push_eeg(self, x: np.ndarray, t: np.ndarray) -> None:
        """Append a chunk ``x`` (n, C) with session-clock timestamps ``t`` (n,)."""
        n = int(t.shape[0])
        if n == 0:
            return
        t = np.asarray(t, dtype=np.float64)
        prev = self.ring.last_ts()
        if self.samples == 0:
            self.first_ts = float(t[0])
        steps = np.diff(t, prepend=prev if self.samples else t[0])
        jump = (steps > self.settings.gap_s) | (steps <= 0.0)
        if self.samples == 0:
            jump[0] = False
        gap_at = np.flatnonzero(jump)
        for i in gap_at:
            before = float(t[i - 1]) if i > 0 else prev
            self.gaps.append((before, float(t[i])))
            dt = float(t[i]) - before
            if dt <= 0:
                self.backwards += 1
            else:
                self.dropped += max(0, int(round(dt * self.fs)) - 1)
        y = self._filter(x, gap_at)
        self.ring.append(y, t)
        self.samples += n

    def _filter(self, x: np.ndarray, gap_at: np.ndarray) -> np.ndarray:
        y = np.array(x, dtype=np.float64, copy=True)
        if self.sos is None:
            return y
        n = y.shape[0]
        bad = ~np.isfinite(y).all(axis=1)
        gaps = set(gap_at.tolist())
        cuts = sorted({0, n, *gaps, *(np.flatnonzero(np.diff(bad)) + 1).tolist()})
        for a, b in zip(cuts[:-1], cuts[1:]):
            if a in gaps:
                self._need_reset = True
            if bad[a]:
                y[a:b] = np.nan
                self._need_reset = True
                continue
            if self._need_reset or self._zi is None:
                self._zi = self._zi0[:, :, None] * y[a][None, None, :]
                self._need_reset = False
            y[a:b], self._zi = signal.sosfilt(self.sos, y[a:b], axis=0, zi=self._zi)
        return y

    # ------------------------------------------------------------------ markers
    def add_marker(self, stimulus_id: str, onset: float, marker_index: int) -> None:
        """Queue a stimulus marker (onset on the session clock)."""
        self.pending.append(_Pending(str(stimulus_id), float(onset), int(marker_index)))

    def poll(self) -> list[EpochEvent]:
        """Resolve every pending marker whose data up to ``tmax`` has arrived."""
        if not self.pending or self.ring.total == 0:
            return []
        newest = self.ring.last_ts()
        out: list[EpochEvent] = []
        keep: list[_Pending] = []
        for p in self.pending:
            if newest < p.onset + self.settings.tmax - self._half:
                keep.append(p)
                continue
            out.append(self._cut(p))
        self.pending = keep
        return out

    def flush(self) -> list[EpochEvent]:
        """End of session: resolve what can be, report the rest as ``no_data``."""
        out = self.poll()
        for p in self.pending:
            out.append(self._reject(p, "no_data"))
        self.pending = []
        return out

    def _reject(self, p: _Pending, reason: str) -> EpochEvent:
        self.rejected[reason] += 1
        return EpochEvent("reject", p.stimulus_id, p.onset, p.marker_index, reason=reason)

    def _cut(self, p: _Pending) -> EpochEvent:
        s = self.settings
        t0, t1 = p.onset + s.tmin, p.onset + s.tmax
        for g0, g1 in self.gaps:
            if g0 < t1 + self._half and g1 > t0 - self._half:
                return self._reject(p, "gap")
        if t0 < self.first_ts - self._half:
            return self._reject(p, "no_data")
        data, ts = self.ring.held()
        i = int(np.searchsorted(ts, t0 - self._half))
        if i == 0 and ts[0] > t0 + self._half:
            return self._reject(p, "overrun")  # marker arrived after its data left the buffer
        if i + self.n_native > ts.shape[0]:
            return self._reject(p, "gap")
        win = data[i : i + self.n_native]
        wts = ts[i : i + self.n_native]
        if abs((wts[-1] - wts[0]) - (self.n_native - 1) / self.fs) > s.gap_s:
            return self._reject(p, "gap")
        x = win.T  # (C, n) view
        if not np.isfinite(x).all():
            return self._reject(p, "nan")
        ptp = x.max(axis=1) - x.min(axis=1)
        if (ptp <= s.flat_ptp).any():
            return self._reject(p, "flat")
        if s.reject_ptp is not None and (ptp > s.reject_ptp).any():
            return self._reject(p, "ptp")
        return EpochEvent("epoch", p.stimulus_id, p.onset, p.marker_index, data=self.process(x))

    def _make_kernel(self) -> np.ndarray:
        """(n_native, T) matrix = resample_poly of each unit impulse, then baseline removal."""
        n = self.n_native
        eye = np.eye(n)
        if self.up == 1 and self.down == 1:
            r = eye
        else:
            m = max(self.up, self.down)  # scipy's default FIR for these rates, designed once
            fir = signal.firwin(2 * 10 * m + 1, 1.0 / m, window=("kaiser", 5.0))
            r = signal.resample_poly(eye, self.up, self.down, axis=1, window=fir,
                                     padtype="line")
        if r.shape[1] < self.n_times:
            raise RuntimeError(f"resampled epoch has {r.shape[1]} < {self.n_times} samples")
        r = r[:, : self.n_times]
        if self._bmask is not None:
            r = r - r[:, self._bmask].mean(axis=1, keepdims=True)
        return np.ascontiguousarray(r)

    def process(self, x: np.ndarray) -> np.ndarray:
        """Resample a native-rate window (C, n_native) and baseline-correct it -> (C, T).

        Polyphase resampling (``scipy.signal.resample_poly``, scipy's default kaiser(5.0)
        anti-aliasing filter, ``padtype="line"``) and baseline subtraction are both linear, so
        they are applied as one precomputed (n_native, T) matrix: one BLAS product per epoch.
        """
        return np.asarray(x, dtype=np.float64) @ self._kernel

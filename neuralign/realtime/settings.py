"""Settings of online epoching: one frozen object shared by the live path and the re-epocher."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from fractions import Fraction

import numpy as np

from ..errors import NeuralignError

#: Markers matching this (case-insensitive) regular expression are control markers (block
#: starts, catch/target trials, responses...): recorded, never analysed, never "unknown".
DEFAULT_CONTROL_MARKERS = (
    r"^(#|block|trial|catch|target|start|stop|end|pause|resume|fixation|response|break|rest)"
)


@dataclass(frozen=True)
class EpochSettings:
    """Everything the epochs depend on (recorded with the session; the re-epocher reuses it).

    Parameters
    ----------
    tmin, tmax : float
        Epoch window around the marker onset, seconds.
    sfreq : float
        Analysis rate (Hz) the epochs are resampled to (100 Hz matches THINGS-EEG2).
    baseline : tuple of (float or None, float or None) or None
        Baseline interval (s) subtracted per channel after resampling; ``None`` end = tmin / 0.
        ``None`` disables baseline correction.
    l_freq, h_freq : float or None
        Optional causal Butterworth band (second-order sections, state kept across chunks).
    filter_order : int
        Butterworth order.
    reject_ptp : float or None
        Reject an epoch whose peak-to-peak amplitude on any channel exceeds this (stream units).
    flat_ptp : float
        Reject an epoch where any channel's peak-to-peak is <= this (0 = exactly constant).
    gap_s : float
        A jump between consecutive EEG timestamps larger than this is a gap (lost samples or a
        stream that went away); epochs overlapping a gap are rejected.
    history_s : float
        Ring-buffer slack beyond the epoch window (how late a marker may arrive).
    control_markers : str
        Regular expression of control markers (recorded, not analysed).
    """

    tmin: float = -0.2
    tmax: float = 0.8
    sfreq: float = 100.0
    baseline: tuple[float | None, float | None] | None = (None, 0.0)
    l_freq: float | None = None
    h_freq: float | None = None
    filter_order: int = 4
    reject_ptp: float | None = None
    flat_ptp: float = 0.0
    gap_s: float = 0.05
    history_s: float = 10.0
    control_markers: str = DEFAULT_CONTROL_MARKERS

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tmin) and math.isfinite(self.tmax) and self.tmax > self.tmin):
            raise NeuralignError(f"epoch window needs --tmin < --tmax, got "
                                 f"{self.tmin}..{self.tmax}")
        if not (math.isfinite(self.sfreq) and self.sfreq > 0):
            raise NeuralignError(f"--sfreq (analysis rate) must be > 0 Hz, got {self.sfreq}")
        if self.baseline is not None:
            object.__setattr__(self, "baseline", tuple(self.baseline))
            self._check_baseline()
        for f in ("l_freq", "h_freq"):
            v = getattr(self, f)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise NeuralignError(f"--{f.replace('_', '-')} must be > 0 Hz, got {v}")
        if self.l_freq is not None and self.h_freq is not None and self.l_freq >= self.h_freq:
            raise NeuralignError(f"--l-freq {self.l_freq:g} Hz must be below --h-freq "
                                 f"{self.h_freq:g} Hz")
        if not (math.isfinite(self.gap_s) and self.gap_s > 0):
            raise NeuralignError(f"--gap must be > 0 s, got {self.gap_s}")
        if self.reject_ptp is not None and not (math.isfinite(self.reject_ptp)
                                                and self.reject_ptp > 0):
            raise NeuralignError(f"--reject-ptp must be > 0, got {self.reject_ptp}")
        if not (math.isfinite(self.flat_ptp) and self.flat_ptp >= 0):
            raise NeuralignError(f"--flat-ptp must be >= 0, got {self.flat_ptp}")
        if self.reject_ptp is not None and self.reject_ptp <= self.flat_ptp:
            raise NeuralignError(f"--reject-ptp {self.reject_ptp} must exceed --flat-ptp "
                                 f"{self.flat_ptp}: every epoch would be rejected")
        if int(self.filter_order) < 1 or not self.history_s > 0:
            raise NeuralignError("filter order must be >= 1 and history > 0 s")

    def _check_baseline(self) -> None:
        b0, b1 = self.baseline
        lo = self.tmin if b0 is None else b0
        hi = 0.0 if b1 is None else b1
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
            raise NeuralignError(f"--baseline needs START < END, got {lo:g}..{hi:g} s")
        if lo < self.tmin - 1e-9 or hi > self.tmax + 1e-9:
            raise NeuralignError(f"--baseline {lo:g}..{hi:g} s lies outside the epoch "
                                 f"{self.tmin:g}..{self.tmax:g} s")
        t = self.times()
        if not ((t >= lo - 1e-9) & (t <= hi + 1e-9)).any():
            raise NeuralignError(f"--baseline {lo:g}..{hi:g} s holds no sample at "
                                 f"{self.sfreq:g} Hz")

    def check_stream(self, stream_sfreq: float, *, stream: str = "") -> None:
        """Refuse settings the stream's rate cannot honour (filters at or above Nyquist).

        Parameters
        ----------
        stream_sfreq : float
            The EEG stream's nominal rate (Hz).
        stream : str
            Its name, for the message.

        Raises
        ------
        NeuralignError
            ``--l-freq`` or ``--h-freq`` at or above half the stream's rate.
        """
        nyq = stream_sfreq / 2.0
        for opt, v in (("--l-freq", self.l_freq), ("--h-freq", self.h_freq)):
            if v is not None and v >= nyq:
                raise NeuralignError(f"{opt} {v:g} Hz is at or above the Nyquist frequency "
                                     f"({nyq:g} Hz) of EEG stream {stream!r} at "
                                     f"{stream_sfreq:g} Hz")

    # ------------------------------------------------------------------ derived
    def times(self) -> np.ndarray:
        """Epoch time axis at the analysis rate (s)."""
        n = int(round((self.tmax - self.tmin) * self.sfreq)) + 1
        return self.tmin + np.arange(n) / self.sfreq

    def n_native(self, stream_sfreq: float) -> int:
        """Samples cut at the stream rate for one epoch."""
        return int(round((self.tmax - self.tmin) * stream_sfreq)) + 1

    def resample_ratio(self, stream_sfreq: float) -> tuple[int, int]:
        """(up, down) of the polyphase resampler from the stream rate to the analysis rate."""
        fr = Fraction(self.sfreq / stream_sfreq).limit_denominator(2000)
        if fr <= 0:
            raise NeuralignError(f"cannot resample {stream_sfreq} Hz to {self.sfreq} Hz")
        return fr.numerator, fr.denominator

    def ring_samples(self, stream_sfreq: float) -> int:
        """Ring-buffer length (samples at ``stream_sfreq``) for one epoch plus history."""
        return int(math.ceil((self.tmax - self.tmin + self.history_s) * stream_sfreq)) + 1

    # ------------------------------------------------------------------ io
    def to_dict(self) -> dict:
        """The settings as plain data (recorded in the session)."""
        d = asdict(self)
        d["baseline"] = None if self.baseline is None else list(self.baseline)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EpochSettings:
        """Settings from ``d`` (as :meth:`to_dict` wrote it; unknown keys ignored)."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if kw.get("baseline") is not None:
            kw["baseline"] = tuple(kw["baseline"])
        return cls(**kw)

"""Durations in whole frames of the monitor refresh."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from .config import SessionConfig


class FrameRoundingWarning(UserWarning):
    """A requested duration is not a whole number of frames and was rounded."""


def ms_to_frames(ms: float, refresh_hz: float, *, name: str, minimum: int = 0) -> int:
    """Whole frames closest to ``ms`` at ``refresh_hz``; warn with the real duration if rounded.

    Parameters
    ----------
    ms : float
        Requested duration in milliseconds.
    refresh_hz : float
        Monitor refresh rate.
    name : str
        Setting name, for the warning.
    minimum : int
        Fewest frames allowed (1 for an image that must be shown).
    """
    exact = ms * refresh_hz / 1000.0
    n = max(minimum, int(round(exact)))
    if abs(exact - n) > 1e-6:
        real = n * 1000.0 / refresh_hz
        warnings.warn(
            f"{name} = {ms:g} ms is {exact:.3g} frames at {refresh_hz:g} Hz: using {n} frame(s) "
            f"= {real:.2f} ms",
            FrameRoundingWarning,
            stacklevel=2,
        )
    return n


@dataclass(frozen=True)
class FrameTiming:
    """All presenter durations in frames, and the frame period."""

    refresh_hz: float
    on: int
    off: int
    sequence_gap: int
    lead_in: int
    response_window: int

    @property
    def frame_s(self) -> float:
        """One frame, in seconds."""
        return 1.0 / self.refresh_hz

    @property
    def soa_s(self) -> float:
        """Onset-to-onset interval in seconds."""
        return (self.on + self.off) / self.refresh_hz

    def to_dict(self) -> dict:
        """The timing as plain data (frames and milliseconds)."""
        return {
            "refresh_hz": self.refresh_hz,
            "on_frames": self.on,
            "off_frames": self.off,
            "on_ms": self.on * 1000.0 / self.refresh_hz,
            "off_ms": self.off * 1000.0 / self.refresh_hz,
            "sequence_gap_frames": self.sequence_gap,
            "lead_in_frames": self.lead_in,
            "response_window_frames": self.response_window,
        }


def frame_timing(config: SessionConfig, *, refresh_hz: float | None = None) -> FrameTiming:
    """Convert the config's durations to frames (``refresh_hz`` overrides the monitor's)."""
    hz = float(refresh_hz or config.monitor.refresh_hz)
    t = config.timing
    on = t.on_frames if t.on_frames > 0 else ms_to_frames(t.on_ms, hz, name="timing.on_ms",
                                                          minimum=1)
    off = t.off_frames if t.off_frames > 0 else ms_to_frames(t.off_ms, hz, name="timing.off_ms")
    gap = ms_to_frames(t.sequence_gap_ms, hz, name="timing.sequence_gap_ms")
    lead = ms_to_frames(t.lead_in_ms, hz, name="timing.lead_in_ms")
    window = max(1, int(round(config.task.response_window_ms * hz / 1000.0)))
    return FrameTiming(hz, on, off, gap, lead, window)

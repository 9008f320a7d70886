"""Simulated EEG with a planted layer x latency answer (:class:`SyntheticBrain`)."""

from __future__ import annotations

from .brain import THINGS_EEG2_CHANNELS, NoiseStream, SyntheticBrain
from .features import hierarchical_features

__all__ = ["THINGS_EEG2_CHANNELS", "NoiseStream", "SyntheticBrain", "hierarchical_features"]

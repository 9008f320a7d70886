"""neuralign: live and offline layer-by-latency alignment of vision(-language) models with EEG."""

from __future__ import annotations

__version__ = "0.1.0"

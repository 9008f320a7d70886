"""The Python API: what ``import neuralign`` offers (each name loads when first used).

- :func:`neuralign.api.analysis.load_features`, :func:`neuralign.api.analysis.analyze`,
  :func:`neuralign.api.analysis.read_results`: offline analysis of ``mne.Epochs``, arrays or
  :class:`~neuralign.base.EpochData`, as ``neuralign analyze`` does it;
- :class:`neuralign.api.live.LiveSession`: a live LSL session with snapshots;
- :class:`neuralign.report.AlignmentResult`: maps that plot themselves and go into an
  ``mne.Report``.
"""

from __future__ import annotations

from ..base import EpochData, FeatureSet
from ..report.comparison import Comparison
from ..report.results import AlignmentResult
from .analysis import analyze, as_epoch_data, compare, load_dataset, load_features, read_results
from .live import LiveSession

__all__ = [
    "AlignmentResult",
    "Comparison",
    "EpochData",
    "FeatureSet",
    "LiveSession",
    "analyze",
    "as_epoch_data",
    "compare",
    "load_dataset",
    "load_features",
    "read_results",
]

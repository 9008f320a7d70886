"""Simulators and LSL players: the one home of everything that makes data up.

- :mod:`.brain`: :class:`SyntheticBrain`, simulated EEG with a planted layer x latency answer;
- :mod:`.features`: synthetic hierarchical features;
- :mod:`.dataset`: a simulated subject in the THINGS-EEG2 preprocessed layout;
- :mod:`.raw`: continuous recordings in the raw layouts (THINGS-EEG2 raw, BrainVision, EEGLAB);
- :mod:`.study`: a simulated many-subjects x many-models study;
- :mod:`.units`: a brain driven by a few known units with known signs (unit-level truth);
- :mod:`.truth`: the planted truth and how well an analysis recovered it;
- :mod:`.amp`: a simulated EEG amplifier on LSL;
- :mod:`.player`: any :class:`~neuralign.base.EpochData` streamed over LSL.

Nothing in the package imports this part but :mod:`neuralign.commands` (and the tests).
"""

from __future__ import annotations

from .brain import NoiseStream, SyntheticBrain
from .features import hierarchical_features

__all__ = ["NoiseStream", "SyntheticBrain", "hierarchical_features"]

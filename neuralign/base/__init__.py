"""The ground of neuralign: the small vocabulary every part may use.

- :class:`EpochData`: epochs tagged with stimulus ids (what every loader returns);
- :class:`FeatureSet`: per-layer model features of a set of stimuli (:class:`LayerFile`: a
  layer read on demand from a cache file);
- :class:`Stimulus`: one image and its id (the same string in markers, features and designs);
- :class:`SessionDesign` / :func:`load_design`: the session design file;
- :func:`planted_latencies`: the planted truth of simulated data;
- :data:`docdict` / :func:`fill_doc`: shared parameter documentation.

Modules here import nothing of the package but :mod:`neuralign.errors`, :mod:`neuralign.io`
and each other (``tests/test_layers.py`` enforces it).
"""

from __future__ import annotations

from .design import SessionDesign, load_design
from .docs import docdict, fill_doc
from .epochs import EpochData
from .features import FeatureSet, LayerFile
from .stimuli import Stimulus
from .truth import planted_latencies

__all__ = [
    "EpochData",
    "FeatureSet",
    "LayerFile",
    "SessionDesign",
    "Stimulus",
    "docdict",
    "fill_doc",
    "load_design",
    "planted_latencies",
]

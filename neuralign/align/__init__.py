"""The alignment engine both modes share: streaming ridge encoding, RSA, noise ceilings.

Public API::

    from neuralign.align import AlignmentEngine, AlignmentResult, FeatureSet, analyze_epochs
"""

from __future__ import annotations

from ..base import FeatureSet
from .batch import analyze_epochs
from .data import AlignmentResult
from .engine import DEFAULT_ALPHAS, AlignmentEngine, stable_fold
from .group import ModelGroup

__all__ = [
    "DEFAULT_ALPHAS",
    "AlignmentEngine",
    "AlignmentResult",
    "FeatureSet",
    "ModelGroup",
    "analyze_epochs",
    "stable_fold",
]

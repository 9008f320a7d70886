"""The ground of neuralign: the small vocabulary every part may use.

Modules here import nothing of the package but :mod:`neuralign.errors` and each other.
"""

from __future__ import annotations

from .features import FeatureSet, LayerFile

__all__ = ["FeatureSet", "LayerFile"]

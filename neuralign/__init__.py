"""neuralign: live and offline layer-by-latency alignment of vision(-language) models with EEG.

``import neuralign`` is light (nothing but this file): every name below loads on first use
(PEP 562), and none of them imports torch or transformers.

>>> import neuralign
>>> result = neuralign.analyze(epochs, "features.npz")  # doctest: +SKIP
>>> result.plot_encoding()  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

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

#: Where each public name lives (imported on first use).
API_MODULE = "neuralign.api"


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module 'neuralign' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(API_MODULE), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

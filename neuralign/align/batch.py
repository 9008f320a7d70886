"""Batch analysis: a whole dataset through the live engine, layer by layer."""

from __future__ import annotations

import functools

from ..base import FeatureSet
from .data import AlignmentResult
from .engine import AlignmentEngine


def analyze_epochs(
    data, features: FeatureSet, *, chunk: int = 2000, progress=None, **engine_kw
) -> AlignmentResult:
    """Batch analysis of epochs tagged with stimulus ids, with one engine.

    Parameters
    ----------
    data : EpochData
        ``epochs`` (n, C, T), ``stimulus_ids`` (n,), ``times``, ``ch_names``, ``test_ids``
        and ``info``.
    features : FeatureSet
        Per-layer features of the stimuli.
    chunk : int
        Epochs accumulated at a time.
    progress : callable, optional
        ``progress(n_added)`` after each chunk of epochs, then ``progress(1, what="layers")``
        after each solved layer.
    **engine_kw
        Options of :class:`AlignmentEngine` (``incremental`` defaults to False: layer by
        layer, nothing kept).

    Returns
    -------
    AlignmentResult
    """
    test_ids = engine_kw.pop("test_ids", data.test_ids)
    engine_kw.setdefault("incremental", False)
    features.index_of(sorted(set(data.stimulus_ids.tolist())), source="the EEG")
    eng = AlignmentEngine(features, times=data.times, ch_names=data.ch_names,
                          test_ids=test_ids, **engine_kw)
    n = data.epochs.shape[0]
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        eng.add_epochs(data.stimulus_ids[start:stop], data.epochs[start:stop])
        if progress is not None:
            progress(stop - start)
    res = eng.refresh(progress=None if progress is None
                      else functools.partial(progress, what="layers"))
    res.settings["dataset"] = dict(getattr(data, "info", {}) or {})
    return res

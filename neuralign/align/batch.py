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


def analyze_models(data, features, *, monitor=None, chunk: int = 2000, progress=None,
                   **engine_kw):
    """Batch analysis of several models (or one) on the same epochs, with their statistics.

    The engines and the statistics are those of a live session
    (:class:`~neuralign.align.ModelGroup`, :class:`~neuralign.align.monitor.StatisticsMonitor`):
    for the same epochs and seed, the intervals are the live session's final ones.

    Parameters
    ----------
    data : EpochData
        ``epochs`` (n, C, T), ``stimulus_ids`` (n,), ``times``, ``ch_names``, ``test_ids``.
    features : FeatureSet | mapping of str to FeatureSet
        One model, or label -> features.
    monitor : StatisticsMonitor, optional
        Evaluated once on the final maps (None: no statistics).
    chunk : int
        Epochs accumulated at a time.
    progress : callable, optional
        As :func:`analyze_epochs`'.
    **engine_kw
        Options of :class:`AlignmentEngine` (``incremental`` defaults to False).

    Returns
    -------
    results : dict of str to AlignmentResult
        Label -> maps (label ``"model"`` for a single FeatureSet).
    stats : Statistics | None
    """
    from .group import ModelGroup

    models = dict(features) if not isinstance(features, FeatureSet) else {"model": features}
    test_ids = engine_kw.pop("test_ids", data.test_ids)
    engine_kw.setdefault("incremental", False)
    for fs in models.values():
        fs.index_of(sorted(set(data.stimulus_ids.tolist())), source="the EEG")
    group = ModelGroup(models, times=data.times, ch_names=data.ch_names, test_ids=test_ids,
                       **engine_kw)
    n = data.epochs.shape[0]
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        group.add_epochs(data.stimulus_ids[start:stop], data.epochs[start:stop])
        if progress is not None:
            progress(stop - start)
    results = group.refresh(progress=None if progress is None
                            else functools.partial(progress, what="layers"))
    for res in results.values():
        res.settings["dataset"] = dict(getattr(data, "info", {}) or {})
    stats = None if monitor is None else monitor.evaluate(group.engines, n_epochs=group.n_epochs)
    return results, stats

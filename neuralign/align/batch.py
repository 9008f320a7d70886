"""Batch analysis: a whole dataset through the live engine, layer by layer."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from ..base import FeatureSet
from .data import AlignmentResult
from .engine import AlignmentEngine
from .group import ModelGroup


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
    _feed(eng, data, chunk, progress)
    res = eng.refresh(progress=None if progress is None
                      else functools.partial(progress, what="layers"))
    res.settings["dataset"] = dict(getattr(data, "info", {}) or {})
    return res


def analyze_models(
    data, features: Mapping[str, FeatureSet], *, chunk: int = 2000, progress=None,
    **engine_kw
) -> tuple[ModelGroup, dict[str, AlignmentResult]]:
    """Batch analysis of several feature sets (models) over the same epochs.

    The engines are kept (their held-out predictions give intervals, significance, rankings
    and variance partitions without refitting).

    Parameters
    ----------
    data : EpochData
        The epochs, as for :func:`analyze_epochs`.
    features : mapping of str to FeatureSet
        Label -> per-layer features (the same stimuli in every set).
    chunk : int
        Epochs accumulated at a time.
    progress : callable, optional
        As for :func:`analyze_epochs` (layers of every model count).
    **engine_kw
        Options of :class:`AlignmentEngine`.

    Returns
    -------
    group : ModelGroup
        The refreshed engines.
    results : dict of str to AlignmentResult
        The maps of every feature set.
    """
    test_ids = engine_kw.pop("test_ids", data.test_ids)
    engine_kw.setdefault("incremental", False)
    ids = sorted(set(data.stimulus_ids.tolist()))
    for label, fs in features.items():
        fs.index_of(ids, source=f"the EEG (feature set {label!r})")
    group = ModelGroup(features, times=data.times, ch_names=data.ch_names, test_ids=test_ids,
                       **engine_kw)
    _feed(group, data, chunk, progress)
    results = group.refresh(progress=None if progress is None
                            else functools.partial(progress, what="layers"))
    for res in results.values():
        res.settings["dataset"] = dict(getattr(data, "info", {}) or {})
    return group, results


def _feed(target, data, chunk: int, progress) -> None:
    n = data.epochs.shape[0]
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        target.add_epochs(data.stimulus_ids[start:stop], data.epochs[start:stop])
        if progress is not None:
            progress(stop - start)

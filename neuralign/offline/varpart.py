"""Variance partitioning between two feature spaces (two models, or two layers) of one subject,
on the engine's banded ridge (:func:`neuralign.align.partition.variance_partition`).

Each feature space gets its own :class:`~neuralign.align.AlignmentEngine` (one layer), fed the
same epochs: same folds (the designated test stimuli when the dataset has them, else the
engine's K folds by a stable hash of the stimulus id), alpha chosen per target on training
data only (the engine's GCV or K-fold selection). The joint model is banded ridge: each space
keeps its own alpha. Held-out R^2 of A, B and A+B give::

    unique_A = R2_AB - R2_B      unique_B = R2_AB - R2_A      shared = R2_A + R2_B - R2_AB

with bootstrap intervals over the scored stimuli, a permutation test of each unique part
(maximum statistic over channel x time, and for the channel x time mean), and negative held-out
parts reported as they are and counted (``negative``).
"""

from __future__ import annotations

import numpy as np

from ..align import AlignmentEngine
from ..base import EpochData, FeatureSet
from ..errors import NeuralignError

#: The parts and R^2 of a two-set partition as study files name them.
KEYS = ("r2_a", "r2_b", "r2_ab", "unique_a", "unique_b", "shared")


def variance_partition(
    data: EpochData,
    features_a: np.ndarray,
    features_b: np.ndarray,
    *,
    stimulus_ids: list[str],
    alphas=None,
    n_folds: int = 5,
    n_boot: int = 500,
    n_perm: int = 500,
    seed: int = 0,
    engine_kw: dict | None = None,
) -> dict[str, np.ndarray]:
    """Unique and shared held-out variance of two feature spaces per channel x time.

    Parameters
    ----------
    data : EpochData
        The subject's epochs.
    features_a, features_b : ndarray, shape (N, D_a) / (N, D_b)
        Rows in ``stimulus_ids`` order (must cover every stimulus of ``data``).
    stimulus_ids : list of str
        The stimuli of the feature rows.
    alphas : array, optional
        Ridge penalties (default: the engine's).
    n_folds : int
        Folds when ``data`` has no designated test set.
    n_boot, n_perm : int
        Bootstrap resamples (intervals) and permutations (tests of the unique parts).
    seed : int
        Seed of resampling and permutations.
    engine_kw : dict, optional
        More engine settings (``alpha_selection``, ``dtype``, ``standardize``, ``memory``).

    Returns
    -------
    dict of str -> ndarray
        ``r2_a``, ``r2_b``, ``r2_ab``, ``unique_a``, ``unique_b``, ``shared`` (C, T);
        ``ci_<part>`` (2, T) bootstrap interval of the channel-mean course; ``p_unique_a``,
        ``p_unique_b`` (C, T) max-statistic corrected p; ``p_mean_unique_a``,
        ``p_mean_unique_b`` (p of the channel x time mean); ``negative_<part>`` (targets
        below zero); ``n_boot``, ``n_perm``.
    """
    from ..align.partition import variance_partition as partition

    ids = [str(s) for s in stimulus_ids]
    missing = sorted(set(data.unique_ids()) - set(ids))
    if missing:
        raise NeuralignError(f"{len(missing)} EEG stimuli are not in the features "
                             f"(e.g. {missing[:3]})")
    kw = {k: v for k, v in (engine_kw or {}).items()
          if k in ("alpha_selection", "dtype", "standardize", "memory") and v is not None}
    engines = {}
    for label, x in (("A", features_a), ("B", features_b)):
        fs = FeatureSet(np.asarray(ids), [label], [np.asarray(x)])
        eng = AlignmentEngine(fs, times=data.times, ch_names=data.ch_names,
                              test_ids=data.test_ids or None, alphas=alphas, n_folds=n_folds,
                              incremental=False, max_rsa_stimuli=20, **kw)
        for start in range(0, data.epochs.shape[0], 2000):  # bounded float64 copies
            eng.add_epochs(data.stimulus_ids[start:start + 2000], data.epochs[start:start + 2000])
        eng.refresh()
        if eng.held_out is None:
            raise NeuralignError("too few stimuli for held-out variance partitioning")
        engines[label] = eng
    res = partition(engines, {"A": 0, "B": 0}, n_boot=n_boot, n_perm=n_perm, seed=seed)
    C = len(data.ch_names)
    names = {"unique_a": "unique A", "unique_b": "unique B", "shared": "shared"}
    out = {"r2_a": res.r2["A"], "r2_b": res.r2["B"], "r2_ab": res.r2["A+B"]}
    out.update({k: res.parts[v] for k, v in names.items()})
    out = {k: np.asarray(v, dtype=float).reshape(C, -1) for k, v in out.items()}
    for k, v in names.items():
        out[f"ci_{k}"] = np.asarray(res.ci_time[v], dtype=float)
        out[f"negative_{k}"] = np.asarray(res.negative[v])
    for k in ("a", "b"):
        out[f"p_unique_{k}"] = np.asarray(res.p_unique[f"unique {k.upper()}"]).reshape(C, -1)
        out[f"p_mean_unique_{k}"] = np.asarray(res.p_unique_mean[f"unique {k.upper()}"])
    out["n_boot"], out["n_perm"] = np.asarray(n_boot), np.asarray(n_perm)
    return out


def layer_index(fs: FeatureSet, layer: str | int, peak_index: int | None) -> int:
    """Resolve ``"peak"`` / a layer name / an index to a layer index of ``fs``."""
    if layer == "peak":
        if peak_index is None:
            raise NeuralignError("layer 'peak' needs the study's group peak layer")
        return int(peak_index)
    if isinstance(layer, int) or (isinstance(layer, str) and layer.lstrip("-").isdigit()):
        i = int(layer)
        if not -fs.n_layers <= i < fs.n_layers:
            raise NeuralignError(f"layer index {i} out of range for {fs.n_layers} layers")
        return i % fs.n_layers
    if layer not in fs.layers:
        raise NeuralignError(f"layer {layer!r} not in {list(fs.layers)[:5]}...")
    return fs.layers.index(layer)


def partition_summary(files: dict, window: np.ndarray, *, alpha: float = 0.05) -> dict:
    """Group and per-subject summary of the partitions a study saved (one ``.npz`` per subject).

    Parameters
    ----------
    files : dict of str to Path
        Subject -> the arrays :func:`variance_partition` returned, saved with ``np.savez``.
    window : ndarray of bool, shape (T,)
        The time points of the study's window.
    alpha : float
        Level of the per-subject tests.

    Returns
    -------
    dict
        ``time_courses`` (channel means averaged over subjects), ``window_mean``,
        ``per_subject`` (window means, p of each unique part's mean, significant and negative
        targets, intervals of the window mean), ``subjects_significant`` (unique part -> how
        many subjects have p <= alpha) and ``flags`` (negative parts, said in words).
    """
    per_sub, courses = {}, {}
    for name, f in files.items():
        z = np.load(f, allow_pickle=False)
        c = {k: np.nanmean(z[k], axis=0) for k in KEYS}  # (T,) channel means
        courses[name] = c
        parts = ("unique_a", "unique_b", "shared")
        per_sub[name] = {
            "window_mean": {k: float(np.nanmean(v[window])) for k, v in c.items()},
            "ci_window": {k: [float(np.nanmean(z[f"ci_{k}"][0][window])),
                              float(np.nanmean(z[f"ci_{k}"][1][window]))] for k in parts},
            "p_unique_mean": {k: float(z[f"p_mean_{k}"]) for k in ("unique_a", "unique_b")},
            "significant_targets": {k: int((z[f"p_{k}"] <= alpha).sum())
                                    for k in ("unique_a", "unique_b")},
            "negative_targets": {k: int(z[f"negative_{k}"]) for k in parts},
            "n_targets": int(z["unique_a"].size),
        }
    tc = {k: np.nanmean([courses[s][k] for s in courses], axis=0) for k in KEYS}
    wm = {k: float(np.nanmean(v[window])) for k, v in tc.items()}
    flags = [f"{k.replace('_', ' ')} is negative over the window (mean {v:.4f}): held-out, "
             "the joint model does worse than the sets alone there (overfitting or noise), "
             "reported as it is" for k, v in wm.items()
             if k in ("unique_a", "unique_b", "shared") and v < 0]
    return {"time_courses": tc, "window_mean": wm, "per_subject": per_sub,
            "subjects_significant": {k: int(sum(d["p_unique_mean"][k] <= alpha
                                                for d in per_sub.values()))
                                     for k in ("unique_a", "unique_b")},
            "n_subjects": len(per_sub), "flags": flags,
            "method": "engine's banded ridge (each set keeps its alpha), held-out R^2, "
                      "bootstrap over stimuli, permutation of each set's increment"}

"""Variance partitioning between two feature spaces (two models, or two layers) with joint ridge.

For every channel x time target the held-out R^2 of three ridge encoding models is computed:
A alone, B alone, and the joint model on ``[A, B]`` (each block z-scored on the training stimuli
and scaled by ``1/sqrt(D_block)`` so both blocks enter with equal total variance). Then::

    unique_A = R2_AB - R2_B      unique_B = R2_AB - R2_A      shared = R2_A + R2_B - R2_AB

Targets are stimulus means (repetitions averaged). Held-out scoring: the designated test
stimuli when the dataset has them (THINGS-EEG2), else K folds by a stable hash of the stimulus
id (the engine's folds). The ridge penalty is chosen per target on the training stimuli only
(efficient leave-one-out / GCV of :class:`sklearn.linear_model.RidgeCV`).
"""

from __future__ import annotations

import numpy as np

from ..align.engine import DEFAULT_ALPHAS, stable_fold
from ..base import EpochData, FeatureSet
from ..errors import NeuralignError


def _zscore(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = train.mean(0), train.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return (train - mu) / sd, (test - mu) / sd


def _held_out_r2(xtr, ytr, xte, yte, alphas) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SSE and SST per target on the held-out rows, plus the chosen alphas."""
    from sklearn.linear_model import RidgeCV

    model = RidgeCV(alphas=alphas, alpha_per_target=True, fit_intercept=True)
    model.fit(xtr, ytr)
    pred = model.predict(xte)
    sse = ((yte - pred) ** 2).sum(0)
    sst = ((yte - yte.mean(0)) ** 2).sum(0)
    return sse, sst, np.asarray(model.alpha_)


def variance_partition(
    data: EpochData,
    features_a: np.ndarray,
    features_b: np.ndarray,
    *,
    stimulus_ids: list[str],
    alphas=None,
    n_folds: int = 5,
) -> dict[str, np.ndarray]:
    """Unique and shared held-out variance of two feature spaces per channel x time.

    Parameters
    ----------
    data : EpochData
    features_a, features_b : ndarray, shape (N, D_a) / (N, D_b)
        Rows in ``stimulus_ids`` order (must cover every stimulus of ``data``).
    stimulus_ids : list of str
    alphas : array, optional
    n_folds : int
        Folds when ``data`` has no designated test set.

    Returns
    -------
    dict of str -> ndarray (C, T)
        ``r2_a``, ``r2_b``, ``r2_ab``, ``unique_a``, ``unique_b``, ``shared``.
    """
    alphas = DEFAULT_ALPHAS if alphas is None else np.asarray(alphas, dtype=float)
    ids, y = data.stimulus_means()
    index = {s: i for i, s in enumerate(stimulus_ids)}
    missing = [s for s in ids if s not in index]
    if missing:
        raise NeuralignError(f"{len(missing)} EEG stimuli are not in the features (e.g. {missing[:3]})")
    rows = np.array([index[s] for s in ids])
    fa = np.asarray(features_a, dtype=np.float64)[rows]
    fb = np.asarray(features_b, dtype=np.float64)[rows]
    if data.test_ids:
        test = set(data.test_ids)
        is_test = np.array([s in test for s in ids])
        splits = [(~is_test, is_test)]
    else:
        fold = np.array([stable_fold(s, n_folds) for s in ids])
        splits = [(fold != k, fold == k) for k in range(n_folds) if (fold == k).any()]
    if any(tr.sum() < 3 or te.sum() < 2 for tr, te in splits):
        raise NeuralignError("too few stimuli for held-out variance partitioning")
    m = y.shape[1]
    sse = {k: np.zeros(m) for k in ("a", "b", "ab")}
    sst = np.zeros(m)
    for tr, te in splits:
        a_tr, a_te = _zscore(fa[tr], fa[te])
        b_tr, b_te = _zscore(fb[tr], fb[te])
        sa, sb = 1 / np.sqrt(fa.shape[1]), 1 / np.sqrt(fb.shape[1])
        ab_tr = np.hstack([a_tr * sa, b_tr * sb])
        ab_te = np.hstack([a_te * sa, b_te * sb])
        for key, xtr, xte in (("a", a_tr, a_te), ("b", b_tr, b_te), ("ab", ab_tr, ab_te)):
            e, t, _ = _held_out_r2(xtr, y[tr], xte, y[te], alphas)
            sse[key] += e
        sst += t
    shape = data.epochs.shape[1:]
    with np.errstate(all="ignore"):
        r2 = {k: np.where(sst > 0, 1 - v / sst, np.nan).reshape(shape) for k, v in sse.items()}
    return {
        "r2_a": r2["a"], "r2_b": r2["b"], "r2_ab": r2["ab"],
        "unique_a": r2["ab"] - r2["b"], "unique_b": r2["ab"] - r2["a"],
        "shared": r2["a"] + r2["b"] - r2["ab"],
    }


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

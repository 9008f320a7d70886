"""Representational similarity analysis, vectorised over time points and layers.

EEG RDMs are built per time point from stimulus means (correlation distance over channels) or
from split halves (cross-validated Euclidean distance, unbiased by noise); model RDMs per layer
from features (correlation distance). RDM-to-RDM similarity is Spearman (or Pearson) over the
upper triangles. rsatoolbox computes the same quantities one RDM pair at a time; doing all time
points x layers as one rank + one matrix product is several times faster (see bench/).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def upper_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row/column indices of the strict upper triangle of an n x n matrix."""
    return np.triu_indices(n, k=1)


def correlation_rdms(x: np.ndarray) -> np.ndarray:
    """Correlation-distance RDMs.

    Parameters
    ----------
    x : ndarray, shape (G, n, F)
        ``G`` groups (time points or layers) of ``n`` patterns with ``F`` features.

    Returns
    -------
    ndarray, shape (G, P)
        Upper triangles (``P = n (n - 1) / 2``) of ``1 - corr(pattern_i, pattern_j)``.
    """
    x = np.asarray(x, dtype=float)
    xc = x - x.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(xc, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        xn = xc / norm
    g = xn @ np.swapaxes(xn, -1, -2)
    iu = upper_indices(x.shape[1])
    return 1.0 - g[:, iu[0], iu[1]]


def crossval_euclidean_rdms(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross-validated squared Euclidean RDMs from two independent halves.

    ``d_ij = (a_i - a_j) . (b_i - b_j) / F`` for patterns ``a``, ``b`` of shape (G, n, F):
    its expectation is the noise-free distance (noise in the halves is independent).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    gab = a @ np.swapaxes(b, -1, -2)  # (G, n, n)
    d = np.einsum("gii->gi", gab)
    full = d[:, :, None] + d[:, None, :] - gab - np.swapaxes(gab, -1, -2)
    iu = upper_indices(a.shape[1])
    return full[:, iu[0], iu[1]] / a.shape[-1]


def rank_rows(v: np.ndarray) -> np.ndarray:
    """Ranks along the last axis, ties averaged exactly as ``scipy.stats.rankdata``.

    One argsort per row; rows with ties (rare for continuous distances) go to scipy.
    """
    v = np.asarray(v, dtype=float)
    order = np.argsort(v, axis=-1)  # SIMD quicksort; exact: rows with ties go to scipy
    sorted_v = np.take_along_axis(v, order, axis=-1)
    ties = (np.diff(sorted_v, axis=-1) == 0).any(axis=-1)
    ranks = np.empty_like(v)
    np.put_along_axis(ranks, order, np.arange(1, v.shape[-1] + 1, dtype=float)[None, :]
                      if v.ndim == 2 else np.arange(1, v.shape[-1] + 1, dtype=float), axis=-1)
    if ties.any():
        ranks[ties] = rankdata(v[ties], axis=-1)
    return ranks


class IncrementalRanker:
    """Ranks of the rows of a ``(R, P)`` matrix, kept across calls where few columns change.

    An RDM over ``n`` stimuli changes only in the pairs of the stimuli whose EEG changed; the
    other values keep their sorted order, so the new ranks come from merging the few changed
    values into it (``O(P)`` per row instead of a sort). The ranks are exactly those of
    :func:`rank_rows` (tested); rows with ties, a changed shape or many changed columns are
    ranked from scratch.
    """

    def __init__(self) -> None:
        self.order: np.ndarray | None = None  # (R, P) columns in ascending order of value
        self.sorted: np.ndarray | None = None  # (R, P) the values in that order

    def rank(self, v: np.ndarray, changed: np.ndarray | None) -> np.ndarray:
        """Ranks of ``v`` (R, P); ``changed``: the columns that may differ from the last call
        (None: unknown)."""
        v = np.asarray(v, dtype=float)
        R, P = v.shape
        c = None if changed is None else np.unique(np.asarray(changed, dtype=np.int64))
        if (self.order is None or self.order.shape != v.shape or c is None
                or c.size > P // 4):
            self.order = np.argsort(v, axis=-1)
            self.sorted = np.take_along_axis(v, self.order, axis=-1)
        elif c.size:
            self._merge(v, c)
        ranks = np.empty_like(v)
        np.put_along_axis(ranks, self.order, np.arange(1, P + 1, dtype=float)[None, :], axis=-1)
        ties = (np.diff(self.sorted, axis=-1) == 0).any(axis=-1)
        if ties.any():
            ranks[ties] = rankdata(v[ties], axis=-1)
        return ranks

    def _merge(self, v: np.ndarray, c: np.ndarray) -> None:
        R, P = v.shape
        keep = np.ones(P, dtype=bool)
        keep[c] = False
        inkeep = keep[self.order]
        uo = self.order[inkeep].reshape(R, P - c.size)  # unchanged columns, still in order
        us = self.sorted[inkeep].reshape(R, P - c.size)
        nv = v[:, c]
        no = np.argsort(nv, axis=-1)
        ns = np.take_along_axis(nv, no, axis=-1)
        ncol = c[no]
        # where each changed value goes in its row's merged order (before equal unchanged
        # values); the unchanged ones fill the other places, still in their order
        at_new = np.zeros((R, P), dtype=bool)
        ar_new = np.arange(c.size)
        for r in range(R):
            at_new[r, np.searchsorted(us[r], ns[r], side="left") + ar_new] = True
        order = np.empty_like(self.order)
        vals = np.empty_like(self.sorted)
        order[at_new], vals[at_new] = ncol.ravel(), ns.ravel()
        at_old = ~at_new
        order[at_old], vals[at_old] = uo.ravel(), us.ravel()
        self.order, self.sorted = order, vals


def pairs_of(stimuli: np.ndarray, n: int) -> np.ndarray:
    """Upper-triangle pair indices (the order of :func:`upper_indices`) involving ``stimuli``."""
    iu, ju = upper_indices(n)
    hit = np.zeros(n, dtype=bool)
    hit[np.asarray(stimuli, dtype=np.int64)] = True
    return np.nonzero(hit[iu] | hit[ju])[0]


def _zscore_rows(v: np.ndarray) -> np.ndarray:
    vc = v - v.mean(axis=-1, keepdims=True)
    sd = np.sqrt((vc**2).sum(axis=-1, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        return vc / sd


def zscored_ranks(v: np.ndarray) -> np.ndarray:
    """Ranks along the last axis, centred and scaled to unit norm: their dot product is a
    Spearman correlation."""
    return _zscore_rows(rank_rows(v))


def compare_rdms(model: np.ndarray, brain: np.ndarray, *, method: str = "spearman") -> np.ndarray:
    """Similarity of every model RDM with every brain RDM.

    Parameters
    ----------
    model : ndarray (L, P)
    brain : ndarray (T, P)
    method : ``"spearman"`` (ranks, ties averaged as in scipy) or ``"pearson"``

    Returns
    -------
    ndarray (L, T)
    """
    if method == "spearman":
        model = rank_rows(model)
        brain = rank_rows(brain)
    elif method != "pearson":
        raise ValueError(f"method must be 'spearman' or 'pearson', got {method!r}")
    return _zscore_rows(np.asarray(model, float)) @ _zscore_rows(np.asarray(brain, float)).T


def model_rdm_ranks(layer_features: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Correlation-distance RDMs of every layer (L, P) and their z-scored ranks and values.

    Returns ``(z_ranks, z_values)``. Cache them: they only change when the set of RSA stimuli
    changes. A layer whose correlation distance is undefined (fewer than two feature
    dimensions, or a constant pattern) has NaN rows, so its RSA is NaN, never a number.
    """
    model = np.stack([correlation_rdms(np.asarray(f, float)[None])[0] for f in layer_features])
    bad = ~np.isfinite(model).all(axis=1) | (np.asarray([np.shape(f)[1] for f in layer_features])
                                             < 2)
    model[bad] = 0.0
    zr, zv = _zscore_rows(rank_rows(model)), _zscore_rows(model)
    zr[bad] = np.nan
    zv[bad] = np.nan
    return zr, zv


def rsa_maps(
    layer_features: list[np.ndarray],
    means: np.ndarray,
    half_a: np.ndarray | None = None,
    half_b: np.ndarray | None = None,
    *,
    prepared: tuple[np.ndarray, np.ndarray] | None = None,
    n_layers: int | None = None,
    brain: dict | None = None,
) -> dict[str, np.ndarray]:
    """Layer x time RSA maps.

    Parameters
    ----------
    layer_features : list of (n, D_l) arrays
        Features of the RSA stimuli (may be empty when ``prepared`` is given).
    means : (n, C, T) stimulus-mean EEG
    half_a, half_b : (n, C, T) split-half means, for the cross-validated RDM (optional)
    prepared : tuple, optional
        :func:`model_rdm_ranks` of the layers, computed earlier for the same stimuli.
    n_layers : int, optional
        Number of layers (default ``len(layer_features)``).
    brain : dict, optional
        :func:`brain_rdms` of these means and halves, computed earlier (several models share
        the EEG side).

    Returns
    -------
    dict with ``spearman``, ``pearson`` and ``cv_spearman`` (L, T) (NaN when not computable).
    """
    n, _, t = means.shape
    L = len(layer_features) if n_layers is None else int(n_layers)
    out = {k: np.full((L, t), np.nan) for k in ("spearman", "pearson", "cv_spearman")}
    if n < 3:
        return out
    zr, zv = model_rdm_ranks(layer_features) if prepared is None else prepared
    b = brain_rdms(means, half_a, half_b) if brain is None else brain
    out["spearman"] = zr @ b["rank"].T
    out["pearson"] = zv @ b["value"].T
    if b["cv_rank"] is not None:
        out["cv_spearman"] = zr @ b["cv_rank"].T
    return out


def brain_rdms(means: np.ndarray, half_a: np.ndarray | None = None,
               half_b: np.ndarray | None = None, *, rankers: dict | None = None,
               changed: np.ndarray | None = None) -> dict:
    """The EEG side of RSA, ready to compare with any model's RDMs.

    Parameters
    ----------
    means : (n, C, T) stimulus-mean EEG
    half_a, half_b : (n, C, T) split-half means, optional
    rankers : dict, optional
        :class:`IncrementalRanker` per RDM kind, kept by the caller across calls.
    changed : array of int, optional
        Stimuli (rows) whose means or halves changed since the rankers' last call.

    Returns
    -------
    dict
        ``rank`` and ``value``: z-scored ranks and values of the correlation-distance RDM per
        time point (T, P); ``cv_rank``: z-scored ranks of the cross-validated Euclidean RDM
        (or None without halves).
    """
    cols = None if changed is None else pairs_of(changed, means.shape[0])

    def ranks(kind: str, v: np.ndarray) -> np.ndarray:
        if rankers is None:
            return rank_rows(v)
        return rankers.setdefault(kind, IncrementalRanker()).rank(v, cols)

    brain = correlation_rdms(np.transpose(means, (2, 0, 1)))
    out = {"rank": _zscore_rows(ranks("corr", brain)), "value": _zscore_rows(brain),
           "cv_rank": None}
    if half_a is not None and half_b is not None:
        cv = crossval_euclidean_rdms(np.transpose(half_a, (2, 0, 1)), np.transpose(half_b, (2, 0, 1)))
        out["cv_rank"] = _zscore_rows(ranks("cv", cv))
    return out


def rdm_split_half_ceiling(half_a: np.ndarray, half_b: np.ndarray, *,
                           rankers: dict | None = None,
                           changed: np.ndarray | None = None) -> np.ndarray:
    """Noise ceiling of RSA per time point from split-half EEG RDMs.

    Spearman r between the correlation-distance RDMs of the two halves, Spearman-Brown
    corrected to the full data (``rel = 2r / (1 + r)``); the ceiling on a model's Spearman rho
    with the full-data RDM is ``sqrt(rel)``. ``half_a``/``half_b``: (n, C, T). Returns (T,).
    ``rankers`` and ``changed`` as in :func:`brain_rdms`.
    """
    cols = None if changed is None else pairs_of(changed, half_a.shape[0])

    def ranks(kind: str, h: np.ndarray) -> np.ndarray:
        v = correlation_rdms(np.transpose(h, (2, 0, 1)))
        if rankers is None:
            return _zscore_rows(rank_rows(v))
        return _zscore_rows(rankers.setdefault(kind, IncrementalRanker()).rank(v, cols))

    ra, rb = ranks("half_a", half_a), ranks("half_b", half_b)
    r = (ra * rb).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = 2 * r / (1 + r)
    return np.sqrt(np.clip(rel, 0.0, 1.0))

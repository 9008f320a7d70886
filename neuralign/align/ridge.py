"""Ridge encoding from per-block sufficient statistics.

Stimuli are split into blocks (cross-validation folds, plus a designated test block). For each
block ``b`` and layer we keep ``n_b``, ``sum x``, ``S_xx = sum x x'``, ``S_xy = sum x y'``,
``sum y`` and ``sum y^2`` (targets ``y`` are stimulus-mean EEG, every channel x time point).
Everything below works from these statistics alone, so no raw history is needed and a new
epoch only changes the statistics of one block.

Why our own solver rather than himalaya / scikit-learn: neither can update from sufficient
statistics (no ``partial_fit``), and both redo work per alpha that one eigendecomposition per
training set makes unnecessary. For a training set we centre, eigendecompose
``C_xx = V diag(lam) V'`` once, and every alpha's weights are ``W(a) = V diag(1/(lam + a)) V' C_xy``.
Validation sums (``sum yhat``, ``sum yhat y``, ``sum yhat^2``) come from the validation block's
statistics projected on ``V``, so choosing an alpha per target costs one stacked product.

All heavy operations go through a backend module (:mod:`neuralign.align.backends`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class BlockStats:
    """Sufficient statistics of one layer for every block (leading axis = block).

    Attributes
    ----------
    n : (B,) number of stimuli
    sx : (B, D) sum of features
    sxx : (B, D, D) sum of feature outer products
    sxy : (B, D, M) sum of feature x target products
    sy : (B, M) sum of targets
    syy : (B, M) sum of squared targets
    """

    n: np.ndarray
    sx: np.ndarray
    sxx: np.ndarray
    sxy: np.ndarray
    sy: np.ndarray
    syy: np.ndarray

    @classmethod
    def zeros(cls, n_blocks: int, dim: int, n_targets: int) -> BlockStats:
        return cls(
            n=np.zeros(n_blocks),
            sx=np.zeros((n_blocks, dim)),
            sxx=np.zeros((n_blocks, dim, dim)),
            sxy=np.zeros((n_blocks, dim, n_targets)),
            sy=np.zeros((n_blocks, n_targets)),
            syy=np.zeros((n_blocks, n_targets)),
        )


@dataclass
class _Solved:
    """One training set, solved: centring means, eigenbasis, projected cross-products."""

    n: float
    mx: object  # (D,)
    my: object  # (M,)
    lam: object  # (D,)
    V: object  # (D, D)
    Z: object  # (D, M) = V' C_xy
    syy_c: object  # (M,) centred sum of squared targets


def _solve_trainsets(B, stats: BlockStats, masks: list[np.ndarray], dtype: str) -> list[_Solved]:
    """Centre and eigendecompose every training set (one batched eigh call).

    Every training set is the total over all blocks minus its (one or two) left-out blocks,
    built for all sets at once: a few passes over (sets, D, M) instead of several per set.
    """
    masks_a = np.asarray(masks, dtype=bool)  # (S, B)
    left = (~masks_a).astype(float)  # (S, B): 1 where the block is left out
    n = stats.n.sum() - left @ stats.n  # (S,)
    n = np.maximum(n, 1.0)
    sx = stats.sx.sum(0)[None] - left @ stats.sx  # (S, D)
    sy = stats.sy.sum(0)[None] - left @ stats.sy  # (S, M)
    mx = sx / n[:, None]
    my = sy / n[:, None]
    syy_c = stats.syy.sum(0)[None] - left @ stats.syy - sy * my  # (S, M)
    tot_xx = stats.sxx.sum(0)
    tot_xy = stats.sxy.sum(0)
    cxx = np.empty((len(masks),) + tot_xx.shape)
    cxy = np.empty((len(masks),) + tot_xy.shape, dtype=np.float32 if dtype == "float32" else float)
    for k in range(len(masks)):
        out = np.nonzero(left[k])[0]
        cxx[k] = tot_xx - stats.sxx[out].sum(0) - n[k] * np.outer(mx[k], mx[k])
        # centred cross-products: (total - left-out blocks) - mx sy', written once in `dtype`
        np.subtract(tot_xy - stats.sxy[out].sum(0), np.outer(mx[k], sy[k]), out=cxy[k],
                    casting="same_kind")
    lam, V = B.eigh(B.asarray(cxx, dtype))
    lam = B.clip_min(lam, 0.0)
    Z = B.swapaxes(V, -1, -2) @ B.asarray(cxy, dtype)
    mx_b, my_b, syy_b = B.asarray(mx, dtype), B.asarray(my, dtype), B.asarray(syy_c, dtype)
    return [_Solved(float(n[i]), mx_b[i], my_b[i], lam[i], V[i], Z[i], syy_b[i])
            for i in range(len(masks))]


def _val_projections(B, s: _Solved, stats: BlockStats, block: int, dtype: str):
    """Validation statistics of ``block`` in the eigenbasis of training set ``s``.

    Returns ``nv, su (D), P (D, M), Q (D, D), syv (M), syyv (M)`` with ``u = V'(x - mx)``:
    ``su = sum u``, ``P = sum u y'``, ``Q = sum u u'``.
    """
    nv = float(stats.n[block])
    sxv = B.asarray(stats.sx[block], dtype)
    sxxv = B.asarray(stats.sxx[block], dtype)
    syv = B.asarray(stats.sy[block], dtype)
    syyv = B.asarray(stats.syy[block], dtype)
    Vt = B.swapaxes(s.V, 0, 1)
    mx = s.mx
    su = Vt @ (sxv - nv * mx)
    # P = V'(S_xy,v - mx sy_v'): one product, then a rank-one correction
    P = Vt @ B.asarray(stats.sxy[block], dtype)
    P -= (Vt @ mx)[:, None] * syv[None, :]
    cx = sxxv - mx[:, None] * sxv[None, :] - sxv[:, None] * mx[None, :] + nv * (mx[:, None] * mx[None, :])
    Q = Vt @ cx @ s.V
    return nv, su, P, Q, syv, syyv


def _colsum_prod(B, a, b):
    """sum over the D axis of a * b, for (..., D, M) arrays, without a temporary."""
    return B.einsum("...dm,...dm->...m", a, b)


def _pred_sums(B, G, s: _Solved, nv, su, P, Q, syv):
    """Sums over a validation block of yhat, yhat*y and yhat^2 for weights G (..., D, M)."""
    my = s.my
    suG = su @ G  # (..., M)
    s_h = suG + nv * my
    s_hy = _colsum_prod(B, G, P) + my * syv
    s_hh = _colsum_prod(B, G, Q @ G) + 2.0 * my * suG + nv * my * my
    return s_h, s_hy, s_hh


def gcv_select(B, s: _Solved, alphas: np.ndarray, dtype: str) -> np.ndarray:
    """Choose an alpha per target by generalised cross-validation on the training set alone.

    ``GCV(a) = n RSS(a) / (n - 1 - df(a))^2`` (Golub, Heath & Wahba 1979; the ``- 1`` counts the
    intercept), with ``df(a) = sum_j lam_j / (lam_j + a)`` and, in the training eigenbasis,
    ``RSS(a) = syy_c - sum_j Z_jm^2 (2 / (lam_j + a) - lam_j / (lam_j + a)^2)``: one (K x D) by
    (D x M) product for all alphas and targets, so selection costs almost nothing next to the
    eigendecomposition. Only training data enter, so the held-out score is not inflated.

    Returns the (M,) index into ``alphas``.
    """
    a = B.asarray(np.asarray(alphas, dtype=float), dtype)
    lam = s.lam
    inv = 1.0 / (lam[None, :] + a[:, None])  # (K, D)
    w = 2.0 * inv - lam[None, :] * inv * inv
    rss = s.syy_c[None, :] - w @ (s.Z * s.Z)  # (K, M)
    df = B.sum(lam[None, :] * inv, axis=1)  # (K,)
    denom = (s.n - 1.0 - df) ** 2
    gcv = rss / B.clip_min(denom, 1e-12)[:, None]
    return np.asarray(B.to_numpy(B.argmin(gcv, axis=0)), dtype=np.int64)


def fit_score(
    B,
    stats: BlockStats,
    outer: list[tuple[np.ndarray, list[int]]],
    alphas: np.ndarray,
    alpha_idx: list[np.ndarray],
    dtype: str,
    solved: list[_Solved] | None = None,
) -> dict[str, np.ndarray]:
    """Fit with the chosen alpha per target and pool prediction sums over scored blocks.

    Parameters
    ----------
    outer : list of (train_mask, scored_blocks)
    alpha_idx : list of (M,) int arrays, one per outer split

    Returns
    -------
    dict with pooled ``n, s_h, s_y, s_hh, s_yy, s_hy`` (float64 NumPy) and ``r`` (M,).
    """
    M = stats.sy.shape[1]
    acc = {k: np.zeros(M) for k in ("s_h", "s_y", "s_hh", "s_yy", "s_hy")}
    n_tot = 0.0
    if solved is None:
        solved = _solve_trainsets(B, stats, [m for m, _ in outer], dtype)
    alphas = np.asarray(alphas, dtype=float)
    for s, (_, blocks), idx in zip(solved, outer, alpha_idx):
        a_t = B.asarray(alphas[idx], dtype)  # (M,)
        G = s.Z / (s.lam[:, None] + a_t[None, :])  # (D, M)
        for vb in blocks:
            if stats.n[vb] < 1:
                continue
            nv, su, P, Q, syv, syyv = _val_projections(B, s, stats, vb, dtype)
            s_h, s_hy, s_hh = _pred_sums(B, G, s, nv, su, P, Q, syv)
            n_tot += nv
            acc["s_h"] += B.to_numpy(s_h).astype(float)
            acc["s_hy"] += B.to_numpy(s_hy).astype(float)
            acc["s_hh"] += B.to_numpy(s_hh).astype(float)
            acc["s_y"] += stats.sy[vb]
            acc["s_yy"] += stats.syy[vb]
    acc["n"] = n_tot
    acc["r"] = pooled_pearson(acc)
    return acc


def pooled_pearson(acc: dict) -> np.ndarray:
    """Pearson r from pooled sums (NaN where undefined)."""
    n = acc["n"]
    if n < 2:
        return np.full_like(acc["s_y"], np.nan)
    cov = acc["s_hy"] - acc["s_h"] * acc["s_y"] / n
    vh = acc["s_hh"] - acc["s_h"] ** 2 / n
    vy = acc["s_yy"] - acc["s_y"] ** 2 / n
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.sqrt(vh * vy)
    r[~((vh > 0) & (vy > 0))] = np.nan
    return np.clip(r, -1.0, 1.0)

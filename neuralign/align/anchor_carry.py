"""What a :class:`~neuralign.align.anchor.DualAnchor` carries across refreshes for its
predictions.

The predictions of rows ``R`` (see :meth:`~neuralign.align.anchor_terms.RefreshTerms.predict`)
need the embedding ``E0 = Kh[R, T0] U0`` (``R x n0``), the anchor term ``(E0 D_a) V1`` per
target with its alpha (``R x M``, the only ``R x n0 x M`` product) and ``E0 D_a G`` per alpha
in use (``R x k``). None of them changes while the anchor lives except where it must: rows
newly predicted, targets whose alpha moved, changed targets of anchor rows (a rank-``r``
correction) and columns of rows added since. A refresh computes only that.

Targets are in the anchor's internal order (``DualAnchor.perm``): a lean anchor keeps them
sorted by alpha, so each alpha's targets are one contiguous slice.
"""

from __future__ import annotations

import numpy as np


def alpha_runs(idx: np.ndarray):
    """``(alpha index, targets)`` of every alpha ``idx`` uses; the targets are a slice when
    they are contiguous (``idx`` sorted), else positions."""
    idx = np.asarray(idx)
    if idx.size and np.all(idx[1:] >= idx[:-1]):
        bounds = np.concatenate([[0], np.flatnonzero(np.diff(idx)) + 1, [idx.size]])
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            yield int(idx[a]), slice(a, b)
        return
    for ai in np.unique(idx).tolist():
        yield ai, np.flatnonzero(idx == ai)


class PredictionCarry:
    """Embeddings and prediction terms of one anchor, kept across refreshes.

    Parameters
    ----------
    n_candidates : int
        Candidate stimuli (rows of the Gram matrix).
    """

    def __init__(self, n_candidates: int) -> None:
        self._E_rows: np.ndarray | None = None  # embeddings of the rows predicted so far
        self._E_at = np.full(n_candidates, -1, dtype=np.int64)  # their place in _E_rows
        self._E_last: dict = {}  # dtype -> (rows, E) of the last call (every call of a refresh)
        # (rows, alpha index per target, dtype, (R, M) float64)
        self._base: tuple | None = None
        self._edg: dict[tuple, tuple] = {}  # (alpha, dtype) -> (rows, E0 D_a G)

    def nbytes(self) -> int:
        """Bytes held."""
        arrays = [self._E_at] + ([self._E_rows] if self._E_rows is not None else [])
        arrays += [e[1] for e in self._E_last.values()]
        arrays += [self._base[3]] if self._base is not None else []
        arrays += [e[1] for e in self._edg.values()]
        return int(sum(a.nbytes for a in arrays))

    def embedding(self, an, predict: np.ndarray, dtype: str = "float64") -> np.ndarray:
        """``Kh[predict, T0] U0`` of anchor ``an`` (``(R, n0)`` in ``dtype``, read only)."""
        last = self._E_last.get(dtype)
        if last is not None and np.array_equal(last[0], predict):
            return last[1]
        if dtype != "float64":
            E = np.asarray(self.embedding(an, predict), dtype=dtype)
        else:
            at = self._E_at[predict]
            if (at < 0).any():
                miss = np.unique(predict[at < 0])
                start = 0 if self._E_rows is None else self._E_rows.shape[0]
                self._E_at[miss] = start + np.arange(miss.size)
                block = an.khat(miss, an.rows0) @ an.U0
                self._E_rows = block if self._E_rows is None else np.concatenate(
                    [self._E_rows, block])
                at = self._E_at[predict]
            E = self._E_rows[at]
        self._E_last[dtype] = (np.array(predict, dtype=np.int64), E)
        return E

    def base_term(self, an, predict: np.ndarray, idx: np.ndarray, dtype: str) -> np.ndarray:
        """``(E0 D_a) V1`` for the rows ``predict``, target by target with alpha ``idx[m]``
        (R, M) float64. Only what changed is computed: targets whose alpha changed, rows newly
        predicted; :meth:`fold_changes` folds changed targets in by a rank-``r`` product."""
        idx = np.asarray(idx, dtype=np.int64)
        old = self._base
        if old is None or old[2] != dtype or not np.isin(old[0], predict).all():
            B = self._block(an, predict, idx, dtype, None)
        else:
            rows0, idx0, _, B0 = old
            B = B0
            if rows0.size != predict.size:  # rows newly predicted: every target
                at_old = np.searchsorted(predict, rows0)
                new = np.setdiff1d(predict, rows0)
                B = np.empty((predict.size, idx.size))
                B[at_old] = B0
                B[np.searchsorted(predict, new)] = self._block(an, new, idx0, dtype, None)
            moved = np.flatnonzero(idx0 != idx)  # targets whose alpha changed
            if moved.size:
                B[:, moved] = self._block(an, predict, idx, dtype, moved)
        self._base = (np.array(predict, dtype=np.int64), idx.copy(), dtype, B)
        return B

    def _block(self, an, rows: np.ndarray, idx: np.ndarray, dtype: str,
               cols: np.ndarray | None) -> np.ndarray:
        """``(E0 D_a) V1[:, cols]`` for ``rows`` (alpha ``idx[m]`` for target ``m``; all
        targets: None), products in ``dtype``; for a few rows (those newly predicted) in
        float64, where casting ``V1`` would cost more than the product."""
        if rows.size < 32:
            dtype = "float64"
        E0 = self.embedding(an, rows, dtype)
        sub = idx if cols is None else idx[cols]
        out = np.empty((rows.size, sub.size))
        for ai, run in alpha_runs(sub):
            src = run if cols is None else cols[run]
            W = E0 * np.asarray(an.D[ai], dtype=dtype)[None, :]
            out[:, run] = W @ np.asarray(an.V1[:, src], dtype=dtype)
        return out

    def fold_changes(self, an, Z: np.ndarray, d: np.ndarray) -> None:
        """``V1`` moved by ``Z' d`` (changed targets of anchor rows): the anchor term moves by
        ``E0 D_a Z' d``, rank ``len(d)``."""
        if self._base is None:
            return
        rows_p, idx, _, B = self._base
        E0 = self.embedding(an, rows_p)
        for ai, run in alpha_runs(idx):
            B[:, run] += ((E0 * an.D[ai][None, :]) @ Z.T) @ d[:, run]

    def permute(self, take: np.ndarray) -> None:
        """Targets reordered: new position ``j`` holds old position ``take[j]``."""
        if self._base is not None:
            rows, idx, dtype, B = self._base
            self._base = (rows, idx[take], dtype, B[:, take])

    def edg(self, an, rows: np.ndarray, ai: int, dtype: str) -> np.ndarray:
        """``E0 D_a G`` for ``rows`` (R, k) in ``dtype``: its entries never change (``G`` only
        gains columns), so a refresh computes only the columns of rows added since and the
        rows newly predicted (``R x n0 x k_new``, not ``k``)."""
        k = an.k
        old = self._edg.get((ai, dtype))
        d = np.asarray(an.D[ai], dtype=dtype)[None, :]

        def block(r, c0):
            return (self.embedding(an, r, dtype) * d) @ np.asarray(an.G[:, c0:k], dtype=dtype)

        if old is None or not np.isin(old[0], rows).all():
            out = block(rows, 0)
        else:
            rows0, arr = old
            out = np.empty((rows.size, k), dtype=dtype)
            at_old = np.searchsorted(rows, rows0)
            out[at_old, :arr.shape[1]] = arr
            if arr.shape[1] < k:
                out[at_old, arr.shape[1]:] = block(rows0, arr.shape[1])
            if rows0.size != rows.size:
                new = np.setdiff1d(rows, rows0)
                out[np.searchsorted(rows, new)] = block(new, 0)
        self._edg[(ai, dtype)] = (np.array(rows, dtype=np.int64), out)
        return out

"""Live refreshes of wide layers without an eigendecomposition per refresh.

During a live session a training set only grows. A :class:`DualAnchor` keeps the
eigendecomposition of the training set it was built on (``T0``, ``n0`` stimuli) and answers
for ``T0`` plus the ``k`` stimuli added since, exactly, through the Schur complement of the
bordered Gram matrix: per alpha a ``k x k`` system instead of an ``n x n`` eigendecomposition.
What the added stimuli need (``G' D_a V1`` below) is kept and updated as targets change, so a
refresh costs a few products of ``n0 x M`` size plus work proportional to the stimuli that
are new or changed since the last one. When ``k`` grows past a bound the layer re-anchors (one
eigendecomposition).

The math, with features centred at the anchor's mean (``Kh``: that kernel; any fixed centre
gives the same ridge predictions because the intercept is unpenalised) and targets centred at
the anchor's mean ``ybar0``. For the training set ``T = T0 + A``::

    Kh_TT = [[U0 diag(s0) U0', B], [B', C]],   G = U0' B,   d_a = 1 / (s0 + a)
    V1 = U0' y_T0,   S_a = C + a I - G' diag(d_a) G                 (k x k, >= a I)
    H_a = (Kh_TT + a I)^-1 applied to [v1; v2]:  x2 = S_a^-1 (v2 - G' d_a U0'v1),
                                                 z1 = d_a (U0'v1 - G x2)   (U0 coordinates)
    unpenalised intercept: b = 1'H_a y / 1'H_a 1,  c = H_a (y - b 1)
    RSS(a) = a^2 |c|^2,  n - 1 - df(a) = a tr(H_a) - a |H_a 1|^2 / 1'H_a 1
    prediction of rows R: Kh_RT c + b + ybar0

It agrees with a fresh eigendecomposition to round-off (tests: 1e-10). Everything that
selects alphas is float64.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .anchor_terms import RefreshTerms


class DualAnchor:
    """The eigendecomposition of one training set, extended exactly for stimuli added since.

    Parameters
    ----------
    gram : ndarray (N, N)
        Uncentred Gram matrix of every candidate stimulus (float64).
    rows0 : ndarray of int64
        The anchor's training rows.
    y0 : ndarray (n0, M)
        Their current targets (float64).
    alphas : ndarray (K,)
        The alpha grid (fixed for the anchor's life).
    expect_k : int
        Rows expected to be added before re-anchoring (buffers are sized for them).
    """

    def __init__(self, gram: np.ndarray, rows0: np.ndarray, y0: np.ndarray,
                 alphas: np.ndarray, *, expect_k: int = 0) -> None:
        self.gram = gram
        self.alphas = np.asarray(alphas, dtype=float)
        self.rows0 = np.asarray(rows0, dtype=np.int64)
        self.n0 = int(self.rows0.size)
        self.in0 = np.zeros(gram.shape[0], dtype=bool)
        self.in0[self.rows0] = True
        self.pos0 = np.full(gram.shape[0], -1, dtype=np.int64)
        self.pos0[self.rows0] = np.arange(self.n0)
        self.kbar = gram[:, self.rows0].mean(1)  # x_i . xbar0 for every candidate
        self.kbb = float(self.kbar[self.rows0].mean())  # xbar0 . xbar0
        s0, U0 = np.linalg.eigh(self.khat(self.rows0, self.rows0))
        self.s0 = np.maximum(s0, 0.0)
        self.U0 = U0
        self.D = 1.0 / (self.s0[None, :] + self.alphas[:, None])  # (K, n0)
        self.ybar0 = y0.mean(0)
        self.V1 = U0.T @ (y0 - self.ybar0)  # (n0, M), kept up to date as targets change
        self.q = U0.sum(0)  # U0' 1
        # the extension: rows added since the anchor, their G columns, and per alpha
        # G' D_a V1, G' D_a^2 V1 (k x M) and G' D_a G, G' D_a^2 G (k x k), kept in buffers
        # that grow by doubling (a refresh appends a few rows; no copy of the k x M blocks)
        self.ext = np.zeros(0, dtype=np.int64)
        self._buf_G = np.zeros((self.n0, 0))  # G's columns, kept in a buffer like the rest
        self._cap = 0
        self._buf_v = np.zeros((2, self.alphas.size, 0, self.V1.shape[1]))
        self._buf_g = np.zeros((2, self.alphas.size, 0, 0))
        self._reserve(int(expect_k))
        self._v1_sums: tuple | None = None  # what GCV needs of V1 alone (see v1_sums)
        self._E_rows = np.zeros((0, self.n0))  # embeddings of the rows predicted so far
        self._E_at = np.full(gram.shape[0], -1, dtype=np.int64)  # their place in _E_rows
        self._E_last: tuple | None = None
        # the predictions' anchor term (E0 D_a V1, per target with its alpha), carried across
        # refreshes: (rows, alpha index per target, dtype, (R, M) float64)
        self._base: tuple | None = None
        self._edg: dict[tuple, tuple] = {}  # (alpha, dtype) -> (rows, E0 D_a G), see edg

    # ------------------------------------------------------------------ geometry
    def khat(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The Gram block of rows ``a`` x ``b`` with features centred at the anchor's mean."""
        return (self.gram[np.ix_(a, b)] - self.kbar[a][:, None] - self.kbar[b][None, :]
                + self.kbb)

    def covers(self, train: np.ndarray) -> bool:
        """Whether ``train`` holds every anchor row and every row extended so far."""
        if int(self.in0[train].sum()) != self.n0:
            return False
        return bool(np.isin(self.ext, train).all())

    def added(self, train: np.ndarray) -> np.ndarray:
        """Rows of ``train`` added since the anchor."""
        return train[~self.in0[train]]

    @property
    def k(self) -> int:
        """Rows added since the anchor."""
        return int(self.ext.size)

    @property
    def G(self) -> np.ndarray:
        """``U0' Kh[T0, A]`` of the rows added so far, (n0, k) (a view)."""
        return self._buf_G[:, :self.k]

    @property
    def GDV(self) -> np.ndarray:
        """``G' D_a V1`` for every alpha, (K, k, M)."""
        return self._buf_v[0, :, :self.k]

    @property
    def GD2V(self) -> np.ndarray:
        """``G' D_a^2 V1`` for every alpha, (K, k, M)."""
        return self._buf_v[1, :, :self.k]

    @property
    def GDG(self) -> np.ndarray:
        """``G' D_a G`` for every alpha, (K, k, k)."""
        return self._buf_g[0, :, :self.k, :self.k]

    @property
    def GD2G(self) -> np.ndarray:
        """``G' D_a^2 G`` for every alpha, (K, k, k)."""
        return self._buf_g[1, :, :self.k, :self.k]

    def _gdx(self, g: np.ndarray, X: np.ndarray) -> np.ndarray:
        """``g' D_a^p X`` for p = 1, 2 and every alpha in one product: (2, K, k, cols)."""
        K, k = self.alphas.size, g.shape[1]
        gd = g.T[None, None, :, :] * np.stack([self.D, self.D * self.D])[:, :, None, :]
        return (gd.reshape(2 * K * k, -1) @ X).reshape(2, K, k, -1)

    def _reserve(self, k: int) -> None:
        if k <= self._cap:
            return
        cap = max(k, 2 * self._cap, 8)
        n = self.k
        bv = np.zeros(self._buf_v.shape[:2] + (cap, self._buf_v.shape[3]))
        bg = np.zeros(self._buf_g.shape[:2] + (cap, cap))
        bG = np.zeros((self.n0, cap))
        bv[:, :, :n] = self._buf_v[:, :, :n]
        bg[:, :, :n, :n] = self._buf_g[:, :, :n, :n]
        bG[:, :n] = self._buf_G[:, :n]
        self._buf_v, self._buf_g, self._buf_G, self._cap = bv, bg, bG, cap

    def extend(self, A: np.ndarray) -> np.ndarray:
        """Take in the added rows ``A`` (a superset of those taken so far); return their order."""
        new = A[~np.isin(A, self.ext)]
        if new.size:
            k0, k1 = self.k, self.k + new.size
            self._reserve(k1)
            g = self.U0.T @ self.khat(self.rows0, new)
            self._buf_G[:, k0:k1] = g
            self._buf_v[:, :, k0:k1] = self._gdx(g, self.V1)
            cross = self._gdx(g, self._buf_G[:, :k1])  # (2, K, new, k1): new rows, every row
            self._buf_g[:, :, k0:k1, :k1] = cross
            self._buf_g[:, :, :k0, k0:k1] = np.swapaxes(cross[:, :, :, :k0], 2, 3)
            self.ext = np.concatenate([self.ext, new])
        return self.ext

    def apply_changes(self, rows: np.ndarray, delta: np.ndarray) -> None:
        """Fold changed target means of anchor rows into ``V1`` and what depends on it."""
        sel = self.in0[rows]
        if not sel.any():
            return
        Z = self.U0[self.pos0[rows[sel]]]  # (r, n0)
        d = delta[sel]
        self.V1 += Z.T @ d
        self._v1_sums = None
        if self._base is not None:  # the anchor term moves by E0 D_a Z' d: rank len(d)
            rows_p, idx, dtype, B = self._base
            E0 = self.embedding(rows_p)
            for ai in np.unique(idx).tolist():
                cols = np.nonzero(idx == ai)[0]
                B[:, cols] += ((E0 * self.D[ai][None, :]) @ Z.T) @ d[:, cols]
        if self.k:
            self._buf_v[:, :, :self.k] += self._gdx(self.G, Z.T) @ d

    def v1_sums(self) -> tuple:
        """``(D_a q)' V1``, ``(D_a^2 q)' V1`` and ``|D_a V1|^2`` per alpha and target (K, M)
        each, kept while ``V1`` is unchanged (new stimuli do not change it; repetitions of
        anchor rows do)."""
        if self._v1_sums is None:
            dq = self.D * self.q[None, :]
            u = np.concatenate([dq, self.D * dq]) @ self.V1
            K = self.alphas.size
            self._v1_sums = (u[:K], u[K:], (self.D * self.D) @ (self.V1 * self.V1))
        return self._v1_sums

    def nbytes(self) -> int:
        """Bytes held (what :meth:`~neuralign.align.layer.LayerSolver.cache_bytes` plans)."""
        arrays = [self.U0, self.V1, self._buf_G, self.D, self._buf_v, self._buf_g, self.kbar,
                  self.in0, self.pos0, self.q, self.ybar0, self._E_rows, self._E_at]
        arrays += [self._E_last[1]] if self._E_last is not None else []
        arrays += [self._base[3]] if self._base is not None else []
        arrays += [e[1] for e in self._edg.values()]
        return int(sum(a.nbytes for a in arrays))

    def embedding(self, predict: np.ndarray) -> np.ndarray:
        """``Kh[predict, T0] U0``, rows kept across refreshes (``(R, n0)``, read only)."""
        last = self._E_last
        if last is not None and np.array_equal(last[0], predict):
            return last[1]  # the same rows as last time (every call of a refresh)
        at = self._E_at[predict]
        if (at < 0).any():
            miss = np.unique(predict[at < 0])
            self._E_at[miss] = self._E_rows.shape[0] + np.arange(miss.size)
            self._E_rows = np.concatenate([self._E_rows, self.khat(miss, self.rows0) @ self.U0])
            at = self._E_at[predict]
        E = self._E_rows[at]
        self._E_last = (np.array(predict, dtype=np.int64), E)
        return E

    def base_term(self, predict: np.ndarray, idx: np.ndarray, dtype: str) -> np.ndarray:
        """``(E0 D_a) V1`` for the rows ``predict``, target by target with alpha ``idx[m]``
        (R, M) float64: the predictions' largest product (``R x n0 x M``), carried across
        refreshes. Only what changed is computed: targets whose alpha changed, rows newly
        predicted; :meth:`apply_changes` folds changed targets in by a rank-``r`` product."""
        idx = np.asarray(idx, dtype=np.int64)
        old = self._base
        if old is None or old[2] != dtype or not np.isin(old[0], predict).all():
            B = self._base_block(predict, idx, dtype, np.arange(idx.size))
        else:
            rows0, idx0, _, B0 = old
            B = B0
            if rows0.size != predict.size:  # rows newly predicted: every target
                at_old = np.searchsorted(predict, rows0)
                new = np.setdiff1d(predict, rows0)
                B = np.empty((predict.size, idx.size))
                B[at_old] = B0
                B[np.searchsorted(predict, new)] = self._base_block(new, idx0, dtype,
                                                                    np.arange(idx.size))
            moved = np.nonzero(idx0 != idx)[0]  # targets whose alpha changed
            if moved.size:
                B[:, moved] = self._base_block(predict, idx[moved], dtype, moved)
        self._base = (np.array(predict, dtype=np.int64), idx.copy(), dtype, B)
        return B

    def edg(self, rows: np.ndarray, ai: int, dtype: str) -> np.ndarray:
        """``E0 D_a G`` for ``rows`` (R, k) in ``dtype``: kept across refreshes (its entries
        never change: ``G`` only gains columns), so a refresh computes only the columns of
        rows added since and the rows newly predicted (``R x n0 x k_new``, not ``k``)."""
        k = self.k
        old = self._edg.get((ai, dtype))
        d = np.asarray(self.D[ai], dtype=dtype)[None, :]
        G = self.G if dtype == "float64" else self.G.astype(dtype)

        def block(r, c0):
            return (np.asarray(self.embedding(r), dtype=dtype) * d) @ G[:, c0:k]

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

    def _base_block(self, rows: np.ndarray, idx: np.ndarray, dtype: str,
                    cols: np.ndarray) -> np.ndarray:
        """``(E0 D_a) V1[:, cols]`` for ``rows`` (alpha ``idx[j]`` for column ``cols[j]``),
        one contiguous slice of ``V1`` per alpha group; products in ``dtype``."""
        E0 = np.asarray(self.embedding(rows), dtype=dtype)
        order = np.argsort(idx, kind="stable")
        V1 = np.asarray(self.V1[:, cols[order]], dtype=dtype)  # a copy: not kept
        out = np.empty((rows.size, cols.size))
        bounds = np.flatnonzero(np.diff(idx[order])) + 1
        for sl in np.split(np.arange(cols.size), bounds):
            if not sl.size:
                continue
            ai = int(idx[order[sl[0]]])
            W = E0 * np.asarray(self.D[ai], dtype=dtype)[None, :]
            out[:, order[sl]] = W @ V1[:, sl[0]:sl[-1] + 1]
        return out

    # ------------------------------------------------------------------ solve
    def _context(self, train: np.ndarray, y_of: Callable[[np.ndarray], np.ndarray]):
        """Take in ``train``'s added rows; the refresh's
        :class:`~neuralign.align.anchor_terms.RefreshTerms` and those rows."""
        A = self.extend(self.added(train))
        return RefreshTerms(self, A, y_of(A) - self.ybar0 if A.size else None), A

    def gcv_scores(self, train: np.ndarray, y_of: Callable[[np.ndarray], np.ndarray]):
        """GCV score of every alpha and target for ``train`` (K, M), float64."""
        ctx, A = self._context(train, y_of)
        return ctx.gcv(self.n0 + A.size)

    def solve(self, train: np.ndarray, predict: np.ndarray,
              y_of: Callable[[np.ndarray], np.ndarray], idx: np.ndarray | None, dtype: str):
        """Alphas (GCV, when ``idx`` is None) and predictions of ``predict`` for ``train``.

        Parameters
        ----------
        train : ndarray of int64
            Current training rows (covered by the anchor, see :meth:`covers`).
        predict : ndarray of int64
            Rows to predict.
        y_of : callable
            Current targets (float64, (len(rows), M)) of given rows.
        idx : ndarray (M,) or None
            Alpha index per target; None: choose by GCV.
        dtype : str
            Precision of the prediction products.

        Returns
        -------
        idx : ndarray (M,)
        pred : ndarray (len(predict), M), float64
        """
        ctx, A = self._context(train, y_of)
        if idx is None:
            idx = ctx.gcv(self.n0 + A.size).argmin(0)
        pred = ctx.predict(np.asarray(idx), predict, self.khat(predict, A), dtype)
        return np.asarray(idx, dtype=np.int64), pred + self.ybar0[None, :]

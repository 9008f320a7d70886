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
        self.G = np.zeros((self.n0, 0))
        self._cap = 0
        self._buf_v = np.zeros((2, self.alphas.size, 0, self.V1.shape[1]))
        self._buf_g = np.zeros((2, self.alphas.size, 0, 0))
        self._reserve(int(expect_k))
        self._v1_cast: tuple | None = None  # (dtype, order bytes, V1 in dtype, columns in order)
        self._v1_sums: tuple | None = None  # what GCV needs of V1 alone (see v1_sums)
        self._E: dict[int, np.ndarray] = {}

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
        bv[:, :, :n] = self._buf_v[:, :, :n]
        bg[:, :, :n, :n] = self._buf_g[:, :, :n, :n]
        self._buf_v, self._buf_g, self._cap = bv, bg, cap

    def extend(self, A: np.ndarray) -> np.ndarray:
        """Take in the added rows ``A`` (a superset of those taken so far); return their order."""
        new = A[~np.isin(A, self.ext)]
        if new.size:
            k0, k1 = self.k, self.k + new.size
            self._reserve(k1)
            g = self.U0.T @ self.khat(self.rows0, new)
            self.G = np.concatenate([self.G, g], axis=1)
            self._buf_v[:, :, k0:k1] = self._gdx(g, self.V1)
            cross = self._gdx(g, self.G)  # (2, K, new, k1): new rows against every row
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
        self._v1_cast = self._v1_sums = None
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

    def v1_sorted(self, order: np.ndarray, dtype: str) -> np.ndarray:
        """``V1[:, order]`` in ``dtype``, kept while ``V1`` and ``order`` are unchanged (a refit
        with the alphas kept reuses it)."""
        key = (dtype, order.tobytes())
        if self._v1_cast is None or self._v1_cast[:2] != key:
            v = self.V1.astype(dtype)[:, order] if dtype != "float64" else self.V1[:, order]
            self._v1_cast = key + (v,)
        return self._v1_cast[2]

    def embedding(self, predict: np.ndarray) -> np.ndarray:
        """``Kh[predict, T0] U0``, rows kept across refreshes."""
        missing = [int(i) for i in predict.tolist() if int(i) not in self._E]
        if missing:
            m = np.asarray(missing, dtype=np.int64)
            E = self.khat(m, self.rows0) @ self.U0
            self._E.update(zip(missing, E))
        return np.stack([self._E[int(i)] for i in predict.tolist()])

    # ------------------------------------------------------------------ solve
    def _context(self, train: np.ndarray, y_of: Callable[[np.ndarray], np.ndarray]):
        """Take in ``train``'s added rows; the refresh's :class:`_Context` and those rows."""
        A = self.extend(self.added(train))
        return _Context(self, A, y_of(A) - self.ybar0 if A.size else None), A

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
        pred = ctx.predict(np.asarray(idx), self.embedding(predict), self.khat(predict, A),
                           dtype)
        return np.asarray(idx, dtype=np.int64), pred + self.ybar0[None, :]


class _Context:
    """Per-refresh quantities of an anchor extended by ``A`` (all float64)."""

    def __init__(self, anchor: DualAnchor, A: np.ndarray, y2: np.ndarray | None) -> None:
        self.an = anchor
        self.k = int(A.size)
        self.y2 = y2
        self._all: dict | None = None
        if self.k:
            self.C = anchor.khat(A, A)

    def alpha_terms(self, used: np.ndarray) -> tuple:
        """For alphas ``used``: ``D_a q`` and ``z1v`` (Ku, n0); with added rows also ``S_a^-1``
        (Ku, k, k) and ``x2v`` (Ku, k), else None."""
        an, k = self.an, self.k
        a, D, q = an.alphas[used], an.D[used], an.q
        dq = D * q[None, :]
        if not k:
            return dq, dq, None, None
        G = an.G
        S = self.C[None] + a[:, None, None] * np.eye(k)[None] - an.GDG[used]
        # S_a >= a I: batched Cholesky, inverse from the triangular factor
        Li = np.linalg.inv(np.linalg.cholesky(S))
        Sinv = np.swapaxes(Li, 1, 2) @ Li
        x2v = (Sinv @ (1.0 - dq @ G)[:, :, None])[:, :, 0]
        return dq, D * (q[None, :] - x2v @ G.T), Sinv, x2v

    def gcv(self, n: int) -> np.ndarray:
        """GCV score of every alpha and target, (K, M).

        What depends on ``V1`` alone (``n0 x M``) is kept by the anchor (:meth:`DualAnchor.v1_sums`);
        the terms of the added rows (``k x M`` per alpha) run alpha by alpha, so their
        temporaries stay small.
        """
        an, k = self.an, self.k
        a, D, q = an.alphas, an.D, an.q
        K, M = a.size, an.V1.shape[1]
        dq, z1v, Sinv, x2v = self.alpha_terms(np.arange(K))
        dz = D * z1v
        dqv, d2qv, zz = an.v1_sums()
        one_u = dqv.copy()  # 1'H applied to y, before the added rows' terms
        # (D z1v)' V1 = (D^2 q)' V1 - x2v' G' D^2 V1
        cross = d2qv - np.einsum("ak,akm->am", x2v, an.GD2V) if k else d2qv.copy()
        zz = zz.copy()  # |D V1|^2, before the added rows' terms
        trh = D.sum(1)
        hv2 = (z1v * z1v).sum(1)
        one_v = (q[None, :] * z1v).sum(1)
        nx = np.zeros((K, M))
        x2_all = None
        if k:
            G, GD2G = an.G, an.GD2G
            one_v = one_v + x2v.sum(1)
            dqG, dzG = dq @ G, dz @ G  # (K, k)
            x2_all = np.empty((K, k, M))
            for j in range(K):
                x2 = np.matmul(Sinv[j], self.y2 - an.GDV[j], out=x2_all[j])
                one_u[j] += x2.sum(0) - dqG[j] @ x2
                cross[j] -= dzG[j] @ x2
                quad = GD2G[j] @ x2
                quad -= 2.0 * an.GD2V[j]
                zz[j] += np.einsum("km,km->m", x2, quad)
                res = x2 - np.outer(x2v[j], one_u[j] / one_v[j])
                nx[j] = np.einsum("km,km->m", res, res)
            # tr(Sinv (I + GD2G)); both symmetric
            trh = trh + np.trace(Sinv, axis1=1, axis2=2) + (Sinv * GD2G).sum((1, 2))
            hv2 = hv2 + (x2v * x2v).sum(1)
        self._all = {"one_u": one_u, "one_v": one_v, "z1v": z1v, "x2": x2_all,
                     "x2v": x2v if k else None}
        b = one_u / one_v[:, None]
        nz = zz - 2.0 * b * cross + b * b * (z1v * z1v).sum(1)[:, None]
        rss = (a * a)[:, None] * np.maximum(nz + nx, 0.0)
        rdof = a * trh - a * hv2 / one_v
        return n * rss / np.maximum(rdof * rdof, 1e-300)[:, None]

    def groups(self, idx: np.ndarray):
        """Per alpha used: ``(alpha index, its targets, b, z1v, x2, x2v)`` for :meth:`predict`.

        After :meth:`gcv` every alpha's terms are at hand; for a refit (alphas kept) they are
        computed for the alphas in use only, the ``k x M`` solves for each alpha's own
        targets.
        """
        an, k = self.an, self.k
        used = np.unique(idx)
        if self._all is not None:
            t = self._all
            for ai in used.tolist():
                cols = np.nonzero(idx == ai)[0]
                yield (ai, cols, t["one_u"][ai, cols] / t["one_v"][ai], t["z1v"][ai],
                       t["x2"][ai][:, cols] if k else None, t["x2v"][ai] if k else None)
            return
        dq, z1v, Sinv, x2v = self.alpha_terms(used)
        one_u = dq @ an.V1  # (Ku, M): cheaper over every target than gathering columns
        dqG = dq @ an.G if k else None
        one_v = (an.q[None, :] * z1v).sum(1) + (x2v.sum(1) if k else 0.0)
        for j, ai in enumerate(used.tolist()):
            cols = np.nonzero(idx == ai)[0]
            ou = one_u[j, cols]
            x2 = None
            if k:
                x2 = Sinv[j] @ (self.y2[:, cols] - an.GDV[ai][:, cols])
                ou = ou + x2.sum(0) - dqG[j] @ x2
            yield ai, cols, ou / one_v[j], z1v[j], x2, x2v[j] if k else None

    def predict(self, idx: np.ndarray, E0: np.ndarray, K_RA: np.ndarray, dtype: str):
        """Centred predictions ``Kh_RT c + b`` with alpha ``idx[m]`` for target ``m``.

        Target by target the coefficients are ``z = D_a (V1 - G x2) - z1v_a b`` (anchor
        coordinates) and ``x2 - x2v_a b`` (added rows). The prediction is assembled per alpha
        group from products with the ``R x n0`` matrix ``E0 D_a``, so no ``n0 x M`` array is
        formed or gathered: per group ``(E0 D_a) V1[:, cols] + (K_RA - E0 D_a G) x2[:, cols]
        - (E0 z1v_a + K_RA x2v_a) b[cols]``; the large products run in ``dtype``.
        """
        an = self.an
        M = an.V1.shape[1]
        k = self.k
        idx = np.asarray(idx)
        E0 = np.asarray(E0, dtype=dtype)
        K_RA = np.asarray(K_RA, dtype=dtype) if k else None
        # targets sorted by alpha: each group's columns of V1 are one contiguous slice
        order = np.argsort(idx, kind="stable")
        V1 = an.v1_sorted(order, dtype)
        G = an.G.astype(dtype) if k and dtype != "float64" else an.G
        pred = np.empty((E0.shape[0], M), dtype=dtype)
        b_all = np.empty(M)
        start = 0
        for ai, cols, b, z1v, x2, x2v in self.groups(idx):
            sl = slice(start, start + cols.size)
            start += cols.size
            W = E0 * np.asarray(an.D[ai], dtype=dtype)[None, :]  # E0 D_a, (R, n0)
            part = W @ V1[:, sl]
            ones = E0 @ np.asarray(z1v, dtype=dtype)
            if k:
                part += (K_RA - W @ G) @ np.asarray(x2, dtype=dtype)
                ones += K_RA @ np.asarray(x2v, dtype=dtype)
            part -= ones[:, None] * np.asarray(b, dtype=dtype)[None, :]
            pred[:, cols] = part
            b_all[cols] = b
        return np.asarray(pred, dtype=float) + b_all[None, :]

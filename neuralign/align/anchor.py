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
    """

    def __init__(self, gram: np.ndarray, rows0: np.ndarray, y0: np.ndarray,
                 alphas: np.ndarray) -> None:
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
        M = self.V1.shape[1]
        # the extension: rows added since the anchor, their G columns and G' D_a V1, G' D_a^2 V1
        self.ext = np.zeros(0, dtype=np.int64)
        self.G = np.zeros((self.n0, 0))
        self.GDV = np.zeros((self.alphas.size, 0, M))
        self.GD2V = np.zeros((self.alphas.size, 0, M))
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

    def _gdv(self, g: np.ndarray, V: np.ndarray, power: int) -> np.ndarray:
        """``G' D_a^power V`` for every alpha: (K, k, M)."""
        K, k = self.alphas.size, g.shape[1]
        gd = (g.T[None, :, :] * (self.D ** power)[:, None, :]).reshape(K * k, -1)
        return (gd @ V).reshape(K, k, -1)

    def extend(self, A: np.ndarray) -> np.ndarray:
        """Take in the added rows ``A`` (a superset of those taken so far); return their order."""
        new = A[~np.isin(A, self.ext)]
        if new.size:
            g = self.U0.T @ self.khat(self.rows0, new)
            self.G = np.concatenate([self.G, g], axis=1)
            self.GDV = np.concatenate([self.GDV, self._gdv(g, self.V1, 1)], axis=1)
            self.GD2V = np.concatenate([self.GD2V, self._gdv(g, self.V1, 2)], axis=1)
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
        if self.ext.size:
            for GD, power in ((self.GDV, 1), (self.GD2V, 2)):
                GD += self._gdv(self.G, Z.T, power) @ d

    def embedding(self, predict: np.ndarray) -> np.ndarray:
        """``Kh[predict, T0] U0``, rows kept across refreshes."""
        missing = [int(i) for i in predict.tolist() if int(i) not in self._E]
        if missing:
            m = np.asarray(missing, dtype=np.int64)
            E = self.khat(m, self.rows0) @ self.U0
            self._E.update(zip(missing, E))
        return np.stack([self._E[int(i)] for i in predict.tolist()])

    # ------------------------------------------------------------------ solve
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
        A = self.extend(self.added(train))
        ctx = _Context(self, A, y_of(A) - self.ybar0 if A.size else None)
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

    def terms(self, ai: np.ndarray, cols: np.ndarray | None = None) -> dict:
        """Everything GCV and prediction need for alphas ``ai`` (and targets ``cols``)."""
        an, k = self.an, self.k
        a = an.alphas[ai]
        D = an.D[ai]  # (Ka, n0)
        V1 = an.V1 if cols is None else an.V1[:, cols]
        q = an.q
        dq = D * q[None, :]
        t = {"a": a, "D": D, "V1": V1, "one_u": dq @ V1}
        if not k:
            t.update(x2=None, x2v=None, z1v=dq, one_v=(q[None, :] * dq).sum(1))
            return t
        G = an.G
        GDV = an.GDV[ai] if cols is None else an.GDV[ai][:, :, cols]
        y2 = self.y2 if cols is None else self.y2[:, cols]
        GDt = G.T[None, :, :] * D[:, None, :]  # G' D_a, (Ka, k, n0)
        S = self.C[None] + a[:, None, None] * np.eye(k)[None] - GDt @ G
        # S_a >= a I: batched Cholesky, inverse from the triangular factor
        Li = np.linalg.inv(np.linalg.cholesky(S))
        Sinv = np.swapaxes(Li, 1, 2) @ Li
        x2 = Sinv @ (y2[None] - GDV)
        x2v = (Sinv @ (1.0 - dq @ G)[:, :, None])[:, :, 0]
        z1v = D * (q[None, :] - x2v @ G.T)
        t.update(G=G, GDt=GDt, Sinv=Sinv, x2=x2, x2v=x2v, z1v=z1v,
                 one_u=t["one_u"] - np.einsum("ak,akm->am", dq @ G, x2) + x2.sum(1),
                 one_v=(q[None, :] * z1v).sum(1) + x2v.sum(1))
        return t

    def gcv(self, n: int) -> np.ndarray:
        """GCV score of every alpha and target, (K, M)."""
        an = self.an
        t = self._all = self.terms(np.arange(an.alphas.size))
        a, D, V1, z1v = t["a"], t["D"], t["V1"], t["z1v"]
        zz = (D * D) @ (V1 * V1)  # |D V1|^2
        dz = D * z1v
        cross = dz @ V1
        trh = D.sum(1)
        hv2 = (z1v * z1v).sum(1)
        b = t["one_u"] / t["one_v"][:, None]
        nx = 0.0
        if self.k:
            G, x2, x2v = t["G"], t["x2"], t["x2v"]
            GD2G = (t["GDt"] * D[:, None, :]) @ G
            zz = zz - 2.0 * (x2 * an.GD2V).sum(1) + (x2 * (GD2G @ x2)).sum(1)
            cross = cross - np.einsum("ak,akm->am", dz @ G, x2)
            nx = ((x2 - x2v[:, :, None] * b[:, None, :]) ** 2).sum(1)
            trh = trh + np.trace(t["Sinv"] @ (np.eye(self.k)[None] + GD2G), axis1=1, axis2=2)
            hv2 = hv2 + (x2v * x2v).sum(1)
        nz = zz - 2.0 * b * cross + b * b * (z1v * z1v).sum(1)[:, None]
        rss = (a * a)[:, None] * np.maximum(nz + nx, 0.0)
        rdof = a * trh - a * hv2 / t["one_v"]
        return n * rss / np.maximum(rdof * rdof, 1e-300)[:, None]

    def predict(self, idx: np.ndarray, E0: np.ndarray, K_RA: np.ndarray, dtype: str):
        """Centred predictions ``Kh_RT c + b`` with alpha ``idx[m]`` for target ``m``."""
        an = self.an
        M = an.V1.shape[1]
        k, n0 = self.k, an.n0
        if self._all is not None:  # alphas were just selected: every alpha's terms are here
            t, slot = self._all, idx
            cols = np.arange(M)
            b = (t["one_u"] / t["one_v"][:, None])[slot, cols]
            z1v = np.ascontiguousarray(t["z1v"].T)[:, slot]
            if k:
                x2 = np.ascontiguousarray(t["x2"][slot, :, cols].T)  # (k, M)
                x2v = np.ascontiguousarray(t["x2v"].T)[:, slot]
        else:  # a refit: each alpha's terms for its own targets only
            b = np.empty(M)
            z1v = np.empty((n0, M))
            x2 = np.empty((k, M))
            x2v = np.empty((k, M))
            for ai in np.unique(idx).tolist():
                cols = np.nonzero(idx == ai)[0]
                t = self.terms(np.array([ai]), cols)
                b[cols] = t["one_u"][0] / t["one_v"][0]
                z1v[:, cols] = t["z1v"][0][:, None]
                if k:
                    x2[:, cols] = t["x2"][0]
                    x2v[:, cols] = t["x2v"][0][:, None]
        zc = np.ascontiguousarray(an.D.T)[:, idx]  # (n0, M): d_{a_m}
        zc *= an.V1 - an.G @ x2 if k else an.V1
        zc -= z1v * b[None, :]
        pred = np.asarray(E0, dtype=dtype) @ np.asarray(zc, dtype=dtype)
        if k:
            xc = x2 - x2v * b[None, :]
            pred = pred + np.asarray(K_RA, dtype=dtype) @ np.asarray(xc, dtype=dtype)
        return np.asarray(pred, dtype=float) + b[None, :]

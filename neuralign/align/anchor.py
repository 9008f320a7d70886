"""Live refreshes of wide layers without an eigendecomposition per refresh.

During a live session a training set only grows. A :class:`DualAnchor` keeps the
eigendecomposition of the training set it was built on (``T0``, ``n0`` stimuli) and answers
for ``T0`` plus the ``k`` stimuli added since, exactly, through the Schur complement of the
bordered Gram matrix: per alpha a ``k x k`` system instead of an ``n x n`` eigendecomposition.
When ``k`` grows past a bound the layer re-anchors (one eigendecomposition), so each refresh
costs a few products of ``n0 x M`` size.

The math, with features centred at the anchor's mean (``Kh``: that kernel; any fixed centre
gives the same ridge predictions because the intercept is unpenalised) and targets centred at
the anchor's mean ``ybar0``. For the training set ``T = T0 + A``::

    Kh_TT = [[U0 diag(s0) U0', B], [B', C]],   G = U0' B,   d_a = 1 / (s0 + a)
    S_a = C + a I - G' diag(d_a) G                     (k x k, >= a I)
    H_a = (Kh_TT + a I)^-1 applied to [v1; v2]:  x2 = S_a^-1 (v2 - G' d_a U0'v1),
                                                 z1 = d_a (U0'v1 - G x2)   (U0 coordinates)
    unpenalised intercept: b = 1'H_a y / 1'H_a 1,  c = H_a (y - b 1)
    RSS(a) = a^2 |c|^2,  n - 1 - df(a) = a tr(H_a) - a |H_a 1|^2 / 1'H_a 1
    prediction of rows R: Kh_RT c + b + ybar0

It agrees with a fresh eigendecomposition to round-off (tests: 1e-10). Everything that
selects alphas is float64.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla


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
    """

    def __init__(self, gram: np.ndarray, rows0: np.ndarray, y0: np.ndarray) -> None:
        self.gram = gram
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
        self.ybar0 = y0.mean(0)
        self.V1 = U0.T @ (y0 - self.ybar0)  # (n0, M), kept up to date as targets change
        self.q = U0.sum(0)  # U0' 1
        self._E: tuple[bytes, np.ndarray] | None = None

    def khat(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The Gram block of rows ``a`` x ``b`` with features centred at the anchor's mean."""
        return (self.gram[np.ix_(a, b)] - self.kbar[a][:, None] - self.kbar[b][None, :]
                + self.kbb)

    def covers(self, train: np.ndarray) -> bool:
        """Whether ``train`` contains every anchor row (training sets only grow)."""
        return int(self.in0[train].sum()) == self.n0

    def added(self, train: np.ndarray) -> np.ndarray:
        """Rows of ``train`` added since the anchor."""
        return train[~self.in0[train]]

    def apply_changes(self, rows: np.ndarray, delta: np.ndarray) -> None:
        """Fold changed target means of anchor rows into ``V1 = U0'(y0 - ybar0)``."""
        sel = self.in0[rows]
        if sel.any():
            self.V1 += self.U0[self.pos0[rows[sel]]].T @ delta[sel]

    def _embedding(self, predict: np.ndarray) -> np.ndarray:
        key = predict.tobytes()
        if self._E is None or self._E[0] != key:
            self._E = (key, self.khat(predict, self.rows0) @ self.U0)
        return self._E[1]

    def solve(self, train: np.ndarray, predict: np.ndarray, y_added: np.ndarray,
              alphas: np.ndarray, idx: np.ndarray | None, dtype: str):
        """Alphas (GCV, when ``idx`` is None) and predictions of ``predict`` for ``train``.

        Parameters
        ----------
        train : ndarray of int64
            Current training rows (a superset of the anchor's).
        predict : ndarray of int64
            Rows to predict.
        y_added : ndarray (k, M)
            Targets of the rows added since the anchor (in ``self.added(train)`` order).
        alphas : ndarray (K,)
            The alpha grid.
        idx : ndarray (M,) or None
            Alpha index per target; None: choose by GCV.
        dtype : str
            Precision of the prediction products.

        Returns
        -------
        idx : ndarray (M,)
        pred : ndarray (len(predict), M), float64
        """
        A = self.added(train)
        a = np.asarray(alphas, dtype=float)
        n = self.n0 + A.size
        ctx = _Context(self, A, y_added - self.ybar0, a)
        if idx is None:
            idx = ctx.gcv(n).argmin(0)
        pred = ctx.predict(idx, self._embedding(predict), self.khat(predict, A), dtype)
        return np.asarray(idx, dtype=np.int64), pred + self.ybar0[None, :]


class _Context:
    """Per-refresh quantities of an anchor extended by ``A``, vectorised over alphas (float64)."""

    def __init__(self, anchor: DualAnchor, A: np.ndarray, y2: np.ndarray,
                 alphas: np.ndarray) -> None:
        self.an = anchor
        self.k = int(A.size)
        self.alphas = alphas
        self.y2 = y2
        self._all: dict | None = None
        if self.k:
            self.G = anchor.U0.T @ anchor.khat(anchor.rows0, A)  # (n0, k)
            self.C = anchor.khat(A, A)

    def terms(self, ai: np.ndarray, cols: np.ndarray | None = None) -> dict:
        """Everything GCV and prediction need for alphas ``ai`` (and targets ``cols``)."""
        an, k = self.an, self.k
        a = self.alphas[ai]
        D = 1.0 / (an.s0[None, :] + a[:, None])  # (Ka, n0)
        V1 = an.V1 if cols is None else an.V1[:, cols]
        q = an.q
        dq = D * q[None, :]
        t = {"a": a, "D": D, "V1": V1, "one_u": dq @ V1}
        if not k:
            t.update(x2=None, x2v=None, z1v=dq, one_v=(q[None, :] * dq).sum(1))
            return t
        G, Ka = self.G, a.size
        y2 = self.y2 if cols is None else self.y2[:, cols]
        GDt = np.ascontiguousarray((G[None, :, :] * D[:, :, None]).transpose(0, 2, 1))
        GDV = (GDt.reshape(Ka * k, -1) @ V1).reshape(Ka, k, -1)  # G' D_a V1, (Ka, k, M)
        S = self.C[None] + a[:, None, None] * np.eye(k)[None] - GDt @ G
        x2 = np.empty_like(GDV)
        x2v = np.empty((Ka, k))
        Sinv = np.empty_like(S)
        one_g = 1.0 - dq @ G
        for j in range(Ka):  # S_a >= a I: Cholesky is safe
            cf = sla.cho_factor(S[j], lower=True, check_finite=False)
            x2[j] = sla.cho_solve(cf, y2 - GDV[j], check_finite=False)
            x2v[j] = sla.cho_solve(cf, one_g[j], check_finite=False)
            Sinv[j] = sla.cho_solve(cf, np.eye(k), check_finite=False)
        z1v = D * (q[None, :] - x2v @ G.T)
        t.update(G=G, GDt=GDt, Sinv=Sinv, x2=x2, x2v=x2v, z1v=z1v,
                 one_u=t["one_u"] - np.einsum("ak,akm->am", dq @ G, x2) + x2.sum(1),
                 one_v=(q[None, :] * z1v).sum(1) + x2v.sum(1))
        return t

    def gcv(self, n: int) -> np.ndarray:
        """GCV score of every alpha and target, (K, M)."""
        t = self._all = self.terms(np.arange(self.alphas.size))
        a, D, V1, z1v = t["a"], t["D"], t["V1"], t["z1v"]
        D2 = D * D
        zz = D2 @ (V1 * V1)  # |D V1|^2
        dz = D * z1v
        cross = dz @ V1
        trh = D.sum(1)
        hv2 = (z1v * z1v).sum(1)
        b = t["one_u"] / t["one_v"][:, None]
        nx = 0.0
        if self.k:
            G, x2, x2v = t["G"], t["x2"], t["x2v"]
            Ka, k = a.size, self.k
            GD2t = t["GDt"] * D[:, None, :]  # G' D_a^2, (Ka, k, n0)
            GD2V = (GD2t.reshape(Ka * k, -1) @ V1).reshape(Ka, k, -1)
            GD2G = GD2t @ G
            zz = zz - 2.0 * (x2 * GD2V).sum(1) + (x2 * (GD2G @ x2)).sum(1)
            cross = cross - np.einsum("ak,akm->am", dz @ G, x2)
            nx = ((x2 - x2v[:, :, None] * b[:, None, :]) ** 2).sum(1)
            eye = np.eye(k)[None]
            trh = trh + np.trace(t["Sinv"] @ (eye + GD2G), axis1=1, axis2=2)
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
            t, slot = self._all, np.asarray(idx)
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
        Dsel = 1.0 / (an.s0[:, None] + self.alphas[np.asarray(idx)][None, :])  # (n0, M)
        core = an.V1 - self.G @ x2 if k else an.V1
        zc = Dsel * core
        zc -= z1v * b[None, :]
        pred = np.asarray(E0, dtype=dtype) @ np.asarray(zc, dtype=dtype)
        if k:
            xc = x2 - x2v * b[None, :]
            pred = pred + np.asarray(K_RA, dtype=dtype) @ np.asarray(xc, dtype=dtype)
        return np.asarray(pred, dtype=float) + b[None, :]

"""One refresh of a :class:`~neuralign.align.anchor.DualAnchor`: GCV and predictions.

The anchor keeps what lasts across refreshes (its eigendecomposition, the added rows' terms,
the carried anchor term of the predictions); :class:`RefreshTerms` computes, for one
training set, what depends on the current targets of the added rows: the ``k x k`` systems
per alpha, the GCV scores of every alpha and target, and the predictions. The math is in the
anchor module's docstring.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from .anchor_carry import alpha_runs


class RefreshTerms:
    """Per-refresh quantities of ``anchor`` (a :class:`~neuralign.align.anchor.DualAnchor`)
    extended by the rows ``A`` with centred targets ``y2`` (all float64)."""

    def __init__(self, anchor, A: np.ndarray, y2: np.ndarray | None) -> None:
        self.an = anchor
        self.A = A
        self.k = int(A.size)
        self.y2 = y2
        self._all: dict | None = None
        if self.k:
            self.C = anchor.khat(A, A)

    def alpha_terms(self, used: np.ndarray, *, inverse: bool = True) -> tuple:
        """For alphas ``used``: ``D_a q`` and ``z1v`` (Ku, n0); with added rows also ``S_a^-1``
        (Ku, k, k; ``inverse=False``: its lower Cholesky factor, for :func:`cho_solve`) and
        ``x2v`` (Ku, k), else None."""
        an, k = self.an, self.k
        a, D, q = an.alphas[used], an.D[used], an.q
        dq = D * q[None, :]
        if not k:
            return dq, dq, None, None
        G = an.G
        S = self.C[None] + a[:, None, None] * np.eye(k)[None] - an.GDG[used]
        L = np.linalg.cholesky(S)  # S_a >= a I: batched Cholesky
        rhs = 1.0 - dq @ G
        if inverse:  # GCV's traces need it: from the triangular factor
            Li = np.linalg.inv(L)
            Sinv = np.swapaxes(Li, 1, 2) @ Li
            x2v = (Sinv @ rhs[:, :, None])[:, :, 0]
        else:
            Sinv = L
            x2v = np.stack([cho_solve(L[j], rhs[j]) for j in range(len(used))])
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
        runs = list(alpha_runs(idx))
        if self._all is not None:
            t = self._all
            for ai, cols in runs:
                yield (ai, cols, t["one_u"][ai, cols] / t["one_v"][ai], t["z1v"][ai],
                       t["x2"][ai][:, cols] if k else None, t["x2v"][ai] if k else None)
            return
        used = np.array([ai for ai, _ in runs], dtype=np.int64)
        dq, z1v, L, x2v = self.alpha_terms(used, inverse=False)
        dqG = dq @ an.G if k else None
        one_v = (an.q[None, :] * z1v).sum(1) + (x2v.sum(1) if k else 0.0)
        for j, (ai, cols) in enumerate(runs):
            ou = dq[j] @ an.V1[:, cols]
            x2 = None
            if k:
                x2 = cho_solve(L[j], self.y2[:, cols] - an.gdv(ai, cols))
                ou = ou + x2.sum(0) - dqG[j] @ x2
            yield ai, cols, ou / one_v[j], z1v[j], x2, x2v[j] if k else None

    def predict(self, idx: np.ndarray, rows: np.ndarray, K_RA: np.ndarray, dtype: str):
        """Centred predictions ``Kh_RT c + b`` of ``rows`` with alpha ``idx[m]`` for target ``m``.

        Target by target the coefficients are ``z = D_a (V1 - G x2) - z1v_a b`` (anchor
        coordinates) and ``x2 - x2v_a b`` (added rows), so per alpha group the prediction is
        ``(E0 D_a) V1[:, cols] + (K_RA - E0 D_a G) x2[:, cols] - (E0 z1v_a + K_RA x2v_a)
        b[cols]``. The first term, the only ``R x n0 x M`` product, is carried across refreshes
        (:meth:`DualAnchor.base_term`); the others are ``O(R n0 k + R k M)``, in ``dtype``.
        """
        an = self.an
        k = self.k
        idx = np.asarray(idx)
        pred = an.base_term(rows, idx, dtype).copy()
        E0 = an.embedding(rows, dtype)
        K64, K_RA = K_RA, (np.asarray(K_RA, dtype=dtype) if k else None)
        if k and an.lean and self._all is None:
            return self._predict_carried(pred, E0, idx, rows, K64, K_RA, dtype)
        for ai, cols, b, z1v, x2, x2v in self.groups(idx):
            ones = E0 @ np.asarray(z1v, dtype=dtype)  # the intercept's coefficients
            if k:
                ones += K_RA @ np.asarray(x2v, dtype=dtype)
            part = (1.0 - ones)[:, None] * np.asarray(b, dtype=dtype)[None, :]
            if k:
                part += (K_RA - an.edg(rows, ai, dtype)) @ np.asarray(x2, dtype=dtype)
            pred[:, cols] += part
        return pred

    def _predict_carried(self, pred, E0, idx, rows, K64, K_RA, dtype):
        """:meth:`predict` of a lean anchor with kept alphas: the added rows' terms carried
        from the last refresh (:class:`~neuralign.align.anchor_added.AddedCarry`)."""
        an, k, G, q = self.an, self.k, self.an.G, self.an.q
        GDG, E64 = an.GDG, an.embedding(rows)
        runs = list(alpha_runs(idx))
        Z1 = np.empty((an.n0, len(runs)))
        X2 = np.empty((k, len(runs)))
        B = []
        for j, (ai, cols) in enumerate(runs):
            a, D = an.alphas[ai], an.D[ai]
            dq = D * q

            def S_rows(k0, ai=ai, a=a):
                S = self.C[k0:] - GDG[ai, k0:]
                S[:, k0:] += a * np.eye(k - k0)
                return S

            def rhs_rows(k0, dq=dq):
                return 1.0 - G[:, k0:].T @ dq

            def r_rows(k0, ai=ai, cols=cols):
                return self.y2[k0:, cols] - an.gdv(ai, cols)[k0:]

            def Q_of(pos, k0, D=D):
                e, kr = (E64, K64) if pos is None else (E64[pos], K64[pos])
                return kr[:, k0:] - e @ (D[:, None] * G[:, k0:])

            su, L, u, sP = an.added_terms.terms(k, ai, cols, S_rows=S_rows, rhs_rows=rhs_rows,
                                                r_rows=r_rows, rows=rows, Q_of=Q_of)
            X2[:, j] = sla.solve_triangular(L, u, lower=True, trans="T", check_finite=False)
            Z1[:, j] = D * (q - G @ X2[:, j])
            B.append(((dq @ an.V1[:, cols] + su) / (q @ Z1[:, j] + X2[:, j].sum()), sP))
        ones = E0 @ Z1.astype(dtype) + K_RA @ X2.astype(dtype)  # the intercept's coefficients
        for j, (_, cols) in enumerate(runs):
            b, sP = B[j]
            pred[:, cols] += (1.0 - ones[:, j])[:, None] * b[None, :] + sP
        return pred


def cho_solve(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(L L')^-1 b`` for a lower Cholesky factor ``L`` (two triangular solves)."""
    return sla.cho_solve((L, True), b, check_finite=False)

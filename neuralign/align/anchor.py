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

GCV needs the added rows' terms for every alpha (``G' D_a V1`` and ``G' D_a^2 V1``: ``2 K``
products of ``k x n0 x M``, the largest per-row cost of a refresh). A *lean* anchor keeps them
for the alpha each target uses only (one ``k x n0 x M`` product in all, ``1 / 2K`` of the
work): it refits with kept alphas (:meth:`DualAnchor.retarget` brings the terms of targets
whose alpha moved) and selects alphas by GCV only before rows are added, where GCV needs
nothing of them. Live sessions re-select a lean anchor's alphas when it is rebuilt. A lean
anchor keeps its targets sorted by alpha (``perm``), so that each alpha's targets are one
contiguous slice of every per-target array; its public methods take and return targets in
their own order. With kept alphas, a lean anchor carries the added rows' part of its
predictions from one refresh to the next (:mod:`~neuralign.align.anchor_added`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .anchor_added import AddedCarry
from .anchor_carry import PredictionCarry, alpha_runs
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
    lean : bool
        Keep the added rows' terms for each target's own alpha only (see the module's
        docstring); GCV is then available only while no row is added.
    """

    def __init__(self, gram: np.ndarray, rows0: np.ndarray, y0: np.ndarray,
                 alphas: np.ndarray, *, expect_k: int = 0, lean: bool = False) -> None:
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
        # targets in internal order (lean: sorted by alpha): position j is target perm[j]
        self.perm: np.ndarray | None = None
        self.ybar0 = y0.mean(0)
        # (n0, M), kept up to date as targets change; Fortran order: a target's column is
        # contiguous (the carried predictions and lean terms take columns by alpha)
        self.V1 = ((y0 - self.ybar0).T @ U0).T
        self.q = U0.sum(0)  # U0' 1
        # the extension: rows added since the anchor, their G columns, and per alpha
        # G' D_a V1, G' D_a^2 V1 (k x M) and G' D_a G, G' D_a^2 G (k x k), kept in buffers
        # that grow by doubling (a refresh appends a few rows; no copy of the k x M blocks).
        # Lean: G' D_a G per alpha, and G' D_a V1 with each target's own alpha (k x M)
        self.lean = bool(lean)
        self.idx: np.ndarray | None = None  # lean: every target's alpha (internal order)
        self.ext = np.zeros(0, dtype=np.int64)
        self._buf_G = np.zeros((self.n0, 0))  # G's columns, kept in a buffer like the rest
        self._cap = 0
        K, powers = self.alphas.size, 1 if self.lean else 2
        self._buf_v = np.zeros((powers, 1 if self.lean else K, 0, self.V1.shape[1]))
        self._buf_g = np.zeros((powers, K, 0, 0))
        self._reserve(int(expect_k))
        self._v1_sums: tuple | None = None  # what GCV needs of V1 alone (see v1_sums)
        self.carry = PredictionCarry(gram.shape[0])
        # lean: the added rows' prediction terms carried across refreshes (anchor_added.py)
        self.added_terms = AddedCarry(int(expect_k))

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
        """``G' D_a V1`` for every alpha, (K, k, M) (not lean)."""
        return self._full()[0, :, :self.k]

    @property
    def GD2V(self) -> np.ndarray:
        """``G' D_a^2 V1`` for every alpha, (K, k, M) (not lean)."""
        return self._full()[1, :, :self.k]

    @property
    def GDG(self) -> np.ndarray:
        """``G' D_a G`` for every alpha, (K, k, k)."""
        return self._buf_g[0, :, :self.k, :self.k]

    @property
    def GD2G(self) -> np.ndarray:
        """``G' D_a^2 G`` for every alpha, (K, k, k) (not lean)."""
        self._full()
        return self._buf_g[1, :, :self.k, :self.k]

    def _full(self) -> np.ndarray:
        if self.lean:
            raise ValueError("a lean anchor keeps the added rows' terms of the alphas in use "
                             "only")
        return self._buf_v

    def gdv(self, ai: int, cols) -> np.ndarray:
        """``G' D_a V1`` of the targets ``cols`` (internal order) with alpha index ``ai``,
        (k, len(cols)) (lean: ``cols`` must use alpha ``ai``)."""
        return self._buf_v[0, 0 if self.lean else ai, :self.k][:, cols]

    def _gdx(self, g: np.ndarray, X: np.ndarray, powers: int = 2) -> np.ndarray:
        """``g' D_a^p X`` for p = 1 (.. 2) and every alpha in one product: (powers, K, k,
        cols)."""
        K, k = self.alphas.size, g.shape[1]
        gd = g.T[None, None, :, :] * np.stack([self.D, self.D * self.D][:powers])[:, :, None, :]
        return (gd.reshape(powers * K * k, -1) @ X).reshape(powers, K, k, -1)

    def _lean_gdv(self, g: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        """``g' D_a V1[:, m]`` with each target's own alpha ``a = idx[m]`` for the targets
        ``cols`` (all: None), ``(g's columns, len(cols))``."""
        sub = self.idx if cols is None else self.idx[cols]
        out = np.empty((g.shape[1], sub.size))
        for ai, run in alpha_runs(sub):
            src = run if cols is None else cols[run]
            out[:, run] = (g.T * self.D[ai][None, :]) @ self.V1[:, src]
        return out

    # ------------------------------------------------------------------ target order
    def _internal(self, a: np.ndarray) -> np.ndarray:
        """``a`` (targets on its last axis, their own order) in the internal order."""
        return a if self.perm is None else a[..., self.perm]

    def _external(self, a: np.ndarray) -> np.ndarray:
        """``a`` (targets on its last axis, internal order) in the targets' own order."""
        if self.perm is None:
            return a
        out = np.empty_like(a)
        out[..., self.perm] = a
        return out

    def retarget(self, idx: np.ndarray) -> None:
        """Serve the alpha index ``idx[m]`` for target ``m`` from now on (lean anchors:
        targets re-sorted by alpha, and the added rows' terms of targets whose alpha moved
        computed, ``k x n0`` each)."""
        if not self.lean:
            return
        idx = np.asarray(idx, dtype=np.int64)
        perm = np.argsort(idx, kind="stable")
        old = np.arange(idx.size) if self.perm is None else self.perm
        if self.idx is not None and np.array_equal(perm, old) and np.array_equal(
                self.idx, idx[perm]):
            return
        inv_old = np.empty_like(old)
        inv_old[old] = np.arange(old.size)
        take = inv_old[perm]  # new position j holds old position take[j]
        moved = (np.arange(idx.size) if self.idx is None
                 else np.flatnonzero(self.idx[take] != idx[perm]))
        if not np.array_equal(take, np.arange(take.size)):
            self.V1 = np.asfortranarray(self.V1[:, take])
            self.ybar0 = self.ybar0[take]
            self._v1_sums = None
            self.carry.permute(take)
            if self.k:
                v = self._buf_v[0, 0, :self.k]
                v[:] = v[:, take]
        self.perm, self.idx = perm, idx[perm]
        self.added_terms.clear()
        if moved.size and self.k:
            self._buf_v[0, 0, :self.k][:, moved] = self._lean_gdv(self.G, moved)

    def _reserve(self, k: int) -> None:
        if k <= self._cap:
            return
        cap = max(k, 2 * self._cap, 8)
        n = self.k
        bv = np.empty(self._buf_v.shape[:2] + (cap, self._buf_v.shape[3]))
        bg = np.empty(self._buf_g.shape[:2] + (cap, cap))
        bG = np.empty((self.n0, cap))
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
            if self.lean:
                if self.idx is None:
                    raise ValueError("a lean anchor needs the targets' alphas (retarget) "
                                     "before rows are added")
                self._buf_v[0, 0, k0:k1] = self._lean_gdv(g)
            else:
                self._buf_v[:, :, k0:k1] = self._gdx(g, self.V1)
            # (powers, K, new, k1): new rows, every row
            cross = self._gdx(g, self._buf_G[:, :k1], self._buf_g.shape[0])
            self._buf_g[:, :, k0:k1, :k1] = cross
            self._buf_g[:, :, :k0, k0:k1] = np.swapaxes(cross[:, :, :, :k0], 2, 3)
            self.ext = np.concatenate([self.ext, new])
        return self.ext

    def apply_changes(self, rows: np.ndarray, delta: np.ndarray) -> None:
        """Fold changed target means (``delta``, targets in their own order) of anchor rows
        into ``V1`` and what depends on it."""
        sel = self.in0[rows]
        if self.lean and self.k:
            self._fold_added(rows, delta, sel)
        if not sel.any():
            return
        Z = self.U0[self.pos0[rows[sel]]]  # (r, n0)
        d = self._internal(delta[sel])
        self.V1 += Z.T @ d
        self._v1_sums = None
        self.carry.fold_changes(self, Z, d)
        if self.k and self.lean:
            v = self._buf_v[0, 0, :self.k]
            for ai, run in alpha_runs(self.idx):
                v[:, run] += ((self.G.T * self.D[ai][None, :]) @ Z.T) @ d[:, run]
        elif self.k:
            self._buf_v[:, :, :self.k] += self._gdx(self.G, Z.T) @ d

    def _fold_added(self, rows: np.ndarray, delta: np.ndarray, sel: np.ndarray) -> None:
        """The added rows' residuals ``r = y2 - G' D_a V1`` move by ``-G' D_a Z' d`` (anchor
        rows) and ``d`` (added rows): fold that into the carried terms (rank ``len(rows)``)."""
        hit = np.isin(rows, self.ext)
        if not (sel.any() or hit.any()):
            return
        order = np.argsort(self.ext)
        at = order[np.searchsorted(self.ext[order], rows[hit])]
        Z = self.U0[self.pos0[rows[sel]]]
        d = self._internal(np.concatenate([delta[sel], delta[hit]]))
        E = np.zeros((self.k, at.size))
        E[at, np.arange(at.size)] = 1.0
        G = self.G

        def Mr_of(ai: int) -> np.ndarray:
            return np.hstack([-((G.T * self.D[ai][None, :]) @ Z.T), E])

        self.added_terms.fold_changes(Mr_of, d)

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
        """Bytes held (what :func:`~neuralign.align.memory.cache_bytes` plans)."""
        arrays = [self.U0, self.V1, self._buf_G, self.D, self._buf_v, self._buf_g, self.kbar,
                  self.in0, self.pos0, self.q, self.ybar0]
        return int(sum(a.nbytes for a in arrays)) + self.carry.nbytes() + self.added_terms.nbytes()

    # the carried prediction terms (anchor_carry.py), for RefreshTerms
    def embedding(self, predict: np.ndarray, dtype: str = "float64") -> np.ndarray:
        """``Kh[predict, T0] U0`` in ``dtype`` (``(R, n0)``, read only)."""
        return self.carry.embedding(self, predict, dtype)

    def base_term(self, predict: np.ndarray, idx: np.ndarray, dtype: str) -> np.ndarray:
        """``(E0 D_a) V1`` of the rows ``predict`` with alpha ``idx[m]`` per target (R, M)."""
        return self.carry.base_term(self, predict, idx, dtype)

    def edg(self, rows: np.ndarray, ai: int, dtype: str) -> np.ndarray:
        """``E0 D_a G`` of ``rows`` (R, k) in ``dtype``."""
        return self.carry.edg(self, rows, ai, dtype)

    # ------------------------------------------------------------------ solve
    def _context(self, train: np.ndarray, y_of: Callable[[np.ndarray], np.ndarray]):
        """Take in ``train``'s added rows; the refresh's
        :class:`~neuralign.align.anchor_terms.RefreshTerms` and those rows."""
        A = self.extend(self.added(train))
        y2 = self._internal(y_of(A)) - self.ybar0 if A.size else None
        return RefreshTerms(self, A, y2), A

    def gcv_scores(self, train: np.ndarray, y_of: Callable[[np.ndarray], np.ndarray]):
        """GCV score of every alpha and target for ``train`` (K, M), float64."""
        self._may_select(train)
        ctx, A = self._context(train, y_of)
        return self._external(ctx.gcv(self.n0 + A.size))

    def can_select(self, train: np.ndarray) -> bool:
        """Whether GCV is available for ``train`` (always, unless lean with rows added)."""
        return not self.lean or (self.k == 0 and self.added(train).size == 0)

    def _may_select(self, train: np.ndarray) -> None:
        if not self.can_select(train):
            raise ValueError("a lean anchor selects alphas only before rows are added")

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
        if idx is None:
            self._may_select(train)
        else:
            self.retarget(idx)
        ctx, A = self._context(train, y_of)
        if idx is None:
            idx = self._external(ctx.gcv(self.n0 + A.size).argmin(0))
            if self.lean:  # re-sorted by the chosen alphas: a context in that order
                self.retarget(idx)
                ctx, A = self._context(train, y_of)
        idx = np.asarray(idx, dtype=np.int64)
        pred = ctx.predict(self._internal(idx), predict, self.khat(predict, A), dtype)
        return idx, self._external(pred + self.ybar0[None, :])

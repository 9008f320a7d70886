"""The added rows' part of a lean anchor's predictions, carried from one refresh to the next.

With kept alphas, a lean :class:`~neuralign.align.anchor.DualAnchor` predicts the rows ``R``
for the targets of alpha ``a`` (notation of the anchor module) with the added rows' solves
``x2 = S_a^-1 r``, ``r = y2 - G' D_a V1``, through ``1' x2 - (D_a q)' G x2`` (the intercept)
and ``(K_RA - E0 D_a G) x2`` (``R x k x M``). Solved afresh, each refresh costs ``k^2 M`` and
``R k M`` for ``k`` rows added since the anchor, so refreshes slow down as ``k`` grows.

``S_a`` only grows by bordering (rows are appended), so its lower Cholesky factor ``L`` only
gains rows, and with ``w = L^-1 r``, ``u = L^-1 (1 - G' D_a q)`` and ``P = Q L^-T``
(``Q = K_RA - E0 D_a G``)::

    (1 - G' D_a q)' x2 = u' w,        Q x2 = P w

where the entries of ``w``, ``u`` and ``P`` for rows added earlier do not change when rows are
appended. This class keeps, per alpha in use, ``L``, ``u``, ``w``, ``P`` and the sums
``u' w`` and ``P w``: a refresh adds the new rows' terms (``O(k k_new M + R k k_new)``), the
rows newly predicted (``O(k^2 + k M)`` each), and folds changed targets in as a rank-``r``
update of ``r`` (``O(k^2 r + R k r + R r M)``). Exactness against fresh solves:
``tests/align/test_anchor.py``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla


def _lower_solve(L: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``L^-1 b`` for lower-triangular ``L``."""
    return sla.solve_triangular(L, b, lower=True, check_finite=False)


def _positions(rows: np.ndarray, sub: np.ndarray) -> np.ndarray | None:
    """Positions of ``sub`` in ``rows`` (both sorted), or None when ``sub`` is not in it."""
    at = np.searchsorted(rows, sub)
    if at.size and (at[-1] >= rows.size or not np.array_equal(rows[at], sub)):
        return None
    return at


class _AlphaCarry:
    """What one alpha's targets carry (see the module docstring), in buffers that grow by
    doubling (a refresh appends a few rows; no copy of what is kept)."""

    def __init__(self, cols: slice, cap: int, max_cap: int) -> None:
        self.max_cap = max_cap  # the anchor's bound: buffers double up to it
        self.cols = cols
        self.c = cols.stop - cols.start
        self.k = 0
        self._L = np.zeros((cap, cap))
        self._u = np.zeros(cap)
        self._w = np.zeros((cap, self.c))
        self.su = np.zeros(self.c)
        self.rows: np.ndarray | None = None
        self._P: np.ndarray | None = None  # (R, cap)
        self.sP: np.ndarray | None = None  # (R, c)

    @property
    def L(self) -> np.ndarray:
        return self._L[:self.k, :self.k]

    @property
    def u(self) -> np.ndarray:
        return self._u[:self.k]

    @property
    def w(self) -> np.ndarray:
        return self._w[:self.k]

    @property
    def P(self) -> np.ndarray | None:
        return None if self._P is None else self._P[:, :self.k]

    def nbytes(self) -> int:
        arrays = [self._L, self._u, self._w, self.su]
        arrays += [a for a in (self._P, self.sP) if a is not None]
        return int(sum(a.nbytes for a in arrays))

    def _reserve(self, k: int) -> None:
        cap = self._u.size
        if k <= cap:
            return
        cap = max(k, min(2 * cap, self.max_cap))
        n = self.k
        L, u, w = np.zeros((cap, cap)), np.zeros(cap), np.zeros((cap, self.c))
        L[:n, :n], u[:n], w[:n] = self.L, self.u, self.w
        self._L, self._u, self._w = L, u, w
        if self._P is not None:
            P = np.zeros((self._P.shape[0], cap))
            P[:, :n] = self.P
            self._P = P

    def extend(self, S_new: np.ndarray, rhs_new: np.ndarray, r_new: np.ndarray) -> tuple:
        """Append rows: ``S_new`` (k_new, k) the new rows of ``S_a``, ``rhs_new`` (k_new,),
        ``r_new`` (k_new, c). Returns ``(l21, L22, w2)`` for the predicted rows' terms."""
        k0 = self.k
        k = S_new.shape[1]
        self._reserve(k)
        l21 = _lower_solve(self.L, S_new[:, :k0].T).T if k0 else np.zeros((k - k0, 0))
        L22 = np.linalg.cholesky(S_new[:, k0:] - l21 @ l21.T)
        u2 = _lower_solve(L22, rhs_new - l21 @ self.u)
        w2 = _lower_solve(L22, r_new - l21 @ self.w)
        self._L[k0:k, :k0] = l21
        self._L[k0:k, k0:k] = L22
        self._u[k0:k] = u2
        self._w[k0:k] = w2
        self.su += u2 @ w2
        self.k = k
        return l21, L22, w2

    def add_columns(self, l21: np.ndarray, L22: np.ndarray, w2: np.ndarray,
                    Q_new: np.ndarray, k0: int) -> None:
        """The kept predicted rows gain the new rows' columns (``Q_new``: ``Q[:, k0:k]``)."""
        Pn = _lower_solve(L22, (Q_new - self._P[:, :k0] @ l21.T).T).T
        self._P[:, k0:self.k] = Pn
        self.sP += Pn @ w2

    def set_rows(self, rows: np.ndarray, at_old: np.ndarray | None, Q_of) -> None:
        """Predict ``rows`` (sorted): keep the rows kept (at positions ``at_old`` of ``rows``;
        None: keep none), add the new ones (``Q_of(pos)``: ``Q`` of the rows at positions
        ``pos`` of ``rows``, every column)."""
        k, cap = self.k, self._u.size
        if at_old is None or self._P is None:
            self.rows, self._P = rows[:0].copy(), np.zeros((0, cap))
            self.sP = np.zeros((0, self.c))
            at_old = np.zeros(0, dtype=np.int64)
        new = np.ones(rows.size, dtype=bool)
        new[at_old] = False
        at_new = np.flatnonzero(new)
        Pn = _lower_solve(self.L, Q_of(at_new).T).T  # (r_new, k)
        P = np.zeros((rows.size, cap))
        sP = np.empty((rows.size, self.c))
        P[at_old], sP[at_old] = self._P, self.sP
        P[at_new, :k], sP[at_new] = Pn, Pn @ self.w
        self.rows, self._P, self.sP = np.array(rows, dtype=np.int64), P, sP

    def fold(self, Mr: np.ndarray, d: np.ndarray) -> None:
        """``r`` moved by ``Mr d`` (``Mr`` (>= k, r), ``d`` (r, c)); rows past ``k`` are
        read afresh when they are taken in."""
        if not self.k:
            return
        Y = _lower_solve(self.L, Mr[:self.k])  # (k, r)
        self._w[:self.k] += Y @ d
        self.su += (self.u @ Y) @ d
        if self._P is not None:
            self.sP += (self.P @ Y) @ d


class AddedCarry:
    """Per alpha in use, the carried added-row terms of a lean anchor's predictions."""

    def __init__(self, max_cap: int = 8) -> None:
        self._by_alpha: dict[int, _AlphaCarry] = {}
        self._max_cap = max(int(max_cap), 8)

    def clear(self) -> None:
        """Forget everything (targets re-sorted or alphas moved)."""
        self._by_alpha = {}

    def nbytes(self) -> int:
        """Bytes held."""
        return sum(c.nbytes() for c in self._by_alpha.values())

    def fold_changes(self, Mr_of, d: np.ndarray) -> None:
        """Changed targets: ``r`` of alpha ``ai`` moved by ``Mr_of(ai) @ d[:, cols]``."""
        for ai, c in self._by_alpha.items():
            if c.k:
                c.fold(Mr_of(ai), d[:, c.cols])

    def terms(self, k: int, ai: int, cols: slice, *, S_rows, rhs_rows, r_rows,
              rows: np.ndarray, Q_of) -> tuple:
        """``(u' w, L, u, P w)`` of alpha ``ai`` (targets ``cols``) for the anchor's ``k``
        added rows and the predicted ``rows`` (sorted).

        ``S_rows(k0)``, ``rhs_rows(k0)``, ``r_rows(k0)``: rows ``k0:`` of ``S_a`` (k - k0, k),
        ``1 - G' D_a q`` and ``r`` (k - k0, c); ``Q_of(pos, k0)``: ``Q`` of the rows at
        positions ``pos`` of ``rows`` (None: every row), columns ``k0:``.
        """
        c = self._by_alpha.get(ai)
        if c is None or c.cols != cols or c.k > k:
            c = self._by_alpha[ai] = _AlphaCarry(cols, min(32, self._max_cap), self._max_cap)
        k0 = c.k
        same = c._P is not None and np.array_equal(c.rows, rows)
        # positions of the kept predicted rows in ``rows`` (None: all of them, or none kept)
        pos = None if same or c._P is None else _positions(rows, c.rows)
        if not same and pos is None:
            c._P = None  # a predicted row left: the rows are set afresh below
        if k > k0:
            l21, L22, w2 = c.extend(S_rows(k0), rhs_rows(k0), r_rows(k0))
            if c._P is not None and c.rows.size:  # the kept rows gain the new columns
                c.add_columns(l21, L22, w2, Q_of(pos, k0), k0)
        if not same:
            c.set_rows(rows, pos, lambda p: Q_of(p, 0))
        return c.su, c.L, c.u, c.sP

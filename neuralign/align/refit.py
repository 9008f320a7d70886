"""Kept-alpha primal refits carried from one live refresh to the next by low-rank updates.

Between alpha re-selections a live session refits every narrow layer with the alphas it
kept. What changes from one refresh to the next is small: the means of the few dozen stimuli
that got an epoch (``S_xy += X_c' Delta``) and a few stimuli seen for the first time (the
centred scatter grows by a rank-``k`` term). A refit from scratch costs, per distinct alpha,
a Cholesky factorisation and a solve against the predicted stimuli, then the
``n_pred x D x M`` product of the predictions; carried forward it costs ``O(n_pred D c)``
per alpha plus ``O(n_pred c M)`` (``c`` changed stimuli), about five times less at
THINGS-EEG2 sizes.

State of one split (:class:`CarriedRefit`), per distinct alpha ``a`` in use (targets ``g``):

- ``Ainv_a = (C_xx + a I)^-1`` (explicit, ``D x D``), brought forward by Woodbury's identity;
- ``Z_a = (X_p - m_x) Ainv_a`` for the predicted stimuli;
- ``F[:, g] = Z_a S_xy[:, g]``: the predictions before the mean terms,
  ``pred = F + (1 - Z_a s_x) m_y'``.

Adding ``k`` training stimuli ``X_n`` to a set of ``n`` with mean ``m`` changes the centred
scatter by ``U (I - 1 1' / (n + k)) U'`` with ``U = (X_n - m)'``, whose middle factor has the
well-conditioned inverse ``I + 1 1' / n``. Round-off grows slowly with the number of updates:
the state is rebuilt after :data:`MAX_UPDATES` of them, and whenever alphas, the training set
or the predicted stimuli change in a way the updates do not cover. Everything runs in float64
(tested against fresh refits and scikit-learn in ``tests/align/test_refit.py``).
"""

from __future__ import annotations

import numpy as np

MAX_UPDATES = 32  # refreshes carried forward before the state is rebuilt from the statistics


class CarriedRefit:
    """One split's kept-alpha refit, carried forward (see the module docstring).

    Build it with :meth:`build`; then each refresh calls :meth:`advance` with the training
    statistics and the changes logged since (:meth:`~neuralign.align.primal.BlockStats.
    changes`), and reads :meth:`predictions`. ``F`` keeps the targets ordered by alpha group
    (``order``), so that every group's columns are one contiguous slice.
    """

    def __init__(self) -> None:
        self.alphas = np.zeros(0)
        self.idx = np.zeros(0, np.int64)
        self.order = np.zeros(0, np.int64)  # targets sorted by alpha group
        self.train = np.zeros(0, np.int64)
        self.predict = np.zeros(0, np.int64)
        self.version = -1
        self.updates = 0
        self.n = 0.0
        self.sx = np.zeros(0)
        self.ks: list[int] = []  # alpha index of every group
        self.groups: list[list] = []  # per alpha in use: [lo, hi, Ainv, Z]
        self.F = np.zeros((0, 0))

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, st: tuple, *, train: np.ndarray, predict: np.ndarray, xp: np.ndarray,
              alphas: np.ndarray, idx: np.ndarray, version: int) -> CarriedRefit | None:
        """Refit from the training statistics ``st = (n, sum x, S_xx, sum y, sum y^2, S_xy)``.

        ``xp``: standardised features of ``predict``. None when some ``C_xx + a I`` is not
        numerically positive definite (then the caller uses the eigendecomposition).
        """
        n, sx, sxx, _sy, _syy, sxy = st
        self = cls()
        self.alphas = np.array(alphas, dtype=float)
        self.idx = np.array(idx, dtype=np.int64)
        self.order = np.argsort(self.idx, kind="stable")
        self.train = np.array(train, dtype=np.int64)
        self.predict = np.array(predict, dtype=np.int64)
        self.version = int(version)
        self.n, self.sx = float(n), np.array(sx, dtype=float)
        mx = self.sx / self.n
        cxx = sxx - self.n * (mx[:, None] * mx[None, :])
        xc = xp - mx[None, :]
        self.F = np.empty((xp.shape[0], sxy.shape[1]))
        for k, lo, hi in self._layout():
            inv = _inverse(cxx, float(self.alphas[k]))
            if inv is None:
                return None
            z = xc @ inv
            self.F[:, lo:hi] = z @ np.take(sxy, self.order[lo:hi], axis=1)
            self.ks.append(k)
            self.groups.append([lo, hi, inv, z])
        return self

    def _layout(self):
        """``(alpha index, lo, hi)`` of every group of ``order``."""
        ks, bounds = np.unique(self.idx[self.order], return_index=True)
        bounds = np.append(bounds, self.idx.size)
        return [(int(k), int(bounds[j]), int(bounds[j + 1])) for j, k in enumerate(ks)]

    def retarget(self, st: tuple, idx: np.ndarray, xp_fn) -> bool:
        """Re-selected alphas (``idx``): only the targets whose alpha changed are refitted
        (``n_pred x D`` each), plus one factorisation per alpha new to the split. The state
        must be at ``st`` (after :meth:`advance`). False: some ``C_xx + a I`` is not
        numerically positive definite."""
        idx = np.asarray(idx, dtype=np.int64)
        if np.array_equal(idx, self.idx):
            return True
        n, sx, sxx, _sy, _syy, sxy = st
        have = {k: (inv, z) for k, (_lo, _hi, inv, z) in zip(self.ks, self.groups, strict=True)}
        missing = [k for k in np.unique(idx).tolist() if k not in have]
        if missing:
            mx = sx / n
            cxx = sxx - n * (mx[:, None] * mx[None, :])
            xc = xp_fn(self.predict) - mx[None, :]
            for k in missing:
                inv = _inverse(cxx, float(self.alphas[k]))
                if inv is None:
                    return False
                have[k] = (inv, xc @ inv)
        old_at = np.empty(idx.size, np.int64)
        old_at[self.order] = np.arange(idx.size)
        order = np.argsort(idx, kind="stable")
        new_at = np.empty(idx.size, np.int64)
        new_at[order] = np.arange(idx.size)
        same = idx == self.idx
        F = np.empty_like(self.F)
        F[:, new_at[same]] = self.F[:, old_at[same]]
        moved = np.nonzero(~same)[0]
        for k in np.unique(idx[moved]).tolist():
            cols = moved[idx[moved] == k]
            F[:, new_at[cols]] = have[k][1] @ np.take(sxy, cols, axis=1)
        self.idx, self.order, self.F = idx.copy(), order, F
        self.ks, self.groups = [], []
        for k, lo, hi in self._layout():
            self.ks.append(k)
            self.groups.append([lo, hi, *have[k]])
        return True

    def fits(self, alphas: np.ndarray, idx: np.ndarray) -> bool:
        """Whether the state is for these alphas and this alpha of every target."""
        return (np.array_equal(self.alphas, alphas) and self.idx.shape == np.shape(idx)
                and np.array_equal(self.idx, idx))

    # ------------------------------------------------------------------ advance
    def advance(self, st: tuple, changes: tuple, *, version: int, train: np.ndarray,
                predict: np.ndarray, xp_fn) -> bool:
        """Bring the state to the statistics ``st`` (at ``version``); False: rebuild instead.

        ``changes = (rows, x, delta, first_seen)``: the training stimuli whose means changed
        since the state's version (their standardised features ``x`` and ``delta`` = new - old
        mean; first-seen stimuli joined the training set). ``xp_fn(rows)`` gives standardised
        features of stimuli newly predicted.
        """
        same = version == self.version
        if not same and (version != self.version + 1 or self.updates >= MAX_UPDATES):
            return False
        rows, x, delta, fresh = changes
        added = rows[fresh] if rows.size and not same else rows[:0]
        new_train = np.union1d(self.train, added) if added.size else self.train
        if (not np.array_equal(new_train, train) or abs(self.n + added.size - st[0]) > 0.5
                or not np.isin(self.predict, predict).all()):
            return False
        sxy = st[5]
        if rows.size and not same:
            dperm = np.take(delta, self.order, axis=1)
            for lo, hi, _inv, z in self.groups:  # S_xy moved: F += Z X_c' Delta
                self.F[:, lo:hi] += (z @ x.T) @ dperm[:, lo:hi]
            if added.size:
                self._add_training(x[fresh], st, sxy)
            self.updates += 1
        self.train, self.version = np.array(train, dtype=np.int64), int(version)
        self.n, self.sx = float(st[0]), np.array(st[1], dtype=float)
        if predict.size != self.predict.size:
            self._add_predicted(np.asarray(predict, np.int64), xp_fn, sxy)
        return True

    def _add_training(self, xn: np.ndarray, st: tuple, sxy: np.ndarray) -> None:
        """Woodbury: the scatter grows by ``U (I - 1 1'/n') U'``; ``Z`` and ``F`` follow."""
        from scipy import linalg

        k = xn.shape[0]
        mx = self.sx / self.n
        u = (xn - mx[None, :]).T  # (D, k)
        cinv = np.eye(k) + 1.0 / self.n  # inverse of I - 1 1' / (n + k)
        dm = st[1] / st[0] - mx  # the training mean moves: X_p - m' = (X_p - m) - dm
        left, right = [], []
        for _lo, _hi, inv, z in self.groups:
            au = inv @ u  # (D, k)
            kk = cinv + u.T @ au
            w = linalg.solve(kk, au.T, assume_a="pos", check_finite=False)  # (k, D)
            zu = z @ u  # (n_p, k)
            inv -= au @ w
            dma = dm @ inv  # (D,)
            # Z' = Z - (Z U) K^-1 (Ainv U)' - 1 (dm Ainv'): a rank k + 1 change
            z -= zu @ w
            z -= dma[None, :]
            left.append(zu)
            right.append(np.vstack([w, dma[None, :]]))
        # F's change is (Z' - Z) S_xy: one pass over S_xy for every group's right factor
        rs = np.take(np.vstack(right) @ sxy, self.order, axis=1)
        for j, (lo, hi, _inv, _z) in enumerate(self.groups):
            r = rs[j * (k + 1):(j + 1) * (k + 1), lo:hi]
            self.F[:, lo:hi] -= left[j] @ r[:k]
            self.F[:, lo:hi] -= r[k][None, :]

    def _add_predicted(self, predict: np.ndarray, xp_fn, sxy: np.ndarray) -> None:
        """Stimuli newly predicted (first seen in a scored block): their rows of Z and F."""
        new = np.setdiff1d(predict, self.predict)
        at_old = np.searchsorted(predict, self.predict)
        at_new = np.searchsorted(predict, new)
        xc = xp_fn(new) - (self.sx / self.n)[None, :]
        F = np.empty((predict.size, self.F.shape[1]))
        F[at_old] = self.F
        for grp in self.groups:
            lo, hi, inv, z = grp
            zn = xc @ inv
            F[at_new, lo:hi] = zn @ np.take(sxy, self.order[lo:hi], axis=1)
            full = np.empty((predict.size, z.shape[1]))
            full[at_old], full[at_new] = z, zn
            grp[3] = full
        self.F, self.predict = F, predict

    # ------------------------------------------------------------------ read
    def predictions(self, st: tuple) -> np.ndarray:
        """Predictions ``(n_pred, M)`` float64 of the predicted stimuli with the state's alphas."""
        n, sx, sy = st[0], st[1], st[3]
        my = np.take(sy, self.order) / n
        out = np.empty_like(self.F)
        for lo, hi, _inv, z in self.groups:
            out[:, self.order[lo:hi]] = (self.F[:, lo:hi]
                                         + (1.0 - z @ sx)[:, None] * my[None, lo:hi])
        return out

    def nbytes(self) -> int:
        """Bytes held."""
        return self.F.nbytes + sum(inv.nbytes + z.nbytes for _, _, inv, z in self.groups)


def _inverse(cxx: np.ndarray, alpha: float) -> np.ndarray | None:
    """``(C_xx + alpha I)^-1`` from its Cholesky factor; None if not positive definite."""
    from scipy import linalg

    a = cxx.copy()
    a.flat[:: a.shape[0] + 1] += alpha
    try:
        c, _ = linalg.cho_factor(a, lower=True, overwrite_a=True, check_finite=False)
    except linalg.LinAlgError:
        return None
    inv, info = linalg.lapack.dpotri(c, lower=1)
    if info != 0:
        return None
    inv = np.tril(inv)
    inv += np.tril(inv, -1).T
    return inv

"""Cross-validation geometry: which stimuli train, which validate, which are scored.

Every stimulus belongs to one block: a fold ``0..F-1`` chosen by a stable hash of its id
(independent of order and of the process), or block ``F`` for a designated test stimulus.

- **train/test design** (``test_ids`` given, as in THINGS-EEG2): one outer split, train on
  every seen training stimulus, score on the seen test stimuli. Inner splits (for K-fold alpha
  selection) leave one training fold out.
- **nested cross-validation** (no test set): outer split ``f`` trains on every seen stimulus
  outside fold ``f`` and scores fold ``f``; predictions are pooled over folds. Inner splits
  leave a second fold out of the outer training set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


def stable_fold(stimulus_id: str, n_folds: int) -> int:
    """Fold of a stimulus: a stable hash of its id (independent of order and of the process).

    Parameters
    ----------
    stimulus_id : str
        The stimulus id.
    n_folds : int
        Number of folds.

    Returns
    -------
    int
        A fold in ``0 .. n_folds - 1``.
    """
    h = hashlib.blake2b(str(stimulus_id).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "little") % n_folds


def stable_order(stimulus_ids: np.ndarray) -> np.ndarray:
    """A permutation of ``stimulus_ids`` by a stable hash (used to cap RSA stimuli)."""
    keys = np.array([hashlib.blake2b(str(s).encode(), digest_size=8).hexdigest()
                     for s in stimulus_ids])
    return np.argsort(keys, kind="stable")


@dataclass(frozen=True)
class Split:
    """One training set and the rows it predicts.

    Attributes
    ----------
    train : ndarray of int64
        Rows of the training set (sorted).
    predict : ndarray of int64
        Rows predicted from it (validation or scored rows, sorted).
    left_out : tuple of int
        Blocks outside the training set (for training sets built from block statistics).
    outer : int
        Index of the outer split this split belongs to (itself for outer splits).
    """

    train: np.ndarray
    predict: np.ndarray
    left_out: tuple[int, ...]
    outer: int = 0
    key: bytes = field(default=b"", compare=False)


class FoldGeometry:
    """Blocks of every stimulus, and the splits of the seen ones.

    Parameters
    ----------
    stimulus_ids : ndarray of str, shape (N,)
        Every stimulus that may be shown.
    is_test : ndarray of bool, shape (N,)
        Designated test stimuli (all False: nested cross-validation).
    n_folds : int
        Number of folds over the non-test stimuli.
    design : bool
        Train/test design (score the test stimuli) rather than nested cross-validation.
    """

    def __init__(self, stimulus_ids: np.ndarray, is_test: np.ndarray, n_folds: int, *,
                 design: bool) -> None:
        self.n_folds = int(n_folds)
        self.is_test = np.asarray(is_test, dtype=bool)
        self.design = bool(design)
        self.block = np.array([stable_fold(s, self.n_folds) for s in stimulus_ids],
                              dtype=np.int64)
        self.block[self.is_test] = self.n_folds
        self.n_blocks = self.n_folds + (1 if self.design else 0)
        #: rows that are scored (and keep split halves)
        self.scoring = self.is_test.copy() if self.design else np.ones(self.block.size, bool)

    def enough(self, seen: np.ndarray) -> bool:
        """Whether the seen stimuli allow a fit and a score."""
        train = seen & ~self.is_test
        if self.design:
            return int(train.sum()) >= 3 and int((seen & self.is_test).sum()) >= 2
        return int(train.sum()) >= 3

    def outer_splits(self, seen: np.ndarray) -> list[Split]:
        """The scoring splits of the seen stimuli."""
        F = self.n_folds
        if self.design:
            train = np.nonzero(seen & ~self.is_test)[0]
            test = np.nonzero(seen & self.is_test)[0]
            return [Split(train, test, (F,), 0)]
        out = []
        for f in range(F):
            pred = np.nonzero(seen & (self.block == f))[0]
            if pred.size == 0:
                continue
            train = np.nonzero(seen & (self.block != f))[0]
            out.append(Split(train, pred, (f,), len(out)))
        return out

    def inner_splits(self, seen: np.ndarray, outer: list[Split]) -> list[Split]:
        """K-fold alpha-selection splits inside each outer training set."""
        out = []
        present = [f for f in range(self.n_folds) if (seen & (self.block == f)).any()]
        for o_idx, o in enumerate(outer):
            for g in present:
                if g in o.left_out:
                    continue
                val = np.nonzero(seen & (self.block == g))[0]
                left = tuple(sorted(set(o.left_out) | {g}))
                mask = seen & ~np.isin(self.block, left)
                out.append(Split(np.nonzero(mask)[0], val, left, o_idx))
        return out


@dataclass(frozen=True)
class BlockChanges:
    """Changed stimulus means grouped by block (contiguous), shared by every layer's update.

    Attributes
    ----------
    rows : ndarray of int64
        Changed rows, sorted by block.
    delta : ndarray (len(rows), M)
        New minus old mean.
    first_seen : ndarray of bool
        Rows seen for the first time.
    bounds : ndarray of int64 (n_blocks + 1,)
        ``rows[bounds[b]:bounds[b+1]]`` are block ``b``'s.
    dn, dsy, dsyy : ndarrays (n_blocks,), (n_blocks, M), (n_blocks, M)
        Increments of the per-block target statistics (count, sum, sum of squares).
    """

    rows: np.ndarray
    delta: np.ndarray
    first_seen: np.ndarray
    bounds: np.ndarray
    dn: np.ndarray
    dsy: np.ndarray
    dsyy: np.ndarray

    @classmethod
    def group(cls, block: np.ndarray, n_blocks: int, rows: np.ndarray, old: np.ndarray,
              new: np.ndarray, first_seen: np.ndarray) -> BlockChanges:
        """Group changed rows (with their old and new means) by ``block``."""
        b = block[rows]
        order = np.argsort(b, kind="stable")
        rows, b = rows[order], b[order]
        old, new, first_seen = old[order], new[order], first_seen[order]
        bounds = np.searchsorted(b, np.arange(n_blocks + 1))
        delta = new - old
        dsq = new * new - old * old
        M = new.shape[1]
        dn = np.zeros(n_blocks)
        dsy = np.zeros((n_blocks, M))
        dsyy = np.zeros((n_blocks, M))
        for k in range(n_blocks):
            s = slice(bounds[k], bounds[k + 1])
            if s.start == s.stop:
                continue
            dn[k] = first_seen[s].sum()
            dsy[k] = delta[s].sum(0)
            dsyy[k] = dsq[s].sum(0)
        return cls(rows, delta, first_seen, bounds, dn, dsy, dsyy)

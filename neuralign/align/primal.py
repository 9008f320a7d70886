"""Primal-form state of a live session: block sufficient statistics and kept-alpha refits.

Narrow layers (fewer features than training stimuli) are solved from sufficient statistics
(``sum x``, ``S_xx``, ``S_xy`` over the training stimuli). A live session keeps them per
*slot* (a group of blocks that always enter training sets together) and folds in only the
stimulus means that changed since the last refresh:

- train/test design with GCV: one slot, every training fold together; the test block is never
  trained on, so no statistics of it are kept;
- nested cross-validation, or K-fold alpha selection: one slot per fold (training sets leave
  folds out).

Between alpha re-selections the alphas are kept, and a refit needs no eigendecomposition: per
distinct alpha, one Cholesky factorisation of ``Cxx + a I`` (:func:`~neuralign.align.solvers.
primal_refit`). While a training set is unchanged (only repetitions arrive: ``Cxx`` is the
same, only the targets move), the factor's solve against the predicted stimuli, ``Z_a = X_p
(Cxx + a I)^-1``, is kept too, and a refit is one product ``Z_a C_xy`` per alpha.
"""

from __future__ import annotations

import numpy as np

from .folds import BlockChanges


def slot_layout(n_folds: int, *, design: bool, per_fold: bool) -> np.ndarray:
    """Slot of every block (``-1``: never in a training set).

    Parameters
    ----------
    n_folds : int
        Folds over the training stimuli (blocks ``0 .. n_folds - 1``).
    design : bool
        Train/test design: block ``n_folds`` holds the test stimuli (never trained on).
    per_fold : bool
        One slot per fold (nested cross-validation, K-fold alpha selection); else one slot
        for every fold together.
    """
    slots = np.arange(n_folds) if per_fold else np.zeros(n_folds, dtype=np.int64)
    return np.concatenate([slots, [-1]]).astype(np.int64) if design else slots.astype(np.int64)


class BlockTargets:
    """Per-block target statistics (count, sum, sum of squares), shared by every layer.

    Parameters
    ----------
    n_blocks : int
        Blocks of the fold geometry.
    n_targets : int
        Targets per stimulus.
    slots : ndarray of int, optional
        Slot of every block for the layers' feature statistics (:func:`slot_layout`);
        default: one slot per block.
    """

    def __init__(self, n_blocks: int, n_targets: int, slots: np.ndarray | None = None) -> None:
        self.n = np.zeros(n_blocks)
        self.sy = np.zeros((n_blocks, n_targets))
        self.syy = np.zeros((n_blocks, n_targets))
        self.slots = (np.arange(n_blocks, dtype=np.int64) if slots is None
                      else np.asarray(slots, dtype=np.int64))
        if self.slots.shape != (n_blocks,):
            raise ValueError(f"{self.slots.size} slots for {n_blocks} blocks")

    @property
    def n_slots(self) -> int:
        """Slots of feature statistics each layer keeps."""
        return int(self.slots.max(initial=-1)) + 1

    def update(self, changes: BlockChanges) -> None:
        """Add the increments of a refresh's changes."""
        self.n += changes.dn
        self.sy += changes.dsy
        self.syy += changes.dsyy


class BlockStats:
    """Per-slot feature statistics of one layer, updated as stimulus means change."""

    def __init__(self, targets: BlockTargets, dim: int) -> None:
        self.targets = targets
        ns = targets.n_slots
        M = targets.sy.shape[1]
        self.sx = np.zeros((ns, dim))
        self.sxx = np.zeros((ns, dim, dim))
        self.sxy = np.zeros((ns, dim, M))
        self.version = 0  # updates so far; ``log`` holds the last one's changes per slot
        self.log: dict[int, tuple] = {}

    def update(self, rows_fn, ch: BlockChanges) -> None:
        """``S_xy += x' (new - old)``; new stimuli also add to ``sum x`` and ``S_xx``.

        ``rows_fn(rows)`` gives the standardised features of ``rows`` (read only for the rows
        of blocks that enter training sets).
        """
        slots = self.targets.slots
        self.version += 1
        self.log = {}
        for s in range(self.sx.shape[0]):
            parts = [np.arange(ch.bounds[b], ch.bounds[b + 1])
                     for b in np.nonzero(slots == s)[0] if ch.bounds[b + 1] > ch.bounds[b]]
            if not parts:
                continue
            sel = parts[0] if len(parts) == 1 else np.concatenate(parts)
            x = rows_fn(ch.rows[sel])
            delta = ch.delta[sel]
            self.sxy[s] += x.T @ delta
            fresh = ch.first_seen[sel]
            self.log[s] = (ch.rows[sel], x, delta, fresh)
            if fresh.any():
                xf = x[fresh]
                self.sx[s] += xf.sum(0)
                self.sxx[s] += xf.T @ xf

    def training(self, left_out: tuple[int, ...]) -> tuple:
        """Statistics of every block but ``left_out``: ``(n, sx, sxx, sy, syy, sxy)``.

        With a single slot the arrays are the kept ones (not copies): read them only.
        """
        t = self.targets
        nb = t.slots.size
        keep = [b for b in range(nb) if b not in left_out]
        kept = {int(t.slots[b]) for b in keep}
        gone = {int(t.slots[b]) for b in left_out if b < nb}
        if -1 in kept or kept & gone:
            raise RuntimeError(f"blocks {left_out} left out do not match the statistics' slots")
        kept_slots = sorted(kept)
        out = [float(t.n[keep].sum()), None, None, t.sy[keep].sum(0), t.syy[keep].sum(0), None]
        for j, a in ((1, self.sx), (2, self.sxx), (5, self.sxy)):
            acc = a[kept_slots[0]]
            if len(kept_slots) > 1:
                acc = acc.copy()
                for s in kept_slots[1:]:
                    acc += a[s]
            out[j] = acc
        return tuple(out)


    def changes(self, left_out: tuple[int, ...]) -> tuple:
        """The last update's changes to the training set of every block but ``left_out``:
        ``(rows, x, delta, first_seen)`` (see :class:`~neuralign.align.refit.CarriedRefit`)."""
        t = self.targets
        gone = {int(t.slots[b]) for b in left_out if b < t.slots.size}
        parts = [v for s, v in sorted(self.log.items()) if s not in gone]
        if not parts:
            M = self.sxy.shape[2]
            return (np.zeros(0, np.int64), np.zeros((0, self.sx.shape[1])), np.zeros((0, M)),
                    np.zeros(0, bool))
        if len(parts) == 1:
            return parts[0]
        return tuple(np.concatenate(a) for a in zip(*parts, strict=True))


class RefitCache:
    """Kept solves ``Z_a`` of one layer's training sets (see the module docstring).

    Entries are keyed by training and predicted rows; a refresh keeps only the entries of
    its own splits (:meth:`start`, :meth:`finish`).
    """

    def __init__(self) -> None:
        self._kept: dict[bytes, dict[int, np.ndarray]] = {}
        self._next: dict[bytes, dict[int, np.ndarray]] = {}

    @staticmethod
    def key(train: np.ndarray, predict: np.ndarray, alphas: np.ndarray) -> bytes:
        """Key of a split (and the alphas its solves are for)."""
        return b"|".join([np.asarray(train, np.int64).tobytes(),
                          np.asarray(predict, np.int64).tobytes(),
                          np.asarray(alphas, float).tobytes()])

    def start(self) -> None:
        """Begin a refresh."""
        self._next = {}

    def entry(self, key: bytes) -> tuple[dict[int, np.ndarray], bool]:
        """The kept solves of a split (alpha index -> ``Z_a``) and whether the split is
        unchanged since the last refresh (then every alpha's solve is worth keeping)."""
        old = self._kept.get(key)
        entry = self._next.setdefault(key, old if old is not None else {})
        return entry, old is not None

    def has_all(self, key: bytes, idx: np.ndarray) -> bool:
        """Whether every alpha in ``idx`` has a kept solve for the split."""
        old = self._kept.get(key)
        return old is not None and all(int(k) in old for k in np.unique(idx))

    def finish(self) -> None:
        """End a refresh: keep the entries its splits used."""
        self._kept, self._next = self._next, {}

    def clear(self) -> None:
        """Drop every kept solve."""
        self._kept, self._next = {}, {}

    def nbytes(self) -> int:
        """Bytes held."""
        return sum(z.nbytes for e in self._kept.values() for z in e.values())

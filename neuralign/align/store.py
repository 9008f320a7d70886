"""Per-stimulus running state: repetition counts, means and split halves.

Accumulation is the acquisition path of a live session, so it only touches the rows of the
stimuli it receives: O(C T) per epoch. Everything the solvers need is derived from this store
at refresh time (targets are stimulus means), so the store is the single source of truth and
any per-layer cache can be rebuilt from it.

Scoring stimuli (the test set, or every stimulus in nested cross-validation) also keep
odd/even split-half sums and Welford sums of squared deviations (``M2``), for noise ceilings
and cross-validated RDMs. Repetitions alternate between half A and half B in arrival order.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ..errors import NeuralignError


@dataclass(frozen=True)
class Changes:
    """Rows whose mean changed since the previous :meth:`StimulusStore.take_changes`.

    Attributes
    ----------
    rows : ndarray of int64
        Changed rows.
    old : ndarray, shape (len(rows), M)
        Their means when last taken (zeros for rows seen for the first time).
    new : ndarray, shape (len(rows), M)
        Their current means.
    first_seen : ndarray of bool
        True for rows that had no epoch when last taken.
    """

    rows: np.ndarray
    old: np.ndarray
    new: np.ndarray
    first_seen: np.ndarray


@dataclass(frozen=True)
class RepetitionView:
    """A consistent copy of what RSA and the noise ceilings need for some rows."""

    rows: np.ndarray
    means: np.ndarray
    counts: np.ndarray
    half_a: np.ndarray | None
    half_b: np.ndarray | None
    m2: np.ndarray | None


class StimulusStore:
    """Running means of every stimulus, with split halves for the scoring ones.

    Parameters
    ----------
    index : mapping of str to int
        Stimulus id -> row.
    n_targets : int
        Values per epoch (channels x times).
    scoring : ndarray of bool, shape (N,)
        Rows that keep split halves and Welford sums.
    """

    def __init__(self, index: Mapping[str, int], n_targets: int, scoring: np.ndarray) -> None:
        self.index = index
        n = len(index)
        self.n_targets = int(n_targets)
        self.scoring = np.asarray(scoring, dtype=bool)
        self.count = np.zeros(n, dtype=np.int64)
        self.mean = np.zeros((n, self.n_targets))
        self._reps: dict[int, list[np.ndarray]] = {}  # row -> [sum A, sum B, M2]
        self._pending: dict[int, np.ndarray | None] = {}  # row -> mean when last taken
        self.lock = threading.Lock()
        self.n_epochs = 0
        self.unknown_ids: Counter = Counter()

    # ------------------------------------------------------------------ adding
    def add(self, stimulus_id: str, flat: np.ndarray) -> bool:
        """Add one flattened epoch; False (and counted) for an unknown stimulus."""
        i = self.index.get(str(stimulus_id))
        if i is None:
            self.unknown_ids[str(stimulus_id)] += 1
            return False
        with self.lock:
            n0 = self.count[i]
            if i not in self._pending:
                self._pending[i] = self.mean[i].copy() if n0 else None
            mean_old = self.mean[i]
            delta = flat - mean_old
            n = n0 + 1
            mean_new = mean_old + delta / n
            if self.scoring[i] and n0 >= 1:
                rep = self._reps.get(i)
                if rep is None:  # second repetition: the first one was the mean
                    rep = self._reps[i] = [mean_old.copy(), np.zeros_like(flat),
                                           np.zeros_like(flat)]
                rep[0 if n0 % 2 == 0 else 1] += flat
                rep[2] += delta * (flat - mean_new)
            self.mean[i] = mean_new
            self.count[i] = n
            self.n_epochs += 1
        return True

    def add_many(self, stimulus_ids: Sequence[str], flat: np.ndarray) -> int:
        """Add a batch of flattened epochs ``(n, M)``; same state as adding them in order."""
        ids = np.asarray(stimulus_ids).astype(str)
        rows = np.fromiter((self.index.get(s, -1) for s in ids), dtype=np.int64, count=ids.size)
        for s in ids[rows < 0]:
            self.unknown_ids[str(s)] += 1
        keep = np.nonzero(rows >= 0)[0]
        if keep.size == 0:
            return 0
        rows = rows[keep]
        if keep.size != flat.shape[0]:
            flat = flat[keep]
        # Group epochs by stimulus, keeping arrival order inside each group.
        uniq, inv = np.unique(rows, return_inverse=True)
        order = np.argsort(inv, kind="stable")
        k = np.bincount(inv, minlength=uniq.size)
        starts = np.concatenate([[0], np.cumsum(k)[:-1]])
        pos = np.empty(rows.size, dtype=np.int64)
        pos[order] = np.arange(rows.size) - np.repeat(starts, k)
        with self.lock:
            n0 = self.count[uniq]
            g = sparse.csr_matrix(
                (np.ones(rows.size), (inv, np.arange(rows.size))), shape=(uniq.size, rows.size)
            )
            mean_b = np.asarray(g @ flat, dtype=float) / k[:, None]
            for j, i in enumerate(uniq.tolist()):
                if i not in self._pending:
                    self._pending[i] = self.mean[i].copy() if n0[j] else None
            sel = np.nonzero(self.scoring[uniq])[0]
            if sel.size:
                self._add_halves(uniq, inv, n0, k, pos, mean_b, flat, sel)
            n_new = n0 + k
            self.mean[uniq] += (mean_b - self.mean[uniq]) * (k / n_new)[:, None]
            self.count[uniq] = n_new
            self.n_epochs += int(rows.size)
        return int(rows.size)

    def _add_halves(self, uniq, inv, n0, k, pos, mean_b, flat, sel) -> None:
        """Split-half sums and Welford M2 of the scoring stimuli of a batch (lock held)."""
        parity = (n0[inv] + pos) % 2  # 0 -> half A, 1 -> half B (global repetition index)
        cols = np.nonzero(np.isin(inv, sel))[0]
        sub = flat[cols].astype(float)
        gi = inv[cols]
        shape = (uniq.size, cols.size)
        ga = sparse.csr_matrix(((parity[cols] == 0).astype(float), (gi, np.arange(cols.size))),
                               shape=shape)
        gb = sparse.csr_matrix(((parity[cols] == 1).astype(float), (gi, np.arange(cols.size))),
                               shape=shape)
        sum_a = np.asarray(ga @ sub)
        sum_b = np.asarray(gb @ sub)
        sumsq = np.asarray((ga + gb) @ (sub * sub))
        for j in sel.tolist():
            i = int(uniq[j])
            n_old, kb = int(n0[j]), int(k[j])
            n_new = n_old + kb
            if n_new < 2:
                continue
            m2_b = sumsq[j] - kb * mean_b[j] ** 2
            rep = self._reps.get(i)
            if rep is None:
                if n_old == 1:
                    rep = [self.mean[i].copy(), np.zeros(self.n_targets), np.zeros(self.n_targets)]
                else:
                    rep = [np.zeros(self.n_targets) for _ in range(3)]
                self._reps[i] = rep
            d = mean_b[j] - self.mean[i]
            rep[0] += sum_a[j]
            rep[1] += sum_b[j]
            rep[2] += m2_b + d * d * (n_old * kb / n_new)

    # ------------------------------------------------------------------ reading
    @property
    def seen(self) -> np.ndarray:
        """Boolean mask of the rows with at least one epoch."""
        return self.count > 0

    def means(self, rows: np.ndarray) -> np.ndarray:
        """A copy of the means of ``rows`` (consistent with concurrent adds)."""
        with self.lock:
            return self.mean[rows].copy()

    def take_changes(self) -> Changes:
        """The rows changed since the last call, with their old and new means."""
        with self.lock:
            pending, self._pending = self._pending, {}
            idx = np.fromiter(pending.keys(), dtype=np.int64, count=len(pending))
            new = self.mean[idx].copy()
        first = np.array([pending[i] is None for i in idx.tolist()], dtype=bool)
        old = np.zeros_like(new)
        for j, i in enumerate(idx.tolist()):
            if pending[i] is not None:
                old[j] = pending[i]
        return Changes(rows=idx, old=old, new=new, first_seen=first)

    def repetition_rows(self) -> np.ndarray:
        """Sorted scoring rows with at least two repetitions (they have split halves)."""
        with self.lock:
            return np.array(sorted(self._reps), dtype=np.int64)

    def m2(self, rows: np.ndarray) -> np.ndarray:
        """Welford sums of squared deviations of ``rows`` (zeros where fewer than 2 reps)."""
        out = np.zeros((rows.size, self.n_targets))
        with self.lock:
            for j, i in enumerate(rows.tolist()):
                rep = self._reps.get(i)
                if rep is not None:
                    out[j] = rep[2]
        return out

    def view(self, rows: np.ndarray, *, halves: bool) -> RepetitionView:
        """Means, counts and (with ``halves``) split-half means and M2 of ``rows``."""
        with self.lock:
            means = self.mean[rows].copy()
            counts = self.count[rows].copy()
            reps = [self._reps[i] for i in rows.tolist()] if halves else []
            ha = np.stack([rp[0] for rp in reps]) if reps else None
            hb = np.stack([rp[1] for rp in reps]) if reps else None
            m2 = np.stack([rp[2] for rp in reps]) if reps else None
        if reps:
            ha = ha / ((counts + 1) // 2)[:, None]
            hb = hb / (counts // 2)[:, None]
        return RepetitionView(rows, means, counts, ha, hb, m2)


def check_flat_epochs(epochs: np.ndarray, n_channels: int, n_times: int) -> np.ndarray:
    """Validate ``(n, C, T)`` epochs and return them as ``(n, C*T)`` (no copy when possible)."""
    epochs = np.asarray(epochs)
    if epochs.ndim != 3 or epochs.shape[1:] != (n_channels, n_times):
        raise NeuralignError(
            f"epochs shape {epochs.shape} does not match (n, channels={n_channels}, "
            f"times={n_times})"
        )
    flat = epochs.reshape(epochs.shape[0], n_channels * n_times)
    if not np.isfinite(flat).all():
        raise NeuralignError("epochs contain NaN or Inf")
    return flat

""":class:`EpochData`: epochs tagged with stimulus ids, the shape every loader returns.

Every dataset loader (:mod:`neuralign.offline`), the re-epocher of a live recording
(:mod:`neuralign.realtime.recording`) and the simulators (:mod:`neuralign.sim`) produce one;
the engine (:func:`neuralign.align.analyze_epochs`), the replays and the studies consume it.
The operations on it (:meth:`EpochData.subset`, :meth:`EpochData.sorted_by`,
:meth:`EpochData.stimulus_means`, :meth:`EpochData.split_halves`) are written once, here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import NeuralignError


@dataclass
class EpochData:
    """Epochs tagged with stimulus ids, ready for :class:`~neuralign.align.AlignmentEngine`.

    Parameters
    ----------
    epochs : ndarray, shape (n_epochs, n_channels, n_times)
        Single-trial (or single-repetition) epochs, float32 or float64, in epoch order.
    stimulus_ids : ndarray of str, shape (n_epochs,)
        The stimulus shown in each epoch (ids as in the feature file).
    times : ndarray, shape (n_times,)
        Epoch time axis in seconds (0 = stimulus onset).
    ch_names : list of str
        Channel names.
    test_ids : list of str | None
        Stimuli that score (a designated test set, as in THINGS-EEG2); ``None`` means nested
        cross-validation over all stimuli.
    info : dict
        Source, subject, preprocessing and anything else worth recording (JSON-serialisable).
        ``info["onsets_s"]`` (one onset per epoch, seconds) and ``info["soa_s"]`` tell a
        replay when each epoch was shown.
    """

    epochs: np.ndarray
    stimulus_ids: np.ndarray
    times: np.ndarray
    ch_names: list[str]
    test_ids: list[str] | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stimulus_ids = np.asarray(self.stimulus_ids).astype(str)
        self.times = np.asarray(self.times, dtype=float)
        if self.epochs.ndim != 3:
            raise NeuralignError(
                f"epochs must be (n_epochs, channels, times), got {self.epochs.shape}")
        n, c, t = self.epochs.shape
        if self.stimulus_ids.shape != (n,):
            raise NeuralignError(f"{self.stimulus_ids.size} stimulus ids for {n} epochs")
        if self.times.shape != (t,):
            raise NeuralignError(f"{self.times.size} time points for epochs with {t} samples")
        if len(self.ch_names) != c:
            raise NeuralignError(f"{len(self.ch_names)} channel names for {c} channels")

    @property
    def n_epochs(self) -> int:
        """Number of epochs."""
        return int(self.epochs.shape[0])

    @property
    def sfreq(self) -> float:
        """Sampling rate of the epochs in Hz (NaN with fewer than two time points)."""
        if self.times.size < 2:
            return float("nan")
        return float(1.0 / np.median(np.diff(self.times)))

    def unique_ids(self) -> list[str]:
        """The distinct stimulus ids, in order of first appearance."""
        return list(dict.fromkeys(self.stimulus_ids.tolist()))

    def subset(self, index: Sequence[int] | np.ndarray | slice) -> EpochData:
        """The epochs at ``index`` (positions, a boolean mask or a slice), in that order.

        Parameters
        ----------
        index : array of int | array of bool | slice
            Which epochs to keep.

        Returns
        -------
        EpochData
            Same axes, test set and info; ``info["onsets_s"]`` follows the epochs when it
            has one onset per epoch, and is dropped when the order changes.
        """
        idx = np.arange(self.n_epochs)[index]
        info = dict(self.info)
        onsets = info.get("onsets_s")
        if onsets is not None and len(onsets) == self.n_epochs:
            if np.all(np.diff(idx) > 0):
                info["onsets_s"] = np.asarray(onsets)[idx].tolist()
            else:
                info.pop("onsets_s")
        return EpochData(self.epochs[idx], self.stimulus_ids[idx], self.times,
                         list(self.ch_names), test_ids=self.test_ids, info=info)

    def sorted_by(self, order: str, *, seed: int = 0) -> EpochData:
        """The epochs in ``order``: ``"as-is"`` or ``"shuffle"`` (a seeded permutation).

        Dataset files such as THINGS-EEG2 store all training epochs before the test epochs; a
        real session interleaves them, and a shuffled replay looks like one.

        Parameters
        ----------
        order : {"as-is", "shuffle"}
            The order wanted.
        seed : int
            Seed of the permutation.

        Returns
        -------
        EpochData
            ``self`` for ``"as-is"``; a reordered copy (``info["replay_order"]`` says so).
        """
        if order == "as-is":
            return self
        if order != "shuffle":
            raise NeuralignError(f"order must be 'as-is' or 'shuffle', got {order!r}")
        out = self.subset(np.random.default_rng(seed).permutation(self.n_epochs))
        out.info["replay_order"] = f"shuffled (seed {seed})"
        return out

    def head(self, n: int) -> EpochData:
        """The first ``n`` epochs (``self`` when there are no more than ``n``)."""
        return self if n >= self.n_epochs else self.subset(slice(0, n))

    def stimulus_means(self) -> tuple[list[str], np.ndarray]:
        """Average the repetitions of every stimulus.

        Returns
        -------
        ids : list of str
            The stimuli, sorted.
        means : ndarray, shape (n_stimuli, n_channels * n_times)
            Float64 means, flattened per stimulus, rows in ``ids`` order.
        """
        ids, inv = np.unique(self.stimulus_ids, return_inverse=True)
        n, c, t = self.epochs.shape
        sums = np.zeros((ids.size, c * t))
        np.add.at(sums, inv, self.epochs.reshape(n, c * t).astype(np.float64))
        counts = np.bincount(inv, minlength=ids.size)
        return ids.tolist(), sums / counts[:, None]

    def split_halves(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Means of the odd and the even repetitions of every stimulus (arrival order).

        Half A holds repetitions 0, 2, 4... and half B repetitions 1, 3, 5... of each stimulus,
        as the engine's split-half noise ceiling and cross-validated RDMs count them. Stimuli
        with a single repetition are left out.

        Returns
        -------
        ids : list of str
            The stimuli with at least two repetitions, sorted.
        half_a, half_b : ndarray, shape (n_stimuli, n_channels, n_times)
            Float64 half means, rows in ``ids`` order.
        """
        ids, inv = np.unique(self.stimulus_ids, return_inverse=True)
        rep = np.zeros(self.n_epochs, dtype=np.int64)
        seen = np.zeros(ids.size, dtype=np.int64)
        for k, i in enumerate(inv):
            rep[k] = seen[i]
            seen[i] += 1
        keep = np.nonzero(seen >= 2)[0]
        shape = (keep.size, *self.epochs.shape[1:])
        halves = []
        for parity in (0, 1):
            sums, counts = np.zeros(shape), np.zeros(keep.size)
            pos = np.full(ids.size, -1)
            pos[keep] = np.arange(keep.size)
            for k in np.nonzero((rep % 2 == parity) & (pos[inv] >= 0))[0]:
                sums[pos[inv[k]]] += self.epochs[k]
                counts[pos[inv[k]]] += 1
            halves.append(sums / counts[:, None, None])
        return ids[keep].tolist(), halves[0], halves[1]

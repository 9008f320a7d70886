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

    # ------------------------------------------------------------------ MNE
    @classmethod
    def from_mne(cls, epochs, *, stimulus_ids=None, test_ids=None, picks="data",
                 dtype=np.float32, info: dict | None = None) -> EpochData:
        """Epochs tagged with stimulus ids from an :class:`mne.Epochs`.

        Parameters
        ----------
        epochs : mne.Epochs
            Any MNE epochs object (loaded into memory if it is not).
        stimulus_ids : str | array of str | None
            The stimulus of each epoch: a column of ``epochs.metadata``, one id per epoch, or
            ``None``: the metadata's ``stimulus_id`` column when there is one, else each
            epoch's event name (``epochs.event_id``).
        test_ids : list of str | None
            Stimuli that score (the rest train); ``None``: those marked in a boolean
            ``is_test`` metadata column, or nested cross-validation without one.
        picks : str | list | None
            Channels to keep (MNE's ``picks``; bad channels are always left out).
            ``"data"`` keeps every data channel, as ``--dataset mne-epochs:FILE`` does.
        dtype : dtype
            Of the epochs array: float32 as every loader (the engine accumulates in float64),
            so the maps equal those of ``neuralign analyze --dataset mne-epochs:FILE``.
        info : dict | None
            Recorded in :attr:`info` (default: the sampling rate and the source).

        Returns
        -------
        EpochData
            The epochs (a copy), their time axis and channel names.
        """
        import mne

        ep = epochs.copy().pick(picks, exclude="bads")
        n = len(ep)
        meta = ep.metadata
        if isinstance(stimulus_ids, str) or stimulus_ids is None:
            column = stimulus_ids or "stimulus_id"
            if meta is not None and column in meta.columns:
                ids = meta[column].astype(str).to_numpy()
            elif stimulus_ids is not None:
                have = [] if meta is None else list(meta.columns)
                raise NeuralignError(f"the epochs' metadata has no column {column!r} "
                                     f"(columns: {have})")
            else:
                code_to_name = {v: k for k, v in ep.event_id.items()}
                ids = np.asarray([code_to_name.get(int(c), str(int(c))) for c in ep.events[:, 2]])
        else:
            ids = np.asarray(stimulus_ids).astype(str)
            if ids.shape != (n,):
                raise NeuralignError(f"{ids.size} stimulus ids for {n} epochs")
        if test_ids is None and meta is not None and "is_test" in meta.columns:
            test_ids = sorted(set(ids[meta["is_test"].astype(bool).to_numpy()].tolist())) or None
        record = {"source": "mne.Epochs", "sfreq": float(ep.info["sfreq"]),
                  "mne_version": mne.__version__}
        record.update(info or {})
        return cls(epochs=ep.get_data(copy=False).astype(dtype), stimulus_ids=ids,
                   times=ep.times.copy(), ch_names=list(ep.ch_names),
                   test_ids=None if test_ids is None else sorted(map(str, test_ids)),
                   info=record)

    def to_mne(self, *, ch_types: str = "eeg"):
        """These epochs as an :class:`mne.EpochsArray` with the stimulus ids in its metadata.

        Parameters
        ----------
        ch_types : str
            Channel type of every channel.

        Returns
        -------
        mne.EpochsArray
            Values as they are here (no unit conversion); one event code per stimulus id
            (``event_id`` maps the id to it, in sorted order); metadata columns
            ``stimulus_id`` and ``is_test``. :meth:`from_mne` reads it back unchanged.
        """
        import mne
        import pandas as pd

        ids = sorted(set(self.stimulus_ids.tolist()))
        code = {s: i + 1 for i, s in enumerate(ids)}
        events = np.column_stack([np.arange(self.n_epochs), np.zeros(self.n_epochs, int),
                                  [code[s] for s in self.stimulus_ids]]).astype(int)
        test = set(self.test_ids or [])
        meta = pd.DataFrame({"stimulus_id": self.stimulus_ids,
                             "is_test": [s in test for s in self.stimulus_ids]})
        minfo = mne.create_info(list(self.ch_names), self.sfreq, ch_types)
        return mne.EpochsArray(self.epochs, minfo, events=events, tmin=float(self.times[0]),
                               event_id=code, metadata=meta, baseline=None, verbose=False)

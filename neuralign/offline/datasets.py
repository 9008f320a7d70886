"""Dataset specs (``KIND:PATH``) -> :class:`EpochData`, the one shape every loader returns.

Each loader lives in its own module and is imported lazily when its kind is asked for, so
reading a THINGS-EEG2 folder never imports MNE's BrainVision reader, LSL or Qt.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import NeuralignError

# kind -> "module:function". Each function takes (path: str, **options) and returns EpochData.
LOADERS: dict[str, str] = {
    "things-eeg2": "neuralign.offline.things_eeg2:load_things_eeg2",
    "things-eeg2-raw": "neuralign.offline.things_eeg2_raw:load_things_eeg2_raw",
    "things-eeg1": "neuralign.offline.things_eeg1:load_things_eeg1",
    "mne-epochs": "neuralign.offline.mne_epochs:load_mne_epochs",
    "recording": "neuralign.realtime.recording:load_recording",
    "sim": "neuralign.sim.dataset:load_sim",
}


@dataclass
class EpochData:
    """Epochs tagged with stimulus ids, ready for :class:`~neuralign.align.AlignmentEngine`.

    Attributes
    ----------
    epochs : ndarray, shape (n_epochs, n_channels, n_times)
        Single-trial (or single-repetition) epochs, float32 or float64, in epoch order.
    stimulus_ids : ndarray of str, shape (n_epochs,)
        The stimulus shown in each epoch (ids as in the feature file).
    times : ndarray, shape (n_times,)
        Epoch time axis in seconds (0 = stimulus onset).
    ch_names : list of str
    test_ids : list of str or None
        Stimuli that score (a designated test set, as in THINGS-EEG2); ``None`` means nested
        cross-validation over all stimuli.
    info : dict
        Source, subject, preprocessing and anything else worth recording (JSON-serialisable).
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
            raise NeuralignError(f"epochs must be (n_epochs, channels, times), got {self.epochs.shape}")
        n, c, t = self.epochs.shape
        if self.stimulus_ids.shape != (n,):
            raise NeuralignError(f"{self.stimulus_ids.size} stimulus ids for {n} epochs")
        if self.times.shape != (t,):
            raise NeuralignError(f"{self.times.size} time points for epochs with {t} samples")
        if len(self.ch_names) != c:
            raise NeuralignError(f"{len(self.ch_names)} channel names for {c} channels")

    @property
    def sfreq(self) -> float:
        return float(1.0 / np.median(np.diff(self.times))) if self.times.size > 1 else float("nan")


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``KIND:PATH``; a clear error lists the known kinds."""
    kind, sep, path = spec.partition(":")
    if not sep or not path or kind not in LOADERS:
        raise NeuralignError(
            f"dataset {spec!r}: expected KIND:PATH with KIND one of {', '.join(LOADERS)}"
        )
    return kind, path


def load_dataset(spec: str, **options) -> EpochData:
    """Load ``KIND:PATH`` (e.g. ``things-eeg2:/data/sub-01``) into :class:`EpochData`."""
    kind, path = parse_spec(spec)
    module, func = LOADERS[kind].split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise NeuralignError(f"dataset kind {kind!r} is not available in this install ({e.name})") from e
    return getattr(mod, func)(path, **options)

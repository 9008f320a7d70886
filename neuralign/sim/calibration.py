"""Small simulated subjects for calibrating the statistics (in memory, seconds each).

- :func:`simulated_subject`: epochs of a :class:`~neuralign.sim.brain.SyntheticBrain` driven
  by given features, with a designated test set (as THINGS-EEG2), few channels and times;
- :func:`planted_pair`: two feature sets that drive one brain, A early and B late, sharing
  part of their dimensions (a variance partition has unique A early, unique B late and a
  shared part at both);
- :func:`random_features`: features independent of any brain (the null).
"""

from __future__ import annotations

import numpy as np

from ..base import EpochData, FeatureSet
from .brain import SyntheticBrain
from .dataset import things_like_ids
from .features import hierarchical_features

#: Few posterior channels of the 10-05 system (the brain needs standard positions).
CALIBRATION_CHANNELS = ("O1", "Oz", "O2", "POz", "Pz", "P7", "P8", "CPz")


def stimulus_ids(n_train: int, n_test: int) -> tuple[list[str], list[str]]:
    """THINGS-like train and test ids.

    Parameters
    ----------
    n_train, n_test : int
        Numbers of train and test stimuli.

    Returns
    -------
    train, test : list of str
    """
    tr, _, te, _ = things_like_ids(n_train, n_test)
    return tr, te


def simulated_subject(features: FeatureSet, *, n_train: int, n_test: int, train_reps: int = 2,
                      test_reps: int = 4, n_channels: int = 4, times=None, snr: float = 0.3,
                      peak_latencies=None, seed: int = 0) -> EpochData:
    """Epochs of a synthetic brain driven by ``features`` (first ``n_train`` ids train).

    Parameters
    ----------
    features : FeatureSet
        Drives the brain (its first ``n_train`` stimuli train, the next ``n_test`` test).
    n_train, n_test : int
        Train and test stimuli.
    train_reps, test_reps : int
        Repetitions of each.
    n_channels : int
        Channels (at most ``len(CALIBRATION_CHANNELS)``).
    times : array-like | None
        Time axis (s); default -0.1 to 0.48 s in 20 ms steps (30 points).
    snr : float
        Evoked amplitude relative to the background (see :class:`~neuralign.sim.brain.SyntheticBrain`).
    peak_latencies : sequence of float | None
        Planted latency of each layer (default: 0.08 to 0.30 s).
    seed : int
        Seed of the brain and the noise.

    Returns
    -------
    EpochData
        ``test_ids`` set; ``info["planted"]`` holds the planted latencies.
    """
    times = np.round(np.arange(-5, 25) * 0.02, 3) if times is None else np.asarray(times)
    ids = features.stimulus_ids.tolist()
    train, test = ids[:n_train], ids[n_train:n_train + n_test]
    brain = SyntheticBrain(features, ch_names=list(CALIBRATION_CHANNELS[:n_channels]), snr=snr,
                           peak_latencies=peak_latencies, seed=seed)
    eps, sids = [], []
    for part, (which, reps) in enumerate(((train, train_reps), (test, test_reps))):
        x = brain.epochs(which, reps, times=times, seed=part + 1)
        eps.append(x.reshape(-1, x.shape[2], x.shape[3]))
        sids += [s for s in which for _ in range(reps)]
    return EpochData(np.concatenate(eps), np.asarray(sids), times, list(brain.ch_names),
                     test_ids=list(test),
                     info={"simulated": True, "planted": {
                         "layers": list(features.layers),
                         "peak_latencies_s": brain.peak_latencies.tolist()}})


def planted_pair(ids, *, dim_a: int = 12, dim_b: int = 12, dim_shared: int = 4,
                 seed: int = 0) -> tuple[FeatureSet, FeatureSet, FeatureSet]:
    """Feature sets A and B sharing ``dim_shared`` dimensions, and the brain's drive.

    Parameters
    ----------
    ids : sequence of str
        Stimulus ids.
    dim_a, dim_b : int
        Dimensions of A and B (including the shared ones).
    dim_shared : int
        Dimensions common to both.
    seed : int
        Seed.

    Returns
    -------
    a, b : FeatureSet
        One layer each (``"A"``, ``"B"``).
    drive : FeatureSet
        Two layers (A then B): give it to :func:`simulated_subject` with latencies
        (early, late) so that A drives early and B late.
    """
    rng = np.random.default_rng([seed, 7])
    n = len(ids)
    shared = rng.standard_normal((n, dim_shared))
    xa = np.hstack([shared, rng.standard_normal((n, dim_a - dim_shared))]).astype(np.float32)
    xb = np.hstack([shared, rng.standard_normal((n, dim_b - dim_shared))]).astype(np.float32)
    ids = np.asarray(ids)
    prov = {"simulated": True, "note": "planted pair (neuralign.sim.calibration)"}
    return (FeatureSet(ids, ("A",), (xa,), prov), FeatureSet(ids, ("B",), (xb,), prov),
            FeatureSet(ids, ("A", "B"), (xa, xb), prov))


def random_features(ids, *, n_layers: int = 4, dim: int = 16, seed: int = 0) -> FeatureSet:
    """A synthetic hierarchy that drives nothing (independent of every simulated brain).

    Parameters
    ----------
    ids : sequence of str
        Stimulus ids.
    n_layers, dim : int
        Layers and width.
    seed : int
        Seed (use one the brain's features do not use).

    Returns
    -------
    FeatureSet
    """
    return hierarchical_features(list(ids), n_layers=n_layers, dim=dim, seed=10_000 + seed)

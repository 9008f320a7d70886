"""Write a simulated subject in the exact THINGS-EEG2 preprocessed layout.

Layout written under ``out_dir``::

    out_dir/image_metadata.npy               pickled dict (train_/test_img_files, _concepts, ...)
    out_dir/features.npz                     the features the brain saw (interchange format)
    out_dir/planted.json                     the planted truth and every setting
    out_dir/sub-01/preprocessed_eeg_training.npy
    out_dir/sub-01/preprocessed_eeg_test.npy

The EEG files are pickled dicts ``{'preprocessed_eeg_data': (images, reps, 17, 100),
'ch_names', 'times'}`` with times -0.20..0.79 s at 100 Hz, baseline-corrected on t <= 0 as
the official THINGS-EEG2 preprocessing does (no MVNN).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..base import FeatureSet
from ..errors import NeuralignError
from ..io.features import save_features
from ..io.things import METADATA_FILE
from .brain import SyntheticBrain
from .features import hierarchical_features

#: THINGS-EEG2 preprocessed time axis: 100 samples from -0.2 s at 100 Hz.
THINGS_TIMES = np.round(np.arange(-20, 80) / 100.0, 2)


def things_like_ids(n_train: int, n_test: int) -> tuple[list[str], list[str], list[str], list[str]]:
    """Fake THINGS-style image names and concepts: 10 images per train concept, 1 per test.

    Returns ``(train_files, train_concepts, test_files, test_concepts)``.
    """
    train_files, train_concepts = [], []
    for i in range(n_train):
        c = i // 10 + 1
        train_files.append(f"concept{c:04d}_{i % 10 + 1:02d}b.jpg")
        train_concepts.append(f"{c:05d}_concept{c:04d}")
    n_c = (n_train + 9) // 10
    test_files, test_concepts = [], []
    for j in range(n_test):
        c = n_c + j + 1
        test_files.append(f"concept{c:04d}_01s.jpg")
        test_concepts.append(f"{c:05d}_concept{c:04d}")
    return train_files, train_concepts, test_files, test_concepts


def _baseline(x: np.ndarray, times: np.ndarray) -> None:
    pre = times <= 0
    if pre.any():
        x -= x[..., pre].mean(axis=-1, keepdims=True)


def write_things_eeg2(
    out_dir: str | Path,
    *,
    n_train: int = 1000,
    n_test: int = 200,
    train_reps: int = 4,
    test_reps: int = 80,
    features: FeatureSet | None = None,
    n_layers: int = 10,
    dim: int = 64,
    seed: int = 0,
    subject: str = "sub-01",
    brain_kw: dict | None = None,
) -> Path:
    """Simulate one subject and write it in THINGS-EEG2 preprocessed layout.

    Parameters
    ----------
    out_dir : str or Path
        Created if needed; receives ``image_metadata.npy``, ``features.npz``,
        ``planted.json`` and ``<subject>/preprocessed_eeg_{training,test}.npy``.
    n_train, n_test : int
        Number of train / test images.
    train_reps, test_reps : int
        Repetitions per train / test image.
    features : FeatureSet, optional
        Features of the stimuli; the first ``n_train`` ids become the train images, the next
        ``n_test`` the test images. Default: a synthetic hierarchy of ``n_layers`` x ``dim``
        over THINGS-like fake image names.
    n_layers, dim : int
        Layers and width of the synthetic features (without ``features``).
    seed : int
        Seed of features, brain and noise.
    subject : str
        Name of the subject folder.
    brain_kw : dict, optional
        Extra :class:`SyntheticBrain` arguments (``snr``, ``peak_latencies``, ...).

    Returns
    -------
    Path
        The subject folder.
    """
    if min(n_train, n_test) < 1 or min(train_reps, test_reps) < 1:
        raise NeuralignError("n_train, n_test, train_reps and test_reps must be at least 1")
    out = Path(out_dir)
    train_files, train_concepts, test_files, test_concepts = things_like_ids(n_train, n_test)
    if features is None:
        features = hierarchical_features(
            train_files + test_files, n_layers=n_layers, dim=dim, seed=seed
        )
    else:
        ids = features.stimulus_ids.tolist()
        if len(ids) < n_train + n_test:
            raise NeuralignError(
                f"the features have {len(ids)} stimuli; {n_train} train + {n_test} test needed"
            )
        train_files, test_files = ids[:n_train], ids[n_train:n_train + n_test]
        train_concepts = [Path(s).stem for s in train_files]
        test_concepts = [Path(s).stem for s in test_files]
        features = features.subset(train_files + test_files)
    brain = SyntheticBrain(features, seed=seed, **(brain_kw or {}))
    sdir = out / subject
    sdir.mkdir(parents=True, exist_ok=True)
    times = THINGS_TIMES
    parts = [
        ("preprocessed_eeg_training.npy", train_files, train_reps, 1),
        ("preprocessed_eeg_test.npy", test_files, test_reps, 2),
    ]
    for fname, files, reps, part_seed in parts:
        data = brain.epochs(files, reps, times=times, seed=part_seed)
        _baseline(data, times)
        obj = {
            "preprocessed_eeg_data": data,
            "ch_names": list(brain.ch_names),
            "times": times.copy(),
        }
        np.save(sdir / fname, obj, allow_pickle=True)
        del data, obj
    meta = {
        "train_img_files": train_files,
        "train_img_concepts": train_concepts,
        "train_img_concepts_THINGS": train_concepts,
        "test_img_files": test_files,
        "test_img_concepts": test_concepts,
        "test_img_concepts_THINGS": test_concepts,
    }
    np.save(out / METADATA_FILE, meta, allow_pickle=True)
    save_features(out / "features.npz", features)
    planted = brain.planted_json()
    planted["layout"] = {
        "kind": "things-eeg2",
        "subject": subject,
        "n_train": n_train,
        "n_test": n_test,
        "train_reps": train_reps,
        "test_reps": test_reps,
        "times": times.tolist(),
        "sfreq": 100.0,
        "baseline": "(None, 0)",
    }
    planted["simulated"] = True
    (out / "planted.json").write_text(json.dumps(planted, indent=1))
    return sdir


def subject_folder(path: str | Path) -> Path:
    """The subject folder of a simulated dataset (``path`` itself, or its first ``sub-*``).

    Parameters
    ----------
    path : str | Path
        The folder :func:`write_things_eeg2` wrote, or its subject folder.

    Returns
    -------
    Path
        The folder holding ``preprocessed_eeg_*.npy``.

    Raises
    ------
    NeuralignError
        When ``path`` does not exist or holds no subject.
    """
    p = Path(path)
    if not p.exists():
        raise NeuralignError("simulated dataset not found", path=p)
    if (p / "preprocessed_eeg_training.npy").exists():
        return p
    subs = sorted(q for q in p.glob("sub-*") if q.is_dir()) if p.is_dir() else []
    if not subs:
        raise NeuralignError("no sub-* folder with preprocessed_eeg_*.npy", path=p)
    return subs[0]

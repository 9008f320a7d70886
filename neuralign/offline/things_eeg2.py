"""Loader for the THINGS-EEG2 preprocessed layout (Gifford et al. 2022).

``SUBJECT_DIR/preprocessed_eeg_training.npy`` and ``preprocessed_eeg_test.npy`` are pickled
dicts ``{'preprocessed_eeg_data': (images, repetitions, channels, times), 'ch_names': [...],
'times': [...]}``; ``image_metadata.npy`` (in the parent folder, or given explicitly) holds
``train_img_files`` / ``test_img_files`` (the stimulus ids, in row order) and the concept lists.
All three are read with the restricted unpickler of :mod:`neuralign.io.safe_pickle`.

Epochs containing NaN/Inf are **dropped** with a warning that says how many (a whole file of
them is an error). Epochs are returned as float32, flattened images x repetitions.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..base import EpochData
from ..errors import NeuralignError, NeuralignWarning, few
from ..io import things
from ..io.safe_pickle import load_npy

TRAIN_FILE = "preprocessed_eeg_training.npy"
TEST_FILE = "preprocessed_eeg_test.npy"

def _read_part(path: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    obj = load_npy(path)
    if not isinstance(obj, dict):
        raise NeuralignError(
            f"expected a pickled dict with 'preprocessed_eeg_data', got {type(obj).__name__}",
            path=path,
        )
    missing = [k for k in ("preprocessed_eeg_data", "ch_names", "times") if k not in obj]
    if missing:
        raise NeuralignError(f"missing key(s) {missing}", path=path)
    data = obj["preprocessed_eeg_data"]
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "fiu":
        raise NeuralignError("'preprocessed_eeg_data' must be a numeric array", path=path)
    if data.ndim != 4:
        raise NeuralignError(
            f"'preprocessed_eeg_data' must be 4-D (images, repetitions, channels, times), "
            f"got shape {data.shape}",
            path=path,
        )
    ch_names = [str(c) for c in np.atleast_1d(np.asarray(obj["ch_names"], dtype=object)).tolist()]
    try:
        times = np.asarray(obj["times"], dtype=float).ravel()
    except (TypeError, ValueError):
        raise NeuralignError("'times' must be numbers (seconds)", path=path) from None
    if len(ch_names) != data.shape[2]:
        raise NeuralignError(
            f"{len(ch_names)} ch_names for {data.shape[2]} channels in 'preprocessed_eeg_data'",
            path=path,
        )
    if times.size != data.shape[3]:
        raise NeuralignError(
            f"{times.size} times for {data.shape[3]} time points in 'preprocessed_eeg_data'",
            path=path,
        )
    if times.size > 1 and not np.all(np.diff(times) > 0):
        raise NeuralignError("'times' must increase", path=path)
    return data, ch_names, times


def _ids(meta: dict, part: str, n: int, meta_path: Path, data_path: Path) -> np.ndarray:
    key = f"{part}_img_files"
    ids = np.asarray(things.image_list(meta, part))
    if ids.size != n:
        raise NeuralignError(
            f"{key} lists {ids.size} images but {data_path.name} has {n}", path=meta_path
        )
    if len(set(ids.tolist())) != ids.size:
        raise NeuralignError(f"{key} contains duplicate image names", path=meta_path)
    return ids


def load_things_eeg2(
    subject_dir: str | Path,
    *,
    metadata: str | Path | None = None,
    include_train: bool = True,
    include_test: bool = True,
    **_ignored,
) -> EpochData:
    """Read one THINGS-EEG2 subject (preprocessed layout) into :class:`EpochData`.

    Parameters
    ----------
    subject_dir : str or Path
        Folder with ``preprocessed_eeg_training.npy`` and ``preprocessed_eeg_test.npy``.
    metadata : str or Path, optional
        ``image_metadata.npy``; default: found by :func:`neuralign.io.things.find_metadata`
        (in ``subject_dir``, its parents, or their ``image_set/``).
    include_train, include_test : bool
        Which parts to load (both by default; train stimuli train, test stimuli score).

    Returns
    -------
    EpochData
        Epochs ``(images x repetitions, channels, times)`` float32 (train first, then test),
        stimulus ids = the ``*_img_files`` names, ``test_ids`` = the test image names.
    """
    sdir = Path(subject_dir)
    if not sdir.is_dir():
        raise NeuralignError("subject folder not found", path=sdir)
    meta_path = things.find_metadata(sdir, metadata)
    parts = [(TRAIN_FILE, "train")] if include_train else []
    parts += [(TEST_FILE, "test")] if include_test else []
    if not parts:
        raise NeuralignError("nothing to load (include_train and include_test are both off)")
    for fname, _ in parts:
        if not (sdir / fname).is_file():
            raise NeuralignError("file not found", path=sdir / fname)

    meta = things.read_metadata(meta_path)
    blocks: list[np.ndarray] = []
    ids_all: list[np.ndarray] = []
    ref: tuple[Path, list[str], np.ndarray] | None = None
    test_ids: list[str] | None = None
    n_dropped = 0
    reps: dict[str, int] = {}
    for fname, part in parts:
        path = sdir / fname
        data, ch_names, times = _read_part(path)
        if ref is None:
            ref = (path, ch_names, times)
        else:
            rpath, rch, rtimes = ref
            if data.shape[2] != len(rch) or ch_names != rch:
                raise NeuralignError(
                    f"{data.shape[2]} channels {few(ch_names, 3)} disagree with "
                    f"{len(rch)} channels {few(rch, 3)} in {rpath.name}",
                    path=path,
                )
            if times.size != rtimes.size or not np.allclose(times, rtimes, atol=1e-6):
                raise NeuralignError(
                    f"{times.size} time points ({times[0]:.3f}..{times[-1]:.3f} s) disagree "
                    f"with {rtimes.size} ({rtimes[0]:.3f}..{rtimes[-1]:.3f} s) in {rpath.name}",
                    path=path,
                )
        ids = _ids(meta, part, data.shape[0], meta_path, path)
        n_img, n_rep, n_ch, n_t = data.shape
        flat = data.reshape(n_img * n_rep, n_ch, n_t)
        flat = flat.astype(np.float32, copy=False)
        del data
        stim = np.repeat(ids, n_rep)
        finite = np.isfinite(flat).all(axis=(1, 2))
        if not finite.all():
            bad = int((~finite).sum())
            if bad == finite.size:
                raise NeuralignError("every epoch contains NaN/Inf", path=path)
            warnings.warn(
                f"{path}: dropped {bad} of {finite.size} epochs that contain NaN/Inf",
                NeuralignWarning,
                stacklevel=2,
            )
            n_dropped += bad
            flat, stim = flat[finite], stim[finite]
        blocks.append(flat)
        ids_all.append(stim)
        reps[part] = n_rep
        if part == "test":
            test_ids = ids.tolist()
    assert ref is not None
    if include_train and include_test:
        overlap = set(ids_all[0].tolist()) & set(test_ids or [])
        if overlap:
            raise NeuralignError(
                f"{len(overlap)} image(s) are both train and test: {few(sorted(overlap))}",
                path=meta_path,
            )
    epochs = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=0)
    del blocks
    info = {
        "source": "things-eeg2",
        "subject_dir": str(sdir.resolve()),
        "subject": sdir.name,
        "metadata": str(meta_path.resolve()),
        "repetitions": reps,
        "dropped_nonfinite_epochs": n_dropped,
    }
    return EpochData(
        epochs=epochs,
        stimulus_ids=np.concatenate(ids_all),
        times=ref[2],
        ch_names=list(ref[1]),
        test_ids=test_ids if include_test else None,
        info=info,
    )

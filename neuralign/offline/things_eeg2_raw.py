"""THINGS-EEG2 raw data, preprocessed the way the official pipeline does (Gifford et al. 2022).

The raw files (converted ``raw_eeg_*.npy`` or BrainVision) are found and read by
:mod:`neuralign.offline.things_eeg2_files`; MVNN is :mod:`neuralign.offline.mvnn`.

Preprocessing (``gifale95/eeg_encoding`` ``preprocessing.py``): channels matching ``^O *|^P *``
(17 occipito-parietal channels of the 63-channel cap), target trials (99999) dropped,
``mne.Epochs(tmin=-0.2, tmax=0.8, baseline=(None, 0))``, resampling to 100 Hz (100 samples,
-0.20..0.79 s), no software filter; repetitions sorted per image (2 per training image and 20
per test image per session, chosen with ``sklearn.utils.shuffle(random_state=seed)``), optional
multivariate noise normalisation (MVNN: Ledoit-Wolf covariance per image and time point
(``"time"``) or per image and repetition (``"epochs"``), averaged over images and over the two
partitions of a session, data whitened with ``Sigma^-1/2``), then sessions merged: test
repetitions concatenated, training repetitions collected per image, both shuffled with the seed.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import numpy as np

from ..base import EpochData
from ..errors import NeuralignError, few
from ..io import things
from .mvnn import inv_sqrtm, mvnn_sigma, whiten
from .things_eeg2_files import CHANNEL_REGEXP, discover, read_raw_brainvision, read_raw_npy

TARGET_CODE = 99999
OFFICIAL_SEED = 20200220
PARTS = ("training", "test")
#: raw partition name -> partition of ``image_metadata.npy`` (:data:`neuralign.io.things.PARTS`)
META_PART = {"training": "train", "test": "test"}
_MAX_REP = {"training": 2, "test": 20}


# ------------------------------------------------------------------------------ preprocessing
def epoch_session(raw, events, *, tmin: float = -0.2, tmax: float = 0.8, sfreq: float = 100.0,
                  baseline=(None, 0)):
    """Official epoching of one partition: drop targets, Epochs with baseline, resample.

    Returns ``(data (n, C, T) float64, codes (n,), ch_names, times)``.
    """
    import mne

    events = np.asarray(events)
    events = events[events[:, 2] != TARGET_CODE]
    if events.size == 0:
        raise NeuralignError("no image events left after dropping targets")
    ev_ids = {str(c): int(c) for c in np.unique(events[:, 2])}
    ep = mne.Epochs(raw, events, event_id=ev_ids, tmin=tmin, tmax=tmax, baseline=baseline,
                    preload=True, verbose=False)
    if sfreq and sfreq < raw.info["sfreq"]:
        ep.resample(sfreq, verbose=False)
    return ep.get_data(copy=False), ep.events[:, 2].copy(), list(ep.ch_names), ep.times.copy()


def sort_repetitions(data: np.ndarray, codes: np.ndarray, *, max_rep: int | None, seed: int):
    """Official sorting: ``(conditions, max_rep, C, T)`` with repetitions drawn by
    ``sklearn.utils.shuffle(idx, random_state=seed, n_samples=max_rep)``.

    ``max_rep=None`` uses the smallest repetition count of any condition.
    """
    from sklearn.utils import shuffle

    conds, counts = np.unique(codes, return_counts=True)
    rep = int(counts.min()) if max_rep is None else int(max_rep)
    if counts.min() < rep:
        bad = conds[counts < rep]
        raise NeuralignError(
            f"{bad.size} image(s) have fewer than {rep} repetitions in a session "
            f"(codes {few(bad.tolist())})"
        )
    out = np.zeros((conds.size, rep, *data.shape[1:]), dtype=data.dtype)
    for i, c in enumerate(conds):
        idx = np.where(codes == c)[0]
        idx = shuffle(idx, random_state=seed, n_samples=rep)
        out[i] = data[idx]
    return out, conds


# ------------------------------------------------------------------------------ pipeline
def preprocess_things_eeg2_raw(
    path: str | Path,
    *,
    metadata: str | Path | None = None,
    include_train: bool = True,
    include_test: bool = True,
    mvnn: str | None = None,
    sfreq: float = 100.0,
    tmin: float = -0.2,
    tmax: float = 0.8,
    seed: int = OFFICIAL_SEED,
    max_rep: dict[str, int] | None = None,
    progress: bool = False,
) -> dict:
    """Run the official preprocessing on one subject's raw files.

    Returns
    -------
    dict
        ``{"training": {...}, "test": {...}, "info": {...}}`` where each partition dict holds
        ``preprocessed_eeg_data`` (images, repetitions, 17, 100), ``ch_names``, ``times``
        (exactly the preprocessed-file layout) and ``img_files`` (the stimulus ids per row).
    """
    kind, sessions = discover(path)
    parts = [p for p, on in (("training", include_train), ("test", include_test)) if on]
    if not parts:
        raise NeuralignError("nothing to load (include_train and include_test are both off)")
    meta_path = things.find_metadata(path, metadata)
    meta = things.read_metadata(meta_path, parts=tuple(META_PART[p] for p in parts))
    names = {p: things.image_list(meta, META_PART[p]) for p in parts}
    reps_default = dict(_MAX_REP)
    reps_default.update(max_rep or {})

    per_session: list[dict[str, tuple[np.ndarray, np.ndarray]]] = []
    ref: tuple[list[str], np.ndarray] | None = None
    it = list(sessions.items())
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="sessions", unit="session")
    for ses, files in it:
        sess: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for part in parts:
            if part not in files:
                raise NeuralignError(f"{ses} has no {part} file", path=path)
            if kind == "npy":
                if len(files[part]) != 1:
                    raise NeuralignError(f"{ses}: {len(files[part])} {part} files", path=path)
                raw, events = read_raw_npy(files[part][0])
            else:
                raw, events = read_raw_brainvision(files[part])
            data, codes, ch_names, times = epoch_session(raw, events, tmin=tmin, tmax=tmax,
                                                         sfreq=sfreq)
            del raw
            bad = codes[(codes < 1) | (codes > len(names[part]))]
            if bad.size:
                raise NeuralignError(
                    f"{ses} {part}: event codes {few(np.unique(bad).tolist())} are outside "
                    f"1..{len(names[part])} (the images in {things.METADATA_FILE})", path=path)
            if ref is None:
                ref = (ch_names, times)
            elif ch_names != ref[0] or times.size != ref[1].size:
                raise NeuralignError(f"{ses} {part}: channels/times differ from the first file",
                                     path=path)
            # the official code keeps 2 (train) / 20 (test) repetitions per session; fewer
            # repetitions in the file (e.g. a shortened recording) keeps what is there
            counts = np.unique(codes, return_counts=True)[1]
            rep = min(reps_default[part], int(counts.min()))
            sess[part] = sort_repetitions(data, codes, max_rep=rep, seed=seed)
        per_session.append(sess)
    assert ref is not None

    if mvnn:
        for sess in per_session:
            sigma = mvnn_sigma([sess[p][0] for p in parts], dim=mvnn)
            s_inv = inv_sqrtm(sigma)
            for p in parts:
                d, c = sess[p]
                sess[p] = (whiten(d, s_inv), c)

    from sklearn.utils import shuffle

    out: dict = {}
    for part in parts:
        if part == "test":
            conds = per_session[0][part][1]
            for sess in per_session[1:]:
                if not np.array_equal(sess[part][1], conds):
                    raise NeuralignError("test images differ between sessions", path=path)
            merged = np.concatenate([s[part][0] for s in per_session], axis=1)
            idx = shuffle(np.arange(merged.shape[1]), random_state=seed)
            merged = merged[:, idx]
        else:
            data = np.concatenate([s[part][0] for s in per_session], axis=0)
            codes = np.concatenate([s[part][1] for s in per_session])
            conds, counts = np.unique(codes, return_counts=True)
            if np.unique(counts).size != 1:
                raise NeuralignError(
                    "training images appear in different numbers of sessions; cannot build the "
                    "(images, repetitions) layout", path=path)
            merged = np.stack([data[codes == c].reshape(-1, *data.shape[2:]) for c in conds])
            idx = shuffle(np.arange(merged.shape[1]), random_state=seed)
            merged = merged[:, idx]
        out[part] = {
            "preprocessed_eeg_data": merged,
            "ch_names": list(ref[0]),
            "times": np.asarray(ref[1]),
            "img_files": [names[part][int(c) - 1] for c in conds],
        }
    out["info"] = {
        "source": "things-eeg2-raw",
        "raw_format": kind,
        "sessions": list(sessions),
        "metadata": str(meta_path),
        "preprocessing": {"channels": CHANNEL_REGEXP, "targets_dropped": TARGET_CODE,
                          "tmin": tmin, "tmax": tmax, "baseline": [None, 0], "sfreq": sfreq,
                          "mvnn": mvnn, "seed": seed},
    }
    return out


def write_preprocessed(result: dict, subject_dir: str | Path) -> dict[str, Path]:
    """Write :func:`preprocess_things_eeg2_raw` output as the official preprocessed files
    (``preprocessed_eeg_{training,test}.npy``: pickled dicts with ``preprocessed_eeg_data``,
    ``ch_names``, ``times``). Returns the paths."""
    d = Path(subject_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = {}
    for part in PARTS:
        if part in result:
            r = result[part]
            p = d / f"preprocessed_eeg_{part}.npy"
            np.save(p, {k: r[k] for k in ("preprocessed_eeg_data", "ch_names", "times")},
                    allow_pickle=True)
            paths[part] = p
    return paths


def load_things_eeg2_raw(path: str | Path, **options) -> EpochData:
    """Load raw THINGS-EEG2 files of one subject into :class:`EpochData` (official preprocessing).

    Parameters
    ----------
    path : str or Path
        A subject folder (``ses-*/raw_eeg_*.npy`` or BrainVision ``.vhdr`` files), a session
        folder, or one raw file.
    **options
        Passed to :func:`preprocess_things_eeg2_raw` (``metadata``, ``include_train``,
        ``include_test``, ``mvnn``, ``sfreq``, ``tmin``, ``tmax``, ``seed``, ``max_rep``,
        ``progress``); the dataset registry hands every loader the same options, so others are
        left out.

    Returns
    -------
    EpochData
        Epochs float32 flattened images x repetitions (training first), stimulus ids = the
        ``*_img_files`` names, ``test_ids`` = the test images.
    """
    known = inspect.signature(preprocess_things_eeg2_raw).parameters
    res = preprocess_things_eeg2_raw(path, **{k: v for k, v in options.items() if k in known})
    blocks, ids = [], []
    reps = {}
    for part in PARTS:
        if part not in res:
            continue
        d = res[part]["preprocessed_eeg_data"]
        n_img, n_rep = d.shape[:2]
        blocks.append(d.reshape(n_img * n_rep, *d.shape[2:]).astype(np.float32))
        ids.append(np.repeat(np.asarray(res[part]["img_files"]), n_rep))
        reps[part] = int(n_rep)
    first = res["training"] if "training" in res else res["test"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = dict(res["info"], subject=Path(path).name, repetitions=reps)
    return EpochData(
        epochs=np.concatenate(blocks) if len(blocks) > 1 else blocks[0],
        stimulus_ids=np.concatenate(ids),
        times=first["times"],
        ch_names=first["ch_names"],
        test_ids=list(res["test"]["img_files"]) if "test" in res else None,
        info=info,
    )

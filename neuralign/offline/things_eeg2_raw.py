"""THINGS-EEG2 raw data, preprocessed the way the official pipeline does (Gifford et al. 2022).

Two raw sources per session are read:

- the converted ``raw_eeg_training.npy`` / ``raw_eeg_test.npy`` (pickled dicts with
  ``raw_eeg_data`` (64 x samples, last row ``stim`` = image index + 1, 99999 = target),
  ``ch_names``, ``ch_types``, ``sfreq``, ...), read with the restricted unpickler;
- the BrainVision source files (``*.vhdr`` + ``.vmrk`` + ``.eeg``), read with MNE; the integer
  at the end of each marker description (``Stimulus/S 17`` -> 17) is the event code, with the
  same meaning as the ``stim`` channel of the ``.npy`` files. Parts of one session are
  concatenated in file-name order; ``task-test`` files are the test partition, ``task-train``
  files the training partition.

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

import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..base import EpochData
from ..errors import NeuralignError, few
from ..io import things
from ..io.safe_pickle import load_npy
from .mvnn import inv_sqrtm, mvnn_sigma, whiten

CHANNEL_REGEXP = "^O *|^P *"
TARGET_CODE = 99999
OFFICIAL_SEED = 20200220
PARTS = ("training", "test")
RAW_FILES = {"training": "raw_eeg_training.npy", "test": "raw_eeg_test.npy"}
#: raw partition name -> partition of ``image_metadata.npy`` (:data:`neuralign.io.things.PARTS`)
META_PART = {"training": "train", "test": "test"}
_MAX_REP = {"training": 2, "test": 20}


# ------------------------------------------------------------------------------ raw readers
def read_raw_npy(path: str | Path):
    """One ``raw_eeg_*.npy`` dict -> ``(mne.io.RawArray, events)`` (targets still included).

    Only the channels matching :data:`CHANNEL_REGEXP` and the ``stim`` row are turned into the
    Raw object (the full 64 x samples array can be several GB).
    """
    import mne

    path = Path(path)
    obj = load_npy(path)
    if not isinstance(obj, dict):
        raise NeuralignError(f"expected a pickled dict with 'raw_eeg_data', got {type(obj).__name__}",
                             path=path)
    missing = [k for k in ("raw_eeg_data", "ch_names", "sfreq") if k not in obj]
    if missing:
        raise NeuralignError(f"missing key(s) {missing}", path=path)
    data = obj["raw_eeg_data"]
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.dtype.kind not in "fiu":
        raise NeuralignError("'raw_eeg_data' must be a 2-D numeric array (channels x samples)",
                             path=path)
    ch_names = [str(c) for c in np.atleast_1d(np.asarray(obj["ch_names"], dtype=object))]
    if len(ch_names) != data.shape[0]:
        raise NeuralignError(f"{len(ch_names)} ch_names for {data.shape[0]} rows of raw_eeg_data",
                             path=path)
    if "stim" not in ch_names:
        raise NeuralignError("no 'stim' channel in ch_names (the events)", path=path)
    try:
        sfreq = float(obj["sfreq"])
    except (TypeError, ValueError):
        raise NeuralignError("'sfreq' must be a number", path=path) from None
    eeg_idx = [i for i, c in enumerate(ch_names) if c != "stim"]
    keep = mne.pick_channels_regexp([ch_names[i] for i in eeg_idx], CHANNEL_REGEXP)
    if len(keep) == 0:
        raise NeuralignError(f"no channel matches {CHANNEL_REGEXP!r} in {few(ch_names)}", path=path)
    rows = [eeg_idx[i] for i in keep] + [ch_names.index("stim")]
    names = [ch_names[i] for i in rows]
    info = mne.create_info(names, sfreq, ["eeg"] * (len(rows) - 1) + ["stim"])
    raw = mne.io.RawArray(np.asarray(data[rows], dtype=np.float64), info, verbose=False)
    events = mne.find_events(raw, stim_channel="stim", verbose=False)
    raw.drop_channels(["stim"])
    return raw, events


_CODE = re.compile(r"(\d+)\s*$")


def read_raw_brainvision(paths: Sequence[str | Path]):
    """BrainVision parts of one partition of one session -> ``(Raw, events)``.

    Parts are concatenated in the given order; an epoch overlapping a part boundary is dropped
    later by ``mne.Epochs`` (``BAD boundary``).
    """
    import mne

    raws = []
    for p in paths:
        try:
            r = mne.io.read_raw_brainvision(p, preload=True, verbose=False)
        except (OSError, ValueError, RuntimeError) as e:
            raise NeuralignError(f"unreadable BrainVision file ({e})", path=p) from None
        keep = mne.pick_channels_regexp(r.ch_names, CHANNEL_REGEXP)
        if len(keep) == 0:
            raise NeuralignError(f"no channel matches {CHANNEL_REGEXP!r}", path=p)
        r.pick([r.ch_names[i] for i in keep])
        raws.append(r)
    raw = raws[0] if len(raws) == 1 else mne.concatenate_raws(raws, verbose=False)

    def code(desc: str):
        m = _CODE.search(desc)
        return int(m.group(1)) if m else None

    events, _ = mne.events_from_annotations(raw, event_id=code, verbose=False)
    if len(events) == 0:
        raise NeuralignError("no stimulus markers with an integer code", path=paths[0])
    return raw, events


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


# ------------------------------------------------------------------------------ discovery
def _session_key(p: Path) -> str:
    for part in (p.name, *[q.name for q in p.parents]):
        m = re.search(r"ses-?(\d+)", part)
        if m:
            return f"ses-{int(m.group(1)):02d}"
    return "ses-01"


def _partition_of(p: Path) -> str | None:
    name = p.name.lower()
    if "test" in name:
        return "test"
    if "train" in name:
        return "training"
    return None


def discover(path: str | Path) -> tuple[str, dict[str, dict[str, list[Path]]]]:
    """Find the raw files of one subject: ``(kind, {session: {partition: [files]}})``.

    ``kind`` is ``"npy"`` or ``"brainvision"``. ``path`` may be one raw file, a session folder
    or a subject folder with ``ses-*`` sub-folders.
    """
    root = Path(path)
    if not root.exists():
        raise NeuralignError("raw THINGS-EEG2 path not found", path=root)
    if root.is_file():
        files = [root]
    else:
        files = sorted(root.rglob("raw_eeg_*.npy")) or sorted(root.rglob("*.vhdr"))
    if not files:
        raise NeuralignError(
            "no raw_eeg_{training,test}.npy or BrainVision .vhdr files found", path=root
        )
    kinds = {"npy" if f.suffix == ".npy" else "brainvision" if f.suffix == ".vhdr" else "?"
             for f in files}
    if "?" in kinds:
        raise NeuralignError("expected a raw_eeg_*.npy or .vhdr file", path=root)
    kind = kinds.pop() if len(kinds) == 1 else "npy"
    subs = {m.group(0) for f in files for m in [re.search(r"sub-[A-Za-z0-9]+", str(f.relative_to(
        root) if root.is_dir() else f.name))] if m}
    if len(subs) > 1:
        raise NeuralignError(
            f"{len(subs)} subjects ({few(sorted(subs), 3)}) under this folder: give one subject's "
            "folder", path=root)
    out: dict[str, dict[str, list[Path]]] = {}
    for f in files:
        if kind == "npy" and f.suffix != ".npy":
            continue
        part = _partition_of(f)
        if part is None:
            raise NeuralignError("cannot tell whether this is a training or a test file", path=f)
        out.setdefault(_session_key(f), {}).setdefault(part, []).append(f)
    return kind, dict(sorted(out.items()))


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
    names = {p: things.image_files(meta, META_PART[p]) for p in parts}
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


def load_things_eeg2_raw(
    path: str | Path,
    *,
    metadata: str | Path | None = None,
    include_train: bool = True,
    include_test: bool = True,
    mvnn: str | None = None,
    sfreq: float = 100.0,
    seed: int = OFFICIAL_SEED,
    progress: bool = False,
    **_ignored,
) -> EpochData:
    """Load raw THINGS-EEG2 files of one subject into :class:`EpochData` (official preprocessing).

    Parameters
    ----------
    path : str or Path
        A subject folder (``ses-*/raw_eeg_*.npy`` or BrainVision ``.vhdr`` files), a session
        folder, or one raw file.
    metadata : path, optional
        ``image_metadata.npy`` (default: searched in ``path`` and its parents).
    include_train, include_test : bool
    mvnn : {None, "time", "epochs"}
        Multivariate noise normalisation (off by default; the official files use ``"time"``).
    sfreq : float
        Resampling rate (100 Hz as published).
    seed : int
        Seed of the repetition selection/shuffles (the official 20200220).

    Returns
    -------
    EpochData
        Epochs float32 flattened images x repetitions (training first), stimulus ids = the
        ``*_img_files`` names, ``test_ids`` = the test images.
    """
    res = preprocess_things_eeg2_raw(
        path, metadata=metadata, include_train=include_train, include_test=include_test,
        mvnn=mvnn, sfreq=sfreq, seed=seed, progress=progress,
    )
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

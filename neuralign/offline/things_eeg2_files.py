"""The raw files of a THINGS-EEG2 subject: found by session and partition, and read.

Two raw sources per session:

- the converted ``raw_eeg_training.npy`` / ``raw_eeg_test.npy`` (pickled dicts with
  ``raw_eeg_data`` (64 x samples, last row ``stim`` = image index + 1, 99999 = target),
  ``ch_names``, ``ch_types``, ``sfreq``, ...), read with the restricted unpickler;
- the BrainVision source files (``*.vhdr`` + ``.vmrk`` + ``.eeg``), read with MNE; the integer
  at the end of each marker description (``Stimulus/S 17`` -> 17) is the event code, with the
  same meaning as the ``stim`` channel of the ``.npy`` files. Parts of one session are
  concatenated in file-name order; ``task-test`` files are the test partition, ``task-train``
  files the training partition.

Only the channels matching :data:`CHANNEL_REGEXP` (the 17 occipito-parietal channels the
official preprocessing keeps) are read into memory.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import NeuralignError, few
from ..io.safe_pickle import load_npy

CHANNEL_REGEXP = "^O *|^P *"
RAW_FILES = {"training": "raw_eeg_training.npy", "test": "raw_eeg_test.npy"}


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

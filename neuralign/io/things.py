"""THINGS-EEG2 file facts: channel sets and ``image_metadata.npy`` (found and read one way).

``image_metadata.npy`` is a pickled dict (read with the restricted unpickler of
:mod:`neuralign.io.safe_pickle`): ``train_img_files`` (e.g. ``aardvark_01b.jpg``),
``train_img_concepts`` (e.g. ``00001_aardvark``), ``train_img_concepts_THINGS`` and the same
``test_*`` keys. Row order of the EEG arrays is the order of these lists, and the file names
are the stimulus ids everywhere in neuralign (presenter markers, feature rows, EEG loaders).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import NeuralignError
from .safe_pickle import load_npy

METADATA_FILE = "image_metadata.npy"

#: The 17 occipito-parietal channels the official preprocessing keeps, in its order.
THINGS_EEG2_CHANNELS: tuple[str, ...] = (
    "P7", "P5", "P3", "P1", "Pz", "P2", "P4", "P6", "P8",
    "PO7", "PO3", "POz", "PO4", "PO8", "O1", "Oz", "O2",
)
#: The 63 EEG channels of the THINGS-EEG2 recordings (the order of the official ``chan_order``).
THINGS_EEG2_RAW_CHANNELS: tuple[str, ...] = (
    "Fp1", "Fp2", "AF7", "AF3", "AFz", "AF4", "AF8", "F7", "F5", "F3", "F1", "F2", "F4", "F6",
    "F8", "FT9", "FT7", "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "FT8", "FT10", "T7",
    "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "T8", "TP9", "TP7", "CP5", "CP3", "CP1", "CPz",
    "CP2", "CP4", "CP6", "TP8", "TP10", *THINGS_EEG2_CHANNELS,
)
#: Partition name -> (metadata key prefix, image sub-folder of a THINGS image folder).
PARTS: dict[str, tuple[str, str]] = {
    "train": ("train", "training_images"),
    "test": ("test", "test_images"),
}


def find_metadata(path: str | Path, metadata: str | Path | None = None) -> Path:
    """Locate ``image_metadata.npy`` for a subject, session, raw file or image folder.

    Parameters
    ----------
    path : str | Path
        Where the data are: the metadata is looked for in this folder (a file's folder),
        then in up to four of its parents, in each folder directly and in its ``image_set/``.
    metadata : str | Path | None
        The metadata file, when given explicitly (it must exist).

    Returns
    -------
    Path
        The metadata file.

    Raises
    ------
    NeuralignError
        When the given file does not exist, or none is found.
    """
    if metadata is not None:
        p = Path(metadata)
        if not p.is_file():
            raise NeuralignError("metadata file not found", path=p)
        return p
    start = Path(path).resolve()
    start = start if start.is_dir() else start.parent
    for d in (start, *list(start.parents)[:4]):
        for cand in (d / METADATA_FILE, d / "image_set" / METADATA_FILE):
            if cand.is_file():
                return cand
    raise NeuralignError(
        f"{METADATA_FILE} not found in this folder or its parents (give it with --metadata)",
        path=start,
    )


def read_metadata(path: str | Path, *, parts: tuple[str, ...] = ("train", "test")) -> dict:
    """Read ``image_metadata.npy`` and check that it lists the images of ``parts``.

    Parameters
    ----------
    path : str | Path
        The metadata file.
    parts : tuple of {"train", "test"}
        The partitions whose ``*_img_files`` must be present.

    Returns
    -------
    dict
        The metadata dict as stored.

    Raises
    ------
    NeuralignError
        Unreadable file, not a dict, or a missing ``*_img_files`` key.
    """
    meta = load_npy(path)
    if not isinstance(meta, dict):
        raise NeuralignError(
            f"expected a pickled dict of image lists, got {type(meta).__name__}", path=path)
    for part in parts:
        key = f"{PARTS[part][0]}_img_files"
        if key not in meta:
            raise NeuralignError(f"missing key {key!r}", path=path)
    return meta


def image_list(meta: dict, part: str, column: str = "files") -> list[str] | None:
    """One column of the image lists of a partition, in row order.

    Parameters
    ----------
    meta : dict
        A metadata dict (:func:`read_metadata`).
    part : {"train", "test"}
        The partition.
    column : {"files", "concepts"}
        ``files``: the stimulus ids (``aardvark_01b.jpg``); ``concepts``: the concept folder
        of every image (``00001_aardvark``).

    Returns
    -------
    list of str | None
        The names (``None`` when the metadata does not list that column).
    """
    key = f"{PARTS[part][0]}_img_{column}"
    if key not in meta:
        return None
    return [str(x) for x in np.atleast_1d(np.asarray(meta[key], dtype=object)).tolist()]

"""Staleness checks shared by the feature-cache readers, and the reader of the old
single-file cache (``neuralign.feature-cache/1``).

A cache records the hashes of what it was computed from: model files and, for stimulus
folders, every image. When those files are still there and changed, the cache is stale and
loading it is refused with a one-line error that says what changed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..base import FeatureSet
from ..errors import NeuralignError, few
from .hashing import file_sha256

FORMAT_V1 = "neuralign.feature-cache/1"


def check_files(files: Sequence[dict], *, path: Path) -> None:
    """Refuse a cache whose recorded input files (model graphs, weights) changed.

    Parameters
    ----------
    files : sequence of dict
        ``{"path": ..., "sha256": ...}`` records; files that no longer exist are not checked
        (the model may have moved), files that exist must match.
    path : Path
        The cache, for the error message.
    """
    for rec in files:
        p = Path(str(rec.get("path", "")))
        digest = rec.get("sha256")
        if digest and p.is_file() and file_sha256(p) != digest:
            raise NeuralignError(
                f"cache is stale: model file {p} changed since the features were computed "
                "(re-run neuralign features)", path=path)


def check_images(ids: Sequence[str], hashes: Sequence[str], stimuli: dict, *,
                 path: Path) -> None:
    """Re-hash the images of a folder stimulus source (when the folder still exists).

    Parameters
    ----------
    ids, hashes : sequence of str
        Stimulus ids and the sha256 of their image files when the cache was written.
    stimuli : dict
        The cache's stimulus record: ``kind`` (``folder``/``things``/``builtin``),
        ``source`` (the folder) and ``files`` (id -> path relative to the folder).
    path : Path
        The cache, for the error message.
    """
    root = Path(str(stimuli.get("source", "")))
    files = stimuli.get("files")
    if stimuli.get("kind") not in ("folder", "things") or not files or not root.is_dir():
        return
    changed, missing = [], []
    for sid, digest in zip(ids, hashes):
        f = root / str(files.get(sid, ""))
        if not f.is_file():
            missing.append(sid)
        elif file_sha256(f) != digest:
            changed.append(sid)
    if changed or missing:
        what = []
        if changed:
            what.append(f"{len(changed)} image(s) changed ({few(changed, 3)})")
        if missing:
            what.append(f"{len(missing)} image(s) missing ({few(missing, 3)})")
        raise NeuralignError(
            f"cache is stale: {'; '.join(what)} since the features were computed "
            "(re-run neuralign features)", path=path)


# ---------------------------------------------------------------------------- format 1
def is_cache_v1(path: str | Path) -> bool:
    """True if ``path`` is an old single-file cache (``.npz`` with the format-1 tag)."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        with np.load(p, allow_pickle=False) as z:
            return "neuralign_cache" in z.files and str(z["neuralign_cache"]) == FORMAT_V1
    except Exception:  # noqa: BLE001 - anything unreadable is not a cache
        return False


def _digest_v1(arrays) -> str:
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}|{a.dtype}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _graph_unchanged(rec: dict) -> bool:
    """Format 1 recorded one hash per ONNX graph (covering its external-data files, if any);
    a graph with external data is only re-checked by the format-2 reader."""
    p = Path(str(rec.get("path", "")))
    if not rec.get("sha256") or not p.is_file():
        return True
    if any(q.suffix not in (".onnx", ".json") for q in p.parent.iterdir() if q.is_file()):
        return True
    return file_sha256(p) == rec["sha256"]


def load_cache_v1(path: str | Path, *, verify: bool = True) -> FeatureSet:
    """Read an old single-file cache (``neuralign.feature-cache/1``).

    Parameters
    ----------
    path : str or Path
        The ``.npz`` file.
    verify : bool
        Check the features against their recorded hash, and the model graphs and images
        (where still present) against theirs.

    Returns
    -------
    FeatureSet
        In-memory arrays (the format is one zip file).
    """
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise NeuralignError(f"not a readable feature cache ({type(e).__name__})",
                             path=path) from None
    with z:
        if "neuralign_cache" not in z.files or str(z["neuralign_cache"]) != FORMAT_V1:
            raise NeuralignError(f"not a neuralign feature cache (expected {FORMAT_V1})",
                                 path=path)
        try:
            prov = json.loads(str(z["provenance"]))
            layers = [str(x) for x in z["layers"].tolist()]
            arrays = [z[f"layer_{i:03d}"] for i in range(len(layers))]
            ids = [str(x) for x in z["stimulus_ids"].tolist()]
            hashes = [str(x) for x in z["image_sha256"].tolist()]
        except (KeyError, ValueError) as e:
            raise NeuralignError(f"broken feature cache ({e})", path=path) from None
    if verify:
        if _digest_v1(arrays) != prov.get("arrays_sha256"):
            raise NeuralignError("feature arrays do not match their recorded hash "
                                 "(file modified or corrupt)", path=path)
        for rec in prov.get("model", {}).get("graphs", []):
            if not _graph_unchanged(rec):
                raise NeuralignError(
                    f"cache is stale: model file {rec['path']} changed since the features were "
                    "computed (re-run neuralign features)", path=path)
        check_images(ids, hashes, prov.get("stimuli", {}), path=path)
    prov = {**prov, "cache_file": str(path)}
    return FeatureSet(np.asarray(ids), tuple(layers), tuple(arrays), prov)

"""Reading the per-layer feature cache (``neuralign.feature-cache/2``, see
:mod:`neuralign.io.feature_cache`): read-only memory maps, structure and hash checks, stale
inputs refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..base import FeatureSet, LayerFile
from ..errors import NeuralignError
from .cache_checks import check_files, check_images
from .feature_cache import (
    FORMAT,
    IDS,
    IMAGE_HASHES,
    PROGRESS,
    is_cache_dir,
    load_strings,
    read_json,
    read_manifest,
)
from .hashing import array_sha256

VERIFY_AUTO_BYTES = 1 << 30
VERIFY_MODES = ("auto", "full", "inputs", "none")


def load_cache_dir(path: str | Path, *, verify: str = "auto") -> FeatureSet:
    """Open a complete cache folder as a :class:`~neuralign.base.FeatureSet` of read-only
    memory maps (nothing of the layers is read unless ``verify`` hashes them).

    Parameters
    ----------
    path : str or Path
        The cache folder.
    verify : {"auto", "full", "inputs", "none"}
        ``full``: check every layer against its recorded sha256 (reads the layers once,
        block by block); ``auto``: the same when the layers total at most
        :data:`VERIFY_AUTO_BYTES`; ``inputs``: only re-hash model files and images;
        ``none``: structure only. All but ``none`` refuse stale inputs.

    Returns
    -------
    FeatureSet
        Arrays are :class:`~neuralign.base.LayerFile`: each read maps the layer's file, copies
        what it needs and unmaps it, so layers already processed leave no resident pages.
    """
    if verify not in VERIFY_MODES:
        raise ValueError(f"verify must be one of {VERIFY_MODES}")
    path = Path(path)
    m = read_manifest(path)
    if m.get("state") != "complete":
        done = "?"
        if (path / PROGRESS).is_file():
            done = read_json(path / PROGRESS, what="cache progress").get("rows_done", "?")
        raise NeuralignError(f"incomplete feature cache ({done} of {m['n_stimuli']} rows; "
                             "extraction was interrupted): re-run neuralign features to resume",
                             path=path)
    n = m["n_stimuli"]
    ids = load_strings(path / IDS, n)
    arrays = []
    for lay in m["layers"]:
        f = path / str(lay.get("file", ""))
        if f.parent != path:
            raise NeuralignError(f"layer {lay['name']!r}: file outside the cache", path=path)
        try:
            a = np.load(f, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise NeuralignError(f"layer {lay['name']!r}: file missing", path=f) from None
        except (OSError, ValueError) as e:
            raise NeuralignError(f"layer {lay['name']!r}: not a readable .npy file "
                                 f"({str(e)[:80]})", path=f) from None
        if a.ndim != 2 or list(a.shape) != list(lay.get("shape") or []) \
                or a.dtype != np.float32:  # checked on the map; the layer is a LayerFile
            raise NeuralignError(f"layer {lay['name']!r}: {a.dtype} {a.shape} does not match the "
                                 f"manifest's float32 {lay.get('shape')}", path=f)
        del a
        arrays.append(LayerFile(f))
    total = sum(a.nbytes for a in arrays)
    check_hashes = verify == "full" or (verify == "auto" and total <= VERIFY_AUTO_BYTES)
    if check_hashes:
        for lay, a in zip(m["layers"], arrays):
            if array_sha256(a) != lay.get("sha256"):
                raise NeuralignError(f"layer {lay['name']!r} does not match its recorded hash "
                                     "(file modified or corrupt)", path=path / lay["file"])
    prov = dict(m.get("provenance", {}))
    if verify != "none":
        check_files(m.get("inputs", {}).get("files", []), path=path)
        hashes = load_strings(path / IMAGE_HASHES, n)
        check_images(ids.tolist(), hashes.tolist(), prov.get("stimuli", {}), path=path)
    prov.update({"cache_file": str(path), "cache_format": FORMAT,
                 "stages": {lay["name"]: lay.get("stage") for lay in m["layers"]},
                 "verified": {"layer_sha256": check_hashes, "inputs": verify != "none"}})
    layers = tuple(lay["name"] for lay in m["layers"])
    try:
        return FeatureSet(ids, layers, tuple(arrays), prov)
    except NeuralignError as e:
        raise NeuralignError(str(e), path=path) from None


def cache_progress(path: str | Path) -> dict | None:
    """``{"state", "rows_done", "n_stimuli"}`` of a cache folder, None if it is not one."""
    path = Path(path)
    if not is_cache_dir(path):
        return None
    m = read_manifest(path)
    done = m["n_stimuli"]
    if m.get("state") != "complete":
        done = 0
        if (path / PROGRESS).is_file():
            done = int(read_json(path / PROGRESS, what="cache progress").get("rows_done", 0))
    return {"state": m.get("state"), "rows_done": done, "n_stimuli": m["n_stimuli"],
            "key": m.get("key")}

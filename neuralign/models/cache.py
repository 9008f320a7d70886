"""The feature cache: one ``.npz`` file (no pickles) per (model, preprocessing, pooling,
stimulus set, PCA).

Keys in the file:

- ``neuralign_cache``: the format tag ``neuralign.feature-cache/1``
- ``stimulus_ids`` (N,) str, ``layers`` (L,) str, ``image_sha256`` (N,) str
- ``layer_000`` ... ``layer_{L-1}``: (N, D_l) float32 features, rows in ``stimulus_ids`` order
- ``pca_components_000`` / ``pca_mean_000`` ...: the per-layer PCA (when ``--pca`` was used)
- ``provenance``: a JSON string: model name/family/graph hashes, preprocessing, pooling per
  layer, stimulus source, test ids, PCA settings, ``key`` (hash of all of these and of every
  image) and ``arrays_sha256`` (hash of the stored features)

A cache is valid for its inputs only: :func:`load_cache` refuses a file whose features do not
match their recorded hash, whose images (when the stimulus folder is still there) or model files
changed since it was written.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..errors import NeuralignError, few

FORMAT = "neuralign.feature-cache/1"


def cache_key(parts: dict, image_hashes: dict[str, str]) -> str:
    """sha256 of the settings ``parts`` (JSON) and of every (id, image hash) pair."""
    h = hashlib.sha256(json.dumps(parts, sort_keys=True).encode())
    for sid, digest in image_hashes.items():
        h.update(f"{sid}\0{digest}\n".encode())
    return h.hexdigest()


def arrays_digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}|{a.dtype}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def write_cache(path: str | Path, *, stimulus_ids, layers, arrays, image_sha256,
                provenance: dict, pca: dict | None = None) -> Path:
    """Write a cache file atomically (``pca``: layer index -> (components, mean))."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
    prov = dict(provenance)
    prov["arrays_sha256"] = arrays_digest(arrays)
    data = {
        "neuralign_cache": np.asarray(FORMAT),
        "stimulus_ids": np.asarray(stimulus_ids, dtype=str),
        "layers": np.asarray(layers, dtype=str),
        "image_sha256": np.asarray(image_sha256, dtype=str),
        "provenance": np.asarray(json.dumps(prov)),
    }
    for i, a in enumerate(arrays):
        data[f"layer_{i:03d}"] = a
    for i, (comp, mean) in (pca or {}).items():
        data[f"pca_components_{i:03d}"] = np.asarray(comp, dtype=np.float32)
        data[f"pca_mean_{i:03d}"] = np.asarray(mean, dtype=np.float32)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **data)
    tmp.replace(path)
    return path


def is_cache(path: str | Path) -> bool:
    """True if ``path`` is a neuralign feature cache (an ``.npz`` with the format tag)."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        with np.load(p, allow_pickle=False) as z:
            return "neuralign_cache" in z.files and str(z["neuralign_cache"]) == FORMAT
    except Exception:  # noqa: BLE001 - anything unreadable is not a cache
        return False


def read_provenance(path: str | Path) -> dict:
    """The provenance dict of a cache file (no validation of the features)."""
    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["provenance"]))


def _open(path: Path):
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise NeuralignError(f"not a readable feature cache ({type(e).__name__})", path=path) from e
    if "neuralign_cache" not in z.files or str(z["neuralign_cache"]) != FORMAT:
        raise NeuralignError(f"not a neuralign feature cache (expected {FORMAT})", path=path)
    return z


def check_inputs(prov: dict, *, path: Path) -> None:
    """Refuse a cache whose model files or (still present) images changed since it was made."""
    for g in prov.get("model", {}).get("graphs", []):
        gp = Path(g.get("path", ""))
        if g.get("sha256") and gp.is_file():
            from .spec import graph_sha256

            if graph_sha256(gp) != g["sha256"]:
                raise NeuralignError(
                    f"cache is stale: model file {gp} changed since the features were computed "
                    "(re-run neuralign features)", path=path)


def check_images(ids, hashes, prov: dict, *, path: Path) -> None:
    """Re-hash the images of a folder source (when the folder still exists)."""
    src = prov.get("stimuli", {})
    root = Path(src.get("source", ""))
    files = src.get("files")
    if src.get("kind") not in ("folder", "things") or not files or not root.is_dir():
        return
    from .stimuli import file_sha256

    changed, missing = [], []
    for sid, digest in zip(ids, hashes):
        f = root / files.get(sid, "")
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


def load_cache(path: str | Path, *, verify: bool = True):
    """Read a cache as a :class:`~neuralign.align.data.FeatureSet`.

    With ``verify`` (default), the stored features must match their recorded hash and the
    model files and images, where still present, must match theirs.
    """
    from ..base import FeatureSet

    path = Path(path)
    with _open(path) as z:
        prov = json.loads(str(z["provenance"]))
        layers = z["layers"].tolist()
        arrays = [z[f"layer_{i:03d}"] for i in range(len(layers))]
        ids = z["stimulus_ids"].tolist()
        hashes = z["image_sha256"].tolist()
    if verify:
        if arrays_digest(arrays) != prov.get("arrays_sha256"):
            raise NeuralignError("feature arrays do not match their recorded hash "
                                 "(file modified or corrupt)", path=path)
        check_inputs(prov, path=path)
        check_images(ids, hashes, prov, path=path)
    prov = {**prov, "cache_file": str(path)}
    return FeatureSet(np.asarray(ids), tuple(layers), tuple(arrays), prov)

"""Reading and writing layer features (:class:`~neuralign.base.FeatureSet`).

The plain interchange format is a ``.npz`` file (read with ``allow_pickle=False``):

- ``stimulus_ids``: ``(N,)`` strings, unique;
- one ``(N, D)`` float array per layer, keyed by the layer's name, layers in depth order
  (the order the arrays were written in);
- optional ``__layers__``: ``(L,)`` strings, the layer names in depth order (overrides the
  file order; needed when a layer name cannot be a zip member name);
- optional ``__provenance__``: a 0-d string holding a JSON object (model, pooling, ...).

:func:`load_features` also reads the feature caches written by ``neuralign features``: the
per-layer cache folder (:mod:`neuralign.io.feature_cache`, memory-mapped) and the old
single-file cache (:func:`neuralign.io.cache_checks.load_cache_v1`).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..base import FeatureSet
from ..errors import NeuralignError
from .cache_checks import is_cache_v1, load_cache_v1
from .cache_reader import load_cache_dir
from .feature_cache import is_cache_dir

RESERVED = ("stimulus_ids", "__layers__", "__provenance__")


def _is_npz(path: Path) -> bool:
    return path.is_file() and (path.suffix.lower() == ".npz" or zipfile.is_zipfile(path))


def _read_cache_dir(path: Path, verify: str) -> FeatureSet:
    return load_cache_dir(path, verify=verify)


def _read_cache_v1(path: Path, verify: str) -> FeatureSet:
    return load_cache_v1(path, verify=verify != "none")


def _read_npz(path: Path, verify: str) -> FeatureSet:
    return load_npz_features(path)


# (predicate, reader, check finiteness after reading), tried in order: the first predicate
# that accepts the path reads it. The cache folder checked finiteness when it was written
# (and hashes its layers), so its memory maps are not read again here.
READERS: list[tuple[Callable[[Path], bool], Callable[[Path, str], FeatureSet], bool]] = [
    (is_cache_dir, _read_cache_dir, False),
    (is_cache_v1, _read_cache_v1, True),
    (_is_npz, _read_npz, True),
]


def load_features(path: str | Path, *, verify: str = "auto") -> FeatureSet:
    """Load per-layer features from ``path``.

    Parameters
    ----------
    path : str or Path
        A ``.npz`` in the plain interchange format (see module docstring), a feature cache
        folder (memory-mapped), or an old single-file feature cache.
    verify : {"auto", "full", "inputs", "none"}
        How much of a cache to check (see :func:`~neuralign.io.cache_reader.load_cache_dir`).

    Returns
    -------
    FeatureSet
        Finite features, layers in depth order.

    Raises
    ------
    NeuralignError
        Missing file, unknown format, missing ``stimulus_ids``, wrong rank, row count that
        differs from the number of ids, non-float data, NaN/Inf (naming the layer), a stale
        or corrupt cache.
    """
    path = Path(path)
    if not path.exists():
        raise NeuralignError("features file not found", path=path)
    for accepts, reader, check in READERS:
        if accepts(path):
            fs = reader(path, verify)
            if check:
                fs.check_finite(source=path)
            return fs
    raise NeuralignError(
        "unknown features format (expected a .npz with stimulus_ids and one (N, D) array "
        "per layer, or a neuralign feature cache)",
        path=path,
    )


def load_npz_features(path: str | Path) -> FeatureSet:
    """Read the plain ``.npz`` interchange format (no pickles)."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise NeuralignError(f"not a readable .npz file ({e})", path=path) from None
    with z:
        files = list(z.files)
        if "stimulus_ids" not in files:
            raise NeuralignError("missing the 'stimulus_ids' array", path=path)
        try:
            ids = z["stimulus_ids"]
        except ValueError as e:  # object arrays need pickles: refused
            raise NeuralignError(f"'stimulus_ids' must be a string array ({e})", path=path) from None
        if ids.ndim != 1:
            raise NeuralignError(f"'stimulus_ids' must be 1-D, got shape {ids.shape}", path=path)
        if ids.dtype.kind not in "US":
            raise NeuralignError(
                f"'stimulus_ids' must be strings, got dtype {ids.dtype}", path=path
            )
        ids = ids.astype(str)
        if "__layers__" in files:
            layers = [str(x) for x in np.atleast_1d(z["__layers__"]).tolist()]
            missing = [name for name in layers if name not in files]
            if missing:
                raise NeuralignError(
                    f"__layers__ names layers with no array: {missing[:5]}", path=path
                )
        else:
            layers = [f for f in files if f not in RESERVED]
        if not layers:
            raise NeuralignError("no layer arrays (one (N, D) array per layer)", path=path)
        provenance: dict = {}
        if "__provenance__" in files:
            try:
                provenance = json.loads(str(z["__provenance__"]))
            except (ValueError, TypeError) as e:
                raise NeuralignError(f"__provenance__ is not JSON ({e})", path=path) from None
        arrays = []
        for name in layers:
            try:
                a = z[name]
            except ValueError as e:
                raise NeuralignError(f"layer {name!r}: unreadable array ({e})", path=path) from None
            if a.ndim != 2:
                raise NeuralignError(
                    f"layer {name!r}: features must be 2-D (n_stimuli, D), got shape {a.shape}",
                    path=path,
                )
            if a.shape[0] != ids.size:
                raise NeuralignError(
                    f"layer {name!r}: {a.shape[0]} rows for {ids.size} stimulus_ids", path=path
                )
            if a.dtype.kind not in "fiu":
                raise NeuralignError(
                    f"layer {name!r}: features must be numeric, got dtype {a.dtype}", path=path
                )
            if a.dtype.kind != "f":
                a = a.astype(np.float64)
            if not np.isfinite(a).all():
                bad = int((~np.isfinite(a)).any(axis=1).sum())
                raise NeuralignError(
                    f"layer {name!r} has NaN/Inf features for {bad} stimuli", path=path
                )
            arrays.append(a)
    provenance.setdefault("source", str(path))
    try:
        return FeatureSet(ids, tuple(layers), tuple(arrays), provenance)
    except NeuralignError as e:
        raise NeuralignError(str(e), path=path) from None


def save_features(path: str | Path, fs: FeatureSet) -> Path:
    """Write ``fs`` in the plain ``.npz`` interchange format (layers in depth order)."""
    path = Path(path)
    for name in fs.layers:
        if name in RESERVED:
            raise NeuralignError(f"layer name {name!r} is reserved", path=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {"stimulus_ids": np.asarray(fs.stimulus_ids, dtype=str)}
    for name, a in zip(fs.layers, fs.arrays):
        arrays[name] = np.asarray(a)
    arrays["__layers__"] = np.asarray(fs.layers, dtype=str)
    arrays["__provenance__"] = np.asarray(json.dumps(fs.provenance, default=str))
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return path


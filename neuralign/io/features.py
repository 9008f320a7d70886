"""Reading and writing layer features (:class:`~neuralign.align.data.FeatureSet`).

The plain interchange format is a ``.npz`` file (read with ``allow_pickle=False``):

- ``stimulus_ids``: ``(N,)`` strings, unique;
- one ``(N, D)`` float array per layer, keyed by the layer's name, layers in depth order
  (the order the arrays were written in);
- optional ``__layers__``: ``(L,)`` strings, the layer names in depth order (overrides the
  file order; needed when a layer name cannot be a zip member name);
- optional ``__provenance__``: a 0-d string holding a JSON object (model, pooling, ...).

:func:`load_features` dispatches on the file type so other feature sources (the ONNX feature
cache of :mod:`neuralign.models.cache`) plug in through :data:`READERS`.
"""

from __future__ import annotations

import importlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..base import FeatureSet
from ..errors import NeuralignError

RESERVED = ("stimulus_ids", "__layers__", "__provenance__")


def _is_cache(path: Path) -> bool:
    """True when ``path`` is a feature cache of :mod:`neuralign.models.cache` (if installed)."""
    try:
        cache = importlib.import_module("neuralign.models.cache")
    except ModuleNotFoundError:
        return False
    is_cache = getattr(cache, "is_cache", None)
    return bool(is_cache and is_cache(path))


def _load_cache(path: Path) -> FeatureSet:
    cache = importlib.import_module("neuralign.models.cache")
    return cache.load_cache(path)


def _is_npz(path: Path) -> bool:
    return path.suffix.lower() == ".npz" or zipfile.is_zipfile(path)


# (predicate, reader), tried in order: the first predicate that accepts the path reads it.
READERS: list[tuple[Callable[[Path], bool], Callable[[Path], FeatureSet]]] = []


def load_features(path: str | Path) -> FeatureSet:
    """Load per-layer features from ``path``.

    Parameters
    ----------
    path : str or Path
        A ``.npz`` in the plain interchange format (see module docstring), or any other
        format a registered reader accepts (the ONNX feature cache).

    Returns
    -------
    FeatureSet
        Finite features, layers in depth order.

    Raises
    ------
    NeuralignError
        Missing file, unknown format, missing ``stimulus_ids``, wrong rank, row count that
        differs from the number of ids, non-float data, NaN/Inf (naming the layer).
    """
    path = Path(path)
    if not path.exists():
        raise NeuralignError("features file not found", path=path)
    for accepts, reader in READERS:
        if accepts(path):
            fs = reader(path)
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


READERS.extend([(_is_cache, _load_cache), (_is_npz, load_npz_features)])

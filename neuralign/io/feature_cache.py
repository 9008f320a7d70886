"""The per-layer feature cache (``neuralign.feature-cache/2``): a folder with one
memory-mappable ``.npy`` file per layer, written batch by batch and resumable.

Layout of a cache folder::

    neuralign_cache.json   manifest: format tag, state ("partial"/"complete"), key, layers
                           (name, stage, file, shape, dtype, sha256), inputs (model files and
                           their sha256), provenance (JSON)
    stimulus_ids.npy       (N,) unicode, rows of every layer file in this order
    image_sha256.npy       (N,) unicode, sha256 of each stimulus image
    layer_000.npy ...      (N, D_l) float32, plain .npy (no pickles), preallocated with
                           numpy.lib.format.open_memmap and filled batch by batch
    pca_components_000.npy / pca_mean_000.npy   the per-layer PCA, when one was applied
    progress.json          while partial: rows done, failed rows, the key (removed when done)

Writing (:class:`CacheWriter`): the manifest and the id files are written first, each layer
file is preallocated when its width is known, every batch is written into the memory maps,
the maps are flushed and then ``progress.json`` is replaced atomically. A killed extraction
therefore leaves a cache whose first ``rows_done`` rows are on disk; opening it again with
the same key resumes there. :meth:`CacheWriter.finalize` drops rows that failed, records a
sha256 per layer and marks the cache complete.

Reading (:func:`neuralign.io.cache_reader.load_cache_dir`): ``allow_pickle=False``, layer files opened with
``mmap_mode="r"`` (read-only memory maps; nothing is read until used), shapes checked against
the manifest, per-layer hashes verified (always with ``verify="full"``; with ``"auto"`` when
the cache is at most :data:`VERIFY_AUTO_BYTES`), model files and images re-hashed where still
present (stale inputs are refused).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

from ..errors import NeuralignError
from .hashing import array_sha256

FORMAT = "neuralign.feature-cache/2"
MANIFEST = "neuralign_cache.json"
PROGRESS = "progress.json"
IDS = "stimulus_ids.npy"
IMAGE_HASHES = "image_sha256.npy"
MAX_JSON_BYTES = 256 << 20


def layer_file(i: int) -> str:
    """File name of layer ``i`` in a cache folder."""
    return f"layer_{i:03d}.npy"


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


def read_json(path: Path, *, what: str) -> dict:
    """A JSON object from ``path`` (size-limited); one-line errors naming ``what``."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise NeuralignError(f"{what} is larger than {MAX_JSON_BYTES >> 20} MB", path=path)
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise NeuralignError(f"{what} is missing", path=path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise NeuralignError(f"{what} is not readable JSON ({type(e).__name__})",
                             path=path) from None
    if not isinstance(obj, dict):
        raise NeuralignError(f"{what} must hold a JSON object", path=path)
    return obj


def is_cache_dir(path: str | Path) -> bool:
    """True if ``path`` is a folder holding a format-2 cache manifest."""
    p = Path(path)
    if not (p / MANIFEST).is_file():
        return False
    try:
        return read_json(p / MANIFEST, what="manifest").get("format") == FORMAT
    except NeuralignError:
        return False


def read_manifest(path: str | Path) -> dict:
    """The manifest of a cache folder, with its structure checked.

    Parameters
    ----------
    path : str or Path
        The cache folder.

    Returns
    -------
    dict
        ``format``, ``state``, ``key``, ``n_stimuli``, ``layers`` (list of dicts with
        ``name``, ``file``, ``shape``...), ``inputs``, ``provenance``.
    """
    path = Path(path)
    m = read_json(path / MANIFEST, what="cache manifest")
    if m.get("format") != FORMAT:
        raise NeuralignError(f"not a neuralign feature cache (expected {FORMAT})", path=path)
    layers = m.get("layers")
    if not isinstance(layers, list) or not all(isinstance(x, dict) and "name" in x
                                               for x in layers):
        raise NeuralignError("cache manifest: 'layers' must be a list of layer records",
                             path=path)
    if not isinstance(m.get("n_stimuli"), int) or not isinstance(m.get("provenance", {}), dict):
        raise NeuralignError("cache manifest: broken n_stimuli/provenance", path=path)
    return m


def load_strings(path: Path, n: int) -> np.ndarray:
    """A 1-D unicode array of ``n`` strings from a ``.npy`` file (no pickles)."""
    try:
        a = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise NeuralignError("missing file of the feature cache", path=path) from None
    except (OSError, ValueError) as e:
        raise NeuralignError(f"not a readable string array ({type(e).__name__})",
                             path=path) from None
    if a.ndim != 1 or a.dtype.kind != "U" or a.size != n:
        raise NeuralignError(f"expected {n} strings, got {a.dtype} {a.shape}", path=path)
    return a


class CacheWriter:
    """Writes a cache folder batch by batch; resumes a partial one with the same key.

    Use :meth:`open`, then :meth:`write` rows, :meth:`commit` after each batch and
    :meth:`finalize` at the end.

    Parameters
    ----------
    path : Path
        The cache folder.
    manifest : dict
        Its manifest (state ``partial``).
    rows_done : int
        Rows ``[0, rows_done)`` are on disk.
    failed : list of int
        Rows whose stimulus could not be processed (dropped at :meth:`finalize`).
    """

    def __init__(self, path: Path, manifest: dict, *, rows_done: int = 0,
                 failed: list[int] | None = None) -> None:
        self.path = path
        self.manifest = manifest
        self.rows_done = int(rows_done)
        self.failed = sorted(set(failed or []))
        self._maps: dict[int, np.memmap] = {}

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | Path, *, key: str, stimulus_ids, image_sha256, layers: list[dict],
             provenance: dict, inputs: dict | None = None) -> CacheWriter:
        """Open ``path`` for writing: resume it if it is a partial cache with this ``key``
        and these ids, else (re)create it.

        Parameters
        ----------
        path : str or Path
            The cache folder (created if needed). An existing folder must be empty or a cache.
        key : str
            Hash of everything the features depend on.
        stimulus_ids, image_sha256 : sequence of str
            Row order and image hashes.
        layers : list of dict
            ``{"name": ..., "stage": ...}`` per layer, depth order.
        provenance : dict
            JSON-serialisable description of the extraction.
        inputs : dict, optional
            ``{"files": [{"path", "sha256"}...]}``: files re-checked when loading.

        Returns
        -------
        CacheWriter
        """
        path = Path(path)
        ids = np.asarray(list(stimulus_ids), dtype=str)
        if path.exists() and not path.is_dir():
            raise NeuralignError("exists and is not a cache folder; refusing to overwrite",
                                 path=path)
        if path.is_dir() and (path / MANIFEST).is_file():
            m = read_manifest(path)
            if m.get("state") == "partial" and m.get("key") == key and (path / PROGRESS).is_file():
                prog = read_json(path / PROGRESS, what="cache progress")
                old = load_strings(path / IDS, m["n_stimuli"]) if (path / IDS).is_file() else None
                if prog.get("key") == key and old is not None and np.array_equal(old, ids):
                    return cls(path, m, rows_done=int(prog.get("rows_done", 0)),
                               failed=[int(r) for r in prog.get("failed", [])])
            clear_cache_dir(path)
        elif path.is_dir() and any(path.iterdir()):
            raise NeuralignError("folder exists, is not empty and is not a feature cache; "
                                 "refusing to write into it", path=path)
        path.mkdir(parents=True, exist_ok=True)
        np.save(path / IDS, ids, allow_pickle=False)
        np.save(path / IMAGE_HASHES, np.asarray(list(image_sha256), dtype=str),
                allow_pickle=False)
        manifest = {
            "format": FORMAT, "state": "partial", "key": key, "n_stimuli": int(ids.size),
            "layers": [{**lay, "file": layer_file(i), "shape": None, "dtype": "float32",
                        "sha256": None} for i, lay in enumerate(layers)],
            "inputs": inputs or {"files": []}, "provenance": provenance,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        _write_json(path / MANIFEST, manifest)
        w = cls(path, manifest)
        w.commit(0)
        return w

    @property
    def n_stimuli(self) -> int:
        """Rows of every layer."""
        return int(self.manifest["n_stimuli"])

    @property
    def layer_names(self) -> list[str]:
        """Layer names in depth order."""
        return [lay["name"] for lay in self.manifest["layers"]]

    def _map(self, i: int, width: int) -> np.memmap:
        if i in self._maps:
            return self._maps[i]
        rec = self.manifest["layers"][i]
        f = self.path / rec["file"]
        shape = (self.n_stimuli, int(width))
        if rec.get("shape") is not None and f.is_file():
            if tuple(rec["shape"]) != shape:
                raise NeuralignError(f"layer {rec['name']!r} is {width} wide, the partial cache "
                                     f"says {rec['shape'][1]}", path=self.path)
            mm = open_memmap(f, mode="r+")
        else:
            mm = open_memmap(f, mode="w+", dtype=np.float32, shape=shape)
            rec["shape"] = list(shape)
            _write_json(self.path / MANIFEST, self.manifest)
        self._maps[i] = mm
        return mm

    # ------------------------------------------------------------------ writing
    def write(self, start: int, rows: dict[str, np.ndarray]) -> None:
        """Write rows ``[start, start + b)`` of the layers in ``rows`` (name -> (b, D))."""
        index = {n: i for i, n in enumerate(self.layer_names)}
        for name, a in rows.items():
            a = np.asarray(a, dtype=np.float32)
            if a.ndim != 2:
                raise NeuralignError(f"layer {name!r}: rows must be (b, D), got {a.shape}")
            mm = self._map(index[name], a.shape[1])
            mm[start:start + a.shape[0]] = a

    def commit(self, rows_done: int, *, failed: list[int] | None = None) -> None:
        """Flush the memory maps, then record ``rows_done`` (atomically)."""
        for mm in self._maps.values():
            mm.flush()
        if failed:
            self.failed = sorted(set(self.failed) | {int(r) for r in failed})
        self.rows_done = int(rows_done)
        _write_json(self.path / PROGRESS, {"key": self.manifest["key"], "rows_done": self.rows_done,
                                           "failed": self.failed,
                                           "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z")})

    def layer_view(self, i: int) -> np.ndarray:
        """Layer ``i`` as written so far (a read-write memory map)."""
        rec = self.manifest["layers"][i]
        if rec.get("shape") is None:
            raise NeuralignError(f"layer {rec['name']!r} has no rows yet", path=self.path)
        return self._map(i, rec["shape"][1])

    def finalize(self, *, provenance: dict | None = None,
                 extra_files: dict[str, np.ndarray] | None = None) -> Path:
        """Drop failed rows, hash every layer, mark the cache complete.

        Parameters
        ----------
        provenance : dict, optional
            Merged into the manifest's provenance.
        extra_files : dict, optional
            File name -> array saved next to the layers (e.g. PCA components).

        Returns
        -------
        Path
            The cache folder.
        """
        if self.rows_done < self.n_stimuli:
            raise NeuralignError(f"cannot finalize: {self.rows_done} of {self.n_stimuli} rows "
                                 "written", path=self.path)
        missing = [lay["name"] for lay in self.manifest["layers"] if lay.get("shape") is None]
        if missing:
            raise NeuralignError(f"cannot finalize: no rows for layers {missing[:3]}",
                                 path=self.path)
        for mm in self._maps.values():
            mm.flush()
        self._maps.clear()
        if self.failed:
            self._drop_rows(self.failed)
        for name, a in (extra_files or {}).items():
            np.save(self.path / name, np.asarray(a), allow_pickle=False)
        for lay in self.manifest["layers"]:
            a = np.load(self.path / lay["file"], mmap_mode="r", allow_pickle=False)
            lay["sha256"] = array_sha256(a)
            del a
        m = self.manifest
        m["provenance"] = {**m.get("provenance", {}), **(provenance or {})}
        m["state"] = "complete"
        m["completed"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        m["extra_files"] = sorted(extra_files or {})
        _write_json(self.path / MANIFEST, m)
        (self.path / PROGRESS).unlink(missing_ok=True)
        return self.path

    def _drop_rows(self, rows: list[int]) -> None:
        keep = np.ones(self.n_stimuli, dtype=bool)
        keep[np.asarray(rows, dtype=np.int64)] = False
        n = int(keep.sum())
        if n == 0:
            raise NeuralignError("no stimulus could be processed", path=self.path)
        for name in (IDS, IMAGE_HASHES):
            a = np.load(self.path / name, allow_pickle=False)
            np.save(self.path / name, a[keep], allow_pickle=False)
        idx = np.nonzero(keep)[0]
        for lay in self.manifest["layers"]:
            src = np.load(self.path / lay["file"], mmap_mode="r", allow_pickle=False)
            tmp = self.path / (lay["file"] + ".tmp")
            dst = open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, src.shape[1]))
            step = max(1, (64 << 20) // max(1, src.shape[1] * 4))
            for s in range(0, n, step):
                dst[s:s + step] = src[idx[s:s + step]]
            dst.flush()
            del dst, src
            os.replace(tmp, self.path / lay["file"])
            lay["shape"] = [n, lay["shape"][1]]
        self.manifest["n_stimuli"] = n
        self.manifest["dropped_rows"] = len(rows)
        self.failed = []


def clear_cache_dir(path: str | Path) -> None:
    """Remove the files of a cache folder (only the cache's own files and folders)."""
    path = Path(path)
    for p in path.iterdir():
        if p.name in (MANIFEST, PROGRESS, IDS, IMAGE_HASHES) or (
                p.suffix in (".npy", ".tmp") and p.name.startswith(("layer_", "pca_"))):
            p.unlink()
        elif p.is_dir() and p.name == "raw" and (p / MANIFEST).is_file():
            shutil.rmtree(p)

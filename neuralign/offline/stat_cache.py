"""A cache of analysis statistics keyed on what they depend on (data, features, options).

Permutation nulls and bootstrap resamples are the slow part of a single-subject analysis. The
statistics are a pure function of the epochs, the features and the settings, so a re-run
with the same inputs reads them back. The key is a BLAKE2 digest of:

- the epochs (values, stimulus ids, time axis, channel names, test set);
- every feature file's bytes (not its path: a copied file hits the cache, an edited one does
  not);
- every setting the maps or the statistics depend on.

An entry is a folder ``<cache>/<key>/`` with ``meta.json`` and ``arrays.npz`` (read with
``allow_pickle=False``), written to a temporary name and renamed, so a broken run leaves no
half entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..align.data import jsonable

#: Format of an entry; bump when what is stored changes.
CACHE_VERSION = 2


def default_cache_dir() -> Path:
    """``$NEURALIGN_CACHE/analyze``, else ``$XDG_CACHE_HOME/neuralign/analyze`` (or ``~/.cache``)."""
    root = os.environ.get("NEURALIGN_CACHE")
    if root:
        return Path(root) / "analyze"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "neuralign" / "analyze"


def _update_array(h, a) -> None:
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    if a.dtype.kind in "OUS":
        h.update("\x00".join(map(str, a.ravel().tolist())).encode())
    else:
        h.update(memoryview(a).cast("B"))


def data_digest(data) -> str:
    """Digest of an :class:`~neuralign.base.EpochData` (values, ids, axes, test set).

    Parameters
    ----------
    data : EpochData
        The epochs.

    Returns
    -------
    str
        Hex digest.
    """
    h = hashlib.blake2b(digest_size=20)
    for a in (data.epochs, data.stimulus_ids, data.times, np.asarray(data.ch_names, str),
              np.asarray(sorted(data.test_ids or []), str)):
        _update_array(h, a)
    h.update(b"test" if data.test_ids is not None else b"cv")
    return h.hexdigest()


def file_digest(path: str | Path) -> str:
    """Digest of a file's bytes, or of every file of a folder (a feature cache), in order.

    Parameters
    ----------
    path : str | Path
        The feature file or folder.

    Returns
    -------
    str
        Hex digest.
    """
    p = Path(path)
    h = hashlib.blake2b(digest_size=20)
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    for f in files:
        h.update(f.relative_to(p).as_posix().encode() if p.is_dir() else b"file")
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def cache_key(*, data: str, features: dict[str, str], settings: dict) -> str:
    """The key of one analysis' statistics.

    Parameters
    ----------
    data : str
        :func:`data_digest` of the epochs.
    features : dict of str to str
        Label -> :func:`file_digest` of its features.
    settings : dict
        Every setting the maps and statistics depend on (JSON-serialisable).

    Returns
    -------
    str
        Hex digest.
    """
    text = json.dumps({"version": CACHE_VERSION, "data": data, "features": features,
                       "settings": jsonable(settings)}, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


class StatCache:
    """Statistics stored by key under ``root``.

    Parameters
    ----------
    root : str | Path
        Cache folder (created on the first :meth:`put`).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def get(self, key: str) -> tuple[dict, dict[str, np.ndarray]] | None:
        """``(meta, arrays)`` of ``key``, or None when absent or unreadable.

        Parameters
        ----------
        key : str
            :func:`cache_key`.
        """
        d = self.root / key
        try:
            meta = json.loads((d / "meta.json").read_text())
            with np.load(d / "arrays.npz", allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError):
            return None
        if meta.get("version") != CACHE_VERSION:
            return None
        return meta, arrays

    def put(self, key: str, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
        """Store an entry (atomically: written aside, then renamed).

        Parameters
        ----------
        key : str
            :func:`cache_key`.
        meta : dict
            JSON content.
        arrays : dict of str to ndarray
            Arrays (no objects).

        Returns
        -------
        Path
            The entry's folder.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.root))
        (tmp / "meta.json").write_text(json.dumps(jsonable({**meta, "version": CACHE_VERSION})))
        np.savez_compressed(tmp / "arrays.npz", **arrays)
        dst = self.root / key
        if dst.exists():
            shutil.rmtree(dst, ignore_errors=True)
        try:
            tmp.replace(dst)
        except OSError:  # a concurrent run stored it first
            shutil.rmtree(tmp, ignore_errors=True)
        return dst

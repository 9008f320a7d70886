"""Content hashes used to tie cached features to their inputs (files, arrays).

Everything streams: a file or a memory-mapped array is hashed block by block, never read
whole into memory.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

CHUNK = 1 << 20
# (path, size, mtime_ns, ctime_ns, inode) -> digest: a file is read once per process while it
# is unchanged (model files of many GB are hashed when extracting and again when loading)
_MEMO: dict[tuple, str] = {}


def file_sha256(path: str | Path, *, chunk: int = CHUNK) -> str:
    """sha256 hex digest of a file's bytes (remembered in this process while the file's size,
    times and inode are unchanged).

    Parameters
    ----------
    path : str or Path
        The file.
    chunk : int
        Bytes read at a time.

    Returns
    -------
    str
        64 hex digits.
    """
    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if key in _MEMO:
        return _MEMO[key]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    _MEMO[key] = h.hexdigest()
    return _MEMO[key]


def array_sha256(a: np.ndarray, *, block_bytes: int = 64 * CHUNK) -> str:
    """sha256 of an array's shape, dtype and bytes (C order), read in row blocks.

    A memory-mapped array is hashed without being read into memory at once.

    Parameters
    ----------
    a : ndarray or numpy.memmap
        The array (any shape; the first axis is the one read in blocks).
    block_bytes : int
        About this many bytes are read per block.

    Returns
    -------
    str
        64 hex digits; equal for equal (shape, dtype, values).
    """
    h = hashlib.sha256(f"{tuple(a.shape)}|{np.dtype(a.dtype).str}|".encode())
    if a.ndim == 0 or a.shape[0] == 0:
        h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()
    row_bytes = max(1, a.nbytes // a.shape[0])
    step = max(1, block_bytes // row_bytes)
    for start in range(0, a.shape[0], step):
        h.update(np.ascontiguousarray(a[start:start + step]).tobytes())
    return h.hexdigest()


def json_key(parts: dict, pairs: dict[str, str]) -> str:
    """sha256 of the JSON of ``parts`` (sorted keys) and of every ``(name, digest)`` pair.

    Parameters
    ----------
    parts : dict
        JSON-serialisable settings.
    pairs : dict of str to str
        E.g. stimulus id -> image sha256, in a stable order.

    Returns
    -------
    str
        64 hex digits.
    """
    import json

    h = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode())
    for name, digest in pairs.items():
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()

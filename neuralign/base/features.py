"""Per-layer model features of a set of stimuli: :class:`FeatureSet`.

A layer's array may be an in-memory array, a read-only ``numpy.memmap``, or a
:class:`LayerFile` (the per-layer feature cache): nothing here reads a whole layer unless asked
to, so a 32-layer x 16,740 x 4096 cache (8.8 GB) can be opened on a machine with less memory
than that and processed one layer at a time. A :class:`LayerFile` maps its file only while a
read runs, so the pages of layers already processed do not stay in the process's resident
memory (a plain memory map keeps every page it ever touched).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import NeuralignError, few


class LayerFile:
    """One layer stored as a 2-D ``.npy`` file, read on demand (never with pickles).

    Indexing (``layer[rows]``, ``layer[a:b]``) maps the file, copies what is asked for and
    unmaps it; ``numpy.asarray(layer)`` reads it whole. The file stays open, so the layer is
    the one that was opened even if a new file later replaces it at the same path.

    Parameters
    ----------
    path : str or Path
        The ``.npy`` file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._open()

    def _open(self) -> None:
        fh = open(self.path, "rb")  # noqa: SIM115 - held for the object's life
        try:
            fmt = np.lib.format
            version = fmt.read_magic(fh)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran, dtype = read(fh)
        except ValueError:
            fh.close()
            raise
        if fortran or dtype.hasobject:
            fh.close()
            raise ValueError(f"{self.path}: not a C-ordered numeric array")
        self._fh, self._offset = fh, fh.tell()
        self.shape = tuple(int(x) for x in shape)
        self.dtype = np.dtype(dtype)

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.path = Path(state["path"])
        self._open()

    @property
    def ndim(self) -> int:
        """Number of dimensions (2)."""
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of the stored array."""
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        if 0 in self.shape:
            return np.zeros(self.shape, self.dtype)[key]
        a = np.memmap(self._fh, dtype=self.dtype, mode="r", offset=self._offset,
                      shape=self.shape)
        try:
            return np.array(a[key])
        finally:
            del a

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def astype(self, dtype) -> np.ndarray:
        """The whole layer read into memory as ``dtype``."""
        return self[:].astype(dtype)

    def __repr__(self) -> str:
        return f"LayerFile({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"


@dataclass(frozen=True)
class FeatureSet:
    """Per-layer features of one model for a set of stimuli.

    Parameters
    ----------
    stimulus_ids : array of str, shape (N,)
        Stimulus ids, unique.
    layers : tuple of str
        Layer names in depth order.
    arrays : tuple of ndarray or LayerFile
        One ``(N, D_l)`` float array per layer, rows in ``stimulus_ids`` order. Arrays may be
        memory-mapped or :class:`LayerFile`; they are never copied here.
    provenance : dict
        Where the features come from (model, pooling, PCA, hashes...). JSON-serialisable.
    """

    stimulus_ids: np.ndarray
    layers: tuple[str, ...]
    arrays: tuple[np.ndarray, ...]
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        ids = np.asarray(self.stimulus_ids).astype(str)
        object.__setattr__(self, "stimulus_ids", ids)
        object.__setattr__(self, "layers", tuple(str(x) for x in self.layers))
        arrays = tuple(a if isinstance(a, np.ndarray | LayerFile) else np.asarray(a)
                       for a in self.arrays)
        object.__setattr__(self, "arrays", arrays)
        if ids.ndim != 1:
            raise NeuralignError(f"stimulus_ids must be 1-D, got shape {ids.shape}")
        index = {s: i for i, s in enumerate(ids.tolist())}
        if len(index) != ids.size:
            raise NeuralignError("stimulus_ids contain duplicates")
        if len(self.layers) != len(arrays) or not arrays:
            raise NeuralignError(
                f"{len(self.layers)} layer names for {len(arrays)} feature arrays"
            )
        for name, a in zip(self.layers, arrays):
            if a.ndim != 2 or a.shape[0] != ids.size:
                raise NeuralignError(
                    f"layer {name!r}: features must be (n_stimuli={ids.size}, D), got {a.shape}"
                )
        object.__setattr__(self, "_index", index)

    @property
    def index(self) -> Mapping[str, int]:
        """Read-only mapping stimulus id -> row."""
        return self._index  # type: ignore[attr-defined]

    @property
    def n_stimuli(self) -> int:
        """Number of stimuli (rows)."""
        return int(self.stimulus_ids.size)

    @property
    def n_layers(self) -> int:
        """Number of layers."""
        return len(self.layers)

    @property
    def dims(self) -> tuple[int, ...]:
        """Feature width of every layer."""
        return tuple(int(a.shape[1]) for a in self.arrays)

    @property
    def nbytes(self) -> int:
        """Bytes of all layers' arrays (on disk for memory-mapped layers)."""
        return int(sum(a.nbytes for a in self.arrays))

    def __contains__(self, stimulus_id: str) -> bool:
        return stimulus_id in self.index

    def index_of(self, stimulus_ids: Sequence[str], *, source: str | None = None) -> np.ndarray:
        """Row indices of ``stimulus_ids``; a clear error names the missing ones.

        Parameters
        ----------
        stimulus_ids : sequence of str
            Ids to look up.
        source : str, optional
            What the ids come from, for the error message (e.g. ``"the EEG"``).

        Returns
        -------
        ndarray of int64
            One row per id, in order.
        """
        index = self.index
        missing = [s for s in stimulus_ids if s not in index]
        if missing:
            where = f" of {source}" if source else ""
            raise NeuralignError(
                f"{len(missing)} stimulus id(s){where} are not in the features: {few(missing)}"
            )
        return np.array([index[s] for s in stimulus_ids], dtype=np.int64)

    def rows(self, stimulus_ids: Sequence[str]) -> np.ndarray:
        """Row of each id, ``-1`` for ids that are not in the features (no error)."""
        index = self.index
        return np.fromiter((index.get(str(s), -1) for s in stimulus_ids), dtype=np.int64,
                           count=len(stimulus_ids))

    def layer(self, i: int, rows: np.ndarray | None = None, *,
              dtype: str | np.dtype | None = None) -> np.ndarray:
        """Features of layer ``i`` (all rows, or ``rows``), read into memory.

        Parameters
        ----------
        i : int
            Layer index (depth order).
        rows : array of int, optional
            Rows to read; default all.
        dtype : dtype, optional
            Convert to this dtype (default: keep the stored one).

        Returns
        -------
        ndarray, shape (n_rows, D_i)
        """
        a = self.arrays[i]
        out = a if rows is None else a[np.asarray(rows, dtype=np.int64)]
        return np.array(out, dtype=dtype or out.dtype, copy=True)

    def subset(self, stimulus_ids: Sequence[str]) -> FeatureSet:
        """The features of ``stimulus_ids`` only, in that order (read into memory)."""
        idx = self.index_of(stimulus_ids)
        return FeatureSet(
            np.asarray(self.stimulus_ids)[idx],
            self.layers,
            tuple(np.asarray(a[idx]) for a in self.arrays),
            dict(self.provenance),
        )

    def check_finite(self, *, source: str | Path | None = None, block_rows: int = 4096) -> None:
        """Refuse NaN/Inf features, naming the layer (reads memory-mapped layers in blocks)."""
        for name, a in zip(self.layers, self.arrays):
            bad_rows: list[np.ndarray] = []
            for start in range(0, a.shape[0], block_rows):
                blk = np.asarray(a[start:start + block_rows])
                bad = ~np.isfinite(blk).all(axis=1)
                if bad.any():
                    bad_rows.append(np.nonzero(bad)[0] + start)
            if bad_rows:
                rows = np.concatenate(bad_rows)
                raise NeuralignError(
                    f"layer {name!r} has NaN/Inf features for {rows.size} stimuli "
                    f"(e.g. {few(self.stimulus_ids[rows])})",
                    path=source,
                )


READ_ROWS = 4096  # rows read from a (memory-mapped) layer at a time


def mean_sd(a, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over ``rows`` of a (possibly memory-mapped) array, blockwise."""
    if rows.size == 0:
        rows = np.arange(a.shape[0])
    s = np.zeros(a.shape[1])
    ss = np.zeros(a.shape[1])
    for start in range(0, rows.size, READ_ROWS):
        blk = np.asarray(a[rows[start:start + READ_ROWS]], dtype=float)
        s += blk.sum(0)
    mu = s / rows.size
    for start in range(0, rows.size, READ_ROWS):
        blk = np.asarray(a[rows[start:start + READ_ROWS]], dtype=float) - mu
        ss += (blk * blk).sum(0)
    sd = np.sqrt(ss / rows.size)
    sd[sd == 0] = 1.0
    return mu, sd

"""NumPy backend: the default."""

from __future__ import annotations

import numpy as np

name = "numpy"


def asarray(x, dtype="float64"):
    return np.asarray(x, dtype=dtype)


def to_numpy(x) -> np.ndarray:
    return np.asarray(x)


def eigh(a):
    """Batched symmetric eigendecomposition: (..., D, D) -> (eigenvalues, eigenvectors)."""
    return np.linalg.eigh(a)


def swapaxes(x, a: int, b: int):
    return np.swapaxes(x, a, b)


def clip_min(x, lo: float):
    return np.maximum(x, lo)


def argmin(x, axis: int):
    return np.argmin(x, axis=axis)


def take_along_axis(x, idx, axis: int):
    return np.take_along_axis(x, idx, axis=axis)


def sum(x, axis: int):  # noqa: A001 - same name in every backend
    return np.sum(x, axis=axis)


def index_asarray(x):
    return np.asarray(x, dtype=np.int64)


def einsum(subscripts: str, *operands):
    return np.einsum(subscripts, *operands, optimize=False)


def astype(x, dtype: str):
    """``x`` in ``dtype`` (no copy when it already is)."""
    return np.asarray(x, dtype=dtype)


def ones(n: int, dtype: str = "float64"):
    return np.ones(n, dtype=dtype)


def zeros(shape, dtype: str = "float64"):
    return np.zeros(shape, dtype=dtype)


def mean(x, axis: int):
    return np.mean(x, axis=axis)


def sqrt(x):
    return np.sqrt(x)

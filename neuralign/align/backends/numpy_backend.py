"""NumPy backend: the default."""

from __future__ import annotations

import numpy as np

name = "numpy"


def asarray(x, dtype="float64"):
    """``x`` as a backend array of ``dtype``."""
    return np.asarray(x, dtype=dtype)


def to_numpy(x) -> np.ndarray:
    """A NumPy copy (or view) of backend array ``x``."""
    return np.asarray(x)


def eigh(a):
    """Batched symmetric eigendecomposition: (..., D, D) -> (eigenvalues, eigenvectors)."""
    return np.linalg.eigh(a)


def swapaxes(x, a: int, b: int):
    """``x`` with axes ``a`` and ``b`` swapped."""
    return np.swapaxes(x, a, b)


def clip_min(x, lo: float):
    """``max(x, lo)`` elementwise."""
    return np.maximum(x, lo)


def argmin(x, axis: int):
    """Index of the minimum along ``axis``."""
    return np.argmin(x, axis=axis)


def take_along_axis(x, idx, axis: int):
    """Values of ``x`` at ``idx`` along ``axis``."""
    return np.take_along_axis(x, idx, axis=axis)


def sum(x, axis: int):  # noqa: A001 - same name in every backend
    """Sum along ``axis``."""
    return np.sum(x, axis=axis)


def index_asarray(x):
    """``x`` as a backend int64 index array."""
    return np.asarray(x, dtype=np.int64)


def einsum(subscripts: str, *operands):
    """Einstein summation (no path optimisation)."""
    return np.einsum(subscripts, *operands, optimize=False)


def astype(x, dtype: str):
    """``x`` in ``dtype`` (no copy when it already is)."""
    return np.asarray(x, dtype=dtype)


def ones(n: int, dtype: str = "float64"):
    """A 1-D array of ``n`` ones."""
    return np.ones(n, dtype=dtype)


def zeros(shape, dtype: str = "float64"):
    """An array of zeros of ``shape``."""
    return np.zeros(shape, dtype=dtype)


def mean(x, axis: int):
    """Mean along ``axis``."""
    return np.mean(x, axis=axis)


def sqrt(x):
    """Elementwise square root."""
    return np.sqrt(x)

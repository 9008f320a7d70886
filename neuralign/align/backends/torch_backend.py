"""torch backend: CUDA when available, else CPU. Same function names as numpy_backend."""

from __future__ import annotations

import numpy as np
import torch

name = "torch"
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def asarray(x, dtype="float64"):
    """``x`` as a backend array of ``dtype``."""
    return torch.as_tensor(np.asarray(x), dtype=_DTYPES[str(dtype)], device=device)


def to_numpy(x) -> np.ndarray:
    """A NumPy copy (or view) of backend array ``x``."""
    return x.detach().cpu().numpy()


def eigh(a):
    """Batched symmetric eigendecomposition: (..., D, D) -> (eigenvalues, eigenvectors)."""
    return torch.linalg.eigh(a)


def swapaxes(x, a: int, b: int):
    """``x`` with axes ``a`` and ``b`` swapped."""
    return torch.transpose(x, a, b)


def clip_min(x, lo: float):
    """``max(x, lo)`` elementwise."""
    return torch.clamp(x, min=lo)


def argmin(x, axis: int):
    """Index of the minimum along ``axis``."""
    return torch.argmin(x, dim=axis)


def take_along_axis(x, idx, axis: int):
    """Values of ``x`` at ``idx`` along ``axis``."""
    return torch.take_along_dim(x, idx, dim=axis)


def sum(x, axis: int):  # noqa: A001 - same name in every backend
    """Sum along ``axis``."""
    return torch.sum(x, dim=axis)


def index_asarray(x):
    """``x`` as a backend int64 index array."""
    return torch.as_tensor(np.asarray(x), dtype=torch.int64, device=device)


def einsum(subscripts: str, *operands):
    """Einstein summation (no path optimisation)."""
    return torch.einsum(subscripts, *operands)


def astype(x, dtype: str):
    """``x`` in ``dtype`` on the backend's device (no copy when it already is)."""
    if isinstance(x, torch.Tensor):
        return x.to(dtype=_DTYPES[str(dtype)])
    return asarray(x, dtype)


def ones(n: int, dtype: str = "float64"):
    """A 1-D array of ``n`` ones."""
    return torch.ones(n, dtype=_DTYPES[str(dtype)], device=device)


def zeros(shape, dtype: str = "float64"):
    """An array of zeros of ``shape``."""
    return torch.zeros(shape, dtype=_DTYPES[str(dtype)], device=device)


def mean(x, axis: int):
    """Mean along ``axis``."""
    return torch.mean(x, dim=axis)


def sqrt(x):
    """Elementwise square root."""
    return torch.sqrt(x)

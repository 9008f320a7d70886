"""torch backend: CUDA when available, else CPU. Same function names as numpy_backend."""

from __future__ import annotations

import numpy as np
import torch

name = "torch"
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def asarray(x, dtype="float64"):
    return torch.as_tensor(np.asarray(x), dtype=_DTYPES[str(dtype)], device=device)


def to_numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy()


def eigh(a):
    return torch.linalg.eigh(a)


def swapaxes(x, a: int, b: int):
    return torch.transpose(x, a, b)


def clip_min(x, lo: float):
    return torch.clamp(x, min=lo)


def argmin(x, axis: int):
    return torch.argmin(x, dim=axis)


def take_along_axis(x, idx, axis: int):
    return torch.take_along_dim(x, idx, dim=axis)


def sum(x, axis: int):  # noqa: A001 - same name in every backend
    return torch.sum(x, dim=axis)


def index_asarray(x):
    return torch.as_tensor(np.asarray(x), dtype=torch.int64, device=device)


def einsum(subscripts: str, *operands):
    return torch.einsum(subscripts, *operands)


def astype(x, dtype: str):
    """``x`` in ``dtype`` on the backend's device (no copy when it already is)."""
    if isinstance(x, torch.Tensor):
        return x.to(dtype=_DTYPES[str(dtype)])
    return asarray(x, dtype)


def ones(n: int, dtype: str = "float64"):
    return torch.ones(n, dtype=_DTYPES[str(dtype)], device=device)


def zeros(shape, dtype: str = "float64"):
    return torch.zeros(shape, dtype=_DTYPES[str(dtype)], device=device)


def mean(x, axis: int):
    return torch.mean(x, dim=axis)


def sqrt(x):
    return torch.sqrt(x)

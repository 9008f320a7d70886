"""torch backend pinned to CUDA (refuses to run without a GPU)."""

from __future__ import annotations

import torch

from ...errors import NeuralignError

if not torch.cuda.is_available():
    raise ImportError("torch_cuda backend: no CUDA device is available")

from .torch_backend import *  # noqa: E402,F403
from .torch_backend import device  # noqa: E402,F401

name = "torch_cuda"
_ = NeuralignError

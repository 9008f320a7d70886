"""Array backends with the same function names (himalaya-style), chosen in one place.

The heavy linear algebra of the engine (eigendecompositions and products of the ridge refresh)
is written once against these functions; :func:`get_backend` picks NumPy (default) or torch
(CPU or CUDA). Accumulation and bookkeeping stay in NumPy.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from ...errors import NeuralignError

BACKENDS = {
    "numpy": "neuralign.align.backends.numpy_backend",
    "torch": "neuralign.align.backends.torch_backend",
    "torch_cuda": "neuralign.align.backends.torch_backend",
}


def get_backend(name: str = "numpy") -> ModuleType:
    """Return the backend module ``name`` (``numpy``, ``torch`` or ``torch_cuda``).

    ``torch`` runs on CUDA when a GPU is available and on the CPU otherwise;
    ``torch_cuda`` refuses to run without a GPU.
    """
    if name not in BACKENDS:
        raise NeuralignError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name != "numpy" and importlib.util.find_spec("torch") is None:
        raise NeuralignError(f"backend {name!r} needs torch: pip install 'neuralign[export]'")
    mod = importlib.import_module(BACKENDS[name])
    if name == "torch_cuda" and mod.device.type != "cuda":
        raise NeuralignError("backend 'torch_cuda': no CUDA device is available "
                             "(use 'torch', which runs on the CPU here)")
    return mod

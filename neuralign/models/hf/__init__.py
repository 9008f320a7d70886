"""Export of local Hugging Face model folders (torch + transformers; export time only).

- :mod:`.folder`: family from ``config.json``, preprocessing, loading, tokenizer
- :mod:`.lvlm`: how each LVLM family produces vision states, image tokens and decoder states
- :mod:`.parts`: the torch modules that become graphs, and the layer records
- :mod:`.export`: :func:`export_hf` (ONNX where ONNX Runtime runs it, torch parts elsewhere)
- :mod:`.verify`: the check against the full torch model
"""

from __future__ import annotations

from .export import TOLERANCE, export_hf

__all__ = ["TOLERANCE", "export_hf"]

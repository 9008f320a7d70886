"""The torch-eager runner for parts ONNX Runtime cannot run.

A graph entry with ``"runtime": "torch"`` is rebuilt from the Hugging Face folder recorded at
export (``info["source"]``) with the same :func:`~neuralign.models.hf.parts.build_parts` the
exporter used, so the torch part computes what the ONNX graph would. Imports torch and
transformers (the ``export`` extra).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import NeuralignError
from .spec import ModelSpec

_BUILDS: dict[str, object] = {}


def _key(spec: ModelSpec) -> str:
    return json.dumps([str(spec.info.get("source")), spec.family, spec.info.get("image_size"),
                       spec.info.get("geometry")], sort_keys=True)


def register_build(spec: ModelSpec, build) -> None:
    """Reuse an already built model for ``spec`` (the exporter verifies with it)."""
    _BUILDS[_key(spec)] = build


def _build(spec: ModelSpec):
    key = _key(spec)
    if key not in _BUILDS:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise NeuralignError(
                f"model {spec.name!r} has parts that run with torch (ONNX Runtime cannot run "
                "them): install the export extra (pip install -e '.[export]')",
                path=spec.root) from None
        from .hf.folder import load_model
        from .hf.parts import build_parts, model_class

        src = Path(str(spec.info.get("source", "")))
        if not (src / "config.json").is_file():
            raise NeuralignError(
                f"the torch-run parts of this model need its Hugging Face folder {src}, "
                "which is not there any more", path=spec.root)
        model = load_model(src, model_class(spec.family))
        _BUILDS[key] = build_parts(model, spec.family, size=int(spec.info["image_size"]),
                                   geometry=spec.info.get("geometry") or {})
    return _BUILDS[key]


class TorchGraph:
    """One part of a spec run with torch eager (same interface as an ONNX graph).

    Parameters
    ----------
    spec : ModelSpec
        The exported model.
    part : str
        The part's name (``vision``, ``llm``...).
    threads : int, optional
        torch intra-op threads.
    """

    def __init__(self, spec: ModelSpec, part: str, *, threads: int | None = None) -> None:
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        build = _build(spec)
        parts = {p.name: p for p in build.parts}
        if part not in parts:
            raise NeuralignError(f"model has no part {part!r}", path=spec.root)
        self.part = parts[part]
        self.output_names = list(self.part.outputs)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.part.module.to(self.device)

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Outputs by name, computed with torch."""
        import torch

        args = [torch.from_numpy(np.ascontiguousarray(feeds[n])).to(self.device)
                for n in self.part.inputs]
        with torch.inference_mode():
            res = self.part.module(*args)
        by_name = dict(zip(self.output_names, res))
        return [by_name[o].detach().float().cpu().numpy() for o in outputs]

"""torch -> ONNX export of a module that returns pooled layer outputs, checked against torch.

Export-time only (imports torch, onnx, onnxruntime).
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import warnings
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

import numpy as np

from ..errors import NeuralignError


@contextmanager
def quiet_stderr():
    """Silence file descriptor 2 (the exporters print whole graphs on failure)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def export_module(
    module,
    example: tuple,
    path: str | Path,
    *,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict | None = None,
    opset: int = 17,
) -> str:
    """Export ``module(*example)`` (a tuple of tensors out) to ``path`` with the legacy
    TorchScript exporter (fast, works for ViT/CLIP/LLaVA/Qwen2-VL here); falls back to the
    dynamo exporter when the legacy one fails.

    Parameters
    ----------
    module : torch.nn.Module
        Returns a tuple of tensors.
    example : tuple of Tensor
        Example inputs.
    path : str or Path
        The ``.onnx`` file to write.
    input_names, output_names : list of str
        Graph input and output names.
    dynamic_axes : dict, optional
        Name -> {axis: symbolic name}; None: all shapes fixed.
    opset : int
        ONNX opset of the legacy exporter (the dynamo one uses at least 18).

    Returns
    -------
    str
        The exporter used (``torchscript`` or ``dynamo``).
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    axes = dynamic_axes or None
    module.eval()
    with torch.no_grad(), warnings.catch_warnings(), redirect_stdout(io.StringIO()), \
            quiet_stderr():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                module, example, str(path), input_names=input_names,
                output_names=output_names, dynamic_axes=axes, opset_version=opset,
                dynamo=False, do_constant_folding=True,
            )
            exporter = "torchscript"
        except Exception as legacy_error:  # noqa: BLE001 - try the other exporter
            try:
                dyn = None
                if axes:
                    dims: dict[str, object] = {}
                    dyn = tuple(
                        {ax: dims.setdefault(nm, torch.export.Dim(nm, min=0 if "image" in nm
                                                                  else 1, max=1 << 16))
                         for ax, nm in axes.get(n, {}).items()} or None
                        for n in input_names)
                prog = torch.onnx.export(
                    module, example, input_names=input_names, output_names=output_names,
                    dynamic_shapes=dyn, opset_version=max(opset, 18), dynamo=True,
                )
                prog.save(str(path))
                exporter = "dynamo"
            except Exception as e:
                raise NeuralignError(
                    f"ONNX export failed (legacy: {type(legacy_error).__name__}: "
                    f"{str(legacy_error)[:120]}; dynamo: {type(e).__name__}: {str(e)[:120]})"
                ) from e
    return exporter


def verify_export(module, inputs: tuple, path: str | Path, *, input_names: list[str],
                  output_names: list[str]) -> float:
    """Max abs difference between torch ``module(*inputs)`` and ONNX Runtime on ``path``.

    Parameters
    ----------
    module : torch.nn.Module
        The exported module.
    inputs : tuple of Tensor
        Inputs (may differ in shape from the export example along dynamic axes).
    path : str or Path
        The ``.onnx`` file.
    input_names, output_names : list of str
        As exported.

    Returns
    -------
    float
    """
    import onnxruntime as ort
    import torch

    with torch.no_grad():
        ref = module(*inputs)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    feed_names = [i.name for i in sess.get_inputs()]
    feeds = {n: t.detach().cpu().numpy() for n, t in zip(input_names, inputs) if n in feed_names}
    got = sess.run(output_names, feeds)
    return float(max(np.max(np.abs(r.detach().cpu().numpy() - g)) for r, g in zip(ref, got)))

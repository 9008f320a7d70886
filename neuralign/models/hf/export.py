"""Export a local Hugging Face model folder: every part to ONNX (or, where ONNX Runtime cannot
run it, to a torch-eager part), the tokenizer, and ``neuralign_model.json``.

Each part is exported with the legacy TorchScript exporter (the dynamo one as fallback), loaded
and run in ONNX Runtime on the example inputs and compared with torch. A part that cannot be
exported, loaded or run (the reason, which names the operator, is recorded) becomes a torch
part: features are features, ONNX is a speed-up, not a gate. The whole chain is then checked
against the *full* torch model (for LVLMs its forward on ``input_ids`` + images, for two
prompts of different lengths, and on a caption without image) and refused above
:data:`TOLERANCE`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ...errors import NeuralignError
from ..spec import ModelSpec, graph_sha256
from .folder import export_tokenizer, load_model, n_params, preprocessing, read_family
from .lvlm import LVLMS
from .parts import DUAL_CLASSES, build_parts, geometry_for, model_class

TOLERANCE = 1e-4
DEFAULT_PROMPT = "Describe the image."


def _first_line(e: BaseException) -> str:
    """The useful part of an exporter / ONNX Runtime error (its operator, not its path)."""
    import re

    text = str(e).strip().splitlines()
    line = text[0] if text else type(e).__name__
    line = re.sub(r"Load model from \S+ failed:", "", line)
    line = line.replace("[ONNXRuntimeError] : ", "").replace("This is an invalid model. ", "")
    return line[:300]


def _try_onnx(part, path: Path) -> tuple[str | None, str | None, float | None]:
    """Export ``part`` to ``path`` and check it in ONNX Runtime: (reason it cannot be used,
    exporter, max abs difference vs torch on the example)."""
    import onnxruntime as ort
    import torch

    from ..onnx_export import export_module

    names = list(part.inputs)
    try:
        exporter = export_module(part.module, part.example, path, input_names=names,
                                 output_names=part.outputs, dynamic_axes=part.dynamic_axes)
    except NeuralignError as e:
        return f"ONNX export failed: {e}", None, None
    so = ort.SessionOptions()
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - ORT's own exception types
        return f"ONNX Runtime cannot load the graph: {_first_line(e)}", exporter, None
    feeds = {n: t.numpy() for n, t in zip(names, part.example) if n in
             {i.name for i in sess.get_inputs()}}
    try:
        got = sess.run(part.outputs, feeds)
    except Exception as e:  # noqa: BLE001
        return f"ONNX Runtime cannot run the graph: {_first_line(e)}", exporter, None
    with torch.no_grad():
        ref = part.module(*part.example)
    diff = float(max(np.max(np.abs(r.numpy() - g)) for r, g in zip(ref, got)))
    if not np.isfinite(diff) or diff > TOLERANCE:
        return f"ONNX Runtime differs from torch by {diff:.3g}", exporter, diff
    return None, exporter, diff


def _prompt_info(model_dir: Path, family: str, model, build, tokenizer: str | None) -> dict:
    cfg = model.config
    info = {"default": DEFAULT_PROMPT, "add_special_tokens": False,
            "bos_token_id": getattr(cfg.get_text_config(), "bos_token_id", None)}
    if family in LVLMS:
        info.update(template=LVLMS[family].template,
                    image_token_id=build.info["image_token_id"],
                    n_image_tokens=build.info["n_image_tokens"])
    return info


def _text_info(family: str, model) -> dict:
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else None
    info = {"template": "<bos>{text}", "add_special_tokens": False,
            "bos_token_id": getattr(cfg, "bos_token_id", None)}
    if family == "clip":
        info.update(template="{text}", add_special_tokens=True)
    elif family == "siglip":
        info.update(template="{text}", add_special_tokens=True, pad_to=int(
            model.config.text_config.max_position_embeddings),
            pad_id=int(model.config.text_config.pad_token_id or 1))
    return info


def _cost(model, family: str, size: int, geometry: dict, build) -> int:
    """Working memory of one image (see :func:`~neuralign.models.batching.estimate_bytes_per_image`)."""
    from ..batching import estimate_bytes_per_image

    cfg = model.config
    v = getattr(cfg, "vision_config", cfg)
    patch = getattr(v, "patch_size", 16)
    patch = patch[0] if isinstance(patch, list | tuple) else patch
    tiles = 1
    if geometry.get("tiles"):
        rows, cols, tile = geometry["tiles"]
        tiles, size = 1 + rows * cols, tile
    width = int(getattr(v, "hidden_size", 0) or getattr(v, "embed_dim", 768))
    heads = int(getattr(v, "num_attention_heads", 0) or getattr(v, "num_heads", 12))
    stages = [(tiles * ((size // int(patch)) ** 2 + 1), width, heads)]
    if "n_image_tokens" in build.info:
        t = cfg.get_text_config()
        stages.append((build.info["n_image_tokens"] + 32, int(t.hidden_size),
                       int(t.num_attention_heads)))
    return estimate_bytes_per_image(stages)


def export_hf(model_dir: str | Path, out: str | Path, *, image_size: int | None = None,
              prompt: str | None = None, runtime: str = "auto") -> ModelSpec:
    """Export a local HF model folder into the folder ``out``.

    Parameters
    ----------
    model_dir : str or Path
        Folder with ``config.json``, weights and (for prompts and captions) the tokenizer.
    out : str or Path
        Output folder (graphs, ``tokenizer.json``, ``neuralign_model.json``).
    image_size : int, optional
        Image size of the graphs (default: the config's); for LLaVA-NeXT / OneVision the size
        of the square image whose anyres tile grid is exported (default: twice the tile).
    prompt : str, optional
        Default prompt recorded in the description (prompts are chosen at extraction).
    runtime : {"auto", "torch"}
        ``torch``: export every part as a torch part (no ONNX).

    Returns
    -------
    ModelSpec
    """
    if runtime not in ("auto", "torch"):
        raise NeuralignError(f"runtime must be 'auto' or 'torch', not {runtime!r}")
    model_dir = Path(model_dir)
    family, cfg = read_family(model_dir)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "neuralign_model.json").is_file():
        raise NeuralignError("output folder exists and is not an exported model; refusing to "
                             "write into it", path=out)
    import torch

    model = load_model(model_dir, model_class(family))
    try:
        size, geometry = geometry_for(model, family, image_size)
    except ValueError as e:
        raise NeuralignError(str(e), path=model_dir) from None
    with torch.no_grad():
        build = build_parts(model, family, size=size, geometry=geometry)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.onnx"):
        old.unlink()
    t0 = time.perf_counter()
    graphs = []
    for part in build.parts:
        entry = {"file": f"{part.name}.onnx", "part": part.name, "inputs": dict(part.inputs),
                 "outputs": list(part.outputs)}
        if part.static_batch:
            entry["static_batch"] = part.static_batch
        if part.text_defaults:
            entry["text_defaults"] = part.text_defaults
        path = out / entry["file"]
        if runtime == "torch":
            reason, exporter, diff = "asked for (--runtime torch)", None, None
        else:
            reason, exporter, diff = _try_onnx(part, path)
        if reason:
            path.unlink(missing_ok=True)
            entry.update(file=None, runtime="torch", reason=reason)
        else:
            entry.update(runtime="onnx", sha256=graph_sha256(path), exporter=exporter,
                         example_max_abs_diff=diff)
        graphs.append(entry)
    seconds = time.perf_counter() - t0
    tok, tok_note = (None, "vision encoder: no text input")
    if family in LVLMS or family in DUAL_CLASSES:
        tok, tok_note = export_tokenizer(model_dir, out)
    prep = preprocessing(model_dir, family, size)
    if geometry.get("tiles"):
        rows, cols, tile = geometry["tiles"]
        prep["tiles"] = {"grid": [rows, cols], "tile": tile}
    info = {"source": str(model_dir.resolve()), "model_type": cfg.get("model_type"),
            "n_params": n_params(model), "image_size": size, "geometry": geometry,
            "export_seconds": seconds, "tokenizer": tok, "tokenizer_note": tok_note,
            "bytes_per_image": _cost(model, family, size, geometry, build), **build.info}
    if family in LVLMS:
        info["prompt"] = _prompt_info(model_dir, family, model, build, tok)
        if prompt:
            info["prompt"]["default"] = prompt
    if family in LVLMS or family in DUAL_CLASSES:
        info["text"] = _text_info(family, model)
    torch_parts = [g["part"] for g in graphs if g["runtime"] == "torch"]
    notes = (f"{model_class(family)} from {model_dir}; stages "
             f"{', '.join(dict.fromkeys(lay['stage'] for lay in build.layers))}")
    if torch_parts:
        notes += f"; parts run with torch eager: {', '.join(torch_parts)}"
    spec = ModelSpec(name=model_dir.name, family=family, graphs=graphs, layers=build.layers,
                     preprocessing=prep, default_pooling=build.default_pooling, notes=notes,
                     info=info, root=out)
    from ..torch_parts import register_build
    from .verify import verify_spec

    register_build(spec, build)
    spec.verification = verify_spec(spec, model, build, geometry)
    spec.verification["tolerance"] = TOLERANCE
    diff = spec.verification["max_abs_diff"]
    if not np.isfinite(diff) or diff > TOLERANCE:
        raise NeuralignError(
            f"export check failed: the exported model differs from torch by {diff:.3g} "
            f"(> {TOLERANCE})", path=out)
    spec.write(out)
    return spec

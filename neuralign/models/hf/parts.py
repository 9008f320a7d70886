"""The parts of a Hugging Face model that become graphs, as torch modules with pooled outputs.

:func:`build_parts` returns, for a loaded model, the list of :class:`Part` (one ONNX graph
each, or one torch-run part where ONNX Runtime cannot run it) and the layer records of the
model description. The same function rebuilds the parts for the torch-eager runner, so ONNX
and torch compute the same thing by construction. Export-time and torch-fallback only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from . import lvlm

VISION_CLASSES = {"vit": ("ViTModel", 1), "clip_vision": ("CLIPVisionModel", 1),
                  "siglip_vision": ("SiglipVisionModel", 0), "dinov2": ("Dinov2Model", 1)}
DUAL_CLASSES = {"clip": ("CLIPModel", 1), "siglip": ("SiglipModel", 0)}


@dataclass
class Part:
    """One graph of an export.

    Parameters
    ----------
    name : str
        ``model``, ``image``, ``text``, ``vision`` or ``llm`` (the file is ``{name}.onnx``).
    module : torch.nn.Module
        Takes the inputs in the order of ``inputs``; returns a tuple in ``outputs`` order.
    inputs : dict
        Graph input name -> source (see :mod:`neuralign.models.spec`).
    outputs : list of str
        Output names.
    example : tuple of Tensor
        Example inputs for the exporter.
    dynamic_axes : dict
        Input/output name -> {axis: name}.
    static_batch : int, optional
        The graph takes exactly this many images per call.
    text_defaults : dict
        Inputs filled with an empty array for captions (no image tokens).
    """

    name: str
    module: torch.nn.Module
    inputs: dict[str, str]
    outputs: list[str]
    example: tuple
    dynamic_axes: dict = field(default_factory=dict)
    static_batch: int | None = None
    text_defaults: dict = field(default_factory=dict)


@dataclass
class Build:
    """Everything :func:`build_parts` derives from a model."""

    parts: list[Part]
    layers: list[dict]
    default_pooling: str
    info: dict = field(default_factory=dict)


def _pool_tokens(h, prefix: int, with_cls: bool) -> list:
    """[cls], mean over tokens after ``prefix``; tiled states (B, tiles, tokens, D) pool over
    every tile (cls: the first tile's)."""
    if h.dim() == 4:
        out = [h[:, 0, 0]] if with_cls else []
        return out + [h[:, :, prefix:].mean(dim=(1, 2))]
    out = [h[:, 0]] if with_cls else []
    return out + [h[:, prefix:].mean(dim=1)]


def _block_layers(stage: str, n: int, poolings: list[str], inputs: list[str]):
    layers, outs = [], []
    for i in range(n):
        name = f"{stage}.{i:02d}"
        d = {p: f"{name}/{p}" for p in poolings}
        layers.append({"name": name, "stage": stage, "inputs": inputs, "outputs": d})
        outs += list(d.values())
    return layers, outs


class _Encoder(torch.nn.Module):
    def __init__(self, model, prefix: int, with_cls: bool, embed=None) -> None:
        super().__init__()
        self.model, self.prefix, self.with_cls, self.embed = model, prefix, with_cls, embed

    def forward(self, pixel_values):
        """Pooled block outputs (and the projected embedding) of a batch of images."""
        vo = self.model(pixel_values=pixel_values, output_hidden_states=True, return_dict=True)
        outs = []
        for h in vo.hidden_states[1:]:
            outs += _pool_tokens(h, self.prefix, self.with_cls)
        if self.embed is not None:
            outs.append(self.embed(vo.pooler_output))
        return tuple(outs)


class _TextTower(torch.nn.Module):
    def __init__(self, model, embed) -> None:
        super().__init__()
        self.model, self.embed = model, embed

    def forward(self, input_ids):
        """Pooled block outputs and the projected embedding of one caption."""
        to = self.model(input_ids=input_ids, output_hidden_states=True, return_dict=True)
        outs = []
        for h in to.hidden_states[1:]:
            outs += [h[:, -1], h.mean(dim=1)]
        return (*outs, self.embed(to.pooler_output))


def _vision_encoder(model, family: str, size: int) -> Build:
    _, prefix = VISION_CLASSES[family]
    with_cls = prefix > 0
    n = int(model.config.num_hidden_layers)
    pools = ["cls", "mean"] if with_cls else ["mean"]
    layers, outs = _block_layers("vision", n, pools, ["image"])
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    part = Part("model", _Encoder(model, prefix, with_cls).eval(), {"pixel_values": "@image"},
                outs, (x,), {n: {0: "batch"} for n in ["pixel_values", *outs]})
    return Build([part], layers, pools[0])


def _dual(model, family: str, size: int) -> Build:
    """CLIP / SigLIP: image tower + projected image embedding; text tower + projected text
    embedding (captions)."""
    _, prefix = DUAL_CLASSES[family]
    with_cls = prefix > 0
    cfg = model.config
    pools = ["cls", "mean"] if with_cls else ["mean"]
    vlayers, vouts = _block_layers("vision", int(cfg.vision_config.num_hidden_layers), pools,
                                   ["image"])
    img_embed = model.visual_projection if family == "clip" else torch.nn.Identity()
    txt_embed = model.text_projection if family == "clip" else torch.nn.Identity()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    iouts = [*vouts, "embed.image/embed"]
    image = Part("image", _Encoder(model.vision_model, prefix, with_cls, img_embed).eval(),
                 {"pixel_values": "@image"}, iouts, (x,),
                 {n: {0: "batch"} for n in ["pixel_values", *iouts]})
    tlayers, touts = _block_layers("text", int(cfg.text_config.num_hidden_layers),
                                   ["last", "mean"], ["text"])
    touts.append("embed.text/embed")
    n_tok = min(7, int(cfg.text_config.max_position_embeddings))
    ids = torch.arange(1, n_tok + 1)[None] % int(cfg.text_config.vocab_size)
    text = Part("text", _TextTower(model.text_model, txt_embed).eval(),
                {"input_ids": "@input_ids"}, touts, (ids,), {"input_ids": {1: "tokens"}})
    layers = [*vlayers, {"name": "embed.image", "stage": "embed", "inputs": ["image"],
                         "outputs": {"embed": "embed.image/embed"}},
              *tlayers, {"name": "embed.text", "stage": "embed", "inputs": ["text"],
                         "outputs": {"embed": "embed.text/embed"}}]
    return Build([image, text], layers, pools[0])


class _LvlmVision(torch.nn.Module):
    def __init__(self, fam, model, geometry, offsets, with_cls) -> None:
        super().__init__()
        self.fam, self.model, self.geometry = fam, model, geometry
        self.offsets, self.with_cls = offsets, with_cls

    def forward(self, pixel_values):
        """Pooled vision (and Q-Former) states, the projector mean, and the image tokens."""
        states, emb = lvlm.image_states(self.fam, self.model, pixel_values, self.geometry)
        outs = []
        for stage, off in self.offsets.items():
            for h in states[stage][off:]:
                cls = self.with_cls and stage == "vision"
                outs += _pool_tokens(h, 1 if cls else 0, cls)
        return (*outs, emb.mean(dim=1), emb)


class _LvlmLanguage(torch.nn.Module):
    def __init__(self, fam, model, image_token: int) -> None:
        super().__init__()
        self.fam, self.model, self.image_token = fam, model, image_token

    def forward(self, input_ids, image_embeds, position_ids=None):
        """Every decoder layer pooled at the last token, over the image tokens, over all."""
        hs = lvlm.language_states(self.fam, self.model, input_ids, image_embeds, position_ids)
        b = image_embeds.shape[0]
        m = (input_ids.expand(b, -1) == self.image_token).to(image_embeds.dtype)[..., None]
        outs = []
        for h in hs:
            outs += [h[:, -1], (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0), h.mean(dim=1)]
        return tuple(outs)


def _lvlm(model, family: str, size: int, geometry: dict) -> Build:
    fam = lvlm.LVLMS[family]
    cfg = model.config
    with_cls = lvlm.has_cls(fam, cfg)
    batch = 1 if fam.image_input == "qwen" else 2
    shape = (batch, 3, size, size)
    if fam.image_input == "tiles":
        rows, cols, tile = geometry["tiles"]
        shape = (batch, 1 + rows * cols, 3, tile, tile)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        states, emb = lvlm.image_states(fam, model, x, geometry)
    counts = {"vision": lvlm.vision_blocks(cfg)}
    if "qformer" in fam.stages:
        counts["qformer"] = int(cfg.qformer_config.num_hidden_layers)
    offsets = {st: len(states[st]) - n for st, n in counts.items()}
    layers, vouts = [], []
    for st, n in counts.items():
        pools = ["cls", "mean"] if with_cls and st == "vision" else ["mean"]
        lay, outs = _block_layers(st, n, pools, ["image"])
        layers += lay
        vouts += outs
    layers.append({"name": "projector", "stage": "projector", "inputs": ["image"],
                   "outputs": {"mean": "projector/mean"}})
    vouts += ["projector/mean", "image_embeds"]
    axes = {} if batch == 1 else {n: {0: "batch"} for n in ["pixel_values", *vouts]}
    vision = Part("vision", _LvlmVision(fam, model, geometry, offsets, with_cls).eval(),
                  {"pixel_values": "@image"}, vouts, (x,), axes,
                  static_batch=1 if batch == 1 else None)
    n_img, d = int(emb.shape[1]), int(emb.shape[2])
    image_token = lvlm.image_token_id(cfg)
    ids = torch.tensor([[3, 4] + [image_token] * n_img + [5, 6, 7]])
    inputs = {"input_ids": "@input_ids", "image_embeds": "image_embeds"}
    example = (ids, emb)
    if fam.image_input == "qwen":
        from ..prompts import mrope_positions

        inputs["position_ids"] = "@position_ids"
        example = (ids, emb, torch.from_numpy(mrope_positions(
            ids.numpy(), image_token_id=image_token, grid=geometry["grid"])))
    n_text = int(cfg.get_text_config().num_hidden_layers)
    llayers, louts = _block_layers("llm", n_text, ["last", "mean", "all"], ["image", "text"])
    laxes = {"input_ids": {1: "tokens"}, "image_embeds": {0: "batch", 1: "image_tokens"},
             **{n: {0: "batch"} for n in louts}}
    if "position_ids" in inputs:
        laxes["position_ids"] = {2: "tokens"}
    llm = Part("llm", _LvlmLanguage(fam, model, image_token).eval(), inputs, louts, example,
               laxes, text_defaults={"image_embeds": {"shape": [1, 0, d], "dtype": "float32"}})
    info = {"n_image_tokens": n_img, "image_token_id": image_token, "text_hidden_size": d}
    return Build([vision, llm], layers + llayers, "last", info)


def build_parts(model, family: str, *, size: int, geometry: dict | None = None) -> Build:
    """The parts and layer records of ``model``.

    Parameters
    ----------
    model : transformers model
        Loaded in eval mode (class as the family needs).
    family : str
        A family of :data:`neuralign.models.hf.folder.MODEL_TYPES`.
    size : int
        Image size the graphs take (square).
    geometry : dict, optional
        Family geometry: anyres ``tiles`` (rows, cols, tile) and ``size``; Qwen ``grid``.

    Returns
    -------
    Build
    """
    if family in VISION_CLASSES:
        return _vision_encoder(model, family, size)
    if family in DUAL_CLASSES:
        return _dual(model, family, size)
    return _lvlm(model, family, size, geometry or {})


def model_class(family: str) -> str:
    """transformers class name to load for ``family``."""
    if family in VISION_CLASSES:
        return VISION_CLASSES[family][0]
    if family in DUAL_CLASSES:
        return DUAL_CLASSES[family][0]
    return lvlm.LVLMS[family].class_name


def geometry_for(model, family: str, size: int | None) -> tuple[int, dict]:
    """(graph image size, geometry) of an LVLM export; vision encoders: (size, {})."""
    cfg = model.config
    vcfg = getattr(cfg, "vision_config", cfg)
    base = getattr(vcfg, "image_size", 0) or 224
    if isinstance(base, list | tuple):
        base = base[0]
    if family not in lvlm.LVLMS:
        return int(size or base), {}
    fam = lvlm.LVLMS[family]
    if fam.image_input == "tiles":
        square = int(size or 2 * base)
        rows, cols, tile = lvlm.tiles_geometry(model, square)
        return tile, {"size": square, "tiles": [rows, cols, tile]}
    size = int(size or base)
    if fam.image_input == "qwen":
        unit = vcfg.patch_size * vcfg.spatial_merge_size
        if size % unit:
            raise ValueError(f"Qwen-VL image size must be a multiple of {unit}, got {size}")
        return size, {"grid": [size // unit, size // unit]}
    return size, {}

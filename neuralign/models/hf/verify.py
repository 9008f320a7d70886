"""Check an export against torch: the exported chain (ONNX Runtime, or torch for torch parts)
on fresh inputs against the torch model. For LVLMs the decoder layers are compared with the
*full* model forward on ``input_ids`` + images, for two prompts of different lengths, and with
the model's text-only forward on a caption."""

from __future__ import annotations

import numpy as np
import torch

from . import lvlm
from .parts import DUAL_CLASSES, VISION_CLASSES


def _max_diff(ref: dict, got: dict) -> float:
    return float(max(np.max(np.abs(np.asarray(r) - got[k])) for k, r in ref.items()))


def _part_reference(part, inputs: tuple) -> dict:
    with torch.no_grad():
        res = part.module(*inputs)
    return {n: r.numpy() for n, r in zip(part.outputs, res) if n != "image_embeds"}


def _prompt_ids(spec, n_img: int, image_token: int) -> list[np.ndarray]:
    """Two prompts of different lengths (tokenized when the export has a tokenizer)."""
    from ..prompts import PromptEncoder

    if spec.info.get("tokenizer"):
        enc = PromptEncoder(spec)
        return [enc.image_prompt_ids("Describe the image."),
                enc.image_prompt_ids("What is shown here? Answer in one word, please.")]
    return [np.asarray([[3, 4] + [image_token] * n_img + [5, 6, 7]]),
            np.asarray([[8] + [image_token] * n_img + [9, 10, 11, 12, 13, 14, 15]])]


def _pool_llm(hs, ids: np.ndarray, image_token: int) -> dict:
    out = {}
    m = torch.from_numpy(ids == image_token).float()[..., None]
    for i, h in enumerate(hs):
        m_b = m.expand(h.shape[0], -1, -1)
        out[f"llm.{i:02d}/last"] = h[:, -1].numpy()
        out[f"llm.{i:02d}/all"] = h.mean(dim=1).numpy()
        if m.sum() > 0:
            out[f"llm.{i:02d}/mean"] = ((h * m_b).sum(1) / m_b.sum(1)).numpy()
    return out


def _verify_lvlm(spec, model, build, geometry) -> dict:
    from ..prompts import mrope_positions
    from ..runtime import LayerRunner

    fam = lvlm.LVLMS[spec.family]
    vision, _ = build.parts
    image_token = build.info["image_token_id"]
    n_img = build.info["n_image_tokens"]
    g = torch.Generator().manual_seed(1)
    shape = list(vision.example[0].shape)
    shape[0] = 1 if vision.static_batch else 3
    cpu = ["CPUExecutionProvider"]
    full = LayerRunner(spec, providers=cpu)
    diff_v = diff_l = 0.0
    for ids in _prompt_ids(spec, n_img, image_token):
        x = torch.randn(*shape, generator=g)
        pos = None
        if fam.image_input == "qwen":
            pos = mrope_positions(ids, image_token_id=image_token, grid=geometry["grid"])
        got = full.outputs(x.numpy(), input_ids=ids, position_ids=pos)
        diff_v = max(diff_v, _max_diff(_part_reference(vision, (x,)), got))
        with torch.no_grad():
            hs = lvlm.reference_language_states(fam, model, x, torch.from_numpy(ids), geometry)
        diff_l = max(diff_l, _max_diff(_pool_llm(hs, ids, image_token), got))
    # a caption: no image tokens, the model's text-only forward
    text = LayerRunner(spec, providers=cpu, mode="text")
    ids = np.asarray([[3, 5, 7, 9, 11]])
    pos = mrope_positions(ids, image_token_id=image_token, grid=(1, 1)) \
        if fam.image_input == "qwen" else None
    got = text.outputs(None, input_ids=ids, position_ids=pos)
    t = torch.from_numpy(ids)
    with torch.no_grad():
        if fam.family == "blip2":
            out = model.language_model(input_ids=t, attention_mask=torch.ones_like(t),
                                       output_hidden_states=True, return_dict=True)
        else:
            kw = {"token_type_ids": torch.zeros_like(t)} if fam.family == "paligemma" else {}
            out = model.model(input_ids=t, attention_mask=torch.ones_like(t),
                              output_hidden_states=True, use_cache=False, return_dict=True, **kw)
    diff_t = _max_diff(_pool_llm(list(out.hidden_states[1:]), ids, image_token), got)
    return {"reference": "full torch model forward on input_ids + pixel values (2 prompts of "
                         "different lengths); text-only forward on a caption",
            "max_abs_diff": max(diff_v, diff_l, diff_t), "max_abs_diff_vision": diff_v,
            "max_abs_diff_llm": diff_l, "max_abs_diff_text": diff_t,
            "images_per_check": shape[0]}


def verify_spec(spec, model, build, geometry: dict) -> dict:
    """Max abs differences between the exported model and torch (see module docstring).

    Parameters
    ----------
    spec : ModelSpec
        The export (graphs written, ``root`` set).
    model : transformers model
        The torch model it was exported from.
    build : Build
        :func:`~neuralign.models.hf.parts.build_parts` of ``model``.
    geometry : dict
        Export geometry.

    Returns
    -------
    dict
        ``max_abs_diff`` and per-part figures; ``runtimes`` of the parts.
    """
    from ..runtime import LayerRunner

    runtimes = {g["part"]: g["runtime"] for g in spec.graphs}
    cpu = ["CPUExecutionProvider"]
    if spec.family in VISION_CLASSES or spec.family in DUAL_CLASSES:
        part = build.parts[0]
        x = torch.randn(3, *part.example[0].shape[1:], generator=torch.Generator().manual_seed(1))
        got = LayerRunner(spec, providers=cpu).outputs(x.numpy())
        res = {"reference": "torch eager, same inputs (3 images)",
               "max_abs_diff": _max_diff(_part_reference(part, (x,)), got)}
        if spec.family in DUAL_CLASSES:
            text = build.parts[1]
            ids = torch.tensor([[1, 2, 3, 4, 2]]) % int(model.config.text_config.vocab_size)
            got = LayerRunner(spec, providers=cpu, mode="text").outputs(None, input_ids=ids.numpy())
            res["max_abs_diff_text"] = _max_diff(_part_reference(text, (ids,)), got)
            res["max_abs_diff"] = max(res["max_abs_diff"], res["max_abs_diff_text"])
    else:
        res = _verify_lvlm(spec, model, build, geometry)
    res["runtimes"] = runtimes
    return res

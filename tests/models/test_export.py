"""Export of every supported HF family, checked against torch on the same inputs: ONNX
Runtime (or the torch-eager fallback) against the full transformers model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuralign.errors import NeuralignError
from neuralign.models.runtime import LayerRunner

from . import tiny

CPU = ["CPUExecutionProvider"]
# families whose vision graph ONNX Runtime rejects: the export falls back to torch eager
TORCH_VISION = ("idefics3", "smolvlm")


@pytest.mark.parametrize("family", tiny.VISION_ENCODERS)
def test_vision_encoder_export_matches_torch(hf_export, family):
    import torch
    import transformers

    model_dir, spec = hf_export(family)
    assert spec.family == family
    assert spec.layer_names == ["vision.00", "vision.01"]
    assert [lay["stage"] for lay in spec.layers] == ["vision", "vision"]
    assert spec.verification["max_abs_diff"] <= 1e-4
    # independent reference: the saved model reloaded, hidden states pooled here
    cls_name = {"vit": "ViTModel", "clip_vision": "CLIPVisionModel",
                "siglip_vision": "SiglipVisionModel", "dinov2": "Dinov2Model"}[family]
    model = getattr(transformers, cls_name).from_pretrained(str(model_dir)).eval()
    x = np.random.default_rng(3).standard_normal((4, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        hs = model(pixel_values=torch.from_numpy(x), output_hidden_states=True).hidden_states
    runner = LayerRunner(spec, providers=CPU)
    has_cls = family != "siglip_vision"
    for pooling in ("cls", "mean") if has_cls else ("mean",):
        got = runner.run(x, spec.resolve_pooling(pooling))
        for i, name in enumerate(spec.layer_names):
            h = hs[i + 1].numpy()
            ref = h[:, 0] if pooling == "cls" else h[:, 1 if has_cls else 0 :].mean(axis=1)
            np.testing.assert_allclose(got[name], ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("family", tiny.DUAL)
def test_clip_siglip_image_and_text_towers(hf_export, family):
    """Image tower + projected image embedding for images; text tower + projected text
    embedding for captions; against the transformers model's own feature functions."""
    import torch

    _, spec = hf_export(family)
    assert spec.stages("image") == ["vision", "embed"]
    assert spec.stages("text") == ["text", "embed"]
    assert [g["file"] for g in spec.graphs] == ["image.onnx", "text.onnx"]
    model = tiny.build(family).eval()
    x = np.random.default_rng(4).standard_normal((3, 3, 32, 32)).astype(np.float32)
    got = LayerRunner(spec, providers=CPU).run(x, spec.resolve_pooling(None))
    ids = torch.tensor([[5, 9, 17, 3, 11]])
    with torch.no_grad():
        vo = model.vision_model(pixel_values=torch.from_numpy(x), output_hidden_states=True)
        img = model.get_image_features(pixel_values=torch.from_numpy(x))
        to = model.text_model(input_ids=ids, output_hidden_states=True)
        txt = model.get_text_features(input_ids=ids)
    img = getattr(img, "pooler_output", img)
    txt = getattr(txt, "pooler_output", txt)
    np.testing.assert_allclose(got["embed.image"], img.numpy(), atol=1e-4, rtol=0)
    first = vo.hidden_states[1].numpy()
    ref = first[:, 0] if family == "clip" else first.mean(axis=1)
    np.testing.assert_allclose(got["vision.00"], ref, atol=1e-4, rtol=0)
    text = LayerRunner(spec, providers=CPU, mode="text")
    got_t = text.run(None, spec.resolve_pooling(None, mode="text"), input_ids=ids.numpy())
    np.testing.assert_allclose(got_t["embed.text"], txt.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(got_t["text.01"], to.hidden_states[2][:, -1].numpy(),
                               atol=1e-4, rtol=0)


def _full_model_llm(family, spec, x, ids):
    """Decoder hidden states of the full torch model (a fresh build: same seed, same weights)."""
    import torch

    from neuralign.models.hf.lvlm import LVLMS, reference_language_states

    model = tiny.build(family).eval()
    with torch.no_grad():
        return reference_language_states(LVLMS[family], model, torch.from_numpy(x),
                                         torch.from_numpy(ids), spec.info["geometry"])


@pytest.mark.parametrize("family", tiny.LVLM)
def test_lvlm_export_matches_full_torch_model(hf_export, family):
    from neuralign.models.jobs import prompt_positions
    from neuralign.models.preprocess import input_shape
    from neuralign.models.prompts import PromptEncoder

    _, spec = hf_export(family)
    stages = ["vision", "qformer", "projector", "llm"] if family == "blip2" else \
        ["vision", "projector", "llm"]
    assert spec.stages() == stages
    assert spec.layer_names[-2:] == ["llm.00", "llm.01"]
    assert "projector" in spec.layer_names
    assert spec.verification["max_abs_diff"] <= 1e-4
    runtimes = spec.verification["runtimes"]
    assert runtimes == {"vision": "torch" if family in TORCH_VISION else "onnx", "llm": "onnx"}
    if family in TORCH_VISION:
        reason = next(g["reason"] for g in spec.graphs if g["part"] == "vision")
        assert "ONNX Runtime cannot load" in reason
        assert "Gather" in reason
    assert spec.resolve_pooling(None)["llm.01"] == "last"
    n = 1 if family.startswith("qwen") else 2
    x = np.random.default_rng(5).standard_normal((n, *input_shape(spec.preprocessing)))
    x = x.astype(np.float32)
    ids = PromptEncoder(spec).image_prompt_ids("What is shown here?")
    hs = _full_model_llm(family, spec, x, ids)
    runner = LayerRunner(spec, providers=CPU)
    for pooling in ("last", "all"):
        got = runner.run(x, spec.resolve_pooling(pooling), input_ids=ids,
                         position_ids=prompt_positions(spec, ids))
        for i in range(2):
            h = hs[i].numpy()
            ref = h[:, -1] if pooling == "last" else h.mean(axis=1)
            np.testing.assert_allclose(got[f"llm.{i:02d}"], ref, atol=1e-4, rtol=0)


def test_torch_fallback_gives_the_same_features(hf_export):
    """The torch-eager extractor (every part in torch) equals ONNX Runtime to 1e-5."""
    _, onnx_spec = hf_export("llava")
    _, torch_spec = hf_export("llava", "torch")
    assert {g["runtime"] for g in torch_spec.graphs} == {"torch"}
    assert torch_spec.verification["max_abs_diff"] <= 1e-5
    x = np.random.default_rng(6).standard_normal((3, 3, 32, 32)).astype(np.float32)
    ids = np.array([[1, 3, 4] + [100] * onnx_spec.info["n_image_tokens"] + [5, 6]])
    for pooling in ("cls", "mean", "last", "all"):
        a = LayerRunner(onnx_spec, providers=CPU).run(x, onnx_spec.resolve_pooling(pooling),
                                                       input_ids=ids)
        b = LayerRunner(torch_spec, providers=CPU).run(x, torch_spec.resolve_pooling(pooling),
                                                        input_ids=ids)
        for k in a:
            np.testing.assert_allclose(a[k], b[k], atol=1e-5, rtol=0)


def test_mrope_positions_match_qwen_rope_index():
    import torch

    from neuralign.models.hf.lvlm import qwen_patchify
    from neuralign.models.prompts import mrope_positions

    model = tiny.build("qwen2_vl").eval()
    _, grid = qwen_patchify(torch.zeros(1, 3, 16, 24), model.config.vision_config)
    n = int(grid.prod()) // 4
    ids = torch.tensor([[3, 4, 102] + [100] * n + [103, 5, 6, 7]])
    ref, _ = model.model.get_rope_index(ids, mm_token_type_ids=(ids == 100).int(),
                                        image_grid_thw=grid)
    got = mrope_positions(ids.numpy(), image_token_id=100, grid=(2, 3))
    np.testing.assert_array_equal(got, ref.numpy())


def test_qwen_patchify_matches_image_processor_layout():
    import torch
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    from neuralign.models.hf.lvlm import qwen_patchify

    class V:
        patch_size, spatial_merge_size, temporal_patch_size = 4, 2, 2

    img = np.random.default_rng(0).standard_normal((3, 16, 24)).astype(np.float32)
    ref, gh, gw = Qwen2VLImageProcessorPil.patchify(None, img, 4, 2, 2)
    got, grid = qwen_patchify(torch.from_numpy(img[None]), V)
    np.testing.assert_array_equal(got.numpy(), ref)
    assert grid.tolist() == [[1, gh, gw]]


def test_export_record_written(hf_export):
    _, spec = hf_export("llava")
    d = json.loads((spec.root / "neuralign_model.json").read_text())
    assert d["format"] == "neuralign.model/1"
    assert d["info"]["tokenizer"] == "tokenizer.json"
    assert (spec.root / "tokenizer.json").is_file()
    assert d["info"]["prompt"]["template"].startswith("<bos>USER: <image>")
    assert d["layers"][0] == {"name": "vision.00", "stage": "vision", "inputs": ["image"],
                              "outputs": {"cls": "vision.00/cls", "mean": "vision.00/mean"}}


def test_unsupported_folder_is_one_line_error(tmp_path):
    from neuralign.models.hf import export_hf

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(NeuralignError, match="model_type 'bert' is not supported"):
        export_hf(tmp_path, tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NeuralignError, match="no config.json"):
        export_hf(tmp_path / "empty", tmp_path / "o2")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(NeuralignError, match="no weights"):
        export_hf(tmp_path, tmp_path / "out")


def test_prompt_tokenized_with_the_family_template(hf_export):
    """The template is tokenized whole with the image token repeated, as processors do."""
    from neuralign.models.prompts import PromptEncoder

    _, spec = hf_export("llava")
    tok = tiny.tokenizer("llava")
    n = spec.info["n_image_tokens"]
    ids = PromptEncoder(spec).image_prompt_ids("Describe the image")
    words = tok.convert_ids_to_tokens(ids[0].tolist())
    assert words == ["<s>", "USER:"] + ["<image>"] * n + ["Describe", "the", "image",
                                                           "ASSISTANT:"]

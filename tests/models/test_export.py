"""Export of every supported HF family to ONNX, checked against torch on the same inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuralign.errors import NeuralignError
from neuralign.models.runtime import LayerRunner

from . import tiny

VISION = ("vit", "clip_vision", "siglip_vision", "dinov2")
LVLM = ("llava", "qwen2_vl", "internvl")


@pytest.mark.parametrize("family", VISION)
def test_vision_encoder_export_matches_torch(hf_export, family):
    import torch
    import transformers

    model_dir, spec = hf_export(family)
    assert spec.family == family
    assert spec.layer_names == ["vision.00", "vision.01"]
    assert spec.verification["max_abs_diff"] <= 1e-4
    # independent reference: the saved model reloaded, hidden states pooled here
    cls_name = {"vit": "ViTModel", "clip_vision": "CLIPVisionModel",
                "siglip_vision": "SiglipVisionModel", "dinov2": "Dinov2Model"}[family]
    model = getattr(transformers, cls_name).from_pretrained(str(model_dir)).eval()
    x = np.random.default_rng(3).standard_normal((4, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        hs = model(pixel_values=torch.from_numpy(x), output_hidden_states=True).hidden_states
    runner = LayerRunner(spec, providers=["CPUExecutionProvider"])
    has_cls = family != "siglip_vision"
    for pooling in ("cls", "mean") if has_cls else ("mean",):
        got = runner.run(x, spec.resolve_pooling(pooling))
        for i, name in enumerate(spec.layer_names):
            h = hs[i + 1].numpy()
            ref = h[:, 0] if pooling == "cls" else h[:, 1 if has_cls else 0 :].mean(axis=1)
            np.testing.assert_allclose(got[name], ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("family", LVLM)
def test_lvlm_export_matches_full_torch_model(hf_export, family):
    import torch

    model_dir, spec = hf_export(family)
    names = spec.layer_names
    assert names == ["vision.00", "vision.01", "llm.00", "llm.01"]
    assert [g["file"] for g in spec.graphs] == ["vision.onnx", "llm.onnx"]
    assert spec.verification["max_abs_diff"] <= 1e-4
    assert spec.resolve_pooling(None)["llm.01"] == "last"
    # independent reference: the full model forward on input_ids + pixel_values
    model = tiny.build(family).eval()  # same seed, same weights as the saved folder
    size = spec.info["image_size"]
    n = 1 if family == "qwen2_vl" else 2
    x = np.random.default_rng(5).standard_normal((n, 3, size, size)).astype(np.float32)
    ids = torch.tensor([spec.info["prompt_ids"]] * n)
    kw = {"input_ids": ids, "output_hidden_states": True, "use_cache": False}
    if family == "qwen2_vl":
        from neuralign.models.hf_export import _qwen_patchify

        flat, grid = _qwen_patchify(torch.from_numpy(x), model.config.vision_config)
        kw.update(pixel_values=flat, image_grid_thw=grid,
                  mm_token_type_ids=(ids == model.config.image_token_id).int())
    else:
        kw["pixel_values"] = torch.from_numpy(x)
    with torch.no_grad():
        hs = model(**kw).hidden_states
    got = LayerRunner(spec, providers=["CPUExecutionProvider"]).run(x, spec.resolve_pooling("last"))
    for i in range(2):
        np.testing.assert_allclose(got[f"llm.{i:02d}"], hs[i + 1][:, -1].numpy(), atol=1e-4, rtol=0)


def test_qwen_patchify_matches_image_processor_layout():
    import torch
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    from neuralign.models.hf_export import _qwen_patchify

    class V:
        patch_size, spatial_merge_size, temporal_patch_size = 4, 2, 2

    img = np.random.default_rng(0).standard_normal((3, 16, 24)).astype(np.float32)
    ref, gh, gw = Qwen2VLImageProcessorPil.patchify(None, img, 4, 2, 2)
    got, grid = _qwen_patchify(torch.from_numpy(img[None]), V)
    np.testing.assert_array_equal(got.numpy(), ref)
    assert grid.tolist() == [[1, gh, gw]]


def test_export_record_written(hf_export):
    _, spec = hf_export("vit")
    d = json.loads((spec.root / "neuralign_model.json").read_text())
    assert d["format"] == "neuralign.model/1"
    assert d["preprocessing"]["crop"] == 32


def test_unsupported_folder_is_one_line_error(tmp_path):
    from neuralign.models.hf_export import export_hf

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(NeuralignError, match="model_type 'bert' is not supported"):
        export_hf(tmp_path, tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NeuralignError, match="no config.json"):
        export_hf(tmp_path / "empty", tmp_path / "o2")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vit"}))
    with pytest.raises(NeuralignError, match="no weights"):
        export_hf(tmp_path, tmp_path / "out")


def test_lvlm_prompt_from_tokenizer(hf_export, tmp_path):
    """With a tokenizer in the folder, the family's template is tokenized around the image."""
    import shutil

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from neuralign.models.hf_export import export_hf

    model_dir, spec0 = hf_export("llava")
    folder = tmp_path / "llava_tok"
    shutil.copytree(model_dir, folder)
    vocab = {"[UNK]": 0, "USER": 3, ":": 4, "Describe": 5, "the": 6, "image": 7, ".": 8,
             "ASSISTANT": 9}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(folder)
    spec = export_hf(folder, tmp_path / "out")
    n_img = spec.info["n_image_tokens"]
    assert spec.info["prompt"]["tokenizer"] is True
    assert spec.info["prompt_ids"] == [3, 4] + [100] * n_img + [5, 6, 7, 8, 9, 4]
    assert spec.verification["max_abs_diff"] <= 1e-4

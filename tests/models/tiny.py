"""Tiny Hugging Face models built from transformers config classes (random weights, no
download), saved as local model folders for the export tests."""

from __future__ import annotations

from pathlib import Path

FAMILIES = ("vit", "clip_vision", "siglip_vision", "dinov2", "llava", "qwen2_vl", "internvl")
VISION = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
              image_size=32, patch_size=8)
TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
            intermediate_size=64, vocab_size=128)


def build(family: str):
    """A tiny model of ``family`` with random weights (seeded)."""
    import torch
    import transformers as T

    torch.manual_seed(0)
    if family == "vit":
        return T.ViTModel(T.ViTConfig(**VISION), add_pooling_layer=False)
    if family == "clip_vision":
        return T.CLIPVisionModel(T.CLIPVisionConfig(**VISION))
    if family == "siglip_vision":
        return T.SiglipVisionModel(T.SiglipVisionConfig(**VISION))
    if family == "dinov2":
        v = {k: v for k, v in VISION.items() if k != "intermediate_size"}
        return T.Dinov2Model(T.Dinov2Config(mlp_ratio=2, **v))
    if family == "llava":
        cfg = T.LlavaConfig(vision_config=T.CLIPVisionConfig(**VISION),
                            text_config=T.LlamaConfig(**TEXT), image_token_id=100)
        return T.LlavaForConditionalGeneration(cfg)
    if family == "qwen2_vl":
        vc = dict(depth=2, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=4,
                  spatial_merge_size=2, temporal_patch_size=2, in_channels=3)
        tc = dict(TEXT, rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]})
        tc = dict(TEXT, rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3],
                                         "rope_theta": 10000.0})
        cfg = T.Qwen2VLConfig(vision_config=vc, text_config=tc, image_token_id=100,
                              video_token_id=101, vision_start_token_id=102,
                              vision_end_token_id=103)
        return T.Qwen2VLForConditionalGeneration(cfg)
    if family == "internvl":
        vc = T.InternVLVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=64, image_size=[32, 32],
                                    patch_size=[8, 8])
        cfg = T.InternVLConfig(vision_config=vc, text_config=T.Qwen2Config(**TEXT),
                               image_token_id=100, downsample_ratio=0.5)
        return T.InternVLForConditionalGeneration(cfg)
    raise ValueError(family)


def save(family: str, folder: str | Path) -> Path:
    """Build and save a tiny ``family`` model into ``folder``; return it."""
    folder = Path(folder)
    build(family).save_pretrained(str(folder))
    return folder

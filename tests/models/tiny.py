"""Tiny Hugging Face models built from transformers config classes (random weights, no
download), saved as local model folders for the export tests, with word-level tokenizers
whose special tokens match the configs' ids."""

from __future__ import annotations

from pathlib import Path

VISION_ENCODERS = ("vit", "clip_vision", "siglip_vision", "dinov2")
DUAL = ("clip", "siglip")
LVLM = ("llava", "llava_next", "llava_onevision", "qwen2_vl", "qwen2_5_vl", "internvl",
        "paligemma", "idefics3", "smolvlm", "blip2")
FAMILIES = VISION_ENCODERS + DUAL + LVLM
VISION = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
              image_size=32, patch_size=8)
TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
            intermediate_size=64, vocab_size=128)
TOWER_TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=64, vocab_size=128, max_position_embeddings=16,
                  bos_token_id=1, eos_token_id=3, pad_token_id=4)
QWEN_IDS = dict(image_token_id=100, video_token_id=101, vision_start_token_id=102,
                vision_end_token_id=103)
# the export size used by the tests (None: the config's)
IMAGE_SIZE = {"qwen2_vl": 16, "qwen2_5_vl": 16}


def _qwen(family: str):
    import transformers as T

    tc = dict(TEXT, rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3],
                                     "rope_theta": 10000.0})
    vc = dict(depth=2, hidden_size=32, num_heads=2, patch_size=4, spatial_merge_size=2,
              temporal_patch_size=2, in_channels=3)
    if family == "qwen2_vl":
        vc.update(embed_dim=32, mlp_ratio=2)
        return T.Qwen2VLForConditionalGeneration(
            T.Qwen2VLConfig(vision_config=vc, text_config=tc, **QWEN_IDS))
    vc.update(intermediate_size=64, window_size=16, out_hidden_size=32, fullatt_block_indexes=[1])
    return T.Qwen2_5_VLForConditionalGeneration(
        T.Qwen2_5_VLConfig(vision_config=vc, text_config=tc, **QWEN_IDS))


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
    if family == "clip":
        return T.CLIPModel(T.CLIPConfig(vision_config=VISION, text_config=TOWER_TEXT,
                                        projection_dim=24))
    if family == "siglip":
        return T.SiglipModel(T.SiglipConfig(vision_config=VISION, text_config=TOWER_TEXT))
    if family == "llava":
        cfg = T.LlavaConfig(vision_config=T.CLIPVisionConfig(**VISION),
                            text_config=T.LlamaConfig(**TEXT), image_token_id=100)
        return T.LlavaForConditionalGeneration(cfg)
    if family == "llava_next":
        cfg = T.LlavaNextConfig(vision_config=T.CLIPVisionConfig(**VISION),
                                text_config=T.LlamaConfig(**TEXT), image_token_index=100,
                                image_grid_pinpoints=[[32, 64], [64, 32], [64, 64]])
        return T.LlavaNextForConditionalGeneration(cfg)
    if family == "llava_onevision":
        # anyres_max_2 with a 2x2 grid: the packed features are interpolated down (ratio 1.4)
        cfg = T.LlavaOnevisionConfig(
            vision_config=T.SiglipVisionConfig(**VISION), text_config=T.Qwen2Config(**TEXT),
            image_token_index=100, video_token_index=101,
            image_grid_pinpoints=[[32, 64], [64, 32], [64, 64]],
            vision_feature_select_strategy="full", vision_feature_layer=-1,
            vision_aspect_ratio="anyres_max_2")
        return T.LlavaOnevisionForConditionalGeneration(cfg)
    if family in ("qwen2_vl", "qwen2_5_vl"):
        return _qwen(family)
    if family == "internvl":
        vc = T.InternVLVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=64, image_size=[32, 32],
                                    patch_size=[8, 8])
        cfg = T.InternVLConfig(vision_config=vc, text_config=T.Qwen2Config(**TEXT),
                               image_token_id=100, downsample_ratio=0.5)
        return T.InternVLForConditionalGeneration(cfg)
    if family == "paligemma":
        cfg = T.PaliGemmaConfig(vision_config=T.SiglipVisionConfig(**VISION, projection_dim=32),
                                text_config=T.GemmaConfig(**TEXT, head_dim=16),
                                image_token_index=100, projection_dim=32, hidden_size=32)
        return T.PaliGemmaForConditionalGeneration(cfg)
    if family in ("idefics3", "smolvlm"):
        pre = "Idefics3" if family == "idefics3" else "SmolVLM"
        cfg = getattr(T, f"{pre}Config")(
            vision_config=getattr(T, f"{pre}VisionConfig")(**VISION),
            text_config=T.LlamaConfig(**TEXT), image_token_id=100, scale_factor=2)
        return getattr(T, f"{pre}ForConditionalGeneration")(cfg)
    if family == "blip2":
        qc = T.Blip2QFormerConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, encoder_hidden_size=32, vocab_size=128)
        tc = T.OPTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, ffn_dim=64,
                         vocab_size=128, word_embed_proj_dim=32)
        cfg = T.Blip2Config(vision_config=T.Blip2VisionConfig(**VISION), qformer_config=qc,
                            text_config=tc, num_query_tokens=4, image_token_index=100)
        return T.Blip2ForConditionalGeneration(cfg)
    raise ValueError(family)


WORDS = ("describe the image what is shown here answer in one word please photo of a cat dog "
         "astronaut coffee rocket moon clock grass brick flower china coins camera user "
         "assistant question count objects colour name it . , ? : USER ASSISTANT Describe What "
         "Answer Question [INST] [/INST] User: Assistant: USER: ASSISTANT: motorcycle gravel hubble "
         "chelsea").split()
SPECIALS = ("<|im_start|>", "<|im_end|>", "<img>", "</img>", "<fake_token_around_image>",
            "<global-img>", "<end_of_utterance>", "<s>", "</s>", "<bos>", "<pad>")


def tokenizer(family: str):
    """A word-level fast tokenizer whose image token is id 100 (the configs' image id) under
    the name the family's template uses; BOS ``<s>`` = 1, ``<bos>`` = 2, EOS ``</s>`` = 3,
    ``<pad>`` = 4."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    image = {"qwen2_vl": "<|image_pad|>", "qwen2_5_vl": "<|image_pad|>",
             "internvl": "<IMG_CONTEXT>"}.get(family, "<image>")
    vocab = {"[UNK]": 0, "<s>": 1, "<bos>": 2, "</s>": 3, "<pad>": 4, image: 100,
             "<|video_pad|>": 101, "<|vision_start|>": 102, "<|vision_end|>": 103}
    for tok in (*SPECIALS, *WORDS):
        if tok not in vocab:
            free = next(i for i in range(3, 128) if i not in vocab.values())
            vocab[tok] = free
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    specials = [t for t in vocab if t.startswith("<") or t == "[UNK]"]
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    if family in DUAL:  # CLIP / SigLIP tokenizers wrap the text: <s> text </s>
        from tokenizers.processors import TemplateProcessing

        tk.post_processor = TemplateProcessing(single="<s> $A </s>",
                                               special_tokens=[("<s>", 1), ("</s>", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]")


def save(family: str, folder: str | Path, *, with_tokenizer: bool = True) -> Path:
    """Build and save a tiny ``family`` model into ``folder`` (with its tokenizer); return it."""
    folder = Path(folder)
    build(family).save_pretrained(str(folder))
    if with_tokenizer and family not in VISION_ENCODERS:
        tokenizer(family).save_pretrained(str(folder))
    return folder

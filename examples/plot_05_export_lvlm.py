"""
.. _ex-export-lvlm:

Exporting a vision-language model (LVLM)
========================================

``neuralign models export`` turns a Hugging Face model folder into ONNX graphs with every
layer of every stage (vision tower, projector, language model) as an output, and
``neuralign features`` runs them on images, with a prompt, into a feature cache that
:func:`neuralign.analyze` and :class:`neuralign.LiveSession` read. Here the model is a tiny
LLaVA built from a config with random weights (nothing is downloaded), so the example runs in
seconds; a real model folder (e.g. ``llava-hf/llava-1.5-7b-hf`` saved locally) goes the same
way. Export needs the ``export`` extra (torch, transformers); the live path never loads them.
"""

# %%
import tempfile
from pathlib import Path

import torch
import transformers as T
from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

import neuralign
from neuralign.models.extract import extract_features
from neuralign.models.hf import export_hf

root = Path(tempfile.mkdtemp(prefix="neuralign-example-"))
model_dir = root / "tiny-llava"

# %%
# A tiny LLaVA: a 2-layer CLIP vision tower, a projector and a 2-layer Llama, random weights.
torch.manual_seed(0)
vision = T.CLIPVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, image_size=32, patch_size=8)
text = T.LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     num_key_value_heads=2, intermediate_size=64, vocab_size=128)
model = T.LlavaForConditionalGeneration(
    T.LlavaConfig(vision_config=vision, text_config=text, image_token_id=100))
model.save_pretrained(model_dir)

# %%
# A word-level tokenizer whose image token is the config's id 100 (a real model folder has
# its own tokenizer).
words = "USER: ASSISTANT: describe the image what is shown here . ?".split()
vocab = {"[UNK]": 0, "<s>": 1, "</s>": 2, "<image>": 100}
vocab.update({w: i + 3 for i, w in enumerate(words)})
tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                        for t in ("[UNK]", "<s>", "</s>", "<image>")])
T.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", bos_token="<s>",
                          eos_token="</s>").save_pretrained(model_dir)

# %%
# Export: one graph per part, every layer an output.
spec = export_hf(model_dir, root / "export")
print(spec.name, spec.family, f"{len(spec.layers)} layers")

# %%
# Features of the built-in images with a prompt: one ``(n_images, width)`` array per layer.
# (``prompts=None``: the model's default prompt; ``neuralign features --prompt`` gives several.)
done = extract_features(spec, "builtin", root / "features", prompts=None, progress=False)
features = neuralign.load_features(done[0].path)
print(f"{features.n_layers} layers x {len(features.stimulus_ids)} images")
for layer in features.layers:
    print(f"  {layer}")

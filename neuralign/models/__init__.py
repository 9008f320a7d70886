"""Models: export with every layer of every stage, built-in models, features, prompts.

- :mod:`.registry`: supported Hugging Face families (and their stages), built-in models,
  ``resolve_model``
- :mod:`.stages`: stage names (``vision``, ``qformer``, ``projector``, ``llm``, ``text``,
  ``embed``) read from layer names
- :mod:`.builtin`: ``mobilenet_v2`` and ``vit_s14_focus`` from installed packages (hash-checked)
- :mod:`.hf`: local HF folder -> ONNX graphs (torch-eager parts where ONNX Runtime cannot run
  one) + ``neuralign_model.json`` (torch only here)
- :mod:`.runtime`: ONNX Runtime provider choice, graph chaining, pooled layer outputs (no torch);
  :mod:`.torch_parts` runs the torch-eager parts
- :mod:`.prompts`: prompts and captions tokenized for an export (``tokenizers``), Qwen M-RoPE
- :mod:`.extract`: stimuli + model -> per-layer caches (one per prompt), batched, resumable;
  :mod:`.jobs` (what each feature set is), :mod:`.batching` (batch size from memory),
  :mod:`.captions` (text features), :mod:`.pca`
- :mod:`.stimuli`: the built-in stimulus set and stimulus sources

The cache format itself lives in :mod:`neuralign.io.feature_cache` (writer) and
:mod:`neuralign.io.cache_reader` (reader). Nothing here imports torch at import time.
"""

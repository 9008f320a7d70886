"""Models: ONNX export with every layer, built-in models, ONNX Runtime features, feature cache.

- :mod:`.registry`: supported Hugging Face families, built-in models, ``resolve_model``
- :mod:`.builtin`: ``mobilenet_v2`` and ``vit_s14_focus`` from installed packages (hash-checked)
- :mod:`.hf_export`: local HF folder -> ONNX graph(s) + ``neuralign_model.json`` (torch only here)
- :mod:`.runtime`: ONNX Runtime provider choice and pooled layer outputs (no torch)
- :mod:`.extract`: stimuli + model -> feature cache (batched, progress bar, optional PCA)
- :mod:`.cache`: the cache file format, ``is_cache``, ``load_cache``
- :mod:`.stimuli`: the built-in stimulus set and stimulus sources

Nothing here imports torch at import time.
"""

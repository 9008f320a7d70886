"""Stages of a model: which part of the model a layer belongs to, read from its name.

Layer names say their stage: ``vision.07`` (block 7 of the vision tower), ``qformer.03``
(BLIP-2 Q-Former layer), ``projector`` (the connector's output: the image tokens the language
model receives), ``llm.15`` (decoder layer 15), ``text.05`` (text tower block),
``embed.image`` / ``embed.text`` (CLIP/SigLIP projected embeddings). Other names (built-in CNN
blocks such as ``features.03``) have the stage ``other`` unless a model says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable

# stage -> what it is, in data-flow order
STAGES: dict[str, str] = {
    "vision": "vision tower blocks (ViT / SigLIP / InternViT / ...)",
    "qformer": "BLIP-2 Q-Former layers (learned queries attending to the image)",
    "projector": "connector output: the image tokens handed to the language model",
    "llm": "language-model decoder layers (on the prompt with the image tokens)",
    "text": "text tower blocks (CLIP / SigLIP text encoder)",
    "embed": "projected embeddings in the joint image-text space (CLIP / SigLIP)",
    "other": "layers of models without named stages (CNNs, plain ONNX files)",
}


def stage_of(layer: str) -> str:
    """The stage of a layer name (the part before the first dot), ``other`` if unknown.

    Parameters
    ----------
    layer : str
        A layer name such as ``vision.07`` or ``projector``.

    Returns
    -------
    str
        One of :data:`STAGES`.
    """
    head = str(layer).split(".", 1)[0]
    return head if head in STAGES else "other"


def group_by_stage(layers: Iterable[str]) -> dict[str, list[str]]:
    """Layer names grouped by stage, stages in data-flow order, layers in the given order.

    Parameters
    ----------
    layers : iterable of str
        Layer names (depth order).

    Returns
    -------
    dict of str to list of str
        Only stages that have layers.
    """
    groups: dict[str, list[str]] = {s: [] for s in STAGES}
    for name in layers:
        groups[stage_of(name)].append(str(name))
    return {s: names for s, names in groups.items() if names}


def parse_stages(text: str | None) -> list[str] | None:
    """``"vision,projector"`` -> ``["vision", "projector"]``; None/empty -> None (all stages).

    Raises
    ------
    ValueError
        For an unknown stage name (the message lists the known ones).
    """
    if not text:
        return None
    names = [s.strip() for s in str(text).split(",") if s.strip()]
    bad = [s for s in names if s not in STAGES]
    if bad:
        raise ValueError(f"unknown stage(s) {bad}; stages are {', '.join(STAGES)}")
    return names or None

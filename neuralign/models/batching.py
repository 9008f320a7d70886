"""How many images to run per call: chosen from the memory there is and what one image costs.

The cost of one image is estimated from the model (recorded at export for Hugging Face models:
tokens x width of the widest stage, attention maps included; a conservative default for other
models) plus its feature rows; the budget is a share of the memory available now (or
``--memory``) minus the model's weights.
"""

from __future__ import annotations

import numpy as np

from ..base.resources import available_memory
from ..errors import NeuralignError
from .preprocess import input_shape
from .spec import ModelSpec

DEFAULT_BYTES_PER_IMAGE = 48 << 20
MAX_BATCH = 64
BUDGET_SHARE = 0.5


def bytes_per_image(spec: ModelSpec) -> int:
    """Estimated working memory of one image through the model (activations + features)."""
    est = spec.info.get("bytes_per_image")
    if not est:
        est = DEFAULT_BYTES_PER_IMAGE
    pixels = int(np.prod(input_shape(spec.preprocessing))) * 4
    return int(est) + pixels + 4 * 4096 * max(1, len(spec.layers))


def choose_batch_size(spec: ModelSpec, *, requested: int | str | None = "auto",
                      memory: int | None = None) -> tuple[int, str]:
    """The batch size and a sentence saying how it was chosen.

    Parameters
    ----------
    spec : ModelSpec
        The model.
    requested : int or "auto"
        A fixed batch size, or ``auto``.
    memory : int, optional
        Memory budget in bytes (default: half of what is available now).

    Returns
    -------
    (int, str)
    """
    if requested not in (None, "auto"):
        n = int(requested)
        if n < 1:
            raise NeuralignError(f"--batch-size must be >= 1, got {n}")
        return n, "fixed (--batch-size)"
    avail = available_memory()
    budget = int(memory) if memory else int(avail * BUDGET_SHARE)
    weights = 4 * int(spec.info.get("n_params") or 0)
    per = bytes_per_image(spec)
    n = int(max(1, min(MAX_BATCH, (budget - weights) // per)))
    why = (f"auto: {per / 2**20:.0f} MB per image, budget {budget / 2**30:.1f} GB "
           f"({'--memory' if memory else f'half of the {avail / 2**30:.1f} GB available'}) "
           f"minus {weights / 2**30:.2f} GB of weights")
    return n, why


def estimate_bytes_per_image(stages: list[tuple[int, int, int]]) -> int:
    """Working memory of one image for stages given as (tokens, width, heads): the widest
    stage's hidden states and MLP (about 12 x tokens x width floats) plus one layer's
    attention maps (heads x tokens^2)."""
    worst = 0
    for tokens, width, heads in stages:
        worst = max(worst, 4 * (12 * tokens * width + 2 * heads * tokens * tokens))
    return int(worst)

"""Image preprocessing (resize, centre crop, normalise) in PIL + numpy, as recorded in a spec."""

from __future__ import annotations

import numpy as np

_INTERP = {"bilinear": 2, "bicubic": 3, "nearest": 0, "lanczos": 1}


def preprocess(rgb: np.ndarray, prep: dict) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` -> float32 ``(3, crop, crop)`` normalised as ``prep`` says.

    ``prep`` keys: ``resize`` (int), ``resize_mode`` (``shorter``: shorter side to ``resize``,
    aspect kept; ``exact``: to ``resize`` x ``resize``), ``crop`` (centre crop size),
    ``interpolation``, ``mean``, ``std`` (per channel, on 0..1 values).
    """
    from PIL import Image

    im = Image.fromarray(np.asarray(rgb, dtype=np.uint8), mode="RGB")
    size = int(prep["resize"])
    resample = _INTERP[prep.get("interpolation", "bilinear")]
    if prep.get("resize_mode", "shorter") == "exact":
        im = im.resize((size, size), resample=resample)
    else:
        w, h = im.size
        if w <= h:
            nw, nh = size, max(1, int(size * h / w))
        else:
            nw, nh = max(1, int(size * w / h)), size
        im = im.resize((nw, nh), resample=resample)
    crop = int(prep.get("crop", size))
    w, h = im.size
    left = int(round((w - crop) / 2.0))
    top = int(round((h - crop) / 2.0))
    im = im.crop((left, top, left + crop, top + crop))
    x = np.asarray(im, dtype=np.float32) / 255.0
    mean = np.asarray(prep["mean"], dtype=np.float32)
    std = np.asarray(prep["std"], dtype=np.float32)
    x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1))

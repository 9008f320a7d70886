"""Image preprocessing (resize, centre crop, normalise, optional tiles) in PIL + numpy, as
recorded in a model's spec."""

from __future__ import annotations

import numpy as np

_INTERP = {"bilinear": 2, "bicubic": 3, "nearest": 0, "lanczos": 1}


def _normalise(im, prep: dict) -> np.ndarray:
    x = np.asarray(im, dtype=np.float32) / 255.0
    mean = np.asarray(prep["mean"], dtype=np.float32)
    std = np.asarray(prep["std"], dtype=np.float32)
    return np.ascontiguousarray(((x - mean) / std).transpose(2, 0, 1))


def preprocess(rgb: np.ndarray, prep: dict) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)`` -> float32 ``(3, crop, crop)`` normalised as ``prep`` says.

    Parameters
    ----------
    rgb : ndarray, shape (H, W, 3)
        The image.
    prep : dict
        ``resize`` (int), ``resize_mode`` (``shorter``: shorter side to ``resize``, aspect
        kept; ``exact``: to ``resize`` x ``resize``), ``crop`` (centre crop size),
        ``interpolation``, ``mean``, ``std`` (per channel, on 0..1 values). With ``tiles``
        (``{"grid": [rows, cols], "tile": s}``, LLaVA-NeXT/OneVision "anyres"): the image is
        centre-cropped to a square, resized to ``rows*s`` x ``cols*s`` and cut into tiles,
        preceded by the whole square resized to ``s`` x ``s``; the result is
        ``(1 + rows*cols, 3, s, s)``.

    Returns
    -------
    ndarray, float32
    """
    from PIL import Image

    im = Image.fromarray(np.asarray(rgb, dtype=np.uint8), mode="RGB")
    resample = _INTERP[prep.get("interpolation", "bilinear")]
    if prep.get("tiles"):
        return _tiles(im, prep, resample)
    size = int(prep["resize"])
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
    return _normalise(im, prep)


def _tiles(im, prep: dict, resample: int) -> np.ndarray:
    rows, cols = (int(v) for v in prep["tiles"]["grid"])
    s = int(prep["tiles"]["tile"])
    w, h = im.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    square = im.crop((left, top, left + side, top + side))
    out = [_normalise(square.resize((s, s), resample=resample), prep)]
    big = square.resize((cols * s, rows * s), resample=resample)
    for r in range(rows):
        for c in range(cols):
            out.append(_normalise(big.crop((c * s, r * s, (c + 1) * s, (r + 1) * s)), prep))
    return np.stack(out)


def input_shape(prep: dict) -> tuple[int, ...]:
    """Shape of one preprocessed image (without the batch axis)."""
    if prep.get("tiles"):
        rows, cols = prep["tiles"]["grid"]
        s = int(prep["tiles"]["tile"])
        return (1 + int(rows) * int(cols), 3, s, s)
    crop = int(prep.get("crop", prep["resize"]))
    return (3, crop, crop)

"""Held-out scoring: Pearson r between predictions and EEG, column by column.

The EEG side of the correlation (centred columns, sums of squares) is the same for every layer
of a refresh, so a refresh computes it once (:func:`eeg_side`) and every layer's
:func:`pearson_columns` reuses it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["eeg_side", "pearson_columns"]


def eeg_side(y: np.ndarray) -> tuple:
    """``(y, centred y, column sums of squares, variance threshold)`` of the EEG ``y``."""
    yc = y - y.mean(0)
    vy = np.einsum("ij,ij->j", yc, yc)
    # relative tolerance: variance that is round-off of a constant is no variance. The EEG
    # side uses the statistics' threshold (confidence.py): a baselined counter or ramp channel
    # differs between epochs only by float32 round-off (relative variance ~1e-14).
    tol_y = 1e-12 * np.maximum(np.einsum("ij,ij->j", y, y), 1e-300)
    return y, yc, vy, tol_y


def pearson_columns(pred: np.ndarray, y: np.ndarray | tuple, *,
                    return_centred: bool = False):
    """Pearson r between matching columns of ``pred`` and ``y`` (n, M); NaN where undefined.

    ``y`` may be given as :func:`eeg_side` of it. A constant column (no variance in the
    predictions or in the EEG, the EEG's up to float32 round-off) has no correlation: NaN.
    ``return_centred``: also return ``pred`` centred column by column (computed on the way).
    """
    n = pred.shape[0]
    out = np.full(pred.shape[1], np.nan)
    if n < 2:
        return (out, pred - pred.mean(0)) if return_centred else out
    _, yc, vy, tol_y = y if isinstance(y, tuple) else eeg_side(y)
    m = pred.mean(0)
    pc = pred - m
    vh = np.einsum("ij,ij->j", pc, pc)
    cov = np.einsum("ij,ij->j", pc, yc)
    # sum of squares of the uncentred column, without another pass over it
    tol_h = 1e-20 * np.maximum(vh + n * m * m, 1e-300)
    ok = (vh > tol_h) & (vy > tol_y)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[ok] = cov[ok] / np.sqrt(vh[ok] * vy[ok])
    out = np.clip(out, -1.0, 1.0)
    return (out, pc) if return_centred else out

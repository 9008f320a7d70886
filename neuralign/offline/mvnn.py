"""Multivariate noise normalisation (MVNN) as the official THINGS-EEG2 preprocessing does it.

Ledoit-Wolf covariances per image and time point (``"time"``) or per image and repetition
(``"epochs"``), averaged over images and over the partitions of a session; the data are
whitened with ``Sigma^-1/2`` (Guggenmos et al. 2018; ``gifale95/eeg_encoding``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import NeuralignError


def ledoit_wolf_batch(x: np.ndarray) -> np.ndarray:
    """Ledoit-Wolf covariances of many small data sets at once.

    Equals ``sklearn.discriminant_analysis._cov(x[b], shrinkage="auto")`` (standardise,
    Ledoit-Wolf, rescale) for every ``b``. ``x``: (B, n_samples, n_features).
    """
    x = np.asarray(x, dtype=np.float64)
    _, n, p = x.shape
    xc = x - x.mean(axis=1, keepdims=True)
    sd = np.sqrt((xc**2).mean(axis=1))  # (B, p)
    sd = np.where(sd < 10 * np.finfo(float).eps, 1.0, sd)
    z = xc / sd[:, None, :]
    emp = np.einsum("bni,bnj->bij", z, z) / n
    z2 = z**2
    tr = z2.sum(axis=1) / n  # (B, p)
    mu = tr.sum(axis=1) / p
    beta_ = np.einsum("bni,bnj->b", z2, z2)
    delta_ = (emp**2).sum(axis=(1, 2))  # = sum((Z'Z)^2) / n^2
    beta = (beta_ / n - delta_) / (p * n)
    delta = (delta_ - 2 * mu * tr.sum(axis=1) + p * mu**2) / p
    beta = np.minimum(beta, delta)
    with np.errstate(divide="ignore", invalid="ignore"):
        shrink = np.where(beta == 0, 0.0, beta / delta)
    cov = (1 - shrink)[:, None, None] * emp
    cov[:, np.arange(p), np.arange(p)] += (shrink * mu)[:, None]
    return cov * sd[:, :, None] * sd[:, None, :]


def mvnn_sigma(parts: Sequence[np.ndarray], *, dim: str = "time", chunk: int = 256) -> np.ndarray:
    """Session noise covariance: mean over partitions of the mean over images of per-image
    Ledoit-Wolf covariances (per time point, or per repetition), as the official MVNN does.

    ``parts``: sorted arrays ``(images, reps, C, T)`` of one session.
    """
    if dim not in ("time", "epochs"):
        raise NeuralignError(f"mvnn must be 'time' or 'epochs', got {dim!r}")
    sig_parts = []
    for d in parts:
        n_img, n_rep, c, t = d.shape
        acc = np.zeros((c, c))
        for s in range(0, n_img, chunk):
            blk = np.asarray(d[s:s + chunk], dtype=np.float64)
            b = blk.shape[0]
            if dim == "time":  # samples = repetitions, one covariance per (image, time)
                x = blk.transpose(0, 3, 1, 2).reshape(b * t, n_rep, c)
                cov = ledoit_wolf_batch(x).reshape(b, t, c, c).mean(axis=1)
            else:  # samples = time points, one covariance per (image, repetition)
                x = blk.transpose(0, 1, 3, 2).reshape(b * n_rep, t, c)
                cov = ledoit_wolf_batch(x).reshape(b, n_rep, c, c).mean(axis=1)
            acc += cov.sum(axis=0)
        sig_parts.append(acc / n_img)
    return np.mean(sig_parts, axis=0)


def inv_sqrtm(sigma: np.ndarray) -> np.ndarray:
    """``sigma^-1/2`` of a symmetric positive-definite matrix (``fractional_matrix_power(s, -0.5)``)."""
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    if np.any(w <= 0):
        raise NeuralignError("MVNN: the noise covariance is not positive definite")
    return (v / np.sqrt(w)) @ v.T


def whiten(data: np.ndarray, sigma_inv: np.ndarray) -> np.ndarray:
    """Apply ``Sigma^-1/2`` over channels to ``(..., C, T)`` data (the official matmul)."""
    return np.swapaxes(np.swapaxes(data, -1, -2) @ sigma_inv, -1, -2)

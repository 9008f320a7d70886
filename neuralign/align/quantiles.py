"""Bootstrap resampling weights, and percentiles of bootstrap samples (fast where NumPy is
slow: columns with NaN)."""

from __future__ import annotations

import numpy as np


def nan_percentiles(x: np.ndarray, qs) -> list[np.ndarray]:
    """``np.nanpercentile(x, q, axis=0)`` (linear) for each ``q``, with one sort.

    NumPy's nanpercentile loops over columns in Python when any value is NaN (bootstrap maps
    of layers without a score are); this sorts once (NaN last) and interpolates as NumPy does.

    Parameters
    ----------
    x : ndarray (B, ...)
        Samples along the first axis.
    qs : sequence of float
        Percentiles in [0, 100].

    Returns
    -------
    list of ndarray
        One array of shape ``x.shape[1:]`` per percentile (NaN where a column has no value).
    """
    s = np.sort(x, axis=0)
    k = (~np.isnan(x)).sum(0)
    out = []
    for q in qs:
        pos = q / 100.0 * np.maximum(k - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(k - 1, 0))
        t = pos - lo
        a = np.take_along_axis(s, lo[None], 0)[0]
        b = np.take_along_axis(s, hi[None], 0)[0]
        with np.errstate(invalid="ignore"):
            d = b - a
            v = np.where(t >= 0.5, b - d * (1 - t), a + d * t)
        out.append(np.where(k > 0, v, np.nan))
    return out


def percentile_interval(x: np.ndarray, ci: float) -> np.ndarray:
    """The central ``ci`` percentile interval along the first axis: shape ``x.shape[1:] + (2,)``.

    Parameters
    ----------
    x : ndarray (B, ...)
        Samples along the first axis (NaN ignored).
    ci : float
        Coverage (0.95: the 2.5th and 97.5th percentiles).

    Returns
    -------
    ndarray
    """
    lo, hi = (1 - ci) / 2 * 100, (1 + ci) / 2 * 100
    return np.stack(nan_percentiles(np.asarray(x, float), (lo, hi)), -1)


def bootstrap_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n)`` multinomial resampling counts (a stable function of ``seed``)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)

"""Noise ceilings per target (channel x time) from repeated presentations.

All computed from streamable statistics: per stimulus the repetition count, the mean, the
odd/even split-half sums and Welford's sum of squared deviations (``M2``).
"""

from __future__ import annotations

import numpy as np


def _corr_cols(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between matching columns of a and b (n, M)."""
    ac = a - a.mean(0)
    bc = b - b.mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ac * bc).sum(0) / np.sqrt((ac**2).sum(0) * (bc**2).sum(0))


def noise_ceilings(
    counts: np.ndarray,
    means: np.ndarray,
    half_a: np.ndarray,
    half_b: np.ndarray,
    m2: np.ndarray,
    *,
    scored_inv_counts: float | None = None,
) -> dict[str, np.ndarray]:
    """Noise ceilings of every target from stimuli with at least two repetitions.

    Parameters
    ----------
    counts : (n,) repetitions per stimulus (all >= 2)
    means, half_a, half_b : (n, M) stimulus means and odd/even half means
    m2 : (n, M) Welford sums of squared deviations from the stimulus mean
    scored_inv_counts : float, optional
        Mean of ``1/n_reps`` over the stimuli whose means are scored (the ceiling of a model
        correlated with means over fewer repetitions is lower). Defaults to this set's.

    Returns
    -------
    dict of (M,) arrays:
        ``split_half`` r between half means; ``spearman_brown`` = 2r/(1+r);
        ``things_lower`` = r(half B, half A) and ``things_upper`` = r(all, half A)
        (the THINGS-EEG2 bounds for a model scored against half-A means);
        ``ncsnr`` (noise-ceiling SNR) and ``ncsnr_pct`` = 100 ncsnr^2 / (ncsnr^2 + mean 1/n);
        ``r_ceiling`` = sqrt(ncsnr_pct / 100): the highest Pearson r a noise-free model can reach
        against the scored stimulus means.
    """
    counts = np.asarray(counts, dtype=float)
    M = means.shape[1]
    nan = np.full(M, np.nan)
    if counts.size < 3:
        return {k: nan.copy() for k in ("split_half", "spearman_brown", "things_lower",
                                         "things_upper", "ncsnr", "ncsnr_pct", "r_ceiling")}
    r_half = _corr_cols(half_a, half_b)
    sb = 2 * r_half / (1 + r_half)
    upper = _corr_cols(means, half_a)
    # Variance of single trials (z-scoring over images and repetitions) from the streamed stats.
    n_trials = counts.sum()
    grand = (counts[:, None] * means).sum(0) / n_trials
    total_var = (m2.sum(0) + (counts[:, None] * (means - grand) ** 2).sum(0)) / (n_trials - 1)
    noise_var = (m2 / (counts[:, None] - 1)).mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        nv = noise_var / total_var
        sig = np.maximum(0.0, 1.0 - nv)
        ncsnr = np.sqrt(sig) / np.sqrt(nv)
        inv_n = float(np.mean(1.0 / counts)) if scored_inv_counts is None else scored_inv_counts
        pct = 100.0 * ncsnr**2 / (ncsnr**2 + inv_n)
    return {
        "split_half": r_half,
        "spearman_brown": sb,
        "things_lower": r_half,
        "things_upper": upper,
        "ncsnr": ncsnr,
        "ncsnr_pct": pct,
        "r_ceiling": np.sqrt(pct / 100.0),
    }


def normalize_by_ceiling(values: np.ndarray, ceiling: np.ndarray, *,
                         min_ceiling: float = 0.1) -> np.ndarray:
    """``values / ceiling`` where the ceiling is at least ``min_ceiling`` (NaN elsewhere).

    ``ceiling`` broadcasts against ``values`` (e.g. a (C, T) ceiling against (L, C, T) r);
    below ``min_ceiling`` a ratio would blow up and says nothing.
    """
    v = np.asarray(values, dtype=float)
    c = np.asarray(ceiling, dtype=float)
    ok = np.isfinite(c) & (c >= min_ceiling)
    with np.errstate(all="ignore"):
        return np.where(ok, v / np.where(ok, c, 1.0), np.nan)

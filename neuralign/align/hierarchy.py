"""The latency hierarchy test: do peak latencies increase with layer depth?

Spearman rho of the significant layers' peak latencies against their depth order, with an
exact (up to 8 layers) or sampled permutation p and a bootstrap interval from the resampled
peak latencies of :func:`~neuralign.align.confidence.bootstrap_peaks`.
"""

from __future__ import annotations

import numpy as np

from .quantiles import percentile_interval


def latency_hierarchy(peaks, *, significant: np.ndarray | None = None,
                      n_perm: int = 10000, seed: int = 0) -> dict:
    """Do peak latencies increase with depth? Spearman rho of latency vs layer index.

    Only layers with a significant peak take part (a noise peak has no latency). The p-value
    is one-sided, from permutations of the layers' depth order (all of them when there are at
    most 8 layers); the interval is the bootstrap percentile interval of rho.

    Parameters
    ----------
    peaks : PeakIntervals
        Per-layer peak latencies (and their bootstrap samples, for the interval of rho).
    significant : ndarray of bool (L,) | None
        The layers that take part (None: every layer with a peak).
    n_perm : int
        Random permutations when there are more than 8 layers.
    seed : int
        Seed of those permutations.

    Returns
    -------
    dict
        ``rho``, ``p``, ``ci`` (2,), ``layers`` (indices used), ``n_perm``, and ``note`` when
        fewer than three layers are significant or they all peak together (rho is then NaN).
    """
    from itertools import permutations

    from scipy.stats import rankdata

    lat = np.asarray(peaks.latency_s, float)
    use = np.isfinite(lat) if significant is None else (np.asarray(significant, bool)
                                                        & np.isfinite(lat))
    idx = np.nonzero(use)[0]
    out = {"layers": idx.tolist(), "rho": float("nan"), "p": float("nan"),
           "ci": [float("nan"), float("nan")], "n_perm": 0}
    if idx.size < 3:
        out["note"] = "fewer than three layers with a significant peak: no hierarchy to test"
        return out

    def rho(x):
        rx, rd = rankdata(x), rankdata(np.arange(x.size))
        rx, rd = rx - rx.mean(), rd - rd.mean()
        den = np.sqrt((rx * rx).sum() * (rd * rd).sum())
        return float((rx * rd).sum() / den) if den > 0 else float("nan")

    x = lat[idx]
    r0 = rho(x)
    if not np.isfinite(r0):
        out["note"] = "the significant layers all peak at the same latency: no order to test"
        return out
    if idx.size <= 8:
        null = np.array([rho(x[list(p)]) for p in permutations(range(idx.size))])
    else:
        rng = np.random.default_rng(seed)
        null = np.array([rho(x[rng.permutation(idx.size)]) for _ in range(n_perm)])
    out.update(rho=r0, p=float((1 + np.sum(null >= r0 - 1e-12)) / (null.size + 1)),
               n_perm=int(null.size))
    if peaks.latency_samples is not None:
        boot = np.array([rho(b[idx]) for b in peaks.latency_samples])
        out["ci"] = percentile_interval(boot, peaks.ci).tolist()
    return out

"""Tests over alignment maps: clusters, point-wise tests, permutation nulls (pure functions).

Maps are time courses ``(T,)`` or layer x time planes ``(L, T)`` (any trailing shape works; clusters
connect neighbours along every axis, i.e. a lattice).

- Group tests (maps of several subjects, one per row): cluster-based permutation with sign flips
  (:func:`group_cluster_test`, via :func:`mne.stats.permutation_cluster_1samp_test`) and
  point-wise one-sample t-tests on Fisher z with FDR/Bonferroni/Holm (:func:`group_pointwise_test`).
- Cluster finding on any lattice (:func:`find_clusters`), multiple-comparison corrections
  (:func:`correct_pvalues`) and the Fisher z transform.

Single-subject tests by stimulus-label permutation are in :mod:`neuralign.align.permutation`.

Tests from a refresh's held-out predictions (no refitting) are in
:mod:`neuralign.align.confidence`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy import stats as sps

from ..errors import NeuralignError

__all__ = [
    "ClusterResult",
    "fisher_z",
    "correct_pvalues",
    "group_cluster_test",
    "group_pointwise_test",
    "find_clusters",
    "check_tail",
]

_CORRECTIONS = ("fdr", "bonferroni", "holm", "none")


def fisher_z(r: np.ndarray) -> np.ndarray:
    """Fisher z transform ``arctanh(r)``, with r clipped to (-1, 1) so it stays finite."""
    r = np.asarray(r, dtype=float)
    return np.arctanh(np.clip(r, -0.999999, 0.999999))


def correct_pvalues(
    p: np.ndarray, *, method: str | None = "fdr", alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Multiple-comparison correction over all entries of ``p``.

    Parameters
    ----------
    p : ndarray
        Uncorrected p-values (any shape; NaN entries are ignored and never rejected).
    method : {"fdr", "bonferroni", "holm", "none", None}
        Benjamini-Hochberg FDR, Bonferroni, Holm step-down, or no correction.
    alpha : float

    Returns
    -------
    reject : ndarray of bool
    p_corrected : ndarray
    """
    import mne.stats

    method = "none" if method is None else str(method).lower()
    if method not in _CORRECTIONS:
        raise NeuralignError(f"correction {method!r}: use one of {', '.join(_CORRECTIONS)}")
    p = np.asarray(p, dtype=float)
    out_p = np.full(p.shape, np.nan)
    reject = np.zeros(p.shape, dtype=bool)
    ok = np.isfinite(p)
    if not ok.any():
        return reject, out_p
    pv = p[ok]
    if method == "fdr":
        rej, pc = mne.stats.fdr_correction(pv, alpha=alpha, method="indep")
    elif method == "bonferroni":
        rej, pc = mne.stats.bonferroni_correction(pv, alpha=alpha)
    elif method == "holm":
        order = np.argsort(pv)
        m = pv.size
        adj = np.maximum.accumulate((m - np.arange(m)) * pv[order])
        pc = np.empty(m)
        pc[order] = np.minimum(adj, 1.0)
        rej = pc <= alpha
    else:
        pc, rej = pv.copy(), pv <= alpha
    out_p[ok] = np.minimum(pc, 1.0)
    reject[ok] = rej
    return reject, out_p


# ---------------------------------------------------------------------------------- clusters
@dataclass
class ClusterResult:
    """Outcome of a cluster-based permutation test.

    Attributes
    ----------
    stat : ndarray
        The statistic map the clusters were formed on (t values or null-standardised z).
    clusters : list of ndarray of bool
        One mask (shape of ``stat``) per supra-threshold cluster.
    cluster_p : ndarray
        Permutation p-value per cluster (family-wise over the whole map).
    cluster_mass : ndarray
        Sum of the statistic within each cluster.
    threshold : float
        Cluster-forming threshold (in units of ``stat``).
    n_permutations : int
    alpha : float
    tail : int
    """

    stat: np.ndarray
    clusters: list[np.ndarray]
    cluster_p: np.ndarray
    cluster_mass: np.ndarray
    threshold: float
    n_permutations: int
    alpha: float
    tail: int
    info: dict = field(default_factory=dict)

    @property
    def mask(self) -> np.ndarray:
        """Points that belong to a cluster with ``p < alpha``."""
        m = np.zeros(self.stat.shape, dtype=bool)
        for c, p in zip(self.clusters, self.cluster_p):
            if p < self.alpha:
                m |= c
        return m

    @property
    def significant(self) -> bool:
        """Whether any cluster is significant (the family-wise decision)."""
        return bool(np.any(np.asarray(self.cluster_p) < self.alpha))

    @property
    def min_p(self) -> float:
        """The smallest cluster p-value (1 without clusters)."""
        return float(np.min(self.cluster_p)) if len(self.cluster_p) else 1.0

    def to_dict(self) -> dict:
        """JSON-ready content."""
        return {
            "threshold": float(self.threshold),
            "n_permutations": int(self.n_permutations),
            "alpha": float(self.alpha),
            "tail": int(self.tail),
            "n_clusters": len(self.clusters),
            "cluster_p": [float(p) for p in self.cluster_p],
            "cluster_mass": [float(m) for m in self.cluster_mass],
            "significant_mask": self.mask.astype(int).tolist(),
            **self.info,
        }


def check_tail(tail: int) -> int:
    """``tail`` if it is 1, -1 or 0 (one-sided up, down, two-sided); else a clear error."""
    if tail not in (-1, 0, 1):
        raise NeuralignError(f"tail must be -1, 0 or 1, got {tail!r}")
    return int(tail)


def group_cluster_test(
    maps: np.ndarray,
    *,
    n_permutations: int = 1024,
    p_threshold: float = 0.05,
    alpha: float = 0.05,
    tail: int = 1,
    fisher: bool = True,
    seed: int | None = 0,
) -> ClusterResult:
    """Cluster-based sign-flip permutation test across subjects.

    Parameters
    ----------
    maps : ndarray, shape (n_subjects, T) or (n_subjects, L, T)
        One map per subject (e.g. encoding r averaged over channels, or a model difference).
    n_permutations : int
        Number of sign flips; when ``2 ** (n_subjects - 1) <= n_permutations`` MNE enumerates all.
    p_threshold : float
        Point-wise p of the one-sample t-test that forms clusters (converted to a t threshold).
    alpha : float
        Family-wise level for calling clusters significant.
    tail : {1, 0, -1}
        1: maps > 0 (alignment above chance), 0: two-sided, -1: below.
    fisher : bool
        Test Fisher z of the maps (they are correlations) rather than raw values.
    seed : int or None

    Returns
    -------
    ClusterResult
    """
    import mne.stats

    tail = check_tail(tail)
    x = np.asarray(maps, dtype=float)
    if x.ndim < 2 or x.shape[0] < 2:
        raise NeuralignError(f"group test needs (n_subjects >= 2, ...) maps, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise NeuralignError("group test: maps contain NaN/Inf")
    if fisher:
        x = fisher_z(x)
    n = x.shape[0]
    df = n - 1
    thr = sps.t.ppf(1 - (p_threshold / 2 if tail == 0 else p_threshold), df)
    if tail == -1:
        thr = -thr
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t_obs, clusters, cluster_pv, h0 = mne.stats.permutation_cluster_1samp_test(
            x,
            threshold=thr,
            n_permutations=int(n_permutations),
            tail=tail,
            out_type="mask",
            verbose=False,
            rng=np.random.default_rng(seed) if seed is not None else None,
        )
    masks = []
    for c in clusters:  # MNE gives boolean masks, or slices for 1-D data
        m = np.zeros(t_obs.shape, dtype=bool)
        m[c] = True
        masks.append(m)
    mass = np.array([float(t_obs[m].sum()) for m in masks])
    return ClusterResult(
        stat=np.asarray(t_obs),
        clusters=masks,
        cluster_p=np.asarray(cluster_pv, dtype=float),
        cluster_mass=mass,
        threshold=float(thr),
        n_permutations=int(min(n_permutations, 2 ** (n - 1)) if n < 31 else n_permutations),
        alpha=float(alpha),
        tail=tail,
        info={"kind": "group sign-flip", "n_subjects": int(n), "fisher_z": bool(fisher)},
    )


def group_pointwise_test(
    maps: np.ndarray,
    *,
    correction: str | None = "fdr",
    alpha: float = 0.05,
    tail: int = 1,
    fisher: bool = True,
) -> dict[str, np.ndarray]:
    """Point-wise one-sample t-test across subjects (THINGS-EEG2 style), corrected over points.

    Returns a dict with ``t``, ``p``, ``p_corrected`` and ``reject`` (shapes of one map).
    """
    tail = check_tail(tail)
    x = np.asarray(maps, dtype=float)
    if x.ndim < 2 or x.shape[0] < 2:
        raise NeuralignError(f"group test needs (n_subjects >= 2, ...) maps, got shape {x.shape}")
    if fisher:
        x = fisher_z(x)
    alt = {1: "greater", 0: "two-sided", -1: "less"}[tail]
    res = sps.ttest_1samp(x, 0.0, axis=0, alternative=alt)
    reject, pc = correct_pvalues(res.pvalue, method=correction, alpha=alpha)
    return {"t": np.asarray(res.statistic), "p": np.asarray(res.pvalue), "p_corrected": pc,
            "reject": reject}


def find_clusters(stat: np.ndarray, threshold: float, *, tail: int = 1) -> list[np.ndarray]:
    """Connected supra-threshold regions of ``stat`` (lattice neighbours along every axis).

    For ``tail=1`` points with ``stat > threshold``; ``tail=-1`` ``stat < -threshold``;
    ``tail=0`` both, as separate clusters. Returns one boolean mask per cluster.
    """
    tail = check_tail(tail)
    stat = np.asarray(stat, dtype=float)
    out: list[np.ndarray] = []
    signs = {1: (1,), -1: (-1,), 0: (1, -1)}[tail]
    for s in signs:
        above = np.nan_to_num(s * stat, nan=-np.inf) > threshold
        if not above.any():
            continue
        lab, n = ndimage.label(above)  # default structure: face neighbours (lattice)
        out.extend(lab == i for i in range(1, n + 1))
    return out

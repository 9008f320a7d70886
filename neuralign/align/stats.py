"""Statistics over alignment maps (pure array functions).

Maps are time courses ``(T,)`` or layer x time planes ``(L, T)`` (any trailing shape works for
the cluster tests; clusters connect neighbours along every axis, i.e. a lattice).

- Group tests (maps of several subjects, one per row): cluster-based permutation with sign flips
  (:func:`group_cluster_test`, via :func:`mne.stats.permutation_cluster_1samp_test`) and
  point-wise one-sample t-tests on Fisher z with FDR/Bonferroni/Holm (:func:`group_pointwise_test`).
- Single-subject tests: the null is built by permuting stimulus labels, i.e. re-computing the map
  with the model's feature rows shuffled relative to the EEG stimuli. The caller supplies the map
  function (:func:`permutation_null`, :func:`single_subject_cluster_test`); a fast RSA map function
  is :func:`rsa_map_function`. Cluster p-values are exact under exchangeability:
  ``p = (1 + #{null max-mass >= mass}) / (K + 1)``.
- Bootstrap CIs over subjects (:func:`bootstrap_units`) or stimuli (:func:`bootstrap_items` with a
  caller-supplied map function), and peak-latency CIs from bootstrapped peaks
  (:func:`peak_latency_ci`).
- Noise-ceiling normalisation (:func:`normalize_by_ceiling`), multiple-comparison corrections
  (:func:`correct_pvalues`), regression of alignment on model descriptors with a Shapley
  (general dominance) decomposition of R^2 (:func:`descriptor_regression`), paired model
  comparisons (:func:`paired_comparison`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy import stats as sps

from ..errors import NeuralignError

__all__ = [
    "ClusterResult",
    "BootstrapResult",
    "fisher_z",
    "correct_pvalues",
    "group_cluster_test",
    "group_pointwise_test",
    "find_clusters",
    "permutation_null",
    "cluster_test_from_null",
    "single_subject_cluster_test",
    "rsa_map_function",
    "bootstrap_units",
    "bootstrap_items",
    "peak_latency_ci",
    "normalize_by_ceiling",
    "paired_comparison",
    "descriptor_regression",
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
        return float(np.min(self.cluster_p)) if len(self.cluster_p) else 1.0

    def to_dict(self) -> dict:
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


def _check_tail(tail: int) -> int:
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

    tail = _check_tail(tail)
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
    tail = _check_tail(tail)
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
    tail = _check_tail(tail)
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


def _max_masses(z: np.ndarray, threshold: float, tail: int) -> np.ndarray:
    """Largest |cluster mass| of each map in ``z`` (shape (K, ...))."""
    out = np.zeros(z.shape[0])
    for k in range(z.shape[0]):
        cl = find_clusters(z[k], threshold, tail=tail)
        if cl:
            out[k] = max(abs(float(z[k][c].sum())) for c in cl)
    return out


def permutation_null(
    map_fn: Callable[[np.ndarray | None], np.ndarray],
    n_items: int,
    *,
    n_permutations: int = 200,
    seed: int | None = 0,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Observed map and null maps from permuted stimulus labels.

    Parameters
    ----------
    map_fn : callable
        ``map_fn(perm)`` returns the map computed with the model's feature rows permuted by
        ``perm`` relative to the EEG stimuli (``perm=None``: the observed map).
    n_items : int
        Number of stimuli being permuted.
    n_permutations : int
    seed : int or None
    progress : bool
        Show a tqdm bar on stderr.

    Returns
    -------
    observed : ndarray
    null : ndarray, shape (n_permutations, *observed.shape)
    """
    rng = np.random.default_rng(seed)
    observed = np.asarray(map_fn(None), dtype=float)
    perms = [rng.permutation(n_items) for _ in range(int(n_permutations))]
    it = perms
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(perms, desc="permutations", unit="perm", leave=False)
    null = np.stack([np.asarray(map_fn(p), dtype=float) for p in it]) if perms else np.empty(
        (0, *observed.shape)
    )
    return observed, null


def cluster_test_from_null(
    observed: np.ndarray,
    null: np.ndarray,
    *,
    p_threshold: float = 0.05,
    alpha: float = 0.05,
    tail: int = 1,
) -> ClusterResult:
    """Cluster test of one map against maps computed under permuted labels.

    Every map (the observed one and the K null ones) is standardised point-wise with the mean
    and standard deviation over all K + 1 maps, so all of them are treated alike and the test
    is exact under exchangeability. Clusters are formed where the standardised value exceeds
    the normal quantile of ``p_threshold``; the cluster statistic is the sum of z in the cluster;
    its p-value is ``(1 + #{null maps whose largest cluster mass >= it}) / (K + 1)``.
    """
    tail = _check_tail(tail)
    obs = np.asarray(observed, dtype=float)
    null = np.asarray(null, dtype=float)
    if null.ndim != obs.ndim + 1 or null.shape[1:] != obs.shape:
        raise NeuralignError(f"null maps {null.shape} do not match the observed map {obs.shape}")
    k = null.shape[0]
    if k < 1:
        raise NeuralignError("cluster test needs at least one permutation")
    allm = np.concatenate([obs[None], null])
    mu = np.nanmean(allm, axis=0)
    sd = np.nanstd(allm, axis=0, ddof=1)
    sd = np.where(np.isfinite(sd) & (sd > 0), sd, np.inf)
    z = (allm - mu) / sd
    thr = float(sps.norm.ppf(1 - (p_threshold / 2 if tail == 0 else p_threshold)))
    clusters = find_clusters(z[0], thr, tail=tail)
    mass = np.array([float(z[0][c].sum()) for c in clusters])
    null_max = _max_masses(z[1:], thr, tail)
    pv = np.array([(1 + np.sum(null_max >= abs(m) - 1e-12)) / (k + 1) for m in mass])
    return ClusterResult(
        stat=z[0],
        clusters=clusters,
        cluster_p=pv,
        cluster_mass=mass,
        threshold=thr,
        n_permutations=k,
        alpha=float(alpha),
        tail=tail,
        info={"kind": "label permutation", "p_threshold": float(p_threshold)},
    )


def single_subject_cluster_test(
    map_fn: Callable[[np.ndarray | None], np.ndarray],
    n_items: int,
    *,
    n_permutations: int = 200,
    p_threshold: float = 0.05,
    alpha: float = 0.05,
    tail: int = 1,
    seed: int | None = 0,
    progress: bool = False,
) -> ClusterResult:
    """:func:`permutation_null` followed by :func:`cluster_test_from_null`."""
    obs, null = permutation_null(
        map_fn, n_items, n_permutations=n_permutations, seed=seed, progress=progress
    )
    return cluster_test_from_null(obs, null, p_threshold=p_threshold, alpha=alpha, tail=tail)


def _rank_rows(a: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis, centred and scaled to unit norm (for Spearman)."""
    r = sps.rankdata(a, axis=-1)
    r = r - r.mean(axis=-1, keepdims=True)
    n = np.linalg.norm(r, axis=-1, keepdims=True)
    return r / np.where(n > 0, n, np.inf)


def rsa_map_function(
    eeg_rdms: np.ndarray, model_rdms: np.ndarray
) -> Callable[[np.ndarray | None], np.ndarray]:
    """A fast ``map_fn(perm)`` for RSA: Spearman between EEG and (permuted) model RDMs.

    Parameters
    ----------
    eeg_rdms : ndarray, shape (T, n, n)
        EEG RDM per time point (square, symmetric).
    model_rdms : ndarray, shape (L, n, n)
        Model RDM per layer.

    Returns
    -------
    callable
        ``map_fn(perm) -> (L, T)`` Spearman rho; ``perm`` reorders the model's stimuli.
    """
    eeg = np.asarray(eeg_rdms, dtype=float)
    mod = np.asarray(model_rdms, dtype=float)
    n = eeg.shape[-1]
    if eeg.shape[1:] != (n, n) or mod.shape[1:] != (n, n):
        raise NeuralignError(f"RDMs must be square over the same stimuli: {eeg.shape}, {mod.shape}")
    iu = np.triu_indices(n, 1)
    eeg_r = _rank_rows(eeg[:, iu[0], iu[1]])  # (T, P)

    def map_fn(perm: np.ndarray | None) -> np.ndarray:
        m = mod if perm is None else mod[:, perm][:, :, perm]
        mr = _rank_rows(m[:, iu[0], iu[1]])  # (L, P)
        return mr @ eeg_r.T

    return map_fn


# --------------------------------------------------------------------------------- bootstrap
@dataclass
class BootstrapResult:
    """Bootstrap summary of a map: estimate, percentile CI and (optionally) the samples."""

    estimate: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    ci: float
    n_boot: int
    samples: np.ndarray | None = None

    def to_dict(self) -> dict:
        return {"estimate": self.estimate.tolist(), "lo": self.lo.tolist(), "hi": self.hi.tolist(),
                "ci": self.ci, "n_boot": self.n_boot}


def _percentiles(samples: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    if not 0 < ci < 1:
        raise NeuralignError(f"ci must be in (0, 1), got {ci}")
    q = (1 - ci) / 2
    with np.errstate(all="ignore"):
        lo, hi = np.nanquantile(samples, [q, 1 - q], axis=0)
    return lo, hi


def bootstrap_units(
    maps: np.ndarray,
    *,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int | None = 0,
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
    keep_samples: bool = True,
) -> BootstrapResult:
    """Percentile bootstrap over the first axis (subjects) of ``maps``.

    ``statistic(resampled_maps) -> map`` defaults to the mean over the first axis.
    """
    x = np.asarray(maps, dtype=float)
    if x.shape[0] < 2:
        raise NeuralignError(f"bootstrap needs at least 2 units, got {x.shape[0]}")
    stat = statistic or (lambda a: np.nanmean(a, axis=0))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.shape[0], size=(int(n_boot), x.shape[0]))
    samples = np.stack([stat(x[i]) for i in idx])
    lo, hi = _percentiles(samples, ci)
    return BootstrapResult(np.asarray(stat(x)), lo, hi, float(ci), int(n_boot),
                           samples if keep_samples else None)


def bootstrap_items(
    map_fn: Callable[[np.ndarray | None], np.ndarray],
    n_items: int,
    *,
    n_boot: int = 200,
    ci: float = 0.95,
    seed: int | None = 0,
    keep_samples: bool = True,
    progress: bool = False,
) -> BootstrapResult:
    """Percentile bootstrap over stimuli: ``map_fn(idx)`` recomputes the map on stimuli ``idx``
    (drawn with replacement; ``idx=None`` = all stimuli once)."""
    rng = np.random.default_rng(seed)
    est = np.asarray(map_fn(None), dtype=float)
    draws = [rng.integers(0, n_items, size=n_items) for _ in range(int(n_boot))]
    if progress:
        from tqdm.auto import tqdm

        draws = tqdm(draws, desc="bootstrap", unit="draw", leave=False)
    samples = np.stack([np.asarray(map_fn(i), dtype=float) for i in draws])
    lo, hi = _percentiles(samples, ci)
    return BootstrapResult(est, lo, hi, float(ci), int(n_boot), samples if keep_samples else None)


def peak_latency_ci(
    samples: np.ndarray, times: np.ndarray, *, ci: float = 0.95
) -> dict[str, np.ndarray]:
    """CI of each layer's peak latency from bootstrapped ``(B, L, T)`` (or ``(B, T)``) maps.

    Returns ``median``, ``lo``, ``hi`` latencies in seconds per layer.
    """
    s = np.asarray(samples, dtype=float)
    times = np.asarray(times, dtype=float)
    if s.shape[-1] != times.size:
        raise NeuralignError(f"maps have {s.shape[-1]} time points, times has {times.size}")
    filled = np.where(np.isfinite(s), s, -np.inf)
    lat = times[np.argmax(filled, axis=-1)]  # (B, L)
    lo, hi = _percentiles(lat, ci)
    return {"median": np.median(lat, axis=0), "lo": lo, "hi": hi}


def normalize_by_ceiling(
    values: np.ndarray, ceiling: np.ndarray, *, min_ceiling: float = 0.1
) -> np.ndarray:
    """``values / ceiling`` where the ceiling is at least ``min_ceiling`` (NaN elsewhere).

    ``ceiling`` broadcasts against ``values`` (e.g. a (C, T) ceiling against (L, C, T) r).
    """
    v = np.asarray(values, dtype=float)
    c = np.asarray(ceiling, dtype=float)
    ok = np.isfinite(c) & (c >= min_ceiling)
    with np.errstate(all="ignore"):
        return np.where(ok, v / np.where(ok, c, 1.0), np.nan)


# ------------------------------------------------------------------------- model comparisons
def paired_comparison(
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_permutations: int = 10000,
    seed: int | None = 0,
) -> dict[str, float]:
    """Paired comparison of two models' per-subject scores.

    Returns the mean difference (a - b), the paired t statistic and its two-sided p, and a
    two-sided sign-flip permutation p (exact when ``2**n <= n_permutations``).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise NeuralignError(f"paired comparison needs two equal 1-D score vectors: {a.shape}, {b.shape}")
    d = a - b
    n = d.size
    out: dict[str, float] = {"n": int(n), "mean_diff": float(np.mean(d)) if n else float("nan")}
    if n < 2:
        out.update(t=float("nan"), p_t=float("nan"), p_perm=float("nan"))
        return out
    with np.errstate(all="ignore"):
        t = sps.ttest_rel(a, b)
    out["t"], out["p_t"] = float(t.statistic), float(t.pvalue)
    obs = abs(d.mean())
    if 2**n <= n_permutations:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        null = np.abs((signs * d).mean(axis=1))
        out["p_perm"] = float(np.mean(null >= obs - 1e-12))
    else:
        rng = np.random.default_rng(seed)
        signs = rng.choice((1.0, -1.0), size=(int(n_permutations), n))
        null = np.abs((signs * d).mean(axis=1))
        out["p_perm"] = float((1 + np.sum(null >= obs - 1e-12)) / (n_permutations + 1))
    return out


# ------------------------------------------------------------------- descriptor regression
def _design(columns: Mapping[str, np.ndarray], names: Sequence[str], n: int) -> np.ndarray:
    parts = [np.ones((n, 1))] + [columns[k] for k in names]
    return np.hstack(parts)


def _r2(x: np.ndarray, y: np.ndarray) -> float:
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot == 0:
        return float("nan")
    return float(1 - np.sum(resid**2) / ss_tot)


def descriptor_regression(
    y: np.ndarray,
    descriptors: Mapping[str, Sequence],
    *,
    log_numeric: Sequence[str] = ("params",),
) -> dict:
    """Regress an alignment score on model descriptors and say how much each explains.

    Parameters
    ----------
    y : ndarray, shape (n_models,)
        Alignment score per model (e.g. peak r).
    descriptors : mapping name -> sequence of length n_models
        Numeric descriptors (parameter count, downstream score) enter as one standardised
        column; non-numeric ones (architecture family, encoder type) as one-hot columns
        (first level dropped). Missing values (None/NaN) are not allowed.
    log_numeric : names of numeric descriptors entered as log10 (parameter counts).

    Returns
    -------
    dict
        ``r2_full``, ``adj_r2_full``, per descriptor ``r2_alone``, ``r2_unique`` (full minus
        without it) and ``shapley_r2`` (general dominance: its average increment over all
        subsets of the others; these sum to ``r2_full``), ``share`` (shapley / full),
        ``n_models``, ``n_columns`` and a ``warning`` when the design is too small.
    """
    y = np.asarray(y, dtype=float)
    n = y.size
    cols: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    for name, vals in descriptors.items():
        vals = list(vals)
        if len(vals) != n:
            raise NeuralignError(f"descriptor {name!r} has {len(vals)} values for {n} models")
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in vals):
            raise NeuralignError(f"descriptor {name!r} is missing for some models")
        numeric = all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
                      for v in vals)
        if numeric:
            v = np.asarray(vals, dtype=float)
            if name in log_numeric:
                if np.any(v <= 0):
                    raise NeuralignError(f"descriptor {name!r} must be > 0 to take log10")
                v = np.log10(v)
            sd = v.std()
            cols[name] = ((v - v.mean()) / (sd if sd > 0 else 1.0))[:, None]
            kinds[name] = "log10 numeric" if name in log_numeric else "numeric"
        else:
            levels = sorted({str(x) for x in vals})
            onehot = np.array([[str(x) == lev for lev in levels[1:]] for x in vals], dtype=float)
            cols[name] = onehot.reshape(n, len(levels) - 1)
            kinds[name] = f"categorical ({len(levels)} levels)"
    names = list(cols)
    p = sum(c.shape[1] for c in cols.values())
    out: dict = {"n_models": int(n), "n_columns": int(p) + 1, "kinds": kinds}
    if n < 3 or not names:
        out.update(r2_full=float("nan"), adj_r2_full=float("nan"),
                   warning="too few models for a regression")
        out["descriptors"] = {k: {} for k in names}
        return out

    cache: dict[frozenset, float] = {}

    def r2_of(subset: frozenset) -> float:
        if subset not in cache:
            sub = [k for k in names if k in subset]
            cache[subset] = 0.0 if not sub else _r2(_design(cols, sub, n), y)
        return cache[subset]

    full = frozenset(names)
    r2_full = r2_of(full)
    out["r2_full"] = r2_full
    out["adj_r2_full"] = (1 - (1 - r2_full) * (n - 1) / (n - p - 1)) if n - p - 1 > 0 else float("nan")
    if n <= p + 1:
        out["warning"] = (
            f"{n} models for {p + 1} regression columns: the fit is saturated, R^2 is not "
            "informative; add models"
        )
    m = len(names)
    res: dict[str, dict] = {}
    for k in names:
        others = [o for o in names if o != k]
        shap = 0.0
        for size in range(m):
            w = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            for sub in itertools.combinations(others, size):
                s = frozenset(sub)
                shap += w * (r2_of(s | {k}) - r2_of(s))
        res[k] = {
            "r2_alone": r2_of(frozenset([k])),
            "r2_unique": r2_full - r2_of(full - {k}),
            "shapley_r2": shap,
            "share": shap / r2_full if r2_full and np.isfinite(r2_full) else float("nan"),
            "kind": kinds[k],
        }
    out["descriptors"] = res
    return out

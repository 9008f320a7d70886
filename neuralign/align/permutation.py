"""Single-subject tests of alignment maps by permuting stimulus labels.

The null is built by re-computing the map with the model's feature rows shuffled relative to the
EEG stimuli; the caller supplies the map function (:func:`permutation_null`,
:func:`single_subject_cluster_test`), and :func:`rsa_map_function` is a fast one for RSA. Cluster
p-values are exact under exchangeability: ``p = (1 + #{null max-mass >= mass}) / (K + 1)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats as sps

from ..errors import NeuralignError
from .clusters import ClusterResult, check_tail, find_clusters
from .rsa import zscored_ranks

__all__ = ["permutation_null", "cluster_test_from_null", "single_subject_cluster_test",
           "rsa_map_function"]


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
    tail = check_tail(tail)
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
    eeg_r = zscored_ranks(eeg[:, iu[0], iu[1]])  # (T, P)

    def map_fn(perm: np.ndarray | None) -> np.ndarray:
        m = mod if perm is None else mod[:, perm][:, :, perm]
        mr = zscored_ranks(m[:, iu[0], iu[1]])  # (L, P)
        return mr @ eeg_r.T

    return map_fn



"""Variance partitioning on the engine's ridge: unique and shared variance of feature sets.

Two or three feature sets (two models, or one model under two prompts) are each fitted alone
by their own engine — same epochs, same folds, alpha chosen per target on training data only —
and then jointly by **banded ridge**: every set keeps the alpha its own fit chose for that
target, ``min sum_s a_s |w_s|^2 + |y - sum_s X_s w_s|^2``, which in the dual form is kernel
ridge with ``K = sum_s K_s / a_s`` and unit penalty. Targets that share their alphas share one
Cholesky factorisation.

Held-out R^2 (``1 - SSE / SST`` on the scored stimuli) of every subset gives the parts by
inclusion-exclusion (two sets: ``unique_A = R2_AB - R2_B``, ``shared = R2_A + R2_B - R2_AB``).
Parts can be negative on held-out data; they are reported as they are and counted.

Uncertainty, from the held-out predictions only:
- bootstrap over scored stimuli: percentile intervals of every part (per target and for the
  channel-mean time course);
- a permutation test of each unique part: the increment a set adds to the joint prediction of
  the others is permuted across stimuli (it carries no information about the EEG under the
  null), and the family of targets is corrected by the maximum statistic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import scipy.linalg as sla

from ..errors import NeuralignError
from .confidence import bootstrap_weights


@dataclass
class PartitionResult:
    """Unique and shared held-out variance of two or three feature sets."""

    labels: list[str]
    n_channels: int
    times: np.ndarray
    r2: dict[str, np.ndarray]  # subset ("A", "A+B", ...) -> (M,) held-out R^2
    parts: dict[str, np.ndarray]  # "unique A", "shared", ... -> (M,)
    ci: dict[str, np.ndarray]  # part -> (2, M) bootstrap interval
    ci_time: dict[str, np.ndarray]  # part -> (2, T) interval of the channel-mean course
    p_unique: dict[str, np.ndarray]  # "unique A" -> (M,) max-statistic corrected p
    p_unique_mean: dict[str, float]  # "unique A" -> p of the channel x time mean
    n_boot: int
    n_perm: int
    negative: dict[str, int] = field(default_factory=dict)  # part -> targets below zero

    def time_course(self, part: str) -> np.ndarray:
        """Channel-mean time course (T,) of a part (or of a subset's R^2)."""
        v = self.parts.get(part, self.r2.get(part))
        return np.nanmean(np.asarray(v).reshape(self.n_channels, -1), axis=0)

    def to_dict(self) -> dict:
        """JSON-ready summary (channel-mean time courses, means, intervals, tests)."""
        return {
            "labels": self.labels,
            "r2_time": {k: self.time_course(k).tolist() for k in self.r2},
            "parts_time": {k: self.time_course(k).tolist() for k in self.parts},
            "parts_mean": {k: float(np.nanmean(v)) for k, v in self.parts.items()},
            "ci_time": {k: v.tolist() for k, v in self.ci_time.items()},
            "p_unique_mean": self.p_unique_mean,
            "n_significant_targets": {k: int((v <= 0.05).sum())
                                      for k, v in self.p_unique.items()},
            "negative_targets": self.negative,
            "n_boot": self.n_boot, "n_perm": self.n_perm,
            "method": "banded ridge (each set keeps its own alpha), held-out R^2, "
                      "inclusion-exclusion; bootstrap over stimuli; permutation of each "
                      "set's increment, max statistic over targets",
        }


def _subsets(labels: list[str]) -> list[tuple[str, ...]]:
    return [c for k in range(1, len(labels) + 1) for c in combinations(labels, k)]


def _key(sub: tuple[str, ...]) -> str:
    return "+".join(sub)


def _parts(r2: dict[str, np.ndarray], labels: list[str]) -> dict[str, np.ndarray]:
    """Unique and shared parts by inclusion-exclusion (two or three sets)."""
    def k(*xs):
        return _key(tuple(sorted(xs, key=labels.index)))

    full = r2[_key(tuple(labels))]
    out = {}
    for lab in labels:
        rest = tuple(x for x in labels if x != lab)
        out[f"unique {lab}"] = full - r2[_key(rest)]
    if len(labels) == 2:
        a, b = labels
        out["shared"] = r2[a] + r2[b] - full
    else:
        a, b, c = labels
        for x, y in ((a, b), (a, c), (b, c)):
            z = next(w for w in labels if w not in (x, y))
            out[f"shared {x}&{y}"] = r2[k(x, z)] + r2[k(y, z)] - r2[z] - full
        out["shared all"] = (r2[a] + r2[b] + r2[c] - r2[k(a, b)] - r2[k(a, c)] - r2[k(b, c)]
                             + full)
    return out


def _r2(pred: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Held-out R^2 per target under stimulus weights ``w`` (B, n) -> (B, M)."""
    sw = w.sum(1, keepdims=True)
    ybar = (w @ y) / sw
    sst = w @ (y * y) - sw * ybar * ybar
    e = y - pred
    sse = w @ (e * e)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sst > 1e-12 * np.abs(w @ (y * y)), 1.0 - sse / sst, np.nan)


def _banded_predictions(grams: list[np.ndarray], train: np.ndarray, predict: np.ndarray,
                        y: np.ndarray, alphas: np.ndarray, idx: list[np.ndarray]):
    """Held-out predictions of banded ridge (each band its own per-target alpha), dual form.

    ``grams``: uncentred Gram matrices (N, N) of the bands; ``y``: (N, M) targets (rows of
    ``train`` used); ``idx``: per band, (M,) alpha index per target.
    """
    M = y.shape[1]
    out = np.empty((predict.size, M))
    yt = y[train]
    ybar = yt.mean(0)
    key = np.stack(idx, axis=1)  # (M, bands)
    groups, inv = np.unique(key, axis=0, return_inverse=True)
    n = train.size
    for g, combo in enumerate(groups):
        cols = np.nonzero(inv.ravel() == g)[0]
        K = sum(G[np.ix_(train, train)] / alphas[a] for G, a in zip(grams, combo))
        Kr = sum(G[np.ix_(predict, train)] / alphas[a] for G, a in zip(grams, combo))
        # centre at the training mean (the unpenalised intercept)
        kbar = K.mean(1)
        Kc = K - kbar[:, None] - kbar[None, :] + kbar.mean()
        Krc = Kr - Kr.mean(1)[:, None] - kbar[None, :] + kbar.mean()
        cf = sla.cho_factor(Kc + np.eye(n), lower=True, check_finite=False)
        c = sla.cho_solve(cf, yt[:, cols] - ybar[cols], check_finite=False)
        out[:, cols] = Krc @ c + ybar[cols]
    return out


def _banded_primal(xs: list[np.ndarray], train: np.ndarray, predict: np.ndarray,
                   y: np.ndarray, alphas: np.ndarray, idx: list[np.ndarray]):
    """The same predictions as :func:`_banded_predictions` in the primal form: each band's
    weights penalised by its own alpha, one ``D x D`` factorisation per alpha combination
    (``D``: the bands' total width; cheaper than the dual form when ``D`` < training stimuli).

    ``xs``: the bands' features (N, D_s), rows as the engines standardise them.
    """
    M = y.shape[1]
    out = np.empty((predict.size, M))
    X = np.hstack([x[train] for x in xs])
    mu = X.mean(0)
    X -= mu
    Xp = np.hstack([x[predict] for x in xs]) - mu
    yt = y[train]
    ybar = yt.mean(0)
    G = X.T @ X
    XY = X.T @ (yt - ybar)
    dims = [x.shape[1] for x in xs]
    key = np.stack(idx, axis=1)
    groups, inv = np.unique(key, axis=0, return_inverse=True)
    for g, combo in enumerate(groups):
        cols = np.nonzero(inv.ravel() == g)[0]
        pen = np.concatenate([np.full(d, alphas[a]) for d, a in zip(dims, combo)])
        cf = sla.cho_factor(G + np.diag(pen), lower=True, check_finite=False)
        out[:, cols] = Xp @ sla.cho_solve(cf, XY[:, cols], check_finite=False) + ybar[cols]
    return out


def variance_partition(engines: dict, layers: dict[str, int], *, n_boot: int = 500,
                       n_perm: int = 500, seed: int = 0, progress=None,
                       form: str = "auto") -> PartitionResult:
    """Partition held-out variance between 2 or 3 feature sets.

    Parameters
    ----------
    engines : dict of str to AlignmentEngine
        One refreshed engine per feature set, fed the same epochs (same stimuli, same test set
        or folds).
    layers : dict of str to int
        The layer of each set that enters the partition.
    n_boot, n_perm : int
        Bootstrap resamples and permutations.
    seed : int
        Seed of resampling and permutations.
    progress : callable, optional
        Called with 1 after each subset's fit and each unique part's test
        (``2 ** n_sets - 1 + n_sets`` calls).
    form : str
        ``"auto"`` (per subset: primal when its total width is below the training stimuli,
        else dual), ``"dual"`` or ``"primal"``; the predictions are the same.

    Returns
    -------
    PartitionResult
    """
    labels = list(engines)
    if len(labels) not in (2, 3):
        raise NeuralignError(f"variance partitioning takes 2 or 3 feature sets, got {len(labels)}")
    engs = [engines[k] for k in labels]
    ref = engs[0]
    ids = ref.features.stimulus_ids
    for lab, e in zip(labels[1:], engs[1:]):
        if not np.array_equal(e.features.stimulus_ids, ids):
            raise NeuralignError(f"feature set {lab!r} lists other stimuli (or another order) "
                                 f"than {labels[0]!r}; partitioning needs the same stimuli")
        if e.n_epochs != ref.n_epochs or not np.array_equal(e.alphas, ref.alphas):
            raise NeuralignError(f"feature set {lab!r} was not fed the same epochs and alphas")
        if e.held_out is None:
            raise NeuralignError(f"feature set {lab!r} has no refreshed maps yet")
    seen = ref.store.count > 0
    y = np.zeros((ids.size, ref.n_targets))
    y[seen] = ref.store.means(np.nonzero(seen)[0])
    if form not in ("auto", "dual", "primal"):
        raise NeuralignError(f"form must be 'auto', 'dual' or 'primal', got {form!r}")
    splits = ref.outer_splits()
    n_train = min(sp.train.size for sp in splits)
    dims = [e.layers[layers[lab]].dim for lab, e in zip(labels, engs)]
    everything = np.arange(ids.size)
    bands: dict[int, np.ndarray] = {}  # built when first needed, kept for the other subsets

    def band(i: int, primal: bool) -> np.ndarray:
        k = i if primal else -1 - i
        if k not in bands:
            ly = engs[i].layers[layers[labels[i]]]
            bands[k] = ly.rows(everything) if primal else ly.gram(everything)
        return bands[k]

    rows = np.concatenate([sp.predict for sp in splits])
    preds: dict[str, np.ndarray] = {}
    for sub in _subsets(labels):
        members = [labels.index(s) for s in sub]
        pieces = []
        primal = form == "primal" or (form == "auto"
                                      and sum(dims[i] for i in members) < n_train)
        fit = _banded_primal if primal else _banded_predictions
        for o, sp in enumerate(splits):
            idx = [engs[i].alpha_indices(layers[labels[i]])[o] for i in members]
            pieces.append(fit([band(i, primal) for i in members], sp.train, sp.predict, y,
                              ref.alphas, idx))
        preds[_key(sub)] = np.concatenate(pieces)
        if progress is not None:
            progress(1)
    yr = y[rows]
    one = np.ones((1, rows.size))
    r2 = {k: _r2(p, yr, one)[0] for k, p in preds.items()}
    parts = _parts(r2, labels)
    # bootstrap over scored stimuli
    w = bootstrap_weights(rows.size, n_boot, seed)
    boot_r2 = {k: _r2(p, yr, w) for k, p in preds.items()}
    boot_parts = _parts(boot_r2, labels)
    C = ref.n_channels
    lo, hi = 2.5, 97.5
    ci = {k: np.nanpercentile(v, [lo, hi], axis=0) for k, v in boot_parts.items()}
    ci_time = {k: np.nanpercentile(np.nanmean(v.reshape(n_boot, C, -1), axis=1), [lo, hi],
                                   axis=0) for k, v in boot_parts.items()}
    p_unique, p_mean = _unique_tests(preds, yr, labels, n_perm, seed, progress)
    negative = {k: int((v < 0).sum()) for k, v in parts.items()}
    return PartitionResult(labels, C, ref.times.copy(), r2, parts, ci, ci_time, p_unique,
                           p_mean, n_boot, n_perm, negative)


def _unique_tests(preds, y, labels, n_perm, seed, progress=None):
    """Permutation tests of each unique part (increment permuted across stimuli)."""
    rng = np.random.default_rng(seed)
    n = y.shape[0]
    perms = [rng.permutation(n) for _ in range(n_perm)]
    full = preds[_key(tuple(labels))]
    p_unique, p_mean = {}, {}
    sst = ((y - y.mean(0)) ** 2).sum(0)
    ok = sst > 0
    for lab in labels:
        rest = preds[_key(tuple(x for x in labels if x != lab))]
        inc = full - rest
        base = ((y - rest) ** 2).sum(0)

        def gain(pi, inc=inc, rest=rest, base=base):
            e = y - rest - inc[pi]
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(ok, (base - (e * e).sum(0)) / np.where(ok, sst, 1.0), np.nan)

        obs = gain(np.arange(n))
        null = np.stack([gain(pi) for pi in perms])  # (P, M)
        null_max = np.nanmax(null, axis=1)
        p_unique[f"unique {lab}"] = (1 + (null_max[:, None] >= obs[None, :]).sum(0)) / (n_perm + 1)
        m_obs, m_null = np.nanmean(obs), np.nanmean(null, axis=1)
        p_mean[f"unique {lab}"] = float((1 + (m_null >= m_obs).sum()) / (n_perm + 1))
        if progress is not None:
            progress(1)
    return p_unique, p_mean

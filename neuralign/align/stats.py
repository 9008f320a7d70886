"""Bootstrap intervals and model comparisons over alignment maps (pure array functions).

- Bootstrap CIs over subjects (:func:`bootstrap_units`) or stimuli (:func:`bootstrap_items` with a
  caller-supplied map function), and peak-latency CIs from bootstrapped peaks
  (:func:`peak_latency_ci`).
- Paired model comparisons (:func:`paired_comparison`) and the regression of alignment on model
  descriptors with a Shapley (general dominance) decomposition of R^2
  (:func:`descriptor_regression`).

Cluster and point-wise tests are in :mod:`neuralign.align.clusters`; noise-ceiling
normalisation is :func:`neuralign.align.reliability.normalize_by_ceiling`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from ..errors import NeuralignError

__all__ = [
    "BootstrapResult",
    "bootstrap_units",
    "bootstrap_items",
    "peak_latency_ci",
    "paired_comparison",
    "descriptor_regression",
]

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
        """JSON-ready content (without the samples)."""
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

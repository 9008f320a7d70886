"""How far to trust a map: intervals and significance from the held-out predictions.

A refresh keeps, per layer, the held-out prediction of every scored stimulus. Everything here
resamples those predictions — nothing is refitted — so it is cheap enough to run live:

- :func:`bootstrap_peaks`: bootstrap over scored stimuli (multinomial weights, one product per
  layer for every resample) of the channel-mean r map, giving 95% intervals of each layer's
  peak latency and peak r, raw and noise-ceiling normalised (the ceiling is resampled too).
- :func:`permutation_mask`: a significance mask over the layer x time map, family-wise
  corrected over the whole map by the maximum statistic: stimulus labels of the EEG are
  permuted against the predictions. Means and variances do not change under a permutation, so
  for each time point only the ``n x n`` matrix of prediction-EEG inner products (summed over
  channels) is needed, and each permutation is a gather of ``n`` of its entries.
- :func:`compare_models`: a paired bootstrap of the difference in peak r between two models'
  layers over the same held-out stimuli.

Intervals are percentile intervals; p-values of permutation tests are
``(1 + #{null >= observed}) / (K + 1)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .hierarchy import latency_hierarchy  # re-exported: the statistics of a map live here
from .quantiles import bootstrap_weights, percentile_interval

__all__ = ["HeldOut", "MapMask", "PeakIntervals", "bootstrap_peaks", "bootstrap_weights",
           "compare_models", "latency_hierarchy", "permutation_mask"]


@dataclass
class HeldOut:
    """Held-out predictions of one model's layers at the last refresh.

    Attributes
    ----------
    stimulus_ids : ndarray of str (n,)
        The scored stimuli, in row order.
    y : ndarray (n, M)
        Their stimulus-mean EEG (what the predictions are scored against).
    pred : sequence of ndarray (n, M)
        Held-out predictions of every layer, one array per layer (float32, centred over
        stimuli: correlations do not depend on the predictions' mean). Kept per layer, not
        stacked: a live refresh then copies none of them.
    n_channels, times : int, ndarray (T,)
        Target layout (``M = C * T``, channel-major).
    counts, m2 : ndarray (n,), (n, M), optional
        Repetitions and Welford sums of the scored stimuli (for a resampled noise ceiling).
    layers : tuple of str
        Layer names (depth order).
    """

    stimulus_ids: np.ndarray
    y: np.ndarray
    pred: Sequence[np.ndarray]
    n_channels: int
    times: np.ndarray
    counts: np.ndarray | None = None
    m2: np.ndarray | None = None
    layers: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        """Number of scored stimuli."""
        return int(self.y.shape[0])

    def subset(self, ids) -> HeldOut:
        """The same predictions restricted to (and ordered as) ``ids``."""
        index = {s: i for i, s in enumerate(self.stimulus_ids.tolist())}
        rows = np.array([index[s] for s in ids], dtype=np.int64)
        return HeldOut(self.stimulus_ids[rows], self.y[rows], tuple(p[rows] for p in self.pred),
                       self.n_channels, self.times,
                       None if self.counts is None else self.counts[rows],
                       None if self.m2 is None else self.m2[rows], self.layers)


@dataclass
class PeakIntervals:
    """Per-layer peaks with bootstrap intervals (all arrays (L,) unless said)."""

    latency_s: np.ndarray
    latency_ci: np.ndarray  # (L, 2)
    peak_r: np.ndarray
    peak_r_ci: np.ndarray  # (L, 2)
    peak_r_norm: np.ndarray
    peak_r_norm_ci: np.ndarray  # (L, 2)
    map_ci: np.ndarray  # (L, 2, T) interval of the channel-mean r map
    n_boot: int
    ci: float
    latency_samples: np.ndarray | None = None  # (n_boot, L) bootstrapped peak latencies
    peak_r_samples: np.ndarray | None = None  # (n_boot, L) bootstrapped peak r
    stimulus_ids: np.ndarray | None = None  # the resampled stimuli, in row order

    def to_dict(self) -> dict:
        """JSON-ready content."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                for k, v in self.__dict__.items() if k not in ("map_ci", "latency_samples", "peak_r_samples", "stimulus_ids")}


@dataclass
class MapMask:
    """Family-wise significance of the layer x time map."""

    mask: np.ndarray  # (L, T) bool
    p: np.ndarray  # (L, T) corrected p-value of each cell
    threshold: float  # cells above this null maximum are significant
    n_perm: int
    alpha: float

    def to_dict(self) -> dict:
        """JSON-ready content."""
        return {"mask": self.mask.tolist(), "p": self.p.tolist(), "threshold": self.threshold,
                "n_perm": self.n_perm, "alpha": self.alpha,
                "correction": "max statistic over layers x times (stimulus permutations)"}


def _channel_mean_r(sh, sy, shh, syy, shy, n, C):
    """Channel-mean Pearson r from (weighted) sums; (..., M) -> (..., T). NaN-safe."""
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = shy - sh * sy / n
        vh = shh - sh * sh / n
        vy = syy - sy * sy / n
        r = cov / np.sqrt(vh * vy)
    r = np.where((vh > 1e-12 * np.abs(shh)) & (vy > 1e-12 * np.abs(syy)), r, np.nan)
    r = r.reshape(r.shape[:-1] + (C, -1))
    ok = np.isfinite(r)
    cnt = ok.sum(-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, np.where(ok, r, 0.0).sum(-2) / cnt, np.nan), r


def _weighted_ceiling(w: np.ndarray, counts: np.ndarray, means: np.ndarray,
                      m2: np.ndarray) -> np.ndarray:
    """r ceiling of every target under stimulus weights ``w`` (B, n) -> (B, M).

    The weighted version of :func:`neuralign.align.reliability.noise_ceilings`' ncsnr ceiling.
    """
    cnt = counts.astype(float)
    wn = w * cnt[None, :]  # trials per resample
    n_trials = wn.sum(1, keepdims=True)
    grand = (wn @ means) / n_trials
    s1 = wn @ (means * means)
    between = s1 - n_trials * grand * grand
    total_var = (w @ m2 + between) / (n_trials - 1)
    noise_var = (w @ (m2 / np.maximum(cnt - 1, 1)[:, None])) / w.sum(1, keepdims=True)
    inv_n = (w @ (1.0 / cnt))[:, None] / w.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        nv = noise_var / total_var
        snr2 = np.maximum(0.0, 1.0 - nv) / nv
        return np.sqrt(snr2 / (snr2 + inv_n))


def _peaks(m: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak latency and value along the last axis (NaN rows -> NaN)."""
    ok = np.isfinite(m).any(-1)
    j = np.argmax(np.where(np.isfinite(m), m, -np.inf), axis=-1)
    val = np.take_along_axis(m, j[..., None], -1)[..., 0]
    return np.where(ok, times[j], np.nan), np.where(ok, val, np.nan)


def _eeg_side(held: HeldOut, n_boot: int, seed: int, shared: dict | None):
    """Weights, EEG sums and ceilings of a bootstrap (from ``shared`` if already made)."""
    key = (held.n, n_boot, seed, held.stimulus_ids.tobytes())
    got = None if shared is None else shared.get(key)
    if got is not None and np.array_equal(got[0], held.y):
        return got[1]
    n, y = held.n, held.y
    w = bootstrap_weights(n, n_boot, seed)
    ceil = c0 = None
    if held.counts is not None and held.m2 is not None and (held.counts >= 2).all():
        ceil = _weighted_ceiling(w, held.counts, y, held.m2)
        ceil = np.where(ceil >= 0.1, ceil, np.nan)
        c0 = _weighted_ceiling(np.ones((1, n)), held.counts, y, held.m2)[0]
        c0 = np.where(c0 >= 0.1, c0, np.nan)
    out = (w, w @ y, w @ (y * y), ceil, c0)
    if shared is not None:
        shared[key] = (held.y, out)
    return out


def bootstrap_peaks(held: HeldOut, *, n_boot: int = 500, ci: float = 0.95,
                    seed: int = 0, shared: dict | None = None,
                    n_jobs: int = 1, progress=None) -> PeakIntervals:
    """Bootstrap intervals of every layer's peak latency and peak r (raw and normalised).

    Parameters
    ----------
    held : HeldOut
        Held-out predictions of the last refresh.
    n_boot : int
        Resamples of the scored stimuli.
    ci : float
        Interval coverage.
    seed : int
        Seed of the resampling (the same seed gives the same intervals live and offline).
    shared : dict, optional
        A cache shared by the models of one evaluation: the resampled EEG side (weights, sums,
        noise ceilings) is computed once for models scored on the same stimuli and EEG.
    n_jobs : int
        Threads over layers.
    progress : callable, optional
        Called with 1 after each layer.
    """
    C, times = held.n_channels, np.asarray(held.times, float)
    n = held.n
    L = len(held.pred)
    T = times.size
    y = held.y
    w, sy, syy, ceil, c0 = _eeg_side(held, n_boot, seed, shared)
    lat = np.empty((n_boot, L))
    pk = np.empty((n_boot, L))
    pkn = np.full((n_boot, L), np.nan)
    maps = np.empty((n_boot, L, T))

    def layer(li: int) -> None:
        p = held.pred[li].astype(float)
        M = p.shape[1]
        s3 = w @ np.hstack([p, p * p, p * y])  # one product for the three sums
        sh, shh, shy = s3[:, :M], s3[:, M:2 * M], s3[:, 2 * M:]
        mean_r, r = _channel_mean_r(sh, sy, shh, syy, shy, n, C)
        maps[:, li] = mean_r
        lat[:, li], pk[:, li] = _peaks(mean_r, times)
        if ceil is not None:
            rn = r / ceil.reshape(n_boot, C, -1)
            ok = np.isfinite(rn)
            with np.errstate(invalid="ignore", divide="ignore"):
                mn = np.where(ok, rn, 0.0).sum(1) / ok.sum(1)
            pkn[:, li] = _peaks(mn, times)[1]
        if progress is not None:
            progress(1)

    if n_jobs > 1 and L > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(n_jobs, L)) as ex:
            list(ex.map(layer, range(L)))
    else:
        for li in range(L):
            layer(li)
    full = _full_maps(held)
    lat0, pk0 = _peaks(full, times)
    pkn0 = np.full(L, np.nan)
    if c0 is not None:
        r0 = _full_maps(held, per_target=True) / c0.reshape(C, -1)[None]
        ok = np.isfinite(r0)
        with np.errstate(invalid="ignore", divide="ignore"):
            pkn0 = _peaks(np.where(ok, r0, 0.0).sum(1) / ok.sum(1), times)[1]
    iv = percentile_interval
    return PeakIntervals(lat0, iv(lat, ci), pk0, iv(pk, ci), pkn0, iv(pkn, ci),
                         np.moveaxis(iv(maps, ci), -1, 1), n_boot, ci, lat, pk, held.stimulus_ids)


def _full_maps(held: HeldOut, *, per_target: bool = False) -> np.ndarray:
    """The unresampled channel-mean r maps (L, T), or per-target r (L, C, T)."""
    w = np.ones((1, held.n))
    y = held.y
    sy, syy = w @ y, w @ (y * y)
    out = []
    for li in range(len(held.pred)):
        p = held.pred[li].astype(float)
        m, r = _channel_mean_r(w @ p, sy, w @ (p * p), syy, w @ (p * y), held.n,
                               held.n_channels)
        out.append(r[0] if per_target else m[0])
    return np.stack(out)


def permutation_mask(held: HeldOut, *, n_perm: int = 200, alpha: float = 0.05,
                     seed: int = 0, progress=None) -> MapMask:
    """Cells of the layer x time map above the family-wise null (max statistic).

    Parameters
    ----------
    held : HeldOut
        Held-out predictions of the last refresh.
    n_perm : int
        Permutations of the EEG's stimulus labels against the predictions.
    alpha : float
        Family-wise error rate over every layer and time point.
    seed : int
        Seed of the permutations.
    progress : callable, optional
        Called with 1 after each layer.
    """
    C, T, n = held.n_channels, np.asarray(held.times).size, held.n
    L = len(held.pred)
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(n) for _ in range(n_perm)])  # (P, n)
    y = held.y - held.y.mean(0)
    ynorm = np.sqrt((y * y).sum(0))
    obs = np.empty((L, T))
    null_cells = np.empty((n_perm, L, T))
    cols = np.arange(n)[None, :]
    step = max(1, int(8e6 // max(n * n, 1)))  # time points per block: Q is (step, n, n)
    for li in range(L):
        p = held.pred[li].astype(float)
        p = p - p.mean(0)
        pnorm = np.sqrt((p * p).sum(0))
        ok = (pnorm > 1e-12) & (ynorm > 1e-12)
        scale = np.where(ok, 1.0 / np.where(ok, pnorm * ynorm, 1.0), 0.0)
        cnt = ok.reshape(C, T).sum(0)
        ys = (y * scale[None, :]).reshape(n, C, T)
        ps = p.reshape(n, C, T)
        for t0 in range(0, T, step):
            sl = slice(t0, min(T, t0 + step))
            # Q[t, j, i] = sum_c p[j, c, t] ys[i, c, t]; permutation pi: sum_i Q[t, pi(i), i]
            Q = np.einsum("jct,ict->tji", ps[:, :, sl], ys[:, :, sl], optimize=True)
            c = np.where(cnt[sl] > 0, cnt[sl], 1)
            with np.errstate(invalid="ignore", divide="ignore"):
                obs[li, sl] = np.where(cnt[sl] > 0, np.trace(Q, axis1=1, axis2=2) / c, np.nan)
                null_cells[:, li, sl] = (Q[:, perms, cols].sum(-1) / c[:, None]).T
        if progress is not None:
            progress(1)
    null_max = np.nanmax(null_cells.reshape(n_perm, -1), axis=1)
    # exact test: the observed labelling counts as one of the K + 1 permutations
    k_crit = int(np.floor(alpha * (n_perm + 1))) - 1  # largest #{null >= obs} with p <= alpha
    order = np.sort(null_max)[::-1]
    thr = float(order[k_crit]) if 0 <= k_crit < n_perm else float("inf")
    with np.errstate(invalid="ignore"):
        pvals = (1 + (null_max[None, None, :] >= obs[:, :, None]).sum(-1)) / (n_perm + 1)
        mask = np.isfinite(obs) & (pvals <= alpha)
    return MapMask(mask, np.where(np.isfinite(obs), pvals, np.nan), thr, n_perm, alpha)


def compare_models(a: HeldOut, layer_a: int, b: HeldOut, layer_b: int, *,
                   n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> dict:
    """Paired bootstrap of peak r (channel-mean map) of two layers over the same stimuli.

    Returns
    -------
    dict
        ``diff`` (peak r of a minus b), ``ci`` (2,), ``p`` (two-sided bootstrap p-value),
        ``n_stimuli``.
    """
    common = [s for s in a.stimulus_ids.tolist() if s in set(b.stimulus_ids.tolist())]
    a, b = a.subset(common), b.subset(common)
    n = len(common)
    w = np.vstack([np.ones(n), bootstrap_weights(n, n_boot, seed)])
    times = np.asarray(a.times, float)
    out = []
    for h, li in ((a, layer_a), (b, layer_b)):
        p, y = h.pred[li].astype(float), h.y
        m, _ = _channel_mean_r(w @ p, w @ y, w @ (p * p), w @ (y * y), w @ (p * y), n,
                               h.n_channels)
        out.append(_peaks(m, times)[1])
    d = out[0] - out[1]
    boot = d[1:]
    p = 2 * min((boot <= 0).mean(), (boot >= 0).mean())
    return {"diff": float(d[0]), "ci": percentile_interval(boot, ci).tolist(),
            "p": float(min(1.0, max(p, 1.0 / (n_boot + 1)))), "n_stimuli": n,
            "n_boot": n_boot}

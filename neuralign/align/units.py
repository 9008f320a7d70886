"""Unit-level encoding: which artificial units (feature dimensions) predict the EEG, with which
sign, and how many of them a layer needs.

For every unit ``u`` and target ``m`` (channel x time) a univariate encoding model
``y_m = a + b x_u`` is fitted on the training stimuli and scored on the held-out ones. Its
held-out Pearson r is ``sign(b_train) * corr_test(x_u, y_m)`` (a linear function of one unit
correlates with the EEG exactly as the unit does, up to the fitted sign), so every unit and
target costs two correlation products — a 4096-unit layer is one ``D x n`` by ``n x M`` product
per split. With nested cross-validation the held-out r is averaged over outer folds.

- **polarity**: the sign of the training correlation (positive: the unit's activation goes
  with a positive deflection);
- **top units** of every channel x time, with their held-out r and polarity;
- **redundancy**: units ranked on the training data by their mean univariate r^2 over the
  targets around the layer's peak; ridge on the top ``k`` (``k = 1, 2, 4, ...``) against the
  full layer on the held-out stimuli; the number of units that reach 90% of the layer's
  held-out r^2;
- **overlap** of the top units predicting different latencies (Jaccard index, time x time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .readouts import ridge_fit_predict, unit_columns

#: Unit x target entries of one block of the univariate products (float64 working set ~2 x 8 x
#: BLOCK bytes).
BLOCK = 4_000_000


@dataclass
class UnitResult:
    """Unit-level encoding of one layer."""

    layer: str
    unit_r: np.ndarray  # (D, M) held-out univariate r (float32)
    polarity: np.ndarray  # (D, M) sign of the training relation (int8)
    top_units: np.ndarray  # (M, k) best units per target (by held-out r)
    top_r: np.ndarray  # (M, k)
    top_polarity: np.ndarray  # (M, k)
    redundancy: dict  # k -> fraction of the layer's held-out r^2, n_units_90, window
    overlap: np.ndarray  # (T, T) Jaccard overlap of the top units of each time point
    n_channels: int

    def unit_peaks(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per unit: peak latency (s), peak channel-mean r, polarity at the peak."""
        C = self.n_channels
        m = self.unit_r.reshape(self.unit_r.shape[0], C, -1).mean(1)
        j = np.argmax(m, axis=1)
        pol = self.polarity.reshape(self.unit_r.shape[0], C, -1).mean(1)
        return (np.asarray(times)[j], m[np.arange(m.shape[0]), j],
                np.sign(pol[np.arange(m.shape[0]), j]).astype(int))

    def to_dict(self, times: np.ndarray, n_units: int = 20) -> dict:
        """A JSON-ready summary: the best units of the layer and the redundancy figures."""
        lat, peak, pol = self.unit_peaks(times)
        best = np.argsort(-peak)[:n_units]
        return {
            "layer": self.layer,
            "best_units": [{"unit": int(u), "peak_r": float(peak[u]),
                            "peak_latency_s": float(lat[u]), "polarity": int(pol[u])}
                           for u in best],
            "redundancy": self.redundancy,
        }


def univariate_r(x_tr, y_tr, x_te, y_te, *, centred: bool = False
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Held-out univariate r (D, M) and training polarity (D, M, int8) of every unit and target.

    Two ``D x n`` by ``n x M`` products; the training correlations are turned into signs in
    place, so the working set is two ``D x M`` arrays. ``centred``: the features are already
    :func:`~neuralign.align.readouts.unit_columns` (the targets never are).
    """
    a, b = (x_tr, x_te) if centred else (unit_columns(x_tr), unit_columns(x_te))
    pol = a.T @ unit_columns(y_tr)
    np.sign(pol, out=pol)
    r = b.T @ unit_columns(y_te)
    r *= pol
    return r, pol.astype(np.int8)


def top_k_rows(v: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest entries of every column of ``v`` (D, M), best first: (M, k).

    ``argpartition`` then a sort of the ``k`` kept, not a full sort of ``D`` per column; blocks
    of columns keep the index arrays near :data:`BLOCK` entries.
    """
    D, M = v.shape
    k = min(k, D)
    out = np.empty((M, k), dtype=np.int64)
    step = max(1, BLOCK // max(D, 1))
    for start in range(0, M, step):
        blk = -v[:, start:start + step]
        idx = np.argpartition(blk, k - 1, axis=0)[:k] if k < D else np.argsort(blk, axis=0)
        order = np.argsort(np.take_along_axis(blk, idx, axis=0), axis=0, kind="stable")
        out[start:start + step] = np.take_along_axis(idx, order, axis=0).T
    return out


def _ridge_r(x_tr, y_tr, x_te, y_te, alphas) -> np.ndarray:
    """Held-out r of ridge (GCV alpha per target) with the engine's solvers."""
    _, pred = ridge_fit_predict(x_tr, y_tr, x_te, alphas)
    return (unit_columns(pred) * unit_columns(y_te)).sum(0)


def unit_encoding(engine, layer: int, *, top_k: int = 10, window_s: float = 0.05,
                  max_units_curve: int | None = None) -> UnitResult:
    """Unit-level encoding of one layer from an engine's accumulated epochs.

    Parameters
    ----------
    engine : AlignmentEngine
        A refreshed engine (its stimulus means, folds and features are used).
    layer : int
        Layer index.
    top_k : int
        Best units kept per target.
    window_s : float
        Half-width of the window around the layer's peak latency for the redundancy curve.
    max_units_curve : int, optional
        Largest subset size in the redundancy curve (default: the layer's width).
    """
    ly = engine.layers[layer]
    splits = engine.outer_splits()
    seen = np.nonzero(engine.store.count > 0)[0]
    y_all = np.zeros((engine.features.n_stimuli, engine.n_targets))
    y_all[seen] = engine.store.means(seen)
    D, M = ly.dim, engine.n_targets
    # accumulators: float32 r and int16 sign votes (6 bytes per unit x target); the float64
    # products run over blocks of targets so that the working set stays near BLOCK entries
    unit_r = np.zeros((D, M), dtype=np.float32)
    votes = np.zeros((D, M), dtype=np.int16)
    step = max(1, BLOCK // max(D, 1))
    for sp in splits:
        x_tr, x_te = unit_columns(ly.rows(sp.train)), unit_columns(ly.rows(sp.predict))
        y_tr, y_te = y_all[sp.train], y_all[sp.predict]
        for start in range(0, M, step):
            cols = slice(start, min(M, start + step))
            r, pol = univariate_r(x_tr, y_tr[:, cols], x_te, y_te[:, cols], centred=True)
            unit_r[:, cols] += r
            votes[:, cols] += pol
        del x_tr, x_te, y_tr, y_te
    unit_r /= len(splits)
    polarity = np.sign(votes).astype(np.int8)
    del votes
    k = min(top_k, unit_r.shape[0])
    top = top_k_rows(unit_r, k)  # (M, k)
    cols = np.arange(unit_r.shape[1])[:, None]
    C, T = engine.n_channels, engine.n_times
    # overlap of the units predicting each time point (channel-mean r)
    per_t = unit_r.reshape(-1, C, T).mean(1)  # (D, T)
    tops = [set(c.tolist()) for c in top_k_rows(per_t, k)]
    overlap = np.array([[len(a & b) / len(a | b) for b in tops] for a in tops])
    red = _redundancy(engine, ly, layer, splits, y_all, window_s, max_units_curve)
    return UnitResult(engine.features.layers[layer], unit_r, polarity, top,
                      unit_r[top, cols], polarity[top, cols], red, overlap, C)


def _redundancy(engine, ly, layer, splits, y_all, window_s, max_units):
    """Fraction of the layer's held-out r^2 reached by its best k units (design: test set)."""
    C, T = engine.n_channels, engine.n_times
    h = engine.held_out
    times = engine.times
    if h is None:
        return {"note": "no refreshed maps"}
    m = np.nanmean(np.stack([np.asarray(r, float) for r in _map_r(h)])[layer]
                   .reshape(C, T), axis=0)
    t_peak = times[int(np.nanargmax(m))] if np.isfinite(m).any() else times[T // 2]
    tsel = np.nonzero(np.abs(times - t_peak) <= window_s + 1e-9)[0]
    targets = (np.arange(C)[:, None] * T + tsel[None, :]).ravel()
    sp = splits[0]  # the design's test set, or the first outer fold
    x_tr, x_te = ly.rows(sp.train), ly.rows(sp.predict)
    y_tr, y_te = y_all[sp.train][:, targets], y_all[sp.predict][:, targets]
    c_tr = unit_columns(x_tr).T @ unit_columns(y_tr)
    order = np.argsort(-(c_tr * c_tr).mean(1))  # ranked on training data only
    full = np.nanmean(_ridge_r(x_tr, y_tr, x_te, y_te, engine.alphas) ** 2)
    D = x_tr.shape[1] if max_units is None else min(max_units, x_tr.shape[1])
    ks = sorted({int(2**i) for i in range(int(np.log2(D)) + 1)} | {D})
    curve = {}
    for k in ks:
        r = _ridge_r(x_tr[:, order[:k]], y_tr, x_te[:, order[:k]], y_te, engine.alphas)
        curve[k] = float(np.nanmean(r * r) / full) if full > 0 else float("nan")
    n90 = next((k for k in ks if curve[k] >= 0.9), None)
    return {"peak_latency_s": float(t_peak), "window_s": float(window_s),
            "layer_r2": float(full), "fraction_by_units": {str(k): v for k, v in curve.items()},
            "n_units_90": n90, "ranking": "mean training r^2 around the peak"}


def _map_r(h) -> list[np.ndarray]:
    """Per-layer held-out r per target from kept predictions."""
    y = unit_columns(h.y)
    return [(unit_columns(p.astype(float)) * y).sum(0) for p in h.pred]

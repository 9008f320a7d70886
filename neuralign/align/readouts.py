"""Readouts other than full ridge, scored on the same held-out stimuli as ridge.

- **factorised** (spatial x feature) readout of rank ``r``: at every time point the ridge
  weights ``B_t`` (features x channels) are reduced to rank ``r`` by reduced-rank regression
  (``B_t V V'`` with ``V`` the top ``r`` right singular vectors of the fitted training values):
  ``r`` spatial patterns, each with its own feature weights, per time point;
- **PCA then ridge**: principal components of the features fitted on the training stimuli
  (exactly scikit-learn's ``PCA``, computed from the ``n x n`` scatter when there are fewer
  stimuli than units), then ridge with alpha chosen per target by GCV.

Each readout is compared with full ridge over the same held-out stimuli by a paired
bootstrap of the mean held-out r (difference, interval, two-sided p).
"""

from __future__ import annotations

import numpy as np

from . import solvers
from .backends import get_backend
from .confidence import bootstrap_weights


def unit_columns(x: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit norm (zero columns stay zero): their dot products are
    Pearson correlations."""
    xc = x - x.mean(0)
    sd = np.sqrt((xc * xc).sum(0))
    return xc / np.where(sd > 0, sd, np.inf)


def ridge_fit_predict(x_tr, y_tr, x_te, alphas) -> tuple[np.ndarray, np.ndarray]:
    """Ridge (GCV alpha per target, intercept) with the engine's solvers.

    Returns ``(fitted training values, held-out predictions)``, float64.
    """
    B = get_backend("numpy")
    xm, xs = x_tr.mean(0), x_tr.std(0)
    xs = np.where(xs > 0, xs, 1.0)
    a, b = (x_tr - xm) / xs, (x_te - xm) / xs
    if a.shape[0] <= a.shape[1]:
        basis = solvers.dual_basis(B, solvers.dual_spectrum(B, a @ a.T), y_tr, "float64")
        e_tr, e_te = (solvers.embed(B, basis, c @ a.T, "float64") for c in (a, b))
    else:
        spec = solvers.primal_spectrum(B, n=float(a.shape[0]), sx=a.sum(0), sxx=a.T @ a)
        basis = solvers.primal_basis(B, spec, sy=y_tr.sum(0), syy=(y_tr * y_tr).sum(0),
                                     sxy=a.T @ y_tr, dtype="float64")
        e_tr, e_te = (solvers.embed(B, basis, c, "float64") for c in (a, b))
    idx = solvers.gcv_select(B, basis, alphas)
    return (solvers.predict(B, basis, e_tr, alphas, idx, "float64"),
            solvers.predict(B, basis, e_te, alphas, idx, "float64"))


def reduce_rank(fitted: np.ndarray, pred: np.ndarray, n_channels: int, rank: int):
    """Reduced-rank (over channels) version of ridge predictions, per time point.

    ``fitted`` (n_tr, C*T) and ``pred`` (n_te, C*T) are ridge's training and held-out values.
    At every time point the centred held-out values are projected on the top ``rank`` right
    singular vectors of the centred fitted values (eigenvectors of their C x C scatter), all
    time points in one batched eigendecomposition.
    """
    C = n_channels
    ft = fitted.reshape(fitted.shape[0], C, -1).transpose(2, 0, 1)  # (T, n_tr, C)
    pt = pred.reshape(pred.shape[0], C, -1).transpose(2, 0, 1)  # (T, n_te, C)
    mu = ft.mean(1, keepdims=True)  # (T, 1, C)
    fc = ft - mu
    _, vecs = np.linalg.eigh(fc.transpose(0, 2, 1) @ fc)  # ascending eigenvalues
    V = vecs[:, :, C - rank:]  # (T, C, r)
    out = ((pt - mu) @ V) @ V.transpose(0, 2, 1) + mu  # (T, n_te, C)
    return out.transpose(1, 2, 0).reshape(pred.shape)


def pca_scores(x_tr: np.ndarray, x_te: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of training and held-out rows on the first ``k`` principal components of
    ``x_tr`` (centred at its mean, as scikit-learn's ``PCA``; component signs may differ).

    The components come from the smaller of the two scatter matrices (``n x n`` when there
    are fewer stimuli than units), one eigendecomposition for every ``k`` asked for.
    """
    mu = x_tr.mean(0)
    a, b = x_tr - mu, x_te - mu
    n, D = a.shape
    if n < D:
        w, U = np.linalg.eigh(a @ a.T)
        top = np.argsort(-w)[:k]
        V = (a.T @ U[:, top]) / np.sqrt(np.maximum(w[top], 1e-300))
    else:
        w, V = np.linalg.eigh(a.T @ a)
        V = V[:, np.argsort(-w)[:k]]
    return a @ V, b @ V


def compare_readouts(engine, layer: int, *, ranks=(1, 2), pca_components=(16, 64),
                     n_boot: int = 500, seed: int = 0) -> dict:
    """Held-out r of full ridge, factorised readouts and PCA-then-ridge, compared pairwise.

    Parameters
    ----------
    engine : AlignmentEngine
        A refreshed engine (its stimulus means, folds and features are used).
    layer : int
        Layer index.
    ranks : sequence of int
        Ranks of the factorised readouts.
    pca_components : sequence of int
        Components kept before ridge (capped by what the training set allows).
    n_boot : int
        Bootstrap resamples of the paired comparisons.
    seed : int
        Seed of the resampling.

    Returns
    -------
    dict
        ``readouts``: name -> ``{"mean_r", "r_time"}``; ``vs_ridge``: name -> ``{"diff",
        "ci", "p"}`` (mean r minus ridge's; paired bootstrap over held-out stimuli).
    """
    ly = engine.layers[layer]
    C = engine.n_channels
    seen = np.nonzero(engine.store.count > 0)[0]
    y_all = np.zeros((engine.features.n_stimuli, engine.n_targets))
    y_all[seen] = engine.store.means(seen)
    preds: dict[str, list[np.ndarray]] = {}
    ys = []
    for sp in engine.outer_splits():
        x_tr, x_te = ly.rows(sp.train), ly.rows(sp.predict)
        y_tr = y_all[sp.train]
        fitted, pred = ridge_fit_predict(x_tr, y_tr, x_te, engine.alphas)
        preds.setdefault("ridge", []).append(pred)
        for r in ranks:
            if r < C:
                preds.setdefault(f"factorised rank {r}", []).append(
                    reduce_rank(fitted, pred, C, r))
        ks = [k for k in pca_components if 1 <= k < x_tr.shape[1]]
        if ks:
            k_max = min(max(ks), x_tr.shape[0] - 1)
            s_tr, s_te = pca_scores(x_tr, x_te, k_max)
            for k in ks:
                k_eff = min(k, k_max)
                _, p = ridge_fit_predict(s_tr[:, :k_eff], y_tr, s_te[:, :k_eff], engine.alphas)
                preds.setdefault(f"PCA {k} then ridge", []).append(p)
        ys.append(y_all[sp.predict])
    y = np.concatenate(ys)
    w = np.vstack([np.ones(y.shape[0]), bootstrap_weights(y.shape[0], n_boot, seed)])
    scores = {}
    y_sums = (w @ y, w @ (y * y))  # the same for every readout
    for name, parts in preds.items():
        p = np.concatenate(parts)
        scores[name] = _weighted_mean_r(p, y, w, y_sums)  # (1 + B,)
    out = {"readouts": {}, "vs_ridge": {}, "n_boot": n_boot,
           "test": "paired bootstrap over held-out stimuli of the mean r over targets"}
    for name, parts in preds.items():
        p = np.concatenate(parts)
        r = (unit_columns(p) * unit_columns(y)).sum(0)
        out["readouts"][name] = {"mean_r": float(np.nanmean(r)),
                                 "r_time": np.nanmean(r.reshape(C, -1), 0).tolist()}
        if name != "ridge":
            d = scores[name] - scores["ridge"]
            boot = d[1:]
            pv = 2 * min((boot <= 0).mean(), (boot >= 0).mean())
            out["vs_ridge"][name] = {"diff": float(d[0]),
                                     "ci": np.nanpercentile(boot, [2.5, 97.5]).tolist(),
                                     "p": float(min(1.0, max(pv, 1.0 / (n_boot + 1))))}
    return out


def _weighted_mean_r(p: np.ndarray, y: np.ndarray, w: np.ndarray,
                     ys: tuple | None = None) -> np.ndarray:
    """Mean over targets of the weighted Pearson r, for each row of weights ``w``.

    ``ys``: ``(w @ y, w @ y^2)``, the same for every readout (computed here when not given).
    """
    sw = w.sum(1, keepdims=True)
    wy, wyy = ys if ys is not None else (w @ y, w @ (y * y))
    wp, wpp = w @ p, w @ (p * p)
    mp, my = wp / sw, wy / sw
    cov = w @ (p * y) - sw * mp * my
    vp = wpp - sw * mp * mp
    vy = wyy - sw * my * my
    den = vp * vy
    # a constant prediction (e.g. the mean, under a very large alpha) has no correlation
    tiny = 1e-12 * wpp * wyy
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > tiny, cov / np.sqrt(np.where(den > tiny, den, 1.0)), np.nan)
    return np.nanmean(r, axis=1)

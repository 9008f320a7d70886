"""The engine's ridge encoding against scikit-learn Ridge with the same folds (to 1e-6)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from neuralign.align import AlignmentEngine, stable_fold

from .conftest import make_problem

ALPHAS = np.logspace(-1, 4, 6)


def _means(fs, sids, epochs):
    ids = fs.stimulus_ids.tolist()
    y = np.zeros((len(ids), epochs.shape[1] * epochs.shape[2]))
    cnt = np.zeros(len(ids))
    for s, e in zip(sids, epochs):
        i = ids.index(s)
        y[i] += e.ravel()
        cnt[i] += 1
    return y / cnt[:, None]


def _zscore(x, ref_rows):
    mu, sd = x[ref_rows].mean(0), x[ref_rows].std(0)
    return (x - mu) / sd


def _sse(x_tr, y_tr, x_va, y_va, alpha):
    pred = Ridge(alpha=alpha, solver="svd").fit(x_tr, y_tr).predict(x_va)
    return ((y_va - pred) ** 2).sum(0)


def _pearson(a, b):
    a = a - a.mean(0)
    b = b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def test_nested_cv_matches_sklearn():
    fs, sids, epochs, times, ch = make_problem(n=80, reps=2, seed=1)
    eng = AlignmentEngine(fs, times=times, ch_names=ch, alphas=ALPHAS, n_folds=4,
                          alpha_selection="kfold")
    eng.add_epochs(sids, epochs)
    res = eng.refresh()
    y = _means(fs, sids, epochs)
    fold = np.array([stable_fold(s, 4) for s in fs.stimulus_ids])
    for li, feats in enumerate(fs.arrays):
        x = _zscore(np.asarray(feats, float), np.ones(len(fold), bool))
        preds = np.zeros_like(y)
        for f in range(4):
            sse = np.zeros((ALPHAS.size, y.shape[1]))
            for g in range(4):
                if g == f:
                    continue
                tr = (fold != f) & (fold != g)
                for k, a in enumerate(ALPHAS):
                    sse[k] += _sse(x[tr], y[tr], x[fold == g], y[fold == g], a)
            best = ALPHAS[np.argmin(sse, axis=0)]
            tr = fold != f
            preds[fold == f] = Ridge(alpha=best, solver="svd").fit(x[tr], y[tr]).predict(x[fold == f])
        ref = _pearson(preds, y).reshape(len(ch), len(times))
        np.testing.assert_allclose(res.encoding_r[li], ref, atol=1e-6)


def test_train_test_matches_sklearn():
    fs, sids, epochs, times, ch = make_problem(n=100, reps=3, seed=2)
    test_ids = fs.stimulus_ids[:25].tolist()
    eng = AlignmentEngine(fs, times=times, ch_names=ch, alphas=ALPHAS, n_folds=5, test_ids=test_ids,
                          alpha_selection="kfold")
    eng.add_epochs(sids, epochs)
    res = eng.refresh()
    y = _means(fs, sids, epochs)
    is_test = np.isin(fs.stimulus_ids, test_ids)
    fold = np.array([stable_fold(s, 5) for s in fs.stimulus_ids])
    for li, feats in enumerate(fs.arrays):
        x = _zscore(np.asarray(feats, float), ~is_test)
        sse = np.zeros((ALPHAS.size, y.shape[1]))
        for g in range(5):
            tr = ~is_test & (fold != g)
            va = ~is_test & (fold == g)
            for k, a in enumerate(ALPHAS):
                sse[k] += _sse(x[tr], y[tr], x[va], y[va], a)
        best = ALPHAS[np.argmin(sse, axis=0)]
        pred = Ridge(alpha=best, solver="svd").fit(x[~is_test], y[~is_test]).predict(x[is_test])
        ref = _pearson(pred, y[is_test]).reshape(len(ch), len(times))
        np.testing.assert_allclose(res.encoding_r[li], ref, atol=1e-6)
        np.testing.assert_allclose(res.encoding_alpha[li].ravel(), best)


def test_planted_layer_wins():
    fs, sids, epochs, times, ch = make_problem(n=150, reps=4, noise=1.0, seed=3)
    eng = AlignmentEngine(fs, times=times, ch_names=ch)
    eng.add_epochs(sids, epochs)
    res = eng.refresh()
    enc = res.encoding_map()
    assert enc[0].mean() > 0.5  # the layer that generated the EEG
    assert abs(enc[1].mean()) < 0.2  # an unrelated layer


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_backend_matches_numpy(dtype):
    pytest.importorskip("torch")
    fs, sids, epochs, times, ch = make_problem(seed=4)
    out = []
    for backend in ("numpy", "torch"):
        eng = AlignmentEngine(fs, times=times, ch_names=ch, backend=backend, dtype=dtype)
        eng.add_epochs(sids, epochs)
        out.append(eng.refresh().encoding_r)
    np.testing.assert_allclose(out[0], out[1], atol=1e-6 if dtype == "float64" else 1e-3)


def _gcv_alphas(x_tr, y_tr):
    """GCV per target from sklearn fits: n RSS / (n - 1 - df)^2, df = trace of the hat matrix."""
    n = x_tr.shape[0]
    xc = x_tr - x_tr.mean(0)
    s = np.linalg.svd(xc, compute_uv=False)
    scores = []
    for a in ALPHAS:
        rss = ((y_tr - Ridge(alpha=a, solver="svd").fit(x_tr, y_tr).predict(x_tr)) ** 2).sum(0)
        df = (s**2 / (s**2 + a)).sum()
        scores.append(n * rss / (n - 1 - df) ** 2)
    return ALPHAS[np.argmin(np.stack(scores), axis=0)]


@pytest.mark.parametrize("design", [False, True])
def test_gcv_matches_sklearn(design):
    fs, sids, epochs, times, ch = make_problem(n=90, reps=2, seed=9)
    test_ids = fs.stimulus_ids[:20].tolist() if design else None
    eng = AlignmentEngine(fs, times=times, ch_names=ch, alphas=ALPHAS, n_folds=4, test_ids=test_ids)
    eng.add_epochs(sids, epochs)
    res = eng.refresh()
    y = _means(fs, sids, epochs)
    is_test = np.isin(fs.stimulus_ids, test_ids) if design else np.zeros(len(y), bool)
    fold = np.array([stable_fold(s, 4) for s in fs.stimulus_ids])
    for li, feats in enumerate(fs.arrays):
        x = _zscore(np.asarray(feats, float), ~is_test)
        if design:
            tr = ~is_test
            best = _gcv_alphas(x[tr], y[tr])
            pred = Ridge(alpha=best, solver="svd").fit(x[tr], y[tr]).predict(x[is_test])
            ref = _pearson(pred, y[is_test])
        else:
            preds = np.zeros_like(y)
            for f in range(4):
                tr = fold != f
                best = _gcv_alphas(x[tr], y[tr])
                preds[~tr] = Ridge(alpha=best, solver="svd").fit(x[tr], y[tr]).predict(x[~tr])
            ref = _pearson(preds, y)
        np.testing.assert_allclose(res.encoding_r[li], ref.reshape(len(ch), len(times)), atol=1e-6)

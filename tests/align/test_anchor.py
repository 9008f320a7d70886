"""The live anchor (Schur-complement extension of a kept eigendecomposition) against fresh
solves and scikit-learn, over several extensions with target changes in between."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from neuralign.align import solvers
from neuralign.align.anchor import DualAnchor
from neuralign.align.backends import get_backend

ALPHAS = np.logspace(-1, 4, 6)


def _fresh(gram, train, predict, y, alphas, idx=None):
    """GCV scores and predictions from a fresh eigendecomposition of the training Gram."""
    B = get_backend("numpy")
    spec = solvers.dual_spectrum(B, gram[np.ix_(train, train)])
    basis = solvers.dual_basis(B, spec, y[train], "float64")
    scores = solvers.gcv_scores(B, basis, alphas)
    if idx is None:
        idx = np.argmin(scores, 0)
    E = solvers.embed(B, basis, gram[np.ix_(predict, train)], "float64")
    return scores, idx, solvers.predict(B, basis, E, alphas, idx, "float64")


def _problem(rng, n_all, M, dim):
    """Correlated features ``X`` (n_all, dim), their Gram matrix and targets ``y`` (n_all, M)
    that ``X`` partly predicts."""
    X = rng.standard_normal((n_all, dim)) @ rng.standard_normal((dim, dim)) / np.sqrt(dim)
    y = X @ rng.standard_normal((dim, M)) / np.sqrt(dim) + rng.standard_normal((n_all, M))
    return X, X @ X.T, y


@pytest.mark.parametrize("dim", [40, 130, 400], ids=["n>D", "n~D", "n<D"])
def test_anchor_extensions_equal_fresh_solves_and_sklearn(dim):
    rng = np.random.default_rng(dim)
    n_all, M = 130, 7
    X, gram, y = _problem(rng, n_all, M, dim)
    rows0 = np.arange(60)
    an = DualAnchor(gram, rows0, y[rows0], ALPHAS)
    an32 = DualAnchor(gram, rows0, y[rows0], ALPHAS)  # the same session, float32 products
    train = rows0
    news = (np.arange(60, 64), np.arange(64, 80), np.arange(80, 100))
    for i, new in enumerate(news):
        # targets of some anchored and some added rows change (new repetitions arrived)
        changed = np.unique(np.concatenate([rng.choice(60, 5, replace=False), train[-2:]]))
        delta = 0.3 * rng.standard_normal((changed.size, M))
        y[changed] += delta
        an.apply_changes(changed, delta)
        an32.apply_changes(changed, delta)
        train = np.concatenate([train, new])
        predict = np.arange(100, 112 + 9 * i)  # more test stimuli are seen as time goes
        idx, pred = an.solve(train, predict, lambda r: y[r], None, "float64")
        scores, idx_ref, pred_ref = _fresh(gram, train, predict, y, ALPHAS)
        assert an.k == train.size - rows0.size
        np.testing.assert_array_equal(idx, idx_ref)
        np.testing.assert_allclose(pred, pred_ref, rtol=1e-9, atol=1e-9)
        # a refit with given alphas (every alpha used by some target), float64 and float32
        fixed = (np.arange(M) + i) % ALPHAS.size
        _, pred64 = an.solve(train, predict, lambda r: y[r], fixed, "float64")
        _, _, pred_fixed = _fresh(gram, train, predict, y, ALPHAS, fixed)
        np.testing.assert_allclose(pred64, pred_fixed, rtol=1e-9, atol=1e-9)
        _, pred32 = an32.solve(train, predict, lambda r: y[r], fixed, "float32")
        scale = np.abs(pred_fixed).max()
        np.testing.assert_allclose(pred32, pred_fixed, atol=1e-4 * scale)
        # and scikit-learn's Ridge with each target's alpha, on the features themselves
        for m in range(M):
            ref = Ridge(alpha=ALPHAS[fixed[m]]).fit(X[train], y[train, m]).predict(X[predict])
            np.testing.assert_allclose(pred64[:, m], ref, rtol=1e-7, atol=1e-7)
    # the GCV scores themselves (not only their argmin) equal the fresh ones
    scores, _, _ = _fresh(gram, train, predict, y, ALPHAS)
    np.testing.assert_allclose(an.gcv_scores(train, lambda r: y[r]), scores, rtol=1e-8)


@pytest.mark.parametrize("dim", [40, 130, 400], ids=["n>D", "n~D", "n<D"])
def test_lean_anchor_equals_fresh_solves_as_targets_and_alphas_change(dim):
    """A lean anchor (the added rows' terms of each target's own alpha only) selects alphas by
    GCV before rows are added, then refits exactly through additions, changed targets and
    alphas that move for some targets (float64 and float32); GCV with rows added is refused."""
    rng = np.random.default_rng(dim + 1)
    n_all, M = 130, 9
    X, gram, y = _problem(rng, n_all, M, dim)
    rows0 = np.arange(60)
    predict = np.arange(100, 120)
    an = DualAnchor(gram, rows0, y[rows0], ALPHAS, lean=True)
    an32 = DualAnchor(gram, rows0, y[rows0], ALPHAS, lean=True)
    idx, pred = an.solve(rows0, predict, lambda r: y[r], None, "float64")
    _, idx_ref, pred_ref = _fresh(gram, rows0, predict, y, ALPHAS)
    np.testing.assert_array_equal(idx, idx_ref)
    np.testing.assert_allclose(pred, pred_ref, rtol=1e-9, atol=1e-9)
    an32.solve(rows0, predict, lambda r: y[r], idx, "float32")
    train = rows0
    for i, new in enumerate((np.arange(60, 66), np.arange(66, 80), np.arange(80, 100))):
        changed = np.unique(np.concatenate([rng.choice(60, 4, replace=False), train[-2:]]))
        delta = 0.3 * rng.standard_normal((changed.size, M))
        y[changed] += delta
        for a in (an, an32):
            a.apply_changes(changed, delta)
        train = np.concatenate([train, new])
        if i:  # some targets move to another alpha (re-selected elsewhere, e.g. k-fold)
            idx = idx.copy()
            idx[rng.choice(M, 3, replace=False)] = rng.integers(0, ALPHAS.size, 3)
        got, pred = an.solve(train, predict, lambda r: y[r], idx, "float64")
        np.testing.assert_array_equal(got, idx)
        _, _, pred_ref = _fresh(gram, train, predict, y, ALPHAS, idx)
        np.testing.assert_allclose(pred, pred_ref, rtol=1e-9, atol=1e-9)
        for m in range(M):
            ref = Ridge(alpha=ALPHAS[idx[m]]).fit(X[train], y[train, m]).predict(X[predict])
            np.testing.assert_allclose(pred[:, m], ref, rtol=1e-7, atol=1e-7)
        _, pred32 = an32.solve(train, predict, lambda r: y[r], idx, "float32")
        np.testing.assert_allclose(pred32, pred_ref, atol=1e-4 * np.abs(pred_ref).max())
    assert an.k == train.size - rows0.size
    assert not an.can_select(train)
    with pytest.raises(ValueError, match="lean"):
        an.solve(train, predict, lambda r: y[r], None, "float64")
    with pytest.raises(ValueError, match="lean"):
        an.GDV  # noqa: B018
    # a full anchor keeps the 2K products of every added row; a lean one, one
    full = DualAnchor(gram, rows0, y[rows0], ALPHAS)
    full.solve(train, predict, lambda r: y[r], idx, "float64")
    assert an.nbytes() < full.nbytes()


@pytest.mark.parametrize("dim", [40, 400], ids=["n>D", "n<D"])
def test_lean_anchor_carries_the_added_rows_terms_exactly(dim):
    """Kept alphas over many refreshes: the added rows' terms are carried (bordered Cholesky
    factor, folded target changes of anchor rows and added rows, rows newly predicted) and
    the predictions equal fresh solves and scikit-learn at every step."""
    rng = np.random.default_rng(dim + 7)
    n_all, M = 200, 8
    X, gram, y = _problem(rng, n_all, M, dim)
    rows0 = np.arange(50)
    an = DualAnchor(gram, rows0, y[rows0], ALPHAS, lean=True)
    idx, _ = an.solve(rows0, np.arange(130, 140), lambda r: y[r], None, "float64")
    train, predict = rows0, np.arange(130, 140)
    steps = [np.arange(50 + 6 * i, 56 + 6 * i) for i in range(10)]
    for i, new in enumerate(steps):
        if i % 3 == 1:  # targets change: anchor rows, added rows, a predicted row
            changed = np.unique(np.concatenate([rng.choice(50, 3, replace=False),
                                                train[50:][-2:], predict[:1]]))
            delta = 0.4 * rng.standard_normal((changed.size, M))
            y[changed] += delta
            an.apply_changes(changed, delta)
        if i % 4 == 2:  # more stimuli to predict
            predict = np.union1d(predict, np.arange(140 + 3 * i, 143 + 3 * i))
        if i == 6:  # one target moves to another alpha: the carried terms are rebuilt
            idx = idx.copy()
            idx[0] = (idx[0] + 2) % ALPHAS.size
        train = np.concatenate([train, new])
        _, pred = an.solve(train, predict, lambda r: y[r], idx, "float64")
        assert an.added_terms.nbytes() > 0
        _, _, pred_ref = _fresh(gram, train, predict, y, ALPHAS, idx)
        np.testing.assert_allclose(pred, pred_ref, rtol=1e-9, atol=1e-9)
    for m in range(M):
        ref = Ridge(alpha=ALPHAS[idx[m]]).fit(X[train], y[train, m]).predict(X[predict])
        np.testing.assert_allclose(pred[:, m], ref, rtol=1e-7, atol=1e-7)

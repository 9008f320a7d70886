"""Kept-alpha refits in the primal form (Cholesky factorisations, kept solves) against
scikit-learn's Ridge and the eigendecomposition route, and in a live engine."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from neuralign.align import AlignmentEngine, solvers
from neuralign.align.backends import get_backend
from neuralign.align.primal import BlockStats, BlockTargets, slot_layout
from neuralign.align.refit import CarriedRefit

from .conftest import make_problem

ALPHAS = np.logspace(-1, 4, 6)
NP = get_backend("numpy")


def _stats(x, y):
    return (float(x.shape[0]), x.sum(0), x.T @ x, y.sum(0), (y * y).sum(0), x.T @ y)


def _data(n, d, m=7, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * rng.uniform(0.5, 2.0, d) + rng.normal(0, 1, d)
    y = x @ rng.standard_normal((d, m)) / np.sqrt(d) + rng.standard_normal((n, m)) + 5.0
    xp = rng.standard_normal((11, d)) * 1.5
    return x, y, xp


def _sklearn(x, y, xp, idx):
    out = np.empty((xp.shape[0], y.shape[1]))
    for k in np.unique(idx):
        g = idx == k
        out[:, g] = Ridge(alpha=ALPHAS[k], solver="svd").fit(x, y[:, g]).predict(xp).reshape(
            xp.shape[0], -1)
    return out


def _eigh_route(x, y, xp, idx, dtype):
    st = _stats(x, y)
    spec = solvers.primal_spectrum(NP, n=st[0], sx=st[1], sxx=st[2])
    basis = solvers.primal_basis(NP, spec, sy=st[3], syy=st[4], sxy=st[5], dtype=dtype)
    e = solvers.embed(NP, basis, xp, dtype)
    return solvers.predict(NP, basis, e, ALPHAS, idx, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("n", "d"), [(25, 40), (40, 40), (120, 30)], ids=["n<D", "n=D", "n>D"])
def test_cholesky_refit_matches_sklearn_and_eigh(n, d, dtype):
    """Per-target alphas (several groups, one of them a single target): the same predictions as
    scikit-learn's Ridge at those alphas, and as the eigendecomposition route."""
    x, y, xp = _data(n, d)
    idx = np.array([0, 5, 2, 2, 5, 0, 3])
    ref = _sklearn(x, y, xp, idx)
    got = solvers.primal_refit(_stats(x, y), xp, ALPHAS, idx, dtype)
    scale = np.abs(ref - ref.mean(0)).max()
    tol = 1e-9 if dtype == "float64" else 2e-5
    assert got.dtype == np.float64
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=tol * scale)
    np.testing.assert_allclose(got, _eigh_route(x, y, xp, idx, dtype), rtol=0, atol=tol * scale)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_kept_solves_reused_when_only_targets_change(dtype):
    """``Z_a`` kept from one refit serves the next one with the same training stimuli and new
    targets (only repetitions arrived): still scikit-learn's answer on the new targets."""
    x, y, xp = _data(60, 20, seed=3)
    idx = np.array([1, 1, 4, 4, 4, 2, 1])
    solves: dict = {}
    first = solvers.primal_refit(_stats(x, y), xp, ALPHAS, idx, dtype, solves=solves,
                                 keep_all=True)
    assert sorted(solves) == [1, 2, 4]
    kept = {k: v.copy() for k, v in solves.items()}
    y2 = y + np.random.default_rng(4).standard_normal(y.shape)
    second = solvers.primal_refit(_stats(x, y2), xp, ALPHAS, idx, dtype, solves=solves)
    for k in kept:  # reused, not recomputed
        np.testing.assert_array_equal(solves[k], kept[k])
    tol = 1e-9 if dtype == "float64" else 2e-5
    for got, yy in ((first, y), (second, y2)):
        ref = _sklearn(x, yy, xp, idx)
        np.testing.assert_allclose(got, ref, rtol=0, atol=tol * np.abs(ref - ref.mean(0)).max())


def test_not_positive_definite_falls_back():
    """A covariance that is not positive semi-definite (beyond the alpha) gives None."""
    x, y, xp = _data(30, 6)
    st = list(_stats(x, y))
    st[2] = st[2] - 1e6 * np.eye(6)
    assert solvers.primal_refit(tuple(st), xp, ALPHAS, np.zeros(7, np.int64), "float64") is None


def test_block_stats_slots_equal_sums_from_scratch():
    """One slot for every training fold (train/test design, GCV) and one slot per fold give the
    same training statistics as summing the training rows directly; the test block keeps
    none."""
    from neuralign.align.folds import BlockChanges

    rng = np.random.default_rng(1)
    n, d, m, F = 50, 4, 3, 3
    block = rng.integers(0, F + 1, n)
    x = rng.standard_normal((n, d))
    y = rng.standard_normal((n, m))
    for per_fold in (False, True):
        t = BlockTargets(F + 1, m, slot_layout(F, design=True, per_fold=per_fold))
        st = BlockStats(t, d)
        assert st.sxy.shape[0] == (F if per_fold else 1)
        rows = np.arange(n)
        ch = BlockChanges.group(block, F + 1, rows, np.zeros((n, m)), y, np.ones(n, bool))
        t.update(ch)
        st.update(lambda r: x[r], ch)
        tr = block < F
        want = _stats(x[tr], y[tr])
        got = st.training((F,))
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        if per_fold:
            keep = (block != 0) & tr
            for a, b in zip(st.training((0, F)), _stats(x[keep], y[keep]), strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        else:
            with pytest.raises(RuntimeError):
                st.training((0, F))


def _spy(monkeypatch):
    """Record every kept-alpha refit of a live engine: ``"build"`` (from the statistics) or
    ``"carried"`` (brought forward from the last refresh)."""
    calls = []
    build, advance = CarriedRefit.build.__func__, CarriedRefit.advance

    def spy_build(cls, *a, **k):
        out = build(cls, *a, **k)
        calls.append("build" if out is not None else "none")
        return out

    def spy_advance(self, *a, **k):
        ok = advance(self, *a, **k)
        if ok:
            calls.append("carried")
        return ok

    monkeypatch.setattr(CarriedRefit, "build", classmethod(spy_build))
    monkeypatch.setattr(CarriedRefit, "advance", spy_advance)
    return calls


@pytest.mark.parametrize("design", [True, False], ids=["train/test", "nested"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_live_kept_alpha_refit_equals_eigh_refit(design, dtype, monkeypatch):
    """In a live engine (narrow layers: the primal form), refits with the alphas kept are built
    once from the statistics, then carried forward by low-rank updates, after new training
    stimuli and after repetitions only, and give the maps of the eigendecomposition route (a
    re-anchored refresh with the same alphas)."""
    # many targets (as EEG has): the factorisations are cheaper than an eigendecomposition
    fs, sids, epochs, times, ch = make_problem(n=150, d=12, c=8, t=40, layers=2, reps=3,
                                               seed=5)
    test_ids = fs.stimulus_ids[:30].tolist() if design else None
    # epochs come repetition by repetition: 100 stimuli first, then 50 new training stimuli
    # (and repetitions), then repetitions only
    n1 = 100
    calls = _spy(monkeypatch)
    engs = [AlignmentEngine(fs, times=times, ch_names=ch, test_ids=test_ids, dtype=dtype)
            for _ in range(2)]
    for e in engs:
        e.add_epochs(sids[:n1], epochs[:n1])
        e.refresh()
    steps = [(n1, 130), (130, 160), (160, 230), (230, 300), (300, 400), (400, sids.size)]
    for i, (a, b) in enumerate(steps):
        got = []
        for e, reanchor in zip(engs, (False, True), strict=True):
            calls.clear()
            e.add_epochs(sids[a:b], epochs[a:b])
            got.append(e.refresh(select_alphas=False, reanchor=reanchor))
            n_fits = 0 if reanchor else 2 * len(e.outer_splits())
            assert calls == (["build"] if i == 0 else ["carried"]) * n_fits
        assert got[0].counts["solver_forms"] == ["primal", "primal"]
        np.testing.assert_array_equal(got[0].encoding_alpha, got[1].encoding_alpha)
        tol = 1e-10 if dtype == "float64" else 1e-4
        np.testing.assert_allclose(got[0].encoding_r, got[1].encoding_r, atol=tol)


def test_live_kept_alpha_refit_matches_sklearn():
    """The kept-alpha refit of a train/test session equals scikit-learn's Ridge fitted on the
    stimulus means with the alphas the engine reports."""
    fs, sids, epochs, times, ch = make_problem(n=150, d=12, c=8, t=40, layers=1, reps=3,
                                               seed=9)
    test = np.arange(30)
    eng = AlignmentEngine(fs, times=times, ch_names=ch, test_ids=fs.stimulus_ids[test].tolist(),
                          alphas=ALPHAS)
    eng.add_epochs(sids[:300], epochs[:300])
    eng.refresh()
    eng.add_epochs(sids[300:], epochs[300:])  # repetitions only: the kept solves serve
    eng.refresh(select_alphas=False)
    res = eng.refresh(select_alphas=False)
    rows = fs.rows(sids)
    y = np.zeros((fs.n_stimuli, res.encoding_r[0].size))
    np.add.at(y, rows, epochs.reshape(len(sids), -1))
    y /= np.bincount(rows, minlength=fs.n_stimuli)[:, None]
    x = fs.arrays[0]
    train = np.setdiff1d(np.arange(fs.n_stimuli), test)
    x = (x - x[train].mean(0)) / x[train].std(0)
    alpha = res.encoding_alpha[0].reshape(-1)
    pred = np.empty((test.size, y.shape[1]))
    for a in np.unique(alpha):
        g = alpha == a
        fit = Ridge(alpha=a, solver="svd").fit(x[train], y[train][:, g])
        pred[:, g] = fit.predict(x[test]).reshape(test.size, -1)
    pc, yc = pred - pred.mean(0), y[test] - y[test].mean(0)
    r = (pc * yc).sum(0) / np.sqrt((pc * pc).sum(0) * (yc * yc).sum(0))
    np.testing.assert_allclose(res.encoding_r[0].reshape(-1), r, atol=1e-10)


@pytest.mark.parametrize("design", [True, False], ids=["train/test", "nested"])
def test_reselected_alphas_served_by_the_carried_refit(design, monkeypatch):
    """With staggered re-selection a narrow layer that re-selects its alphas refits only the
    targets whose alpha changed, from its carried refit; the maps and alphas equal those of
    the eigendecomposition route (the same schedule with every refresh re-anchored)."""
    fs, sids, epochs, times, ch = make_problem(n=150, d=12, c=8, t=40, layers=2, reps=3,
                                               seed=7, noise=3.0)
    test_ids = fs.stimulus_ids[:30].tolist() if design else None
    moved = []
    real = CarriedRefit.retarget

    def spy(self, st, idx, xp_fn):
        changed = int((np.asarray(idx) != self.idx).sum())
        ok = real(self, st, idx, xp_fn)
        if ok and changed:
            moved.append(changed)
        return ok

    monkeypatch.setattr(CarriedRefit, "retarget", spy)
    engs = [AlignmentEngine(fs, times=times, ch_names=ch, test_ids=test_ids, reselect_every=2,
                            n_jobs=1) for _ in range(2)]
    for part in np.array_split(np.arange(sids.size), 9):
        got = []
        for e, reanchor in zip(engs, (False, True), strict=True):
            e.add_epochs(sids[part], epochs[part])
            got.append(e.refresh(reanchor=reanchor))
        np.testing.assert_array_equal(got[0].encoding_alpha, got[1].encoding_alpha)
        np.testing.assert_allclose(got[0].encoding_r, got[1].encoding_r, atol=1e-10)
    assert moved, "no re-selection changed an alpha: the test would not see the carried path"

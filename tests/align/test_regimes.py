"""The engine against scikit-learn in every regime: fewer, as many, more stimuli than features.

Wide layers (LVLM decoder layers are 2048-8192 wide; a session sees a few hundred stimuli) are
solved in the dual (kernel) form, narrow ones in the primal form; both must give scikit-learn's
answer, in the train/test design and in nested cross-validation, with GCV and K-fold alpha
selection, and float32 must stay within 1e-3 of float64.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from neuralign.align import AlignmentEngine, stable_fold
from neuralign.base import FeatureSet

ALPHAS = np.logspace(-1, 5, 7)
C, T = 3, 5


def _problem(n, dims, *, reps=2, noise=1.0, seed=0, rank=None):
    """``n`` stimuli, one layer per entry of ``dims``; the EEG is planted from layer 0."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"s{i:04d}" for i in range(n)])
    feats = []
    for d in dims:
        if rank is not None and rank < d:  # low-rank features (real layers are)
            x = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, d))
        else:
            x = rng.standard_normal((n, d))
        feats.append(x * rng.uniform(0.5, 2.0, d) + rng.normal(0, 3, d))
    x0 = (feats[0] - feats[0].mean(0)) / feats[0].std(0)
    w = rng.standard_normal((dims[0], C * T)) / np.sqrt(dims[0])
    sig = (x0 @ w).reshape(n, C, T)
    sids, epochs = [], []
    for _ in range(reps):
        for i in range(n):
            sids.append(ids[i])
            epochs.append(sig[i] + noise * rng.standard_normal((C, T)))
    fs = FeatureSet(ids, [f"l{k}" for k in range(len(dims))], feats)
    return fs, np.array(sids), np.stack(epochs), np.arange(T) / 100.0, [f"c{k}" for k in range(C)]


def _means(fs, sids, epochs):
    rows = fs.rows(sids)
    y = np.zeros((fs.n_stimuli, C * T))
    np.add.at(y, rows, epochs.reshape(len(sids), -1))
    return y / np.bincount(rows, minlength=fs.n_stimuli)[:, None]


def _z(x, ref):
    mu, sd = x[ref].mean(0), x[ref].std(0)
    sd[sd == 0] = 1
    return (x - mu) / sd


def _gcv(x, y):
    n = x.shape[0]
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    scores = []
    for a in ALPHAS:
        rss = ((y - Ridge(alpha=a, solver="svd").fit(x, y).predict(x)) ** 2).sum(0)
        scores.append(n * rss / (n - 1 - (s**2 / (s**2 + a)).sum()) ** 2)
    return ALPHAS[np.argmin(np.stack(scores), 0)]


def _kfold(x, y, fold, folds):
    sse = np.zeros((ALPHAS.size, y.shape[1]))
    for g in folds:
        tr, va = fold != g, fold == g
        for k, a in enumerate(ALPHAS):
            p = Ridge(alpha=a, solver="svd").fit(x[tr], y[tr]).predict(x[va])
            sse[k] += ((y[va] - p) ** 2).sum(0)
    return ALPHAS[np.argmin(sse, 0)]


def _corr(a, b):
    a, b = a - a.mean(0), b - b.mean(0)
    return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def _reference(fs, sids, epochs, *, test_ids, n_folds, selection):
    """scikit-learn Ridge with the engine's folds: (L, C, T) held-out r and alphas."""
    y = _means(fs, sids, epochs)
    is_test = np.isin(fs.stimulus_ids, test_ids) if test_ids is not None else None
    fold = np.array([stable_fold(s, n_folds) for s in fs.stimulus_ids])
    out = []
    for feats in fs.arrays:
        x = _z(np.asarray(feats, float), ~is_test if is_test is not None else slice(None))
        if is_test is not None:
            tr = ~is_test
            best = (_gcv(x[tr], y[tr]) if selection == "gcv"
                    else _kfold(x[tr], y[tr], fold[tr], range(n_folds)))
            pred = Ridge(alpha=best, solver="svd").fit(x[tr], y[tr]).predict(x[is_test])
            out.append(_corr(pred, y[is_test]))
        else:
            pred = np.zeros_like(y)
            for f in range(n_folds):
                tr = fold != f
                best = (_gcv(x[tr], y[tr]) if selection == "gcv"
                        else _kfold(x[tr], y[tr], fold[tr], [g for g in range(n_folds) if g != f]))
                pred[~tr] = Ridge(alpha=best, solver="svd").fit(x[tr], y[tr]).predict(x[~tr])
            out.append(_corr(pred, y))
    return np.stack(out).reshape(len(fs.arrays), C, T)


# regime -> (stimuli, layer widths): n_train < D, n_train = D, n_train > D
REGIMES = {"n<D": (60, (150, 40)), "n=D": (60, (48, 20)), "n>D": (120, (12, 6))}


def _backends():
    out = ["numpy"]
    try:
        import torch  # noqa: F401

        out.append("torch")
    except ImportError:
        pass
    return out


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("selection", ["gcv", "kfold"])
@pytest.mark.parametrize("design", [True, False], ids=["train/test", "nested"])
@pytest.mark.parametrize("regime", list(REGIMES))
def test_matches_sklearn_in_every_regime(regime, design, selection, backend):
    n, dims = REGIMES[regime]
    fs, sids, epochs, times, ch = _problem(n, dims, seed=len(regime) + design)
    test_ids = fs.stimulus_ids[:12].tolist() if design else None
    if regime == "n=D" and design:  # 48 training stimuli for a 48-wide layer
        assert n - len(test_ids) == dims[0]
    ref = _reference(fs, sids, epochs, test_ids=test_ids, n_folds=4, selection=selection)
    for form in ("auto", "dual", "primal"):
        eng = AlignmentEngine(fs, times=times, ch_names=ch, test_ids=test_ids, alphas=ALPHAS,
                              n_folds=4, alpha_selection=selection, form=form,
                              backend=backend)
        eng.add_epochs(sids, epochs)
        res = eng.refresh()
        np.testing.assert_allclose(res.encoding_r, ref, atol=1e-6, err_msg=form)
    if regime == "n<D":
        assert res.counts["solver_forms"] == ["primal", "primal"]  # forced
        eng = AlignmentEngine(fs, times=times, ch_names=ch, test_ids=test_ids, alphas=ALPHAS,
                              n_folds=4, alpha_selection=selection)
        eng.add_epochs(sids, epochs)
        assert eng.refresh().counts["solver_forms"][0] == "dual"


@pytest.mark.parametrize("design", [True, False], ids=["train/test", "nested"])
def test_float32_close_to_float64_when_wide(design):
    """At n << D (400 stimuli, D = 3000) float32 picks the same alphas and the same maps.

    (The engine before the dual form picked alphas 0.1-1 in float32 against 1e3-1e4 in float64
    here: mean |dr| 1e-2.)
    """
    fs, sids, epochs, times, ch = _problem(400, (3000,), reps=2, noise=1.0, seed=11)
    test_ids = fs.stimulus_ids[:80].tolist() if design else None
    res = {}
    for dtype in ("float64", "float32"):
        eng = AlignmentEngine(fs, times=times, ch_names=ch, test_ids=test_ids, dtype=dtype)
        eng.add_epochs(sids, epochs)
        res[dtype] = eng.refresh()
    dr = np.abs(res["float32"].encoding_r - res["float64"].encoding_r)
    assert dr.mean() < 1e-3, dr.mean()
    np.testing.assert_array_equal(res["float32"].encoding_alpha, res["float64"].encoding_alpha)
    assert np.nanmean(res["float64"].encoding_r) > 0.15  # the planted layer is found


def test_memory_mapped_features_give_the_same_maps(tmp_path):
    fs, sids, epochs, times, ch = _problem(70, (90, 10), seed=3)
    arrays = []
    for k, a in enumerate(fs.arrays):
        p = tmp_path / f"l{k}.npy"
        np.save(p, a.astype(np.float32))
        arrays.append(np.load(p, mmap_mode="r"))
    mm = FeatureSet(fs.stimulus_ids, fs.layers, arrays)
    inmem = FeatureSet(fs.stimulus_ids, fs.layers, [np.array(a) for a in arrays])
    out = []
    for f in (mm, inmem):
        eng = AlignmentEngine(f, times=times, ch_names=ch, test_ids=f.stimulus_ids[:15].tolist())
        eng.add_epochs(sids, epochs)
        out.append(eng.refresh())
    assert isinstance(mm.arrays[0], np.memmap)
    np.testing.assert_array_equal(out[0].encoding_r, out[1].encoding_r)


@pytest.mark.parametrize("design", [True, False], ids=["train/test", "nested"])
def test_live_caches_equal_offline(design):
    """Online accumulation with caches (Gram, statistics, reused spectra) = one batch solve."""
    fs, sids, epochs, times, ch = _problem(80, (200, 8), reps=3, seed=5)
    test_ids = fs.stimulus_ids[:16].tolist() if design else None
    live = AlignmentEngine(fs, times=times, ch_names=ch, test_ids=test_ids, incremental=True)
    assert live.plan.caches  # something is cached for live refreshes
    for part in np.array_split(np.arange(len(sids)), 7):
        live.add_epochs(sids[part], epochs[part])
        live.refresh()
    a = live.refresh(select_alphas=True)
    off = AlignmentEngine(fs, times=times, ch_names=ch, test_ids=test_ids, incremental=False)
    off.add_epochs(sids, epochs)
    b = off.refresh()
    np.testing.assert_allclose(a.encoding_r, b.encoding_r, atol=1e-10)
    np.testing.assert_array_equal(a.encoding_alpha, b.encoding_alpha)


def test_constant_target_is_nan():
    """A flat channel (no variance over stimuli) has no correlation: NaN, never a number."""
    fs, sids, epochs, times, ch = _problem(60, (30,), seed=8)
    epochs = epochs.copy()
    epochs[:, 1, :] = 4.0  # a flat channel
    eng = AlignmentEngine(fs, times=times, ch_names=ch, test_ids=fs.stimulus_ids[:12].tolist())
    eng.add_epochs(sids, epochs)
    res = eng.refresh()
    assert np.isnan(res.encoding_r[:, 1, :]).all()
    assert np.isfinite(res.encoding_r[:, 0, :]).all()


def test_ramp_channel_is_nan():
    """A ramp or counter channel (an amplifier's sample counter) cut into baselined epochs is
    the same curve in every epoch up to float32 rounding: no variance over stimuli, so NaN,
    not the random r in [-1, 1] the rounding would give (issue 16, item 6)."""
    fs, sids, epochs, times, ch = _problem(60, (30,), seed=8)
    rng = np.random.default_rng(3)
    epochs = epochs.astype(np.float32)
    # a baselined counter is one curve for every epoch; float32 processing (filters, baseline)
    # leaves it different only in the last bits
    curve = 1000.0 + 10.0 * np.arange(times.size)
    jitter = 1.0 + 2e-7 * rng.standard_normal((len(sids), times.size))
    epochs[:, 1, :] = (curve[None, :] * jitter).astype(np.float32)
    assert np.ptp(epochs[:, 1, :], axis=0).max() > 0  # not exactly constant: rounding differs
    eng = AlignmentEngine(fs, times=times, ch_names=ch, test_ids=fs.stimulus_ids[:12].tolist())
    eng.add_epochs(sids, epochs)
    res = eng.refresh()
    assert np.isnan(res.encoding_r[:, 1, :]).all()
    assert np.isfinite(res.encoding_r[:, 0, :]).all()


@pytest.mark.parametrize("design", [True, False], ids=["train/test", "nested"])
def test_extended_refit_equals_rebuilt_refit(design):
    """A refit with the alphas kept, through extended eigendecompositions (stimuli added since
    the last rebuild), equals the same refit from freshly rebuilt ones."""
    fs, sids, epochs, times, ch = _problem(90, (300,), reps=2, seed=7)
    test_ids = fs.stimulus_ids[:18].tolist() if design else None
    order = np.argsort(np.array([s[1:] for s in sids]), kind="stable")[::-1]  # new stimuli last
    sids, epochs = sids[order], epochs[order]
    out = []
    for reanchor in (False, True):
        eng = AlignmentEngine(fs, times=times, ch_names=ch, test_ids=test_ids)
        eng.add_epochs(sids[:120], epochs[:120])
        eng.refresh()
        eng.add_epochs(sids[120:], epochs[120:])  # unseen stimuli join the training sets
        out.append(eng.refresh(select_alphas=False, reanchor=reanchor))
    assert out[0].counts["solver_forms"] == ["dual"]
    np.testing.assert_array_equal(out[0].encoding_alpha, out[1].encoding_alpha)
    np.testing.assert_allclose(out[0].encoding_r, out[1].encoding_r, atol=1e-10)

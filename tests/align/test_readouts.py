"""Readouts beside ridge: factorised (reduced-rank) and PCA-then-ridge, with paired tests."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from neuralign.align import AlignmentEngine
from neuralign.align.readouts import compare_readouts, reduce_rank, ridge_fit_predict
from neuralign.base import FeatureSet

C, T = 6, 5


def _engine(rank: int, seed=0, n=260, D=30, noise=1.0):
    rng = np.random.default_rng(seed)
    ids = np.array([f"s{i:03d}" for i in range(n)])
    x = rng.standard_normal((n, D))
    # `rank` spatial patterns, each driven by its own feature direction, at every time
    sig = sum(np.einsum("n,c,t->nct", x @ rng.standard_normal(D) / np.sqrt(D),
                        rng.standard_normal(C), rng.uniform(0.5, 1.5, T)) for _ in range(rank))
    sids, ep = [], []
    for _ in range(3):
        for i in range(n):
            sids.append(ids[i])
            ep.append(sig[i] + noise * rng.standard_normal((C, T)))
    fs = FeatureSet(ids, ["layer"], [x])
    eng = AlignmentEngine(fs, times=np.arange(T) * 0.02, ch_names=[f"c{i}" for i in range(C)],
                          test_ids=ids[:80].tolist())
    eng.add_epochs(np.array(sids), np.stack(ep))
    res = eng.refresh()
    return eng, res


def test_ridge_readout_is_the_engine_and_full_rank_changes_nothing():
    eng, res = _engine(rank=2)
    sp = eng.outer_splits()[0]
    y = eng.store.means(np.arange(eng.features.n_stimuli))
    x = eng.layers[0].rows(np.arange(eng.features.n_stimuli))
    fitted, pred = ridge_fit_predict(x[sp.train], y[sp.train], x[sp.predict], eng.alphas)
    yt = y[sp.predict]
    r = ((pred - pred.mean(0)) * (yt - yt.mean(0))).sum(0) / np.sqrt(
        ((pred - pred.mean(0)) ** 2).sum(0) * ((yt - yt.mean(0)) ** 2).sum(0))
    np.testing.assert_allclose(r, res.encoding_r.ravel(), atol=1e-10)
    np.testing.assert_allclose(reduce_rank(fitted, pred, C, C), pred, atol=1e-10)


def test_rank_one_brain_favours_the_factorised_readout():
    eng, _ = _engine(rank=1, seed=1)
    out = compare_readouts(eng, 0, ranks=(1, 3), pca_components=(8,), n_boot=300)
    assert out["readouts"]["factorised rank 1"]["mean_r"] > out["readouts"]["ridge"]["mean_r"]
    assert out["vs_ridge"]["factorised rank 1"]["diff"] > 0
    assert out["vs_ridge"]["factorised rank 1"]["p"] < 0.05


def test_rank_three_brain_is_lost_by_a_rank_one_readout():
    eng, _ = _engine(rank=3, seed=2, noise=0.5)
    out = compare_readouts(eng, 0, ranks=(1,), pca_components=(), n_boot=300)
    v = out["vs_ridge"]["factorised rank 1"]
    assert v["diff"] < 0
    assert v["ci"][1] < 0
    assert v["p"] < 0.01


def test_pca_then_ridge_uses_training_components_only():
    eng, _ = _engine(rank=1, seed=3)
    out = compare_readouts(eng, 0, ranks=(), pca_components=(5,), n_boot=50)
    sp = eng.outer_splits()[0]
    x = eng.layers[0].rows(np.arange(eng.features.n_stimuli))
    y = eng.store.means(np.arange(eng.features.n_stimuli))
    pca = PCA(5, svd_solver="full").fit(x[sp.train])
    _, pred = ridge_fit_predict(pca.transform(x[sp.train]), y[sp.train],
                                pca.transform(x[sp.predict]), eng.alphas)
    yt = y[sp.predict]
    r = ((pred - pred.mean(0)) * (yt - yt.mean(0))).sum(0) / np.sqrt(
        ((pred - pred.mean(0)) ** 2).sum(0) * ((yt - yt.mean(0)) ** 2).sum(0))
    assert abs(out["readouts"]["PCA 5 then ridge"]["mean_r"] - r.mean()) < 1e-10


def _r(pred, y):
    pc, yc = pred - pred.mean(0), y - y.mean(0)
    return (pc * yc).sum(0) / np.sqrt((pc * pc).sum(0) * (yc * yc).sum(0))


def test_readouts_equal_scikit_learn_pipelines():
    """One alpha (no selection): ridge = StandardScaler + Ridge, PCA-then-ridge = scaler + PCA +
    scaler + Ridge, the factorised readout = ridge's predictions projected per time point on
    the top right singular vectors of its fitted values (numpy SVD)."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(5)
    n, D = 150, 20
    ids = np.array([f"s{i:03d}" for i in range(n)])
    x = rng.standard_normal((n, D)) * rng.uniform(0.5, 3, D) + 2
    sig = np.einsum("n,c,t->nct", x @ rng.standard_normal(D) / 4, rng.standard_normal(C),
                    rng.uniform(0.5, 1.5, T))
    ep = np.concatenate([sig + rng.standard_normal(sig.shape) for _ in range(2)])
    eng = AlignmentEngine(FeatureSet(ids, ["layer"], [x]), times=np.arange(T) * 0.02,
                          ch_names=[f"c{i}" for i in range(C)], test_ids=ids[:50].tolist(),
                          alphas=[30.0])
    eng.add_epochs(np.concatenate([ids, ids]), ep)
    eng.refresh()
    out = compare_readouts(eng, 0, ranks=(1,), pca_components=(6,), n_boot=20)
    y = (ep[:n] + ep[n:]).reshape(n, -1) / 2
    te = np.isin(ids, ids[:50])
    ridge = make_pipeline(StandardScaler(), Ridge(alpha=30.0)).fit(x[~te], y[~te])
    pca = make_pipeline(StandardScaler(), PCA(6), StandardScaler(), Ridge(alpha=30.0))
    pca.fit(x[~te], y[~te])
    assert abs(out["readouts"]["ridge"]["mean_r"] - _r(ridge.predict(x[te]), y[te]).mean()) < 1e-9
    assert abs(out["readouts"]["PCA 6 then ridge"]["mean_r"]
               - _r(pca.predict(x[te]), y[te]).mean()) < 1e-9
    fit, pred = ridge.predict(x[~te]).reshape(-1, C, T), ridge.predict(x[te]).reshape(-1, C, T)
    low = np.empty_like(pred)
    for t in range(T):
        mu = fit[:, :, t].mean(0)
        v = np.linalg.svd(fit[:, :, t] - mu)[2][:1].T
        low[:, :, t] = (pred[:, :, t] - mu) @ v @ v.T + mu
    r1 = _r(low.reshape(len(low), -1), y[te]).mean()
    assert abs(out["readouts"]["factorised rank 1"]["mean_r"] - r1) < 1e-9


def test_pca_scores_are_scikit_learn_pca_up_to_sign():
    from neuralign.align.readouts import pca_scores

    rng = np.random.default_rng(6)
    for n, D in ((40, 90), (90, 12)):  # fewer stimuli than units, and more
        x_tr, x_te = rng.standard_normal((n, D)), rng.standard_normal((15, D))
        s_tr, s_te = pca_scores(x_tr, x_te, 5)
        pca = PCA(5, svd_solver="full").fit(x_tr)
        ref_tr, ref_te = pca.transform(x_tr), pca.transform(x_te)
        sign = np.sign((s_tr * ref_tr).sum(0))
        np.testing.assert_allclose(s_tr * sign, ref_tr, atol=1e-9)
        np.testing.assert_allclose(s_te * sign, ref_te, atol=1e-9)

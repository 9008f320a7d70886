"""Variance partitioning on the engine's ridge: banded ridge = scikit-learn on rescaled bands,
planted unique parts recovered, random features not significant."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from neuralign.align import AlignmentEngine
from neuralign.align.partition import variance_partition
from neuralign.base import FeatureSet
from neuralign.errors import NeuralignError

C, T = 3, 8


def _engines(sets, sids, epochs, ids, test_ids, **kw):
    out = {}
    for label, x in sets.items():
        fs = FeatureSet(ids, [label], [x])
        eng = AlignmentEngine(fs, times=np.arange(T) / 100, ch_names=[f"c{i}" for i in range(C)],
                              test_ids=test_ids, **kw)
        eng.add_epochs(sids, epochs)
        eng.refresh()
        out[label] = eng
    return out


def _planted(seed=0, n=160, n_test=50, noise=1.0, random_b=False):
    rng = np.random.default_rng(seed)
    ids = np.array([f"s{i:03d}" for i in range(n)])
    shared = rng.standard_normal((n, 3))
    xa = np.hstack([shared, rng.standard_normal((n, 5))])
    xb = np.hstack([shared, rng.standard_normal((n, 6))])
    prof_a = np.exp(-0.5 * ((np.arange(T) - 2) / 1.0) ** 2)  # A early
    prof_b = np.exp(-0.5 * ((np.arange(T) - 6) / 1.0) ** 2)  # B late
    sa = xa[:, 3:] @ rng.standard_normal(5) / 2  # A's unique signal
    sb = xb[:, 3:] @ rng.standard_normal(6) / 2  # B's unique signal
    ss = shared @ rng.standard_normal(3) / 2  # shared, at both latencies
    sig = ((sa + ss)[:, None] * prof_a[None] + (sb + ss)[:, None] * prof_b[None])
    sig = sig[:, None, :] * rng.uniform(0.5, 1.5, C)[None, :, None]
    sids, ep = [], []
    for _ in range(3):
        for i in range(n):
            sids.append(ids[i])
            ep.append(sig[i] + noise * rng.standard_normal((C, T)))
    if random_b:
        xb = rng.standard_normal(xb.shape)
    return ids, np.array(sids), np.stack(ep), xa, xb, ids[:n_test].tolist()


def test_banded_ridge_equals_sklearn_on_rescaled_bands():
    ids, sids, ep, xa, xb, test_ids = _planted(seed=1)
    engs = _engines({"A": xa, "B": xb}, sids, ep, ids, test_ids)
    res = variance_partition(engs, {"A": 0, "B": 0}, n_boot=20, n_perm=20)
    y = np.zeros((ids.size, C * T))
    rows = engs["A"].features.rows(sids)
    np.add.at(y, rows, ep.reshape(len(sids), -1))
    y /= np.bincount(rows)[:, None]
    te = np.isin(ids, test_ids)
    z = [(x - x[~te].mean(0)) / x[~te].std(0) for x in (xa, xb)]
    ia, ib = (engs[k].alpha_indices(0)[0] for k in ("A", "B"))
    al = engs["A"].alphas
    pred = np.empty((te.sum(), C * T))
    for m in range(C * T):
        x = np.hstack([z[0] / np.sqrt(al[ia[m]]), z[1] / np.sqrt(al[ib[m]])])
        pred[:, m] = Ridge(alpha=1.0).fit(x[~te], y[~te, m]).predict(x[te])
    yt = y[te]
    r2 = 1 - ((yt - pred) ** 2).sum(0) / ((yt - yt.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(res.r2["A+B"], r2, atol=1e-8)
    parts = res.parts
    np.testing.assert_allclose(parts["unique A"], res.r2["A+B"] - res.r2["B"])
    np.testing.assert_allclose(parts["shared"], res.r2["A"] + res.r2["B"] - res.r2["A+B"])


def test_planted_unique_parts_are_found_where_they_are():
    ids, sids, ep, xa, xb, test_ids = _planted(seed=2, n=300, n_test=80, noise=0.7)
    engs = _engines({"A": xa, "B": xb}, sids, ep, ids, test_ids)
    res = variance_partition(engs, {"A": 0, "B": 0}, n_boot=200, n_perm=200)
    ua, ub = res.time_course("unique A"), res.time_course("unique B")
    assert ua[2] > 0.05
    assert ua[2] > ub[2]
    assert ub[6] > 0.05
    assert ub[6] > ua[6]
    assert res.time_course("shared")[[2, 6]].min() > 0.05
    assert res.p_unique_mean["unique A"] < 0.01
    assert res.p_unique_mean["unique B"] < 0.01
    assert res.ci_time["unique A"][0, 2] > 0  # interval above zero where A is unique
    d = res.to_dict()
    assert set(d["parts_mean"]) == {"unique A", "unique B", "shared"}


def test_three_sets_and_bad_input():
    ids, sids, ep, xa, xb, test_ids = _planted(seed=3)
    xc = np.random.default_rng(0).standard_normal((ids.size, 4))
    engs = _engines({"A": xa, "B": xb, "R": xc}, sids, ep, ids, test_ids)
    res = variance_partition(engs, {"A": 0, "B": 0, "R": 0}, n_boot=20, n_perm=20)
    assert {"unique A", "unique B", "unique R", "shared A&B", "shared all"} <= set(res.parts)
    with pytest.raises(NeuralignError, match="2 or 3"):
        variance_partition({"A": engs["A"]}, {"A": 0})


def test_random_features_get_no_significant_unique_variance():
    """Calibration (short): random B is significant in at most a few of 20 runs."""
    hits = 0
    for s in range(20):
        ids, sids, ep, xa, xb, test_ids = _planted(seed=100 + s, n=150, n_test=50,
                                                   random_b=True)
        engs = _engines({"A": xa, "B": xb}, sids, ep, ids, test_ids)
        res = variance_partition(engs, {"A": 0, "B": 0}, n_boot=10, n_perm=200, seed=s)
        hits += res.p_unique_mean["unique B"] <= 0.05
    assert hits <= 3  # expected 1 of 20 at the 5% level; P(>3 | 5%) < 2%


def test_primal_and_dual_banded_ridge_agree():
    """Narrow sets (n > D) are solved in the primal form by default: the same predictions as
    the dual (kernel) form, with and without a test set."""
    ids, sids, ep, xa, xb, test_ids = _planted(seed=5, n=120)
    for tid in (test_ids, None):
        engs = _engines({"A": xa, "B": xb}, sids, ep, ids, tid)
        res = {f: variance_partition(engs, {"A": 0, "B": 0}, n_boot=10, n_perm=10, form=f)
               for f in ("dual", "primal", "auto")}
        for k in ("A", "B", "A+B"):
            np.testing.assert_allclose(res["primal"].r2[k], res["dual"].r2[k], atol=1e-9)
            np.testing.assert_array_equal(res["auto"].r2[k], res["primal"].r2[k])
    with pytest.raises(NeuralignError, match="form"):
        variance_partition(engs, {"A": 0, "B": 0}, form="other")

"""The closed-loop chooser: variance reduction against a brute-force posterior, allocation
by marginal gain, honest train/test split."""

from __future__ import annotations

import numpy as np
import pytest

from neuralign.align import AlignmentEngine
from neuralign.align.chooser import allocate, choose_block, variance_reduction
from neuralign.base import FeatureSet


def _posterior_test_var(x, train, test, alpha):
    """Summed posterior variance of the test predictions (weights ~ N(0, I / alpha))."""
    xc = x - (x[train].mean(0) if train.size else x[test].mean(0))
    A = xc[train].T @ xc[train] + alpha * np.eye(x.shape[1])
    S = np.linalg.inv(A)  # posterior covariance of the weights (noise variance 1)
    return float(np.einsum("id,de,ie->", xc[test], S, xc[test]))


def test_first_pick_is_the_best_variance_reduction():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 5)) * np.array([3.0, 1.0, 1.0, 0.5, 0.2])
    x[45:] *= 3  # some candidates far out: informative
    gram = x @ x.T
    train, test, cand = np.arange(10), np.arange(10, 20), np.arange(20, 60)
    alpha = 2.0
    picks = variance_reduction(gram, train, test, cand, alpha, 3)
    base = _posterior_test_var(x, train, test, alpha)
    gains = {int(c): base - _posterior_test_var(x, np.r_[train, c], test, alpha)
             for c in cand}
    assert picks[0][0] == max(gains, key=gains.get)
    # greedy: the second pick is the best given the first
    gains2 = {int(c): _posterior_test_var(x, np.r_[train, picks[0][0]], test, alpha)
              - _posterior_test_var(x, np.r_[train, picks[0][0], c], test, alpha)
              for c in cand if c != picks[0][0]}
    assert picks[1][0] == max(gains2, key=gains2.get)


def test_allocation_follows_the_marginal_gains():
    kw = {"r": 0.3, "k": 3.0, "n_test": 50, "n_train": 200}
    noisy = allocate(20, R=0.1, c=200.0, **kw)  # unreliable test means: repeat them
    clean = allocate(20, R=0.9, c=200.0, **kw)  # reliable test means: learn more
    assert noisy > clean
    saturated = allocate(20, R=0.5, c=5.0, **kw)  # the model has learned what it can
    learning = allocate(20, R=0.5, c=5000.0, **kw)
    assert saturated > learning
    assert allocate(20, r=float("nan"), R=0.5, k=3.0, n_test=50, n_train=200, c=10.0) == 10


@pytest.mark.parametrize("share", [None, 0.5])
def test_blocks_keep_the_test_set_fixed_and_pick_unseen_training_images(share):
    rng = np.random.default_rng(1)
    n, n_test = 120, 20
    ids = np.array([f"s{i:03d}" for i in range(n)])
    fs = FeatureSet(ids, ["l0", "l1"], [rng.standard_normal((n, 30)) for _ in range(2)])
    eng = AlignmentEngine(fs, times=np.arange(6) / 100, ch_names=["a", "b"],
                          test_ids=ids[:n_test].tolist())
    shown = np.r_[np.arange(n_test), np.arange(n_test, 60)]
    eng.add_epochs(ids[np.r_[shown, np.arange(n_test)]],
                   rng.standard_normal((shown.size + n_test, 2, 6)))
    eng.refresh()
    picks = choose_block({"m": eng}, layers={"m": [0, 1]}, block_size=20, test_share=share)
    assert len(picks) == 20
    test_ids = set(ids[:n_test].tolist())
    for p in picks:
        if p.role == "test":
            assert p.stimulus_id in test_ids
        else:
            assert p.stimulus_id not in test_ids
            assert eng.store.count[fs.index[p.stimulus_id]] == 0  # a new training image
        assert p.reason
    trains = [p.stimulus_id for p in picks if p.role == "train"]
    assert len(set(trains)) == len(trains)

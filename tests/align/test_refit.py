"""Kept-alpha refits carried forward by low-rank updates (``align/refit.py``) against
scikit-learn's Ridge and a fresh build, over a sequence of refreshes in every regime."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from neuralign.align.folds import BlockChanges
from neuralign.align.primal import BlockStats, BlockTargets, slot_layout
from neuralign.align.refit import MAX_UPDATES, CarriedRefit

ALPHAS = np.logspace(-1, 4, 6)
F = 3  # training folds; block F holds the test stimuli


def _sklearn(x, y, train, predict, idx):
    out = np.empty((predict.size, y.shape[1]))
    for k in np.unique(idx):
        g = idx == k
        m = Ridge(alpha=ALPHAS[k], solver="svd").fit(x[train], y[np.ix_(train, g)])
        out[:, g] = m.predict(x[predict]).reshape(predict.size, -1)
    return out


class _Session:
    """Stimulus means that change refresh by refresh, folded into block statistics."""

    def __init__(self, n_train, n_test, d, m, seed):
        rng = np.random.default_rng(seed)
        self.rng = rng
        n = n_train + n_test
        self.x = rng.standard_normal((n, d)) * rng.uniform(0.5, 2.0, d) + rng.normal(0, 0.3, d)
        self.w = rng.standard_normal((d, m)) / np.sqrt(d)
        self.block = np.concatenate([rng.integers(0, F, n_train), np.full(n_test, F)])
        self.y = np.zeros((n, m))
        self.seen = np.zeros(n, bool)
        self.t = BlockTargets(F + 1, m, slot_layout(F, design=True, per_fold=False))
        self.stats = BlockStats(self.t, d)

    def step(self, rows):
        """New epochs for ``rows`` (stimuli seen for the first time among them)."""
        rows = np.unique(rows)
        old = self.y[rows].copy()
        fresh = ~self.seen[rows]
        noise = self.rng.standard_normal((rows.size, self.y.shape[1]))
        new = np.where(fresh[:, None], 0.0, 0.5 * old) + 0.5 * (self.x[rows] @ self.w + 3.0
                                                                 + noise)
        self.y[rows] = new
        self.seen[rows] = True
        ch = BlockChanges.group(self.block, F + 1, rows, old, new, fresh)
        self.t.update(ch)
        self.stats.update(lambda r: self.x[r], ch)

    def split(self):
        train = np.nonzero(self.seen & (self.block < F))[0]
        predict = np.nonzero(self.seen & (self.block == F))[0]
        return train, predict

    def state(self):
        train, predict = self.split()
        return self.stats.training((F,)), train, predict


@pytest.mark.parametrize(("n_train", "d"), [(30, 60), (60, 60), (200, 25)],
                         ids=["n<D", "n=D", "n>D"])
def test_carried_refit_matches_sklearn_over_refreshes(n_train, d):
    """Repetitions only, new training stimuli, new test stimuli, several alpha groups: the
    carried predictions equal scikit-learn's Ridge fitted on the current means and a fresh
    build, refresh after refresh."""
    s = _Session(n_train, 12, d, m=9, seed=n_train + d)
    idx = np.array([0, 5, 2, 2, 5, 0, 3, 1, 4])
    order = s.rng.permutation(n_train + 12)
    s.step(order[: n_train // 2 + 6])
    st, train, predict = s.state()
    cr = CarriedRefit.build(st, train=train, predict=predict, xp=s.x[predict], alphas=ALPHAS,
                            idx=idx, version=s.stats.version)
    rest = order[n_train // 2 + 6:]
    events = [s.rng.choice(train, 7, replace=False),  # repetitions only
              np.concatenate([rest[:3], s.rng.choice(train, 4)]),  # a few new stimuli
              rest[3:4], rest[4:4 + len(rest) // 2],  # one new, then many
              rest[4 + len(rest) // 2:], s.rng.choice(n_train + 12, 15)]
    for ev in events:
        s.step(ev)
        st, train, predict = s.state()
        ok = cr.advance(st, s.stats.changes((F,)), version=s.stats.version, train=train,
                        predict=predict, xp_fn=lambda r: s.x[r])
        assert ok
        got = cr.predictions(st)
        ref = _sklearn(s.x, s.y, train, predict, idx)
        fresh = CarriedRefit.build(st, train=train, predict=predict, xp=s.x[predict],
                                   alphas=ALPHAS, idx=idx, version=s.stats.version)
        scale = np.abs(ref - ref.mean(0)).max()
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-7 * scale)
        np.testing.assert_allclose(got, fresh.predictions(st), rtol=0, atol=1e-9 * scale)
    assert cr.updates == len(events)


def test_carried_refit_refuses_what_it_cannot_bring_forward():
    """A skipped refresh, other alphas or another training set: advance says rebuild."""
    s = _Session(80, 10, 20, m=4, seed=3)
    idx = np.array([1, 2, 2, 4])
    s.step(np.arange(90))
    st, train, predict = s.state()
    cr = CarriedRefit.build(st, train=train, predict=predict, xp=s.x[predict], alphas=ALPHAS,
                            idx=idx, version=s.stats.version)
    assert cr.fits(ALPHAS, idx)
    assert not cr.fits(ALPHAS, idx[::-1])
    assert not cr.fits(ALPHAS * 2, idx)
    s.step(np.arange(5))
    s.step(np.arange(5, 9))  # two updates since the build: the first one's log is gone
    st, train, predict = s.state()
    assert not cr.advance(st, s.stats.changes((F,)), version=s.stats.version, train=train,
                          predict=predict, xp_fn=lambda r: s.x[r])
    cr = CarriedRefit.build(st, train=train, predict=predict, xp=s.x[predict], alphas=ALPHAS,
                            idx=idx, version=s.stats.version)
    s.step(np.arange(3))
    st, train, predict = s.state()
    assert not cr.advance(st, s.stats.changes((F,)), version=s.stats.version, train=train[1:],
                          predict=predict, xp_fn=lambda r: s.x[r])
    for _ in range(MAX_UPDATES):  # round-off is bounded: rebuilt after MAX_UPDATES updates
        assert cr.advance(st, s.stats.changes((F,)), version=s.stats.version, train=train,
                          predict=predict, xp_fn=lambda r: s.x[r])
        s.step(np.arange(3))
        st, train, predict = s.state()
    assert not cr.advance(st, s.stats.changes((F,)), version=s.stats.version, train=train,
                          predict=predict, xp_fn=lambda r: s.x[r])

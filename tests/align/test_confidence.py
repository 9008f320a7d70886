"""Intervals and significance from held-out predictions, against plain loops and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr

from neuralign.align import AlignmentEngine
from neuralign.align import confidence as cf
from neuralign.align.reliability import noise_ceilings

from .conftest import make_problem


def _held(seed=0, n=40, L=3, C=3, T=6, signal=0.8):
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((n, C * T))
    pred = np.stack([signal * (li == 0) * y + rng.standard_normal((n, C * T))
                     for li in range(L)]).astype(np.float32)
    counts = rng.integers(2, 6, n)
    m2 = rng.uniform(0.5, 2.0, (n, C * T)) * (counts[:, None] - 1)
    ids = np.array([f"s{i}" for i in range(n)])
    return cf.HeldOut(ids, y, pred, C, np.arange(T) * 0.01, counts, m2)


def _mean_r(p, y, C):
    r = np.array([pearsonr(p[:, m], y[:, m])[0] for m in range(y.shape[1])])
    return r.reshape(C, -1).mean(0)


def test_bootstrap_matches_a_plain_resampling_loop():
    h = _held()
    res = cf.bootstrap_peaks(h, n_boot=30, seed=3)
    w = cf.bootstrap_weights(h.n, 30, 3)
    lat = np.empty((30, 3))
    pk = np.empty((30, 3))
    for b in range(30):
        rows = np.repeat(np.arange(h.n), w[b].astype(int))
        for li in range(3):
            m = _mean_r(h.pred[li][rows].astype(float), h.y[rows], h.n_channels)
            lat[b, li], pk[b, li] = h.times[np.argmax(m)], m.max()
    np.testing.assert_allclose(res.latency_ci, np.stack(
        [np.percentile(lat, 2.5, 0), np.percentile(lat, 97.5, 0)], -1), atol=1e-12)
    np.testing.assert_allclose(res.peak_r_ci, np.stack(
        [np.percentile(pk, 2.5, 0), np.percentile(pk, 97.5, 0)], -1), atol=1e-10)
    full = [_mean_r(h.pred[li].astype(float), h.y, 3) for li in range(3)]
    np.testing.assert_allclose(res.peak_r, [m.max() for m in full], atol=1e-10)
    assert res.peak_r_ci[0, 0] > res.peak_r_ci[1, 1]  # the signal layer stands out


def test_weighted_ceiling_equals_the_noise_ceiling():
    h = _held()
    ref = noise_ceilings(h.counts, h.y, h.y, h.y, h.m2)["r_ceiling"]
    got = cf._weighted_ceiling(np.ones((1, h.n)), h.counts, h.y, h.m2)[0]  # noqa: SLF001
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_permutation_mask_matches_a_plain_loop():
    h = _held(n=25, signal=1.5)
    res = cf.permutation_mask(h, n_perm=40, seed=5)
    rng = np.random.default_rng(5)
    perms = [rng.permutation(h.n) for _ in range(40)]
    null_max = []
    for pi in perms:
        null_max.append(max(_mean_r(h.pred[li][pi].astype(float), h.y, 3).max()
                            for li in range(3)))
    obs = np.stack([_mean_r(h.pred[li].astype(float), h.y, 3) for li in range(3)])
    p = (1 + (np.asarray(null_max)[None, None] >= obs[..., None]).sum(-1)) / 41
    np.testing.assert_allclose(res.p, p)
    np.testing.assert_array_equal(res.mask, p <= 0.05)
    assert (obs[res.mask] > res.threshold).all()
    assert res.mask[0].all()  # the layer that predicts the EEG
    assert not res.mask[1:].any()


def test_compare_models_finds_the_better_layer():
    h = _held(n=60, signal=1.0)
    out = cf.compare_models(h, 0, h, 1, n_boot=300, seed=1)
    assert out["diff"] > 0
    assert out["ci"][0] > 0
    assert out["p"] < 0.01
    same = cf.compare_models(h, 1, h, 1, n_boot=100)
    assert same["diff"] == 0
    assert same["p"] == 1.0


@pytest.mark.parametrize("design", [True, False], ids=["train/test", "nested"])
def test_engine_keeps_held_out_predictions(design):
    fs, sids, epochs, times, ch = make_problem(n=80, reps=3, seed=2)
    test_ids = fs.stimulus_ids[:20].tolist() if design else None
    eng = AlignmentEngine(fs, times=times, ch_names=ch, test_ids=test_ids)
    eng.add_epochs(sids, epochs)
    res = eng.refresh()
    h = eng.held_out
    assert [p.shape for p in h.pred] == [(20 if design else 80, len(ch) * len(times))] * 2
    # the kept predictions give back the map's r
    r = np.stack([[pearsonr(h.pred[li][:, m], h.y[:, m])[0] for m in range(h.y.shape[1])]
                  for li in range(2)])
    np.testing.assert_allclose(r, res.encoding_r.reshape(2, -1), atol=1e-5)
    conf = eng.confidence(n_boot=50, n_perm=50)
    assert conf["peaks"].latency_ci.shape == (2, 2)
    assert conf["mask"].mask[0].any()  # the planted layer


def test_latency_hierarchy_needs_significant_layers_and_order():
    L = 6
    lat = np.linspace(0.08, 0.3, L)
    samples = lat[None, :] + np.random.default_rng(0).normal(0, 0.005, (200, L))
    pk = cf.PeakIntervals(lat, np.zeros((L, 2)), np.ones(L), np.zeros((L, 2)), np.ones(L),
                          np.zeros((L, 2)), np.zeros((L, 2, 3)), 200, 0.95, samples)
    out = cf.latency_hierarchy(pk)
    assert out["rho"] == pytest.approx(1.0)
    assert out["p"] == pytest.approx(2 / 721)  # exact: 1 of 720 orders, plus the observed
    assert out["ci"][0] > 0.5
    none = cf.latency_hierarchy(pk, significant=np.array([1, 1, 0, 0, 0, 0], bool))
    assert np.isnan(none["rho"])
    assert "fewer than three" in none["note"]
    shuffled = cf.PeakIntervals(lat[[3, 0, 5, 1, 4, 2]], *([None] * 6), 200, 0.95, None)
    assert cf.latency_hierarchy(shuffled)["p"] > 0.1

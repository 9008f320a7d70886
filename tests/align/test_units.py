"""Unit-level encoding: a brain driven by a few known units with known signs."""

from __future__ import annotations

import numpy as np
from scipy.stats import pearsonr

from neuralign.align import AlignmentEngine
from neuralign.align.units import unit_encoding, univariate_r
from neuralign.base import FeatureSet

C, T = 4, 12
UNITS = {5: (+1, 3), 17: (-1, 6), 42: (+1, 9)}  # unit -> (sign, peak time index)


def _planted(seed=0, n=240, D=120, noise=0.6):
    rng = np.random.default_rng(seed)
    ids = np.array([f"s{i:03d}" for i in range(n)])
    x = rng.standard_normal((n, D))
    sig = np.zeros((n, C, T))
    for u, (sign, t0) in UNITS.items():
        prof = np.exp(-0.5 * ((np.arange(T) - t0) / 1.0) ** 2)
        sig += sign * x[:, u, None, None] * rng.uniform(0.6, 1.2, C)[None, :, None] * prof
    sids, ep = [], []
    for _ in range(3):
        for i in range(n):
            sids.append(ids[i])
            ep.append(sig[i] + noise * rng.standard_normal((C, T)))
    fs = FeatureSet(ids, ["layer"], [x])
    eng = AlignmentEngine(fs, times=np.arange(T) * 0.02, ch_names=[f"c{i}" for i in range(C)],
                          test_ids=ids[:60].tolist())
    eng.add_epochs(np.array(sids), np.stack(ep))
    eng.refresh()
    return eng


def test_univariate_r_is_the_sign_corrected_held_out_correlation():
    rng = np.random.default_rng(1)
    x_tr, y_tr = rng.standard_normal((30, 4)), rng.standard_normal((30, 3))
    x_te, y_te = rng.standard_normal((20, 4)), rng.standard_normal((20, 3))
    r, pol = univariate_r(x_tr, y_tr, x_te, y_te)
    for u in range(4):
        for m in range(3):
            slope = np.polyfit(x_tr[:, u], y_tr[:, m], 1)[0]
            pred = slope * x_te[:, u]
            np.testing.assert_allclose(r[u, m], pearsonr(pred, y_te[:, m])[0], atol=1e-10)
            assert pol[u, m] == np.sign(slope)


def test_planted_units_and_polarities_are_recovered():
    eng = _planted()
    res = unit_encoding(eng, 0, top_k=3)
    times = eng.times
    lat, peak, pol = res.unit_peaks(times)
    best = set(np.argsort(-peak)[:3].tolist())
    assert best == set(UNITS)
    for u, (sign, t0) in UNITS.items():
        assert pol[u] == sign
        assert abs(lat[u] - times[t0]) <= 0.02 + 1e-9
        # the unit is the best one at its latency, on every channel
        cols = np.arange(C) * T + t0
        assert (res.top_units[cols, 0] == u).all()
        assert (res.top_polarity[cols, 0] == sign).all()
    red = res.redundancy
    assert red["n_units_90"] is not None
    assert red["n_units_90"] <= 4  # one unit drives each latency
    assert res.overlap.shape == (T, T)
    assert res.overlap[3, 3] == 1.0
    d = res.to_dict(times, n_units=3)
    assert {b["unit"] for b in d["best_units"]} == set(UNITS)


def test_unit_maps_equal_scipy_pearsonr_unit_by_unit():
    eng = _planted(seed=4, n=120, D=48)
    res = unit_encoding(eng, 0, top_k=3)
    sp = eng.outer_splits()[0]  # the design's test set: one split
    assert len(eng.outer_splits()) == 1
    x = eng.features.arrays[0]
    y = eng.store.means(np.arange(eng.features.n_stimuli))
    ref = np.empty((x.shape[1], y.shape[1]))
    for u in range(x.shape[1]):
        for m in range(y.shape[1]):
            sign = np.sign(pearsonr(x[sp.train, u], y[sp.train, m])[0])
            ref[u, m] = sign * pearsonr(x[sp.predict, u], y[sp.predict, m])[0]
    np.testing.assert_allclose(res.unit_r, ref, atol=2e-6)
    np.testing.assert_array_equal(res.top_units, np.argsort(-ref, axis=0, kind="stable")[:3].T)


def test_top_k_rows_is_a_partial_argsort():
    from neuralign.align.units import top_k_rows

    v = np.random.default_rng(0).standard_normal((300, 40))
    np.testing.assert_array_equal(top_k_rows(v, 7), np.argsort(-v, axis=0)[:7].T)
    np.testing.assert_array_equal(top_k_rows(v, 300), np.argsort(-v, axis=0).T)

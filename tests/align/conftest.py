from __future__ import annotations

import numpy as np
import pytest

from neuralign.align import FeatureSet


def make_problem(*, n=90, d=8, c=3, t=4, layers=2, reps=3, noise=1.5, seed=0, ragged=False):
    """Features with a planted linear map to EEG, repeated noisy epochs (arrival order)."""
    rng = np.random.default_rng(seed)
    ids = [f"img{i:04d}" for i in range(n)]
    feats = [rng.standard_normal((n, d + li)) * (1 + li) + 3 for li in range(layers)]
    w = rng.standard_normal((feats[0].shape[1], c * t))
    signal = ((feats[0] - feats[0].mean(0)) @ w).reshape(n, c, t) / np.sqrt(d)
    epochs, sids = [], []
    for r in range(reps):
        for i in range(n):
            if ragged and r >= 2 and i % 3 == 0:
                continue  # some stimuli get fewer repetitions
            epochs.append(signal[i] + noise * rng.standard_normal((c, t)))
            sids.append(ids[i])
    fs = FeatureSet(ids, [f"layer{li}" for li in range(layers)], feats)
    times = np.arange(t) / 100.0 - 0.01
    ch = [f"C{k}" for k in range(c)]
    return fs, np.array(sids), np.stack(epochs), times, ch


@pytest.fixture
def problem():
    return make_problem()

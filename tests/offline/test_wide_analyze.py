"""``neuralign analyze`` with LVLM-wide layers (n < D): the narrow answer, scikit-learn's maps.

One simulated brain is driven by narrow layer features (THINGS-EEG2 layout, a few hundred
training images); the same layers seen through a wide random embedding (as a wide model layer
carries a narrow signal among many more dimensions) must give the same layer x latency answer,
solved in the dual form, and every layer's map must equal scikit-learn's ridge on the wide
features with the engine's alpha choice rule (generalised cross-validation per target).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from neuralign.base import FeatureSet
from neuralign.cli import main
from neuralign.io.features import load_features, save_features
from neuralign.offline.things_eeg2 import load_things_eeg2
from neuralign.sim.dataset import write_things_eeg2
from neuralign.sim.features import hierarchical_features

ALPHAS = [1.0, 100.0, 1e4, 1e6]


@pytest.fixture(scope="module")
def wide_subject(tmp_path_factory):
    root = tmp_path_factory.mktemp("wide")
    n_train, n_test = 240, 60
    ids = [f"img{i:04d}.jpg" for i in range(n_train + n_test)]
    narrow = hierarchical_features(ids, n_layers=4, dim=24, seed=3)
    write_things_eeg2(root, n_train=n_train, n_test=n_test, train_reps=3, test_reps=12,
                      features=narrow, seed=3, brain_kw={"snr": 0.6})
    rng = np.random.default_rng(0)
    wide = []
    for a in narrow.arrays:  # the narrow signal inside 1536 dimensions, plus small noise
        emb = rng.standard_normal((a.shape[1], 1536)).astype(np.float32) / np.sqrt(a.shape[1])
        wide.append(a @ emb + 0.05 * rng.standard_normal((a.shape[0], 1536)).astype(np.float32))
    save_features(root / "wide.npz", FeatureSet(narrow.stimulus_ids, narrow.layers, wide))
    return root


def _run(root, feats, out):
    rc = main(["analyze", "--dataset", f"things-eeg2:{root / 'sub-01'}", "--features",
               str(root / feats), "--out", str(out), "--quiet", "--alphas",
               *map(str, ALPHAS)])
    assert rc == 0
    return json.loads((out / "results.json").read_text())


def test_wide_layers_give_the_narrow_answer(wide_subject, tmp_path):
    narrow = _run(wide_subject, "features.npz", tmp_path / "narrow")
    wide = _run(wide_subject, "wide.npz", tmp_path / "wide")
    assert wide["counts"]["solver_forms"] == ["dual"] * 4  # 240 training images < 1536
    assert narrow["counts"]["solver_forms"] == ["primal"] * 4
    planted = np.asarray(json.loads((wide_subject / "planted.json").read_text())
                         ["peak_latencies_s"])
    lat_n = np.asarray(narrow["encoding"]["peak_latency_s"], float)
    lat_w = np.asarray(wide["encoding"]["peak_latency_s"], float)
    assert np.abs(lat_w - lat_n).max() <= 0.0201  # within two samples at 100 Hz
    assert np.abs(lat_w - planted).mean() <= 0.02
    assert wide["settings"]["memory_plan"]["budget_gb"] > 0
    assert wide["counts"]["peak_rss_gb"] > 0


def test_wide_layer_maps_equal_sklearn(wide_subject, tmp_path):
    res = _run(wide_subject, "wide.npz", tmp_path / "wide")
    maps = np.load(tmp_path / "wide" / "maps.npz", allow_pickle=False)["encoding_r"]
    data = load_things_eeg2(wide_subject / "sub-01")
    fs = load_features(wide_subject / "wide.npz")
    is_test = np.isin(fs.stimulus_ids, data.test_ids)
    rows = fs.index_of(data.stimulus_ids.tolist())
    y = np.zeros((fs.n_stimuli, maps.shape[1] * maps.shape[2]))
    np.add.at(y, rows, data.epochs.reshape(len(rows), -1))
    y /= np.bincount(rows, minlength=fs.n_stimuli)[:, None]
    tr = ~is_test
    for li in (0, 3):
        x = np.asarray(fs.arrays[li], float)
        x = (x - x[tr].mean(0)) / x[tr].std(0)
        s = np.linalg.svd(x[tr] - x[tr].mean(0), compute_uv=False)
        n = int(tr.sum())
        gcv = []
        for a in ALPHAS:
            rss = ((y[tr] - Ridge(alpha=a, solver="svd").fit(x[tr], y[tr]).predict(x[tr])) ** 2
                   ).sum(0)
            gcv.append(n * rss / (n - 1 - (s**2 / (s**2 + a)).sum()) ** 2)
        best = np.asarray(ALPHAS)[np.argmin(gcv, 0)]
        pred = Ridge(alpha=best, solver="svd").fit(x[tr], y[tr]).predict(x[is_test])
        p, t = pred - pred.mean(0), y[is_test] - y[is_test].mean(0)
        ref = (p * t).sum(0) / np.sqrt((p * p).sum(0) * (t * t).sum(0))
        np.testing.assert_allclose(maps[li].ravel(), ref, atol=1e-6)
    assert res["settings"]["dtype"] == "float64"

"""The plain .npz features interchange format."""

from __future__ import annotations

import numpy as np
import pytest

from neuralign.base import FeatureSet
from neuralign.errors import NeuralignError
from neuralign.io.features import load_features, save_features


def _fs(n=6):
    rng = np.random.default_rng(0)
    ids = np.array([f"img{i:02d}.jpg" for i in range(n)])
    return FeatureSet(ids, ("conv1", "block.2", "head"),
                      (rng.standard_normal((n, 3)), rng.standard_normal((n, 5)),
                       rng.standard_normal((n, 2)).astype(np.float32)),
                      {"model": "x"})


def test_roundtrip(tmp_path):
    fs = _fs()
    p = save_features(tmp_path / "f.npz", fs)
    got = load_features(p)
    assert got.layers == fs.layers
    assert got.stimulus_ids.tolist() == fs.stimulus_ids.tolist()
    for a, b in zip(got.arrays, fs.arrays):
        np.testing.assert_array_equal(a, b)
    assert got.provenance["model"] == "x"


def test_plain_file_order_is_depth_order(tmp_path):
    p = tmp_path / "plain.npz"
    ids = np.array(["a", "b", "c"])
    np.savez(p, stimulus_ids=ids, zeta=np.ones((3, 2)), alpha=np.zeros((3, 4)),
             mid=np.arange(3)[:, None])
    fs = load_features(p)
    assert fs.layers == ("zeta", "alpha", "mid")
    assert fs.dims == (2, 4, 1)


@pytest.mark.parametrize(("arrays", "match"), [
    ({"l1": np.ones((3, 2))}, "missing the 'stimulus_ids'"),
    ({"stimulus_ids": np.array(["a", "b", "c"]), "l1": np.ones(3)}, "must be 2-D"),
    ({"stimulus_ids": np.array(["a", "b", "c"]), "l1": np.ones((4, 2))}, "4 rows for 3"),
    ({"stimulus_ids": np.array(["a", "b", "c"])}, "no layer arrays"),
    ({"stimulus_ids": np.array(["a", "b", "c"]),
      "l1": np.array([[1.0, np.nan], [0, 0], [0, 0]])}, "layer 'l1' has NaN/Inf"),
    ({"stimulus_ids": np.array(["a", "b", "c"]),
      "ok": np.ones((3, 1)), "l2": np.array([[np.inf], [0], [0]])}, "layer 'l2' has NaN/Inf"),
    ({"stimulus_ids": np.array([1, 2, 3]), "l1": np.ones((3, 2))}, "must be strings"),
    ({"stimulus_ids": np.array(["a", "a", "c"]), "l1": np.ones((3, 2))}, "duplicates"),
])
def test_bad_files(tmp_path, arrays, match):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(NeuralignError, match=match) as ei:
        load_features(p)
    assert str(p) in str(ei.value)


def test_pickled_ids_refused_and_missing_file(tmp_path):
    p = tmp_path / "obj.npz"
    np.savez(p, stimulus_ids=np.array(["a", "b"], dtype=object), l1=np.ones((2, 2)))
    with pytest.raises(NeuralignError, match="string array"):
        load_features(p)
    with pytest.raises(NeuralignError, match="not found"):
        load_features(tmp_path / "nope.npz")
    q = tmp_path / "x.txt"
    q.write_text("hello")
    with pytest.raises(NeuralignError, match="unknown features format"):
        load_features(q)

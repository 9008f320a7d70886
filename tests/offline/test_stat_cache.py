"""The stat cache: digests that change exactly when the inputs do, atomic entries, and
statistics / partitions that come back from an entry identical to what was stored."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neuralign.align.group import ModelGroup
from neuralign.base import EpochData
from neuralign.offline.analysis import LayerStatistics, StatOptions, layer_statistics
from neuralign.offline.comparison import (
    partition_arrays,
    partition_from_saved,
    partition_meta,
    partition_sets,
)
from neuralign.offline.stat_cache import (
    StatCache,
    cache_key,
    data_digest,
    file_digest,
)
from neuralign.sim.calibration import planted_pair, simulated_subject, stimulus_ids


def _data(seed=0):
    rng = np.random.default_rng(seed)
    ids = np.repeat([f"s{i}" for i in range(6)], 2)
    return EpochData(rng.standard_normal((12, 2, 5)), ids, np.arange(5) / 100, ["a", "b"],
                     test_ids=["s0", "s1"])


def test_data_digest_follows_every_input():
    d = _data()
    base = data_digest(d)
    assert data_digest(_data()) == base
    e = _data()
    e.epochs[3, 1, 2] += 1e-9
    assert data_digest(e) != base
    for change in ({"test_ids": ["s0", "s2"]}, {"test_ids": None}, {"ch_names": ["a", "c"]},
                   {"times": np.arange(5) / 50}):
        assert data_digest(dataclasses.replace(_data(), **change)) != base
    ids = _data().stimulus_ids.copy()
    ids[[0, 2]] = ids[[2, 0]]
    assert data_digest(dataclasses.replace(_data(), stimulus_ids=ids)) != base


def test_file_digest_is_content_not_path(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "sub" / "b.npz"
    b.parent.mkdir()
    a.write_bytes(b"x" * 10_000_000)
    b.write_bytes(a.read_bytes())
    assert file_digest(a) == file_digest(b)
    b.write_bytes(b"x" * 9_999_999 + b"y")
    assert file_digest(a) != file_digest(b)
    k = cache_key(data="d", features={"m": file_digest(a)}, settings={"seed": 0})
    assert k != cache_key(data="d", features={"m": file_digest(a)}, settings={"seed": 1})


def test_entries_round_trip_and_bad_entries_are_misses(tmp_path):
    cache = StatCache(tmp_path / "c")
    assert cache.get("k") is None
    arrays = {"x": np.arange(6.0).reshape(2, 3), "m": np.array([True, False])}
    cache.put("k", {"a": [1, float("nan")]}, arrays)
    meta, got = cache.get("k")
    assert meta["a"] == [1, None]
    np.testing.assert_array_equal(got["x"], arrays["x"])
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["k"]  # no leftovers
    (tmp_path / "c" / "k" / "meta.json").write_text("{not json")
    assert cache.get("k") is None


@pytest.fixture(scope="module")
def pair_group():
    tr, te = stimulus_ids(120, 40)
    a, b, drive = planted_pair(tr + te, seed=3)
    data = simulated_subject(drive, n_train=120, n_test=40, test_reps=8, snr=0.5,
                             peak_latencies=(0.1, 0.3), seed=3)
    g = ModelGroup({"A": a, "B": b}, times=data.times, ch_names=data.ch_names,
                   test_ids=data.test_ids, incremental=False, n_jobs=1)
    g.add_epochs(data.stimulus_ids, data.epochs)
    return g, g.refresh()


def test_statistics_come_back_identical(pair_group, tmp_path):
    g, results = pair_group
    st = layer_statistics(g.engines["A"].held_out, results["A"], label="A",
                          options=StatOptions(n_perm=99, n_boot=50, seed=2))
    cache = StatCache(tmp_path)
    cache.put("k", {"stats": st.to_dict()}, st.arrays())
    meta, arrays = cache.get("k")
    back = LayerStatistics.from_saved("A", meta["stats"], arrays)
    np.testing.assert_array_equal(back.mask, st.mask)
    np.testing.assert_array_equal(back.p, st.p)
    np.testing.assert_array_equal(back.peak_r_ci, st.peak_r_ci)
    assert back.options == st.options
    assert back.statements() == st.statements()


def test_partition_comes_back_identical(pair_group, tmp_path):
    g, _ = pair_group
    res = partition_sets(g, {"A": 0, "B": 0}, n_boot=30, n_perm=30, seed=1)
    meta = partition_meta(res, {"A": "A", "B": "B"})
    cache = StatCache(tmp_path)
    cache.put("k", {"partition": meta}, partition_arrays(res))
    m, arrays = cache.get("k")
    back = partition_from_saved(m["partition"], arrays)
    assert back.labels == res.labels
    for kind in ("r2", "parts", "ci", "ci_time", "p_unique"):
        for k, v in getattr(res, kind).items():
            np.testing.assert_array_equal(getattr(back, kind)[k], v)
    assert back.p_unique_mean == res.p_unique_mean
    assert back.negative == res.negative

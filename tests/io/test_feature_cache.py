"""The per-layer feature cache folder (format 2), and the old single-file cache (format 1)."""

from __future__ import annotations

import hashlib
import json
import tracemalloc

import numpy as np
import pytest

from neuralign.base import FeatureSet, LayerFile
from neuralign.errors import NeuralignError
from neuralign.io.cache_checks import FORMAT_V1
from neuralign.io.cache_reader import cache_progress, load_cache_dir
from neuralign.io.feature_cache import MANIFEST, CacheWriter, is_cache_dir
from neuralign.io.features import load_features


def _layers(n, widths=(8, 16, 4), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, d)).astype(np.float32) for d in widths]


def _write(path, n=10, *, widths=(8, 16, 4), batch=3, stop_after=None, key="k1"):
    ids = [f"s{i:03d}" for i in range(n)]
    arrays = _layers(n, widths)
    names = [f"vision.{i:02d}" for i in range(len(widths))]
    w = CacheWriter.open(path, key=key, stimulus_ids=ids, image_sha256=["0" * 64] * n,
                         layers=[{"name": x, "stage": "vision"} for x in names],
                         provenance={"model": {"name": "m"}, "stimuli": {"kind": "builtin"}})
    for k, i in enumerate(range(w.rows_done, n, batch)):
        if stop_after is not None and k == stop_after:
            return w, ids, arrays
        w.write(i, {x: a[i:i + batch] for x, a in zip(names, arrays)})
        w.commit(min(n, i + batch))
    w.finalize()
    return w, ids, arrays


def test_roundtrip_layers_are_read_on_demand(tmp_path):
    path = tmp_path / "cache"
    _, ids, arrays = _write(path)
    assert is_cache_dir(path)
    fs = load_features(path)
    assert isinstance(fs, FeatureSet)
    assert fs.stimulus_ids.tolist() == ids
    assert fs.layers == ("vision.00", "vision.01", "vision.02")
    for a, ref in zip(fs.arrays, arrays):
        assert isinstance(a, LayerFile)
        assert a.shape == ref.shape
        np.testing.assert_array_equal(np.asarray(a), ref)
        np.testing.assert_array_equal(a[3:9], ref[3:9])
    rows = np.array([7, 2])
    np.testing.assert_array_equal(fs.layer(1, rows), arrays[1][rows])
    assert fs.provenance["stages"]["vision.01"] == "vision"
    assert fs.provenance["verified"] == {"layer_sha256": True, "inputs": True}
    m = json.loads((path / MANIFEST).read_text())
    assert m["state"] == "complete"
    assert all(len(lay["sha256"]) == 64 for lay in m["layers"])
    assert not (path / "progress.json").exists()


def test_loading_does_not_read_layers_into_memory(tmp_path):
    """32 MB of layers: opening them allocates kilobytes, not the layers."""
    path = tmp_path / "big"
    _write(path, n=1024, widths=(2048, 2048, 2048, 2048), batch=512)
    tracemalloc.start()
    try:
        fs = load_features(path, verify="inputs")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fs.nbytes == 4 * 1024 * 2048 * 4
    assert all(isinstance(a, LayerFile) for a in fs.arrays)
    assert peak < 2 << 20, peak
    assert fs.provenance["verified"]["layer_sha256"] is False


def test_read_layers_leave_no_resident_pages(tmp_path):
    """Reading every layer of a cache does not keep its pages mapped into the process."""
    path = tmp_path / "big"
    _write(path, n=2048, widths=(4096,) * 4, batch=512)  # 4 x 32 MB
    fs = load_features(path, verify="none")

    def rss_file_kb():
        for line in open("/proc/self/status"):
            if line.startswith("RssFile:"):
                return int(line.split()[1])
        return 0

    before = rss_file_kb()
    for a in fs.arrays:
        for start in range(0, a.shape[0], 512):
            a[start:start + 512].sum()
    assert rss_file_kb() - before < 16 * 1024  # far less than the 128 MB read


def test_interrupted_writer_resumes_where_it_stopped(tmp_path):
    path = tmp_path / "cache"
    w, ids, arrays = _write(path, n=10, batch=3, stop_after=2)
    assert cache_progress(path) == {"state": "partial", "rows_done": 6, "n_stimuli": 10,
                                    "key": "k1"}
    with pytest.raises(NeuralignError, match=r"incomplete feature cache \(6 of 10 rows"):
        load_cache_dir(path)
    w2 = CacheWriter.open(path, key="k1", stimulus_ids=ids, image_sha256=["0" * 64] * 10,
                          layers=[{"name": f"vision.{i:02d}"} for i in range(3)], provenance={})
    assert w2.rows_done == 6
    # another key (changed model/images) starts over
    w3, _, _ = _write(path, n=10, key="k2", stop_after=0)
    assert w3.rows_done == 0
    _write(path, n=10, key="k2")
    fs = load_cache_dir(path)
    for a, ref in zip(fs.arrays, arrays):
        np.testing.assert_array_equal(a, ref)


def test_failed_rows_are_dropped_at_finalize(tmp_path):
    n = 6
    arrays = _layers(n, (5,))
    w = CacheWriter.open(tmp_path / "c", key="k", stimulus_ids=[f"s{i}" for i in range(n)],
                         image_sha256=["0" * 64] * n, layers=[{"name": "l"}], provenance={})
    w.write(0, {"l": arrays[0]})
    w.commit(n, failed=[1, 4])
    w.finalize()
    fs = load_cache_dir(tmp_path / "c")
    assert fs.stimulus_ids.tolist() == ["s0", "s2", "s3", "s5"]
    np.testing.assert_array_equal(fs.arrays[0], arrays[0][[0, 2, 3, 5]])


def test_corrupt_caches_are_one_line_errors(tmp_path):
    path = tmp_path / "c"
    _write(path)
    a = np.load(path / "layer_001.npy", mmap_mode="r+")
    a[3, 3] = 7.0
    a.flush()
    del a
    with pytest.raises(NeuralignError, match="'vision.01' does not match its recorded hash"):
        load_cache_dir(path)
    assert load_cache_dir(path, verify="none").n_layers == 3  # structure only
    # a truncated layer file
    raw = (path / "layer_002.npy").read_bytes()
    (path / "layer_002.npy").write_bytes(raw[:-40])
    with pytest.raises(NeuralignError, match="layer_002.npy: layer 'vision.02': not a readable"):
        load_cache_dir(path, verify="none")
    # a layer whose shape disagrees with the manifest
    np.save(path / "layer_002.npy", np.zeros((10, 5), np.float32))
    with pytest.raises(NeuralignError, match="does not match the manifest"):
        load_cache_dir(path, verify="none")
    # a pickled (object) id array is refused
    np.save(path / "stimulus_ids.npy", np.array(["a"] * 10, dtype=object), allow_pickle=True)
    with pytest.raises(NeuralignError, match="stimulus_ids.npy: not a readable string array"):
        load_cache_dir(path, verify="none")
    # a broken manifest
    (path / MANIFEST).write_text("{not json")
    assert not is_cache_dir(path)
    with pytest.raises(NeuralignError, match="unknown features format"):
        load_features(path)
    (path / MANIFEST).write_text(json.dumps({"format": "neuralign.feature-cache/2",
                                             "layers": "x", "n_stimuli": 3}))
    with pytest.raises(NeuralignError, match="'layers' must be a list"):
        load_features(path)


def test_cli_reports_a_corrupt_cache_in_one_line(tmp_path, capsys):
    from neuralign.cli import main

    path = tmp_path / "c"
    _write(path)
    (path / "layer_000.npy").unlink()
    assert main(["simulate", "--out", str(tmp_path / "sim"), "--features", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("neuralign: error: ")
    assert "layer_000.npy" in err


def test_old_single_file_cache_still_loads(tmp_path):
    """Format 1 (``neuralign.feature-cache/1``): one .npz with its own hash record."""
    arrays = _layers(4, (3, 5))
    h = hashlib.sha256()
    for a in arrays:
        h.update(f"{a.shape}|{a.dtype}|".encode())
        h.update(a.tobytes())
    prov = {"arrays_sha256": h.hexdigest(), "model": {"graphs": []},
            "stimuli": {"kind": "builtin"}, "pooling": "cls"}
    p = tmp_path / "old.npz"
    np.savez(p, neuralign_cache=np.asarray(FORMAT_V1), stimulus_ids=np.array(list("abcd")),
             layers=np.array(["l0", "l1"]), image_sha256=np.array(["0" * 64] * 4),
             provenance=np.asarray(json.dumps(prov)), layer_000=arrays[0], layer_001=arrays[1])
    fs = load_features(p)
    assert fs.layers == ("l0", "l1")
    np.testing.assert_array_equal(fs.arrays[1], arrays[1])
    assert fs.provenance["pooling"] == "cls"
    with np.load(p) as z:
        data = dict(z)
    data["layer_000"] = data["layer_000"] + 1
    np.savez(p, **data)
    with pytest.raises(NeuralignError, match="do not match their recorded hash"):
        load_features(p)

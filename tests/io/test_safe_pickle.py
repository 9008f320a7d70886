"""The restricted unpickler: admits THINGS-EEG2 pickled dicts, refuses anything that runs code."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from neuralign.errors import NeuralignError
from neuralign.io.safe_pickle import load_npy, safe_loads


def _write_object_npy(path, obj, protocol: int) -> None:
    """A .npy file as np.save writes a dict (0-d object array), pickled with ``protocol``."""
    arr = np.empty((), dtype=object)
    arr[()] = obj
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "|O", "fortran_order": False, "shape": ()}
        )
        pickle.dump(arr, f, protocol=protocol)


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_roundtrip_things_style_dict(tmp_path):
    d = {
        "preprocessed_eeg_data": np.random.default_rng(0).standard_normal((3, 2, 4, 5)),
        "ch_names": ["P7", "Oz", "O1", "O2"],
        "times": np.arange(5) / 100.0,
        "nested": {"a": (1, 2.5, None, True, b"x"), "s": np.float64(3.0)},
    }
    p = tmp_path / "x.npy"
    np.save(p, d, allow_pickle=True)
    got = load_npy(p)
    assert got.keys() == d.keys()
    np.testing.assert_array_equal(got["preprocessed_eeg_data"], d["preprocessed_eeg_data"])
    assert got["ch_names"] == d["ch_names"]
    assert got["nested"]["a"] == d["nested"]["a"]
    assert got["nested"]["s"] == 3.0


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_all_protocols(protocol):
    obj = {"x": np.arange(6.0).reshape(2, 3), "f": np.float32(1.5), "l": ["a", 1]}
    got = safe_loads(pickle.dumps(obj, protocol=protocol))
    np.testing.assert_array_equal(got["x"], obj["x"])
    assert got["l"] == ["a", 1]


def test_plain_numeric_npy(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.arange(10, dtype=np.int16))
    np.testing.assert_array_equal(load_npy(p), np.arange(10))


@pytest.mark.parametrize("protocol", [2, 4])
def test_malicious_pickle_refused_and_nothing_runs(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"preprocessed_eeg_data": _Evil(str(marker))}, protocol=protocol)
    with pytest.raises(NeuralignError, match=r"forbidden object (posix|os|nt)\.system"):
        safe_loads(payload)
    # also through a real .npy file (0-d object array holding the evil dict)
    p = tmp_path / "evil.npy"
    _write_object_npy(p, {"preprocessed_eeg_data": _Evil(str(marker))}, protocol)
    with pytest.raises(NeuralignError) as ei:
        load_npy(p)
    assert "forbidden object" in str(ei.value)
    assert str(p) in str(ei.value)
    assert "\n" not in str(ei.value)
    assert not marker.exists()


@pytest.mark.parametrize("target", ["builtins eval", "subprocess Popen", "numpy load",
                                    "builtins getattr", "numpy.lib.npyio load"])
def test_other_globals_refused(target):
    mod, name = target.split()
    payload = f"c{mod}\n{name}\n(S'1'\ntR.".encode()
    with pytest.raises(NeuralignError, match=f"forbidden object {mod}.{name}"):
        safe_loads(payload)


def test_object_array_of_callables_refused():
    payload = pickle.dumps(np.array([print], dtype=object), protocol=3)
    with pytest.raises(NeuralignError, match="forbidden object builtins.print"):
        safe_loads(payload)


def test_garbage_and_missing(tmp_path):
    p = tmp_path / "bad.npy"
    p.write_bytes(b"not an npy file at all")
    with pytest.raises(NeuralignError, match="not a valid .npy"):
        load_npy(p)
    with pytest.raises(NeuralignError, match="file not found"):
        load_npy(tmp_path / "missing.npy")
    trunc = tmp_path / "trunc.npy"
    np.save(trunc, {"a": np.zeros(100)}, allow_pickle=True)
    trunc.write_bytes(trunc.read_bytes()[:-50])
    with pytest.raises(NeuralignError, match="unreadable pickle"):
        load_npy(trunc)

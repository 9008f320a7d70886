"""THINGS-EEG2 preprocessed layout: the simulator writes it, the loader reads it back exactly."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from neuralign.commands.datasets import load_dataset
from neuralign.errors import NeuralignError
from neuralign.offline.things_eeg2 import NeuralignWarning, load_things_eeg2


def _read(path):
    # our own test fixture file, so a plain unpickle is fine as the reference
    with open(path, "rb") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        return pickle.load(f).item()


def test_layout_is_things_eeg2(tiny_sim):
    sub = tiny_sim / "sub-01"
    tr = _read(sub / "preprocessed_eeg_training.npy")
    te = _read(sub / "preprocessed_eeg_test.npy")
    meta = _read(tiny_sim / "image_metadata.npy")
    assert set(tr) == {"preprocessed_eeg_data", "ch_names", "times"}
    assert tr["preprocessed_eeg_data"].shape == (60, 2, 17, 100)
    assert te["preprocessed_eeg_data"].shape == (12, 6, 17, 100)
    assert tr["ch_names"][:3] == ["P7", "P5", "P3"]
    np.testing.assert_allclose(tr["times"][[0, 20, 99]], [-0.2, 0.0, 0.79])
    assert {"train_img_files", "train_img_concepts", "train_img_concepts_THINGS",
            "test_img_files", "test_img_concepts", "test_img_concepts_THINGS"} <= set(meta)
    assert meta["train_img_files"][0] == "concept0001_01b.jpg"
    assert meta["train_img_concepts"][0] == "00001_concept0001"
    assert (tiny_sim / "features.npz").is_file()
    assert (tiny_sim / "planted.json").is_file()


def test_roundtrip(tiny_sim):
    sub = tiny_sim / "sub-01"
    data = load_things_eeg2(sub)
    tr = _read(sub / "preprocessed_eeg_training.npy")["preprocessed_eeg_data"]
    te = _read(sub / "preprocessed_eeg_test.npy")["preprocessed_eeg_data"]
    meta = _read(tiny_sim / "image_metadata.npy")
    assert data.epochs.dtype == np.float32
    assert data.epochs.shape == (60 * 2 + 12 * 6, 17, 100)
    np.testing.assert_array_equal(data.epochs[:120], tr.reshape(120, 17, 100))
    np.testing.assert_array_equal(data.epochs[120:], te.reshape(72, 17, 100))
    assert data.stimulus_ids[:4].tolist() == [meta["train_img_files"][0]] * 2 + [
        meta["train_img_files"][1]] * 2
    assert data.test_ids == meta["test_img_files"]
    assert data.sfreq == pytest.approx(100.0)
    same = load_dataset(f"things-eeg2:{sub}")
    np.testing.assert_array_equal(same.epochs, data.epochs)
    sim = load_dataset(f"sim:{tiny_sim}")
    assert sim.info["simulated"] is True
    assert len(sim.info["planted"]["peak_latencies_s"]) == 3


def test_metadata_option_and_missing(tiny_sim, tmp_path):
    sub = tiny_sim / "sub-01"
    data = load_things_eeg2(sub, metadata=tiny_sim / "image_metadata.npy")
    assert data.epochs.shape[0] == 192
    with pytest.raises(NeuralignError, match="metadata file not found"):
        load_things_eeg2(sub, metadata=tmp_path / "nope.npy")


def test_nonfinite_epochs_dropped_with_warning(sim_copy):
    sub = sim_copy / "sub-01"
    d = _read(sub / "preprocessed_eeg_training.npy")
    d["preprocessed_eeg_data"][3, 1, 5, 7] = np.nan
    d["preprocessed_eeg_data"][10, 0, 0, 0] = np.inf
    np.save(sub / "preprocessed_eeg_training.npy", d, allow_pickle=True)
    with pytest.warns(NeuralignWarning, match="dropped 2 of 120 epochs"):
        data = load_things_eeg2(sub)
    assert data.epochs.shape[0] == 190
    assert np.isfinite(data.epochs).all()
    assert data.info["dropped_nonfinite_epochs"] == 2

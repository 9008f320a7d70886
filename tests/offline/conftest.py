"""A tiny simulated THINGS-EEG2 subject shared by the offline tests."""

from __future__ import annotations

import shutil

import pytest

from neuralign.sim.dataset import write_things_eeg2


@pytest.fixture(scope="session")
def tiny_sim(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_sim")
    write_things_eeg2(root, n_train=60, n_test=12, train_reps=2, test_reps=6, n_layers=3,
                      dim=8, seed=0, brain_kw={"snr": 0.5})
    return root


@pytest.fixture
def sim_copy(tiny_sim, tmp_path):
    """A private copy of the tiny subject that a test may damage."""
    dst = tmp_path / "sim"
    shutil.copytree(tiny_sim, dst)
    return dst


@pytest.fixture(autouse=True)
def _stat_cache(tmp_path, monkeypatch):
    """``analyze``'s statistics cache in the test's folder, never in the user's home."""
    monkeypatch.setenv("NEURALIGN_CACHE", str(tmp_path / "neuralign-cache"))

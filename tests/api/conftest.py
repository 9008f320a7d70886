"""A small simulated subject and its analysis, shared by the API tests."""

from __future__ import annotations

import pytest

from neuralign.sim.dataset import write_things_eeg2


@pytest.fixture(scope="session")
def sim_subject(tmp_path_factory):
    root = tmp_path_factory.mktemp("api_sim")
    write_things_eeg2(root, n_train=40, n_test=10, train_reps=2, test_reps=4, n_layers=3,
                      dim=6, seed=3, brain_kw={"snr": 1.0})
    return root

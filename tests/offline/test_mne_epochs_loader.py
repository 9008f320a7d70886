"""mne-epochs: -epo.fif + event->stimulus mapping (TSV by event, per-epoch TSV, JSON, metadata)."""

from __future__ import annotations

import json

import mne
import numpy as np
import pandas as pd
import pytest

from neuralign.commands.datasets import load_dataset
from neuralign.errors import NeuralignError

CH = ["P3", "Pz", "P4", "O1", "Oz", "O2"]


@pytest.fixture
def epochs_file(tmp_path):
    rng = np.random.default_rng(0)
    n = 12
    codes = np.tile([1, 2, 3, 4], 3)
    info = mne.create_info(CH, 100.0, "eeg")
    data = rng.standard_normal((n, len(CH), 50)) * 1e-6
    events = np.column_stack([np.arange(n) * 100, np.zeros(n, int), codes])
    ep = mne.EpochsArray(data, info, events=events, tmin=-0.1,
                         event_id={"img/a": 1, "img/b": 2, "img/c": 3, "img/d": 4}, verbose=False)
    f = tmp_path / "sub-07_task-x-epo.fif"
    ep.save(f, verbose=False)
    return f, data, codes


def test_mapping_by_event_tsv(epochs_file):
    f, data, codes = epochs_file
    f.with_name("sub-07_task-x_stimuli.tsv").write_text(
        "event\tstimulus_id\tis_test\nimg/a\tcat.jpg\t1\nimg/b\tdog.jpg\t0\n3\tcar.jpg\t0\n"
        "img/d\tcup.jpg\t0\n")
    d = load_dataset(f"mne-epochs:{f}")
    names = {1: "cat.jpg", 2: "dog.jpg", 3: "car.jpg", 4: "cup.jpg"}
    assert d.stimulus_ids.tolist() == [names[c] for c in codes]
    assert d.test_ids == ["cat.jpg"]
    np.testing.assert_allclose(d.epochs, data, rtol=1e-6)
    np.testing.assert_allclose(d.times, -0.1 + np.arange(50) / 100)
    assert d.ch_names == CH


def test_mapping_per_epoch_json_and_metadata(epochs_file, tmp_path):
    f, data, codes = epochs_file
    per = tmp_path / "per_epoch.csv"
    per.write_text("epoch,stimulus_id\n" + "".join(f"{i},s{i % 5}\n" for i in range(12)))
    d = load_dataset(f"mne-epochs:{f}", mapping=per)
    assert d.stimulus_ids.tolist() == [f"s{i % 5}" for i in range(12)]
    js = tmp_path / "map.json"
    js.write_text(json.dumps({"img/a": "A", "img/b": "B"}))
    with pytest.raises(NeuralignError, match="2 event type"):
        load_dataset(f"mne-epochs:{f}", mapping=js)
    d = load_dataset(f"mne-epochs:{f}", mapping=js, drop_unmapped=True)
    assert d.epochs.shape[0] == 6
    assert set(d.stimulus_ids) == {"A", "B"}
    ep = mne.read_epochs(f, verbose=False)
    ep.metadata = pd.DataFrame({"stimulus_id": [f"m{c}" for c in codes]})
    g = tmp_path / "meta-epo.fif"
    ep.save(g, verbose=False)
    d = load_dataset(f"mne-epochs:{g}")
    assert d.stimulus_ids.tolist() == [f"m{c}" for c in codes]


def test_no_mapping_is_a_clear_error(epochs_file):
    f, _, _ = epochs_file
    with pytest.raises(NeuralignError, match="no event-to-stimulus mapping"):
        load_dataset(f"mne-epochs:{f}")
    with pytest.raises(NeuralignError, match="epochs file not found"):
        load_dataset(f"mne-epochs:{f.with_name('nope-epo.fif')}")

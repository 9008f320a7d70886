"""things-eeg1: EEGLAB .set + events .csv (derivatives layout) and BIDS BrainVision + events.tsv."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from neuralign.commands.datasets import load_dataset
from neuralign.errors import NeuralignError
from neuralign.sim.brain import SyntheticBrain
from neuralign.sim.features import hierarchical_features
from neuralign.sim.raw import (
    rsvp_sequence,
    simulate_rsvp,
    write_brainvision,
    write_eeglab_set,
)

CH = ["Fz", "Cz", "P7", "P3", "Pz", "P4", "P8", "PO7", "POz", "PO8", "O1", "Oz", "O2"]


def _simulate(n_img=10, reps=2, n_test=2, sfreq=250.0, noise=False, seed=0):
    ids = [f"obj{i:03d}_01b.jpg" for i in range(n_img)]
    feats = hierarchical_features(ids, n_layers=2, dim=8, seed=seed)
    brain = SyntheticBrain(feats, ch_names=CH, seed=seed, snr=1.0)
    rng = np.random.default_rng(seed)
    seq = [s for s in rsvp_sequence(ids, reps, rng=rng) if s is not None]
    x, onsets = simulate_rsvp(brain, seq, sfreq=sfreq, soa=1.0, noise=noise)
    test = set(ids[:n_test])
    rows = [{"onset": o / sfreq, "duration": 0.05, "stimname": f"stimuli/{s.split('_')[0]}/{s}",
             "isteststim": int(s in test), "sample": int(o)} for s, o in zip(seq, onsets)]
    return ids, brain, x, onsets, rows


def _write_table(path, rows, delim, cols):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, delimiter=delim, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def test_eeglab_set_with_events_csv(tmp_path):
    ids, brain, x, onsets, rows = _simulate()
    d = tmp_path / "derivatives" / "eeglab"
    write_eeglab_set(d / "sub-01_task-rsvp_continuous.set", x, CH, 250.0,
                     events=[(int(o), "E1") for o in onsets])
    # a target row without a stimulus name is skipped
    rows = rows + [{"onset": 1.0, "duration": 0.05, "stimname": "", "isteststim": 0, "sample": 250}]
    _write_table(d / "sub-01_task-rsvp_events.csv", rows, ",",
                 ["onset", "duration", "stimname", "isteststim"])
    data = load_dataset(f"things-eeg1:{d / 'sub-01_task-rsvp_continuous.set'}")
    assert data.epochs.shape == (20, len(CH), 100)
    assert data.ch_names == CH
    np.testing.assert_allclose(data.times, np.round(np.arange(-20, 80) / 100, 2), atol=1e-9)
    assert sorted(set(data.stimulus_ids)) == ids
    assert data.test_ids == ids[:2]
    assert data.info["subject"] == "sub-01"
    # content: noise-free responses equal the planted evoked response
    ev = brain.evoked(data.stimulus_ids.tolist(), data.times) * 1e-6
    r = np.corrcoef(data.epochs.ravel(), ev.ravel())[0, 1]
    assert r > 0.98


def test_bids_brainvision_with_events_tsv(tmp_path):
    ids, brain, x, onsets, rows = _simulate(sfreq=1000.0, n_test=0)
    eeg = tmp_path / "sub-02" / "eeg"
    write_brainvision(eeg / "sub-02_task-rsvp_eeg.vhdr", x, CH, 1000.0,
                      [(int(o), "S  1") for o in onsets])
    _write_table(eeg / "sub-02_task-rsvp_events.tsv", rows, "\t", ["onset", "duration", "stimname"])
    data = load_dataset(f"things-eeg1:{tmp_path / 'sub-02'}", picks="^O *|^P *")
    assert data.ch_names == [c for c in CH if c[0] in "OP"]
    assert data.epochs.shape == (20, 11, 100)
    assert data.test_ids is None


def test_bids_folder_without_events(tmp_path):
    ids, brain, x, onsets, rows = _simulate(sfreq=1000.0)
    eeg = tmp_path / "sub-03" / "eeg"
    write_brainvision(eeg / "sub-03_task-rsvp_eeg.vhdr", x, CH, 1000.0, [])
    with pytest.raises(NeuralignError, match="no events table"):
        load_dataset(f"things-eeg1:{tmp_path / 'sub-03'}")
    _write_table(eeg / "sub-03_task-rsvp_events.tsv", rows, "\t", ["onset", "duration"])
    with pytest.raises(NeuralignError, match="no 'stimname' column"):
        load_dataset(f"things-eeg1:{tmp_path / 'sub-03'}")

"""The ground vocabulary: EpochData operations, the session design format, fill_doc."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuralign.base import EpochData, SessionDesign, docdict, fill_doc, load_design
from neuralign.errors import NeuralignError


def small_data(n: int = 20, *, seed: int = 0) -> EpochData:
    rng = np.random.default_rng(seed)
    ids = np.array([f"img{i % 5}" for i in range(n)])
    epochs = rng.standard_normal((n, 3, 7))
    return EpochData(epochs, ids, np.linspace(-0.1, 0.5, 7), ["a", "b", "c"],
                     test_ids=["img4"], info={"onsets_s": (0.2 * np.arange(n)).tolist()})


def test_sorted_by_and_head_keep_epochs_with_their_ids():
    data = small_data()
    sh = data.sorted_by("shuffle", seed=0)
    assert sorted(sh.stimulus_ids.tolist()) == sorted(data.stimulus_ids.tolist())
    i = int(np.nonzero(sh.stimulus_ids != data.stimulus_ids)[0][0])
    j = [k for k in range(20) if np.array_equal(data.epochs[k], sh.epochs[i])][0]
    assert sh.stimulus_ids[i] == data.stimulus_ids[j]
    assert "onsets_s" not in sh.info  # the recorded onsets no longer fit the order
    assert sh.info["replay_order"] == "shuffled (seed 0)"
    assert data.sorted_by("as-is") is data
    head = data.head(5)
    assert head.n_epochs == 5
    assert head.info["onsets_s"] == data.info["onsets_s"][:5]
    assert head.test_ids == ["img4"]
    assert data.head(100) is data
    with pytest.raises(NeuralignError, match="order"):
        data.sorted_by("backwards")


def test_stimulus_means_and_split_halves():
    data = small_data()
    ids, means = data.stimulus_means()
    assert ids == [f"img{i}" for i in range(5)]
    np.testing.assert_allclose(means[2], data.epochs[2::5].mean(0).ravel())
    ids_h, a, b = data.split_halves()
    assert ids_h == ids
    reps = data.epochs[3::5]  # img3 in arrival order: halves are reps 0, 2 and 1, 3
    np.testing.assert_allclose(a[3], reps[0::2].mean(0))
    np.testing.assert_allclose(b[3], reps[1::2].mean(0))
    one = data.subset([0, 1, 5])  # img0 twice, img1 once: img1 has no halves
    assert one.split_halves()[0] == ["img0"]
    assert data.unique_ids() == [f"img{i}" for i in range(5)]


def test_epoch_data_checks_its_shape():
    with pytest.raises(NeuralignError, match="stimulus ids for 2 epochs"):
        EpochData(np.zeros((2, 1, 3)), ["a"], np.arange(3), ["c"])
    with pytest.raises(NeuralignError, match="channel names"):
        EpochData(np.zeros((2, 1, 3)), ["a", "b"], np.arange(3), ["c", "d"])


def test_presenter_design_round_trips_with_its_extra_keys(tmp_path):
    design = SessionDesign(stimuli=("a", "b"), roles={"a": "train", "b": "test"},
                           marker_stream="mk", reps={"a": 4, "b": 20}, soa_s=0.2,
                           extra={"trials": [{"index": 0, "marker": "a"}], "seed": 7})
    p = design.save(tmp_path / "design.json")
    raw = json.loads(p.read_text())
    assert raw["format"] == "neuralign-design"
    assert raw["trials"] == [{"index": 0, "marker": "a"}]
    back = load_design(p)
    assert back.test_ids == ["b"]
    assert back.reps == {"a": 4, "b": 20}
    assert back.extra == {"trials": [{"index": 0, "marker": "a"}], "seed": 7}
    assert back.to_dict() == raw


def test_design_files_of_another_version_are_refused(tmp_path):
    p = tmp_path / "d.json"
    p.write_text(json.dumps({"version": 2, "stimuli": ["a"]}))
    with pytest.raises(NeuralignError, match="not a version-1"):
        load_design(p)
    p.write_text(json.dumps({"stimuli": ["a", "a"]}))
    with pytest.raises(NeuralignError, match="listed twice"):
        load_design(p)
    design = SessionDesign(stimuli=("a",), roles={"a": "train"}, ch_names=("Pz", "Oz"))
    design.check_channel_names(["pz", "OZ"])
    design.check_channel_names(["ch1", "ch2"])  # unlabelled streams are not checked
    with pytest.raises(NeuralignError, match="differ from the design"):
        design.check_channel_names(["Cz", "Oz"])


def test_fill_doc_inserts_shared_parameter_text():
    @fill_doc
    def f(spec):
        """Do.

        Parameters
        ----------
        %(dataset_spec)s
        """

    assert docdict["dataset_spec"].splitlines()[1].strip() in f.__doc__
    assert "%(" not in f.__doc__
    with pytest.raises(RuntimeError, match="no docdict entry"):
        @fill_doc
        def g():
            """%(no_such_entry)s"""

from __future__ import annotations

import json

import pytest

from neuralign.base import load_design
from neuralign.errors import NeuralignError
from neuralign.sim.amp import make_schedule


def test_schedule_design_roundtrip_and_counts(tmp_path):
    ids = [f"s{i}" for i in range(30)]
    sch = make_schedule(ids, n_test=5, train_reps=2, test_reps=4, soa=0.2, seed=3,
                        marker_stream="mk", n_channels=17)
    p = sch.design.save(tmp_path / "d.json")
    d = load_design(p)
    assert len(d.test_ids) == 5
    assert len(d.train_ids) == 25
    assert sorted(sch.ids) == sorted([s for s in d.train_ids for _ in range(2)]
                                     + [s for s in d.test_ids for _ in range(4)])
    assert d.marker_stream == "mk"
    assert d.n_channels == 17
    assert sch.onsets[1] - sch.onsets[0] == pytest.approx(0.2)


def test_design_errors_are_one_line_and_name_the_file(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"stimuli": [{"id": "a", "role": "validation"}]}))
    with pytest.raises(NeuralignError, match="role must be train or test") as e:
        load_design(p)
    assert str(p) in str(e.value)
    p.write_text("{not json")
    with pytest.raises(NeuralignError, match="not a JSON design"):
        load_design(p)
    p.write_text(json.dumps({"stimuli": ["a"], "eeg": {"n_channels": 32}}))
    d = load_design(p)
    with pytest.raises(NeuralignError, match="has 17 channels but the session design expects 32"):
        d.check_channels(17, stream="amp")

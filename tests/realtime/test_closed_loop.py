"""Closed loop in a live session: decisions published, recorded, and reproduced by a replay."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuralign.align import AlignmentEngine
from neuralign.align.group import ModelGroup
from neuralign.base import EpochData, FeatureSet, SessionDesign
from neuralign.io.backchannel import BackChannelOutlet, BackChannelReader, wait_for_reader
from neuralign.realtime.closed_loop import ClosedLoop, parse_request
from neuralign.realtime.decisions import BlockPolicy, replay_decisions
from neuralign.sim.brain import SyntheticBrain
from neuralign.sim.closed_loop import planted_features

from .lslkit import unique

pytestmark = pytest.mark.lsl


def test_requests_are_parsed_from_control_markers():
    assert parse_request("#next 3") == 3
    assert parse_request("#next 12 ") == 12
    for other in ("#next", "#next x", "next 3", "img01", "#nextt 3", 5, None):
        assert parse_request(other) is None


def _session(tmp_path, *, n_models=1, n_train=60, n_test=12, n_blocks=6, block=10, seed=3):
    fs = planted_features(n_train + n_test, 3, 8, seed)
    ids = fs.stimulus_ids.tolist()
    models = {"planted": fs}
    if n_models == 2:  # a second model: other layers over the same stimuli
        other = planted_features(n_train + n_test, 2, 6, seed + 1)
        models["other"] = FeatureSet(ids, other.layers, [other.layer(i) for i in range(2)],
                                     {"model": "other"})
    test_ids = ids[n_train:]
    shown = ids[5:]  # the presenter has all but five of the features' training stimuli
    design = SessionDesign(stimuli=tuple(shown),
                           roles={s: ("test" if s in test_ids else "train") for s in shown})
    brain = SyntheticBrain(fs, snr=0.6, seed=seed)
    times = np.arange(-0.1, 0.4, 0.02)
    if n_models == 1:
        eng = AlignmentEngine(fs, times=times, ch_names=brain.ch_names, test_ids=test_ids)
    else:
        eng = ModelGroup(models, times=times, ch_names=brain.ch_names, test_ids=test_ids)
    outlet = BackChannelOutlet(unique("nl-cl"))
    reader = BackChannelReader(outlet.name[:-len("-backchannel")])
    assert reader.connect(20.0)
    assert wait_for_reader(outlet, 20.0)
    record = tmp_path / "recording" / "design.json"
    loop = ClosedLoop(eng, outlet=outlet, design=design, record_path=record,
                      policy=BlockPolicy(block_size=block, n_boot=50, n_perm=50, seed=seed))
    all_ids, all_ep = [], []
    rng = np.random.default_rng(seed)
    for s in range(n_blocks):
        # as live: block s is asked for while sequence s - 1 is shown (its epochs still to come)
        loop.on_markers(["img_x", f"#next {s}"])  # what the acquisition thread forwards
        loop.decide(loop._requests.get_nowait())
        if s == 0:
            continue
        ids = loop.blocks[s - 1]["ids"]
        ep = brain.epochs(ids, 1, times=times, seed=100 + s)[:, 0]
        for sid, e in zip(ids, ep):
            with loop.feeding():
                eng.add_epoch(sid, e)
            all_ids.append(sid)
            all_ep.append(e)
            if rng.random() < 0.2:  # the session's own refresh worker, at arbitrary points
                eng.refresh()
    msgs = [reader.poll(5.0) for _ in range(n_blocks)]
    loop.stop()
    reader.close()
    outlet.close()
    data = EpochData(np.stack(all_ep), np.array(all_ids), times, list(brain.ch_names),
                     test_ids=test_ids)
    return (fs if n_models == 1 else models), design, loop, msgs, data, record


@pytest.mark.parametrize("n_models", [1, 2])
def test_decisions_are_published_recorded_and_replayed(tmp_path, n_models):
    fs, design, loop, msgs, data, record = _session(tmp_path, n_models=n_models)
    saved = json.loads(record.read_text())
    assert saved["order"] == "closed-loop"
    blocks = saved["closed_loop"]["blocks"]
    assert [b["block"] for b in blocks] == list(range(6))
    assert [b["for_sequence"] for b in blocks] == list(range(6))
    assert [b["n_epochs"] for b in blocks] == [0, 0, 10, 20, 30, 40]
    # what was published is what was recorded
    assert [m.kind for m in msgs] == ["block"] * 6
    assert [m.ids for m in msgs] == [b["ids"] for b in blocks]
    assert [m.body["for_sequence"] for m in msgs] == list(range(6))
    test_set = set(design.test_ids)
    shown_train: set[str] = set()
    for b in blocks:
        assert len(b["ids"]) == 10
        assert sorted(b["ids"]) == sorted(p["id"] for p in b["picks"])
        for p in b["picks"]:
            assert p["reason"]
            assert np.isfinite(p["score"])
            # the test set is fixed: test picks are design test stimuli, train picks never
            assert (p["role"] == "test") == (p["id"] in test_set)
            assert p["id"] in design.stimuli  # only what the presenter has
        train = [p["id"] for p in b["picks"] if p["role"] == "train"]
        # new training stimuli only, though each block is chosen before the last one's EEG
        assert not shown_train & set(train)
        shown_train |= set(train)
    assert any(p["role"] == "train" for b in blocks[1:] for p in b["picks"])
    # the recorded blocks come back from the recording through a fresh engine
    again = replay_decisions(saved, data, fs)
    assert [r["ids"] for r in again] == [b["ids"] for b in blocks]
    assert [r["layers"] for r in again] == [b["layers"] for b in blocks]
    assert all(sorted(b["layers"]) == sorted(["model"] if n_models == 1 else ["planted", "other"])
               for b in blocks)
    for r, b in zip(again, blocks):
        np.testing.assert_allclose([p["score"] for p in r["picks"]],
                                   [p["score"] for p in b["picks"]], rtol=1e-6, atol=1e-9)
    # a replay of a different recording does not reproduce them
    shuffled = EpochData(data.epochs[::-1].copy(), data.stimulus_ids[::-1].copy(), data.times,
                         data.ch_names, test_ids=data.test_ids)
    other = replay_decisions(saved, shuffled, fs)
    assert [r["ids"] for r in other] != [b["ids"] for b in blocks]

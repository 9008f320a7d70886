"""Which images a sequence shows (random / closed-loop), and the --order options (no display)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from neuralign.errors import NeuralignError
from neuralign.io.backchannel import BackChannelReader, Message
from neuralign.stimulus.config import load_config
from neuralign.stimulus.order import SequenceOrder
from neuralign.stimulus.run import prepare_plan

from .conftest import make_images, write_config

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
seed = 3
order = "closed-loop"
[stimuli]
source = "folder:imgs"
n_test = 2
train_reps = 1
test_reps = 2
[timing]
sequence_length = 4
[task]
target_fraction = 1.0
"""


def _plan(tmp_path):
    make_images(tmp_path / "imgs", 8)
    cfg = load_config(write_config(tmp_path / "s.toml", CONFIG))
    return prepare_plan(cfg, progress=False)


def _seq(plan, s):
    return [t for t in plan.trials if t.sequence == s]


def test_blocks_replace_the_planned_images_and_fallback_keeps_the_plan(tmp_path):
    plan = _plan(tmp_path)
    assert plan.config.order == "closed-loop"
    reader = BackChannelReader(f"nl-order-{tmp_path.name[-8:]}")  # never connected here
    order = SequenceOrder(plan, reader=reader, closed_loop=True, timeout_s=0.7)
    try:
        assert order.request(0) == "#next 0"
        assert order.request(99) is None  # past the last sequence
        assert order.wait_s() == 0.7
        ids = list(plan.roles)
        # sequence 0: a block with an id the plan has no image for, and one id short
        order.blocks[0] = Message("block", {"block": 4, "for_sequence": 0,
                                            "ids": [ids[5], "nope", ids[1], ids[5]]})
        order.blocks[7] = Message("block", {"block": 9, "for_sequence": 7, "ids": [ids[0]]})
        assert order.ready(0)
        planned = _seq(plan, 0)
        got, info = order.resolve(0, planned)
        stim = [t for t in got if t.kind == "stimulus"]
        # the catch trial stays where it was; the block's known ids fill the stimulus slots
        assert [t.kind for t in got] == [t.kind for t in planned]
        assert [t.stimulus_id for t in stim][:3] == [ids[5], ids[1], ids[5]]
        assert stim[3].stimulus_id == [t for t in planned if t.kind == "stimulus"][3].stimulus_id
        assert all(t.marker == t.stimulus_id and t.role == plan.roles[t.stimulus_id]
                   for t in stim)
        assert [t.rep for t in stim][:3] == [0, 0, 1]  # repetitions as shown
        assert [t.onset_frame for t in got] == [t.onset_frame for t in planned]
        assert info["source"] == "closed-loop"
        assert info["chosen_block"] == 4
        assert info["replaced"] == ["nope"]
        assert info["ids"] == [t.stimulus_id for t in stim]
        # sequence 1: nothing came: the plan, logged as a fallback; then no more waiting
        got, info = order.resolve(1, _seq(plan, 1), waited_s=0.7)
        assert [t.stimulus_id for t in got] == [t.stimulus_id for t in _seq(plan, 1)]
        assert info["source"] == "fallback"
        assert "0.7 s" in info["reason"]
        assert order.wait_s() == 0.0
        assert (order.n_closed_loop, order.n_fallback) == (1, 1)
        # a block that comes in time again is used again
        order.blocks[2] = Message("block", {"block": 5, "for_sequence": 2, "ids": ids[:4]})
        assert order.resolve(2, _seq(plan, 2))[1]["source"] == "closed-loop"
        assert order.wait_s() == 0.7
        # blocks that came after their sequence: the newest is shown next, older ones dropped
        order.blocks[1] = Message("block", {"block": 6, "for_sequence": 1, "ids": ids[:4]})
        order.blocks[2] = Message("block", {"block": 7, "for_sequence": 2, "ids": ids[4:8]})
        assert order.ready(3)
        got, info = order.resolve(3, _seq(plan, 3))
        assert info["source"] == "closed-loop"
        assert (info["chosen_block"], info["late_for"]) == (7, 2)
        assert info["ids"] == ids[4:8][:len(info["ids"])]
        assert order.late == [1]
        assert order.wait_s() == 0.0  # behind: the next sequence does not wait
        assert 7 in order.blocks  # still ahead
    finally:
        reader.close()


def test_random_order_shows_the_plan_and_never_waits(tmp_path):
    plan = _plan(tmp_path)
    order = SequenceOrder(plan, reader=None, closed_loop=True)
    assert not order.closed_loop  # no back channel at all: the plan
    assert order.request(0) is None
    assert order.wait_s() == 0.0
    got, info = order.resolve(0, _seq(plan, 0))
    assert got == _seq(plan, 0)
    assert info["source"] == "plan"


def test_order_options_are_validated(tmp_path):
    make_images(tmp_path / "imgs", 4)
    with pytest.raises(NeuralignError, match="order must be random or closed-loop"):
        load_config(None, overrides={"order": "sideways"})
    with pytest.raises(NeuralignError, match="closed_loop.timeout_s"):
        load_config(None, overrides={"closed_loop": {"timeout_s": -1.0}})

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "neuralign.cli", *args],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)

    p = cli("present", "--order", "sideways", "--design-only")
    assert p.returncode == 2
    assert "--order" in p.stderr
    p = cli("gui", "--order", "closed-loop", "--eeg-stream", "x", "--marker-stream", "y")
    assert p.returncode == 2
    assert "--order closed-loop needs --design" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    p = cli("live", "--order", "closed-loop", "--eeg-stream", "x", "--marker-stream", "y",
            "--features", str(tmp_path / "f.npz"), "--out", str(tmp_path / "o2"))
    assert p.returncode == 2
    assert "--order closed-loop needs --design" in p.stderr
    assert not (tmp_path / "o2").exists()  # refused before anything started

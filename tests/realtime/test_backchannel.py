"""The closed-loop back channel over a real LSL outlet and inlet (machine-scope config)."""

from __future__ import annotations

import time

import pytest

from neuralign.errors import NeuralignError
from neuralign.io.backchannel import (
    BackChannelOutlet,
    BackChannelReader,
    Message,
    backchannel_name,
    backchannel_source_id,
    wait_for_reader,
)
from neuralign.lsl import get_pylsl

from .lslkit import unique

pytestmark = pytest.mark.lsl


def test_names_derive_from_the_marker_stream():
    assert backchannel_name("neuralign-markers") == "neuralign-markers-backchannel"
    assert backchannel_name("name:abc") == "abc-backchannel"
    assert backchannel_source_id("a") == backchannel_source_id("a") != backchannel_source_id("b")
    with pytest.raises(NeuralignError):
        backchannel_name("  ")


def test_messages_round_trip_and_junk_is_refused():
    m = Message("block", {"block": 2, "ids": ["a", "b"], "picks": [{"id": "a", "score": 0.5}]})
    back = Message.decode(m.encode(), 3.0)
    assert back.kind == "block"
    assert back.ids == ["a", "b"]
    assert back.block == 2
    assert back.stamp == 3.0
    assert back.body["picks"][0]["score"] == 0.5
    assert Message.decode(Message("stop", {"reason": "done"}).encode()).reason == "done"
    for junk in ("", "img01", "[1, 2]", '{"kind": "nope"}', '{"kind": "block", "ids": [1]}',
                 '{"kind": "block"}'):
        assert Message.decode(junk) is None, junk


def test_reader_receives_blocks_and_stop_in_order_without_blocking():
    markers = unique("nl-bc")
    out = BackChannelOutlet(markers)
    reader = BackChannelReader(markers)
    try:
        t0 = time.monotonic()
        assert reader.poll(0.0) is None  # not found yet: returns at once
        assert time.monotonic() - t0 < 0.1
        assert reader.connect(20.0), "the reader did not find the back channel"
        assert wait_for_reader(out, 20.0)
        t0 = time.monotonic()
        assert reader.poll(0.3) is None  # quiet channel: waits the timeout, then gives up
        assert 0.25 <= time.monotonic() - t0 < 2.0
        assert reader.quiet_for() == float("inf")
        out.block(0, ["img03", "img01"], picks=[{"id": "img03", "role": "train",
                                                 "score": 0.2, "reason": "r"}],
                  for_sequence=0, n_epochs=0)
        # junk on the stream is skipped and counted
        out.outlet.push_sample(["not json"], get_pylsl().local_clock())
        out.block(1, ["img02"], for_sequence=1)
        out.stop("rule met")
        got = [reader.poll(5.0) for _ in range(3)]
        assert [m.kind for m in got] == ["block", "block", "stop"]
        assert got[0].ids == ["img03", "img01"]
        assert got[0].block == 0
        assert got[0].body["picks"][0]["reason"] == "r"
        assert got[0].body["for_sequence"] == 0
        assert got[1].ids == ["img02"]
        assert got[2].reason == "rule met"
        assert got[0].stamp <= got[1].stamp <= got[2].stamp
        assert reader.n_bad == 1
        assert reader.n_received == 3
        assert reader.quiet_for() < 5.0
        assert reader.poll(0.0) is None
    finally:
        reader.close()
        out.close()

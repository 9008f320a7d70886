"""Faults of the streams are said out loud: status, the recording's log, results counts."""

from __future__ import annotations

import json
import signal
import time

import pytest

from neuralign.realtime import xdf, xdfread
from neuralign.realtime.recording import LOG_ID
from neuralign.realtime.session import LiveSession
from neuralign.sim.features import hierarchical_features

from ..realtime.lslkit import marker_outlet, neuralign, stop, unique, wait_for_stream, wait_until

pytestmark = [pytest.mark.lsl, pytest.mark.faults, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def features():
    return hierarchical_features([f"s{i:02d}" for i in range(20)], n_layers=2, dim=6, seed=0)


def _log(out):
    return [json.loads(c.data[0][0]) for c in xdfread.read_chunks(out / "recording" / "session.xdf")
            if c.tag == xdf.TAG_SAMPLES and c.stream_id == LOG_ID]


def _amp(tmp_path, name, tag, *, ch, fs):
    return neuralign(["simulate-amp", "--eeg-stream", name, "--source-id", name, "--channels",
                      str(ch), "--sfreq", str(fs), "--duration", "100"],
                     tmp_path / f"amp-{tag}.log")


def test_marker_stream_loss_and_return(tmp_path, features):
    import pylsl

    name, mk_name = unique("mkl"), unique("mkl-mk")
    amp = _amp(tmp_path, name, "a", ch=4, fs=250)
    outlet = marker_outlet(mk_name)
    ids = features.stimulus_ids.tolist()
    try:
        wait_for_stream(name)
        sess = LiveSession(features, eeg_stream=name, marker_stream=mk_name, out_dir=tmp_path,
                           refresh_every=0.5)
        sess.start()
        assert wait_until(lambda: outlet.have_consumers(), 20)
        outlet.push_sample([ids[0]], pylsl.local_clock())
        assert sess.snapshot.health.markers_connected
        outlet = None  # the presenter dies
        assert wait_until(lambda: not sess.snapshot.health.markers_connected, 10), \
            sess.status_line()
        assert "markers LOST" in sess.status_line()
        assert sess.snapshot.health.connected  # the EEG is fine
        outlet = marker_outlet(mk_name)  # restarted, same name and source id
        assert wait_until(lambda: sess.snapshot.health.markers_connected, 20)
        assert wait_until(lambda: outlet.have_consumers(), 30)  # liblsl reconnected the inlet
        k = 1
        while sess.snapshot.health.markers_received < 4 and k < 100:  # delivered again
            outlet.push_sample([ids[k % len(ids)]], pylsl.local_clock())
            time.sleep(0.2)
            k += 1
        assert sess.snapshot.health.markers_received >= 4, sess.status_line()
        res = sess.stop()
    finally:
        stop(amp)
        outlet = None
    assert res.counts["marker_outages"] == 1
    assert res.counts["marker_outage_s"] > 0.5
    events = [e["event"] for e in _log(tmp_path)]
    assert events.index("markers_lost") < events.index("markers_back")


@pytest.mark.parametrize(("change", "said"), [
    ({"ch": 2, "fs": 250}, "is back with 2 channels (was 4): it cannot be reconnected"),
    ({"ch": 4, "fs": 500}, "came back at 500 Hz (was 250 Hz)"),
])
def test_eeg_back_in_another_shape(tmp_path, features, change, said):
    name, mk_name = unique("shape"), unique("shape-mk")
    amp = _amp(tmp_path, name, "a", ch=4, fs=250)
    outlet = marker_outlet(mk_name)
    try:
        wait_for_stream(name)
        sess = LiveSession(features, eeg_stream=name, marker_stream=mk_name, out_dir=tmp_path,
                           refresh_every=0.5, stall_s=0.5)
        sess.start()
        assert wait_until(lambda: sess.snapshot.health.samples_received > 100, 10)
        stop(amp, sig=signal.SIGKILL)
        assert wait_until(lambda: not sess.snapshot.health.connected, 5)
        amp = _amp(tmp_path, name, "b", **change)
        assert wait_until(lambda: said in sess.snapshot.health.problem, 30), sess.status_line()
        assert "PROBLEM: " in sess.status_line()
        res = sess.stop(drain_s=0)
    finally:
        stop(amp)
        outlet = None  # noqa: F841 - closes the marker stream
    assert said in res.counts["stream_problem"]
    events = [e["event"] for e in _log(tmp_path)]
    assert ("eeg_shape_changed" if change["ch"] != 4 else "eeg_rate_changed") in events

"""Replaying a dataset over LSL (loopback, machine scope): the epochs come back exactly."""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pytest

from neuralign.base import EpochData
from neuralign.lsl import configure_lsl

pytestmark = [pytest.mark.lsl, pytest.mark.timeout(60)]


def test_lsl_replay_round_trip():
    configure_lsl()
    import pylsl

    from neuralign.sim.player import LSLReplayer

    rng = np.random.default_rng(0)
    n, c, t = 12, 4, 30
    times = np.arange(-5, t - 5) / 100.0
    data = EpochData(epochs=rng.standard_normal((n, c, t)).astype(np.float32),
                     stimulus_ids=[f"img{i % 5}" for i in range(n)], times=times,
                     ch_names=["O1", "Oz", "O2", "Pz"])
    name = f"test-replay-{uuid.uuid4().hex[:8]}"
    rep = LSLReplayer(data, name=name, speed=0, gap_s=0.05, chunk=16)
    eeg_info = pylsl.resolve_byprop("name", name, 1, 5.0)
    mk_info = pylsl.resolve_byprop("name", f"{name}-markers", 1, 5.0)
    assert eeg_info
    assert mk_info
    eeg_in = pylsl.StreamInlet(eeg_info[0], max_buflen=60)
    mk_in = pylsl.StreamInlet(mk_info[0], max_buflen=60)
    eeg_in.open_stream(timeout=5)
    mk_in.open_stream(timeout=5)
    assert rep.wait_for_consumers(5)
    time.sleep(0.3)
    th = threading.Thread(target=rep.run)
    th.start()
    total = n * (t + 5)
    samples, stamps, markers, mstamps = [], [], [], []
    end = time.monotonic() + 20
    while (sum(len(s) for s in samples) < total or len(markers) < n) and time.monotonic() < end:
        x, ts = eeg_in.pull_chunk(timeout=0.2)
        if ts:
            samples.append(np.asarray(x, dtype=np.float32))
            stamps.extend(ts)
        m, mts = mk_in.pull_chunk(timeout=0.0)
        markers.extend(v[0] for v in m)
        mstamps.extend(mts)
    th.join(10)
    rep.close()
    eeg = np.concatenate(samples)
    stamps = np.asarray(stamps)
    assert eeg.shape == (total, c)
    assert markers == data.stimulus_ids.tolist()
    for k, ms in enumerate(mstamps):
        onset = int(np.argmin(np.abs(stamps - ms)))
        ep = eeg[onset - rep.onset_offset: onset - rep.onset_offset + t].T
        np.testing.assert_array_equal(ep, data.epochs[k])

"""Publishing is apart from solving: a long refresh freezes neither the status nor LOST."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from neuralign.realtime.session import LiveSession, refresh_threads
from neuralign.sim.features import hierarchical_features

from ..realtime.lslkit import marker_outlet, neuralign, stop, unique, wait_for_stream, wait_until

pytestmark = [pytest.mark.lsl, pytest.mark.faults, pytest.mark.timeout(120)]


def test_status_and_lost_keep_updating_during_a_long_refresh(tmp_path):
    features = hierarchical_features([f"s{i:02d}" for i in range(20)], n_layers=2, dim=6, seed=0)
    name, mk_name = unique("pub"), unique("pub-mk")
    amp = neuralign(["simulate-amp", "--eeg-stream", name, "--source-id", name, "--channels",
                     "4", "--sfreq", "250", "--duration", "60"],
                    tmp_path / "amp.log")
    outlet = marker_outlet(mk_name)
    try:
        wait_for_stream(name)
        sess = LiveSession(features, eeg_stream=name, marker_stream=mk_name, out_dir=tmp_path,
                           refresh_every=0.2, stall_s=0.5)
        sess.connect()
        assert sess.engine.n_jobs == refresh_threads() == max(1, (os.cpu_count() or 1) - 1)
        inside, release = threading.Event(), threading.Event()
        real = sess.engine.refresh

        def slow_refresh(**kw):  # a refresh that takes as long as the test wants
            inside.set()
            release.wait(30)
            return real(**kw)

        sess.engine.refresh = slow_refresh
        sess.start()
        import pylsl

        for sid in features.stimulus_ids[:3]:  # epochs arrive: the next refresh is due
            outlet.push_sample([str(sid)], pylsl.local_clock())
        assert inside.wait(15), sess.status_line()
        walls = []
        t_end = time.monotonic() + 2.0
        while time.monotonic() < t_end:
            walls.append(sess.snapshot.wall_time)
            time.sleep(0.05)
        assert sess.publisher.refreshing
        assert max(walls) - min(walls) >= 1.5  # snapshots kept coming during the refresh
        assert sess.snapshot.health.connected
        stop(amp, sig=signal.SIGKILL)  # the EEG goes away while the refresh still runs
        assert wait_until(lambda: not sess.snapshot.health.connected, 3.0)
        assert sess.publisher.refreshing
        assert "LOST" in sess.status_line()
    finally:
        release.set()
        stop(amp)
        outlet = None  # noqa: F841 - closes the marker stream
    sess.engine.refresh = real
    sess.stop(drain_s=0)

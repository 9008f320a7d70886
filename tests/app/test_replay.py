"""Replay source: feeds the engine like a live session, never blocks the window, obeys controls."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from neuralign.app.window import MainWindow
from neuralign.base import EpochData
from neuralign.realtime.replay import ReplaySource, make_engine

from .conftest import CH_NAMES, TIMES, make_result


def small_data(n: int = 40, *, seed: int = 0) -> EpochData:
    rng = np.random.default_rng(seed)
    ids = np.array([f"img{i % 10}" for i in range(n)])
    ep = rng.standard_normal((n, len(CH_NAMES), TIMES.size)).astype(np.float32)
    return EpochData(ep, ids, TIMES.copy(), list(CH_NAMES), info={"soa_s": 0.2})


class FakeEngine:
    """Counts epochs; ``refresh`` can be held on an event to act like a very slow refresh."""

    def __init__(self, *, hold: threading.Event | None = None, known=None) -> None:
        self.n_epochs = 0
        self.ids: list[str] = []
        self.hold = hold
        self.in_refresh = threading.Event()
        self.known = known

    @property
    def n_stimuli_seen(self) -> int:
        return len(set(self.ids))

    def add_epoch(self, stimulus_id, epoch) -> bool:
        if self.known is not None and stimulus_id not in self.known:
            return False
        self.ids.append(stimulus_id)
        self.n_epochs += 1
        return True

    def refresh(self):
        self.in_refresh.set()
        if self.hold is not None:
            self.hold.wait(30)
        res = make_result()
        res.counts["n_epochs"] = self.n_epochs
        return res


def test_replay_publishes_counts_erp_and_scope():
    data = small_data(30)
    eng = FakeEngine(known={f"img{i}" for i in range(8)})  # img8, img9 unknown
    src = ReplaySource(data, eng, speed=math.inf)
    snap = src.run_to_end()
    assert src.finished
    assert snap.epochs_accepted == 24
    assert snap.epochs_rejected == 6
    assert snap.stimuli_seen == 8
    assert eng.ids == [s for s in data.stimulus_ids.tolist() if s not in ("img8", "img9")]
    keep = ~np.isin(data.stimulus_ids, ["img8", "img9"])
    np.testing.assert_allclose(snap.erp, data.epochs[keep].mean(0), rtol=1e-5, atol=1e-6)
    assert snap.result is not None
    assert snap.result.counts["n_epochs"] == 24
    # the scope ends at the replay clock and holds the last epoch at its onset
    assert snap.scope.shape == (len(CH_NAMES), snap.scope_times.size)
    on = src.onsets[-1]
    j = int(np.argmin(np.abs(snap.scope_times - (on + 0.5))))
    np.testing.assert_allclose(snap.scope[:, j], data.epochs[-1][:, 70], rtol=1e-6)
    assert on in snap.marker_times


def test_replay_matches_batch_engine(tmp_path):
    """Epoch by epoch through the replay == one batch call on the same epochs (1e-6)."""
    from neuralign.align import analyze_epochs
    from neuralign.commands.datasets import load_dataset
    from neuralign.io.features import load_features
    from neuralign.sim.dataset import write_things_eeg2

    write_things_eeg2(tmp_path / "sim", n_train=40, n_test=8, train_reps=2, test_reps=4,
                      n_layers=3, dim=8, seed=1)
    data = load_dataset(f"sim:{tmp_path / 'sim'}").sorted_by("shuffle", seed=3)
    feats = load_features(tmp_path / "sim" / "features.npz")
    src = ReplaySource(data, make_engine(data, feats), speed=math.inf)
    snap = src.run_to_end()
    batch = analyze_epochs(data, feats)
    assert snap.epochs_accepted == data.epochs.shape[0]
    np.testing.assert_allclose(snap.result.encoding_r, batch.encoding_r, atol=1e-6)
    np.testing.assert_allclose(snap.result.rsa_spearman, batch.rsa_spearman, atol=1e-6)


def test_real_speed_follows_onsets():
    """At 20x with 0.2 s SOA and 0.79 s epochs, epoch i is fed once clock >= 0.2 i + 0.79."""
    data = small_data(12)
    eng = FakeEngine()
    src = ReplaySource(data, eng, speed=20.0)
    src.start()
    assert src.wait(timeout=30)
    snap = src.latest()
    assert snap.epochs_accepted == 12
    assert snap.session_time >= src.onsets[-1] + TIMES[-1]


def test_slow_refresh_never_blocks_window_or_feeding(qtbot):
    """While a refresh is held, the GUI timer keeps ticking and epochs keep coming in."""
    hold = threading.Event()
    data = small_data(2000)
    eng = FakeEngine(hold=hold)
    src = ReplaySource(data, eng, speed=10.0, refresh_interval=0.1)
    win = MainWindow(src)
    qtbot.addWidget(win)
    win.set_gui_hz(50)
    src.start()
    try:
        assert eng.in_refresh.wait(20)  # the refresher is now stuck inside refresh()
        ticks0, fed0 = win.tick_count, src.latest().epochs_accepted
        qtbot.waitUntil(lambda: win.tick_count >= ticks0 + 10, timeout=20000)
        qtbot.waitUntil(lambda: src.latest().epochs_accepted >= fed0 + 10, timeout=20000)
        assert src.refreshing
        assert src.latest().result is None
        assert "refreshing" in win.stream_panel.labels["refresh"].text()
        assert int(win.stream_panel.labels["epochs"].text().split()[0]) > 0
    finally:
        hold.set()
        src.stop()
    qtbot.waitUntil(lambda: win._last_result is not None or src.latest().result is not None,
                    timeout=10000)


def test_window_controls_drive_the_replay(qtbot):
    from PySide6 import QtCore

    data = small_data(2000)
    src = ReplaySource(data, FakeEngine(), speed=5.0, refresh_interval=60)
    win = MainWindow(src)
    qtbot.addWidget(win)
    assert win.controls.speed.value() == 5.0  # the control shows the source's speed
    assert win.controls.start_btn.isEnabled()
    assert win.controls.pause_btn.isEnabled()
    assert win.controls.speed.isEnabled()
    qtbot.mouseClick(win.controls.start_btn, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: src.latest() is not None and src.latest().epochs_accepted > 0,
                    timeout=10000)
    qtbot.mouseClick(win.controls.pause_btn, QtCore.Qt.MouseButton.LeftButton)
    assert src.paused
    assert win.controls.pause_btn.text() == "Resume"
    qtbot.wait(300)  # let the feeder finish the step it was in
    n = src.latest().epochs_accepted
    qtbot.wait(300)
    assert src.latest().epochs_accepted == n  # paused: nothing fed
    win.controls.speed.setValue(40.0)
    assert src.speed == 40.0
    win.controls.speed.setValue(0.0)  # shown as "max"
    assert math.isinf(src.speed)
    assert win.controls.speed.text() == "max"
    win.controls.refresh_s.setValue(3.0)
    assert src.refresh_interval == 3.0
    qtbot.mouseClick(win.controls.pause_btn, QtCore.Qt.MouseButton.LeftButton)
    assert not src.paused
    qtbot.waitUntil(lambda: src.latest().epochs_accepted > n, timeout=10000)
    qtbot.mouseClick(win.controls.stop_btn, QtCore.Qt.MouseButton.LeftButton)
    assert not src.running
    win.tick()
    assert win.controls.progress.value() > 0


def test_onsets_from_info_are_used():
    data = small_data(5)
    data.info["onsets_s"] = [10.0, 10.5, 11.5, 12.0, 14.0]
    src = ReplaySource(data, FakeEngine())
    np.testing.assert_allclose(src.onsets, [0, 0.5, 1.5, 2.0, 4.0])
    src2 = ReplaySource(data, FakeEngine(), soa=0.3)
    np.testing.assert_allclose(src2.onsets, 0.3 * np.arange(5))


class FakeSession:
    """Stands in for neuralign.realtime.session.LiveSession (publishes ``.snapshot``)."""

    def __init__(self, snapshot, *, fail: str | None = None) -> None:
        self.snapshot = None
        self._snap = snapshot
        self.fail = fail
        self.connected = False
        self.started = threading.Event()

    def start(self) -> None:
        from neuralign.errors import NeuralignError

        if self.fail:
            raise NeuralignError(self.fail)
        self.connected = True
        self.snapshot = self._snap
        self.started.set()

    def stop(self):
        self.connected = False
        return self._snap.result


def test_live_source_connects_in_background_and_keeps_final_result(qtbot):
    from neuralign.realtime.source import LiveSource

    from .conftest import make_snapshot

    snap = make_snapshot(make_result())
    seen = []
    src = LiveSource(FakeSession(snap), on_connected=seen.append)
    win = MainWindow(src)
    qtbot.addWidget(win)
    assert src.latest() is None
    src.start()
    qtbot.waitUntil(lambda: win._last_result is not None, timeout=10000)
    assert seen == [src.session]
    assert win.stream_panel.labels["eeg"].text() == "test-eeg"
    src.stop()
    assert src.result is snap.result
    assert not src.session.connected


def test_live_source_connect_error_is_shown(qtbot):
    from neuralign.realtime.source import LiveSource

    src = LiveSource(FakeSession(None, fail="EEG stream 'amp' not found within 10 s"))
    win = MainWindow(src)
    qtbot.addWidget(win)
    src.start()
    qtbot.waitUntil(lambda: "not found" in win.controls.source_msg.text(), timeout=10000)
    assert win.controls.source_msg.text().startswith("connect: ")
    src.stop()  # never connected: nothing to stop, no error
    assert src.result is None


def test_window_refuses_objects_that_are_not_sources(qtbot):
    """The window paints a SnapshotSource; it does not probe objects for attributes."""
    from .conftest import make_snapshot

    sess = FakeSession(make_snapshot(make_result()))
    with pytest.raises(TypeError, match="SnapshotSource"):
        MainWindow(sess)

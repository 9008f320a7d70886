"""The window builds, paints snapshots faithfully, its controls act and it exports files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from neuralign.align.data import AlignmentResult
from neuralign.app.connect import ConnectDialog
from neuralign.app.window import MainWindow
from neuralign.realtime.source import SnapshotSource, StaticSource

from .conftest import CH_NAMES, make_result, make_snapshot


@pytest.fixture
def window(qtbot):
    win = MainWindow(None)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    return win


def test_window_builds_without_source(window):
    assert set(window.plots) == {"encoding_map", "rsa_map", "peak_latency", "noise_ceiling",
                                 "eeg_scope", "erp"}
    window.tick()
    assert window.stream_panel.labels["eeg"].text() == "not connected"
    assert not window.controls.stop_btn.isEnabled()
    assert not window.controls.pause_btn.isEnabled()
    assert window.timer.isActive()


def test_maps_show_the_result_exactly(window, snapshot, result):
    window.set_source(StaticSource(snapshot))
    window.tick()
    enc = window.enc_map
    want = result.encoding_map()
    assert enc.data.dtype == np.float32
    assert enc.data.flags.c_contiguous
    np.testing.assert_allclose(enc.data, want, rtol=1e-6, atol=1e-7)
    # explicit levels: from 0 (or the minimum, if negative) to the maximum
    lo, hi = enc.levels
    assert hi == pytest.approx(float(np.nanmax(want)), rel=1e-6)
    assert lo == pytest.approx(min(0.0, float(np.nanmin(want))), rel=1e-6)
    assert tuple(enc.image.levels) == pytest.approx((lo, hi))
    assert enc.image.image.shape == (len(result.layers), result.times.size)
    # peaks marked at each layer's peak latency
    lat, _ = result.peaks("encoding")
    xs, ys = enc.peaks.getData()
    np.testing.assert_allclose(xs, lat)
    np.testing.assert_array_equal(ys, np.arange(len(result.layers)))
    # planted peaks at 80 + 40 l ms are recovered by what is painted
    np.testing.assert_allclose(lat, 0.08 + 0.04 * np.arange(len(result.layers)), atol=0.011)
    np.testing.assert_allclose(window.rsa_map.data, result.rsa_spearman.astype(np.float32))
    px, py = window.peak_panel.curves["encoding"].getData()
    np.testing.assert_allclose(py, lat.astype(np.float32))
    cx, cy = window.ceiling_panel.curves["r_ceiling"].getData()
    np.testing.assert_allclose(cy, result.noise_ceiling_time("r_ceiling"), rtol=1e-6)
    assert "block" in enc.status.text()
    assert "480 epochs" in enc.status.text()


def test_stream_panel_shows_health(window, snapshot):
    window.set_source(StaticSource(snapshot))
    window.tick()
    lab = {k: v.text() for k, v in window.stream_panel.labels.items()}
    assert lab["eeg"] == "test-eeg"
    assert lab["markers"] == "test-markers"
    assert lab["rate"] == "100.0 Hz"
    assert lab["channels"] == str(len(CH_NAMES))
    assert lab["buffer"] == "50 %"
    assert lab["dropped"] == "7"
    assert lab["reconnects"] == "1"
    assert lab["latency"] == "12.3 ms"
    assert lab["epochs"].startswith("480 / 3")
    assert "2 unknown" in lab["epochs"]
    assert lab["stimuli"] == "60"
    assert "s ago" in lab["refresh"]


def test_scope_and_erp_follow_selection(window, snapshot):
    window.set_source(StaticSource(snapshot))
    window.tick()
    scope = window.scope_panel
    assert len(scope.curves) == len(CH_NAMES)  # "first 16" of 10 channels
    visible = [ln for ln in scope.marker_lines if ln.isVisible()]
    assert sorted(ln.value() for ln in visible) == pytest.approx(sorted(snapshot.marker_times))
    scope.select("region: occipital")
    window.apply_snapshot(snapshot)
    assert [CH_NAMES[i] for i in scope.selected] == ["O1", "Oz", "O2", "PO7", "PO8"]
    assert len(scope.curves) == 5
    erp = window.erp_panel
    erp.choice.setCurrentIndex(erp.choice.findText("region: occipital"))
    x, y = erp.curve.getData()
    rows = [CH_NAMES.index(c) for c in ("O1", "Oz", "O2", "PO7", "PO8")]
    np.testing.assert_allclose(y, snapshot.erp[rows].mean(0), rtol=1e-5, atol=1e-6)
    erp.choice.setCurrentIndex(erp.choice.findText("Cz"))
    np.testing.assert_allclose(erp.curve.getData()[1], snapshot.erp[CH_NAMES.index("Cz")])


def test_scope_gain_scales_traces(window, snapshot):
    window.set_source(StaticSource(snapshot))
    window.tick()
    y1 = window.scope_panel.curves[0].getData()[1].copy()
    window.scope_panel.gain.setValue(2.0)
    window.apply_snapshot(snapshot)
    y2 = window.scope_panel.curves[0].getData()[1]
    np.testing.assert_allclose(y2, 2 * y1, rtol=1e-5, atol=1e-6)


def test_normalised_and_rsa_toggles(window, snapshot, result):
    window.set_source(StaticSource(snapshot))
    window.tick()
    window.controls.normalized.setChecked(True)
    want = result.encoding_map(normalized=True)
    np.testing.assert_allclose(window.enc_map.data, want, rtol=1e-5, equal_nan=True)
    assert window.enc_map.value_name == "r / ceiling"
    window.controls.rsa_kind.setCurrentIndex(window.controls.rsa_kind.findData("rsa_cv"))
    np.testing.assert_allclose(window.rsa_map.data, result.rsa_cv_spearman, rtol=1e-6)
    lat, _ = result.peaks("rsa_cv")
    np.testing.assert_allclose(window.rsa_map.peaks.getData()[0], lat)


def test_nan_layer_is_left_blank(window):
    res = make_result(nan_layer=2)
    window.set_source(StaticSource(make_snapshot(res)))
    window.tick()
    assert np.isnan(window.enc_map.data[2]).all()
    xs, ys = window.enc_map.peaks.getData()
    assert 2 not in ys.tolist()
    assert len(xs) == len(res.layers) - 1


def test_hover_readout_names_layer_time_value(window, snapshot, result):
    from PySide6 import QtCore

    window.set_source(StaticSource(snapshot))
    window.tick()
    panel = window.enc_map
    li, ti = 3, int(np.argmin(np.abs(result.times - 0.2)))
    vb = panel.plot.getPlotItem().getViewBox()
    scene_pos = vb.mapViewToScene(QtCore.QPointF(float(result.times[ti]), float(li)))
    panel._on_mouse_moved(scene_pos)
    text = panel.status.text()
    value = result.encoding_map()[li, ti]
    assert text.startswith(f"layer block{li} · 200 ms · r = {value:.3f}")
    assert panel.readout_at(5.0, 0.0) == ""  # outside the map


def test_export_results_and_pngs(window, snapshot, result, tmp_path):
    window.set_source(StaticSource(snapshot))
    window.tick()
    paths = window.export_results(tmp_path / "res")
    assert (tmp_path / "res" / "results.json").is_file()
    back = AlignmentResult.load(tmp_path / "res")
    np.testing.assert_array_equal(back.encoding_r, result.encoding_r)
    assert json.loads((tmp_path / "res" / "results.json").read_text())["layers"] == result.layers
    assert "maps" in paths
    from PySide6 import QtGui

    pngs = window.export_pngs(tmp_path / "png")
    assert set(pngs) == {"window", *window.plots}
    for key, p in pngs.items():
        img = QtGui.QImage(str(p))
        assert not img.isNull(), key
        assert img.width() > 100, key
    assert QtGui.QImage(str(pngs["window"])).size() == window.size()


def test_export_in_background_reports_done(window, snapshot, tmp_path, qtbot):
    window.set_source(StaticSource(snapshot))
    window.tick()
    assert window.export_results(tmp_path / "bg", background=True) is None
    qtbot.waitUntil(lambda: window.last_export is not None, timeout=60000)
    assert (tmp_path / "bg" / "maps.npz").is_file()
    assert "exported" in window.statusBar().currentMessage()


def test_export_without_result_says_so(window, tmp_path):
    window.set_source(StaticSource(make_snapshot(None)))
    window.tick()
    assert window.export_results(tmp_path / "none") is None
    assert not (tmp_path / "none").exists()
    assert "nothing to export" in window.statusBar().currentMessage()


def test_settings_persist_between_runs(qtbot, tmp_path):
    path = tmp_path / "settings.json"
    win = MainWindow(None, settings_path=path)
    qtbot.addWidget(win)
    win.controls.gui_hz.setValue(25)
    win.controls.normalized.setChecked(True)
    win.controls.tmin.setValue(-0.1)
    win.controls.l_freq.setValue(0.0)
    win.controls.features_edit.setText("/data/feats.npz")
    win.controls.features_edit.editingFinished.emit()
    win.close()
    saved = json.loads(path.read_text())
    assert saved["gui_hz"] == 25
    assert saved["normalized"] is True
    assert saved["tmin"] == -0.1
    win2 = MainWindow(None, settings_path=path)
    qtbot.addWidget(win2)
    assert win2.controls.gui_hz.value() == 25
    assert win2.controls.normalized.isChecked()
    assert win2.controls.features_edit.text() == "/data/feats.npz"
    assert win2.controls.l_freq.value() == 0.0
    assert win2.controls.l_freq.text() == "off"
    assert win2.timer.interval() == 40


def test_broken_settings_file_falls_back_to_defaults(qtbot, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"gui_hz": "fast", "tmin": -0.3, "unknown": 1')  # truncated JSON
    win = MainWindow(None, settings_path=path)
    qtbot.addWidget(win)
    assert win.controls.gui_hz.value() == 10
    assert win.controls.tmin.value() == -0.2
    path.write_text('{"gui_hz": "fast", "tmin": -0.3, "unknown": 1}')
    win2 = MainWindow(None, settings_path=path)
    qtbot.addWidget(win2)
    assert win2.controls.gui_hz.value() == 10
    assert win2.controls.tmin.value() == -0.3


def test_connect_dialog_lists_found_streams(qtbot):
    found = [
        {"name": "amp", "type": "EEG", "channels": 17, "rate": 1000.0, "source_id": "a"},
        {"name": "stim", "type": "Markers", "channels": 1, "rate": 0.0, "source_id": "b"},
    ]
    dlg = ConnectDialog(discover=lambda: found)
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: dlg.streams == found, timeout=5000)
    assert dlg.eeg.itemText(0) == "amp"
    assert dlg.markers.itemText(0) == "stim"
    assert dlg.choice() == ("amp", "stim")
    assert "2 stream(s) found" in dlg.info.text()


def test_connect_builds_source_with_settings(qtbot, snapshot):
    seen = {}

    def factory(settings):
        seen.update(settings)
        return StaticSource(snapshot)

    win = MainWindow(None, source_factory=factory)
    qtbot.addWidget(win)
    win.controls.tmax.setValue(0.6)
    assert win.controls.connect_btn.isEnabled()
    assert win.connect_streams("amp", "stim")
    assert seen["eeg_stream"] == "amp"
    assert seen["marker_stream"] == "stim"
    assert seen["tmax"] == 0.6
    win.tick()
    assert win.stream_panel.labels["eeg"].text() == "test-eeg"
    assert isinstance(win.source, SnapshotSource)


def test_factory_error_is_shown_not_raised(qtbot):
    from neuralign.errors import NeuralignError

    def factory(settings):
        raise NeuralignError("choose the features file first")

    win = MainWindow(None, source_factory=factory)
    qtbot.addWidget(win)
    assert not win.connect_streams("amp", "stim")
    assert "features" in win.controls.source_msg.text()


@pytest.mark.lsl
def test_visible_streams_finds_a_local_outlet():
    import uuid

    from neuralign.lsl import get_pylsl, visible_streams

    pylsl = get_pylsl()

    name = f"nl-app-{uuid.uuid4().hex[:8]}"
    info = pylsl.StreamInfo(name, "EEG", 3, 100.0, "float32", name)
    outlet = pylsl.StreamOutlet(info)
    try:
        found = visible_streams(wait_time=1.5)
    finally:
        del outlet
    mine = [s for s in found if s["name"] == name]
    assert mine
    assert mine[0]["channels"] == 3
    assert mine[0]["type"] == "EEG"
    assert math.isclose(mine[0]["rate"], 100.0)


def test_cycles_are_collected_in_the_gui_thread_only(window, qtbot):
    """A reference cycle holding a Qt object survives allocations in a worker thread (where a
    collection could free it off the GUI thread and deadlock) and is collected by the GUI
    thread's timer."""
    import gc
    import threading
    import weakref

    from PySide6 import QtWidgets

    assert not gc.isenabled()
    gc.collect()
    freed_in: list[str] = []

    class Holder:
        pass

    h = Holder()
    h.menu = QtWidgets.QMenu()
    h.self = h  # a cycle: only the cycle collector frees it
    h.menu.destroyed.connect(lambda *_: freed_in.append(threading.current_thread().name))
    ref = weakref.ref(h)
    del h

    kept: list = []

    def churn():  # containers kept alive: far past the first generation's threshold (700)
        kept.extend([i] for i in range(20_000))

    t = threading.Thread(target=churn, name="worker")
    t.start()
    t.join()
    assert ref() is not None, "collected in the worker thread"
    qtbot.waitUntil(lambda: ref() is None, timeout=10000)
    qtbot.waitUntil(lambda: bool(freed_in), timeout=10000)
    assert freed_in == [threading.main_thread().name]
    kept.clear()

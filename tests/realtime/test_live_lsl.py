"""Live sessions over loopback LSL (machine-scope config), amplifiers in subprocesses."""

from __future__ import annotations

import json
import signal
import time

import numpy as np
import pytest

from neuralign.align.data import AlignmentResult
from neuralign.base import load_design
from neuralign.cli import main
from neuralign.errors import NeuralignError
from neuralign.io.features import save_features
from neuralign.realtime import xdf, xdfread
from neuralign.realtime.recording import EEG_ID, load_recording
from neuralign.realtime.session import LiveSession
from neuralign.sim.features import hierarchical_features

from .lslkit import marker_outlet, neuralign, stop, unique, wait_for_stream, wait_until

pytestmark = [pytest.mark.lsl, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def features_file(tmp_path_factory):
    fs = hierarchical_features([f"stim_{i:03d}" for i in range(40)], n_layers=4, dim=12, seed=1)
    p = tmp_path_factory.mktemp("feat") / "features.npz"
    save_features(p, fs)
    return p, fs


def _recorded_eeg(out):
    chunks = [c for c in xdfread.read_chunks(out / "recording" / "session.xdf")
              if c.tag == xdf.TAG_SAMPLES and c.stream_id == EEG_ID]
    return np.concatenate([c.data for c in chunks]), np.concatenate([c.ts for c in chunks])


# ---------------------------------------------------------------------- delivery
def _counter_delivery(tmp_path, features, *, n_ch: int, sfreq: float, seconds: float):
    name = unique("cnt")
    amp = neuralign(["simulate-amp", "--eeg-stream", name, "--source-id", name, "--channels",
                     str(n_ch), "--sfreq", str(sfreq), "--counter", "--duration",
                     str(seconds + 30)], tmp_path / "amp.log")
    mk_name = unique("cnt-mk")
    outlet = marker_outlet(mk_name)
    try:
        wait_for_stream(name)
        sess = LiveSession(features, eeg_stream=name, marker_stream=mk_name, out_dir=tmp_path,
                           refresh_every=2.0)
        sess.start()
        time.sleep(seconds)
        sess.stop()
    finally:
        stop(amp)
        outlet = None  # noqa: F841 - closes the marker stream
    data, ts = _recorded_eeg(tmp_path)
    counter = data[:, 0].astype(np.int64)
    assert data.shape[1] == n_ch
    assert counter.size >= 0.9 * seconds * sfreq
    steps = np.diff(counter)
    assert (steps == 1).all(), f"dropped/duplicated samples at {np.flatnonzero(steps != 1)[:5]}"
    np.testing.assert_allclose(np.diff(ts), 1 / sfreq, atol=1e-6)
    snap = sess.snapshot
    assert snap.health.dropped_samples == 0
    assert snap.health.gaps == 0
    assert snap.health.samples_received == counter.size


def test_counter_delivery_64ch_1khz_short(tmp_path, features_file):
    _counter_delivery(tmp_path, features_file[1], n_ch=64, sfreq=1000.0, seconds=5)


def test_counter_delivery_256ch_2khz_short(tmp_path, features_file):
    _counter_delivery(tmp_path, features_file[1], n_ch=256, sfreq=2000.0, seconds=3)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("n_ch", "sfreq", "seconds"), [(64, 1000.0, 60), (256, 2000.0, 30)])
def test_counter_delivery_long(tmp_path, features_file, n_ch, sfreq, seconds):
    _counter_delivery(tmp_path, features_file[1], n_ch=n_ch, sfreq=sfreq, seconds=seconds)


# ---------------------------------------------------------------------- online = offline
def test_live_session_equals_offline_analysis_of_its_recording(tmp_path, features_file):
    """Scheduled amplifier (unknown ids, control markers, NaN bursts) + live session; then
    ``neuralign analyze --dataset recording:OUT`` reproduces the live maps to 1e-6."""
    fpath, features = features_file
    name = unique("e2e")
    design_path = tmp_path / "design.json"
    amp = neuralign(["simulate-amp", "--eeg-stream", name, "--source-id", name, "--features",
                     str(fpath), "--schedule", "--design-out", str(design_path), "--n-test", "8",
                     "--train-reps", "2", "--test-reps", "4", "--soa", "0.1",
                     "--unknown-every", "10", "--control-every", "25", "--nan-every", "5",
                     "--nan-len", "0.05", "--snr", "1.0"], tmp_path / "amp.log")
    out = tmp_path / "live"
    try:
        wait_for_stream(name)
        assert wait_until(design_path.exists, 30)
        design = load_design(design_path)
        sess = LiveSession(features, eeg_stream=name, marker_stream=f"{name}-markers",
                           out_dir=out, design=design, refresh_every=0.5, keep_epochs=True)
        sess.start()
        n_stim = 32 * 2 + 8 * 4
        assert wait_until(lambda: sess.snapshot.epochs_accepted + sess.snapshot.epochs_rejected
                          >= n_stim, 60), sess.status_line()
        snap_live = sess.snapshot
        result = sess.stop()
    finally:
        stop(amp)
    assert snap_live.result is not None
    assert snap_live.n_refreshes >= 1
    from neuralign.report import write_outputs

    write_outputs(result, out, title="test")
    snap = sess.snapshot
    assert snap.finished
    assert snap.epochs_accepted + snap.epochs_rejected == n_stim
    assert snap.rejected_reasons.get("nan", 0) >= 1  # NaN bursts rejected, counted
    assert snap.unknown_markers >= 8
    assert all(u.startswith("unknown_stim_") for u in snap.unknown_ids)
    assert snap.control_markers >= 3
    counts = json.loads((out / "results.json").read_text())["counts"]
    assert set(counts["unknown_markers"]) == set(snap.unknown_ids)  # listed in the results
    assert counts["epochs_rejected"]["nan"] == snap.rejected_reasons["nan"]
    # re-epoching the recording gives the very epochs the engine got
    data = load_recording(out)
    assert data.stimulus_ids.tolist() == sess.kept_ids
    # same code and data; only BLAS threading (1 thread live) may change the last bits
    np.testing.assert_allclose(data.epochs, np.stack(sess.kept), rtol=0, atol=1e-12)
    assert data.test_ids == sess.test_ids
    assert len(data.test_ids) == 8
    # and `neuralign analyze` on the recording reproduces the live maps
    off = tmp_path / "offline"
    assert main(["analyze", "--dataset", f"recording:{out}", "--features", str(fpath),
                 "--out", str(off), "--quiet"]) == 0
    a, b = AlignmentResult.load(out), AlignmentResult.load(off)
    assert np.isfinite(a.encoding_r).any()
    for k in ("encoding_r", "encoding_alpha", "rsa_spearman", "rsa_pearson", "rsa_cv_spearman"):
        np.testing.assert_allclose(getattr(a, k), getattr(b, k), rtol=0, atol=1e-6,
                                   equal_nan=True, err_msg=k)
    for k in a.noise_ceiling:
        np.testing.assert_allclose(a.noise_ceiling[k], b.noise_ceiling[k], rtol=0, atol=1e-6,
                                   equal_nan=True, err_msg=k)


def test_live_with_wide_layers_refreshes_in_dual_form_and_equals_offline(tmp_path):
    """LVLM-wide layers (n < D): ``neuralign live`` solves them in the dual form, extends its
    eigendecompositions refresh after refresh, shows the refresh time and form, and its final
    maps equal ``neuralign analyze`` of the recording."""
    rng = np.random.default_rng(4)
    ids = [f"stim_{i:03d}" for i in range(60)]
    narrow = hierarchical_features(ids, n_layers=3, dim=10, seed=4)
    wide = [a @ rng.standard_normal((10, 1024)).astype(np.float32)
            + 0.05 * rng.standard_normal((60, 1024)).astype(np.float32) for a in narrow.arrays]
    fpath = tmp_path / "wide.npz"
    save_features(fpath, type(narrow)(narrow.stimulus_ids, narrow.layers, wide))
    name = unique("wide")
    design_path = tmp_path / "design.json"
    amp = neuralign(["simulate-amp", "--eeg-stream", name, "--source-id", name, "--features",
                     str(fpath), "--schedule", "--design-out", str(design_path), "--n-test", "12",
                     "--train-reps", "2", "--test-reps", "4", "--soa", "0.05", "--snr", "1.0"],
                    tmp_path / "amp.log")
    out = tmp_path / "live"
    try:
        wait_for_stream(name)
        assert wait_until(design_path.exists, 30)
        live = neuralign(["live", "--eeg-stream", name, "--marker-stream", f"{name}-markers",
                          "--features", str(fpath), "--design", str(design_path), "--out",
                          str(out), "--duration", "14", "--refresh-every", "0.25"],
                         tmp_path / "live.log")
        assert live.wait(120) == 0, (tmp_path / "live.log").read_text()[-2000:]
    finally:
        stop(amp)
    log = (tmp_path / "live.log").read_text()
    assert "refresh=" in log
    assert "(dual 3)" in log
    res = json.loads((out / "results.json").read_text())
    assert res["counts"]["solver_forms"] == ["dual"] * 3
    assert res["counts"]["n_refresh"] >= 3
    assert res["settings"]["reselect_every"] == 4  # the live policy, as applied
    off = tmp_path / "offline"
    assert main(["analyze", "--dataset", f"recording:{out}", "--features", str(fpath),
                 "--out", str(off), "--quiet"]) == 0
    a, b = AlignmentResult.load(out), AlignmentResult.load(off)
    assert np.isfinite(a.encoding_r).all()
    np.testing.assert_allclose(a.encoding_r, b.encoding_r, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(a.encoding_alpha, b.encoding_alpha)


# ---------------------------------------------------------------------- loss and return
def test_eeg_stream_lost_and_back_resumes_and_rejects_gap_epochs(tmp_path, features_file):
    features = features_file[1]
    name = unique("loss")
    args = ["simulate-amp", "--eeg-stream", name, "--source-id", name, "--channels", "8",
            "--sfreq", "500", "--counter", "--duration", "60"]
    amp = neuralign(args, tmp_path / "amp1.log")
    mk_name = unique("loss-mk")
    outlet = marker_outlet(mk_name)
    ids = features.stimulus_ids.tolist()
    try:
        wait_for_stream(name)
        sess = LiveSession(features, eeg_stream=name, marker_stream=mk_name, out_dir=tmp_path,
                           refresh_every=1.0, stall_s=0.5)
        sess.start()
        import pylsl

        def markers(seconds):
            end = time.monotonic() + seconds
            k = 0
            while time.monotonic() < end:
                outlet.push_sample([ids[k % len(ids)]], pylsl.local_clock())
                k += 1
                time.sleep(0.25)

        markers(3.0)
        n_before = sess.snapshot.health.samples_received
        stop(amp, sig=signal.SIGKILL)
        markers(2.0)  # markers while the EEG is gone
        assert not sess.snapshot.health.connected
        amp = neuralign(args, tmp_path / "amp2.log")  # same name and source id
        assert wait_until(lambda: sess.snapshot.health.reconnects >= 1, 40), sess.status_line()
        markers(3.0)
        sess.stop()
    finally:
        stop(amp)
        outlet = None  # noqa: F841 - closes the marker stream
    snap = sess.snapshot
    assert snap.health.gaps >= 1
    assert snap.health.reconnects >= 1
    assert snap.rejected_reasons.get("gap", 0) >= 4  # markers during the outage
    assert snap.epochs_accepted >= 10  # before and after
    data, ts = _recorded_eeg(tmp_path)
    counter = data[:, 0].astype(np.int64)
    restart = np.flatnonzero(np.diff(counter) != 1)
    assert restart.size == 1  # one discontinuity: the new amplifier process
    assert restart[0] + 1 >= n_before  # nothing received before the loss was lost
    assert ts[restart[0] + 1] - ts[restart[0]] > 1.0  # the gap is in the timestamps
    log = [json.loads(c.data[0][0])["event"] for c in
           xdfread.read_chunks(tmp_path / "recording" / "session.xdf")
           if c.tag == xdf.TAG_SAMPLES and c.stream_id == 3]
    assert "eeg_lost" in log
    assert "eeg_back" in log


# ---------------------------------------------------------------------- markers first
def test_int_markers_before_their_eeg_get_planted_responses(tmp_path, features_file):
    """An amplifier 0.5 s behind, listening to an integer marker stream (code table): every
    marker waits for its data, becomes an epoch, and carries the planted response."""
    fpath, features = features_file
    name = unique("late")
    mk_name = unique("late-mk")
    outlet = marker_outlet(mk_name, fmt="int32")
    ids = features.stimulus_ids.tolist()
    codes = {str(k + 1): sid for k, sid in enumerate(ids)}
    (tmp_path / "codes.json").write_text(json.dumps(codes))
    amp = neuralign(["simulate-amp", "--eeg-stream", name, "--source-id", name, "--channels", "17",
                     "--sfreq", "250", "--delay", "0.5", "--duration", "60", "--features",
                     str(fpath), "--listen", mk_name, "--codes", str(tmp_path / "codes.json"),
                     "--snr", "3"], tmp_path / "amp.log")
    try:
        wait_for_stream(name)
        sess = LiveSession(features, eeg_stream=name, marker_stream=mk_name, out_dir=tmp_path,
                           codes=codes, keep_epochs=True)
        sess.start()
        import pylsl

        assert wait_until(lambda: outlet.have_consumers(), 20)
        time.sleep(2.0)  # the amplifier's listener connects too
        max_pending = 0
        for k in range(10):  # 0.9 s apart: no response overlaps the next baseline
            outlet.push_sample([k + 1], pylsl.local_clock())
            time.sleep(0.9)
            max_pending = max(max_pending, sess.snapshot.health.pending_markers)
        assert wait_until(lambda: sess.snapshot.epochs_accepted >= 10, 10)
        sess.stop()
    finally:
        stop(amp)
        outlet = None  # noqa: F841 - closes the marker stream
    snap = sess.snapshot
    assert max_pending >= 1
    assert snap.epochs_accepted == 10
    assert snap.epochs_rejected == 0
    assert snap.health.latency_median_s >= 0.8 + 0.5 - 0.05
    assert sess.kept_ids == ids[:10]
    ep = np.stack(sess.kept)
    times = sess.core.epocher.times
    evoked = ep[:, :, (times >= 0.06) & (times <= 0.32)].var(axis=0).mean()
    base = ep[:, :, times < 0].var(axis=0).mean()
    assert evoked > 2 * base  # the planted responses are in the epochs
    data = load_recording(tmp_path)  # integer markers replay through the code table
    assert data.stimulus_ids.tolist() == ids[:10]


# ---------------------------------------------------------------------- connect errors
def test_channel_count_mismatch_is_a_clear_error_at_connect(tmp_path, features_file):
    fpath, features = features_file
    name = unique("mism")
    amp = neuralign(["simulate-amp", "--eeg-stream", name, "--source-id", name, "--channels", "17",
                     "--sfreq", "250", "--duration", "60"], tmp_path / "amp.log")
    design = tmp_path / "design.json"
    design.write_text(json.dumps({"format": "neuralign-design", "eeg": {"n_channels": 32},
                                  "stimuli": [{"id": "stim_000", "role": "test"}]}))
    try:
        wait_for_stream(name)
        from neuralign.base import load_design as ld

        sess = LiveSession(features, eeg_stream=name, marker_stream="nope", out_dir=tmp_path,
                           design=ld(design), connect_timeout=2)
        with pytest.raises(NeuralignError, match="has 17 channels but the session design "
                                                 "expects 32"):
            sess.connect()
        rc = main(["live", "--eeg-stream", name, "--marker-stream", "nope", "--features",
                   str(fpath), "--design", str(design), "--out", str(tmp_path / "o"),
                   "--connect-timeout", "2"])
        assert rc == 2
        assert not (tmp_path / "o" / "recording").exists()
    finally:
        stop(amp)


# ---------------------------------------------------------------------- kill -9
def test_kill9_of_live_then_analyze_the_recording(tmp_path, features_file):
    fpath, features = features_file
    name = unique("k9")
    design = tmp_path / "design.json"
    amp = neuralign(["simulate-amp", "--eeg-stream", name, "--source-id", name, "--features",
                     str(fpath), "--schedule", "--design-out", str(design), "--n-test", "8",
                     "--train-reps", "3", "--test-reps", "6", "--soa", "0.08", "--snr", "1.0"],
                    tmp_path / "amp.log")
    out = tmp_path / "live"
    try:
        wait_for_stream(name)
        assert wait_until(design.exists, 30)
        live = neuralign(["live", "--eeg-stream", name, "--marker-stream", f"{name}-markers",
                          "--features", str(fpath), "--design", str(design), "--out", str(out),
                          "--refresh-every", "0.5"], tmp_path / "live.log")
        xdf_path = out / "recording" / "session.xdf"
        assert wait_until(lambda: xdf_path.exists() and xdf_path.stat().st_size > 400_000, 60), \
            (tmp_path / "live.log").read_text()
        time.sleep(1.0)
        import pylsl

        t_kill = pylsl.local_clock()
        stop(live, sig=signal.SIGKILL)
        assert live.returncode == -signal.SIGKILL
    finally:
        stop(amp)
    assert not (out / "results.json").exists()  # it never got to write them
    data, ts = _recorded_eeg(out)
    assert t_kill - ts[-1] < 1.0 + 0.02  # all but at most the last second (amp delay 20 ms)
    import pyxdf

    streams, _ = pyxdf.load_xdf(str(xdf_path), verbose=False)
    assert {s["info"]["name"][0] for s in streams} >= {name, f"{name}-markers"}
    epochs = load_recording(out)
    assert epochs.epochs.shape[0] >= 20
    assert epochs.test_ids
    off = tmp_path / "offline"
    assert main(["analyze", "--dataset", f"recording:{out}", "--features", str(fpath),
                 "--out", str(off), "--quiet"]) == 0
    assert (off / "results.json").exists()
    assert (off / "maps.npz").exists()

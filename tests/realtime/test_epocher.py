"""Online epoching against independent whole-array references (no LSL)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from neuralign.realtime.core import SessionCore
from neuralign.realtime.epocher import MarkerClassifier, OnlineEpocher
from neuralign.realtime.ring import RingBuffer
from neuralign.realtime.settings import EpochSettings


def _feed(ep: OnlineEpocher, x: np.ndarray, t: np.ndarray, chunks: np.ndarray, markers):
    """Push x (n, C) in chunks; add markers [(id, onset)] once their onset sample arrived."""
    events = []
    todo = list(markers)
    start = 0
    for stop in chunks:
        ep.push_eeg(x[start:stop], t[start:stop])
        while todo and todo[0][1] <= t[stop - 1]:
            sid, onset = todo.pop(0)
            ep.add_marker(sid, onset, len(events))
        events += ep.poll()
        start = stop
    return events + ep.flush()


def test_ring_buffer_windows_match_linear_history():
    rng = np.random.default_rng(0)
    ring = RingBuffer(50, 3)
    hist = np.zeros((0, 3))
    for n in rng.integers(1, 70, size=40):
        x = rng.standard_normal((n, 3))
        ring.append(x, np.arange(len(hist), len(hist) + n, dtype=float))
        hist = np.vstack([hist, x])
        data, ts = ring.held()
        np.testing.assert_array_equal(data, hist[-ring.filled:])
        np.testing.assert_array_equal(ts, np.arange(len(hist))[-ring.filled:])


def test_epochs_equal_whole_array_reference_any_chunking():
    fs, C = 1000.0, 5
    rng = np.random.default_rng(1)
    n = 20000
    t = 100.0 + np.arange(n) / fs
    x = rng.standard_normal((n, C)).astype(np.float32)
    onsets = [101.2345, 103.5, 107.0004, 112.25]
    s = EpochSettings(l_freq=0.5, h_freq=40.0)
    # independent reference: filter the whole recording at once, cut, resample, baseline
    sos = signal.butter(4, [0.5, 40.0], "bandpass", fs=fs, output="sos")
    zi = signal.sosfilt_zi(sos)[:, :, None] * x[0].astype(float)[None, None, :]
    y, _ = signal.sosfilt(sos, x.astype(float), axis=0, zi=zi)
    ref = []
    for o in onsets:
        i0 = int(np.argmin(np.abs(t - (o - 0.2))))
        w = y[i0 : i0 + 1001].T
        r = signal.resample_poly(w, 1, 10, axis=1, padtype="line")[:, :101]
        ref.append(r - r[:, :21].mean(axis=1, keepdims=True))
    for chunks in (np.arange(7, n, 7).tolist() + [n], [5000, 10000, 15000, n],
                   np.arange(333, n, 333).tolist() + [n]):
        ep = OnlineEpocher(s, stream_sfreq=fs, n_channels=C)
        ev = _feed(ep, x, t, np.asarray(chunks), [(f"s{k}", o) for k, o in enumerate(onsets)])
        assert [e.kind for e in ev] == ["epoch"] * 4
        for e, r in zip(ev, ref):
            assert e.data.shape == (C, 101)
            np.testing.assert_allclose(e.data, r, rtol=0, atol=1e-10)
    # one 20 s chunk overflows the 11 s ring: the early markers' data is gone -> "overrun"
    ep = OnlineEpocher(s, stream_sfreq=fs, n_channels=C)
    ev = _feed(ep, x, t, np.array([n]), [(f"s{k}", o) for k, o in enumerate(onsets)])
    assert [e.reason for e in ev] == ["overrun", "overrun", "overrun", None]


def test_resampled_sine_matches_analytic_at_output_times():
    fs = 250.0
    t = np.arange(5000) / fs
    f0 = 7.0
    x = np.sin(2 * np.pi * f0 * t)[:, None]
    s = EpochSettings(baseline=None)
    ep = OnlineEpocher(s, stream_sfreq=fs, n_channels=1)
    onset = 10.0
    ev = _feed(ep, x, t, np.array([5000]), [("a", onset)])
    out = ev[0].data[0]
    want = np.sin(2 * np.pi * f0 * (onset + s.times()))
    np.testing.assert_allclose(out[5:-5], want[5:-5], atol=2e-3)  # away from the edges


def test_rejections_nan_flat_ptp_gap_and_no_data_are_counted():
    fs, C = 500.0, 3
    rng = np.random.default_rng(2)
    n = 10000
    t = np.arange(n) / fs
    x = rng.standard_normal((n, C))
    x[2400:2410, 1] = np.nan  # NaN burst inside the epoch of the marker at 5.0 s
    x[5000:5800, 2] = 3.0  # flat channel for the marker at 10.5 s
    x[7000, 0] = 500.0  # artefact for the marker at 14.1 s
    # a gap: drop 100 samples around 17 s
    keep = np.ones(n, bool)
    keep[8500:8600] = False
    s = EpochSettings(reject_ptp=100.0)
    ep = OnlineEpocher(s, stream_sfreq=fs, n_channels=C)
    markers = [("nan", 5.0), ("ok", 7.0), ("flat", 10.5), ("ptp", 14.1), ("gap", 17.1),
               ("ok2", 18.5), ("late", 19.9)]
    xs, ts = x[keep], t[keep]
    ev = _feed(ep, xs, ts, np.arange(100, xs.shape[0], 100).tolist() + [xs.shape[0]], markers)
    got = {e.stimulus_id: (e.kind, e.reason) for e in ev}
    assert got == {"nan": ("reject", "nan"), "ok": ("epoch", None), "flat": ("reject", "flat"),
                   "ptp": ("reject", "ptp"), "gap": ("reject", "gap"), "ok2": ("epoch", None),
                   "late": ("reject", "no_data")}
    assert ep.gaps
    assert ep.dropped == 100
    assert dict(ep.rejected) == {"nan": 1, "flat": 1, "ptp": 1, "gap": 1, "no_data": 1}


def test_nan_burst_does_not_poison_the_causal_filter():
    fs = 500.0
    t = np.arange(6000) / fs
    x = np.random.default_rng(3).standard_normal((6000, 2))
    x[1000:1050] = np.nan
    ep = OnlineEpocher(EpochSettings(l_freq=1.0, h_freq=30.0), stream_sfreq=fs, n_channels=2)
    ev = _feed(ep, x, t, np.arange(50, 6000, 50), [("a", 2.05), ("b", 6.0), ("c", 9.0)])
    assert [(e.stimulus_id, e.reason) for e in ev] == [("a", "nan"), ("b", None), ("c", None)]
    assert np.isfinite(ev[1].data).all()
    assert np.isfinite(ev[2].data).all()


def test_marker_before_its_eeg_waits_then_resolves():
    fs = 100.0
    ep = OnlineEpocher(EpochSettings(), stream_sfreq=fs, n_channels=2)
    ep.add_marker("a", 2.0, 0)  # marker arrives before any EEG
    assert ep.poll() == []
    t = np.arange(0, 300) / fs
    ep.push_eeg(np.ones((250, 2)) * np.arange(250)[:, None], t[:250])
    assert ep.poll() == []
    assert len(ep.pending) == 1
    ep.push_eeg(np.ones((50, 2)) * np.arange(250, 300)[:, None], t[250:])
    (e,) = ep.poll()
    assert e.kind == "epoch"
    assert e.data.shape == (2, 101)


def test_marker_classifier_stimulus_control_unknown_and_codes():
    c = MarkerClassifier(["img1", "img2"], control=EpochSettings().control_markers,
                         codes={"7": "img2"})
    assert c.classify("img1") == ("stimulus", "img1")
    assert c.classify(" img2 ") == ("stimulus", "img2")
    assert c.classify(7) == ("stimulus", "img2")
    assert c.classify(7.0) == ("stimulus", "img2")
    assert c.classify("block_3") == ("control", "block_3")
    assert c.classify("catch") == ("control", "catch")
    assert c.classify("img9") == ("unknown", "img9")
    assert c.classify(3) == ("unknown", "3")


def test_core_applies_clock_offsets_and_lists_unknown_ids():
    fs = 100.0
    core = SessionCore(EpochSettings(), stream_sfreq=fs, n_channels=1,
                       classifier=MarkerClassifier(["a"], control="^block"))
    core.set_offset("eeg", 0.5)  # EEG clock runs 0.5 s behind the session clock
    core.set_offset("markers", -0.25)
    t = np.arange(1000) / fs
    x = (t + 0.5)[:, None]  # value = session time of the sample
    ev = core.markers(["a", "zzz", "block_1", "zzz"], [3.25, 3.3, 3.4, 3.5])
    ev += core.eeg(x, t)
    assert [e.stimulus_id for e in ev] == ["a"]
    assert ev[0].onset == pytest.approx(3.0)
    assert dict(core.unknown) == {"zzz": 2}
    assert dict(core.control) == {"block_1": 1}

"""The synthetic brain: planted truth, signal, background noise, epochs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import signal as sps

from neuralign.errors import NeuralignError
from neuralign.io.things import THINGS_EEG2_CHANNELS
from neuralign.sim import SyntheticBrain, hierarchical_features


@pytest.fixture(scope="module")
def fs():
    return hierarchical_features([f"s{i:03d}" for i in range(120)], n_layers=4, dim=16, seed=1)


def test_planted_is_json_and_defaults(fs):
    b = SyntheticBrain(fs, seed=3)
    p = b.planted_json()
    json.dumps(p)
    assert p["layers"] == list(fs.layers)
    assert p["ch_names"] == list(THINGS_EEG2_CHANNELS)
    np.testing.assert_allclose(p["peak_latencies_s"], np.linspace(0.08, 0.30, 4))
    assert np.asarray(p["patterns"]).shape == (4, 17)


def test_each_layer_peaks_at_its_latency(fs):
    lat = [0.1, 0.25, 0.15, 0.3]
    b = SyntheticBrain(fs, peak_latencies=lat, seed=0)
    sfreq = 200.0
    ev = np.stack([b.response(s, sfreq=sfreq, tmax=0.5) for s in fs.stimulus_ids])
    assert ev.shape == (120, 17, 100)
    t = np.arange(100) / sfreq
    # covariance over stimuli between the EEG and each layer's planted signal s_l
    s = b._signal  # (N, L)
    for layer in range(4):
        cov = np.einsum("n,nct->ct", s[:, layer] - s[:, layer].mean(), ev - ev.mean(0))
        power = (cov**2).sum(0)
        assert abs(t[np.argmax(power)] - lat[layer]) <= 0.0101


def test_any_standard_channels_and_unknown_refused(fs):
    b = SyntheticBrain(fs, ch_names=["Fz", "Cz", "Oz", "fp1"])
    assert b.epochs(["s000"], 2, times=np.arange(10) / 100, seed=0).shape == (1, 2, 4, 10)
    with pytest.raises(NeuralignError, match="XYZ"):
        SyntheticBrain(fs, ch_names=["Oz", "XYZ"])
    with pytest.raises(NeuralignError, match="3 peak latencies for 4 layers"):
        SyntheticBrain(fs, peak_latencies=[0.1, 0.2, 0.3])


def test_noise_stream_spectrum_and_scale(fs):
    b = SyntheticBrain(fs, noise_scale=2.0, seed=0)
    sfreq = 500.0
    ns = b.noise_stream(sfreq=sfreq, seed=4)
    x = np.concatenate([ns.read(5000) for _ in range(12)], axis=1)  # 120 s, in chunks
    assert x.shape == (17, 60000)
    assert 1.6 < x.std() < 2.4
    f, p = sps.welch(x, fs=sfreq, nperseg=1000)
    p = p.mean(0)

    def band(lo, hi):
        return p[(f >= lo) & (f <= hi)].mean()

    assert p[np.argmin(np.abs(f - 50))] > 20 * band(40, 45)  # line noise
    assert band(9, 11) > 3 * band(14, 16)  # alpha
    assert band(1, 3) > 5 * band(100, 150)  # 1/f
    # the stream continues (no reset): the 50 Hz phase runs on across reads
    ns2 = b.noise_stream(sfreq=sfreq, seed=4)
    assert not np.allclose(ns2.read(100), ns2.read(100))


def test_epochs_signal_plus_noise(fs):
    b = SyntheticBrain(fs, snr=0.5, seed=2)
    times = np.arange(-20, 80) / 100.0
    ids = fs.stimulus_ids[:30].tolist()
    ep = b.epochs(ids, 16, times=times, seed=1)
    assert ep.shape == (30, 16, 17, 100)
    assert ep.dtype == np.float32
    ev = b.evoked(ids, times)
    mean = ep.mean(1)
    # averaging repetitions converges on the evoked response (noise shrinks ~1/sqrt(reps))
    resid_1 = (ep[:, 0] - ev).std()
    resid_16 = (mean - ev).std()
    assert 0.15 < resid_16 / resid_1 < 0.4
    win = (times > 0.06) & (times < 0.32)
    assert np.corrcoef(mean[..., win].ravel(), ev[..., win].ravel())[0, 1] > 0.5
    # same seed, same data; other seed, other noise
    np.testing.assert_array_equal(ep, b.epochs(ids, 16, times=times, seed=1))
    assert not np.allclose(ep, b.epochs(ids, 16, times=times, seed=2))

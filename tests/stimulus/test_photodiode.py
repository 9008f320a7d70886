"""Photodiode latency: recover a known marker-to-light delay from a simulated sensor."""

from __future__ import annotations

import numpy as np
import pytest

from neuralign.stimulus.photodiode import light_onsets, marker_latency


def test_known_delay_is_recovered():
    rng = np.random.default_rng(0)
    sfreq = 1000.0
    t = np.arange(0, 10, 1 / sfreq) + 100.0  # LSL clock
    markers = 100.5 + 0.2 * np.arange(40) + rng.uniform(0, 0.004, 40)
    delay = 0.012 + rng.uniform(0, 0.002, 40)  # 12-14 ms: display latency + frame phase
    light = np.zeros_like(t)
    for m, d in zip(markers, delay):
        light[(t >= m + d) & (t < m + d + 0.1)] = 1.0  # 100 ms patch on
    signal = 3.0 * light + 0.05 * rng.standard_normal(t.size) + 0.4  # gain, offset, noise
    onsets = light_onsets(signal, t)
    assert len(onsets) == 40
    np.testing.assert_allclose(onsets, markers + delay, atol=1.5 / sfreq)
    stats = marker_latency(markers, onsets)
    assert stats["n_matched"] == 40
    assert stats["median_ms"] == pytest.approx(np.median(delay) * 1000, abs=1.5)
    # a marker without light (e.g. the patch was off) is counted as unmatched
    stats = marker_latency(np.append(markers, 109.9), onsets)
    assert stats["n_markers"] == 41
    assert stats["n_matched"] == 40
    assert np.isnan(stats["latencies_ms"][-1])

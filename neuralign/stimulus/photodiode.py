"""Photodiode check: marker-to-light latency from a recorded light-sensor channel.

With ``display.photodiode = true`` the presenter draws a white patch in a screen corner on every
frame that shows an image (black otherwise). Tape a light sensor over the patch, record its
signal on a spare (AUX) amplifier channel together with the marker stream (``neuralign live``
records both to ``OUT/recording/session.xdf``), then::

    from neuralign.stimulus.photodiode import check_xdf
    print(check_xdf("OUT/recording/session.xdf", channel="AUX1"))

``latency`` = light onset - marker timestamp: what to pass as a trigger-delay correction
(THINGS-EEG2 corrected 11 ms). Its spread (``p95 - median``) is the timing jitter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import NeuralignError


def light_onsets(signal: np.ndarray, times: np.ndarray, *, threshold: float | None = None,
                 min_interval: float = 0.03) -> np.ndarray:
    """Times where ``signal`` rises through ``threshold`` (light on).

    Parameters
    ----------
    signal, times : ndarray, shape (n,)
        Sensor samples and their timestamps (s).
    threshold : float, optional
        Default: halfway between the 5th and 95th percentiles (dark and light levels).
    min_interval : float
        Crossings closer than this to the previous onset are ignored (flicker, noise).
    """
    x = np.asarray(signal, dtype=float)
    t = np.asarray(times, dtype=float)
    if x.shape != t.shape or x.ndim != 1:
        raise NeuralignError("photodiode signal and times must be 1-D and the same length")
    if threshold is None:
        lo, hi = np.nanpercentile(x, [5, 95])
        threshold = (lo + hi) / 2.0
    above = x >= threshold
    idx = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    onsets: list[float] = []
    for i in idx:
        # linear interpolation between the two samples around the crossing
        x0, x1 = x[i - 1], x[i]
        frac = (threshold - x0) / (x1 - x0) if x1 != x0 else 0.0
        when = t[i - 1] + frac * (t[i] - t[i - 1])
        if not onsets or when - onsets[-1] >= min_interval:
            onsets.append(when)
    return np.asarray(onsets)


def marker_latency(marker_times: np.ndarray, onsets: np.ndarray, *,
                   max_lag: float = 0.1) -> dict:
    """Match each marker to the first light onset within ``[t - 5 ms, t + max_lag]``.

    Returns
    -------
    dict
        ``n_markers``, ``n_matched``, ``median_ms``, ``p5_ms``, ``p95_ms``, ``max_ms`` and the
        per-marker ``latencies_ms`` (NaN where no onset matched).
    """
    m = np.asarray(marker_times, dtype=float)
    o = np.sort(np.asarray(onsets, dtype=float))
    lat = np.full(m.shape, np.nan)
    j = np.searchsorted(o, m - 0.005)
    ok = j < len(o)
    lat[ok] = o[j[ok]] - m[ok]
    lat[lat > max_lag] = np.nan
    good = lat[np.isfinite(lat)] * 1000.0
    stats = {"n_markers": int(m.size), "n_matched": int(good.size)}
    if good.size:
        stats.update(median_ms=float(np.median(good)), p5_ms=float(np.percentile(good, 5)),
                     p95_ms=float(np.percentile(good, 95)), max_ms=float(good.max()))
    stats["latencies_ms"] = (lat * 1000.0).tolist()
    return stats


def check_xdf(path: str | Path, *, channel: str, eeg_stream: str | None = None,
              marker_stream: str | None = None, max_lag: float = 0.1) -> dict:
    """Latency of every stimulus marker in an XDF recording vs a photodiode channel.

    Parameters
    ----------
    path : path-like
        An XDF file (``neuralign live``'s ``recording/session.xdf``, or LabRecorder's).
    channel : str
        Label of the photodiode channel in the EEG stream's ``desc/channels``.
    eeg_stream, marker_stream : str, optional
        Stream names (default: the first stream of type EEG / Markers).
    max_lag : float
        Seconds after a marker within which its light onset must come.

    Returns
    -------
    dict
        The latency statistics (:func:`marker_latency`).
    """
    import pyxdf

    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)

    def pick(kind: str, name: str | None):
        for s in streams:
            info = s["info"]
            if (name and info["name"][0] == name) or (not name and info["type"][0] == kind):
                return s
        raise NeuralignError(f"no {kind} stream {name or ''} in the recording", path=path)

    eeg, mk = pick("EEG", eeg_stream), pick("Markers", marker_stream)
    labels = []
    try:
        for ch in eeg["info"]["desc"][0]["channels"][0]["channel"]:
            labels.append(ch["label"][0])
    except (KeyError, IndexError, TypeError):
        pass
    if channel not in labels:
        raise NeuralignError(f"no channel {channel!r} in {eeg['info']['name'][0]!r} "
                             f"(channels: {', '.join(labels[:12])})", path=path)
    sig = np.asarray(eeg["time_series"])[:, labels.index(channel)]
    onsets = light_onsets(sig, np.asarray(eeg["time_stamps"]))
    from .config import RESERVED_MARKERS

    values = [str(v[0]) for v in mk["time_series"]]
    ts = np.asarray(mk["time_stamps"])
    keep = np.array([v not in RESERVED_MARKERS or v == "target" for v in values], dtype=bool)
    return marker_latency(ts[keep], onsets, max_lag=max_lag)

"""The incremental XDF writer: pyxdf reads it, whole or truncated anywhere."""

from __future__ import annotations

import numpy as np
import pytest

pyxdf = pytest.importorskip("pyxdf")

from neuralign.realtime import xdf, xdfread  # noqa: E402


def _write(path, *, close=True):
    rng = np.random.default_rng(0)
    w = xdf.XDFWriter(path, flush_s=0.0)
    w.add_stream(1, xdf.stream_header_xml(name="eeg", stype="EEG", channel_count=4,
                                          nominal_srate=250.0, channel_format="float32",
                                          ch_names=["Oz", "Pz", "O1", "O2"]),
                 channel_format="float32", channel_count=4)
    w.add_stream(2, xdf.stream_header_xml(name="mk", stype="Markers", channel_count=1,
                                          nominal_srate=0.0, channel_format="string"),
                 channel_format="string", channel_count=1)
    data, ts, markers = [], [], []
    t = 10.0
    for k in range(40):
        x = rng.standard_normal((25, 4)).astype(np.float32)
        tt = t + np.arange(25) / 250.0
        t = tt[-1] + 1 / 250.0
        w.write_numeric(1, x, tt)
        data.append(x)
        ts.append(tt)
        if k % 4 == 0:
            w.write_offset(1, tt[0], 0.001 * k)
            w.write_strings(2, [[f"stim_{k}"], ["ünïcode"]], [tt[3], tt[7]])
            markers += [f"stim_{k}", "ünïcode"]
    if close:
        w.close()
    else:
        w.flush()
    return np.concatenate(data), np.concatenate(ts), markers


def test_pyxdf_reads_what_the_writer_wrote(tmp_path):
    p = tmp_path / "s.xdf"
    data, ts, markers = _write(p)
    streams, header = pyxdf.load_xdf(str(p), synchronize_clocks=False, dejitter_timestamps=False)
    by = {s["info"]["name"][0]: s for s in streams}
    np.testing.assert_array_equal(by["eeg"]["time_series"], data)
    np.testing.assert_array_equal(by["eeg"]["time_stamps"], ts)
    assert [m[0] for m in by["mk"]["time_series"]] == markers
    assert by["eeg"]["footer"]["info"]["sample_count"][0] == str(len(ts))
    assert len(by["eeg"]["clock_times"]) == 10
    labels = by["eeg"]["info"]["desc"][0]["channels"][0]["channel"]
    assert [c["label"][0] for c in labels] == ["Oz", "Pz", "O1", "O2"]


def test_own_reader_keeps_chunk_order_and_values(tmp_path):
    p = tmp_path / "s.xdf"
    data, ts, _ = _write(p)
    chunks = list(xdfread.read_chunks(p))
    eeg = [c for c in chunks if c.tag == xdf.TAG_SAMPLES and c.stream_id == 1]
    np.testing.assert_array_equal(np.concatenate([c.data for c in eeg]), data)
    tags = [c.tag for c in chunks]
    assert tags.index(xdf.TAG_CLOCKOFFSET) < tags.index(xdf.TAG_SAMPLES) + 2


def test_truncated_file_loads_with_pyxdf_and_own_reader(tmp_path):
    """A session killed mid-write: every complete chunk stays readable."""
    p = tmp_path / "s.xdf"
    data, ts, _ = _write(p, close=False)  # no footers, as after kill -9
    raw = p.read_bytes()
    # cuts inside sample chunks (the realistic case) and at random places
    rng = np.random.default_rng(1)
    cuts = sorted(set(rng.integers(200, len(raw), size=25).tolist() + [len(raw) - 1]))
    for cut in cuts:
        q = tmp_path / f"cut{cut}.xdf"
        q.write_bytes(raw[:cut])
        own = [c for c in xdfread.read_chunks(q) if c.tag == xdf.TAG_SAMPLES and c.stream_id == 1]
        n_own = sum(c.ts.size for c in own)
        if n_own:
            np.testing.assert_array_equal(np.concatenate([c.data for c in own]), data[:n_own])
        assert n_own >= (cut / len(raw)) * len(ts) - 60  # at most ~one chunk per stream lost
        try:
            streams, _ = pyxdf.load_xdf(str(q), synchronize_clocks=False,
                                        dejitter_timestamps=False, verbose=False)
        except Exception as e:  # pragma: no cover - report which cut failed
            pytest.fail(f"pyxdf failed on a file cut at byte {cut}/{len(raw)}: {e!r}")
        eeg = [s for s in streams if s["info"]["name"][0] == "eeg"][0]
        n_py = len(eeg["time_stamps"])
        # pyxdf may also return a chunk cut inside its very last value (it does not check
        # short reads there); every complete chunk is identical
        assert n_own <= n_py <= n_own + 25
        np.testing.assert_array_equal(eeg["time_series"][:n_own], data[:n_own])

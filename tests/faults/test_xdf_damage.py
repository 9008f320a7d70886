"""Recordings are never overwritten, and one damaged byte costs at most the next second."""

from __future__ import annotations

import numpy as np
import pytest

from neuralign.errors import NeuralignError
from neuralign.realtime import xdf
from neuralign.realtime.integrity import check_recording
from neuralign.realtime.recording import check_new_recording
from neuralign.realtime.xdfread import ReadReport, read_chunks

pytestmark = pytest.mark.faults
FS, N_CH, CHUNK = 250.0, 4, 25


def _write(path, *, n_chunks=40, boundary_s=0.0, close=True):
    """EEG chunks of 0.1 s (a boundary before every write with boundary_s=0), a marker each
    4th chunk; returns the chunk start offsets in the file, data and timestamps."""
    w = xdf.XDFWriter(path, flush_s=0.0, boundary_s=boundary_s)
    w.add_stream(1, xdf.stream_header_xml(name="eeg", stype="EEG", channel_count=N_CH,
                                          nominal_srate=FS, channel_format="float32"),
                 channel_format="float32", channel_count=N_CH)
    w.add_stream(2, xdf.stream_header_xml(name="mk", stype="Markers", channel_count=1,
                                          nominal_srate=0.0, channel_format="string"),
                 channel_format="string", channel_count=1)
    rng = np.random.default_rng(0)
    starts, data, ts = [], [], []
    for k in range(n_chunks):
        x = rng.standard_normal((CHUNK, N_CH)).astype(np.float32)
        t = 100.0 + (k * CHUNK + np.arange(CHUNK)) / FS
        w.flush()
        starts.append(path.stat().st_size + len(w._buf))  # noqa: SLF001 - test of the layout
        w.write_numeric(1, x, t)
        if k % 4 == 0:
            w.write_strings(2, [[f"m{k}"]], [t[3]])
        data.append(x)
        ts.append(t)
    if close:
        w.close()
    else:
        w.flush()
    return starts, np.concatenate(data), np.concatenate(ts)


def _eeg(path, report=None):
    ch = [c for c in read_chunks(path, report=report)
          if c.tag == xdf.TAG_SAMPLES and c.stream_id == 1]
    return np.concatenate([c.ts for c in ch]), np.concatenate([c.data for c in ch])


def test_existing_recording_is_never_opened_again(tmp_path):
    p = tmp_path / "s.xdf"
    _write(p, n_chunks=3)
    before = p.read_bytes()
    with pytest.raises(FileExistsError):
        xdf.XDFWriter(p)
    assert p.read_bytes() == before
    (tmp_path / "out" / "recording").mkdir(parents=True)
    (tmp_path / "out" / "recording" / "session.xdf").write_bytes(before)
    with pytest.raises(NeuralignError, match="already there; it is never overwritten"):
        check_new_recording(tmp_path / "out")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NeuralignError, match="existing file"):
        check_new_recording(tmp_path / "file")


@pytest.mark.parametrize("where", ["length", "tag", "stream", "timestamp"])
def test_one_damaged_byte_skips_to_the_next_boundary(tmp_path, where):
    p = tmp_path / "s.xdf"
    starts, data, ts = _write(p)
    raw = bytearray(p.read_bytes())
    k = 15  # damage the 16th EEG chunk
    pos = starts[k]
    assert raw[pos] == 4  # 4-byte length
    offset = {"length": 2, "tag": 5, "stream": 7, "timestamp": 5 + 2 + 4 + 2 + 1 + 7}[where]
    raw[pos + offset] ^= 0xFF if where != "timestamp" else 0x40
    p.write_bytes(bytes(raw))
    rep = ReadReport()
    got_ts, got = _eeg(p, rep)
    lost = np.setdiff1d(ts, got_ts)
    assert lost.size == CHUNK  # just the damaged chunk
    np.testing.assert_array_equal(lost, ts[k * CHUNK:(k + 1) * CHUNK])
    keep = np.isin(ts, got_ts)
    np.testing.assert_array_equal(got, data[keep])
    assert len(rep.damaged) == 1
    assert rep.tail is None
    integ = check_recording(p)
    assert not integ.intact
    assert integ.usable
    assert integ.closed
    assert integ.eeg_samples_lost == CHUNK
    assert integ.skipped[0]["samples"] == CHUNK
    assert integ.skipped[0]["seconds"] == pytest.approx((CHUNK + 1) / FS)
    assert "DAMAGED" in integ.summary()
    assert f"{CHUNK} EEG samples" in integ.summary()


def test_writer_puts_a_boundary_and_the_offsets_every_second(tmp_path, monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(xdf.time, "monotonic", lambda: clock[0])
    p = tmp_path / "s.xdf"
    w = xdf.XDFWriter(p, flush_s=0.25)
    w.add_stream(1, xdf.stream_header_xml(name="eeg", stype="EEG", channel_count=1,
                                          nominal_srate=10.0, channel_format="float32"),
                 channel_format="float32", channel_count=1)
    w.write_offset(1, 5.0, 0.125)
    for k in range(100):  # 10 s of data in 0.1 s chunks
        clock[0] = 0.1 * (k + 1)
        w.write_numeric(1, np.zeros((1, 1), np.float32), np.array([float(k)]))
    w.close()
    chunks = list(read_chunks(p))
    where = [i for i, c in enumerate(chunks) if c.tag == xdf.TAG_BOUNDARY]
    assert len(where) >= 10 + 1  # every second (plus the header's and the close's)
    after = [chunks[i + 1] for i in where[1:-1]]
    assert all(c.tag == xdf.TAG_CLOCKOFFSET and c.offset == 0.125 for c in after)


def test_damage_at_the_end_and_nothing_usable(tmp_path):
    p = tmp_path / "s.xdf"
    starts, _, ts = _write(p, close=False)
    p.write_bytes(p.read_bytes()[:starts[-1] + 40])  # killed in the middle of the last chunk
    integ = check_recording(p)
    assert integ.usable
    assert integ.tail_bytes > 0
    assert not integ.closed
    assert integ.eeg_samples == ts.size - CHUNK
    q = tmp_path / "q.xdf"
    q.write_bytes(b"XDF:" + bytes(200))
    assert not check_recording(q).usable


def test_damaged_stream_header_costs_nothing_with_the_session_hints(tmp_path):
    p = tmp_path / "s.xdf"
    _, data, ts = _write(p, n_chunks=10)
    raw = bytearray(p.read_bytes())
    at = raw.index(b"<name>eeg</name>")
    raw[at + 1] ^= 0xFF  # the EEG header's XML no longer parses
    p.write_bytes(bytes(raw))
    assert not check_recording(p).usable  # the file alone cannot say how to decode the EEG
    hints = {1: ("float32", N_CH, FS), 2: ("string", 1, 0.0)}  # what session.json says
    integ = check_recording(p, hints=hints)
    assert integ.eeg_samples == ts.size
    assert len(integ.damaged_ranges) == 1  # the header chunk alone, no resynchronisation
    chunks = [c for c in read_chunks(p, hints=hints)
              if c.tag == xdf.TAG_SAMPLES and c.stream_id == 1]
    np.testing.assert_array_equal(np.concatenate([c.data for c in chunks]), data)


def test_a_backlog_written_at_once_still_gets_boundaries(tmp_path, monkeypatch):
    """A session catching up pulls seconds of EEG in one go: boundaries by bytes too."""
    monkeypatch.setattr(xdf.time, "monotonic", lambda: 0.0)  # no time passes
    p = tmp_path / "s.xdf"
    w = xdf.XDFWriter(p, flush_s=0.25)
    w.add_stream(1, xdf.stream_header_xml(name="eeg", stype="EEG", channel_count=64,
                                          nominal_srate=1000.0, channel_format="float32"),
                 channel_format="float32", channel_count=64)
    for k in range(100):  # 10 s of 64 ch x 1 kHz in 0.1 s chunks, ~2.6 MB
        w.write_numeric(1, np.zeros((100, 64), np.float32), 5.0 + (k * 100 + np.arange(100)) / 1e3)
    w.close()
    starts = [i for i, c in enumerate(read_chunks(p)) if c.tag == xdf.TAG_BOUNDARY]
    assert len(starts) >= 30  # one per 3 chunks of 25.6 kB
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    raw[len(raw) // 2 - 7000] ^= 0xFF
    p.write_bytes(bytes(raw))
    integ = check_recording(p)
    assert integ.skipped_s <= 0.3  # at most a couple of 64 KiB stretches (~0.25 s each)

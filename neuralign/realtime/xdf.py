"""Incremental XDF 1.0 writer and a reader that keeps chunk order and tolerates truncation.

XDF (https://github.com/sccn/xdf/wiki/Specifications) is a sequence of self-delimiting
chunks, so a file written chunk by chunk is valid after every chunk: a session killed with
``kill -9`` loses at most what was not yet written (the writer flushes whole chunks at least
every ``flush_s`` seconds). ``pyxdf.load_xdf`` reads these files, truncated or not.

:func:`iter_chunks` reads the chunks back *in file order* (pyxdf regroups them per stream),
which the re-epocher needs to replay clock offsets and samples exactly as the live session
applied them.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

BOUNDARY = bytes.fromhex("43A546DCCBF5410FB30ED5467383CBE4")
NUMERIC = {
    "float32": "<f4",
    "double64": "<f8",
    "int8": "<i1",
    "int16": "<i2",
    "int32": "<i4",
    "int64": "<i8",
}
TAG_FILEHEADER, TAG_STREAMHEADER, TAG_SAMPLES, TAG_CLOCKOFFSET, TAG_BOUNDARY, TAG_FOOTER = (
    1, 2, 3, 4, 5, 6)


def _varlen(n: int) -> bytes:
    if n < 256:
        return struct.pack("<BB", 1, n)
    if n < 2**32:
        return struct.pack("<BI", 4, n)
    return struct.pack("<BQ", 8, n)


def _chunk(tag: int, content: bytes) -> bytes:
    return _varlen(len(content) + 2) + struct.pack("<H", tag) + content


def stream_header_xml(
    *, name: str, stype: str, channel_count: int, nominal_srate: float, channel_format: str,
    source_id: str = "", ch_names: list[str] | None = None, extra: str = "",
) -> str:
    """A minimal LSL-style ``<info>`` header (used when no LSL StreamInfo is at hand)."""
    chans = ""
    if ch_names:
        chans = "<channels>" + "".join(
            f"<channel><label>{escape(c)}</label></channel>" for c in ch_names) + "</channels>"
    return (
        '<?xml version="1.0"?><info>'
        f"<name>{escape(name)}</name><type>{escape(stype)}</type>"
        f"<channel_count>{channel_count}</channel_count>"
        f"<nominal_srate>{nominal_srate!r}</nominal_srate>"
        f"<channel_format>{channel_format}</channel_format>"
        f"<source_id>{escape(source_id)}</source_id>"
        f"<desc>{chans}{extra}</desc></info>"
    )


class XDFWriter:
    """Append-only XDF writer. Not thread-safe: call it from one thread.

    Chunks are assembled in memory and written with one ``os.write`` per flush, so the file
    on disk always ends on a chunk boundary unless the OS itself fails mid-write.
    """

    def __init__(self, path: str | Path, *, flush_s: float = 0.25, header_extra: str = "") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._buf = bytearray(b"XDF:")
        self._buf += _chunk(
            TAG_FILEHEADER,
            f'<?xml version="1.0"?><info><version>1.0</version>{header_extra}</info>'.encode(),
        )
        self.flush_s = float(flush_s)
        self._last_flush = 0.0
        self._formats: dict[int, str] = {}
        self._nch: dict[int, int] = {}
        self._stats: dict[int, list] = {}  # id -> [first_ts, last_ts, count]
        self._offsets: dict[int, list[tuple[float, float]]] = {}
        self.closed = False
        self.flush()

    def add_stream(self, stream_id: int, header_xml: str, *, channel_format: str,
                   channel_count: int) -> None:
        """Write the header of stream ``stream_id`` (its LSL ``header_xml``, format and channels)."""
        if channel_format not in NUMERIC and channel_format != "string":
            raise ValueError(f"unsupported XDF channel format {channel_format!r}")
        self._formats[stream_id] = channel_format
        self._nch[stream_id] = int(channel_count)
        self._stats[stream_id] = [float("nan"), float("nan"), 0]
        self._offsets[stream_id] = []
        self._buf += _chunk(TAG_STREAMHEADER, struct.pack("<I", stream_id) + header_xml.encode())
        self._buf += _chunk(TAG_BOUNDARY, BOUNDARY)
        self.flush()

    def write_numeric(self, stream_id: int, data: np.ndarray, ts: np.ndarray) -> None:
        """Append samples (n, C) with timestamps (n,) to a numeric stream."""
        n = int(ts.shape[0])
        if n == 0:
            return
        fmt = NUMERIC[self._formats[stream_id]]
        rec = np.empty(n, dtype=[("b", "u1"), ("t", "<f8"), ("v", fmt, (self._nch[stream_id],))])
        rec["b"] = 8
        rec["t"] = ts
        rec["v"] = data
        self._buf += _chunk(
            TAG_SAMPLES, struct.pack("<I", stream_id) + _varlen(n) + rec.tobytes())
        self._count(stream_id, ts)
        self.maybe_flush()

    def write_strings(self, stream_id: int, values: list[list[str]], ts) -> None:
        """Append string samples (each a list of ``channel_count`` strings)."""
        n = len(values)
        if n == 0:
            return
        body = bytearray(struct.pack("<I", stream_id) + _varlen(n))
        for sample, t in zip(values, ts):
            body += struct.pack("<Bd", 8, float(t))
            for v in sample:
                b = v.encode("utf-8") if isinstance(v, str) else bytes(v)
                body += _varlen(len(b)) + b
        self._buf += _chunk(TAG_SAMPLES, bytes(body))
        self._count(stream_id, np.asarray(ts, dtype=float))
        self.maybe_flush()

    def write_offset(self, stream_id: int, collection_time: float, offset: float) -> None:
        """A ClockOffset chunk (``offset`` maps the stream's clock to the recorder's)."""
        self._offsets[stream_id].append((collection_time, offset))
        self._buf += _chunk(
            TAG_CLOCKOFFSET, struct.pack("<Idd", stream_id, collection_time, offset))
        self.maybe_flush()

    def boundary(self) -> None:
        """Append a boundary chunk (lets readers resynchronise in a damaged file)."""
        self._buf += _chunk(TAG_BOUNDARY, BOUNDARY)

    def _count(self, sid: int, ts: np.ndarray) -> None:
        st = self._stats[sid]
        if st[2] == 0:
            st[0] = float(ts[0])
        st[1] = float(ts[-1])
        st[2] += int(ts.shape[0])

    def maybe_flush(self) -> None:
        """Flush when ``flush_s`` has passed since the last flush."""
        now = time.monotonic()
        if now - self._last_flush >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        """Write the buffered chunks to disk."""
        if self._buf:
            view = memoryview(self._buf)
            while view:
                k = os.write(self._fd, view)
                view = view[k:]
            self._buf = bytearray()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Write the stream footers and close the file."""
        if self.closed:
            return
        self.boundary()
        for sid, (t0, t1, n) in self._stats.items():
            offs = "".join(f"<offset><time>{c!r}</time><value>{v!r}</value></offset>"
                           for c, v in self._offsets[sid])
            xml = (f'<?xml version="1.0"?><info><first_timestamp>{t0!r}</first_timestamp>'
                   f"<last_timestamp>{t1!r}</last_timestamp><sample_count>{n}</sample_count>"
                   f"<clock_offsets>{offs}</clock_offsets></info>")
            self._buf += _chunk(TAG_FOOTER, struct.pack("<I", sid) + xml.encode())
        self.flush()
        os.fsync(self._fd)
        os.close(self._fd)
        self.closed = True


# ---------------------------------------------------------------------- reading
@dataclass
class Chunk:
    """One chunk read back from an XDF file (header, samples, clock offset...)."""
    tag: int
    stream_id: int | None = None
    xml: str | None = None
    ts: np.ndarray | None = None
    data: np.ndarray | list | None = None
    collection_time: float | None = None
    offset: float | None = None


def _read_varlen(buf: memoryview, pos: int) -> tuple[int, int]:
    nb = buf[pos]
    if nb == 1:
        return buf[pos + 1], pos + 2
    if nb == 4:
        return struct.unpack_from("<I", buf, pos + 1)[0], pos + 5
    if nb == 8:
        return struct.unpack_from("<Q", buf, pos + 1)[0], pos + 9
    raise ValueError(f"bad variable-length integer width {nb}")


def _channel_info(xml: str) -> tuple[str, int]:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    return root.findtext("channel_format", "float32"), int(root.findtext("channel_count", "1"))


def iter_chunks(path: str | Path) -> Iterator[Chunk]:
    """Yield the chunks of an XDF file in order; a truncated last chunk ends the iteration."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 4:
            raise ValueError("not an XDF file (too short)")
        raw = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)  # no full copy in memory
    if raw[:4] != b"XDF:":
        raise ValueError("not an XDF file (no 'XDF:' magic)")
    buf = memoryview(raw)
    pos, end = 4, size
    fmts: dict[int, tuple[str, int]] = {}
    while pos < end:
        try:
            length, body = _read_varlen(buf, pos)
        except (IndexError, struct.error, ValueError):
            return
        if body + length > end or length < 2:
            return  # truncated chunk: stop here
        tag = struct.unpack_from("<H", buf, body)[0]
        c0, c1 = body + 2, body + length
        pos = c1
        if tag == TAG_STREAMHEADER:
            sid = struct.unpack_from("<I", buf, c0)[0]
            xml = bytes(buf[c0 + 4 : c1]).decode("utf-8", "replace")
            fmts[sid] = _channel_info(xml)
            yield Chunk(tag, sid, xml=xml)
        elif tag == TAG_SAMPLES:
            sid = struct.unpack_from("<I", buf, c0)[0]
            fmt, nch = fmts[sid]
            n, p = _read_varlen(buf, c0 + 4)
            if fmt in NUMERIC and n and buf[p] == 8:
                dt = np.dtype([("b", "u1"), ("t", "<f8"), ("v", NUMERIC[fmt], (nch,))])
                rec = np.frombuffer(buf, dtype=dt, count=n, offset=p)
                if (rec["b"] == 8).all():
                    ts_, data_ = rec["t"].copy(), rec["v"].copy()
                    del rec  # release the view of the mapped file
                    yield Chunk(tag, sid, ts=ts_, data=data_)
                    continue
                del rec
            ts = np.empty(n)
            vals: list = []
            last = float("nan")
            for k in range(n):
                if buf[p] == 8:
                    last = struct.unpack_from("<d", buf, p + 1)[0]
                    p += 9
                else:
                    p += 1
                ts[k] = last
                if fmt == "string":
                    sample = []
                    for _ in range(nch):
                        ln, p = _read_varlen(buf, p)
                        sample.append(bytes(buf[p : p + ln]).decode("utf-8", "replace"))
                        p += ln
                    vals.append(sample)
                else:
                    dt = np.dtype(NUMERIC[fmt])
                    vals.append(np.frombuffer(buf, dtype=dt, count=nch, offset=p).copy())
                    p += nch * dt.itemsize
            data = vals if fmt == "string" else np.asarray(vals).reshape(n, nch)
            yield Chunk(tag, sid, ts=ts, data=data)
        elif tag == TAG_CLOCKOFFSET:
            sid, ct, off = struct.unpack_from("<Idd", buf, c0)
            yield Chunk(tag, sid, collection_time=ct, offset=off)
        elif tag in (TAG_FILEHEADER, TAG_FOOTER):
            sid = None
            if tag == TAG_FOOTER:
                sid = struct.unpack_from("<I", buf, c0)[0]
                c0 += 4
            yield Chunk(tag, sid, xml=bytes(buf[c0:c1]).decode("utf-8", "replace"))
        else:
            yield Chunk(tag)

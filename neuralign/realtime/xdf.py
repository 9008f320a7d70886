"""Incremental XDF 1.0 writer and a reader that keeps chunk order and survives damage.

XDF (https://github.com/sccn/xdf/wiki/Specifications) is a sequence of self-delimiting
chunks, so a file written chunk by chunk is valid after every chunk: a session killed with
``kill -9`` loses at most what was not yet written (the writer flushes whole chunks at least
every ``flush_s`` seconds). ``pyxdf.load_xdf`` reads these files, truncated or not.

The writer never overwrites: it creates its file with ``O_EXCL`` (an existing file is an
error) and only appends. Every ``boundary_s`` seconds (1 s) and every ``boundary_bytes``
(64 KiB) it writes a Boundary chunk (a fixed 16-byte UUID) followed by the last clock offset of
every stream, so a reader can
resynchronise after a damaged chunk and still knows the clock offsets in force.

:func:`neuralign.realtime.xdfread.read_chunks` reads the chunks back *in file order* (pyxdf regroups them per stream),
which the re-epocher needs to replay clock offsets and samples exactly as the live session
applied them. A chunk that does not parse (a damaged length, tag, stream id, sample count or
timestamp) is skipped up to the next Boundary chunk; :class:`ReadReport` lists the damaged
byte ranges and a truncated tail.
"""

from __future__ import annotations

import os
import struct
import time
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
    on disk always ends on a chunk boundary unless the OS itself fails mid-write. The file is
    created with ``O_EXCL``: if ``path`` exists, :class:`FileExistsError` (nothing is touched).
    A Boundary chunk and the last clock offsets follow every ``boundary_s`` seconds and every
    ``boundary_bytes`` bytes (a backlog pulled at once holds many seconds of data).
    """

    def __init__(self, path: str | Path, *, flush_s: float = 0.25, header_extra: str = "",
                 boundary_s: float = 1.0, boundary_bytes: int = 65536) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self.boundary_s = float(boundary_s)
        self.boundary_bytes = int(boundary_bytes)
        self._last_boundary = time.monotonic()
        self._boundary_at = 0  # len(buffer) + bytes written when the last boundary went in
        self._written = 0
        self.n_boundaries = 0
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

    def boundary(self, *, offsets: bool = False) -> None:
        """Append a boundary chunk (lets readers resynchronise in a damaged file).

        With ``offsets``, the last clock offset of every stream follows it again, so a reader
        that resynchronised here applies the offsets in force.
        """
        self._buf += _chunk(TAG_BOUNDARY, BOUNDARY)
        self.n_boundaries += 1
        self._last_boundary = time.monotonic()
        self._boundary_at = self._written + len(self._buf)
        if offsets:
            for sid, offs in self._offsets.items():
                if offs:
                    self._buf += _chunk(TAG_CLOCKOFFSET, struct.pack("<Idd", sid, *offs[-1]))

    def _count(self, sid: int, ts: np.ndarray) -> None:
        st = self._stats[sid]
        if st[2] == 0:
            st[0] = float(ts[0])
        st[1] = float(ts[-1])
        st[2] += int(ts.shape[0])

    def maybe_flush(self) -> None:
        """Flush when ``flush_s`` has passed since the last flush."""
        now = time.monotonic()
        if (now - self._last_boundary >= self.boundary_s
                or self._written + len(self._buf) - self._boundary_at >= self.boundary_bytes):
            self.boundary(offsets=True)  # (by bytes too: a backlog pulled at once is many s)
        if now - self._last_flush >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        """Write the buffered chunks to disk."""
        if self._buf:
            view = memoryview(self._buf)
            self._written += len(view)
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

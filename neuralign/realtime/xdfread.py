"""Reading XDF chunks back in file order, resynchronising after damage.

XDF has no checksums, so damage is recognised by what cannot parse: a length that runs past
the file or does not end where the content ends, an unknown tag or stream id, a sample count
or timestamp byte that does not fit, non-finite or backwards timestamps, a Boundary chunk
whose UUID is wrong. From a chunk that does not parse the reader scans forward for the next
Boundary chunk's 16-byte UUID (the writer puts one every second) and goes on from there;
:class:`ReadReport` lists every byte range skipped. A bit flipped inside a sample value
parses and cannot be noticed.
"""

from __future__ import annotations

import math
import mmap
import os
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .xdf import (
    BOUNDARY,
    NUMERIC,
    TAG_BOUNDARY,
    TAG_CLOCKOFFSET,
    TAG_FILEHEADER,
    TAG_FOOTER,
    TAG_SAMPLES,
    TAG_STREAMHEADER,
)

MAX_SAMPLE_STEP_S = 3600.0  # larger steps between two samples of one chunk are damage
BACKWARD_S = 1.0  # a regular stream's chunk starting this far before the last one is damage


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


@dataclass
class ReadReport:
    """What a read of an XDF file skipped.

    Attributes
    ----------
    size : int
        File size in bytes.
    damaged : list of (int, int)
        Byte ranges ``[start, stop)`` skipped between a chunk that did not parse and the next
        Boundary chunk.
    tail : tuple of (int, int) | None
        The byte range at the end that did not parse and has no Boundary chunk after it
        (a truncated last chunk, or damage in the last second).
    chunks : int
        Chunks read.
    """

    size: int = 0
    damaged: list[tuple[int, int]] = field(default_factory=list)
    tail: tuple[int, int] | None = None
    chunks: int = 0

    @property
    def skipped_bytes(self) -> int:
        """Bytes skipped in all (damaged ranges and the tail)."""
        tail = 0 if self.tail is None else self.tail[1] - self.tail[0]
        return sum(b - a for a, b in self.damaged) + tail

    @property
    def clean(self) -> bool:
        """Whether every byte parsed."""
        return not self.damaged and self.tail is None


class Damage(ValueError):
    """A chunk that does not parse."""


class Undecodable(Damage):
    """A chunk whose framing is sound but whose content cannot be decoded (a damaged stream
    header, samples of a stream without one): skipped alone, no resynchronisation needed."""

    def __init__(self, message: str, next_pos: int) -> None:
        super().__init__(message)
        self.next_pos = next_pos


def read_varlen(buf, pos: int) -> tuple[int, int]:
    """An XDF variable-length integer at ``pos`` -> ``(value, next position)``."""
    nb = buf[pos]
    if nb == 1:
        return buf[pos + 1], pos + 2
    if nb == 4:
        return struct.unpack_from("<I", buf, pos + 1)[0], pos + 5
    if nb == 8:
        return struct.unpack_from("<Q", buf, pos + 1)[0], pos + 9
    raise Damage(f"bad variable-length integer width {nb}")


def channel_info(xml: str) -> tuple[str, int, float]:
    """``(channel_format, channel_count, nominal_srate)`` of a stream header."""
    root = ET.fromstring(xml)
    fmt = root.findtext("channel_format", "float32")
    nch = int(root.findtext("channel_count", "1"))
    srate = float(root.findtext("nominal_srate", "0") or 0)
    if (fmt not in NUMERIC and fmt != "string") or nch < 1:
        raise Damage(f"stream header with format {fmt!r} and {nch} channels")
    return fmt, nch, srate


def _check_ts(ts: np.ndarray, regular: bool) -> None:
    if not np.isfinite(ts).all():
        raise Damage("non-finite timestamp")
    if regular and ts.size > 1:
        d = np.diff(ts)
        if (d < 0).any() or (d > MAX_SAMPLE_STEP_S).any():
            raise Damage("timestamps out of order")


def _samples(buf, c0: int, c1: int, fmts: dict, last: dict) -> Chunk:
    sid = struct.unpack_from("<I", buf, c0)[0]
    if sid not in fmts:
        raise Undecodable(f"samples of stream {sid}, which has no readable header", c1)
    chunk = _parse_samples(buf, c0, c1, fmts)
    sid, ts = chunk.stream_id, chunk.ts
    if fmts[sid][2] > 0 and len(ts):
        if sid in last and ts[0] < last[sid] - BACKWARD_S:
            raise Damage("timestamps go back in time")
        last[sid] = float(ts[-1])
    return chunk


def _parse_samples(buf, c0: int, c1: int, fmts: dict) -> Chunk:
    sid = struct.unpack_from("<I", buf, c0)[0]
    if sid not in fmts:
        raise Damage(f"samples of unknown stream {sid}")
    fmt, nch, srate = fmts[sid]
    n, p = read_varlen(buf, c0 + 4)
    if fmt in NUMERIC:
        width = np.dtype(NUMERIC[fmt]).itemsize * nch
        if n * (1 + width) > c1 - p:  # every sample takes at least this
            raise Damage("sample count exceeds the chunk")
        if n and p + n * (9 + width) == c1 and buf[p] == 8:
            dt = np.dtype([("b", "u1"), ("t", "<f8"), ("v", NUMERIC[fmt], (nch,))])
            rec = np.frombuffer(buf, dtype=dt, count=n, offset=p)
            if (rec["b"] == 8).all():
                ts_, data_ = rec["t"].copy(), rec["v"].copy()
                del rec  # release the view of the mapped file
                _check_ts(ts_, srate > 0)
                return Chunk(TAG_SAMPLES, sid, ts=ts_, data=data_)
            del rec
    elif n > c1 - p:
        raise Damage("sample count exceeds the chunk")
    ts = np.empty(n)
    vals: list = []
    last = math.nan
    for k in range(n):
        if buf[p] == 8:
            last = struct.unpack_from("<d", buf, p + 1)[0]
            p += 9
        elif buf[p] == 0:
            p += 1
        else:
            raise Damage(f"bad timestamp width {buf[p]}")
        ts[k] = last
        if fmt == "string":
            sample = []
            for _ in range(nch):
                ln, p = read_varlen(buf, p)
                if p + ln > c1:
                    raise Damage("string runs past its chunk")
                sample.append(bytes(buf[p : p + ln]).decode("utf-8", "replace"))
                p += ln
            vals.append(sample)
        else:
            dt = np.dtype(NUMERIC[fmt])
            if p + nch * dt.itemsize > c1:
                raise Damage("sample runs past its chunk")
            vals.append(np.frombuffer(buf, dtype=dt, count=nch, offset=p).copy())
            p += nch * dt.itemsize
    if p != c1:
        raise Damage("samples do not fill their chunk")
    _check_ts(ts, srate > 0)
    data = vals if fmt == "string" else np.asarray(vals).reshape(n, nch)
    return Chunk(TAG_SAMPLES, sid, ts=ts, data=data)


def parse_chunk(buf, pos: int, end: int, fmts: dict,
                last: dict | None = None) -> tuple[Chunk, int]:
    """The chunk at ``pos`` and the position after it; :class:`Damage` if it does not parse.

    Parameters
    ----------
    buf : buffer
        The whole file.
    pos : int
        Where the chunk starts.
    end : int
        File size.
    fmts : dict
        Stream id -> ``(format, channels, rate)`` of the headers read so far (updated).
    last : dict | None
        Stream id -> last timestamp of each regular stream so far (updated).

    Returns
    -------
    (Chunk, int)
        The chunk and the next position.
    """
    try:
        length, body = read_varlen(buf, pos)
        if length < 2 or body + length > end:
            raise Damage("chunk runs past the end of the file")
        tag = struct.unpack_from("<H", buf, body)[0]
        c0, c1 = body + 2, body + length
        if tag == TAG_STREAMHEADER:
            sid = struct.unpack_from("<I", buf, c0)[0]
            try:
                xml = bytes(buf[c0 + 4 : c1]).decode("utf-8", "strict")
                fmts[sid] = channel_info(xml)
            except (UnicodeDecodeError, ET.ParseError, ValueError) as e:
                if c1 < end and buf[c1] not in (1, 4, 8):  # the length itself is wrong
                    raise Damage(str(e)) from e
                raise Undecodable(f"unreadable header of stream {sid} ({e})", c1) from e
            return Chunk(tag, sid, xml=xml), c1
        if tag == TAG_SAMPLES:
            return _samples(buf, c0, c1, fmts, {} if last is None else last), c1
        if tag == TAG_CLOCKOFFSET:
            if c1 - c0 != 20:
                raise Damage("clock offset chunk of the wrong size")
            sid, ct, off = struct.unpack_from("<Idd", buf, c0)
            if sid not in fmts or not (math.isfinite(ct) and math.isfinite(off)):
                raise Damage("bad clock offset")
            return Chunk(tag, sid, collection_time=ct, offset=off), c1
        if tag == TAG_BOUNDARY:
            if bytes(buf[c0:c1]) != BOUNDARY:
                raise Damage("boundary chunk without its UUID")
            return Chunk(tag), c1
        if tag in (TAG_FILEHEADER, TAG_FOOTER):
            sid = None
            if tag == TAG_FOOTER:
                sid = struct.unpack_from("<I", buf, c0)[0]
                c0 += 4
            return Chunk(tag, sid, xml=bytes(buf[c0:c1]).decode("utf-8", "replace")), c1
        raise Damage(f"unknown chunk tag {tag}")
    except (IndexError, struct.error, UnicodeDecodeError, ET.ParseError, OverflowError) as e:
        raise Damage(str(e)) from e


def read_chunks(path: str | Path, *, report: ReadReport | None = None,
                hints: dict | None = None) -> Iterator[Chunk]:
    """Yield the chunks of an XDF file in order, skipping damage up to the next boundary.

    Parameters
    ----------
    path : str | Path
        The XDF file.
    report : ReadReport | None
        Filled while reading: damaged ranges skipped, a tail that did not parse.
    hints : dict | None
        Stream id -> ``(format, channels, rate)`` known from elsewhere (``session.json``):
        a stream whose header is damaged is still decoded.

    Returns
    -------
    iterator of Chunk
        The chunks that parsed.
    """
    rep = report if report is not None else ReadReport()
    fmts: dict[int, tuple[str, int, float]] = dict(hints or {})
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < 4:
            raise ValueError("not an XDF file (too short)")
        raw = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)  # no full copy in memory
    if raw[:4] != b"XDF:":
        raise ValueError("not an XDF file (no 'XDF:' magic)")
    rep.size = size
    buf = memoryview(raw)
    pos, end = 4, size
    last: dict[int, float] = {}
    while pos < end:
        try:
            chunk, nxt = parse_chunk(buf, pos, end, fmts, last)
        except Undecodable as e:
            rep.damaged.append((pos, e.next_pos))
            pos = e.next_pos
            continue
        except Damage:
            last.clear()  # a clock that really went back costs one chunk, not the rest
            j = raw.find(BOUNDARY, pos + 1)
            if j < 0:
                rep.tail = (pos, end)
                return
            resume = j + len(BOUNDARY)
            rep.damaged.append((pos, max(pos, j - 4)))  # the boundary's header: 4 bytes
            pos = resume
            continue
        rep.chunks += 1
        pos = nxt
        yield chunk

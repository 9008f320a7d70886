"""Integrity of a recording: what a read of its XDF skipped, in seconds, samples and markers.

:class:`IntegrityTracker` watches the chunks of one read (:func:`~neuralign.realtime.xdfread.read_chunks`
with a :class:`~neuralign.realtime.xdfread.ReadReport`) and turns every damaged byte range
into the EEG time span it cost (from the last EEG sample before it to the first after it),
the samples that span held at the nominal rate, and, when the file was closed (stream footers
give the counts written), the EEG samples and markers lost in all. ``neuralign
verify-recording`` prints it; :func:`~neuralign.realtime.recording.load_recording` (hence
``neuralign analyze --dataset recording:DIR``) warns with it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import xdf
from .xdfread import Chunk, ReadReport, channel_info, read_chunks


@dataclass
class Integrity:
    """The integrity of one recording (see :func:`check_recording`)."""

    path: str
    size_bytes: int
    chunks: int
    damaged_ranges: list[tuple[int, int]]
    tail_bytes: int
    skipped_bytes: int
    eeg_samples: int
    markers: int
    eeg_first: float | None
    eeg_last: float | None
    closed: bool
    skipped: list[dict] = field(default_factory=list)
    eeg_samples_lost: int | None = None
    markers_lost: int | None = None

    @property
    def intact(self) -> bool:
        """Every byte parsed."""
        return not self.damaged_ranges and not self.tail_bytes

    @property
    def usable(self) -> bool:
        """Some EEG could be read."""
        return self.eeg_samples > 0

    @property
    def skipped_s(self) -> float:
        """EEG seconds inside the damaged ranges."""
        return float(sum(s["seconds"] for s in self.skipped if s["seconds"] is not None))

    def summary(self) -> str:
        """One line: intact, or what was skipped."""
        if self.intact:
            state = "intact" + ("" if self.closed else " (not closed: the session was killed)")
            return (f"{state}: {self.eeg_samples} EEG samples, {self.markers} markers, "
                    f"{self.chunks} chunks, {self.size_bytes} bytes")
        lost_s = (f"{self.eeg_samples_lost} EEG samples" if self.eeg_samples_lost is not None
                  else f"~{sum(s['samples'] or 0 for s in self.skipped)} EEG samples")
        mk = (f"{self.markers_lost} markers" if self.markers_lost is not None
              else "an unknown number of markers (no footer)")
        return (f"DAMAGED: {len(self.damaged_ranges)} damaged range(s) and "
                f"{self.tail_bytes} unreadable bytes at the end skipped "
                f"({self.skipped_bytes} bytes): {self.skipped_s:.3f} s of EEG, {lost_s}, {mk} "
                f"lost; kept {self.eeg_samples} EEG samples and {self.markers} markers")

    def lines(self) -> list[str]:
        """The full report, one line per fact."""
        out = [f"{self.path}: {self.summary()}"]
        if self.eeg_first is not None:
            out.append(f"EEG from {self.eeg_first:.3f} to {self.eeg_last:.3f} s (LSL clock), "
                       f"{self.eeg_last - self.eeg_first:.3f} s")
        for (a, b), s in zip(self.damaged_ranges, self.skipped):
            span = ("unknown" if s["seconds"] is None
                    else f"{s['seconds']:.3f} s of EEG after t={s['after']:.3f}")
            out.append(f"skipped bytes {a}-{b}: {span}, ~{s['samples']} samples")
        if self.tail_bytes:
            out.append(f"unreadable end: {self.tail_bytes} bytes")
        return out

    def to_dict(self) -> dict:
        """JSON-ready (results.json, dataset info)."""
        d = asdict(self)
        d.update(intact=self.intact, usable=self.usable, skipped_s=self.skipped_s,
                 summary=self.summary())
        return d


class IntegrityTracker:
    """Follows the chunks of one read and measures what the damage skipped.

    Parameters
    ----------
    report : ReadReport
        The report the read fills.
    eeg_id, marker_id : int
        Stream ids of the EEG and of the markers.
    """

    def __init__(self, report: ReadReport, *, eeg_id: int = 1, marker_id: int = 2) -> None:
        self.report = report
        self.eeg_id, self.marker_id = eeg_id, marker_id
        self.sfreq = 0.0
        self.n_eeg = self.n_markers = 0
        self.first: float | None = None
        self.last: float | None = None
        self.footers: dict[int, int] = {}
        self._seen = 0
        self.skipped: list[dict] = []
        self._open: dict | None = None

    def see(self, ch: Chunk) -> None:
        """Account for one chunk (call for every chunk, in order)."""
        while self._seen < len(self.report.damaged):  # damage just before this chunk
            self._seen += 1
            self._open = {"after": self.last, "until": None, "seconds": None, "samples": None}
            self.skipped.append(self._open)
        if ch.tag == xdf.TAG_STREAMHEADER and ch.stream_id == self.eeg_id:
            self.sfreq = channel_info(ch.xml)[2]
        elif ch.tag == xdf.TAG_SAMPLES and ch.stream_id == self.eeg_id and len(ch.ts):
            if self._open is not None and self.last is not None:
                gap = float(ch.ts[0] - self.last)
                self._open.update(until=float(ch.ts[0]), seconds=gap,
                                  samples=max(0, round(gap * self.sfreq) - 1))
            self._open = None
            self.first = float(ch.ts[0]) if self.first is None else self.first
            self.last = float(ch.ts[-1])
            self.n_eeg += len(ch.ts)
        elif ch.tag == xdf.TAG_SAMPLES and ch.stream_id == self.marker_id:
            self.n_markers += len(ch.ts)
        elif ch.tag == xdf.TAG_FOOTER and ch.stream_id is not None:
            m = re.search(r"<sample_count>(\d+)</sample_count>", ch.xml or "")
            if m:
                self.footers[ch.stream_id] = int(m.group(1))

    def finish(self, path: str | Path) -> Integrity:
        """The integrity of the read (call after the last chunk)."""
        rep = self.report
        while self._seen < len(rep.damaged):  # damage after the last chunk that parsed
            self._seen += 1
            self.skipped.append({"after": self.last, "until": None, "seconds": None,
                                 "samples": None})
        closed = self.eeg_id in self.footers
        lost_eeg = lost_mk = None
        if closed:
            lost_eeg = max(0, self.footers[self.eeg_id] - self.n_eeg)
            lost_mk = max(0, self.footers.get(self.marker_id, self.n_markers) - self.n_markers)
        return Integrity(
            path=str(path), size_bytes=rep.size, chunks=rep.chunks,
            damaged_ranges=list(rep.damaged),
            tail_bytes=0 if rep.tail is None else rep.tail[1] - rep.tail[0],
            skipped_bytes=rep.skipped_bytes, eeg_samples=self.n_eeg, markers=self.n_markers,
            eeg_first=self.first, eeg_last=self.last, closed=closed, skipped=self.skipped,
            eeg_samples_lost=lost_eeg, markers_lost=lost_mk)


def check_recording(path: str | Path, *, hints: dict | None = None) -> Integrity:
    """Read a recording's XDF through and measure its integrity.

    Parameters
    ----------
    path : str | Path
        The ``session.xdf`` (find it with :func:`~neuralign.realtime.recording.find_xdf`).
    hints : dict | None
        Stream id -> ``(format, channels, rate)`` from ``session.json``
        (:func:`~neuralign.realtime.recording.stream_hints`): a damaged header costs nothing.

    Returns
    -------
    Integrity
        What was read and what was skipped.
    """
    rep = ReadReport()
    tracker = IntegrityTracker(rep)
    if hints and 1 in hints:
        tracker.sfreq = hints[1][2]
    for ch in read_chunks(path, report=rep, hints=hints):
        tracker.see(ch)
    return tracker.finish(path)

"""What the inlets cannot say: a marker stream gone, an EEG stream back in another shape.

liblsl's inlets (``recover=True``) reconnect by themselves, silently: a marker stream that goes
away looks exactly like one with no markers to send, an EEG outlet restarted with another
channel count is never reconnected (liblsl's recovery query asks for the same count) and one
restarted at another rate is reconnected as if nothing changed. :class:`StreamWatch` runs a
continuous resolver in its own thread (never in the acquisition loop) and says each of these
out loud: :attr:`StreamWatch.markers_connected`, :attr:`StreamWatch.problem`, and events the
acquisition thread drains (:meth:`StreamWatch.drain`) into the recording's log.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from ..lsl import get_pylsl


class StreamWatch:
    """Watch the marker stream's presence and the EEG stream's shape.

    Parameters
    ----------
    eeg, markers : Inlet
        The session's inlets (:class:`~neuralign.realtime.lsl_io.Inlet`).
    eeg_lost : callable
        ``eeg_lost()``: whether the session counts the EEG as lost now.
    every_s : float
        Seconds between checks.
    forget_s : float
        A stream not seen by the resolver for this long counts as gone.
    soa_s : float | None
        The design's stimulus onset asynchrony: markers lost in an outage are estimated as
        its duration / ``soa_s``.
    """

    def __init__(self, *, eeg, markers, eeg_lost: Callable[[], bool], every_s: float = 0.25,
                 forget_s: float = 1.5, soa_s: float | None = None) -> None:
        self.eeg, self.markers = eeg, markers
        self.eeg_lost = eeg_lost
        self.every_s = float(every_s)
        self.soa_s = soa_s
        self.forget_s = float(forget_s)
        pylsl = get_pylsl()
        ids = {(eeg.name, eeg.source_id), (markers.name, markers.source_id)}
        pred = " or ".join(f"name='{n}'" + (f" or source_id='{s}'" if s else "")
                           for n, s in sorted(ids))
        self._resolver = pylsl.ContinuousResolver(pred=pred, forget_after=float(forget_s))
        self.markers_connected = True
        self.marker_outages = 0
        self.marker_outage_s = 0.0
        self.markers_lost_estimate: int | None = None if soa_s is None else 0
        self.problem = ""  # a reason the EEG cannot be used, said in the status
        self.events: queue.Queue = queue.Queue()
        self._lost_since: float | None = None
        self._eeg_was_lost = False
        self._rate_check_until = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the watching thread."""
        self._thread = threading.Thread(target=self._run, name="neuralign-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the watching thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def drain(self) -> list[tuple[str, dict]]:
        """The events since the last call: ``(event, fields)`` to log (acquisition thread)."""
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def _say(self, event: str, **fields) -> None:
        self.events.put((event, fields))

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.check()
            except Exception as e:  # noqa: BLE001 - the watch must never end the session
                self._say("watch_error", error=str(e))

    def check(self) -> None:
        """One round: marker presence, EEG shape (called by the thread every ``every_s``)."""
        seen = self._resolver.results()
        mk = [s for s in seen if self._same(s, self.markers)]
        now = time.monotonic()
        if self.markers_connected and not mk:
            self.markers_connected = False
            self._lost_since = now - self.forget_s  # last seen about forget_s ago
            self.marker_outages += 1
            self._say("markers_lost", stream=self.markers.name)
        elif not self.markers_connected and mk:
            self.markers_connected = True
            gap = now - (self._lost_since or now)
            self.marker_outage_s += gap
            fields = {"stream": self.markers.name, "outage_s": round(gap, 3)}
            if self.soa_s:
                est = int(round(gap / self.soa_s))
                self.markers_lost_estimate = (self.markers_lost_estimate or 0) + est
                fields["markers_lost_estimate"] = est
            self._say("markers_back", **fields)
        lost = self.eeg_lost()
        if lost:
            eeg = [s for s in seen if self._same(s, self.eeg)]
            other = [s for s in eeg if s.channel_count() != self.eeg.n_channels]
            if other and not self.problem:
                n = other[0].channel_count()
                self.problem = (f"EEG stream {self.eeg.name!r} is back with {n} channels (was "
                                f"{self.eeg.n_channels}): it cannot be reconnected; restart "
                                "the session")
                self._say("eeg_shape_changed", n_channels=n, was=self.eeg.n_channels)
        else:
            if self._eeg_was_lost:  # it came back: liblsl reconnects whatever the rate
                self._rate_check_until = now + 5.0
            eeg = [s for s in seen if self._same(s, self.eeg)]
            rates = {s.nominal_srate() for s in eeg}
            if now < self._rate_check_until and rates and self.eeg.sfreq not in rates:
                fs = min(rates)
                self.problem = (f"EEG stream {self.eeg.name!r} came back at {fs:g} Hz (was "
                                f"{self.eeg.sfreq:g} Hz): its epochs are rejected; restart "
                                "the session")
                self._say("eeg_rate_changed", sfreq=fs, was=self.eeg.sfreq)
                self._rate_check_until = 0.0
        self._eeg_was_lost = lost

    @staticmethod
    def _same(info, inlet) -> bool:
        if inlet.source_id:
            return info.source_id() == inlet.source_id
        return info.name() == inlet.name

    def describe(self) -> dict:
        """The counts results.json records."""
        return {"marker_outages": self.marker_outages,
                "marker_outage_s": round(self.marker_outage_s, 3),
                "markers_lost_estimate": self.markers_lost_estimate,
                "stream_problem": self.problem or None}

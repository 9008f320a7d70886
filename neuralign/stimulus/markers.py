"""The presenter's LSL marker outlet (type ``Markers``, one string channel, irregular rate)."""

from __future__ import annotations

import hashlib
import time

from ..errors import NeuralignError
from ..lsl import configure_lsl


def default_source_id(stream_name: str) -> str:
    """A stable source id for a marker stream name (lets inlets recover after a restart)."""
    return "neuralign-markers-" + hashlib.sha1(stream_name.encode()).hexdigest()[:12]


class MarkerOutlet:
    """An LSL string marker stream. Samples are stimulus ids or control words.

    Parameters
    ----------
    name : str
        LSL stream name (what ``neuralign live --marker-stream`` looks for).
    source_id : str, optional
        LSL source id; default derived from ``name``.
    """

    def __init__(self, name: str, *, source_id: str = "") -> None:
        configure_lsl()  # machine-scope discovery before pylsl is imported
        import pylsl

        self._pylsl = pylsl
        self.name = name
        self.source_id = source_id or default_source_id(name)
        info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, "string",
                                self.source_id)
        desc = info.desc()
        desc.append_child_value("manufacturer", "neuralign")
        chans = desc.append_child("channels")
        ch = chans.append_child("channel")
        ch.append_child_value("label", "marker")
        ch.append_child_value("type", "Markers")
        self.outlet = pylsl.StreamOutlet(info)
        self.n_pushed = 0

    def local_clock(self) -> float:
        return self._pylsl.local_clock()

    def push(self, marker: str, *, stamp: float | None = None) -> float:
        """Send ``marker`` stamped ``stamp`` (default: now); return the timestamp used."""
        if stamp is None:
            stamp = self._pylsl.local_clock()
        self.outlet.push_sample([marker], stamp)
        self.n_pushed += 1
        return stamp

    def have_consumers(self) -> bool:
        return bool(self.outlet.have_consumers())

    def wait_for_consumer(self, timeout: float, *, settle: float = 0.0) -> None:
        """Block until an inlet is connected (``timeout`` seconds at most).

        Raises
        ------
        NeuralignError
            When nothing connected in time, saying what to start.
        """
        if timeout <= 0:
            return
        print(
            f"waiting up to {timeout:g} s for a consumer of marker stream {self.name!r} "
            "(neuralign live or an LSL recorder) ...",
            flush=True,
        )
        if not self.outlet.wait_for_consumers(timeout):
            raise NeuralignError(
                f"no consumer connected to marker stream {self.name!r} within {timeout:g} s: "
                f"start `neuralign live --marker-stream {self.name} ...` (or LabRecorder) first, "
                "check that both use the same LSLAPICFG, or set markers.wait_for_consumer_s = 0 "
                "to present without one (markers are then lost)"
            )
        if settle > 0:
            time.sleep(settle)

    def close(self) -> None:
        """Drop the outlet (its consumers see the stream end)."""
        self.outlet = None

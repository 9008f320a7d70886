"""LSL inlets for the live path: pull into preallocated arrays, recover after a dropout.

Streams are found with :func:`neuralign.lsl.resolve`; ``pylsl`` is imported through
:func:`neuralign.lsl.get_pylsl`, which applies the machine-scope configuration first.
"""

from __future__ import annotations

import numpy as np

from ..lsl import get_pylsl

FORMATS = {1: "float32", 2: "double64", 3: "string", 4: "int32", 5: "int16", 6: "int8",
           7: "int64"}
NP_DTYPES = {"float32": np.float32, "double64": np.float64, "int32": np.int32,
             "int16": np.int16, "int8": np.int8, "int64": np.int64}


class Inlet:
    """One LSL inlet with ``recover=True`` (it reconnects to the same source id by itself).

    Numeric streams are pulled with ``pull_chunk(timeout=0, max_samples=N, dest_obj=buf)``
    into one preallocated C-contiguous ``(N, C)`` array in the stream's own dtype.
    """

    def __init__(self, info, *, max_chunk: int = 4096, max_buflen_s: int = 360) -> None:
        pylsl = get_pylsl()
        self.inlet = pylsl.StreamInlet(info, max_buflen=max_buflen_s, max_chunklen=0,
                                       recover=True, processing_flags=0)
        self.info = self.inlet.info(timeout=5.0)  # full header with desc/channels
        self.name = self.info.name()
        self.type = self.info.type()
        self.source_id = self.info.source_id()
        self.fmt = FORMATS.get(self.info.channel_format(), "float32")
        self.n_channels = int(self.info.channel_count())
        self.sfreq = float(self.info.nominal_srate())
        labels = None
        try:
            labels = self.info.get_channel_labels()
        except Exception:  # noqa: BLE001 - malformed desc: fall back to numbered names
            labels = None
        if not labels or len(labels) != self.n_channels or any(not x for x in labels):
            labels = [f"ch{i + 1}" for i in range(self.n_channels)]
        self.ch_names = [str(x) for x in labels]
        self.max_chunk = int(max_chunk)
        self.numeric = self.fmt != "string"
        if self.numeric:
            self.buf = np.zeros((self.max_chunk, self.n_channels), dtype=NP_DTYPES[self.fmt])
        self.inlet.open_stream(timeout=5.0)

    def describe(self) -> dict:
        """The stream as recorded in ``session.json``.

        Returns
        -------
        dict
            ``name``, ``type``, ``source_id``, ``sfreq``, ``n_channels``, ``ch_names`` and
            ``channel_format``.
        """
        return {"name": self.name, "type": self.type, "source_id": self.source_id,
                "sfreq": self.sfreq, "n_channels": self.n_channels, "ch_names": self.ch_names,
                "channel_format": self.fmt}

    def header_xml(self) -> str:
        """The stream's full XML header (written into the recording)."""
        return self.info.as_xml()

    def pull(self):
        """Non-blocking: ``(data, ts)``; numeric data is a view of the reused buffer."""
        if self.numeric:
            data, ts = self.inlet.pull_chunk(timeout=0.0, max_samples=self.max_chunk,
                                             dest_obj=self.buf, as_numpy=True)
            return data, ts
        values, ts = self.inlet.pull_chunk(timeout=0.0, max_samples=self.max_chunk)
        return values, np.asarray(ts, dtype=np.float64)

    def time_correction(self, timeout: float = 2.0) -> float | None:
        """The clock offset of the stream (s), or ``None`` on timeout or loss."""
        try:
            return float(self.inlet.time_correction(timeout=timeout))
        except Exception:  # noqa: BLE001 - timeout or lost stream: keep the previous offset
            return None

    def close(self) -> None:
        """Close the stream (errors of a lost stream are ignored)."""
        try:
            self.inlet.close_stream()
        except Exception:  # noqa: BLE001
            pass

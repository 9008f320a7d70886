"""Replay a dataset through LSL as if it were live (machine-scope LSL config).

An :class:`~neuralign.base.EpochData` becomes two LSL streams:

- EEG (``type="EEG"``, float32, ``n_channels``, nominal rate = the epochs' rate): the epochs laid
  back to back, each followed by ``gap_s`` of zeros, so a live epocher cutting ``tmin..tmax``
  around each marker recovers every epoch exactly (no overlap between epochs);
- markers (``type="Markers"``, one string channel, the project's
  :class:`~neuralign.lsl.MarkerOutlet`): the stimulus id at each epoch's onset.

Timestamps follow the data clock (``t0 + sample / sfreq``) whatever the ``speed``; ``speed`` only
changes how fast samples are pushed (``0`` = as fast as possible). Used by ``neuralign replay`` when
streaming over LSL is wanted rather than feeding the engine in-process.
"""

from __future__ import annotations

import time
import uuid

import numpy as np

from ..errors import NeuralignError
from ..lsl import MarkerOutlet, get_pylsl


class LSLReplayer:
    """Stream an EpochData over LSL.

    Parameters
    ----------
    data : EpochData
    name : str, optional
        EEG stream name (markers: ``<name>-markers``); default a unique name.
    speed : float
        x real time (1 = real time, 0 = as fast as possible).
    gap_s : float
        Zeros between consecutive epochs (s).
    chunk : int
        Samples per pushed chunk.
    order : array of int, optional
        Epoch order (default: as stored).
    """

    def __init__(self, data, *, name: str | None = None, speed: float = 1.0, gap_s: float = 0.1,
                 chunk: int = 32, order: np.ndarray | None = None) -> None:
        pylsl = get_pylsl()
        if speed < 0:
            raise NeuralignError(f"speed must be >= 0, got {speed}")
        self.data = data
        self.sfreq = float(data.sfreq)
        if not np.isfinite(self.sfreq) or self.sfreq <= 0:
            raise NeuralignError("the dataset needs at least two time points to replay")
        self.name = name or f"neuralign-replay-{uuid.uuid4().hex[:8]}"
        self.speed = float(speed)
        self.chunk = int(chunk)
        self.order = np.arange(len(data.stimulus_ids)) if order is None else np.asarray(order)
        self.gap = int(round(gap_s * self.sfreq))
        n_ch = len(data.ch_names)
        info = pylsl.StreamInfo(self.name, "EEG", n_ch, self.sfreq, "float32",
                                f"{self.name}-eeg")
        chans = info.desc().append_child("channels")
        for c in data.ch_names:
            ch = chans.append_child("channel")
            ch.append_child_value("label", str(c))
            ch.append_child_value("unit", "microvolts")
            ch.append_child_value("type", "EEG")
        self._pylsl = pylsl
        self.eeg = pylsl.StreamOutlet(info, chunk_size=self.chunk)
        self.markers = MarkerOutlet(f"{self.name}-markers", source_id=f"{self.name}-markers")
        # onset sample of t = 0 within each epoch
        self.onset_offset = int(np.argmin(np.abs(np.asarray(data.times))))
        self.n_samples_sent = 0

    @property
    def epoch_len(self) -> int:
        """Samples per epoch."""
        return int(self.data.epochs.shape[2])

    def wait_for_consumers(self, timeout: float = 10.0) -> bool:
        """Block until both streams have an inlet (markers pushed earlier are lost)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.eeg.have_consumers() and self.markers.have_consumers():
                return True
            time.sleep(0.02)
        return False

    def run(self, *, max_epochs: int | None = None) -> int:
        """Push the epochs (and their markers); return the number of epochs sent."""
        step = self.epoch_len + self.gap
        order = self.order[:max_epochs] if max_epochs else self.order
        t0 = self._pylsl.local_clock() + 0.05
        wall0 = time.monotonic()
        block = np.zeros((step, len(self.data.ch_names)), dtype=np.float32)
        for k, i in enumerate(order):
            block[: self.epoch_len] = self.data.epochs[i].T
            start = k * step
            self.markers.push(str(self.data.stimulus_ids[i]),
                              stamp=t0 + (start + self.onset_offset) / self.sfreq)
            for a in range(0, step, self.chunk):
                part = block[a:a + self.chunk]
                stamps = t0 + (start + a + np.arange(part.shape[0])) / self.sfreq
                if self.speed > 0:
                    due = wall0 + (start + a) / self.sfreq / self.speed
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                self.eeg.push_chunk(np.ascontiguousarray(part), stamps.tolist())
                self.n_samples_sent += part.shape[0]
        return len(order)

    def close(self) -> None:
        """Close both outlets."""
        self.markers.close()
        del self.eeg

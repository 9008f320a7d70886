"""A preallocated numpy ring buffer whose any recent window is a contiguous view."""

from __future__ import annotations

import numpy as np


class RingBuffer:
    """Fixed-capacity (samples x channels) buffer with timestamps.

    Every sample is stored twice (at ``k % cap`` and ``k % cap + cap``), so any window of at
    most ``capacity`` recent samples is a contiguous, zero-copy view. Samples are addressed by
    their absolute index (0 = the first sample ever appended).
    """

    def __init__(self, capacity: int, n_channels: int, *, dtype=np.float64) -> None:
        self.capacity = int(capacity)
        self.n_channels = int(n_channels)
        self.data = np.zeros((2 * self.capacity, self.n_channels), dtype=dtype)
        self.ts = np.zeros(2 * self.capacity, dtype=np.float64)
        self.total = 0  # samples ever appended

    @property
    def filled(self) -> int:
        """Samples held (at most the capacity)."""
        return min(self.total, self.capacity)

    @property
    def first_index(self) -> int:
        """Absolute index of the oldest sample still held."""
        return self.total - self.filled

    def append(self, x: np.ndarray, t: np.ndarray) -> None:
        """Append ``x`` (n, C) with timestamps ``t`` (n,), overwriting the oldest."""
        n = int(t.shape[0])
        if n == 0:
            return
        cap = self.capacity
        if n > cap:  # only the newest cap samples can be kept
            self.total += n - cap
            x, t, n = x[-cap:], t[-cap:], cap
        p = self.total % cap
        first = min(n, cap - p)
        for arr, src in ((self.data, x), (self.ts, t)):
            arr[p : p + first] = src[:first]
            arr[p + cap : p + cap + first] = src[:first]
            rest = n - first
            if rest:
                arr[:rest] = src[first:]
                arr[cap : cap + rest] = src[first:]
        self.total += n

    def window(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Views (data, ts) of absolute samples ``[start, stop)`` (must still be held)."""
        if start < self.first_index or stop > self.total or stop - start > self.capacity:
            raise IndexError(f"samples [{start}, {stop}) not held ({self.first_index}..{self.total})")
        s = start % self.capacity
        e = s + (stop - start)
        return self.data[s:e], self.ts[s:e]

    def held(self) -> tuple[np.ndarray, np.ndarray]:
        """Views of every sample held, oldest first."""
        return self.window(self.first_index, self.total)

    def last_ts(self) -> float:
        """Timestamp of the newest sample (NaN when empty)."""
        if self.total == 0:
            return float("nan")
        return float(self.ts[(self.total - 1) % self.capacity])

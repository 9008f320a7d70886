"""Memory of this machine and of this process; sizes as users write them (``3GB``)."""

from __future__ import annotations

import os
import re

from ..errors import NeuralignError

_GB = 1024**3


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable`` on Linux, else physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * _GB


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far, in bytes."""
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def parse_memory(text: str | int) -> int:
    """Bytes from a size such as ``"3GB"``, ``"512M"``, ``"2.5G"``, ``"8GiB"`` or a byte count.

    Parameters
    ----------
    text : str or int
        The size.

    Returns
    -------
    int
        Bytes (positive).

    Raises
    ------
    NeuralignError
        One line naming ``--memory`` when the text is not a positive size.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        value = float(text)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([kKmMgGtT]?)[iI]?[bB]?\s*",
                         str(text))
        if not m:
            raise NeuralignError(f"--memory: not a size: {text!r} (e.g. 3GB, 512MB)")
        scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
        value = float(m.group(1)) * scale[m.group(2).lower()]
    if not value >= 1:
        raise NeuralignError(f"--memory must be positive, got {text!r}")
    return int(value)



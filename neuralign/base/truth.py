"""The planted truth of a simulated dataset, as results and reports carry it.

A simulation (:mod:`neuralign.sim`) plants one peak latency per layer. The record that travels
with the data (``EpochData.info["planted"]``) and with the results (``extra["planted"]``) is::

    {"layers": ["layer0", ...], "peak_latencies_s": [0.08, ...]}

:func:`planted_latencies` reads it against a result's layers; it is the one reader of that
record (reports overlay it, :mod:`neuralign.sim.truth` scores recovery against it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def planted_record(planted: dict) -> dict:
    """The part of a planted truth that results carry: layer names and peak latencies.

    Parameters
    ----------
    planted : dict
        A planted truth (e.g. ``planted.json`` of a simulated subject).

    Returns
    -------
    dict
        ``{"layers": ..., "peak_latencies_s": ...}``, and ``units`` (the planted units of a
        unit-driven brain, :mod:`neuralign.sim.units`) when there are some.
    """
    rec = {"layers": planted.get("layers"), "peak_latencies_s": planted.get("peak_latencies_s")}
    if planted.get("units"):
        rec["units"] = planted["units"]
    return rec


def planted_latencies(planted: dict | None, layers: Sequence[str]) -> np.ndarray | None:
    """The planted peak latency of each of ``layers`` (seconds), or ``None`` when unknown.

    Parameters
    ----------
    planted : dict | None
        A planted-truth record (see the module docstring).
    layers : sequence of str
        The layers of a result, in depth order.

    Returns
    -------
    ndarray, shape (n_layers,) | None
        Matched by layer name when the record names its layers (NaN for layers it lacks),
        else by position when the counts agree; ``None`` without latencies.
    """
    if not planted or planted.get("peak_latencies_s") is None:
        return None
    lat = np.asarray(planted["peak_latencies_s"], dtype=float)
    names = planted.get("layers")
    if names is not None and list(names) != list(layers):
        by_name = dict(zip(names, lat))
        return np.array([by_name.get(n, np.nan) for n in layers])
    return lat if lat.size == len(layers) else None

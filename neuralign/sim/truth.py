"""The planted truth of a simulated subject: reading it back and scoring its recovery.

:func:`neuralign.sim.dataset.write_things_eeg2` writes ``planted.json`` next to the subject;
:func:`read_planted` finds it, :func:`annotate` attaches it to the loaded epochs and
:func:`recovery` says how well an analysis found the planted peak latencies.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..base import EpochData
from ..base.truth import planted_record

#: A hierarchy counts as recovered at this rank correlation and mean error (ms).
RECOVERY_CRITERION = "Spearman >= 0.9 and mean |error| <= 20 ms"


def read_planted(path: str | Path) -> dict | None:
    """The ``planted.json`` of a simulated subject.

    Parameters
    ----------
    path : str | Path
        The simulated dataset's root or its subject folder.

    Returns
    -------
    dict | None
        The planted truth, or ``None`` when there is none.
    """
    p = Path(path)
    for cand in (p / "planted.json", p.parent / "planted.json"):
        if cand.is_file():
            return json.loads(cand.read_text())
    return None


def annotate(data: EpochData, path: str | Path) -> EpochData:
    """Mark ``data`` as simulated and attach the planted truth found at ``path``.

    Parameters
    ----------
    data : EpochData
        Epochs loaded from a simulated subject.
    path : str | Path
        The subject folder (or the dataset root).

    Returns
    -------
    EpochData
        ``data`` itself, with ``info["source"] = "sim"``, ``info["simulated"] = True`` and
        ``info["planted"]`` (layers and peak latencies) when ``planted.json`` exists.
    """
    planted = read_planted(path)
    data.info["source"] = "sim"
    data.info["simulated"] = True
    if planted is not None:
        data.info["planted"] = planted_record(planted)
    return data


def recovery(result, planted_lat) -> dict:
    """How well the encoding peak latencies of ``result`` match the planted ones.

    Parameters
    ----------
    result : AlignmentResult
        The maps of an analysis.
    planted_lat : array of float, shape (n_layers,)
        The planted peak latency of every layer (seconds).

    Returns
    -------
    dict
        ``spearman`` (rank correlation), ``mae_ms`` (mean absolute error), ``recovered``
        (both within :data:`RECOVERY_CRITERION`) and ``criterion``.
    """
    from scipy.stats import spearmanr

    lat, _ = result.peaks("encoding")
    planted_lat = np.asarray(planted_lat, dtype=float)
    ok = np.isfinite(lat) & np.isfinite(planted_lat)
    if ok.sum() < 2:
        return {"spearman": float("nan"), "mae_ms": float("nan"), "recovered": False}
    rho = float(spearmanr(lat[ok], planted_lat[ok])[0])
    mae = float(np.abs(lat[ok] - planted_lat[ok]).mean() * 1000)
    return {"spearman": rho, "mae_ms": mae, "recovered": bool(rho >= 0.9 and mae <= 20.0),
            "criterion": RECOVERY_CRITERION}

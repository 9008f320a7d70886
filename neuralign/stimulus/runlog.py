"""The presenter's run log, written as the run goes and readable after an abort or a crash.

- ``run_log.jsonl``: one JSON object per event (``run_start``, ``block_start``, ``trial``,
  ``response``, ``break``, ``block_end``, ``abort``, ``end``), flushed after every line.
- ``run_log.csv``: one row per shown trial (:data:`TRIAL_COLUMNS`), and one row of kind
  ``response`` per response key press (``index``/``stimulus_id`` of the target it answered,
  ``responded`` = hit, ``rt_s``), flushed after every row.

Times: ``*_s`` columns are seconds from the run's first flip on the presenter clock
(PsychoPy ``core.getTime``); ``lsl_time`` is the LSL timestamp the marker carried.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

TRIAL_COLUMNS = (
    "index", "block", "sequence", "position", "kind", "stimulus_id", "role", "marker",
    "planned_onset_s", "onset_s", "onset_error_ms", "offset_s", "on_frames", "dropped_frames",
    "lsl_time", "responded", "rt_s",
)


def _clean(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else None
    return value


def to_json(obj: Any, **kw: Any) -> str:
    """``json.dumps`` that also writes numpy scalars and arrays."""

    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"cannot write {type(o).__name__} to JSON")

    return json.dumps(obj, default=default, **kw)


class RunLog:
    """Append-only run log (see module docstring)."""

    def __init__(self, out_dir: str | Path) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = out / "run_log.jsonl"
        self.csv_path = out / "run_log.csv"
        self._jsonl = open(self.jsonl_path, "w", encoding="utf-8")
        self._csv_file = open(self.csv_path, "w", newline="", encoding="utf-8")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=list(TRIAL_COLUMNS),
                                   extrasaction="ignore")
        self._csv.writeheader()
        self._csv_file.flush()

    def event(self, name: str, /, **fields: Any) -> None:
        """Append one event line (``{"event": name, ...}``) and flush."""
        record = {"event": name, **{k: _clean(v) for k, v in fields.items()}}
        self._jsonl.write(to_json(record) + "\n")
        self._jsonl.flush()

    def trial(self, row: dict[str, Any], *, event: str = "trial") -> None:
        """Append one row (CSV, and a JSONL ``event`` line) and flush both.

        Keys starting with ``_`` are internal and not written.
        """
        row = {k: _clean(v) for k, v in row.items() if not k.startswith("_")}
        self._csv.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in TRIAL_COLUMNS})
        self._csv_file.flush()
        self.event(event, **row)

    def close(self) -> None:
        """Close the log files."""
        for f in (self._jsonl, self._csv_file):
            if not f.closed:
                f.close()


def read_run_log(out_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """``(events, trial_rows)`` from a run folder; tolerates a torn last line."""
    out = Path(out_dir)
    events = []
    with open(out / "run_log.jsonl", encoding="utf-8") as f:
        for line in f:
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by a crash
    with open(out / "run_log.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return events, rows

"""Session design file: which stimuli the presenter shows, which of them score (test).

Written by the presenter (and ``neuralign simulate-amp --schedule``), read by ``live``::

    {
      "format": "neuralign-design",
      "version": 1,
      "marker_stream": "neuralign-markers",
      "eeg": {"n_channels": 17, "ch_names": ["Pz", "..."]},        (optional)
      "codes": {"1": "stim_0001"},                                   (optional, int markers)
      "soa_s": 0.2,                                                  (optional, informative)
      "stimuli": [{"id": "stim_0001", "role": "train", "reps": 2},
                  {"id": "stim_0100", "role": "test", "reps": 5}]
    }

``role`` is ``train`` or ``test``; test stimuli are the ones scored (as THINGS-EEG2's test
set). Without a design file the engine scores every stimulus by nested cross-validation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NeuralignError

FORMAT = "neuralign-design"


@dataclass(frozen=True)
class SessionDesign:
    stimuli: tuple[str, ...]
    roles: dict[str, str]
    marker_stream: str = ""
    n_channels: int | None = None
    ch_names: tuple[str, ...] | None = None
    codes: dict[str, str] = field(default_factory=dict)
    reps: dict[str, int] = field(default_factory=dict)
    soa_s: float | None = None
    path: str = ""

    @property
    def test_ids(self) -> list[str]:
        return [s for s in self.stimuli if self.roles[s] == "test"]

    @property
    def train_ids(self) -> list[str]:
        return [s for s in self.stimuli if self.roles[s] == "train"]

    def to_dict(self) -> dict:
        d: dict = {"format": FORMAT, "version": 1, "marker_stream": self.marker_stream}
        if self.n_channels is not None or self.ch_names:
            d["eeg"] = {"n_channels": self.n_channels,
                        "ch_names": list(self.ch_names) if self.ch_names else None}
        if self.codes:
            d["codes"] = dict(self.codes)
        if self.soa_s is not None:
            d["soa_s"] = self.soa_s
        d["stimuli"] = [{"id": s, "role": self.roles[s], "reps": self.reps.get(s, 1)}
                        for s in self.stimuli]
        return d

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        tmp.replace(p)
        return p

    def check_channels(self, n_channels: int, *, stream: str = "") -> None:
        """Raise a clear error if the EEG stream does not match the design."""
        want = self.n_channels if self.n_channels is not None else (
            len(self.ch_names) if self.ch_names else None)
        if want is not None and int(want) != int(n_channels):
            raise NeuralignError(
                f"EEG stream {stream!r} has {n_channels} channels but the session design "
                f"expects {want}", path=self.path or None)


def load_design(path: str | Path) -> SessionDesign:
    """Read and validate a design file (see module docstring for the format)."""
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError as e:
        raise NeuralignError("design file not found", path=p) from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise NeuralignError(f"not a JSON design file ({e})", path=p) from e
    if not isinstance(d, dict) or d.get("format", FORMAT) != FORMAT:
        raise NeuralignError(f"not a {FORMAT} file", path=p)
    items = d.get("stimuli")
    if not isinstance(items, list) or not items:
        raise NeuralignError("design lists no stimuli", path=p)
    stimuli, roles, reps = [], {}, {}
    for k, it in enumerate(items):
        if isinstance(it, str):
            it = {"id": it}
        if not isinstance(it, dict) or "id" not in it:
            raise NeuralignError(f"stimulus #{k} has no 'id'", path=p)
        sid, role = str(it["id"]), str(it.get("role", "train"))
        if role not in ("train", "test"):
            raise NeuralignError(f"stimulus {sid!r}: role must be train or test, got {role!r}",
                                 path=p)
        if sid in roles:
            raise NeuralignError(f"stimulus {sid!r} listed twice", path=p)
        stimuli.append(sid)
        roles[sid] = role
        reps[sid] = int(it.get("reps", 1))
    eeg = d.get("eeg") or {}
    ch = eeg.get("ch_names")
    nch = eeg.get("n_channels")
    return SessionDesign(
        stimuli=tuple(stimuli), roles=roles, marker_stream=str(d.get("marker_stream", "")),
        n_channels=None if nch is None else int(nch), ch_names=tuple(ch) if ch else None,
        codes={str(k): str(v) for k, v in (d.get("codes") or {}).items()}, reps=reps,
        soa_s=d.get("soa_s"), path=str(p),
    )

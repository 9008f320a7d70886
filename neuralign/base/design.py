"""The session design file: which stimuli a session shows and which of them score (test).

One format, written by the presenter (``neuralign present``) and by the simulated amplifier
(``neuralign simulate-amp --schedule``), read by ``neuralign live`` / ``gui --design`` and
by the orchestrated ``neuralign session``::

    {
      "format": "neuralign-design",
      "version": 1,
      "marker_stream": "neuralign-markers",
      "eeg": {"n_channels": 17, "ch_names": ["Pz", "..."]},        (optional)
      "codes": {"1": "stim_0001"},                                   (optional, int markers)
      "soa_s": 0.2,                                                  (optional, informative)
      "stimuli": [{"id": "stim_0001", "role": "train", "reps": 2},
                  {"id": "stim_0100", "role": "test", "reps": 5}],
      "trials": [{"index": 0, "block": 0, "kind": "stimulus", "stimulus_id": "stim_0001",
                  "marker": "stim_0001", "onset_frame": 30, ...}],  (optional, presenter)
      ...                                                            (more presenter keys)
    }

``role`` is ``train`` or ``test``; the test stimuli are the ones scored (as THINGS-EEG2's test
set). Without a design the engine scores every stimulus by nested cross-validation. Keys this
module does not interpret (``trials``, ``timing``, ``seed``, ``config``...) are kept in
:attr:`SessionDesign.extra` and written back unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NeuralignError

FORMAT = "neuralign-design"
VERSION = 1
ROLES = ("train", "test")
_KNOWN = ("format", "version", "marker_stream", "eeg", "codes", "soa_s", "stimuli")


@dataclass(frozen=True)
class SessionDesign:
    """What a session shows: stimulus ids in order, their roles and repetitions.

    Parameters
    ----------
    stimuli : tuple of str
        Stimulus ids, in design order.
    roles : dict of str to str
        Stimulus id -> ``"train"`` or ``"test"``.
    marker_stream : str
        Name of the LSL marker stream that sends the ids.
    n_channels : int | None
        The EEG channel count the session expects (checked at connect time).
    ch_names : tuple of str | None
        The EEG channel names the session expects.
    codes : dict of str to str
        Integer marker code (as a string) -> stimulus id, for integer marker streams.
    reps : dict of str to int
        Stimulus id -> planned repetitions.
    soa_s : float | None
        Stimulus onset asynchrony in seconds (informative).
    path : str
        The file this design was read from (``""`` when built in memory).
    extra : dict
        Further keys of the file (the presenter's trial list, timing, seed, config...).
    """

    stimuli: tuple[str, ...]
    roles: dict[str, str]
    marker_stream: str = ""
    n_channels: int | None = None
    ch_names: tuple[str, ...] | None = None
    codes: dict[str, str] = field(default_factory=dict)
    reps: dict[str, int] = field(default_factory=dict)
    soa_s: float | None = None
    path: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def test_ids(self) -> list[str]:
        """The scoring stimuli, in design order."""
        return [s for s in self.stimuli if self.roles[s] == "test"]

    @property
    def train_ids(self) -> list[str]:
        """The training stimuli, in design order."""
        return [s for s in self.stimuli if self.roles[s] == "train"]

    def to_dict(self) -> dict:
        """The design file content (see the module docstring).

        Returns
        -------
        dict
            JSON-serialisable.
        """
        d: dict = {"format": FORMAT, "version": VERSION, "marker_stream": self.marker_stream}
        if self.n_channels is not None or self.ch_names:
            d["eeg"] = {"n_channels": self.n_channels,
                        "ch_names": list(self.ch_names) if self.ch_names else None}
        if self.codes:
            d["codes"] = dict(self.codes)
        if self.soa_s is not None:
            d["soa_s"] = self.soa_s
        d["stimuli"] = [{"id": s, "role": self.roles[s], "reps": self.reps.get(s, 1)}
                        for s in self.stimuli]
        d.update({k: v for k, v in self.extra.items() if k not in _KNOWN})
        return d

    def save(self, path: str | Path) -> Path:
        """Write the design file atomically (a reader never sees half a design).

        Parameters
        ----------
        path : str | Path
            The ``.json`` file to write (its folder is created if needed).

        Returns
        -------
        Path
            ``path``.
        """
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        tmp.replace(p)
        return p

    def check_channels(self, n_channels: int, *, stream: str = "") -> None:
        """Refuse an EEG stream whose channel count differs from the design's.

        Parameters
        ----------
        n_channels : int
            Channels of the EEG stream.
        stream : str
            The stream's name, for the message.

        Raises
        ------
        NeuralignError
            Naming the design file, when the counts differ.
        """
        want = self.n_channels if self.n_channels is not None else (
            len(self.ch_names) if self.ch_names else None)
        if want is not None and int(want) != int(n_channels):
            raise NeuralignError(
                f"EEG stream {stream!r} has {n_channels} channels but the session design "
                f"expects {want}", path=self.path or None)


    def check_channel_names(self, ch_names: list[str], *, stream: str = "") -> None:
        """Refuse an EEG stream whose channel names differ from the design's.

        Streams without channel labels (numbered ``ch1, ch2...``) are not checked.

        Parameters
        ----------
        ch_names : list of str
            Channel names of the EEG stream.
        stream : str
            The stream's name, for the message.

        Raises
        ------
        NeuralignError
            Naming the design file, when the names differ (case ignored).
        """
        if not self.ch_names or any(c.startswith("ch") for c in ch_names):
            return
        if [c.lower() for c in self.ch_names] != [c.lower() for c in ch_names]:
            raise NeuralignError(
                f"EEG stream {stream!r} channels {list(ch_names[:5])}... differ from the "
                f"design's {list(self.ch_names[:5])}...", path=self.path or None)


def _stimulus_entries(d: dict, p: Path) -> tuple[list[str], dict[str, str], dict[str, int]]:
    items = d.get("stimuli")
    if not isinstance(items, list) or not items:
        raise NeuralignError("design lists no stimuli", path=p)
    stimuli: list[str] = []
    roles: dict[str, str] = {}
    reps: dict[str, int] = {}
    for k, it in enumerate(items):
        if isinstance(it, str):
            it = {"id": it}
        if not isinstance(it, dict) or "id" not in it:
            raise NeuralignError(f"stimulus #{k} has no 'id'", path=p)
        sid, role = str(it["id"]), str(it.get("role", "train"))
        if role not in ROLES:
            raise NeuralignError(f"stimulus {sid!r}: role must be train or test, got {role!r}",
                                 path=p)
        if sid in roles:
            raise NeuralignError(f"stimulus {sid!r} listed twice", path=p)
        try:
            reps[sid] = int(it.get("reps", 1))
        except (TypeError, ValueError):
            raise NeuralignError(f"stimulus {sid!r}: reps must be a whole number",
                                 path=p) from None
        stimuli.append(sid)
        roles[sid] = role
    return stimuli, roles, reps


def load_design(path: str | Path) -> SessionDesign:
    """Read and validate a design file (see the module docstring for the format).

    Parameters
    ----------
    path : str | Path
        The ``design.json`` file.

    Returns
    -------
    SessionDesign
        With :attr:`SessionDesign.path` set to ``path``.

    Raises
    ------
    NeuralignError
        Missing or malformed file, another format or version, no stimuli, an entry without
        an id, a role other than train/test, a stimulus listed twice.
    """
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NeuralignError("design file not found", path=p) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise NeuralignError(f"not a JSON design file ({e})", path=p) from None
    if not isinstance(d, dict) or d.get("format", FORMAT) != FORMAT:
        raise NeuralignError(f"not a {FORMAT} file", path=p)
    if d.get("version", VERSION) != VERSION:
        raise NeuralignError(f"not a version-{VERSION} {FORMAT} file", path=p)
    stimuli, roles, reps = _stimulus_entries(d, p)
    eeg = d.get("eeg") or {}
    if not isinstance(eeg, dict):
        raise NeuralignError("'eeg' must be an object", path=p)
    ch = eeg.get("ch_names")
    nch = eeg.get("n_channels")
    if nch is not None and (isinstance(nch, bool) or not isinstance(nch, int) or nch < 1):
        raise NeuralignError(f"eeg.n_channels must be a positive whole number, got {nch!r}",
                             path=p)
    if ch is not None and (not isinstance(ch, list) or not all(isinstance(c, str) for c in ch)):
        raise NeuralignError("eeg.ch_names must be a list of strings", path=p)
    codes = d.get("codes") or {}
    if not isinstance(codes, dict):
        raise NeuralignError("'codes' must be an object {code: stimulus id}", path=p)
    soa = d.get("soa_s")
    if soa is not None and (isinstance(soa, bool) or not isinstance(soa, int | float)):
        raise NeuralignError(f"soa_s must be a number, got {soa!r}", path=p)
    return SessionDesign(
        stimuli=tuple(stimuli), roles=roles, marker_stream=str(d.get("marker_stream", "")),
        n_channels=None if nch is None else int(nch), ch_names=tuple(ch) if ch else None,
        codes={str(k): str(v) for k, v in codes.items()}, reps=reps,
        soa_s=soa, path=str(p),
        extra={k: v for k, v in d.items() if k not in _KNOWN},
    )

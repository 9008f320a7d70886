"""Session recording: XDF written as the data stream in, and its re-epocher.

Layout of a recording directory (``OUT_DIR/recording/``):

- ``session.xdf``: XDF 1.0, written incrementally (whole chunks, flushed every 0.25 s).
  Stream 1 = the EEG exactly as received (LSL header with ``desc/channels``, raw LSL
  timestamps, ClockOffset chunks with every ``time_correction`` applied), stream 2 = every
  marker as received, stream 3 = ``neuralign-log`` (JSON strings: settings at start,
  connects/losses/gaps, final counts). Readable by ``pyxdf.load_xdf`` (also truncated).
- ``session.json``: settings, stream metadata, known stimulus ids, test ids; written at
  connect time and rewritten at the end with the final counts.

:func:`load_recording` replays the chunks in file order through the same
:class:`~neuralign.realtime.core.SessionCore` the live session used, so the epochs (and hence
``neuralign analyze --dataset recording:DIR``) equal the live ones.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np

from ..base import EpochData
from ..errors import NeuralignError, NeuralignWarning
from ..lsl import get_pylsl
from . import xdf
from .core import EEG, MARKERS, SessionCore
from .epocher import MarkerClassifier
from .integrity import Integrity, IntegrityTracker
from .settings import EpochSettings
from .xdfread import ReadReport, read_chunks

EEG_ID, MARKER_ID, LOG_ID = 1, 2, 3
FORMAT = "neuralign-recording"


def check_new_recording(out_dir: str | Path) -> None:
    """Refuse (before anything starts) an output folder that already holds a recording.

    Parameters
    ----------
    out_dir : str | Path
        The session's ``--out``: the recording would go to ``out_dir/recording/``.

    Raises
    ------
    NeuralignError
        ``out_dir`` is a file, or ``out_dir/recording/session.xdf`` or ``session.json`` exist.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NeuralignError("--out names an existing file; give a folder", path=out)
    for name in ("session.xdf", "session.json"):
        if (out / "recording" / name).exists():
            raise NeuralignError("a recording is already there; it is never overwritten: "
                                 "choose another --out", path=out / "recording" / name)


class SessionRecorder:
    """Writes one session (call from the acquisition thread only).

    The XDF is created with ``O_EXCL``: an existing recording raises :class:`NeuralignError`
    and is left untouched.
    """

    def __init__(self, out_dir: str | Path, meta: dict, *, eeg_header: str, eeg_format: str,
                 n_channels: int, marker_header: str, marker_format: str,
                 marker_channels: int = 1, flush_s: float = 0.25) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.meta = dict(meta, format=FORMAT, version=1)
        try:  # O_EXCL: an existing recording is never touched
            self.xdf = xdf.XDFWriter(self.dir / "session.xdf", flush_s=flush_s)
        except FileExistsError as e:
            raise NeuralignError("a recording is already there; it is never overwritten: "
                                 "choose another --out", path=self.dir / "session.xdf") from e
        self.write_meta()
        self.xdf.add_stream(EEG_ID, eeg_header, channel_format=eeg_format,
                            channel_count=n_channels)
        self.xdf.add_stream(MARKER_ID, marker_header, channel_format=marker_format,
                            channel_count=marker_channels)
        self.marker_channels = int(marker_channels)
        self.xdf.add_stream(LOG_ID, xdf.stream_header_xml(
            name="neuralign-log", stype="neuralign-log", channel_count=1, nominal_srate=0.0,
            channel_format="string"), channel_format="string", channel_count=1)
        self.marker_format = marker_format
        self.log("settings", meta=self.meta)

    def write_meta(self) -> None:
        """Write ``session.json`` atomically."""
        p = self.dir / "session.json"
        tmp = p.with_name("session.json.tmp")
        tmp.write_text(json.dumps(self.meta, indent=1, default=_plain))
        tmp.replace(p)

    def eeg(self, data: np.ndarray, ts: np.ndarray) -> None:
        """Append an EEG chunk ``data`` (n, C) with raw LSL timestamps ``ts``."""
        self.xdf.write_numeric(EEG_ID, data, ts)

    def markers(self, values, ts) -> None:
        """Marker samples as pulled (every channel; the first one is the marker)."""
        if self.marker_format == "string":
            self.xdf.write_strings(
                MARKER_ID, [[str(x) for x in v] if isinstance(v, list | tuple) else [str(v)]
                            for v in values], ts)
        else:
            arr = np.asarray(values).reshape(len(ts), self.marker_channels)
            self.xdf.write_numeric(MARKER_ID, arr, np.asarray(ts, dtype=float))

    def offset(self, stream: str, collection_time: float, offset: float) -> None:
        """Record a clock offset of ``stream`` measured at ``collection_time``."""
        self.xdf.write_offset(EEG_ID if stream == EEG else MARKER_ID, collection_time, offset)

    def log(self, event: str, *, t: float | None = None, **fields) -> None:
        """Log ``event`` (with ``fields``) at LSL time ``t`` (default now) in the log stream."""
        if t is None:
            t = get_pylsl().local_clock()
        msg = json.dumps({"event": event, **fields}, default=_plain)
        self.xdf.write_strings(LOG_ID, [[msg]], [t])

    def flush(self) -> None:
        """Write what is buffered to disk."""
        self.xdf.flush()

    def close(self, final: dict | None = None) -> None:
        """Log the ``final`` counts, close the XDF and rewrite ``session.json``."""
        if self.xdf.closed:
            return
        if final is not None:
            self.log("final", **final)
            self.meta["final"] = final
        self.meta["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.xdf.close()
        self.write_meta()


def _plain(x):
    if isinstance(x, np.ndarray | np.generic):
        return x.tolist()
    if isinstance(x, set | tuple):
        return list(x)
    return str(x)


# ---------------------------------------------------------------------- reading back
def find_xdf(path: str | Path) -> Path:
    """The ``session.xdf`` of ``path`` (the file, its folder or the session's output folder)."""
    p = Path(path)
    for cand in (p, p / "session.xdf", p / "recording" / "session.xdf"):
        if cand.is_file():
            return cand
    raise NeuralignError("no session.xdf recording found (looked in DIR and DIR/recording)",
                         path=p)


def read_meta(xdf_path: Path) -> dict:
    """``session.json`` beside the XDF, else the settings logged at the start of the XDF."""
    side = xdf_path.with_name("session.json")
    if side.is_file():
        try:
            return json.loads(side.read_text())
        except json.JSONDecodeError:
            pass
    try:
        for ch in read_chunks(xdf_path):
            if ch.tag == xdf.TAG_SAMPLES and ch.stream_id == LOG_ID:
                msg = json.loads(ch.data[0][0])
                if msg.get("event") == "settings":
                    return msg["meta"]
    except (ValueError, KeyError) as e:
        raise NeuralignError(f"unreadable recording ({e})", path=xdf_path) from e
    raise NeuralignError("recording has no session.json and no settings log", path=xdf_path)


def stream_hints(meta: dict) -> dict:
    """Stream id -> ``(format, channels, rate)`` of the EEG and markers from ``session.json``.

    Parameters
    ----------
    meta : dict
        The session's metadata (:func:`read_meta`).

    Returns
    -------
    dict
        For :func:`~neuralign.realtime.xdfread.read_chunks`: a damaged stream header costs nothing.
    """
    out = {}
    for sid, key, srate in ((EEG_ID, "eeg", None), (MARKER_ID, "markers", 0.0)):
        d = meta.get(key)
        if not isinstance(d, dict):
            continue
        try:
            fmt = str(d.get("channel_format") or ("float32" if key == "eeg" else "string"))
            nch = int(d.get("n_channels") or 1)
            fs = float(d.get("sfreq") or 0.0) if srate is None else srate
        except (TypeError, ValueError):
            continue
        if fmt in xdf.NUMERIC or fmt == "string":
            out[sid] = (fmt, nch, fs)
    out[LOG_ID] = ("string", 1, 0.0)
    return out


def replay(path: str | Path, *, on_event=None,
           integrity: list | None = None) -> tuple[SessionCore, dict]:
    """Run a recording through :class:`SessionCore`; call ``on_event(event)`` per marker.

    Damaged chunks are skipped up to the next boundary; the :class:`Integrity` of the read is
    appended to ``integrity`` (a list) when given. Nothing usable (no EEG sample read) is an
    error.
    """
    xp = find_xdf(path)
    meta = read_meta(xp)
    try:
        settings = EpochSettings.from_dict(meta["settings"])
        eeg = meta["eeg"]
        core = SessionCore(
            settings, stream_sfreq=float(eeg["sfreq"]), n_channels=int(eeg["n_channels"]),
            classifier=MarkerClassifier(meta.get("known_ids"), control=settings.control_markers,
                                        codes=meta.get("codes")),
        )
        list(eeg["ch_names"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise NeuralignError(f"malformed session.json: settings/eeg entries missing or of the "
                             f"wrong type ({type(e).__name__}: {e})",
                             path=xp.with_name("session.json")) from None
    emit = on_event or (lambda ev: None)
    rep = ReadReport()
    tracker = IntegrityTracker(rep, eeg_id=EEG_ID, marker_id=MARKER_ID)
    hints = stream_hints(meta)
    tracker.sfreq = hints.get(EEG_ID, ("", 0, 0.0))[2]
    try:
        chunks = read_chunks(xp, report=rep, hints=hints)
        for ch in chunks:
            tracker.see(ch)
            if ch.tag == xdf.TAG_CLOCKOFFSET:
                core.set_offset(EEG if ch.stream_id == EEG_ID else MARKERS, ch.offset)
            elif ch.tag == xdf.TAG_SAMPLES and ch.stream_id == EEG_ID:
                for ev in core.eeg(ch.data, ch.ts):
                    emit(ev)
            elif ch.tag == xdf.TAG_SAMPLES and ch.stream_id == MARKER_ID:
                vals = ch.data if isinstance(ch.data, list) else ch.data[:, 0]
                for ev in core.markers(list(vals), ch.ts):
                    emit(ev)
    except ValueError as e:
        raise NeuralignError(f"unreadable recording ({e})", path=xp) from e
    found: Integrity = tracker.finish(xp)
    if not found.usable:
        raise NeuralignError(f"nothing usable in the recording ({found.summary()})", path=xp)
    if integrity is not None:
        integrity.append(found)
    for ev in core.flush():
        emit(ev)
    return core, meta


def load_recording(path: str | Path, **options) -> EpochData:
    """Re-epoch a live-session recording -> :class:`~neuralign.base.EpochData`.

    ``path`` is the session's output directory, its ``recording/`` folder or the ``.xdf``.
    Epochs come out in the order the live session handed them to the engine; markers with
    ids unknown to the session's features are left out and listed in ``info``.
    """
    ids, epochs = [], []
    rejected: dict[str, int] = {}

    def on_event(ev) -> None:
        if ev.kind == "epoch":
            ids.append(ev.stimulus_id)
            epochs.append(ev.data)
        else:
            rejected[ev.reason] = rejected.get(ev.reason, 0) + 1

    found: list[Integrity] = []
    core, meta = replay(path, on_event=on_event, integrity=found)
    if not found[0].intact:
        warnings.warn(f"{found[0].path}: {found[0].summary()}", NeuralignWarning, stacklevel=2)
    ep = core.epocher
    C, T = ep.n_channels, ep.n_times
    arr = np.stack(epochs) if epochs else np.zeros((0, C, T))
    info = {
        "source": "neuralign live recording",
        "path": str(find_xdf(path)),
        "eeg_stream": meta["eeg"].get("name"),
        "marker_stream": meta.get("markers", {}).get("name"),
        "settings": meta["settings"],
        "epochs_accepted": len(ids),
        "epochs_rejected": dict(rejected),
        "unknown_markers": dict(core.unknown),
        "control_markers": int(sum(core.control.values())),
        "gaps": len(ep.gaps),
        "dropped_samples": int(ep.dropped),
        "integrity": found[0].to_dict(),
    }
    test_ids = meta.get("test_ids")  # exactly the live engine's (they set standardisation)
    return EpochData(arr, np.asarray(ids, dtype=str), ep.times.copy(), list(meta["eeg"]["ch_names"]),
                     test_ids=test_ids, info=info)

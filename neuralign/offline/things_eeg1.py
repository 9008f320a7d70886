"""THINGS-EEG1 (Grootswagers et al. 2022, OpenNeuro ds003825): continuous EEG + events table.

Accepted ``PATH`` (``things-eeg1:PATH``):

- an EEGLAB file ``derivatives/eeglab/sub-XX_task-rsvp_continuous.set`` (250 Hz) with its
  ``sub-XX_task-rsvp_events.csv`` next to it;
- a BIDS subject folder (``sub-XX`` or ``sub-XX/eeg``) holding ``*_eeg.vhdr`` (or ``.set``,
  ``.edf``, ``.fif``) and ``*_events.tsv``;
- any MNE-readable continuous file with an ``*_events.{csv,tsv}`` next to it (or ``events=``).

The events table needs a ``stimname`` column (the image; its file name without folders is the
stimulus id, e.g. ``stimuli/aardvark/aardvark_01b.jpg`` -> ``aardvark_01b.jpg``) and the onset
as ``sample``/``latency`` (samples) or ``onset`` (seconds; a column whose values exceed the
recording length in seconds is taken as samples). Rows without a stimulus name are skipped.
A column ``isteststim``/``istest``/``is_test`` marks the test images (they score; the rest
train); without one, nested cross-validation over all images is used.

Epochs: ``tmin..tmax`` around each onset (default -0.2..0.8 s), baseline ``(None, 0)``,
optional resampling (default 100 Hz, as THINGS-EEG2) and channel selection (``picks`` regexp;
default all EEG channels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..base import EpochData
from ..errors import NeuralignError, few
from .tables import missing_value, read_table, truthy

RAW_SUFFIXES = (".set", ".vhdr", ".edf", ".bdf", ".fif", ".gdf", ".cnt")
_TEST_COLS = ("isteststim", "istest", "is_test", "test")


def _find_raw(path: Path) -> Path:
    if path.is_file():
        return path
    if not path.is_dir():
        raise NeuralignError("THINGS-EEG1 path not found", path=path)
    for d in (path, path / "eeg"):
        for suf in RAW_SUFFIXES:
            cands = sorted(d.glob(f"*{suf}"))
            if len(cands) == 1:
                return cands[0]
            if len(cands) > 1:
                raise NeuralignError(
                    f"{len(cands)} {suf} files ({few([c.name for c in cands], 3)}): give one file",
                    path=d)
    raise NeuralignError(f"no continuous EEG file ({', '.join(RAW_SUFFIXES)}) found", path=path)


def _find_events(raw_path: Path) -> Path:
    stem = raw_path.name[: -len(raw_path.suffix)]
    for tag in ("_continuous", "_eeg"):
        if stem.endswith(tag):
            stem = stem[: -len(tag)]
    for suf in (".csv", ".tsv"):
        cand = raw_path.with_name(f"{stem}_events{suf}")
        if cand.is_file():
            return cand
    others = sorted(raw_path.parent.glob("*_events.csv")) + sorted(raw_path.parent.glob("*_events.tsv"))
    if len(others) == 1:
        return others[0]
    raise NeuralignError(
        f"no events table ({stem}_events.csv or .tsv) next to the EEG file: THINGS-EEG1 needs the "
        "events with 'stimname' (give it with events=)",
        path=raw_path,
    )


def _read_raw(path: Path):
    import mne

    try:
        if path.suffix == ".set":
            return mne.io.read_raw_eeglab(path, preload=True, verbose=False)
        return mne.io.read_raw(path, preload=True, verbose=False)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
        raise NeuralignError(f"unreadable EEG file ({type(e).__name__}: {e})", path=path) from None


def load_things_eeg1(
    path: str | Path,
    *,
    events: str | Path | None = None,
    id_column: str = "stimname",
    tmin: float = -0.2,
    tmax: float = 0.8,
    sfreq: float | None = 100.0,
    picks: str | None = None,
    **_ignored,
) -> EpochData:
    """Epoch a THINGS-EEG1 subject into :class:`EpochData` (see the module docstring)."""
    import mne

    raw_path = _find_raw(Path(path))
    ev_path = Path(events) if events is not None else _find_events(raw_path)
    rows = read_table(ev_path)
    cols = set(rows[0])
    if id_column not in cols:
        raise NeuralignError(f"no {id_column!r} column (columns: {few(sorted(cols), 12)})",
                             path=ev_path)
    raw = _read_raw(raw_path)
    raw.pick("eeg")
    if picks:
        idx = mne.pick_channels_regexp(raw.ch_names, picks)
        if len(idx) == 0:
            raise NeuralignError(f"no channel matches {picks!r}", path=raw_path)
        raw.pick([raw.ch_names[i] for i in idx])
    fs = raw.info["sfreq"]
    n_times = raw.n_times
    if "sample" in cols or "latency" in cols:
        col = "sample" if "sample" in cols else "latency"
        scale, unit = 1.0, "samples"
    elif "onset" in cols:
        col, scale, unit = "onset", fs, "seconds"
    else:
        raise NeuralignError("no onset column ('onset' in s, or 'sample'/'latency')", path=ev_path)
    onsets, ids, is_test = [], [], []
    test_col = next((c for c in _TEST_COLS if c in cols), None)
    for i, r in enumerate(rows):
        name = r.get(id_column, "")
        if missing_value(name):
            continue
        try:
            onsets.append(float(r[col]))
        except ValueError:
            raise NeuralignError(f"row {i + 2}: {col}={r[col]!r} is not a number",
                                 path=ev_path) from None
        ids.append(Path(name.replace("\\", "/")).name)
        is_test.append(truthy(r[test_col]) if test_col else False)
    if not ids:
        raise NeuralignError(f"no rows with a {id_column!r}", path=ev_path)
    on = np.asarray(onsets)
    if unit == "seconds" and on.max() > n_times / fs:
        scale, unit = 1.0, "samples (the onsets exceed the recording length in seconds)"
    samples = np.round(on * scale).astype(np.int64)
    if col == "latency":  # EEGLAB latencies are 1-based
        samples -= 1
    events_arr = np.column_stack([samples + raw.first_samp, np.zeros_like(samples),
                                  np.arange(1, len(ids) + 1)])
    ep = mne.Epochs(raw, events_arr, event_id=None, tmin=tmin, tmax=tmax, baseline=(None, 0),
                    preload=True, reject_by_annotation=False, verbose=False, on_missing="ignore")
    if sfreq and sfreq < fs:
        ep.resample(sfreq, verbose=False)
    kept = ep.events[:, 2] - 1
    dropped = len(ids) - kept.size
    ids_arr = np.asarray(ids)[kept]
    test_ids = sorted({s for s, t in zip(ids, is_test) if t}) if test_col else None
    info = {
        "source": "things-eeg1",
        "file": str(raw_path.resolve()),
        "events": str(ev_path.resolve()),
        "subject": raw_path.name.split("_")[0],
        "onset_column": f"{col} ({unit})",
        "raw_sfreq": fs,
        "epochs_outside_recording": int(dropped),
        "preprocessing": {"tmin": tmin, "tmax": tmax, "baseline": [None, 0], "sfreq": sfreq,
                          "picks": picks},
    }
    return EpochData(epochs=ep.get_data(copy=False).astype(np.float32), stimulus_ids=ids_arr,
                     times=ep.times.copy(), ch_names=list(ep.ch_names),
                     test_ids=test_ids or None, info=info)

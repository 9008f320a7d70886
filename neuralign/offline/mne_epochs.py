"""Any MNE ``-epo.fif`` with an event-to-stimulus mapping (``mne-epochs:PATH``).

The stimulus of each epoch comes from, in this order:

1. ``mapping=FILE`` (option), else a file next to the epochs named ``<base>_stimuli.{tsv,csv,json}``
   (``<base>`` = the file name without ``-epo.fif``) or ``stimuli.{tsv,csv,json}``;
2. a ``stimulus_id`` column in the epochs' own metadata.

Mapping file formats:

- JSON object ``{"<event name or code>": "<stimulus id>", ...}``;
- CSV/TSV with columns ``event`` (event name or integer code) and ``stimulus_id``: one row per
  event type;
- CSV/TSV with only ``stimulus_id`` (and optionally ``epoch``): one row per epoch, in order.

An optional ``is_test`` (or ``test``) column marks test stimuli (they score; the rest train).
Epochs of events the mapping does not name are refused (list them) unless ``drop_unmapped=True``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..base import EpochData
from ..errors import NeuralignError, few
from .tables import missing_value, read_table, truthy

_SUFFIXES = (".tsv", ".csv", ".json")


def _default_mapping(fif: Path) -> Path | None:
    name = fif.name
    base = name[: -len("-epo.fif")] if name.endswith("-epo.fif") else fif.stem
    for suf in _SUFFIXES:
        for cand in (fif.with_name(f"{base}_stimuli{suf}"), fif.with_name(f"stimuli{suf}")):
            if cand.is_file():
                return cand
    return None


def _read_mapping(path: Path) -> tuple[dict[str, str] | None, list[str] | None, set[str]]:
    """-> (event -> id, or None), (per-epoch ids, or None), test ids."""
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise NeuralignError(f"unreadable JSON mapping ({e})", path=path) from None
        if not isinstance(obj, dict) or not all(isinstance(v, str) for v in obj.values()):
            raise NeuralignError('expected a JSON object {"event": "stimulus_id"}', path=path)
        return {str(k): v for k, v in obj.items()}, None, set()
    rows = read_table(path)
    cols = set(rows[0])
    if "stimulus_id" not in cols:
        raise NeuralignError(f"no 'stimulus_id' column (columns: {few(sorted(cols))})", path=path)
    tcol = "is_test" if "is_test" in cols else "test" if "test" in cols else None
    test = {r["stimulus_id"] for r in rows if tcol and truthy(r[tcol])}
    if "event" in cols:
        m: dict[str, str] = {}
        for r in rows:
            if r["event"] in m and m[r["event"]] != r["stimulus_id"]:
                raise NeuralignError(f"event {r['event']!r} maps to two stimuli", path=path)
            m[r["event"]] = r["stimulus_id"]
        return m, None, test
    return None, [r["stimulus_id"] for r in rows], test


def load_mne_epochs(
    path: str | Path,
    *,
    mapping: str | Path | None = None,
    drop_unmapped: bool = False,
    picks: str | None = None,
    **_ignored,
) -> EpochData:
    """Read an MNE epochs file and tag each epoch with its stimulus id."""
    import mne

    fif = Path(path)
    if not fif.is_file():
        raise NeuralignError("epochs file not found", path=fif)
    try:
        ep = mne.read_epochs(fif, preload=True, verbose=False)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
        raise NeuralignError(f"not a readable MNE epochs file ({type(e).__name__}: {e})",
                             path=fif) from None
    ep.pick("data", exclude="bads")
    if picks:
        idx = mne.pick_channels_regexp(ep.ch_names, picks)
        if len(idx) == 0:
            raise NeuralignError(f"no channel matches {picks!r}", path=fif)
        ep.pick([ep.ch_names[i] for i in idx])
    map_path = Path(mapping) if mapping is not None else _default_mapping(fif)
    test: set[str] = set()
    if map_path is not None:
        if not map_path.is_file():
            raise NeuralignError("mapping file not found", path=map_path)
        ev_map, per_epoch, test = _read_mapping(map_path)
        if per_epoch is not None:
            if len(per_epoch) != len(ep):
                raise NeuralignError(f"{len(per_epoch)} rows for {len(ep)} epochs", path=map_path)
            ids = np.asarray(per_epoch, dtype=str)
        else:
            assert ev_map is not None
            code_to_name = {v: k for k, v in ep.event_id.items()}
            ids_l: list[str | None] = []
            for code in ep.events[:, 2]:
                name = code_to_name.get(int(code))
                sid = ev_map.get(name) if name is not None else None
                if sid is None:
                    sid = ev_map.get(str(int(code)))
                ids_l.append(sid)
            unmapped = sorted({f"{code_to_name.get(int(c), c)}" for c, s in
                               zip(ep.events[:, 2], ids_l) if s is None})
            if unmapped and not drop_unmapped:
                raise NeuralignError(
                    f"{len(unmapped)} event type(s) have no stimulus in the mapping: "
                    f"{few(unmapped)} (map them, or pass drop_unmapped=True)", path=map_path)
            keep = np.array([s is not None for s in ids_l])
            ep = ep[np.where(keep)[0]] if not keep.all() else ep
            ids = np.asarray([s for s in ids_l if s is not None], dtype=str)
        source = str(map_path.resolve())
    elif ep.metadata is not None and "stimulus_id" in ep.metadata.columns:
        ids = ep.metadata["stimulus_id"].astype(str).to_numpy()
        if "is_test" in ep.metadata.columns:
            test = set(ids[ep.metadata["is_test"].astype(bool).to_numpy()].tolist())
        source = "epochs metadata"
    else:
        raise NeuralignError(
            "no event-to-stimulus mapping: give mapping=FILE, put a <name>_stimuli.tsv next to "
            "the epochs, or a 'stimulus_id' column in the epochs metadata", path=fif)
    if any(missing_value(s) for s in ids):
        raise NeuralignError("some epochs have an empty stimulus id", path=map_path or fif)
    info = {"source": "mne-epochs", "file": str(fif.resolve()), "mapping": source,
            "subject": fif.name.split("_")[0].replace("-epo.fif", ""),
            "sfreq": float(ep.info["sfreq"])}
    return EpochData.from_mne(ep, stimulus_ids=ids, test_ids=sorted(test) or None, info=info)

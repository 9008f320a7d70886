"""Captions of stimuli, for text features (``neuralign features --text SOURCE``).

Sources: ``concepts`` (the concept names of the stimulus set: THINGS metadata concepts, the
sub-folder an image lies in, or the built-in images' names), or a file mapping stimulus ids to
captions: a JSON object ``{id: caption}`` or a text file with ``id<TAB>caption`` lines.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import NeuralignError, few
from .stimuli import StimulusSet


def read_captions_file(path: str | Path) -> dict[str, str]:
    """``{id: caption}`` from a JSON object or a ``id<TAB>caption`` text file.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    dict of str to str
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NeuralignError("captions file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise NeuralignError(f"captions file is not readable text ({type(e).__name__})",
                             path=path) from None
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise NeuralignError(f"captions file is not JSON ({e.msg}, line {e.lineno})",
                                 path=path) from None
        if not isinstance(obj, dict) or not all(isinstance(v, str) for v in obj.values()):
            raise NeuralignError("a JSON captions file must be an object {id: caption}",
                                 path=path)
        return {str(k): v.strip() for k, v in obj.items()}
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        sid, sep, cap = line.partition("\t")
        if not sep or not cap.strip():
            raise NeuralignError(f"line {n}: expected 'id<TAB>caption'", path=path)
        out[sid.strip()] = cap.strip()
    return out


def stimulus_captions(stim: StimulusSet, source: str) -> tuple[dict[str, str], dict]:
    """One caption per stimulus of ``stim``.

    Parameters
    ----------
    stim : StimulusSet
        The stimuli.
    source : str
        ``concepts`` or a captions file.

    Returns
    -------
    (dict, dict)
        ``{id: caption}`` for every stimulus, and a provenance record.
    """
    if source == "concepts":
        if not stim.concepts:
            raise NeuralignError(
                "this stimulus source has no concept names (THINGS metadata, images in concept "
                "sub-folders, or 'builtin'); give a captions file with --text FILE",
                path=None if stim.source == "builtin" else stim.source)
        caps, record = dict(stim.concepts), {"source": "concepts"}
    else:
        caps = read_captions_file(source)
        record = {"source": str(Path(source).resolve())}
    missing = [s for s in stim.ids if not caps.get(s)]
    if missing:
        raise NeuralignError(f"{len(missing)} stimulus id(s) have no caption: {few(missing)}",
                             path=None if source == "concepts" else source)
    return {s: caps[s] for s in stim.ids}, record

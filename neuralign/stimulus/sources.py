"""Stimulus sources: from a config ``source`` string to a list of :class:`Stimulus`.

Sources
-------
``builtin``
    The built-in natural image set; the caller provides it (``builtin=``), so the presenter
    needs nothing but the ground (``neuralign present`` passes the set of
    :mod:`neuralign.models.stimuli`).
``folder:PATH`` (or a bare folder path)
    Every image file in ``PATH`` (recursively); id = file stem (relative path with ``/`` when
    stems collide across sub-folders): :func:`neuralign.base.stimuli.folder_stimuli`.
``things:PATH`` (or a bare folder path with ``image_metadata.npy``)
    A THINGS image folder; id = the file name as ``image_metadata.npy`` lists it
    (``aardvark_01b.jpg``, as the THINGS-EEG2 EEG and ``neuralign features`` use it), role
    from the metadata (train / test): :func:`neuralign.base.stimuli.things_stimuli`.
``features:PATH``
    The stimuli of a feature file (``.npz`` interchange or feature cache); images looked up by
    id in ``stimuli.images`` (a folder) or, failing that, in the built-in set.

Images are checked (fully decoded) before a run: unknown or unreadable images are refused,
naming them, before any window opens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ..base.stimuli import Stimulus, folder_stimuli, is_things_folder, things_stimuli
from ..errors import NeuralignError, few
from ..io.features import load_features
from .config import RESERVED_MARKERS

#: Provides the built-in stimulus set (see the module docstring).
BuiltinSet = Callable[[], list[Stimulus]]


def feature_stimuli(features: str | Path, *, images: str | Path | None,
                    builtin: BuiltinSet | None = None) -> list[Stimulus]:
    """The stimuli of a feature file, with their images.

    Parameters
    ----------
    features : str | Path
        A features file (``.npz`` interchange format or feature cache).
    images : str | Path | None
        A folder holding an image for every id (by file stem); ``None`` uses ``builtin``.
    builtin : callable | None
        Provides the built-in stimulus set.

    Returns
    -------
    list of Stimulus
        In the order of the features' rows.

    Raises
    ------
    NeuralignError
        Naming the ids that have no image.
    """
    fs = load_features(features)
    ids = [str(s) for s in fs.stimulus_ids]
    if images:
        pool = {s.id: s for s in folder_stimuli(images)}
    else:
        pool = {s.id: s for s in builtin()} if builtin is not None else {}
    unknown = [i for i in ids if i not in pool]
    if unknown:
        where = f"in {images}" if images else "in the built-in set (set stimuli.images = FOLDER)"
        raise NeuralignError(
            f"{len(unknown)} stimulus id(s) of the features have no image {where}: {few(unknown)}",
            path=features,
        )
    return [pool[i] for i in ids]


def resolve_source(source: str, *, images: str = "", resolve: Callable[[str], Path] = Path,
                   builtin: BuiltinSet | None = None) -> list[Stimulus]:
    """Stimuli for a ``source`` string (see the module docstring).

    Parameters
    ----------
    source : str
        ``builtin``, ``folder:PATH``, ``things:PATH``, ``features:PATH`` or a folder path.
    images : str
        Image folder for ``features:`` sources.
    resolve : callable
        Maps a path string from the config to a Path (relative to the config file).
    builtin : callable | None
        Provides the built-in stimulus set (needed for ``builtin``).

    Returns
    -------
    list of Stimulus
        With unique ids that are not reserved marker words.
    """
    kind, _, rest = source.partition(":")
    if source == "builtin":
        if builtin is None:
            raise NeuralignError("the built-in stimulus set is not available here; use "
                                 "source = \"folder:PATH\"")
        stimuli = builtin()
    elif kind == "folder" and rest:
        stimuli = folder_stimuli(resolve(rest))
    elif kind == "things" and rest:
        stimuli = things_stimuli(resolve(rest))
    elif kind == "features" and rest:
        stimuli = feature_stimuli(resolve(rest), images=resolve(images) if images else None,
                                  builtin=builtin)
    elif resolve(source).is_dir():
        folder = resolve(source)
        stimuli = things_stimuli(folder) if is_things_folder(folder) else folder_stimuli(folder)
    else:
        raise NeuralignError(
            f"unknown stimulus source {source!r}: use builtin, folder:PATH, things:PATH or "
            "features:PATH"
        )
    check_ids(stimuli)
    return stimuli


def check_ids(stimuli: Sequence[Stimulus]) -> None:
    """Refuse duplicate ids and ids that collide with the presenter's control markers.

    Parameters
    ----------
    stimuli : sequence of Stimulus
        The stimuli of a source.

    Raises
    ------
    NeuralignError
        Naming the offending ids.
    """
    seen: set[str] = set()
    dup = [s.id for s in stimuli if s.id in seen or seen.add(s.id)]
    if dup:
        raise NeuralignError(f"duplicate stimulus ids: {few(dup)}")
    bad = [s.id for s in stimuli if s.id in RESERVED_MARKERS or not s.id.strip()]
    if bad:
        raise NeuralignError(
            f"stimulus ids that are empty or reserved marker words ({', '.join(RESERVED_MARKERS)}):"
            f" {few(bad)}"
        )


def check_readable(stimuli: Iterable[Stimulus], *, progress: bool = True) -> None:
    """Fully decode every image once; refuse the unreadable ones, naming them.

    Raises
    ------
    NeuralignError
        Listing every image that is missing or cannot be decoded.
    """
    from tqdm import tqdm

    stimuli = list(stimuli)
    bad: list[str] = []
    for stim in tqdm(stimuli, desc="checking images", unit="img", disable=not progress,
                     leave=False):
        try:
            im = stim.open()
            if im.width < 1 or im.height < 1:
                raise ValueError("empty image")
        except Exception as e:  # any decoder failure means "unreadable"
            bad.append(f"{stim.origin} ({type(e).__name__})")
    if bad:
        raise NeuralignError(f"{len(bad)} unreadable image(s), refused before the run: {few(bad)}")

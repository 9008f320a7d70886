"""Stimulus sources: from a config ``source`` string to a list of ids and images.

Sources
-------
``builtin``
    The built-in natural image set (:func:`neuralign.models.stimuli.builtin_stimuli`).
``folder:PATH`` (or a bare folder path)
    Every image file in ``PATH`` (recursively); id = file stem (relative path with ``/`` when
    stems collide across sub-folders).
``things:PATH``
    A THINGS-EEG2 image folder: ``image_metadata.npy`` (read with the restricted unpickler)
    plus ``training_images/<concept>/<file>`` and ``test_images/<concept>/<file>``; id = file
    stem (``aardvark_01b``), role from the metadata (train / test).
``features:PATH``
    The stimuli of a feature file (``.npz`` interchange or feature cache); images looked up by
    id in ``stimuli.images`` (a folder) or, failing that, in the built-in set.

Images are checked (fully decoded) before a run: unknown or unreadable images are refused,
naming them, before any window opens.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NeuralignError, few

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass
class Stimulus:
    """One image: its id, where it comes from, and the role the source suggests."""

    id: str
    path: Path | None = None  # image file, or None for in-memory images
    role: str = ""  # "train" | "test" | "" (the design decides)
    _image: Any = None  # a PIL image or an (H, W[, 3]) uint8 array for in-memory images

    def open(self):
        """The image as an RGB ``PIL.Image`` (fully decoded)."""
        from PIL import Image

        if self.path is not None:
            with Image.open(self.path) as im:
                im.load()
                return im.convert("RGB")
        image = self._image
        if isinstance(image, Image.Image):
            return image.convert("RGB")
        import numpy as np

        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr).convert("RGB")

    @property
    def origin(self) -> str:
        """Where the image comes from, for messages."""
        return str(self.path) if self.path is not None else f"<{self.id}>"


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def folder_stimuli(folder: str | Path) -> list[Stimulus]:
    """Every image file under ``folder`` (sorted), id = file stem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NeuralignError("stimulus folder not found", path=folder)
    files = sorted(p for p in folder.rglob("*") if _is_image(p))
    if not files:
        raise NeuralignError(
            f"no image files ({', '.join(IMAGE_SUFFIXES)}) in the stimulus folder", path=folder
        )
    stems = [p.stem for p in files]
    if len(set(stems)) == len(stems):
        ids = stems
    else:
        ids = [p.relative_to(folder).with_suffix("").as_posix() for p in files]
    return [Stimulus(id=i, path=p) for i, p in zip(ids, files)]


def things_stimuli(folder: str | Path) -> list[Stimulus]:
    """A THINGS-EEG2 image folder, train/test roles from ``image_metadata.npy``."""
    from ..io.safe_pickle import load_npy

    folder = Path(folder)
    meta_path = folder / "image_metadata.npy"
    if not meta_path.is_file():
        raise NeuralignError("no image_metadata.npy in the THINGS image folder", path=folder)
    meta = load_npy(meta_path)
    if not isinstance(meta, dict):
        raise NeuralignError("image_metadata.npy does not hold a dict", path=meta_path)
    out: list[Stimulus] = []
    missing: list[str] = []
    for role, sub in (("train", "training_images"), ("test", "test_images")):
        files = meta.get(f"{role}_img_files")
        concepts = meta.get(f"{role}_img_concepts")
        if files is None or concepts is None:
            raise NeuralignError(
                f"image_metadata.npy lacks {role}_img_files / {role}_img_concepts", path=meta_path
            )
        if len(files) != len(concepts):
            raise NeuralignError(
                f"{role}_img_files and {role}_img_concepts differ in length", path=meta_path
            )
        for file, concept in zip(files, concepts):
            path = folder / sub / str(concept) / str(file)
            if not path.is_file():
                missing.append(str(path))
                continue
            out.append(Stimulus(id=Path(str(file)).stem, path=path, role=role))
    if missing:
        raise NeuralignError(
            f"{len(missing)} image(s) listed in image_metadata.npy are missing: {few(missing)}",
            path=folder,
        )
    return out


def _builtin_module():
    try:
        return importlib.import_module("neuralign.models.stimuli")
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("neuralign"):
            raise NeuralignError(
                "the built-in stimulus set is not available in this installation "
                "(neuralign.models.stimuli); use source = \"folder:PATH\""
            ) from None
        raise


def _as_stimulus(item: Any, key: Any = None) -> Stimulus:
    """Normalise one entry of ``builtin_stimuli()`` (several shapes accepted)."""
    if isinstance(item, Stimulus):
        return item
    if key is not None:  # mapping id -> image or path
        sid, value = key, item
    elif isinstance(item, tuple) and len(item) == 2:
        sid, value = item
    else:
        sid = getattr(item, "id", None) or getattr(item, "stimulus_id", None)
        value = None
        for attr in ("path", "image", "array", "pixels"):
            value = getattr(item, attr, None)
            if callable(value) and attr != "path":
                value = value()
            if value is not None:
                break
        if value is None and callable(getattr(item, "load", None)):
            value = item.load()
    if sid is None or value is None:
        raise NeuralignError(f"cannot read built-in stimulus entry {item!r}")
    if isinstance(value, (str, Path)):
        return Stimulus(id=str(sid), path=Path(value))
    return Stimulus(id=str(sid), _image=value)


def builtin_stimuli() -> list[Stimulus]:
    """The built-in natural image set, as :class:`Stimulus` objects."""
    mod = _builtin_module()
    items = mod.builtin_stimuli()
    if isinstance(items, dict):
        return [_as_stimulus(v, k) for k, v in items.items()]
    ids = getattr(items, "stimulus_ids", None) or getattr(items, "ids", None)
    images = getattr(items, "images", None)
    if ids is not None and images is not None:
        return [_as_stimulus(im, sid) for sid, im in zip(ids, images)]
    return [_as_stimulus(item) for item in items]


def feature_stimuli(features: str | Path, *, images: str | Path | None) -> list[Stimulus]:
    """The stimuli of a feature file, with images from ``images`` (folder) or the built-ins."""
    from ..io.features import load_features

    fs = load_features(features)
    ids = [str(s) for s in fs.stimulus_ids]
    pool: dict[str, Stimulus] = {}
    if images:
        pool = {s.id: s for s in folder_stimuli(images)}
    else:
        try:
            pool = {s.id: s for s in builtin_stimuli()}
        except NeuralignError:
            pool = {}
    unknown = [i for i in ids if i not in pool]
    if unknown:
        where = f"in {images}" if images else "in the built-in set (set stimuli.images = FOLDER)"
        raise NeuralignError(
            f"{len(unknown)} stimulus id(s) of the features have no image {where}: {few(unknown)}",
            path=features,
        )
    return [pool[i] for i in ids]


def resolve_source(
    source: str, *, images: str = "", resolve: Callable[[str], Path] = Path
) -> list[Stimulus]:
    """Stimuli for a ``source`` string (see module docstring).

    Parameters
    ----------
    source : str
        ``builtin``, ``folder:PATH``, ``things:PATH``, ``features:PATH`` or a folder path.
    images : str
        Image folder for ``features:`` sources.
    resolve : callable
        Maps a path string from the config to a Path (relative to the config file).
    """
    kind, _, rest = source.partition(":")
    if source == "builtin":
        stimuli = builtin_stimuli()
    elif kind == "folder" and rest:
        stimuli = folder_stimuli(resolve(rest))
    elif kind == "things" and rest:
        stimuli = things_stimuli(resolve(rest))
    elif kind == "features" and rest:
        stimuli = feature_stimuli(resolve(rest), images=resolve(images) if images else None)
    elif resolve(source).is_dir():  # a bare folder: THINGS if it has the metadata
        folder = resolve(source)
        if (folder / "image_metadata.npy").is_file():
            stimuli = things_stimuli(folder)
        else:
            stimuli = folder_stimuli(folder)
    else:
        raise NeuralignError(
            f"unknown stimulus source {source!r}: use builtin, folder:PATH, things:PATH or "
            "features:PATH"
        )
    check_ids(stimuli)
    return stimuli


def check_ids(stimuli: Sequence[Stimulus]) -> None:
    """Refuse duplicate ids and ids that collide with the presenter's control markers."""
    from .config import RESERVED_MARKERS

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

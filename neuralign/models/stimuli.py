"""The built-in stimulus set and stimulus sources (image folder, THINGS folder, ``builtin``).

The built-in set is made of real natural photographs that ship inside installed packages
(scikit-image ``skimage.data`` and scikit-learn ``load_sample_images``), nothing downloaded.
Each base photograph gives six stimuli: the full image and five square crops (four corners and
centre, 60% of the shorter side), so there are enough items for encoding and RSA. Ids are stable
(``astronaut``, ``astronaut_tl``, ...).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..base.stimuli import IMAGE_SUFFIXES, Stimulus, folder_ids, things_stimuli
from ..errors import NeuralignError
from ..io import things
from ..io.hashing import file_sha256

__all__ = ["StimulusSet", "builtin_arrays", "builtin_ids", "builtin_set", "builtin_stimuli",
           "file_sha256", "folder_set", "open_source", "pixels", "read_image", "things_set",
           "write_builtin_stimuli"]

CROPS = ("tl", "tr", "bl", "br", "c")
CROP_FRACTION = 0.6


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        """The image as an array."""
        import skimage.data as d

        if name.startswith("motorcycle_"):
            left, right = d.stereo_motorcycle()[:2]
            return left if name.endswith("left") else right
        return getattr(d, name)()

    return load


def _sklearn(fname: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        """The image as an array."""
        from sklearn.datasets import load_sample_image

        return load_sample_image(fname)

    return load


# id -> (source description, loader). Only images that ship locally inside the packages.
BASE_IMAGES: dict[str, tuple[str, Callable[[], np.ndarray]]] = {
    "astronaut": ("skimage.data.astronaut", _skimage("astronaut")),
    "chelsea": ("skimage.data.chelsea", _skimage("chelsea")),
    "coffee": ("skimage.data.coffee", _skimage("coffee")),
    "rocket": ("skimage.data.rocket", _skimage("rocket")),
    "motorcycle_left": ("skimage.data.stereo_motorcycle[0]", _skimage("motorcycle_left")),
    "motorcycle_right": ("skimage.data.stereo_motorcycle[1]", _skimage("motorcycle_right")),
    "cat": ("skimage.data.cat", _skimage("cat")),
    "camera": ("skimage.data.camera", _skimage("camera")),
    "coins": ("skimage.data.coins", _skimage("coins")),
    "moon": ("skimage.data.moon", _skimage("moon")),
    "hubble": ("skimage.data.hubble_deep_field", _skimage("hubble_deep_field")),
    "clock": ("skimage.data.clock", _skimage("clock")),
    "grass": ("skimage.data.grass", _skimage("grass")),
    "gravel": ("skimage.data.gravel", _skimage("gravel")),
    "brick": ("skimage.data.brick", _skimage("brick")),
    "china": ("sklearn.datasets.load_sample_image('china.jpg')", _sklearn("china.jpg")),
    "flower": ("sklearn.datasets.load_sample_image('flower.jpg')", _sklearn("flower.jpg")),
}


def _to_rgb(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.shape[2] == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a.astype(np.uint8))


def _crop(a: np.ndarray, where: str) -> np.ndarray:
    h, w = a.shape[:2]
    s = int(round(CROP_FRACTION * min(h, w)))
    top = {"t": 0, "b": h - s, "c": (h - s) // 2}[where[0]]
    left = {"l": 0, "r": w - s, "c": (w - s) // 2}[where[-1]]
    return np.ascontiguousarray(a[top : top + s, left : left + s])


def builtin_ids() -> list[str]:
    """The stable ids of the built-in stimuli, in order."""
    return [i for b in BASE_IMAGES for i in (b, *(f"{b}_{c}" for c in CROPS))]


def builtin_arrays() -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(id, uint8 RGB array (H, W, 3))`` for every built-in stimulus."""
    for base, (_, load) in BASE_IMAGES.items():
        a = _to_rgb(load())
        yield base, a
        for c in CROPS:
            yield f"{base}_{c}", _crop(a, c)


def builtin_stimuli() -> list[tuple[str, object]]:
    """The built-in stimulus set as ``[(id, PIL.Image RGB), ...]`` (stable ids, stable order)."""
    from PIL import Image

    return [(sid, Image.fromarray(a, mode="RGB")) for sid, a in builtin_arrays()]


def write_builtin_stimuli(folder: str | Path) -> list[Path]:
    """Write the built-in stimuli as ``<id>.png`` into ``folder``; return the paths."""
    from PIL import Image

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for sid, a in builtin_arrays():
        p = out / f"{sid}.png"
        Image.fromarray(a, mode="RGB").save(p)
        paths.append(p)
    return paths


def array_sha256(a: np.ndarray) -> str:
    """Hash of an image array's shape, dtype and bytes."""
    h = hashlib.sha256(f"{a.shape}|{a.dtype}|".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------- sources
def pixels(stim: Stimulus) -> np.ndarray:
    """A stimulus's pixels as uint8 RGB ``(H, W, 3)``; a one-line error if unreadable."""
    if stim.image is not None:
        return np.asarray(stim.image)
    return read_image(stim.path)


@dataclass
class StimulusSet:
    """An ordered list of stimuli plus where they come from."""

    name: str
    source: str
    stimuli: list[Stimulus]
    test_ids: list[str] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    concepts: dict[str, str] | None = None

    @property
    def ids(self) -> list[str]:
        """Stimulus ids, in order."""
        return [s.id for s in self.stimuli]

    def hashes(self) -> dict[str, str]:
        """Stimulus id -> content sha256."""
        return {s.id: s.sha256 for s in self.stimuli}


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 RGB; a one-line error if it is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise NeuralignError(f"not a readable image ({type(e).__name__})", path=path) from e


def _check_image(path: Path) -> str | None:
    """None if ``path`` is a readable image, else the reason."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.verify()
        return None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        return type(e).__name__


def builtin_set() -> StimulusSet:
    """The built-in stimulus set as a :class:`StimulusSet` (no test split)."""
    stimuli = [Stimulus(id=sid, sha256=array_sha256(a), image=a) for sid, a in builtin_arrays()]
    concepts = {}
    for s in stimuli:
        base = next(b for b in BASE_IMAGES if s.id == b or s.id.startswith(b + "_"))
        concepts[s.id] = base.split("_")[0]
    return StimulusSet("builtin", "builtin", stimuli, concepts=concepts)


def folder_set(folder: str | Path) -> StimulusSet:
    """All images under ``folder`` (recursively); ids are file stems (or relative paths when
    stems collide). Unreadable or non-image files are skipped and counted."""
    root = Path(folder)
    if not root.is_dir():
        raise NeuralignError("stimulus folder does not exist", path=root)
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    skipped: list[tuple[str, str]] = []
    images = []
    for p in files:
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            if p.suffix.lower() not in (".npy", ".txt", ".json", ".csv", ".md"):
                skipped.append((str(p), "not an image file name"))
            continue
        why = _check_image(p)
        if why:
            skipped.append((str(p), why))
        else:
            images.append(p)
    if not images:
        raise NeuralignError("no readable images in this folder", path=root)
    stimuli = [Stimulus(id=i, sha256=file_sha256(p), path=p)
               for i, p in zip(folder_ids(images, root), images)]
    # images in sub-folders (THINGS-style `concept/image.jpg`): the folder names the concept
    concepts = None
    if all(p.parent != root for p in images):
        concepts = {s.id: _concept_name(p.parent.name) for s, p in zip(stimuli, images)}
    return StimulusSet(root.name, str(root.resolve()), stimuli, skipped=skipped,
                       concepts=concepts)


def _concept_name(name: str) -> str:
    """``00001_aardvark`` -> ``aardvark``; ``ice_cream`` -> ``ice cream``."""
    head, _, rest = str(name).partition("_")
    if head.isdigit() and rest:
        name = rest
    return name.replace("_", " ").strip()


def things_set(folder: str | Path) -> StimulusSet:
    """A THINGS-EEG2 image folder (``image_metadata.npy``, ``training_images/``,
    ``test_images/``): the ids, roles and files of :func:`neuralign.base.stimuli.things_stimuli`
    (ids are the metadata's file names, e.g. ``aardvark_01b.jpg``, as the THINGS-EEG2 EEG
    loader uses them), each image checked and hashed; the test set is the metadata's."""
    root = Path(folder)
    listed = things_stimuli(root)
    bad = [(str(s.path), why) for s in listed if (why := _check_image(s.path))]
    if bad:
        raise NeuralignError(f"{len(bad)} image(s) listed in image_metadata.npy are unreadable "
                             f"(e.g. {bad[0][0]!r}: {bad[0][1]})", path=root)
    stimuli = [Stimulus(id=s.id, sha256=file_sha256(s.path), path=s.path, role=s.role)
               for s in listed]
    test_ids = [s.id for s in listed if s.role == "test"]
    meta = things.read_metadata(things.find_metadata(root))
    names = [c for part in ("train", "test") for c in (things.image_list(meta, part, "concepts")
                                                      or [])]
    concepts = None
    if len(names) == len(stimuli):
        concepts = {s.id: _concept_name(c) for s, c in zip(stimuli, names)}
    else:
        concepts = {s.id: _concept_name(Path(s.path).parent.name) for s in stimuli}
    return StimulusSet(root.name, str(root.resolve()), stimuli, test_ids=test_ids,
                       concepts=concepts)


def open_source(source: str) -> StimulusSet:
    """``builtin``, a THINGS image folder (with ``image_metadata.npy``) or a folder of images."""
    if source == "builtin":
        return builtin_set()
    p = Path(source)
    if p.is_dir() and (p / "image_metadata.npy").is_file():
        return things_set(p)
    if p.is_dir():
        return folder_set(p)
    raise NeuralignError(
        "stimulus source must be 'builtin', an image folder or a THINGS image folder", path=p
    )

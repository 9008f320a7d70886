"""One stimulus identity: :class:`Stimulus` and the rules that give images their ids.

A stimulus id is the same string everywhere: the marker the presenter sends, the row of the
features, the entry of the session design and the id of the EEG loaders.

- An image folder: the file stem (``dog.png`` -> ``dog``); when stems collide across
  sub-folders, the relative path without suffix (``a/dog``). See :func:`folder_stimuli`.
- A THINGS image folder (with ``image_metadata.npy``): the file name exactly as the metadata
  lists it (``aardvark_01b.jpg``), as the THINGS-EEG2 EEG files use it; the role (train or
  test) comes from the metadata. See :func:`things_stimuli`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NeuralignError, few
from ..io import things

#: File suffixes read as images (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@dataclass
class Stimulus:
    """One image: its id, where its pixels come from, and the role its source suggests.

    Parameters
    ----------
    id : str
        The stimulus id (see the module docstring for how sources name their images).
    path : Path | None
        The image file, or ``None`` for an in-memory image.
    role : str
        ``"train"``, ``"test"``, ``"target"`` or ``""`` (the design decides).
    image : PIL.Image.Image | ndarray | None
        The pixels of an in-memory image (an RGB picture or an ``(H, W[, 3])`` array).
    sha256 : str
        A content hash, when the source computed one (``""`` otherwise).
    """

    id: str
    path: Path | None = None
    role: str = ""
    image: Any = None
    sha256: str = ""

    def open(self):
        """The image as a fully decoded RGB ``PIL.Image``.

        Returns
        -------
        PIL.Image.Image
            An RGB picture.
        """
        from PIL import Image

        if self.path is not None:
            with Image.open(self.path) as im:
                im.load()
                return im.convert("RGB")
        if isinstance(self.image, Image.Image):
            return self.image.convert("RGB")
        import numpy as np

        arr = np.asarray(self.image)
        if arr.dtype != np.uint8:
            arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        return Image.fromarray(arr).convert("RGB")

    @property
    def origin(self) -> str:
        """Where the image comes from, for messages."""
        return str(self.path) if self.path is not None else f"<{self.id}>"


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is a visible file with an image suffix.

    Parameters
    ----------
    path : Path
        A file system path.

    Returns
    -------
    bool
        True for e.g. ``dog.PNG``; False for ``.hidden.png`` or ``notes.txt``.
    """
    return (path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES
            and not path.name.startswith("."))


def folder_ids(files: list[Path], root: Path) -> list[str]:
    """The ids of image files under ``root``: stems, or relative paths when stems collide.

    Parameters
    ----------
    files : list of Path
        Image files under ``root``, in order.
    root : Path
        The folder the files were found in.

    Returns
    -------
    list of str
        One id per file.
    """
    stems = [p.stem for p in files]
    if len(set(stems)) == len(stems):
        return stems
    return [p.relative_to(root).with_suffix("").as_posix() for p in files]


def folder_stimuli(folder: str | Path) -> list[Stimulus]:
    """Every image file under ``folder`` (recursively, sorted), id = file stem.

    Parameters
    ----------
    folder : str | Path
        A folder of images.

    Returns
    -------
    list of Stimulus
        In sorted path order, ids by :func:`folder_ids`.

    Raises
    ------
    NeuralignError
        When the folder does not exist or holds no image file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NeuralignError("stimulus folder not found", path=folder)
    files = sorted(p for p in folder.rglob("*") if is_image_file(p))
    if not files:
        raise NeuralignError(
            f"no image files ({', '.join(IMAGE_SUFFIXES)}) in the stimulus folder", path=folder
        )
    return [Stimulus(id=i, path=p) for i, p in zip(folder_ids(files, folder), files)]


def is_things_folder(folder: str | Path) -> bool:
    """Whether ``folder`` is a THINGS image folder (it holds ``image_metadata.npy``).

    Parameters
    ----------
    folder : str | Path
        A folder.

    Returns
    -------
    bool
        True when ``folder/image_metadata.npy`` exists.
    """
    return (Path(folder) / things.METADATA_FILE).is_file()


def things_stimuli(folder: str | Path) -> list[Stimulus]:
    """A THINGS image folder: ids and roles from its ``image_metadata.npy``.

    Images are expected at ``training_images/<concept>/<file>`` and
    ``test_images/<concept>/<file>``; an image that is not there is looked up by file name
    anywhere under ``folder``.

    Parameters
    ----------
    folder : str | Path
        The folder holding ``image_metadata.npy`` and the images.

    Returns
    -------
    list of Stimulus
        Training images then test images in metadata order; id = the file name as listed
        (``aardvark_01b.jpg``), role ``"train"`` or ``"test"``.

    Raises
    ------
    NeuralignError
        No or unreadable metadata, or images the metadata lists that are missing.
    """
    folder = Path(folder)
    meta_path = folder / things.METADATA_FILE
    if not meta_path.is_file():
        raise NeuralignError(f"no {things.METADATA_FILE} in the THINGS image folder", path=folder)
    meta = things.read_metadata(meta_path)
    by_name: dict[str, Path] | None = None
    out: list[Stimulus] = []
    missing: list[str] = []
    for role, (_, sub) in things.PARTS.items():
        files = things.image_list(meta, role)
        concepts = things.image_list(meta, role, "concepts") or [""] * len(files)
        if len(concepts) != len(files):
            raise NeuralignError(f"{role}_img_files and {role}_img_concepts differ in length",
                                 path=meta_path)
        for file, concept in zip(files, concepts):
            path = folder / sub / concept / file
            if not path.is_file():
                if by_name is None:
                    by_name = {p.name: p for p in sorted(folder.rglob("*")) if is_image_file(p)}
                path = by_name.get(Path(file).name)
            if path is None:
                missing.append(file)
                continue
            out.append(Stimulus(id=file, path=path, role=role))
    if missing:
        raise NeuralignError(
            f"{len(missing)} image(s) listed in {things.METADATA_FILE} are missing: "
            f"{few(missing)}", path=folder)
    return out

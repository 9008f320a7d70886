"""Restricted unpickling of the pickled ``.npy`` dicts that THINGS-EEG2 distributes.

Unpickling an untrusted file runs whatever callables the pickle names. The THINGS-EEG2
``preprocessed_eeg_*.npy`` and ``image_metadata.npy`` files are 0-d object arrays holding a
dict, so ``np.load(allow_pickle=True)`` would be needed to read them: never do that on user
files. :func:`load_npy` reads the ``.npy`` header with :mod:`numpy.lib.format` and unpickles
the object payload with :class:`SafeUnpickler`, which resolves only the handful of globals
numpy needs to rebuild arrays, dtypes and scalars. Anything else is refused *before* it is
called, with a one-line :class:`~neuralign.errors.NeuralignError`.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import NeuralignError

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]

# Builtins a pickle of plain containers may name (protocol 2 spells bytes via _codecs.encode).
_BUILTINS: dict[tuple[str, str], Any] = {
    ("builtins", "dict"): dict,
    ("builtins", "list"): list,
    ("builtins", "tuple"): tuple,
    ("builtins", "str"): str,
    ("builtins", "bytes"): bytes,
    ("builtins", "bytearray"): bytearray,
    ("builtins", "int"): int,
    ("builtins", "float"): float,
    ("builtins", "bool"): bool,
    ("builtins", "complex"): complex,
    ("__builtin__", "unicode"): str,  # Python 2 pickles
    ("_codecs", "encode"): None,  # filled below: only str -> bytes via latin1
}


def _codecs_encode(obj: object, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it (str -> bytes), nothing more."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode used for something else than bytes")
    return obj.encode("latin1")


_BUILTINS[("_codecs", "encode")] = _codecs_encode

# The exact numpy globals needed to rebuild ndarrays, dtypes and numpy scalars, under the
# module names numpy 1.x and 2.x write.
_NUMPY: dict[tuple[str, str], Any] = {}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _NUMPY[(_mod, "_reconstruct")] = _multiarray._reconstruct
    _NUMPY[(_mod, "scalar")] = _multiarray.scalar
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _NUMPY[(_mod, "_frombuffer")] = _numeric._frombuffer
_NUMPY[("numpy", "ndarray")] = np.ndarray
_NUMPY[("numpy", "dtype")] = np.dtype

ALLOWED: dict[tuple[str, str], Any] = {**_BUILTINS, **_NUMPY}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in :data:`ALLOWED`.

    Parameters
    ----------
    file : binary file
        Positioned at the start of the pickle.
    path : str or Path, optional
        Named in the error when something forbidden is found.
    """

    def __init__(self, file: BinaryIO, *, path: str | Path | None = None) -> None:
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102
        """The allowed class for ``module.name``; anything else is refused."""
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise NeuralignError(
                f"pickle holds forbidden object {module}.{name}; refused without running it",
                path=self._path,
            ) from None

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102
        """Refuse persistent references (nothing outside the pickle is loaded)."""
        raise NeuralignError("pickle holds a persistent reference; refused", path=self._path)


def safe_loads(data: bytes, *, path: str | Path | None = None) -> Any:
    """Unpickle ``data`` with :class:`SafeUnpickler`."""
    return _load_pickle(io.BytesIO(data), path=path)


def _load_pickle(fp: BinaryIO, *, path: str | Path | None) -> Any:
    try:
        return SafeUnpickler(fp, path=path).load()
    except NeuralignError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError, OverflowError) as e:
        raise NeuralignError(f"unreadable pickle ({type(e).__name__}: {e})", path=path) from None


def load_npy(path: str | Path) -> Any:
    """Read a ``.npy`` file, unpickling object payloads safely.

    Returns
    -------
    object
        For a 0-d object array (how ``np.save`` stores a dict) the object itself (e.g. the
        dict); otherwise the array.

    Raises
    ------
    NeuralignError
        Missing or malformed file, or a pickle that names anything but dicts, lists,
        tuples, strings, bytes, numbers, ``None`` and numpy arrays/dtypes/scalars.
    """
    path = Path(path)
    if not path.is_file():
        raise NeuralignError("file not found", path=path)
    with path.open("rb") as fp:
        try:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
            else:  # pragma: no cover - numpy raises before
                raise ValueError(f"unsupported .npy version {version}")
        except ValueError as e:
            raise NeuralignError(f"not a valid .npy file ({e})", path=path) from None
        if not dtype.hasobject:
            want = int(np.prod(shape, dtype=object)) * dtype.itemsize
            have = path.stat().st_size - fp.tell()
            if want > have:  # never allocate what a header claims before the data is there
                raise NeuralignError(f"the .npy header claims {tuple(shape)} {dtype} "
                                     f"({want} bytes) but the file holds {have} bytes of data",
                                     path=path)
            fp.seek(0)
            try:
                return np.lib.format.read_array(fp, allow_pickle=False)
            except ValueError as e:
                raise NeuralignError(f"not a valid .npy file ({e})", path=path) from None
        arr = _load_pickle(fp, path=path)
    if not isinstance(arr, np.ndarray) or arr.shape != tuple(shape):
        raise NeuralignError(
            f"object payload does not match the .npy header (header shape {tuple(shape)})",
            path=path,
        )
    if arr.shape == ():
        return arr.item()
    return arr

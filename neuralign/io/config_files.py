"""Reading user configuration files (TOML) with one-line errors that name the file."""

from __future__ import annotations

import tomllib
from pathlib import Path

from ..errors import NeuralignError


def read_toml(path: str | Path, *, what: str = "config file") -> dict:
    """Parse a TOML file; a missing or malformed file is a :class:`NeuralignError`."""
    path = Path(path)
    if not path.is_file():
        raise NeuralignError(f"{what} not found", path=path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise NeuralignError(f"not valid TOML ({e})", path=path) from None

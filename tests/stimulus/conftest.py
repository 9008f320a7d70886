"""Fixtures for the presenter tests: small generated image folders and config files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def make_images(folder: Path, n: int, *, size=(48, 64), seed: int = 0) -> list[str]:
    """Write ``n`` random RGB PNGs ``img00.png``... into ``folder``; return their ids."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = []
    for i in range(n):
        sid = f"img{i:02d}"
        a = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(a).save(folder / f"{sid}.png")
        ids.append(sid)
    return ids


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "imgs"
    make_images(folder, 6)
    return folder

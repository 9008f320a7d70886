"""Session-scoped fixtures: tiny HF models exported once per session, a private model cache."""

from __future__ import annotations

import os

import pytest

from . import tiny


@pytest.fixture(scope="session", autouse=True)
def _offline_private_cache(tmp_path_factory):
    """No hub access; built-in models exported into a per-session cache folder."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                                            "NEURALIGN_CACHE")}
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["NEURALIGN_CACHE"] = str(tmp_path_factory.mktemp("neuralign_cache"))
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


_EXPORTS: dict[str, tuple] = {}


@pytest.fixture(scope="session")
def hf_export(tmp_path_factory):
    """``hf_export(family, runtime="auto") -> (model_dir, ModelSpec)``: tiny model (with its
    tokenizer) saved and exported once per session."""
    from neuralign.models.hf import export_hf

    def get(family: str, runtime: str = "auto"):
        key = f"{family}:{runtime}"
        if key not in _EXPORTS:
            base = tmp_path_factory.mktemp(f"hf_{family}")
            model_dir = tiny.save(family, base / family)
            spec = export_hf(model_dir, base / "export", image_size=tiny.IMAGE_SIZE.get(family),
                             runtime=runtime)
            _EXPORTS[key] = (model_dir, spec)
        return _EXPORTS[key]

    return get


@pytest.fixture(scope="session")
def mobilenet_spec():
    from neuralign.models.builtin import build_mobilenet_v2

    return build_mobilenet_v2()


@pytest.fixture(scope="session")
def focus_spec():
    from neuralign.models.builtin import build_vit_s14_focus

    return build_vit_s14_focus()


@pytest.fixture
def image_folder(tmp_path):
    """Eight built-in stimuli written as PNG files."""
    from PIL import Image

    from neuralign.models.stimuli import builtin_arrays

    folder = tmp_path / "stim"
    folder.mkdir()
    for i, (sid, a) in enumerate(builtin_arrays()):
        if i >= 8:
            break
        Image.fromarray(a).save(folder / f"{sid}.png")
    return folder

"""Window settings kept between runs, as JSON in the user's config directory.

Location: ``$NEURALIGN_GUI_SETTINGS`` if set, else ``$XDG_CONFIG_HOME/neuralign/gui.json``
(``~/.config/neuralign/gui.json``; ``%APPDATA%\\neuralign\\gui.json`` on Windows). Unknown keys
are dropped and values of the wrong type fall back to the defaults, so an old or hand-edited
file never stops the window from opening.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

DEFAULTS: dict = {
    "eeg_stream": "",  # LSL stream name (or source id) to connect to
    "marker_stream": "",
    "features": "",  # feature file / cache the live engine uses
    "model": "",  # free text recorded with the session (model name)
    "gui_hz": 10.0,  # window repaint rate
    "refresh_s": 2.0,  # engine re-solve interval (sources that support it)
    "tmin": -0.2,
    "tmax": 0.8,
    "l_freq": 0.1,  # 0 = off
    "h_freq": 40.0,  # 0 = off
    "speed": 1.0,  # replay speed (x real time)
    "normalized": False,  # noise-ceiling-normalised encoding map
    "rsa_kind": "rsa",  # "rsa" (Spearman, correlation RDM) or "rsa_cv" (cross-validated RDM)
    "export_dir": "",
    "geometry": "",  # hex of QWidget.saveGeometry()
}


def settings_path() -> Path:
    """Where the settings file lives (see module docstring)."""
    env = os.environ.get("NEURALIGN_GUI_SETTINGS")
    if env:
        return Path(env)
    if sys.platform.startswith("win"):
        base = Path(os.environ.get("APPDATA", Path.home()))
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "neuralign" / "gui.json"


def load_settings(path: str | Path | None = None) -> dict:
    """The defaults updated with what ``path`` holds (missing/broken file = defaults)."""
    out = dict(DEFAULTS)
    p = Path(path) if path is not None else settings_path()
    try:
        saved = json.loads(p.read_text())
    except (OSError, ValueError):
        return out
    if not isinstance(saved, dict):
        return out
    for k, default in DEFAULTS.items():
        v = saved.get(k)
        if v is None:
            continue
        if isinstance(default, bool):
            if isinstance(v, bool):
                out[k] = v
        elif isinstance(default, float):
            if isinstance(v, int | float) and not isinstance(v, bool):
                out[k] = float(v)
        elif isinstance(v, type(default)):
            out[k] = v
    return out


def save_settings(settings: dict, path: str | Path | None = None) -> Path:
    """Write the known keys of ``settings`` (atomically) and return the path."""
    p = Path(path) if path is not None else settings_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    data = {k: settings.get(k, v) for k, v in DEFAULTS.items()}
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(p)
    return p

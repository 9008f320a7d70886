"""Test-wide settings: machine-scope LSL config, offscreen Qt, non-interactive matplotlib."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Before anything imports pylsl / mne_lsl: LSL discovery must never leave this machine.
os.environ.setdefault("LSLAPICFG", str(ROOT / "neuralign" / "lsl_api.cfg"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
os.environ.setdefault("QT_API", "pyside6")
os.environ.setdefault("MPLBACKEND", "Agg")

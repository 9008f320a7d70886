"""Sub-commands of the ``neuralign`` CLI, one module each (see :mod:`neuralign.cli`)."""

from __future__ import annotations

from pathlib import Path


def add_window_args(p) -> None:
    """``--screenshot FILE.png --exit-after SECONDS``: shared by gui, replay and session."""
    p.add_argument("--screenshot", type=Path, default=None, metavar="FILE.png",
                   help="save the window as PNG before exiting (renders offscreen)")
    p.add_argument("--exit-after", type=float, default=None, metavar="SECONDS",
                   help="close the window after this many seconds (exit status 0)")

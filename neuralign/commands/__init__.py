"""Sub-commands of the ``neuralign`` CLI, one module each (see :mod:`neuralign.cli`).

Besides the commands, this package holds what sits above every part: the dataset registry
(:mod:`.datasets`) and the orchestration of a simulated session (:mod:`.orchestrate`). Options
shared by several commands are declared here once, so they read the same everywhere: LSL
streams are always ``--eeg-stream`` / ``--marker-stream``, the map refresh interval is always
``--refresh-every SECONDS``. Renamed options keep their old name as a hidden alias for one
release (:func:`add_alias`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def neuralign_command(*argv: str) -> list[str]:
    """The command line that runs ``neuralign ARGV...`` in a child process.

    Parameters
    ----------
    *argv : str
        The sub-command and its options.

    Returns
    -------
    list of str
        ``[python, "-m", "neuralign", *argv]`` with this interpreter.
    """
    return [sys.executable, "-m", "neuralign", *argv]


def add_alias(p: argparse.ArgumentParser, old: str, *, dest: str, convert=None,
              nargs=None) -> None:
    """Accept ``old`` as a hidden alias of a renamed option (kept for one release).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The command's parser.
    old : str
        The old option string (e.g. ``"--eeg"``).
    dest : str
        The ``dest`` of the new option it stands for.
    convert : callable | None
        Converts the old value to the new option's meaning (e.g. Hz to seconds).
    nargs : int | str | None
        As the new option's.
    """
    p.add_argument(old, dest=dest, type=convert, nargs=nargs, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)


def add_window_args(p: argparse.ArgumentParser) -> None:
    """``--screenshot FILE.png --exit-after SECONDS``: shared by gui, replay and session.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The command's parser.
    """
    p.add_argument("--screenshot", type=Path, default=None, metavar="FILE.png",
                   help="save the window as PNG before exiting (renders offscreen)")
    p.add_argument("--exit-after", type=float, default=None, metavar="SECONDS",
                   help="close the window after this many seconds (exit status 0)")


def add_stream_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    """``--eeg-stream`` and ``--marker-stream``: the LSL streams a live session reads.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The command's parser.
    required : bool
        Whether both are required.
    """
    p.add_argument("--eeg-stream", required=required, default=None, metavar="SPEC",
                   help="EEG stream: NAME (name or source id), name:X, type:X or source_id:X")
    p.add_argument("--marker-stream", required=required, default=None, metavar="SPEC",
                   help="marker stream (strings or int codes), same forms")


def hz_to_seconds(value: str) -> float:
    """Parse a rate in Hz given to an old ``--refresh-hz`` option as seconds between refreshes.

    Parameters
    ----------
    value : str
        The rate, in Hz (> 0).

    Returns
    -------
    float
        ``1 / value``.
    """
    hz = float(value)
    if hz <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 Hz, got {value}")
    return 1.0 / hz

"""``neuralign present``: the PsychoPy RSVP presenter with LSL markers."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

from ..base import Stimulus
from ..errors import NeuralignError
from ..stimulus.presenter import has_display
from . import add_alias, neuralign_command

XVFB_ENV = "NEURALIGN_UNDER_XVFB"


def builtin_stimuli() -> list[Stimulus]:
    """The built-in natural image set (:mod:`neuralign.models.stimuli`) as stimuli.

    Returns
    -------
    list of Stimulus
        In-memory images with their stable ids (``astronaut``, ``astronaut_tl``...).
    """
    from ..models.stimuli import builtin_arrays

    return [Stimulus(id=sid, image=pixels) for sid, pixels in builtin_arrays()]


def add_session_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``present`` and ``session`` (they override the config file)."""
    p.add_argument("--config", type=Path, help="session config (TOML); default: built-in defaults")
    p.add_argument("--source", help="stimulus source: builtin | folder:PATH | things:PATH | "
                   "features:PATH (overrides stimuli.source)")
    p.add_argument("--seed", type=int, help="design seed (overrides seed)")
    p.add_argument("--marker-stream", help="LSL marker stream name (markers.stream_name)")
    p.add_argument("--monitor-hz", type=float, metavar="HZ",
                   help="monitor refresh rate (monitor.refresh_hz)")
    add_alias(p, "--refresh-hz", dest="monitor_hz", convert=float)
    p.add_argument("--fullscreen", action="store_true", help="full-screen window")
    p.add_argument("--order", choices=["random", "closed-loop"], default=None,
                   help="random: the plan's pre-shuffled order; closed-loop: each RSVP sequence "
                   "shows the block a live session (`neuralign live --order closed-loop`) chose, "
                   "read from the back channel, the planned one when none comes in time "
                   "(overrides order)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config value, e.g. --set timing.on_ms=50 (repeatable)")


def config_overrides(args: argparse.Namespace) -> dict:
    """Nested overrides from the shared options."""
    from ..stimulus.config import parse_overrides

    over = parse_overrides(args.set)
    if args.source:
        over.setdefault("stimuli", {})["source"] = args.source
    if args.seed is not None:
        over["seed"] = args.seed
    if args.marker_stream:
        over.setdefault("markers", {})["stream_name"] = args.marker_stream
    if args.monitor_hz:
        over.setdefault("monitor", {})["refresh_hz"] = args.monitor_hz
    if args.fullscreen:
        over.setdefault("monitor", {})["fullscreen"] = True
    if args.order:
        over["order"] = args.order
    return over


def register(subparsers) -> None:
    """Add the ``present`` sub-command to ``subparsers``."""
    p = subparsers.add_parser(
        "present",
        help="PsychoPy RSVP presenter with LSL markers",
        description="Present an RSVP session (images on/off in whole frames) and send each "
        "stimulus id as an LSL marker on the flip that shows it. Writes design.json (for "
        "`neuralign live --design`), trials.csv, run_log.csv/jsonl, frame_intervals.npy and "
        "summary.json into --out.",
    )
    add_session_options(p)
    p.add_argument("--out", type=Path, default=Path("present_out"), help="output folder")
    p.add_argument("--wait-consumer", type=float, metavar="SECONDS",
                   help="wait this long for a marker consumer (markers.wait_for_consumer_s); "
                   "0 = do not wait")
    p.add_argument("--design-only", action="store_true",
                   help="check the input, write the design files, and stop")
    p.add_argument("--xvfb", action="store_true",
                   help="without a display, re-run under xvfb-run (virtual display; no vsync)")
    p.add_argument("--inject-key", action="append", default=[], metavar="TRIAL:KEY",
                   help="emulate a key press at a trial's onset (tests/demos), e.g. 5:escape")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--wait-file", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--stop-file", type=Path, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"neuralign: warning: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def one_line_warnings():
    """Print warnings as ``neuralign: warning: ...`` lines (no file/line noise)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", DeprecationWarning)  # PsychoPy's own, not the user's
        warnings.showwarning = _show_warning
        yield


def xvfb_command(argv: list[str], *, resolution=(1024, 768)) -> list[str]:
    """``argv`` (a neuralign command line, without the program) wrapped in xvfb-run."""
    if shutil.which("xvfb-run") is None:
        raise NeuralignError("no display and no xvfb-run: install xvfb (Debian: apt-get install "
                             "xvfb libgl1-mesa-dri libglu1-mesa) or run on a desktop")
    w, h = (max(int(v), 64) for v in resolution)
    return ["xvfb-run", "-a", f"--server-args=-screen 0 {w}x{h}x24",
            *neuralign_command(*argv)]


def run(args: argparse.Namespace) -> int:
    """Check the config, write the design and present (under xvfb-run when asked)."""
    from ..stimulus.config import load_config
    from ..stimulus.run import parse_inject, present

    over = config_overrides(args)
    if args.wait_consumer is not None:
        over.setdefault("markers", {})["wait_for_consumer_s"] = args.wait_consumer
    with one_line_warnings():
        config = load_config(args.config, overrides=over)
        if args.xvfb and not args.design_only and not has_display() and not os.environ.get(
            XVFB_ENV
        ):
            argv = [a for a in sys.argv[1:] if a != "--xvfb"]
            if not argv or argv[0] != "present":
                raise NeuralignError("--xvfb re-runs the command line: call it as `neuralign "
                                     "present ... --xvfb`")
            cmd = xvfb_command(argv, resolution=config.monitor.resolution)
            print("no display: running under " + " ".join(cmd[:3]), file=sys.stderr, flush=True)
            return subprocess.call(cmd, env={**os.environ, XVFB_ENV: "1"})
        return present(config, args.out, builtin=builtin_stimuli, design_only=args.design_only,
                       inject_keys=parse_inject(args.inject_key), progress=not args.no_progress,
                       wait_file=args.wait_file, stop_file=args.stop_file)

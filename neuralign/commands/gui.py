"""``neuralign gui``: the live Qt window (connect to LSL streams from it, or view results)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import NeuralignError
from . import add_window_args


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "gui",
        help="the live Qt window",
        description=(
            "Open the live window. Connect to LSL streams from it (Connect...), or pass --eeg "
            "and --markers (and --features) to connect at once, or --results DIR to look at "
            "saved maps. With --out, a live session is recorded there and its results are "
            "written there when the window closes (the `neuralign live` contract)."
        ),
    )
    p.add_argument("--eeg", default=None, help="EEG stream (name, source id, type:X, name:X)")
    p.add_argument("--markers", default=None, help="marker stream (same forms)")
    p.add_argument("--features", type=Path, default=None,
                   help="features of the stimuli (.npz or feature cache)")
    p.add_argument("--design", type=Path, default=None,
                   help="session design JSON (its test stimuli score; else nested CV)")
    p.add_argument("--connect-timeout", type=float, default=10.0,
                   help="seconds to wait for the streams (default 10)")
    p.add_argument("--out", type=Path, default=None,
                   help="live session folder: recording, and results when the window closes")
    p.add_argument("--results", type=Path, default=None, metavar="DIR",
                   help="show saved maps (a folder with results.json + maps.npz)")
    add_window_args(p)
    p.set_defaults(func=run)


def _result_snapshot(path: Path):
    import math

    from ..align.data import AlignmentResult
    from ..realtime.snapshot import Snapshot, StreamHealth

    res = AlignmentResult.load(path)
    counts = res.counts if isinstance(res.counts, dict) else {}
    return Snapshot(
        wall_time=time.time(),
        session_time=math.nan,
        health=StreamHealth(eeg_name=f"saved results: {path}", n_channels=len(res.ch_names),
                            ch_names=tuple(res.ch_names)),
        epochs_accepted=int(counts.get("n_epochs", 0) or 0),
        stimuli_seen=int(counts.get("n_stimuli", 0) or 0),
        result=res,
        times=res.times,
    )


def run(args: argparse.Namespace) -> int:
    from ..app.live import connected_line, live_source_factory
    from ..app.source import StaticSource

    if args.exit_after is not None and args.exit_after < 0:
        raise NeuralignError("--exit-after must be >= 0 seconds")
    if (args.eeg is None) != (args.markers is None):
        raise NeuralignError("give both --eeg and --markers (or neither, and use Connect...)")
    if args.results is not None and args.eeg is not None:
        raise NeuralignError("--results shows saved maps: drop --eeg/--markers")
    design = None
    if args.design is not None:
        from ..realtime.design import load_design

        design = load_design(args.design)
    from ..app.settings import load_settings

    def announce(session) -> None:
        print(connected_line(session), file=sys.stderr, flush=True)

    def factory(s: dict):
        s = dict(s)
        if args.features is not None:
            s["features"] = str(args.features)
        if args.out is not None:
            s["out_dir"] = str(args.out)
        return live_source_factory(s, design=design, connect_timeout=args.connect_timeout,
                                   on_connected=announce)

    source = None
    if args.results is not None:
        source = StaticSource(_result_snapshot(args.results))
    elif args.eeg is not None:
        settings = load_settings()
        settings.update(eeg_stream=args.eeg, marker_stream=args.markers)
        source = factory(settings)
        print(f"connecting to {args.eeg!r} + {args.markers!r}...", file=sys.stderr, flush=True)

    from ..app.window import run_window

    title = "neuralign" if args.results is None else f"neuralign: {args.results}"
    if args.eeg is not None:
        title = f"neuralign live: {args.eeg}"
    live = {}

    def on_exit(win) -> None:
        live["source"] = win.source  # a source connected from the window counts too

    rc = run_window(source, screenshot=args.screenshot, exit_after=args.exit_after,
                    title=title, source_factory=factory, on_exit=on_exit)
    if args.screenshot is not None:
        print(f"screenshot written to {args.screenshot}")
    src = live.get("source") or source
    err = getattr(src, "error", None)
    result = getattr(src, "result", None)  # LiveSource: the final maps after stop()
    if result is not None and args.out is not None:
        from ..app.export import write_results

        sess = getattr(src, "session", None)
        extra = {}
        rec = getattr(getattr(sess, "recorder", None), "dir", None)
        if rec is not None:
            extra["recording"] = str(rec)
        paths = write_results(result, args.out, title=title, extra=extra)
        snap = src.latest()
        if snap is not None:
            print(f"epochs: {snap.epochs_accepted} accepted, {snap.epochs_rejected} rejected; "
                  f"unknown markers: {snap.unknown_markers}", file=sys.stderr)
        for k, v in paths.items():
            print(f"{k}: {v}", file=sys.stderr)
    if err:
        raise NeuralignError(err)
    return rc

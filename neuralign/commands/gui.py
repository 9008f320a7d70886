"""``neuralign gui``: the live Qt window (connect to LSL streams from it, or view results)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..base import load_design
from ..errors import NeuralignError
from . import (
    add_alias,
    add_model_args,
    add_stream_args,
    add_window_args,
    feature_specs,
    make_monitor,
)
from .live import add_order_args, closed_loop_policy


def register(subparsers) -> None:
    """Add the ``gui`` sub-command to ``subparsers``."""
    p = subparsers.add_parser(
        "gui",
        help="the live Qt window",
        description=(
            "Open the live window. Connect to LSL streams from it (Connect...), or pass "
            "--eeg-stream and --marker-stream (and --features) to connect at once, or --results "
            "DIR to look at "
            "saved maps. With --out, a live session is recorded there and its results are "
            "written there when the window closes (the `neuralign live` contract)."
        ),
    )
    add_stream_args(p, required=False)
    add_alias(p, "--eeg", dest="eeg_stream")
    add_alias(p, "--markers", dest="marker_stream")
    add_model_args(p, required=False)
    p.add_argument("--design", type=Path, default=None,
                   help="session design JSON (its test stimuli score; else nested CV)")
    p.add_argument("--connect-timeout", type=float, default=10.0,
                   help="seconds to wait for the streams (default 10)")
    p.add_argument("--out", type=Path, default=None,
                   help="live session folder: recording, and results when the window closes")
    p.add_argument("--results", type=Path, default=None, metavar="DIR",
                   help="show saved maps (a folder with results.json + maps.npz)")
    add_order_args(p)
    add_window_args(p)
    p.set_defaults(func=run)


def result_snapshot(path: Path):
    """A snapshot that shows saved results (``--results DIR``).

    Parameters
    ----------
    path : Path
        A folder with ``results.json`` and ``maps.npz``.

    Returns
    -------
    Snapshot
        Holding the loaded maps.
    """
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
    """Open the window (connected, on saved results, or empty) until it is closed."""
    from ..app.connect import live_source_factory
    from ..app.run import run_window
    from ..app.settings import load_settings
    from ..realtime.source import LiveSource, StaticSource
    from ..report import write_session

    eeg, markers = args.eeg_stream, args.marker_stream
    if args.exit_after is not None and args.exit_after < 0:
        raise NeuralignError("--exit-after must be >= 0 seconds")
    if (eeg is None) != (markers is None):
        raise NeuralignError("give both --eeg-stream and --marker-stream (or neither, and use "
                             "Connect...)")
    if args.results is not None and eeg is not None:
        raise NeuralignError("--results shows saved maps: drop --eeg-stream/--marker-stream")
    if args.order == "closed-loop" and (args.design is None or eeg is None):
        raise NeuralignError("--order closed-loop needs --design with test stimuli and the "
                             "streams (--eeg-stream, --marker-stream)")
    design = load_design(args.design) if args.design is not None else None
    policy = closed_loop_policy(args, design)
    monitor = make_monitor(args)  # a bad --stop-when: one line before the window opens
    specs = feature_specs(args.features)

    def announce(session) -> None:
        print(session.connected_line(), file=sys.stderr, flush=True)

    def factory(s: dict):
        s = dict(s)
        if specs:
            s["features"] = ({k: str(v) for k, v in specs.items()} if len(specs) > 1
                             else str(next(iter(specs.values()))))
        if args.out is not None:
            s["out_dir"] = str(args.out)
        return live_source_factory(s, design=design, connect_timeout=args.connect_timeout,
                                   on_connected=announce, statistics=monitor,
                                   stats_every=args.stats_every, closed_loop=policy)

    source = None
    if args.results is not None:
        source = StaticSource(result_snapshot(args.results))
    elif eeg is not None:
        settings = load_settings()
        settings.update(eeg_stream=eeg, marker_stream=markers)
        source = factory(settings)
        print(f"connecting to {eeg!r} + {markers!r}...", file=sys.stderr, flush=True)

    title = "neuralign" if args.results is None else f"neuralign: {args.results}"
    if eeg is not None:
        title = f"neuralign live: {eeg}"
    live = {}

    def on_exit(win) -> None:
        live["source"] = win.source  # a source connected from the window counts too

    rc = run_window(source, screenshot=args.screenshot, exit_after=args.exit_after,
                    title=title, source_factory=factory, on_exit=on_exit)
    if args.screenshot is not None:
        print(f"screenshot written to {args.screenshot}")
    src = live.get("source") or source
    err = src.error if src is not None else None
    result = src.result if isinstance(src, LiveSource) else None  # final maps after stop()
    if result is not None and args.out is not None:
        sess = src.session
        extra = {"recording": str(sess.recorder.dir)}
        if sess.stop_reason:
            extra["stop_reason"] = sess.stop_reason
        paths = write_session(result, args.out, title=title, extra=extra, results=sess.results,
                              stats=sess.stats)
        snap = src.latest()
        if snap is not None:
            print(f"epochs: {snap.epochs_accepted} accepted, {snap.epochs_rejected} rejected; "
                  f"unknown markers: {snap.unknown_markers}", file=sys.stderr)
        for k, v in paths.items():
            print(f"{k}: {v}", file=sys.stderr)
    if err:
        raise NeuralignError(err)
    return rc

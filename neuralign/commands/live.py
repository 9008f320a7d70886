"""``neuralign live``: a headless live session from LSL streams."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from ..base import load_design
from ..errors import NeuralignError
from . import add_alias, add_model_args, add_stream_args, hz_to_seconds, load_models, make_monitor
from .console import StopSignals, say


def register(subparsers) -> None:
    """Add the ``live`` sub-command to ``subparsers``."""
    p = subparsers.add_parser(
        "live",
        help="headless live session from LSL streams",
        description=(
            "Connect to an EEG stream and a marker stream, epoch every stimulus marker, build the "
            "layer x latency maps live, record everything to OUT/recording/session.xdf, and on "
            "--duration or Ctrl-C write results.json, maps.npz, figures and report.html to OUT. "
            "Stream specs: NAME (name or source id), name:X, type:X or source_id:X."
        ),
    )
    add_stream_args(p, required=True)
    add_model_args(p)
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--design", type=Path, default=None,
                   help="session design JSON (test stimuli score; else nested CV)")
    p.add_argument("--codes", type=Path, default=None,
                   help="JSON {code: stimulus_id} for integer marker streams")
    p.add_argument("--duration", type=float, default=None, help="seconds (default: until Ctrl-C)")
    p.add_argument("--tmin", type=float, default=-0.2)
    p.add_argument("--tmax", type=float, default=0.8)
    p.add_argument("--sfreq", type=float, default=100.0, help="analysis rate, Hz (100)")
    p.add_argument("--baseline", nargs=2, default=None, metavar=("START", "END"),
                   help="baseline interval in s ('none' for an end); default tmin..0")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--l-freq", type=float, default=None, help="causal high-pass, Hz")
    p.add_argument("--h-freq", type=float, default=None, help="causal low-pass, Hz")
    p.add_argument("--reject-ptp", type=float, default=None,
                   help="reject epochs with peak-to-peak above this on any channel")
    p.add_argument("--flat-ptp", type=float, default=0.0,
                   help="reject epochs with a channel's peak-to-peak <= this (0)")
    p.add_argument("--gap", type=float, default=0.05, help="timestamp jump counted as a gap, s")
    p.add_argument("--refresh-every", type=float, default=1.0, metavar="SECONDS",
                   help="seconds between map refreshes (1)")
    add_alias(p, "--refresh-hz", dest="refresh_every", convert=hz_to_seconds)
    p.add_argument("--backend", default="numpy", choices=["numpy", "torch", "torch_cuda"],
                   help="engine backend")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"],
                   help="precision of the refresh's large products (selection is float64)")
    p.add_argument("--memory", default=None, metavar="SIZE",
                   help="memory budget for the engine's caches and refreshes, e.g. 4GB "
                        "(default: 80%% of the memory available)")
    p.add_argument("--rsa-every", type=int, default=1, metavar="N",
                   help="recompute RSA and the noise ceilings every N map refreshes (1); the "
                        "final maps always have them")
    p.add_argument("--reselect-every", type=int, default=4, metavar="N",
                   help="re-select each layer's alphas every N map refreshes, staggered over "
                        "the layers (4; layers wider than the stimuli re-select when their "
                        "kept eigendecompositions are rebuilt); the final maps re-select "
                        "every layer")
    p.add_argument("--blas-threads", type=int, default=1,
                   help="BLAS threads during the session (1 keeps acquisition fast; 0 = leave)")
    p.add_argument("--connect-timeout", type=float, default=10.0)
    add_order_args(p)
    p.add_argument("--title", default=None, help="report title")
    p.add_argument("--quiet", action="store_true", help="no status line")
    p.set_defaults(func=run)


def add_order_args(p: argparse.ArgumentParser) -> None:
    """``--order`` and ``--block-size`` (``live`` and ``gui``)."""
    p.add_argument("--order", default="random", choices=["random", "closed-loop"],
                   help="random: the presenter's own order; closed-loop: choose each next "
                   "block of stimuli and publish it to `neuralign present --order closed-loop` "
                   "over the back channel (needs --design with test stimuli; decisions are "
                   "recorded in OUT/recording/design.json)")
    p.add_argument("--block-size", type=int, default=None,
                   help="closed loop: stimuli per block (default: the design's RSVP sequence "
                   "length, else 20)")


def _baseline(args):
    if args.no_baseline:
        return None
    if args.baseline is None:
        return (None, 0.0)
    try:
        return tuple(None if v.lower() == "none" else float(v) for v in args.baseline)
    except ValueError:
        raise NeuralignError(f"--baseline takes two numbers in s (or 'none'), got "
                             f"{' '.join(args.baseline)!r}") from None


def read_codes(path: Path | None) -> dict | None:
    """Read a ``{code: stimulus_id}`` JSON table (``--codes``) for integer marker streams.

    Parameters
    ----------
    path : Path | None
        The JSON file (``None``: no table).

    Returns
    -------
    dict | None
        The table.
    """
    if path is None:
        return None
    try:
        table = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise NeuralignError(f"cannot read the code table ({e})", path=path) from None
    if not isinstance(table, dict) or not all(isinstance(v, str | int) for v in table.values()):
        raise NeuralignError("--codes must be a JSON object {code: stimulus id}, got a "
                             f"{type(table).__name__}", path=path)
    return {str(k): str(v) for k, v in table.items()}


def closed_loop_policy(args: argparse.Namespace, design):
    """The closed-loop policy of ``--order closed-loop`` (``None`` for random order).

    Parameters
    ----------
    args : argparse.Namespace
        ``order``, ``block_size`` and ``design``.
    design : SessionDesign | None
        The loaded design.

    Returns
    -------
    BlockPolicy | None
        Block size from ``--block-size``, else the design's sequence length, else 20.
    """
    if args.order != "closed-loop":
        return None
    from ..realtime.decisions import BlockPolicy

    if design is None or not design.test_ids:
        raise NeuralignError("--order closed-loop needs --design with test stimuli (the test "
                             "set is fixed in advance)", path=args.design)
    size = args.block_size
    if size is None:
        timing = (design.extra.get("config") or {}).get("timing") or {}
        size = int(timing.get("sequence_length", 20))
    if size < 1:
        raise NeuralignError(f"--block-size must be >= 1, got {size}")
    return BlockPolicy(block_size=size, seed=int(design.extra.get("seed", 0) or 0))


def run(args: argparse.Namespace) -> int:
    """Run a headless live session until ``--duration`` or Ctrl-C; write the results."""
    from ..align.memory import parse_memory
    from ..lsl import configure_lsl
    from ..realtime.recording import check_new_recording
    from ..realtime.session import LiveSession
    from ..realtime.settings import EpochSettings

    configure_lsl()  # a missing or empty LSLAPICFG: one line, before anything starts
    check_new_recording(args.out)  # nothing recorded is ever overwritten
    for opt, v in (("--duration", args.duration), ("--refresh-every", args.refresh_every),
                   ("--connect-timeout", args.connect_timeout)):
        if v is not None and not (v > 0 and v < float("inf")):
            raise NeuralignError(f"{opt} must be > 0 s, got {v}")
    if args.blas_threads < 0:
        raise NeuralignError(f"--blas-threads must be >= 0, got {args.blas_threads}")
    if args.order == "closed-loop" and args.design is None:
        raise NeuralignError("--order closed-loop needs --design with test stimuli (the test "
                             "set is fixed in advance)")
    memory = None if args.memory is None else parse_memory(args.memory)
    monitor = make_monitor(args)  # a bad --stop-when is one line before anything starts
    for opt, v in (("--rsa-every", args.rsa_every), ("--reselect-every", args.reselect_every)):
        if v < 1:
            raise NeuralignError(f"{opt} must be >= 1, got {v}")
    features = load_models(args.features)
    design = load_design(args.design) if args.design else None
    codes = read_codes(args.codes)
    policy = closed_loop_policy(args, design)
    settings = EpochSettings(
        tmin=args.tmin, tmax=args.tmax, sfreq=args.sfreq, baseline=_baseline(args),
        l_freq=args.l_freq, h_freq=args.h_freq, reject_ptp=args.reject_ptp,
        flat_ptp=args.flat_ptp, gap_s=args.gap)
    sess = LiveSession(features, eeg_stream=args.eeg_stream, marker_stream=args.marker_stream,
                       out_dir=args.out, settings=settings, design=design, codes=codes,
                       refresh_every=args.refresh_every,
                       connect_timeout=args.connect_timeout,
                       engine_kw={"backend": args.backend, "dtype": args.dtype,
                                  "memory": memory, "rsa_every": args.rsa_every,
                                  "reselect_every": args.reselect_every},
                       blas_threads=args.blas_threads or None, statistics=monitor,
                       stats_every=args.stats_every, closed_loop=policy)
    say(f"connecting to {args.eeg_stream!r} + {args.marker_stream!r}...")
    sess.connect()
    say(sess.connected_line())
    stop = threading.Event()

    def on_signal(name: str) -> None:
        say(f"\nstopping ({'Ctrl-C' if name == 'SIGINT' else name})...")

    with StopSignals(stop, on_signal=on_signal) as signals:  # until the results are written
        return _run_until_stopped(args, sess, stop, signals)


def _run_until_stopped(args, sess, stop: threading.Event, signals: StopSignals) -> int:
    sess.start()
    t_end = None if args.duration is None else time.monotonic() + args.duration
    tty = sys.stderr.isatty()
    last_print = 0.0
    try:
        while not stop.is_set() and sess.running:
            if t_end is not None and time.monotonic() >= t_end:
                break
            if sess.rule_met.is_set():
                print(f"\n{sess.stop_reason}", file=sys.stderr, flush=True)
                break
            stop.wait(0.25)
            now = time.monotonic()
            if not args.quiet and (tty or now - last_print >= 5.0):
                last_print = now
                end = "\r" if tty else "\n"
                if not say(sess.status_line().ljust(110), end=end):
                    signals.received = "broken pipe"  # nobody reads us: end cleanly
                    break
    except KeyboardInterrupt:
        say("\nstopping (Ctrl-C)...")
    result = sess.stop()
    if not args.quiet:
        say(("\n" if tty else "") + sess.status_line())
    from ..report import write_session  # matplotlib: only once the session is over

    title = args.title or f"neuralign live: {sess.eeg.name}"
    stopped = signals.received or ("stop rule" if sess.stop_reason else None) or (
        "duration" if args.duration is not None else "stream")
    result.settings.setdefault("live", {})["stopped_by"] = stopped  # results.json says why
    extra = {"recording": str(sess.recorder.dir)}
    if sess.stop_reason:
        extra["stop_reason"] = sess.stop_reason
    paths = write_session(result, args.out, title=title, extra=extra, results=sess.results,
                          stats=sess.stats)
    snap = sess.snapshot
    say(f"epochs: {snap.epochs_accepted} accepted, {snap.epochs_rejected} rejected "
        f"{snap.rejected_reasons or ''}; unknown markers: {snap.unknown_markers}"
        f"{' ' + str(list(snap.unknown_ids)[:5]) if snap.unknown_ids else ''}")
    say(f"recording: {sess.recorder.dir / 'session.xdf'}")
    if sess.loop is not None:
        errs = f", errors: {sess.loop.errors[:3]}" if sess.loop.errors else ""
        say(f"closed loop: {len(sess.loop.blocks)} blocks chosen and published; decisions in "
            f"{sess.loop.record_path}{errs}")
    for k, v in (paths or {}).items():
        say(f"{k}: {v}")
    return 0

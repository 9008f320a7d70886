"""``neuralign simulate-amp``: a simulated EEG amplifier on LSL (no hardware needed)."""

from __future__ import annotations

import argparse
import math
import sys
import uuid
from pathlib import Path

from ..errors import NeuralignError
from ..lsl import exposure_line
from . import add_alias
from .live import read_codes


def register(subparsers) -> None:
    """Add the ``simulate-amp`` sub-command to ``subparsers``."""
    p = subparsers.add_parser(
        "simulate-amp",
        help="simulated EEG amplifier on LSL",
        description=(
            "Stream continuous simulated EEG (neuralign.sim SyntheticBrain) on an LSL outlet in "
            "real time, adding the planted evoked response of every stimulus marker it sees "
            "(on --listen) or schedules itself (--schedule, with its own marker outlet and a "
            "session design file). Uses the machine-scope LSL configuration."
        ),
    )
    p.add_argument("--eeg-stream", default="neuralign-sim-eeg", metavar="NAME",
                   help="name of the EEG stream it creates")
    add_alias(p, "--name", dest="eeg_stream")
    p.add_argument("--source-id", default=None, help="source id (default: NAME-<random>)")
    p.add_argument("--sfreq", type=float, default=1000.0, help="sampling rate, Hz (1000)")
    p.add_argument("--channels", type=int, default=17,
                   help="channel count (17 = THINGS-EEG2 occipito-parietal set)")
    p.add_argument("--features", type=Path, default=None,
                   help="features driving the planted responses (without: white noise only)")
    p.add_argument("--snr", type=float, default=0.3, help="evoked SNR per layer (0.3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--listen", default=None, metavar="MARKER_STREAM",
                   help="respond to stimulus markers on this stream (e.g. the presenter's)")
    p.add_argument("--codes", type=Path, default=None,
                   help="JSON {code: stimulus_id} for an integer marker stream on --listen")
    p.add_argument("--schedule", action="store_true",
                   help="push a random stimulus sequence on an own marker outlet")
    p.add_argument("--marker-stream", default=None, metavar="NAME",
                   help="with --schedule: name of its own marker stream (EEG_STREAM-markers)")
    add_alias(p, "--marker-name", dest="marker_stream")
    p.add_argument("--design-out", type=Path, default=None,
                   help="write the session design here (default: NAME-design.json)")
    p.add_argument("--n-test", type=int, default=None, help="test stimuli (default N/5, <=40)")
    p.add_argument("--n-train", type=int, default=None, help="train stimuli (default: the rest)")
    p.add_argument("--train-reps", type=int, default=2)
    p.add_argument("--test-reps", type=int, default=5)
    p.add_argument("--soa", type=float, default=0.2, help="stimulus onset asynchrony, s (0.2)")
    p.add_argument("--jitter", type=float, default=0.0, help="extra uniform SOA jitter, s")
    p.add_argument("--unknown-every", type=int, default=0,
                   help="insert an unknown stimulus id every K presentations (testing)")
    p.add_argument("--control-every", type=int, default=0,
                   help="insert a block_N control marker every K presentations")
    p.add_argument("--counter", action="store_true", help="channel 0 = sample index")
    p.add_argument("--nan-every", type=float, default=0.0, help="NaN burst period, s (0: off)")
    p.add_argument("--nan-len", type=float, default=0.0, help="NaN burst length, s")
    p.add_argument("--delay", type=float, default=0.02,
                   help="amplifier latency: samples of time t are pushed at t+delay (0.02 s)")
    p.add_argument("--format", choices=["float32", "double64"], default="float32")
    p.add_argument("--duration", type=float, default=None,
                   help="seconds to stream (default: until Ctrl-C; with --schedule: its end + 2 s)")
    p.add_argument("--wait-consumer", type=float, default=30.0, metavar="SECONDS",
                   help="with --schedule: wait this long for consumers of both streams "
                        "before starting")
    add_alias(p, "--wait-consumers", dest="wait_consumer", convert=float)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Stream simulated EEG until Ctrl-C, SIGTERM or ``--duration``."""
    from ..sim.amp import SimulatedAmp, default_ch_names, make_schedule

    if args.channels < 1:
        raise NeuralignError("--channels must be >= 1")
    if not math.isfinite(args.wait_consumer) or args.wait_consumer < 0:
        raise NeuralignError(f"--wait-consumer must be a number of seconds >= 0, "
                             f"got {args.wait_consumer:g}")
    features = brain = None
    if args.features is not None:
        from ..io.features import load_features

        features = load_features(args.features)
        ch_names = default_ch_names(args.channels)
        from ..sim.brain import SyntheticBrain

        brain = SyntheticBrain(features, ch_names=ch_names, snr=args.snr, seed=args.seed)
    else:
        ch_names = (default_ch_names(args.channels) if args.channels <= 17
                    else [f"ch{i + 1}" for i in range(args.channels)])
        if args.counter:
            ch_names[0] = "counter"
    codes = read_codes(args.codes)
    name = args.eeg_stream
    source_id = args.source_id or f"{name}-{uuid.uuid4().hex[:8]}"
    schedule = None
    marker_name = args.marker_stream or f"{name}-markers"
    if args.schedule:
        if features is None:
            raise NeuralignError("--schedule needs --features (the stimulus ids to show)")
        ids = features.stimulus_ids.tolist()
        n_test = args.n_test if args.n_test is not None else min(40, len(ids) // 5)
        schedule = make_schedule(
            ids, n_test=n_test, n_train=args.n_train, train_reps=args.train_reps,
            test_reps=args.test_reps, soa=args.soa, jitter=args.jitter, seed=args.seed,
            unknown_every=args.unknown_every, control_every=args.control_every,
            marker_stream=marker_name, n_channels=len(ch_names), ch_names=ch_names)
        out = args.design_out or Path(f"{name}-design.json")
        schedule.design.save(out)
        print(f"design: {out} ({len(schedule.design.train_ids)} train, "
              f"{len(schedule.design.test_ids)} test stimuli, {len(schedule.ids)} presentations, "
              f"{schedule.duration:.1f} s)", file=sys.stderr)
    amp = SimulatedAmp(
        name=name, source_id=source_id, sfreq=args.sfreq, ch_names=ch_names, brain=brain,
        listen=args.listen, schedule=schedule, marker_name=marker_name, counter=args.counter,
        delay_s=args.delay, seed=args.seed, nan_every=args.nan_every, nan_len=args.nan_len,
        channel_format=args.format, wait_consumers_s=args.wait_consumer, codes=codes)
    print(f"streaming {name!r} (source_id {source_id}, {len(ch_names)} ch @ {args.sfreq:g} Hz)"
          + (f", markers on {marker_name!r}" if schedule else ""), file=sys.stderr, flush=True)
    print(exposure_line(), file=sys.stderr, flush=True)
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *a: amp.stop())
    try:
        amp.run(args.duration)
    except KeyboardInterrupt:
        pass
    print(f"stopped: {amp.produced} samples, {amp.markers_pushed} markers pushed, "
          f"{amp.markers_seen} seen, {amp.late_markers} late, "
          f"{amp.markers_unheard} sent with no consumer", file=sys.stderr)
    return 0

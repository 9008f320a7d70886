"""``neuralign session``: presenter + amplifier + live engine together."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from ..errors import NeuralignError
from ..stimulus.presenter import has_display
from . import add_model_args, add_window_args, feature_specs, make_monitor
from .present import add_session_options, config_overrides, one_line_warnings

# Without --config, a simulated session shows the built-in images, 20 of them as test stimuli
# (scored like THINGS-EEG2's test set), in about a minute.
SIMULATE_DEFAULTS = {
    "stimuli": {"source": "builtin", "n_test": 20, "train_reps": 2, "test_reps": 5},
    "blocks": {"n_blocks": 1},
}


def register(subparsers) -> None:
    """Add the ``session`` sub-command to ``subparsers``."""
    p = subparsers.add_parser(
        "session",
        help="presenter + amplifier + live engine together",
        description="Run the PsychoPy presenter, a simulated amplifier (neuralign simulate-amp) "
        "and the live engine (neuralign live, or the GUI) together as subprocesses. The "
        "presenter starts once the engine is connected; when it ends, the engine writes "
        "results.json, maps.npz, figures, report.html and its recording into --out (the same "
        "contract as `neuralign live`). Children's logs: OUT/logs/.",
    )
    add_session_options(p)
    p.add_argument("--simulate", action="store_true",
                   help="simulated amplifier (required for now: a real amplifier session is "
                   "`neuralign live` + `neuralign present`, see docs/stimulus.md)")
    p.add_argument("--headless", action="store_true",
                   help="no GUI: `neuralign live` in the background (and the presenter under "
                   "xvfb-run when there is no display)")
    p.add_argument("--duration", type=float, default=None,
                   help="stop after this many seconds (default: when the presenter ends)")
    p.add_argument("--out", type=Path, default=Path("session_out"), help="output folder")
    add_window_args(p)
    add_model_args(p, required=False, seed_flag="--stats-seed")
    p.add_argument("--model", default="",
                   help="compute real features first (`neuralign features --model NAME`)")
    p.add_argument("--snr", type=float, default=0.3, help="simulated evoked SNR (0.3)")
    p.add_argument("--channels", type=int, default=17, help="simulated channels (17)")
    p.add_argument("--sfreq", type=float, default=1000.0, help="simulated sampling rate (1000)")
    p.add_argument("--connect-timeout", type=float, default=60.0,
                   help="seconds the engine may take to find the streams (60)")
    p.set_defaults(func=run)


def _gui_available() -> bool:
    """Whether the gui extra (PySide6, pyqtgraph) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("PySide6", "pyqtgraph"))


def run(args: argparse.Namespace) -> int:
    """Plan a simulated session, then run presenter, amplifier and engine together."""
    from ..stimulus.config import load_config
    from .orchestrate import SessionSetup, run_session

    if not args.simulate:
        raise NeuralignError(
            "only --simulate sessions are orchestrated; with a real amplifier run "
            "`neuralign live --design OUT/design.json ...` and `neuralign present --config ...` "
            "(docs/stimulus.md)")
    make_monitor(args)  # a bad --stop-when: one line before any child starts
    specs = feature_specs(args.features)
    model_specs = [f"{k}={v}" for k, v in specs.items()]
    stats_args = ["--stats-every", str(args.stats_every), "--n-boot", str(args.n_boot),
                  "--n-perm", str(args.n_perm), "--seed", str(args.stats_seed)]
    if args.stop_when:
        stats_args += ["--stop-when", args.stop_when]
    gui = not args.headless
    if gui and not _gui_available():
        raise NeuralignError("the GUI needs the gui extra (PySide6, pyqtgraph): pip install "
                             "'neuralign[gui]', or use --headless")
    if gui and not has_display() and args.screenshot is None:
        raise NeuralignError("no display for the GUI: use --headless (the presenter then runs "
                             "under xvfb-run)")
    from ..realtime.recording import check_new_recording

    check_new_recording(args.out)  # before any child starts: a recording is never overwritten
    over = config_overrides(args)
    if args.config is None:
        from ..stimulus.config import merge_settings

        over = merge_settings(SIMULATE_DEFAULTS, over)
    with one_line_warnings():
        config = load_config(args.config, overrides=over)
        if args.headless and config.blocks.break_mode == "self-paced" and \
                config.blocks.n_blocks > 1:
            print("headless: self-paced breaks become timed breaks "
                  f"({config.blocks.break_s:g} s)", file=sys.stderr)
            config.blocks.break_mode = "timed"
        if not args.marker_stream and config.markers.stream_name == "neuralign-markers":
            import uuid

            # a simulated session must not collide with a real one on this machine
            config.markers.stream_name = f"neuralign-markers-{uuid.uuid4().hex[:6]}"
        plan = SessionSetup(
            config=config, out=args.out, model=args.model, gui=gui,
            features=next(iter(specs.values())) if specs else None,
            model_specs=model_specs if len(model_specs) > 1 else [], live_args=stats_args,
            duration=args.duration, snr=args.snr, channels=args.channels, sfreq=args.sfreq,
            xvfb=not has_display(), connect_timeout=args.connect_timeout,
            screenshot=args.screenshot, exit_after=args.exit_after,
        )
        return run_session(plan)

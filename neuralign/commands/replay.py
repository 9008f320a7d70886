"""``neuralign replay``: play a recording or a dataset through the engine, as if live.

In the window (default) with pause and speed control, or ``--headless`` as fast as it goes,
writing the results contract (``results.json``, ``maps.npz``, figures, ``report.html``) to
``--out``. This is the in-process path: epochs go straight into the engine, no LSL.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from ..base import EpochData
from ..errors import NeuralignError
from . import add_alias, add_model_args, add_window_args, feature_specs, load_models, make_monitor
from .datasets import load_dataset


def register(subparsers) -> None:
    """Add the ``replay`` sub-command to ``subparsers``."""
    p = subparsers.add_parser(
        "replay",
        help="replay a recording or dataset through the engine",
        description=(
            "Feed a past session (--recording) or any dataset (--dataset KIND:PATH) through the "
            "alignment engine at real speed or faster and watch the maps build up in the "
            "window, or run --headless and write the results."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--recording", type=Path, metavar="DIR",
                     help="a live session's output folder (or its .xdf)")
    src.add_argument("--dataset", metavar="KIND:PATH",
                     help="e.g. things-eeg2:/data/sub-01, sim:/tmp/sim, mne-epochs:x-epo.fif")
    add_model_args(p, required=False, seed_flag="--stats-seed")
    p.add_argument("--speed", type=float, default=None,
                   help="x real time (default 1 in the window, as fast as possible with "
                        "--headless); 0 = as fast as possible")
    p.add_argument("--soa", type=float, default=None,
                   help="seconds between stimulus onsets (default: recorded onsets, else 0.2)")
    p.add_argument("--order", choices=("as-is", "shuffle"), default=None,
                   help="epoch order (default: as-is for --recording, shuffle for --dataset, "
                        "since dataset files group training and test epochs)")
    p.add_argument("--seed", type=int, default=0, help="seed of --order shuffle")
    p.add_argument("--max-epochs", type=int, default=None, help="play only the first N epochs")
    p.add_argument("--refresh-every", type=float, default=2.0, metavar="SECONDS",
                   help="seconds between map refreshes in the window (default 2)")
    add_alias(p, "--refresh", dest="refresh_every", convert=float)
    p.add_argument("--loop", action="store_true", help="start over when the data run out")
    p.add_argument("--backend", default="numpy", help="engine backend: numpy, torch, torch_cuda")
    p.add_argument("--headless", action="store_true", help="no window: play, write --out, exit")
    p.add_argument("--lsl", action="store_true",
                   help="stream the data over LSL (EEG + string markers, machine scope) instead "
                        "of feeding the engine in-process: connect `neuralign live` or `gui` to it")
    p.add_argument("--eeg-stream", default=None, metavar="NAME",
                   help="with --lsl: EEG stream name (markers: NAME-markers; default unique)")
    add_alias(p, "--lsl-name", dest="eeg_stream")
    p.add_argument("--out", type=Path, default=None,
                   help="write results here (at the end, or when the window closes)")
    add_window_args(p)
    p.set_defaults(func=run)


def _default_features(args, data) -> Path:
    if args.features:
        return args.features
    cands = []
    feat = data.info.get("features") or (data.info.get("settings") or {}).get("features")
    if isinstance(feat, str) and feat:
        cands.append(Path(feat))
    base = args.recording if args.recording is not None else Path(args.dataset.partition(":")[2])
    if args.recording is not None:  # the features the live session used (session.json)
        for meta in (base / "recording" / "session.json", base / "session.json",
                     base.parent / "session.json"):
            try:
                prov = json.loads(meta.read_text()).get("features", {})
                # a feature cache records where it lies as cache_file; a .npz as source
                srcs = [prov.get("cache_file"), prov.get("source")]
            except (OSError, ValueError, AttributeError):
                continue
            cands += [Path(src) for src in srcs if isinstance(src, str) and src]
    for d in (base, base.parent, base.parent.parent):
        cands.append(d / "features.npz")
    for c in cands:
        if c.exists():
            return c
    raise NeuralignError("no features found for this dataset: give --features FILE",
                         path=base)


def replay_data(args: argparse.Namespace) -> tuple[EpochData, str]:
    """The epochs to replay, in replay order, and their dataset spec.

    Parameters
    ----------
    args : argparse.Namespace
        ``recording`` or ``dataset``, ``order``, ``seed``, ``max_epochs``.

    Returns
    -------
    data : EpochData
        Reordered (``--order``) and cut (``--max-epochs``).
    spec : str
        The dataset as ``KIND:PATH``.
    """
    spec = f"recording:{args.recording}" if args.recording is not None else args.dataset
    data = load_dataset(spec)
    if data.n_epochs == 0:
        raise NeuralignError("the dataset holds no epochs", path=spec.partition(":")[2])
    order = args.order or ("as-is" if args.recording is not None else "shuffle")
    data = data.sorted_by(order, seed=args.seed)
    if args.max_epochs is not None:
        if args.max_epochs < 1:
            raise NeuralignError("--max-epochs must be at least 1")
        data = data.head(args.max_epochs)
    return data, spec


def build_source(args: argparse.Namespace):
    """The replay source for the parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        The ``replay`` options.

    Returns
    -------
    source : ReplaySource
        Not started.
    data : EpochData
        What it plays.
    features : Path
        The features file used.
    spec : str
        The dataset as ``KIND:PATH``.
    """
    from ..realtime.replay import ReplaySource, make_engine

    monitor = make_monitor(args)  # a bad --stop-when: one line, before anything is loaded
    data, spec = replay_data(args)
    fpath = _default_features(args, data)
    features = load_models(fpath)
    engine = make_engine(data, features, backend=args.backend)
    speed = args.speed
    if speed is None:
        speed = math.inf if args.headless else 1.0
    if speed < 0:
        raise NeuralignError("--speed must be >= 0 (0 = as fast as possible)")
    if args.refresh_every <= 0:
        raise NeuralignError("--refresh-every must be > 0 seconds")
    name = Path(spec.partition(":")[2]).name or spec
    source = ReplaySource(data, engine, speed=speed if speed > 0 else math.inf, soa=args.soa,
                          refresh_interval=args.refresh_every, name=name, loop=args.loop,
                          monitor=monitor, stats_every=args.stats_every)
    return source, data, fpath, spec


def _extra(data, fpath, spec) -> dict:
    feats = {k: str(v) for k, v in feature_specs(fpath).items()}
    extra = {"dataset": spec, "features": feats if len(feats) > 1 else str(fpath),
             "replayed": True}
    for k in ("planted", "simulated"):
        if k in data.info:
            extra[k] = data.info[k]
    return extra


def _summary(snap, out=None) -> None:
    out = sys.stdout if out is None else out  # the stdout of now (pytest swaps it)
    res = snap.result
    print(f"replayed {snap.epochs_accepted} epochs ({snap.epochs_rejected} rejected), "
          f"{snap.stimuli_seen} stimuli", file=out)
    if res is None:
        print("no maps: too few epochs for a refresh", file=out)
        return
    lat, val = res.peaks("encoding")
    rlat, _ = res.peaks("rsa")
    print("layer  enc_peak_ms  peak_r  rsa_peak_ms", file=out)
    for name, a, v, b in zip(res.layers, lat, val, rlat):
        fa = "-" if not math.isfinite(a) else f"{1000 * a:.0f}"
        fb = "-" if not math.isfinite(b) else f"{1000 * b:.0f}"
        fv = "-" if not math.isfinite(v) else f"{v:.3f}"
        print(f"{name}  {fa}  {fv}  {fb}", file=out)


def _run_lsl(args: argparse.Namespace) -> int:
    """Stream a dataset or recording over LSL as if it were live."""
    from ..sim.player import LSLReplayer

    data, _ = replay_data(args)
    speed = 1.0 if args.speed is None else args.speed
    rep = LSLReplayer(data, name=args.eeg_stream, speed=speed)
    print(f"streaming {data.epochs.shape[0]} epochs over LSL: EEG {rep.name!r} "
          f"({len(data.ch_names)} ch @ {rep.sfreq:g} Hz), markers {rep.name + '-markers'!r}; "
          "waiting for a consumer (e.g. neuralign live)...", flush=True)
    try:
        if not rep.wait_for_consumers(timeout=120.0):
            raise NeuralignError(f"no consumer connected to {rep.name!r} within 120 s")
        n = rep.run()
        time.sleep(1.0)  # let the inlets drain before the outlets go away
    finally:
        rep.close()
    print(f"sent {n} epochs")
    return 0


def run(args: argparse.Namespace) -> int:
    """Replay in the window, headless, or over LSL; write the results when asked."""
    if args.lsl:
        return _run_lsl(args)
    if args.headless and (args.screenshot is not None or args.exit_after is not None):
        raise NeuralignError("--screenshot/--exit-after need the window: drop --headless")
    if args.headless and args.out is None:
        raise NeuralignError("--headless needs --out DIR for the results")
    if args.headless and args.loop:
        raise NeuralignError("--loop never ends: drop it with --headless")
    if args.exit_after is not None and args.exit_after < 0:
        raise NeuralignError("--exit-after must be >= 0 seconds")
    source, data, fpath, spec = build_source(args)
    extra = _extra(data, fpath, spec)
    title = f"neuralign replay: {spec}"
    if args.headless:
        from tqdm import tqdm

        rule = source.publisher.monitor.rule
        with tqdm(total=data.epochs.shape[0], desc="replay", unit="epoch", file=sys.stderr) as bar:
            source.run_to_end(progress=bar.update, refresher=rule is not None)
        result = source.final_result()
        snap = source.latest()
        if result is None:
            raise NeuralignError(f"no maps after {snap.epochs_accepted} epochs: "
                                 f"{source.error or 'too few epochs'}")
        if source.stop_reason:
            print(source.stop_reason, file=sys.stderr)
            extra["stop_reason"] = source.stop_reason
        paths = _write(result, args.out, title=title, extra=extra, source=source)
        _summary(snap)
        print(f"results written to {args.out} ({len(paths)} files)")
        return 0

    from ..app.run import run_window

    rc = run_window(source, screenshot=args.screenshot, exit_after=args.exit_after, title=title)
    if args.screenshot is not None:
        print(f"screenshot written to {args.screenshot}")
    if args.out is not None:
        print("final refresh of the maps...", file=sys.stderr)
        result = source.final_result()  # the window is closed: this may take a moment
        snap = source.latest()
        _summary(snap)
        if result is None:
            raise NeuralignError(f"no maps to write: {source.error or 'too few epochs'}")
        paths = _write(result, args.out, title=title, extra=extra, source=source)
        print(f"results written to {args.out} ({len(paths)} files)")
    else:
        source.stop()
        snap = source.latest()
        if snap is not None:
            _summary(snap)
    return rc


def _write(result, out, *, title, extra, source):
    from ..report import write_session

    pub = source.publisher
    return write_session(result, out, title=title, extra=extra, results=pub.results,
                         stats=pub.stats)

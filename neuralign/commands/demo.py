"""``neuralign demo``: the embedded demo, end to end, in three stages.

1. ``offline``: a simulated THINGS-EEG2-layout subject over synthetic CNN-like features, analysed
   with the offline pipeline; reports whether the planted layer-latency hierarchy is recovered.
2. ``real``: features of the built-in real model ``vit_s14_focus`` on the built-in natural
   images (ONNX Runtime), a synthetic brain planted over those real features, analysed the same
   way. The model is real; the EEG is simulated.
3. ``live``: a simulated amplifier streams EEG over LSL (machine scope, loopback) with its own
   scheduled marker stream; ``neuralign live`` epochs, accumulates and refreshes the maps live,
   records the session and writes the report.

All EEG in the demo is SIMULATED (see :mod:`neuralign.sim`): no image-evoked EEG ships in any
package this project can install.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..base import FeatureSet
from ..base.truth import planted_record
from ..errors import NeuralignError
from . import neuralign_command


def _synthetic(stimulus_ids: list[str], *, n_layers: int, dim: int, seed: int) -> FeatureSet:
    from ..sim.features import hierarchical_features

    return hierarchical_features(stimulus_ids, n_layers=n_layers, dim=dim, seed=seed)


#: name -> function(stimulus_ids, *, n_layers, dim, seed) -> FeatureSet.
FEATURE_SOURCES: dict[str, Callable[..., FeatureSet]] = {"synthetic": _synthetic}

DEMO = {"n_train": 1000, "n_test": 200, "train_reps": 4, "test_reps": 40, "n_layers": 10,
        "dim": 64, "snr": 0.2}


def register(subparsers) -> None:
    """Add the ``demo`` sub-command to ``subparsers``."""
    p = subparsers.add_parser(
        "demo",
        help="run the embedded demo end to end",
        description=(
            "Simulate a subject in THINGS-EEG2 layout (SIMULATED EEG with a planted layer x "
            "latency hierarchy), analyse it like real data and report whether the planted "
            "hierarchy is recovered. Writes OUT/data and OUT/results."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder")
    p.add_argument("--features-source", default="synthetic", choices=sorted(FEATURE_SOURCES))
    p.add_argument("--n-train", type=int, default=DEMO["n_train"])
    p.add_argument("--n-test", type=int, default=DEMO["n_test"])
    p.add_argument("--train-reps", type=int, default=DEMO["train_reps"])
    p.add_argument("--test-reps", type=int, default=DEMO["test_reps"])
    p.add_argument("--layers", type=int, default=DEMO["n_layers"])
    p.add_argument("--dim", type=int, default=DEMO["dim"])
    p.add_argument("--snr", type=float, default=DEMO["snr"],
                   help="evoked amplitude / background RMS (default 0.2: peak r ~0.5 here)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--stages", default="offline,real,live",
                   help="comma-separated stages to run: offline, real, live (default: all)")
    p.add_argument("--model", default="vit_s14_focus",
                   help="built-in real model for the real and live stages (vit_s14_focus)")
    p.add_argument("--live-seconds", type=float, default=None,
                   help="length of the simulated live session (default: the schedule, ~42 s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo's stages and print a summary."""
    stages = [x.strip() for x in args.stages.split(",") if x.strip()]
    bad = [x for x in stages if x not in ("offline", "real", "live")]
    if bad or not stages:
        raise NeuralignError(f"--stages: unknown stage(s) {bad}; use offline, real, live")
    t0 = time.perf_counter()
    out = Path(args.out)
    summary = []
    if "offline" in stages:
        summary.append(("offline (synthetic features, simulated EEG)", _stage_offline(args, out)))
    if "real" in stages or "live" in stages:
        feats = _real_features(args, out)
        if "real" in stages:
            summary.append((f"real model {args.model} (simulated EEG)",
                            _stage_real(args, out, feats)))
        if "live" in stages:
            summary.append(("live LSL session (simulated amplifier)",
                            _stage_live(args, out, feats)))
    print("\n== neuralign demo summary ==")
    for name, line in summary:
        print(f"- {name}: {line}")
    print(f"all outputs under {out}/ ({time.perf_counter() - t0:.0f} s). The EEG in every stage "
          "is simulated; the models of the real/live stages are real.")
    return 0


def _cli(*argv: str, quiet: bool = False) -> subprocess.CompletedProcess:
    """Run a neuralign sub-command in a child process (its own LSL/ONNX state); fail loudly."""
    cmd = neuralign_command(*argv)
    proc = subprocess.run(cmd, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL if quiet else None)
    if proc.returncode != 0:
        raise NeuralignError(f"`neuralign {' '.join(argv)}` failed (exit {proc.returncode})")
    return proc


def _real_features(args, out: Path) -> Path:
    feats = out / "real" / f"features_{args.model}"
    feats.parent.mkdir(parents=True, exist_ok=True)
    print(f"\n== features of the real model {args.model} on the built-in natural images ==",
          file=sys.stderr)
    _cli("features", "--model", args.model, "--stimuli", "builtin", "--out", str(feats),
         *(["--no-progress"] if args.quiet else []))
    return feats


def _recovery_line(res_dir: Path) -> str:
    extra = json.loads((res_dir / "extra.json").read_text()) if (res_dir / "extra.json").exists() else {}
    rec = extra.get("recovery") or {}
    res = json.loads((res_dir / "results.json").read_text())
    peak = max((v for v in res["encoding"]["peak_r"] if v is not None), default=float("nan"))
    if rec:
        return (f"peak r {peak:.2f}; planted hierarchy Spearman {rec.get('spearman', float('nan')):.2f}, "
                f"mean |error| {rec.get('mae_ms', float('nan')):.0f} ms; "
                f"report {res_dir / 'report.html'}")
    return f"peak r {peak:.2f}; report {res_dir / 'report.html'}"


def _stage_real(args, out: Path, feats: Path) -> str:
    print("\n== real model features, SIMULATED brain: simulate + analyze ==", file=sys.stderr)
    sim = out / "real" / "data"
    _cli("simulate", "--out", str(sim), "--features", str(feats), "--n-train", "82",
         "--n-test", "20", "--train-reps", "4", "--test-reps", "40", "--seed", str(args.seed),
         quiet=args.quiet)
    res_dir = out / "real" / "results"
    proc = _cli("analyze", "--dataset", f"things-eeg2:{sim / 'sub-01'}", "--features", str(feats),
                "--out", str(res_dir), "--title",
                f"neuralign demo: real model {args.model}, SIMULATED EEG",
                *(["--quiet"] if args.quiet else []))
    print(proc.stdout, end="")
    print("note: neighbouring layers of a real model represent the images very similarly (their "
          "RDMs correlate ~0.8-0.97 for vit_s14_focus), so each layer also explains the EEG planted through "
          "its neighbours and "
          "the recovered peaks bunch together; the synthetic-feature stage shows the "
          "recovery on separable layers.")
    return _recovery_line(res_dir) + " (neighbouring real layers are similar: see the note)"


def _stage_live(args, out: Path, feats: Path) -> str:
    import uuid

    from ..lsl import configure_lsl

    configure_lsl()
    n_test, train_reps, test_reps, soa = 20, 1, 6, 0.2
    from ..io.features import load_features

    n_stim = load_features(feats).n_stimuli
    schedule_s = ((n_stim - n_test) * train_reps + n_test * test_reps) * soa
    seconds = args.live_seconds or schedule_s + 1.5  # + tmax of the last epoch
    print(f"\n== live: simulated amplifier on LSL + neuralign live ({seconds:.0f} s) ==",
          file=sys.stderr)
    live_dir, k = out / "live", 1
    while (live_dir / "recording").exists():  # a recording is never overwritten: a new run
        k += 1
        live_dir = out / f"live-{k}"
    live_dir.mkdir(parents=True, exist_ok=True)
    name = f"neuralign-demo-eeg-{uuid.uuid4().hex[:6]}"
    design = live_dir / "design.json"
    amp_cmd = neuralign_command(
        "simulate-amp", "--eeg-stream", name, "--features", str(feats), "--schedule",
        "--design-out", str(design), "--n-test", str(n_test), "--train-reps", str(train_reps),
        "--test-reps", str(test_reps), "--soa", str(soa), "--seed", str(args.seed),
        "--snr", "0.5",
        # keep streaming past the schedule: the demo stops the amplifier after `live`
        "--duration", f"{seconds + 60:.0f}")
    amp_log = (live_dir / "simulate-amp.log").open("w")
    amp = subprocess.Popen(amp_cmd, stdout=amp_log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):  # the amplifier writes the design before it streams
            if design.exists() or amp.poll() is not None:
                break
            time.sleep(0.1)
        if not design.exists():
            raise NeuralignError(f"the simulated amplifier did not start (see {amp_log.name})")
        proc = _cli("live", "--eeg-stream", name, "--marker-stream", f"{name}-markers",
                    "--features", str(feats), "--design", str(design), "--out",
                    str(live_dir / "results"), "--duration", f"{seconds:.1f}",
                    "--title", f"neuralign demo: live session, real model {args.model}, "
                    "SIMULATED amplifier", *(["--quiet"] if args.quiet else []))
        print(proc.stdout, end="")
    finally:
        amp.terminate()
        try:
            amp.wait(timeout=15)
        except subprocess.TimeoutExpired:
            amp.kill()
        amp_log.close()
    res = json.loads((live_dir / "results" / "results.json").read_text())
    peak = max((v for v in res["encoding"]["peak_r"] if v is not None), default=float("nan"))
    c = res.get("counts", {})
    return (f"{c.get('n_epochs', '?')} epochs live, peak r {peak:.2f}; recording "
            f"{live_dir / 'results' / 'recording'}; report {live_dir / 'results' / 'report.html'}")


def _stage_offline(args: argparse.Namespace, out: Path) -> str:
    from ..io.features import load_features
    from ..offline.things_eeg2 import load_things_eeg2
    from ..report import write_outputs
    from ..sim.dataset import things_like_ids, write_things_eeg2
    from ..sim.truth import recovery
    from .analyze import analyze, summary_lines

    if args.n_test < 3 or args.n_train < 5:
        raise NeuralignError("the demo needs at least 5 train and 3 test images")
    t0 = time.perf_counter()
    data_dir, res_dir = out / "offline" / "data", out / "offline" / "results"
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    say("neuralign demo: the EEG below is SIMULATED (synthetic brain with planted layer "
        "latencies), not recorded.")
    train, _, test, _ = things_like_ids(args.n_train, args.n_test)
    features = FEATURE_SOURCES[args.features_source](
        train + test, n_layers=args.layers, dim=args.dim, seed=args.seed
    )
    say(f"simulating {args.n_train} train images x {args.train_reps} reps and {args.n_test} "
        f"test images x {args.test_reps} reps, {features.n_layers} layers -> {data_dir}")
    sdir = write_things_eeg2(
        data_dir, n_train=args.n_train, n_test=args.n_test, train_reps=args.train_reps,
        test_reps=args.test_reps, features=features, seed=args.seed,
        brain_kw={"snr": args.snr},
    )
    planted = json.loads((data_dir / "planted.json").read_text())
    data = load_things_eeg2(sdir)
    fs = load_features(data_dir / "features.npz")
    say(f"analysing -> {res_dir}")
    result = analyze(data, fs, quiet=args.quiet)
    rec = recovery(result, planted["peak_latencies_s"])
    extra = {
        "simulated": True,
        "command": "neuralign demo",
        "dataset": f"things-eeg2:{sdir}",
        "features": str(data_dir / "features.npz"),
        "features_source": args.features_source,
        "planted": planted_record(planted),
        "recovery": rec,
        "simulation": planted.get("settings", {}),
    }
    paths = write_outputs(result, res_dir,
                          title="neuralign demo (SIMULATED EEG, planted hierarchy)", extra=extra)
    for line in summary_lines(result, planted):
        print(line)
    print("NOTE: this EEG is simulated by neuralign's synthetic brain; the planted latencies "
          "are the ground truth the analysis had to find.")
    print(f"report: {paths['report']}  results: {paths['results']}  "
          f"({time.perf_counter() - t0:.1f} s)")
    return (f"planted hierarchy {'RECOVERED' if rec.get('recovered') else 'NOT recovered'} "
            f"(Spearman {rec.get('spearman', float('nan')):.2f}, mean |error| "
            f"{rec.get('mae_ms', float('nan')):.1f} ms); report {paths['report']}")

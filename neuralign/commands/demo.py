"""``neuralign demo``: simulate a subject with a planted answer, analyse it, report recovery.

The EEG of the demo is SIMULATED (see :mod:`neuralign.sim`). The features that drive the
synthetic brain come from a pluggable source (:data:`FEATURE_SOURCES`); today the only source
is a synthetic CNN-like hierarchy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..align.data import FeatureSet
from ..errors import NeuralignError


def _synthetic(stimulus_ids: list[str], *, n_layers: int, dim: int, seed: int) -> FeatureSet:
    from ..sim.features import hierarchical_features

    return hierarchical_features(stimulus_ids, n_layers=n_layers, dim=dim, seed=seed)


#: name -> function(stimulus_ids, *, n_layers, dim, seed) -> FeatureSet.
FEATURE_SOURCES: dict[str, Callable[..., FeatureSet]] = {"synthetic": _synthetic}

DEMO = {"n_train": 1000, "n_test": 200, "train_reps": 4, "test_reps": 40, "n_layers": 10,
        "dim": 64, "snr": 0.2}


def register(subparsers) -> None:
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..io.features import load_features
    from ..offline.things_eeg2 import load_things_eeg2
    from ..report import write_outputs
    from ..sim.dataset import things_like_ids, write_things_eeg2
    from .analyze import analyze, recovery, summary_lines

    if args.n_test < 3 or args.n_train < 5:
        raise NeuralignError("the demo needs at least 5 train and 3 test images")
    t0 = time.perf_counter()
    out = Path(args.out)
    data_dir, res_dir = out / "data", out / "results"
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
        "planted": {"layers": planted["layers"],
                    "peak_latencies_s": planted["peak_latencies_s"]},
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
    return 0

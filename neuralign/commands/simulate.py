"""``neuralign simulate``: write a simulated subject in THINGS-EEG2 layout with a planted answer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import NeuralignError


def register(subparsers) -> None:
    """Add the ``simulate`` sub-command to ``subparsers``."""
    p = subparsers.add_parser(
        "simulate",
        help="write a simulated subject with a planted answer",
        description=(
            "Simulate EEG in the THINGS-EEG2 preprocessed layout from layer features: each "
            "layer drives the EEG at its own planted latency. Writes OUT/image_metadata.npy, "
            "OUT/features.npz, OUT/planted.json and OUT/sub-01/preprocessed_eeg_*.npy."
        ),
    )
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--n-train", type=int, default=1000, help="train images (default 1000)")
    p.add_argument("--n-test", type=int, default=200, help="test images (default 200)")
    p.add_argument("--train-reps", type=int, default=4, help="repetitions per train image")
    p.add_argument("--test-reps", type=int, default=80, help="repetitions per test image")
    p.add_argument("--layers", type=int, default=10, help="synthetic layers (default 10)")
    p.add_argument("--dim", type=int, default=64, help="synthetic features per layer")
    p.add_argument("--snr", type=float, default=None,
                   help="evoked amplitude / background RMS per layer (default 0.09: r~0.5 at "
                        "full THINGS-EEG2 size; use ~0.2 for ~1000 train images)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--features", type=Path, default=None,
                   help="features to drive the brain (.npz interchange format or feature "
                        "cache); its first n-train stimuli train, the next n-test test")
    p.add_argument("--subject", default="sub-01", help="subject folder name")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write a simulated THINGS-EEG2 subject with a planted answer."""
    from ..sim.dataset import write_things_eeg2

    for name in ("n_train", "n_test", "train_reps", "test_reps", "layers", "dim"):
        if getattr(args, name) < 1:
            raise NeuralignError(f"--{name.replace('_', '-')} must be at least 1")
    features = None
    if args.features is not None:
        from ..io.features import load_features

        features = load_features(args.features)
    brain_kw = {} if args.snr is None else {"snr": args.snr}
    sdir = write_things_eeg2(
        args.out,
        n_train=args.n_train,
        n_test=args.n_test,
        train_reps=args.train_reps,
        test_reps=args.test_reps,
        features=features,
        n_layers=args.layers,
        dim=args.dim,
        seed=args.seed,
        subject=args.subject,
        brain_kw=brain_kw,
    )
    print(f"simulated subject written to {sdir} (SIMULATED EEG; truth in {args.out}/planted.json)",
          file=sys.stdout)
    print(f"analyze it with: neuralign analyze --dataset things-eeg2:{sdir} "
          f"--features {args.out}/features.npz --out RESULTS_DIR")
    return 0

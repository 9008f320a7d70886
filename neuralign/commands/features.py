"""``neuralign features``: extract and cache layer features with ONNX Runtime."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "features", help="extract/cache layer features with ONNX Runtime",
        description="Run a model (built-in name, exported model folder or .onnx file) on a "
                    "stimulus set and write (or reuse) its feature cache (.npz). The cache is "
                    "keyed by the hashes of the model file(s) and of every image: a changed "
                    "image or model recomputes it.",
    )
    p.add_argument("--model", required=True,
                   help="built-in name (see `neuralign models list`), exported model folder, "
                        "or .onnx file")
    p.add_argument("--stimuli", required=True,
                   help="'builtin', a folder of images, or a THINGS image folder "
                        "(with image_metadata.npy)")
    p.add_argument("--out", required=True,
                   help="cache file (.npz) or folder (a file named after model/pooling/stimuli)")
    p.add_argument("--pca", type=int, default=None, metavar="N",
                   help="keep N principal components per layer, fit on training stimuli only")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--pooling", choices=("cls", "mean", "last"), default=None,
                   help="token pooling (default: the model's; LVLM decoder layers use the "
                        "last prompt token unless 'mean' is asked)")
    p.add_argument("--device", choices=("auto", "cpu"), default="auto",
                   help="auto: CUDA provider when available, else CPU")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument("--force", action="store_true", help="recompute even if the cache is valid")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models.extract import extract_features
    from ..models.runtime import choose_providers

    res = extract_features(
        args.model, args.stimuli, args.out, pca=args.pca, batch_size=args.batch_size,
        pooling=args.pooling, providers=choose_providers("cpu" if args.device == "cpu" else None),
        threads=args.threads, progress=not args.no_progress, force=args.force,
    )
    if res.skipped:
        print(f"skipped {len(res.skipped)} unreadable/non-image file(s), e.g. {res.skipped[0][0]}")
    verb = "reused" if res.reused else "wrote"
    rate = "" if res.reused else (
        f" in {res.seconds:.1f} s ({res.n_stimuli / res.seconds:.1f} img/s, "
        f"{res.providers[0]})")
    print(f"{verb} {res.path}: {res.n_stimuli} stimuli x {res.n_layers} layers{rate}")
    return 0

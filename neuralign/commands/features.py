"""``neuralign features``: extract layer features into per-layer caches (resumable)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add the ``features`` sub-command."""
    p = subparsers.add_parser(
        "features", help="extract/cache layer features with ONNX Runtime",
        description="Run a model (built-in name, exported model folder or .onnx file) on a "
                    "stimulus set and write (or reuse, or resume) its feature cache: a folder "
                    "with one memory-mappable .npy per layer, written batch by batch. The "
                    "cache is keyed by the hashes of the model file(s) and of every image: a "
                    "changed image or model recomputes it; an interrupted run resumes.",
    )
    p.add_argument("--model", required=True,
                   help="built-in name (see `neuralign models list`), exported model folder, "
                        "or .onnx file")
    p.add_argument("--stimuli", required=True,
                   help="'builtin', a folder of images, or a THINGS image folder "
                        "(with image_metadata.npy)")
    p.add_argument("--out", required=True,
                   help="cache folder (new, or an existing cache), or a folder in which "
                        "caches named after model/pooling/stimuli[/prompt] are written")
    p.add_argument("--prompt", action="append", default=None, metavar="TEXT",
                   help="LVLMs: a prompt (repeatable): one labelled feature set per prompt "
                        "from one pass over the images (default: the model's default prompt)")
    p.add_argument("--prompts", default=None, metavar="FILE",
                   help="LVLMs: prompts file (one per line, 'label<TAB>prompt' or just the "
                        "prompt; or a JSON object {label: prompt})")
    p.add_argument("--template", default=None,
                   help="LVLMs: prompt template overriding the family's ({prompt}, <image>, "
                        "<bos> markers)")
    p.add_argument("--text", default=None, metavar="SOURCE",
                   help="caption features instead of image features: 'concepts' (THINGS "
                        "concepts, concept sub-folders, built-in names) or a captions file "
                        "(JSON {id: caption} or 'id<TAB>caption' lines)")
    p.add_argument("--text-template", default=None,
                   help="template of the captions, e.g. 'a photo of a {text}.'")
    p.add_argument("--stages", default=None,
                   help="only these stages, comma-separated (vision, qformer, projector, llm, "
                        "text, embed, other)")
    p.add_argument("--pca", type=int, default=None, metavar="N",
                   help="keep N principal components per layer, fit on training stimuli only")
    p.add_argument("--batch-size", default="auto",
                   help="images per batch, or 'auto' (chosen from the memory available)")
    p.add_argument("--memory", default=None,
                   help="memory budget for --batch-size auto, e.g. 8G (default: half of what "
                        "is available)")
    p.add_argument("--pooling", choices=("cls", "mean", "last", "all"), default=None,
                   help="token pooling (default: the model's). Decoder layers: last prompt "
                        "token (default), mean over image tokens, or all tokens")
    p.add_argument("--device", choices=("auto", "cpu"), default="auto",
                   help="auto: CUDA provider when available, else CPU")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads")
    p.add_argument("--force", action="store_true", help="recompute even if the cache is valid")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``neuralign features``."""
    from ..base.resources import parse_memory
    from ..errors import NeuralignError
    from ..models.extract import extract_features
    from ..models.prompts import gather_prompts
    from ..models.runtime import choose_providers
    from ..models.stages import parse_stages

    try:
        stages = parse_stages(args.stages)
    except ValueError as e:
        raise NeuralignError(f"--stages: {e}") from None
    bs = args.batch_size
    if bs != "auto":
        try:
            bs = int(bs)
        except ValueError:
            raise NeuralignError(f"--batch-size: expected a number or 'auto', got {bs!r}") from None
    results = extract_features(
        args.model, args.stimuli, args.out, pca=args.pca, batch_size=bs,
        memory=None if args.memory is None else parse_memory(args.memory), pooling=args.pooling,
        prompts=gather_prompts(args.prompt, args.prompts) or None, template=args.template,
        stages=stages, text=args.text, text_template=args.text_template,
        providers=choose_providers("cpu" if args.device == "cpu" else None),
        threads=args.threads, progress=not args.no_progress, force=args.force,
    )
    first = results[0]
    if first.skipped:
        print(f"skipped {len(first.skipped)} unreadable/non-image file(s), "
              f"e.g. {first.skipped[0][0]}")
    if not first.reused:
        print(f"batch size {first.batch_size} ({first.batch_reason}); providers "
              f"{', '.join(first.providers)}")
    for res in results:
        verb = "reused" if res.reused else ("resumed" if res.resumed_from else "wrote")
        label = f" [{res.label}]" if res.label else ""
        rate = "" if res.reused else (
            f" in {res.seconds:.1f} s "
            f"({(res.n_stimuli - res.resumed_from) / max(res.seconds, 1e-9):.1f} img/s)")
        print(f"{verb} {res.path}{label}: {res.n_stimuli} stimuli x {res.n_layers} layers{rate}")
    return 0

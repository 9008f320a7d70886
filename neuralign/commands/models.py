"""``neuralign models``: list supported families and built-in models; export to ONNX."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    """Add the ``models`` sub-command (list, export, build)."""
    p = subparsers.add_parser(
        "models", help="list or export models (ONNX with every layer)",
        description="List the supported model families and built-in models, export a local "
                    "Hugging Face model folder to ONNX with every layer's pooled output, or "
                    "prepare a built-in model.",
    )
    sub = p.add_subparsers(dest="models_command", metavar="ACTION")
    ls = sub.add_parser("list", help="supported families and built-in models")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ex = sub.add_parser("export", help="export a local Hugging Face model folder to ONNX")
    ex.add_argument("model_dir", help="folder with config.json and weights (nothing downloaded)")
    ex.add_argument("--out", required=True, help="output folder (ONNX graph(s) + description)")
    ex.add_argument("--image-size", type=int, default=None,
                    help="input size (default: the config's image_size; LLaVA-NeXT/OneVision: "
                         "the square size whose anyres tile grid is exported, default 2 tiles)")
    ex.add_argument("--prompt", default=None,
                    help="LVLMs: the default prompt recorded with the export (prompts are "
                         "chosen at extraction: neuralign features --prompt)")
    ex.add_argument("--runtime", choices=("auto", "torch"), default="auto",
                    help="auto: ONNX where ONNX Runtime runs a part, torch eager elsewhere; "
                         "torch: every part with torch eager")
    bu = sub.add_parser("build", help="prepare (export, hash-check) a built-in model")
    bu.add_argument("name", help="built-in model name")
    bu.add_argument("--force", action="store_true", help="re-export even if cached")
    p.set_defaults(func=run, _parser=p)


def _list(as_json: bool) -> int:
    from ..models.builtin import cache_dir
    from ..models.registry import BUILTIN_MODELS, FAMILIES
    from ..models.stages import STAGES

    if as_json:
        print(json.dumps({"families": FAMILIES, "builtin": BUILTIN_MODELS, "stages": STAGES,
                          "cache_dir": str(cache_dir() / "models")}, indent=1))
        return 0
    print("Built-in models (no user files needed; exported to ONNX on first use into "
          f"{cache_dir() / 'models'}):")
    for name, d in BUILTIN_MODELS.items():
        print(f"  {name}")
        print(f"    {d['kind']}; ~{d['n_params'] / 1e6:.1f} M parameters")
        print(f"    weights: {d['weights']}")
        print(f"    layers: {d['layers']}")
        print(f"    preprocessing: {d['preprocessing']}")
        print(f"    note: {d['note']}")
    print()
    print("Stages (layer names say their stage; --stages selects them):")
    for st, what in STAGES.items():
        print(f"  {st:<10} {what}")
    print()
    print("Supported Hugging Face families (export a local model folder with "
          "`neuralign models export DIR --out OUT`):")
    for name, d in FAMILIES.items():
        print(f"  {name} [{d['kind']}] config model_type: {', '.join(d['model_type'])}")
        print(f"    architecture: {d['architecture']}")
        print(f"    stages: {', '.join(d['stages'])}")
        for st, text in d["stages"].items():
            print(f"      {st}: {text}")
        print(f"    graphs: {d['graphs']}; runs with: {d['runtime']}")
        if "text" in d:
            print(f"    text inputs: {d['text']}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``neuralign models ACTION``."""
    cmd = getattr(args, "models_command", None)
    if cmd is None or cmd == "list":
        return _list(bool(getattr(args, "json", False)))
    if cmd == "build":
        from ..errors import NeuralignError
        from ..models.builtin import BUILDERS
        from ..models.registry import resolve_model

        if args.name not in BUILDERS:
            raise NeuralignError(
                f"unknown built-in model {args.name!r}: known are {', '.join(BUILDERS)}")
        spec = resolve_model(args.name, force=args.force)
        print(f"{spec.name}: {len(spec.layers)} layers in {spec.root}")
        print(f"verification: {json.dumps(spec.verification)}")
        return 0
    if cmd == "export":
        from ..models.hf import export_hf

        spec = export_hf(args.model_dir, args.out, image_size=args.image_size,
                         prompt=args.prompt, runtime=args.runtime)
        from ..models.stages import group_by_stage

        groups = group_by_stage(spec.layer_names)
        shown = "; ".join(f"{st}: {v[0]}" + (f" .. {v[-1]}" if len(v) > 1 else "")
                          for st, v in groups.items())
        print(f"exported {spec.family} model to {spec.root}: {len(spec.layers)} layers ({shown})")
        for g in spec.graphs:
            where = g["file"] if g["runtime"] == "onnx" else f"torch eager ({g['reason']})"
            print(f"  part {g['part']}: {where}")
        if spec.info.get("prompt") and not spec.info.get("tokenizer"):
            print(f"  note: no tokenizer ({spec.info.get('tokenizer_note')}): decoder layers "
                  "need one at extraction")
        print(f"max abs diff vs torch: {spec.verification['max_abs_diff']:.3g}; "
              f"{spec.info.get('n_params', 0) / 1e6:.2f} M parameters")
        return 0
    args._parser.print_help()
    return 2

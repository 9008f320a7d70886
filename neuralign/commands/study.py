"""``neuralign study --config STUDY.toml``: many subjects x many models, with statistics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    """Add the ``study`` sub-command to ``subparsers``."""
    p = subparsers.add_parser(
        "study",
        help="many subjects x many models, with statistics",
        description=(
            "Run every (subject, model) alignment of a STUDY.toml (resumable: finished results "
            "are cached and skipped), then group maps, cluster tests, bootstrap CIs, model "
            "comparisons, a regression on model descriptors and variance partitioning. Writes "
            "study.json, group_maps.npz, models.csv, PNG figures and report.html."
        ),
    )
    p.add_argument("--config", required=True, type=Path, metavar="STUDY.toml")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="dask scheduler address; 'local' (default): a LocalCluster (thread "
                        "workers in this process, or worker processes on 127.0.0.1 with "
                        "--processes); 'none': run everything in this process")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default 2)")
    p.add_argument("--processes", action="store_true",
                   help="LocalCluster with worker processes (default: threads in this process)")
    p.add_argument("--out", type=Path, default=None, help="override [study] out")
    p.add_argument("--no-report", action="store_true", help="skip figures and report.html")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run (or resume) the study of ``--config`` and print its summary."""
    from ..offline.study import load_study_config, run_study
    from .datasets import LOADERS, load_dataset

    cfg = load_study_config(args.config, dataset_kinds=LOADERS)
    if args.out is not None:
        default_cache = cfg.cache == cfg.out / "cache"
        cfg.out = args.out.resolve()
        if default_cache:
            cfg.cache = cfg.out / "cache"
    scale = cfg.scale
    scheduler = args.scheduler or scale.get("scheduler", "local")
    workers = args.workers or int(scale.get("workers", 2))
    processes = bool(args.processes or scale.get("processes", False))
    res = run_study(cfg, load_dataset=load_dataset, scheduler=scheduler, workers=workers, processes=processes,
                    progress=not args.quiet, report=not args.no_report)
    if not args.quiet:
        s, r = res["summary"], res["run"]
        print(f"study {s['study']!r}: {len(s['subjects'])} subjects x {len(s['models'])} models "
              f"on {r['scheduler']}: {r['computed']} computed, {r['cached']} cached, "
              f"{r['wall_seconds']:.1f} s", file=sys.stderr)
        print(f"{'model':<20} {'peak r':>8} {'layer depth':>11} {'latency':>8} {'win r':>8}")
        for m, e in s["per_model"].items():
            g = e["group"]
            print(f"{m:<20} {g['peak_r']:8.3f} {g['relative_depth']:11.2f} "
                  f"{g['peak_latency_s']:8.3f} {g['window_r']:8.3f}")
        for n in s["notes"]:
            print(f"note: {n}", file=sys.stderr)
        print(f"report: {res['paths'].get('report', res['paths']['study'])}")
    return 0

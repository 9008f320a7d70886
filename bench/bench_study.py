"""Benchmark: a simulated THINGS-EEG2-sized study, single process vs a 2-worker dask LocalCluster.

Default size (the issue's): 10 subjects, 1654 train images x 4 repetitions + 200 test images x
80 repetitions, 17 channels x 100 times, 4 models of 12, 16, 24 and 32 layers (D=128).
Scale it down with ``--subjects``, ``--train``, ``--test``, ``--layers``, ``--dim``.

Prints: data simulation time, study wall time single-process and on the LocalCluster (fresh
caches, so every task is computed), their ratio, whether the two outputs are identical, the
time of a fully cached re-run, and the peak resident memory of one subject's tasks measured in
a separate process.

    .venv/bin/python bench/bench_study.py                 # full size (several minutes)
    .venv/bin/python bench/bench_study.py --subjects 3 --train 400 --test 100 --test-reps 20
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROBE = r"""
import resource, sys, json
from neuralign.commands.datasets import load_dataset
from neuralign.offline.study import load_study_config
from neuralign.offline.study.run import study_tasks
from neuralign.offline.study.tasks import file_sha, run_task
cfg = load_study_config(sys.argv[1])
cfg.cache = cfg.cache.parent / "probe_cache"
sha = {m.name: file_sha(__import__("pathlib").Path(m.features)) for m in cfg.models}
tasks = [t for t in study_tasks(cfg, sha, load_dataset) if t["subject"] == cfg.subjects[0].name]
for t in tasks:
    run_task(t)
print(json.dumps({"maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "tasks": len(tasks)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--subjects", type=int, default=10)
    ap.add_argument("--train", type=int, default=1654)
    ap.add_argument("--test", type=int, default=200)
    ap.add_argument("--train-reps", type=int, default=4)
    ap.add_argument("--test-reps", type=int, default=80)
    ap.add_argument("--layers", type=int, nargs="+", default=[12, 16, 24, 32])
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--processes", action="store_true", help="LocalCluster worker processes")
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: temp)")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse the simulated data already in --keep (skip the simulation)")
    args = ap.parse_args()

    from neuralign.commands.datasets import load_dataset
    from neuralign.offline.study import load_study_config, run_study
    from neuralign.sim.study import write_simulated_study

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_study_"))
    try:
        t0 = time.perf_counter()
        reuse = args.reuse and args.keep is not None and (work / "STUDY.toml").is_file()
        for d in work.glob("out_*"):
            shutil.rmtree(d)
        cfg_path = work / "STUDY.toml" if reuse else write_simulated_study(
            work, n_subjects=args.subjects, layers=tuple(args.layers), dim=args.dim,
            n_train=args.train, n_test=args.test, train_reps=args.train_reps,
            test_reps=args.test_reps, varpart=True, stats={"n_permutations": 1024, "n_boot": 1000},
        )
        if args.dtype != "float64":
            txt = cfg_path.read_text().replace("n_folds = 5", f'n_folds = 5\ndtype = "{args.dtype}"')
            cfg_path.write_text(txt)
        t_sim = time.perf_counter() - t0
        n_tasks = args.subjects * len(args.layers)
        print(f"study: {args.subjects} subjects x {len(args.layers)} models (layers "
              f"{args.layers}, D={args.dim}); {args.train} train x {args.train_reps} reps + "
              f"{args.test} test x {args.test_reps} reps; 17 ch x 100 t; {n_tasks} tasks")
        print(f"simulate + write data: {t_sim:8.1f} s" + (" (reused)" if reuse else ""))

        runs = {}
        for label, sched in (("single process", "none"), (f"LocalCluster x{args.workers}", "local")):
            cfg = load_study_config(cfg_path)
            cfg.out = work / ("out_" + sched)
            cfg.cache = cfg.out / "cache"
            t = time.perf_counter()
            res = run_study(cfg, load_dataset=load_dataset, scheduler=sched,
                            workers=args.workers, processes=args.processes, progress=False)
            runs[label] = (time.perf_counter() - t, res)
            print(f"{label:<22} wall {runs[label][0]:8.1f} s   ({res['run']['computed']} tasks "
                  f"computed, {res['run']['task_seconds']:.1f} s in tasks)")
        (ts, rs), (tc, rc) = runs.values()
        same = rs["summary"] == rc["summary"]
        za = np.load(rs["paths"]["maps"])
        zb = np.load(rc["paths"]["maps"])
        same_maps = all(np.array_equal(za[k], zb[k]) for k in za.files)
        print(f"cluster / single wall-time ratio: {tc / ts:.2f}  (speed-up {ts / tc:.2f}x)")
        print(f"identical results: study.json {same}, group maps {same_maps}")

        cfg = load_study_config(cfg_path)
        cfg.out = work / "out_none"
        cfg.cache = cfg.out / "cache"
        t = time.perf_counter()
        res = run_study(cfg, load_dataset=load_dataset, scheduler="none", progress=False)
        print(f"re-run, all cached:     wall {time.perf_counter() - t:8.1f} s   "
              f"({res['run']['cached']} cached)")

        out = subprocess.run([sys.executable, "-c", PROBE, str(cfg_path)], capture_output=True,
                             text=True, check=True)
        probe = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"peak memory of one subject ({probe['tasks']} model tasks, own process): "
              f"{probe['maxrss_mb']:.0f} MB")
        for m, e in rs["summary"]["per_model"].items():
            g = e["group"]
            print(f"  {m}: {e['n_layers']:2d} layers  peak r {g['peak_r']:.3f}  depth "
                  f"{g['relative_depth']:.2f}  latency {g['peak_latency_s']:.2f} s")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

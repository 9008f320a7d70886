"""Several models live: refresh time of a ModelGroup and of the statistics, peak memory.

    .venv/bin/python bench/bench_live_models.py [--quick] [--models 4] [--repeats 5]

Goal (issue 11): 4 models x 12 layers x 384 features refresh in <= 1 s on 2 cores with a
train/test design (THINGS-EEG2-like: 17 channels x 100 times, 200 test stimuli). BLAS runs on
one thread and the layers on the engine's threads, as in a live session (``--blas-threads 1``).

Printed per configuration: the maps' refresh under the live policy (each layer re-selects its
alphas every 4th refresh, staggered over the layers: what ``neuralign live`` does), with the
alphas kept, and with every layer re-selecting; the statistics (95% bootstrap intervals of every
layer's peak, the family-wise mask by stimulus permutations, the ranking with paired
comparisons) at a few sizes, and the process's peak resident memory. ``separate engines`` is
the same four models without the shared EEG side (each engine computes RSA's EEG RDMs and the
noise ceilings itself).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neuralign.align import AlignmentEngine, FeatureSet, ModelGroup  # noqa: E402
from neuralign.align.memory import peak_rss_bytes  # noqa: E402
from neuralign.align.monitor import StatisticsMonitor  # noqa: E402
from neuralign.align.stopping import StoppingRule  # noqa: E402
from neuralign.realtime.session import LIVE_RESELECT_EVERY  # noqa: E402

C, T = 17, 100


def _models(rng, n, d, layers, k):
    ids = [f"img{i:05d}" for i in range(n)]
    out = {}
    for m in range(k):
        latent = rng.standard_normal((n, d))
        arrays = []
        for _ in range(layers):
            latent = (np.tanh(latent @ rng.standard_normal((d, d)) / np.sqrt(d))
                      + 0.3 * rng.standard_normal((n, d)))
            arrays.append(latent.astype(np.float32))
        out[f"model{m}"] = FeatureSet(ids, [f"layer{i:02d}" for i in range(layers)], arrays)
    return out


def _epochs(rng, fs, reps_train, reps_test, n_test, *, repeats_last=False):
    w = rng.standard_normal((fs.dims[0], C * T)).astype(np.float32) / np.sqrt(fs.dims[0])
    sig = (fs.arrays[len(fs.arrays) // 2] @ w).reshape(-1, C, T)
    n = fs.n_stimuli
    rows = np.concatenate([np.tile(np.arange(n_test, n), reps_train),
                           np.tile(np.arange(n_test), reps_test)])
    rng.shuffle(rows)
    if repeats_last:  # every stimulus once first: the timed refreshes only see repetitions
        first = np.zeros(rows.size, bool)
        first[np.unique(rows, return_index=True)[1]] = True
        rows = np.concatenate([rows[first], rows[~first]])
    ep = sig[rows] + 2.0 * rng.standard_normal((rows.size, C, T)).astype(np.float32)
    return fs.stimulus_ids[rows], ep


def _timed(fn, repeats):
    """Median and max wall seconds, and median CPU seconds (all threads) of ``fn``."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), max(wall), statistics.median(cpu)


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller problem (a smoke run)")
    ap.add_argument("--models", type=int, default=4)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--stimuli", type=int, default=1200, help="train + test stimuli (1200)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--rsa-every", type=int, default=1,
                    help="RSA and noise ceilings every N refreshes (the engine's rsa_every)")
    ap.add_argument("--reselect-every", type=int, default=LIVE_RESELECT_EVERY,
                    help="the live policy: each layer re-selects its alphas every N refreshes, "
                         f"staggered ({LIVE_RESELECT_EVERY}, as in a live session)")
    ap.add_argument("--no-stats", action="store_true", help="time the maps only")
    ap.add_argument("--repetitions", action="store_true",
                    help="time refreshes once every stimulus has been seen (the training set "
                         "no longer grows: kept eigendecompositions are reused)")
    ap.add_argument("--compare", action="store_true",
                    help="also time separate engines (no shared EEG side)")
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    if args.quick:
        args.layers, args.dim, args.stimuli, args.repeats = 4, 64, 300, 2
    rng = np.random.default_rng(0)
    n_test = min(200, args.stimuli // 5)
    models = _models(rng, args.stimuli, args.dim, args.layers, args.models)
    first = next(iter(models.values()))
    sids, ep = _epochs(rng, first, 2, 4, n_test, repeats_last=args.repetitions)
    times = np.arange(T) / 100 - 0.2
    ch = [f"E{i}" for i in range(C)]
    test_ids = first.stimulus_ids[:n_test].tolist()
    print(f"{args.models} models x {args.layers} layers x {args.dim} features; {args.stimuli} "
          f"stimuli ({n_test} test), {sids.size} epochs, {C} x {T} targets; "
          f"{os.cpu_count()} CPUs, BLAS 1 thread, layers on the engine's threads, {args.dtype}, RSA every {args.rsa_every} refresh(es)"
          + ("; timed refreshes add repetitions only" if args.repetitions else ""))
    with threadpool_limits(limits=1, user_api="blas"):
        runs = [("ModelGroup (shared EEG side)", True)]
        runs += [("separate engines", False)] if args.compare else []
        for name, shared in runs:
            if shared:
                group = ModelGroup(models, times=times, ch_names=ch, test_ids=test_ids,
                                   dtype=args.dtype, rsa_every=args.rsa_every,
                                   reselect_every=args.reselect_every)
                engines = group.engines
            else:
                engines = {k: AlignmentEngine(f, times=times, ch_names=ch, test_ids=test_ids,
                                              dtype=args.dtype,
                                              reselect_every=args.reselect_every)
                           for k, f in models.items()}

            def add(a, b, engines=engines):
                for e in engines.values():
                    e.add_epochs(sids[a:b], ep[a:b])

            def refresh(engines=engines, **kw):
                return {k: e.refresh(**kw) for k, e in engines.items()}

            n0 = sids.size - 50 * (4 * args.repeats + 1)
            add(0, n0)
            refresh()  # the first refresh folds in every stimulus (once per session)
            pos = [n0]

            def step(pos=pos, add=add, refresh=refresh, **kw):
                add(pos[0], pos[0] + 50)  # a second's worth of epochs at 5 Hz x 10
                pos[0] += 50
                refresh(**kw)

            kept = _timed(lambda: step(select_alphas=False), args.repeats)
            resel = _timed(lambda: step(select_alphas=True), args.repeats)
            live = _timed(lambda: step(select_alphas=None), 2 * args.repeats)
            print(f"\n{name}: maps refresh, live policy (each layer re-selects its alphas "
                  f"every {args.reselect_every}th refresh, staggered) median {live[0]:.2f} s "
                  f"wall, max {live[1]:.2f} s, {live[2]:.2f} CPU-s; alphas kept median "
                  f"{kept[0]:.2f} s wall, max {kept[1]:.2f} s, {kept[2]:.2f} CPU-s; every layer "
                  f"re-selecting median {resel[0]:.2f} s wall, {resel[2]:.2f} CPU-s; load "
                  f"average {os.getloadavg()[0]:.1f}")
            if not shared or args.no_stats:
                continue
            rule = StoppingRule.parse("latency-ci<=20ms and ranking p<0.01")
            for n_boot, n_perm in ((500, 200), (200, 100), (100, 50)):
                mon = StatisticsMonitor(rule=rule, n_boot=n_boot, n_perm=n_perm)
                st_t = _timed(lambda mon=mon, engines=engines: mon.evaluate(engines), max(2, args.repeats // 2))
                st = mon.last
                print(f"  statistics n_boot={n_boot} n_perm={n_perm}: median {st_t[0]:.2f} s "
                      f"wall (max {st_t[1]:.2f} s), {st_t[2]:.2f} CPU-s; top {st.ranking.rows[0].label} p="
                      f"{st.ranking.top_p:.3g}; {st.stopping.line()}")
    print(f"\npeak resident memory {peak_rss_bytes() / 1024**3:.2f} GB")


if __name__ == "__main__":
    main()

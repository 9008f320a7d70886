"""Unit-level encoding and readouts of a wide layer: time and memory.

    .venv/bin/python bench/bench_units.py [--stimuli 400] [--units 4096] [--channels 32]
                                          [--times 100] [--test 80] [--folds 0]

A layer of ``--units`` Gaussian units, ``--stimuli`` stimuli (``--test`` of them the test set;
``--folds K`` instead scores by K-fold cross-validation), 2 repetitions, EEG of
``--channels`` x ``--times`` driven by a few units. Times the engine's refresh of the layer,
:func:`~neuralign.align.units.unit_encoding` and :func:`~neuralign.align.readouts.compare_readouts`
(ranks 1, 2; PCA 16, 64; 500 bootstrap resamples), with the peak resident memory after each
step (``ru_maxrss``: a high-water mark).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    """Run the benchmark and print one line per step."""
    from neuralign.align import AlignmentEngine
    from neuralign.align.readouts import compare_readouts
    from neuralign.align.units import unit_encoding
    from neuralign.base import FeatureSet

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stimuli", type=int, default=400)
    ap.add_argument("--units", type=int, default=4096)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--times", type=int, default=100)
    ap.add_argument("--test", type=int, default=80)
    ap.add_argument("--folds", type=int, default=0, help="K-fold scoring instead of a test set")
    args = ap.parse_args(argv)
    n, D, C, T = args.stimuli, args.units, args.channels, args.times
    rng = np.random.default_rng(0)
    ids = np.array([f"s{i:05d}" for i in range(n)])
    x = rng.standard_normal((n, D)).astype(np.float32)
    t = np.arange(T)
    sig = sum(s * x[:, u, None, None] * rng.uniform(0.5, 1.5, C)[None, :, None]
              * np.exp(-0.5 * ((t - t0) / 3.0) ** 2)[None, None, :]
              for u, s, t0 in ((3, 1, T // 4), (100, -1, T // 2), (2000 % D, 1, 3 * T // 4)))
    reps = 2
    ep = np.repeat(sig, reps, axis=0) + rng.standard_normal((n * reps, C, T))
    sids = np.repeat(ids, reps)
    fs = FeatureSet(ids, ["layer"], [x])
    base = _peak_mb()
    scoring = f"{args.folds}-fold" if args.folds else f"{args.test} test stimuli"
    print(f"{n} stimuli x {D} units, {C} channels x {T} times ({scoring}); "
          f"peak RSS before: {base:.0f} MB")
    eng = AlignmentEngine(fs, times=t / 100, ch_names=[f"c{i}" for i in range(C)],
                          test_ids=None if args.folds else ids[:args.test].tolist(),
                          n_folds=max(args.folds, 2), incremental=False)
    eng.add_epochs(sids, ep)
    del ep
    t0 = time.perf_counter()
    eng.refresh()
    print(f"engine refresh (ridge): {time.perf_counter() - t0:6.2f} s, peak RSS {_peak_mb():.0f} MB")
    t0 = time.perf_counter()
    res = unit_encoding(eng, 0, top_k=10)
    print(f"unit_encoding:          {time.perf_counter() - t0:6.2f} s, peak RSS {_peak_mb():.0f} MB"
          f"  (units for 90%: {res.redundancy.get('n_units_90')})")
    t0 = time.perf_counter()
    out = compare_readouts(eng, 0, ranks=(1, 2), pca_components=(16, 64), n_boot=500)
    scores = ", ".join(f"{k} {v['mean_r']:.3f}" for k, v in out["readouts"].items())
    print(f"compare_readouts:       {time.perf_counter() - t0:6.2f} s, peak RSS {_peak_mb():.0f} MB"
          f"  ({scores})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

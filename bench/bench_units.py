"""Unit-level encoding and readouts of a wide layer: time and memory; planted-unit recovery.

    .venv/bin/python bench/bench_units.py [--stimuli 400] [--units 4096] [--channels 32]
                                          [--times 100] [--test 80] [--folds 0]
    .venv/bin/python bench/bench_units.py --recovery 10 [--noise 1 2 3]

``--recovery N``: N simulated subjects per noise level (:func:`neuralign.sim.units.write_unit_brain`,
240 + 60 images, 2 / 4 repetitions, 4 planted units of a 64-unit layer, two at one latency)
through ``neuralign analyze --units --readouts`` (statistics off): how often the planted units
and their polarities are recovered, and how often the rank-1 factorised readout beats ridge
(p <= 0.05) on that rank-one brain. A negative noise level is a full-rank brain instead (17
units with their own signed topographies over the 17 channels, all at 200 ms): the rank-1
readout should lose to ridge there.

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
    ap.add_argument("--recovery", type=int, default=0, metavar="N",
                    help="planted-unit recovery over N subjects per noise level instead")
    ap.add_argument("--noise", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    args = ap.parse_args(argv)
    if args.recovery:
        return recovery(args.recovery, args.noise)
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
    def clock(name, t0, c0, note=""):
        print(f"{name:<24}{time.perf_counter() - t0:6.2f} s wall, {time.process_time() - c0:6.2f} s "
              f"CPU, peak RSS {_peak_mb():.0f} MB{note}")

    t0, c0 = time.perf_counter(), time.process_time()
    eng.refresh()
    clock("engine refresh (ridge):", t0, c0)
    t0, c0 = time.perf_counter(), time.process_time()
    res = unit_encoding(eng, 0, top_k=10)
    clock("unit_encoding:", t0, c0, f"  (units for 90%: {res.redundancy.get('n_units_90')})")
    t0, c0 = time.perf_counter(), time.process_time()
    out = compare_readouts(eng, 0, ranks=(1, 2), pca_components=(16, 64), n_boot=500)
    scores = ", ".join(f"{k} {v['mean_r']:.3f}" for k, v in out["readouts"].items())
    clock("compare_readouts:", t0, c0, f"  ({scores})")
    return 0


def recovery(n: int, noises) -> int:
    """Planted-unit recovery through the command line, ``n`` subjects per noise level."""
    import json
    import tempfile

    from neuralign.cli import main as cli
    from neuralign.sim.units import write_unit_brain

    for noise in noises:
        found = pol = beat = worse = 0
        err = []
        for seed in range(n):
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                kw = {} if noise >= 0 else {  # negative noise: a full-rank brain (|noise|)
                    "units": {u: (1 if u % 2 else -1, 0.2) for u in range(17)},
                    "spatial": "distinct"}
                write_unit_brain(root / "sim", noise=abs(noise), seed=seed, **kw)
                rc = cli(["analyze", "--dataset", f"sim:{root / 'sim'}", "--features",
                          str(root / "sim" / "features.npz"), "--out", str(root / "out"),
                          "--quiet", "--permutations", "0", "--bootstrap", "0",
                          "--units", "layer01", "--readouts", "layer01", "--readout-ranks", "1",
                          "--readout-pca", "16", "--readout-boot", "200"])
                assert rc == 0
                a = json.loads((root / "out" / "results.json").read_text())["analyses"]
                p = a["units"]["planted"]
                found += set(p["found_units"]) == set(p["planted_units"])
                worse += a["readouts"]["layers"]["layer01"]["vs_ridge"]["factorised rank 1"][
                    "ci"][1] < 0
                pol += p["polarity_correct"] == p["n_planted"]
                err.append(p["latency_mae_ms"])
                v = a["readouts"]["layers"]["layer01"]["vs_ridge"]["factorised rank 1"]
                beat += v["diff"] > 0 and v["p"] <= 0.05
        print(f"noise {noise:.1f}: planted units found {found}/{n}, every polarity right "
              f"{pol}/{n}, mean latency error {np.mean(err):.1f} ms; rank-1 readout beats "
              f"ridge (p <= 0.05) {beat}/{n}, loses (interval below 0) {worse}/{n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

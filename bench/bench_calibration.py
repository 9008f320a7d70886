"""Calibration of ``neuralign analyze``'s statistics on simulated subjects (issue 15).

Run: ``.venv/bin/python bench/bench_calibration.py [--runs 100] [--permutations 200]
[--json bench_calibration.json]``

Each run is one small simulated subject (:mod:`neuralign.sim.calibration`: 200 train
stimuli x 2 repetitions, 50 test stimuli x 8, 4 channels, 30 time points) analysed by the
code ``neuralign analyze`` runs (:mod:`neuralign.commands.calibration`):

- **null**: random features (independent of the brain) -> family-wise false-positive rate of
  the layer x time permutation mask (any significant cell);
- **planted**: the brain's own 4-layer features -> rate at which every planted layer is
  significant;
- **partition**: a planted pair (A drives 100 ms, B 300 ms, 4 shared of 12 dimensions) ->
  rate at which each unique part is significant where it was planted and nowhere else;
- **partition_null**: A against random features of B's width -> rate at which random
  features' unique part is significant (channel x time mean test; any target after
  max-statistic correction).

Printed: each rate with its binomial standard error and 95% Clopper-Pearson interval.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neuralign.commands.calibration import calibrate  # noqa: E402


def _line(name: str, r: dict) -> str:
    return (f"{name:<44} {r['k']:>4}/{r['n']:<4} = {r['rate']:.3f} +- {r['se']:.3f} "
            f"(95% CI {r['ci'][0]:.3f}-{r['ci'][1]:.3f})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--permutations", type=int, default=200)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--what", nargs="+", default=["null", "planted", "partition",
                                                  "partition_null"])
    p.add_argument("--json", type=Path, default=None, help="write every run here")
    a = p.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)
    t0 = time.perf_counter()
    res = calibrate(a.runs, n_perm=a.permutations, alpha=a.alpha, seed0=a.first_seed,
                    what=tuple(a.what))
    wall = time.perf_counter() - t0
    print(f"{a.runs} runs per check, {a.permutations} permutations, alpha {a.alpha}, "
          f"{wall:.0f} s")
    if "null" in res:
        print(_line("null: family-wise false positives", res["null"]["fwer"]))
    if "planted" in res:
        print(_line("planted: every planted layer significant", res["planted"]
                    ["all_layers_significant"]))
        print("planted: per-layer rate " + ", ".join(f"{x:.2f}" for x in
                                                     res["planted"]["layer_rate"]))
    if "partition" in res:
        print(_line("partition: unique A/B found where planted", res["partition"]["recovered"]))
    if "partition_null" in res:
        e = res["partition_null"]
        print(_line("partition, random B: unique B mean p<=alpha", e["unique_B_significant"]))
        print(_line("partition, random B: unique B any target", e["unique_B_any_target"]))
    if a.json is not None:
        res["wall_s"] = wall
        a.json.write_text(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    main()

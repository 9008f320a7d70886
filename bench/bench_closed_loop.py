"""Closed loop vs random order (issue 12): epochs needed to reach a stopping rule.

Run: ``.venv/bin/python bench/bench_closed_loop.py [--seeds 20] [--plot docs/closed_loop.png]``

Each seed is one simulated subject (a planted layer x latency answer,
:class:`neuralign.sim.brain.SyntheticBrain`, 4 layers) and one session design: 600 training
candidates and 50 test stimuli. **Random order** shows the session's default fixed design,
pre-shuffled: every training image twice and every test image five times (as
``simulate-amp --schedule`` and THINGS-EEG2's proportions), 1,450 epochs at most.
**Closed loop** asks :func:`neuralign.align.chooser.choose_block` for every block of 20. Both
refresh the maps after every block, compute bootstrap intervals and the permutation mask, and
stop when ``latency-ci<=20ms and significant>=4`` holds. Printed: epochs to stop (median, IQR),
the final mean |peak latency - planted| over significant layers, and the ratio.

``--lag 1 --modes closed-loop``: the closed loop as a live session runs it, each block chosen
while the one before is still being shown (its epochs not in yet, counted as pending).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neuralign.sim.closed_loop import run_session  # noqa: E402

RULE = "latency-ci<=20ms and significant>=4"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--plot", type=Path, default=None, help="write a figure here (PNG)")
    p.add_argument("--lag", type=int, default=0,
                   help="closed loop: blocks chosen ahead of the one shown (a live session: 1)")
    p.add_argument("--modes", nargs="+", default=["random", "closed-loop"],
                   choices=["random", "closed-loop"])
    a = p.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)
    out: dict[str, list] = {m: [] for m in a.modes}
    t0 = time.perf_counter()
    for s in range(a.first_seed, a.first_seed + a.seeds):
        for mode in out:
            o = run_session(mode, seed=s, rule=RULE, n_perm=200, lag=a.lag)
            out[mode].append(o)
            print(f"seed {s:2d} {mode:11s}: {o.epochs:5d} epochs, "
                  f"{'stopped' if o.stopped else 'NOT stopped'}, "
                  f"latency error {o.latency_error_s * 1000:.1f} ms", flush=True)
    print(f"\nrule: {RULE}; {a.seeds} seeds; {time.perf_counter() - t0:.0f} s")
    summary = {}
    for mode, runs in out.items():
        ep = np.array([o.epochs if o.stopped else np.inf for o in runs], float)
        err = np.array([o.latency_error_s for o in runs]) * 1000
        q1, med, q3 = np.percentile(ep, [25, 50, 75])
        summary[mode] = med
        print(f"{mode:11s}: epochs to stop median {med:.0f} (IQR {q1:.0f}-{q3:.0f}), "
              f"stopped {np.isfinite(ep).sum()}/{ep.size}; final latency error "
              f"median {np.nanmedian(err):.1f} ms, mean {np.nanmean(err):.1f} ms")
    if len(summary) == 2:
        print(f"closed loop needs {100 * (1 - summary['closed-loop'] / summary['random']):.0f}% "
              "fewer epochs (medians)")
    if a.plot:
        _plot(out, a.plot)
        print(f"figure: {a.plot}")


def _plot(out: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
    colors = {"random": "tab:gray", "closed-loop": "tab:blue"}
    for k, (mode, runs) in enumerate(out.items()):
        ep = [o.epochs for o in runs]
        ax[0].scatter(np.full(len(ep), k) + np.random.default_rng(0).uniform(-0.1, 0.1,
                                                                             len(ep)),
                      ep, color=colors[mode], alpha=0.7)
        ax[0].hlines(np.median(ep), k - 0.25, k + 0.25, color="k")
        for o in runs:
            h = [(x["n_epochs"], x["widest_latency_ci_s"]) for x in o.history
                 if x["widest_latency_ci_s"] is not None]
            if h:
                ax[1].plot(*zip(*h), color=colors[mode], alpha=0.35, lw=1)
    ax[0].set_xticks(list(range(len(out))), list(out))
    ax[0].set_ylabel("epochs to reach the stopping rule")
    ax[1].axhline(0.02, color="k", ls="--", lw=1)
    ax[1].set_xlabel("epochs")
    ax[1].set_ylabel("widest 95% peak-latency interval (s)")
    ax[1].set_ylim(0, 0.4)
    ax[1].set_title("gray: random order, blue: closed loop", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()

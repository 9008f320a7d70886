"""Pieces of ``neuralign analyze`` shared by its modules (and ``neuralign demo``): input
checks, the summary table, progress bars, the planted truth of simulated data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..base import fill_doc
from ..base.truth import planted_latencies
from ..errors import NeuralignError, few


@fill_doc
def check_inputs(data, features, n_folds: int, features_path: Path) -> None:
    """Refuse, in one line, data the engine cannot analyse (before anything starts).

    Parameters
    ----------
    %(epoch_data)s
    %(features)s
    n_folds : int
        Cross-validation folds.
    features_path : Path
        Where the features come from (named in the message).
    """
    ids = np.unique(data.stimulus_ids)
    missing = [s for s in ids.tolist() if s not in features]
    if missing:
        raise NeuralignError(
            f"{len(missing)} of {ids.size} EEG stimulus ids are not in the features: "
            f"{few(missing)}",
            path=features_path,
        )
    if n_folds < 2:
        raise NeuralignError(f"--folds must be at least 2, got {n_folds}")
    test = set(data.test_ids or [])
    n_train = int(sum(1 for s in ids.tolist() if s not in test))
    if n_train < n_folds:
        what = "training stimuli" if test else "stimuli"
        raise NeuralignError(
            f"{n_train} {what} with EEG is fewer than --folds {n_folds}"
        )
    if test:
        n_test = len(test & set(ids.tolist()))
        if n_test < 3:
            raise NeuralignError(f"only {n_test} test stimuli with EEG; need at least 3")


def summary_lines(result, planted: dict | None = None, stats=None) -> list[str]:
    """A short per-layer table and, for simulated data, how well the truth was recovered.

    Parameters
    ----------
    result : AlignmentResult
        The maps.
    planted : dict | None
        The planted truth of simulated data (:mod:`neuralign.base.truth`).
    stats : LayerStatistics | None
        Its statistics: 95% intervals of peak latency and peak r, and significance.

    Returns
    -------
    list of str
        Peak latency (ms), peak r and RSA peak per layer, then the recovery line.
    """
    from ..report import layer_table
    from ..sim.truth import RECOVERY_CRITERION, recovery

    rows = layer_table(result)
    width = max(8, *(len(r["layer"]) for r in rows))
    planted_lat = planted_latencies(planted, result.layers)
    head = f"{'layer':<{width}}  enc peak ms  peak r  RSA peak ms  peak rho"
    if stats is not None:
        head += "  peak ms 95% CI  peak r 95% CI  sig"
    if planted_lat is not None:
        head += "  planted ms"
    lines = [head]
    sig = None if stats is None else stats.significant
    for i, r in enumerate(rows):
        line = (f"{r['layer']:<{width}}  {_n(r['enc_peak_ms'], 0):>11}  {_n(r['enc_peak_r']):>6}"
                f"  {_n(r['rsa_peak_ms'], 0):>11}  {_n(r['rsa_peak_rho']):>8}")
        if stats is not None:
            lo, hi = np.asarray(stats.latency_ci[i], float) * 1000
            rlo, rhi = stats.peak_r_ci[i]
            mark = "-" if sig is None else ("yes" if sig[i] else "no")
            line += (f"  {_n(lo, 0):>6}-{_n(hi, 0):<7}  {_n(rlo, 2):>6}-{_n(rhi, 2):<6}"
                     f"  {mark:>3}")
        if planted_lat is not None:
            line += f"  {_n(planted_lat[i] * 1000, 0):>10}"
        lines.append(line)
    if planted_lat is not None and np.isfinite(planted_lat).sum() >= 3:  # a rank needs 3
        rec = recovery(result, planted_lat)
        lines.append(
            f"planted hierarchy: Spearman(peak latency, planted) = {rec['spearman']:.3f}, "
            f"mean |error| = {rec['mae_ms']:.1f} ms -> "
            + ("RECOVERED" if rec["recovered"] else "NOT recovered")
            + f" (criterion: {RECOVERY_CRITERION})"
        )
    return lines


def solver_line(result) -> str:
    """One line: which form solved how many layers, the memory budget and the peak."""
    from collections import Counter

    forms = Counter(result.counts.get("solver_forms", []))
    plan = result.settings.get("memory_plan", {})
    peak = result.counts.get("peak_rss_gb")
    parts = [f"{n} layer(s) {f}" for f, n in sorted(forms.items())]
    return (f"solver: {', '.join(parts) or '-'}; memory budget {plan.get('budget_gb', '-')} GB, "
            f"{plan.get('layers_in_parallel', '-')} layer(s) at a time"
            + (f", peak RSS {peak:.2f} GB" if peak is not None else ""))


def _n(x, nd: int = 3) -> str:
    return "-" if x is None or not np.isfinite(x) else (f"{x:.0f}" if nd == 0 else f"{x:.{nd}f}")


class Bars:
    """tqdm bars on stderr, one per stage; ``__call__(n, what=...)`` as the engine calls it.

    Parameters
    ----------
    totals : dict of str to int
        Stage -> total.
    quiet : bool
        No bars.
    """

    def __init__(self, totals: dict[str, int], *, quiet: bool) -> None:
        self.totals, self.quiet, self.bars = dict(totals), quiet, {}

    def __call__(self, n: int, *, what: str = "epochs") -> None:
        """Advance stage ``what`` by ``n``."""
        from tqdm import tqdm

        if what not in self.bars:
            self.close()
            self.bars[what] = tqdm(total=self.totals.get(what), desc=what, disable=self.quiet,
                                   file=sys.stderr, leave=False)
        self.bars[what].update(n)

    def close(self) -> None:
        """Close every bar."""
        for b in self.bars.values():
            b.close()
        self.bars = {}


def planted_from(kind: str, path: str) -> dict | None:
    """The planted truth of a simulated subject, if ``path`` is one."""
    if kind not in ("things-eeg2", "sim"):
        return None
    from ..sim.truth import read_planted

    p = read_planted(path)
    return p if p and p.get("simulated") else None

"""Several models on the same EEG: which explains it better, and how sure is that.

Each model has its own engine (its own layers and maps) over the same epochs. A model's
score is the peak r of its best layer (the channel-mean encoding map); models are compared
pairwise over the *same held-out stimuli* by a paired bootstrap
(:func:`~neuralign.align.confidence.compare_models`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .confidence import HeldOut, PeakIntervals, bootstrap_peaks, compare_models
from .quantiles import percentile_interval


@dataclass
class ModelScore:
    """One model's row of the ranking."""

    label: str
    best_layer: str
    best_index: int
    peak_r: float
    peak_r_ci: tuple[float, float]
    peak_latency_s: float
    peak_latency_ci: tuple[float, float]


@dataclass
class Ranking:
    """Models ranked by the peak r of their best layer, with paired comparisons."""

    rows: list[ModelScore]
    #: (better, worse) -> {"diff", "ci", "p", "n_stimuli", "n_boot"}: every ranked neighbour
    #: pair and the top model against every other
    pairs: dict[tuple[str, str], dict] = field(default_factory=dict)

    @property
    def top_p(self) -> float:
        """Largest p of the top model against any other (NaN with fewer than two models)."""
        if len(self.rows) < 2:
            return float("nan")
        top = self.rows[0].label
        ps = [v["p"] for (a, _b), v in self.pairs.items() if a == top]
        return float(max(ps)) if ps else float("nan")

    def to_dict(self) -> dict:
        """JSON-ready content."""
        return {
            "models": [r.__dict__ for r in self.rows],
            "comparisons": [{"better": a, "worse": b, **v} for (a, b), v in self.pairs.items()],
            "score": "peak r of the best layer (channel-mean encoding map, held-out stimuli)",
            "test": "paired bootstrap over the same held-out stimuli (two-sided)",
        }


def compare_bootstrapped(a: PeakIntervals, layer_a: int, b: PeakIntervals, layer_b: int,
                         ) -> dict | None:
    """:func:`compare_models` from two models' bootstrap samples, when it can be.

    The bootstrap of :func:`bootstrap_peaks` already holds every resample's peak r; when both
    models were resampled over the same stimuli in the same order with the same weights (the
    same seed and ``n_boot``: models of one session), the paired comparison is their
    difference, resample by resample — exactly what :func:`compare_models` computes, without
    a second pass over the predictions.

    Parameters
    ----------
    a, b : PeakIntervals
        The two models' intervals (with their samples).
    layer_a, layer_b : int
        The layers compared.

    Returns
    -------
    dict | None
        As :func:`compare_models`; None when the samples do not pair up.
    """
    if (a.peak_r_samples is None or b.peak_r_samples is None or a.stimulus_ids is None
            or b.stimulus_ids is None or a.n_boot != b.n_boot
            or not np.array_equal(a.stimulus_ids, b.stimulus_ids)):
        return None
    boot = a.peak_r_samples[:, layer_a] - b.peak_r_samples[:, layer_b]
    p = 2 * min((boot <= 0).mean(), (boot >= 0).mean())
    return {"diff": float(a.peak_r[layer_a] - b.peak_r[layer_b]),
            "ci": percentile_interval(boot, a.ci).tolist(),
            "p": float(min(1.0, max(p, 1.0 / (a.n_boot + 1)))),
            "n_stimuli": int(a.stimulus_ids.size), "n_boot": int(a.n_boot)}


def rank_models(held: dict[str, HeldOut], *, n_boot: int = 500, seed: int = 0,
                peaks: dict[str, PeakIntervals] | None = None) -> Ranking:
    """Rank models by the peak r of their best layer and compare them pairwise.

    Parameters
    ----------
    held : dict of str to HeldOut
        Each model's held-out predictions at the last refresh (model label -> predictions).
    n_boot : int
        Bootstrap resamples for intervals and comparisons.
    seed : int
        Seed of the resampling.
    peaks : dict of str to PeakIntervals, optional
        Intervals already computed for these predictions (saves recomputing them).

    Returns
    -------
    Ranking
    """
    rows = []
    peaks = dict(peaks or {})
    for label, h in held.items():
        pk = peaks.get(label) or bootstrap_peaks(h, n_boot=n_boot, seed=seed)
        peaks[label] = pk
        if not np.isfinite(pk.peak_r).any():
            continue
        i = int(np.nanargmax(pk.peak_r))
        rows.append(ModelScore(
            label=label, best_layer=h.layers[i] if h.layers else str(i), best_index=i,
            peak_r=float(pk.peak_r[i]),
            peak_r_ci=(float(pk.peak_r_ci[i, 0]), float(pk.peak_r_ci[i, 1])),
            peak_latency_s=float(pk.latency_s[i]),
            peak_latency_ci=(float(pk.latency_ci[i, 0]), float(pk.latency_ci[i, 1]))))
    rows.sort(key=lambda r: -r.peak_r)
    out = Ranking(rows)
    pairs = {(rows[j].label, rows[j + 1].label) for j in range(len(rows) - 1)}
    pairs |= {(rows[0].label, r.label) for r in rows[1:]} if rows else set()
    by = {r.label: r for r in rows}
    for a, b in sorted(pairs):
        la, lb = by[a].best_index, by[b].best_index
        fast = (compare_bootstrapped(peaks[a], la, peaks[b], lb)
                if peaks[a].n_boot == n_boot else None)
        out.pairs[(a, b)] = fast or compare_models(held[a], la, held[b], lb, n_boot=n_boot,
                                                   seed=seed)
    return out

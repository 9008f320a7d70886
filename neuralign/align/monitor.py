"""Confidence of every model, their ranking and the stopping rule, evaluated together.

A live session (at its own, possibly lower, cadence than the maps) and an offline analysis
call the same :meth:`StatisticsMonitor.evaluate` on the engines' last refresh, so both give
the same intervals for the same epochs and seed. Nothing is refitted: intervals and masks
resample the held-out predictions each engine kept (:mod:`~neuralign.align.confidence`).

:class:`Statistics` is immutable once built (safe to hand to a viewer thread) and knows how to
say itself in one status-line fragment and as JSON.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .confidence import MapMask, PeakIntervals, bootstrap_peaks, permutation_mask
from .ranking import Ranking, rank_models
from .stopping import Status, StoppingRule


@dataclass(frozen=True)
class ModelConfidence:
    """One model's intervals and significance mask at one evaluation."""

    label: str
    layers: tuple[str, ...]
    times: np.ndarray
    peaks: PeakIntervals | None
    mask: MapMask | None

    @property
    def significant(self) -> np.ndarray | None:
        """Layers whose peak cell is significant (bool (L,)); None without a mask."""
        if self.mask is None or self.peaks is None:
            return None
        return significant_peaks(self.peaks, self.mask, self.times)

    def widest_latency_ci(self) -> float | None:
        """Widest peak-latency interval (s) over the significant layers (all without mask)."""
        if self.peaks is None:
            return None
        w = np.diff(np.asarray(self.peaks.latency_ci, float), axis=1)[:, 0]
        sig = self.significant
        if sig is not None:
            w = w[sig]
        w = w[np.isfinite(w)]
        return float(w.max()) if w.size else None

    def to_dict(self) -> dict:
        """JSON-ready content."""
        sig = self.significant
        return {"layers": list(self.layers),
                "peaks": None if self.peaks is None else self.peaks.to_dict(),
                "mask": None if self.mask is None else self.mask.to_dict(),
                "significant_layers": None if sig is None else sig.tolist()}


def significant_peaks(peaks: PeakIntervals, mask: MapMask, times) -> np.ndarray:
    """Layers whose peak (channel-mean map) falls on a significant cell of the mask.

    Parameters
    ----------
    peaks : PeakIntervals
        Per-layer peak latencies.
    mask : MapMask
        The layer x time significance mask.
    times : array (T,)
        The maps' time axis (s).

    Returns
    -------
    ndarray of bool (L,)
    """
    lat = np.asarray(peaks.latency_s, float)
    times = np.asarray(times, float)
    out = np.zeros(lat.size, bool)
    if mask.mask.shape != (lat.size, times.size):
        return out
    for li, t in enumerate(lat):
        if np.isfinite(t):
            out[li] = bool(mask.mask[li, int(np.argmin(np.abs(times - t)))])
    return out


@dataclass(frozen=True)
class Statistics:
    """Every model's confidence, the ranking and the stopping status at one evaluation."""

    n_epochs: int
    models: dict[str, ModelConfidence]
    ranking: Ranking | None = None
    stopping: Status | None = None
    history: tuple[dict, ...] = ()
    compute_s: float = float("nan")
    seed: int = 0
    watched: str = ""  # the model the latency rule watches
    settings: dict = field(default_factory=dict)

    def widest_latency_ci(self) -> float | None:
        """Widest significant peak-latency interval of the watched model (s)."""
        m = self.models.get(self.watched)
        return None if m is None else m.widest_latency_ci()

    def status_fragment(self) -> str:
        """E.g. ``ci<=38ms stop rule 52%, ~900 more epochs`` (for the status line)."""
        parts = []
        w = self.widest_latency_ci()
        parts.append("ci=-" if w is None else f"ci<={w * 1000:.0f}ms")
        if self.ranking is not None and self.ranking.rows:
            p = self.ranking.top_p
            parts.append(f"top={self.ranking.rows[0].label}"
                         + ("" if not np.isfinite(p) else f" p={p:.3g}"))
        if self.stopping is not None:
            parts.append(self.stopping.line())
        return " ".join(parts)

    def to_dict(self) -> dict:
        """JSON-ready content (intervals, masks, ranking, comparisons, stopping history)."""
        return {
            "n_epochs": self.n_epochs, "seed": self.seed, "settings": dict(self.settings),
            "models": {k: m.to_dict() for k, m in self.models.items()},
            "ranking": None if self.ranking is None else self.ranking.to_dict(),
            "stopping": None if self.stopping is None else {
                "satisfied": self.stopping.satisfied, "progress": self.stopping.progress,
                "epochs_needed": self.stopping.epochs_needed, **self.stopping.detail},
            "stopping_history": list(self.history), "watched_model": self.watched,
            "compute_s": self.compute_s,
        }


class StatisticsMonitor:
    """Evaluates confidence, ranking and the stopping rule on engines' last refresh.

    Parameters
    ----------
    rule : StoppingRule | None
        The user's stopping rule (``--stop-when``); None: no rule.
    n_boot : int
        Bootstrap resamples of the scored stimuli (intervals, comparisons).
    n_perm : int
        Stimulus-label permutations of the significance mask (0: no mask).
    alpha : float
        Family-wise error rate of the mask.
    seed : int
        Seed of every resampling (the same seed gives the same intervals live and offline).
    n_jobs : int, optional
        Threads over layers (default: the CPU count).
    """

    def __init__(self, *, rule: StoppingRule | None = None, n_boot: int = 500,
                 n_perm: int = 200, alpha: float = 0.05, seed: int = 0,
                 n_jobs: int | None = None) -> None:
        self.n_jobs = int(n_jobs) if n_jobs else max(1, os.cpu_count() or 1)
        self.rule = rule
        self.n_boot = int(n_boot)
        self.n_perm = int(n_perm)
        self.alpha = float(alpha)
        self.seed = int(seed)
        self.last: Statistics | None = None

    @property
    def settings(self) -> dict:
        """What the statistics depend on (recorded with them)."""
        return {"n_boot": self.n_boot, "n_perm": self.n_perm, "alpha": self.alpha,
                "seed": self.seed, "interval": "95% bootstrap percentile over scored stimuli",
                "rule": None if self.rule is None else self.rule.text}

    def evaluate(self, engines: Mapping, *, n_epochs: int | None = None) -> Statistics:
        """Confidence of every engine, the ranking (two models or more) and the rule.

        Parameters
        ----------
        engines : mapping of str to AlignmentEngine
            Model label -> its engine, refreshed (its ``held_out`` is resampled).
        n_epochs : int, optional
            Epochs so far (default: the first engine's count).

        Returns
        -------
        Statistics
        """
        t0 = time.perf_counter()
        # one read of each engine's last held-out predictions: a refresh running meanwhile
        # (live) replaces them whole, so this evaluation sees one consistent state
        held = {str(k): e.held_out for k, e in engines.items()}
        models: dict[str, ModelConfidence] = {}
        shared: dict = {}  # the resampled EEG side, once for models on the same stimuli
        for label, eng in engines.items():
            h = held[str(label)]
            ok = h is not None and h.n >= 3  # as AlignmentEngine.confidence
            peaks = (bootstrap_peaks(h, n_boot=self.n_boot, seed=self.seed, shared=shared,
                                     n_jobs=self.n_jobs) if ok and self.n_boot else None)
            mask = (permutation_mask(h, n_perm=self.n_perm, alpha=self.alpha, seed=self.seed)
                    if ok and self.n_perm else None)
            models[str(label)] = ModelConfidence(str(label), tuple(eng.features.layers),
                                                 np.asarray(eng.times, float), peaks, mask)
        if n_epochs is None:
            n_epochs = int(next(iter(engines.values())).n_epochs) if engines else 0
        ranking = None
        held = {k: h for k, h in held.items() if h is not None and models[k].peaks is not None}
        if len(held) >= 2:
            ranking = rank_models(held, n_boot=self.n_boot, seed=self.seed,
                                  peaks={k: models[k].peaks for k in held})
        watched = (ranking.rows[0].label if ranking is not None and ranking.rows
                   else next(iter(models), ""))
        status = None
        if self.rule is not None:
            m = models.get(watched)
            status = self.rule.evaluate(
                n_epochs=int(n_epochs),
                latency_ci=None if m is None or m.peaks is None else m.peaks.latency_ci,
                significant=None if m is None else m.significant,
                top_p=None if ranking is None else ranking.top_p)
        stats = Statistics(int(n_epochs), models, ranking, status,
                           tuple(self.rule.history) if self.rule is not None else (),
                           time.perf_counter() - t0, self.seed, watched, self.settings)
        self.last = stats
        return stats

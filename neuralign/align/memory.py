"""The memory budget of a refresh: how many layers at once, which caches to keep.

Offline analysis solves layer by layer and keeps only the maps, so its peak is the shared
store plus the working sets of the layers solved at the same time. Live sessions may also keep
per-layer caches; they are chosen greedily inside the budget (Gram matrices of wide layers
first, then the sufficient statistics of narrow ones).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..base.resources import available_memory, parse_memory, peak_rss_bytes
from .anchor_policy import buffer_rows

_GB = 1024**3

__all__ = ["MemoryPlan", "TaskRunner", "available_memory", "cache_bytes", "layer_peak_bytes",
           "parse_memory", "peak_rss_bytes"]


def layer_peak_bytes(*, n: int, dim: int, n_targets: int, n_predict: int) -> int:
    """Largest working set of one layer's solve from scratch (either form), in bytes."""
    if n <= dim:  # the dual form: Gram, eigenvectors, projections
        return 8 * (n * dim + 4 * n * n + 3 * n * n_targets + n_predict * (n + n_targets))
    # the primal form: covariance, eigenvectors, cross-products, projections
    return 8 * (n * dim + 5 * dim * dim + 4 * dim * n_targets + n_predict * (dim + n_targets))


def cache_bytes(layer, *, n_blocks: int, n_targets: int, n_predict: int = 0,
                n_alphas: int = 0, splits: tuple = (), lean: bool = False) -> dict[str, int]:
    """Bytes a layer's optional caches would take, by kind (``gram``, ``stats``, ``anchors``).

    Parameters
    ----------
    layer : LayerSolver
        The layer (its candidate stimuli and width).
    n_blocks : int
        Slots of sufficient statistics.
    n_targets : int
        Targets (channels x times).
    n_predict : int
        Scored stimuli (the primal refits keep up to ``n_alphas`` solves of them).
    n_alphas : int
        Candidate alphas.
    splits : tuple
        ``(training, predicted)`` stimuli of every outer split, at most.
    lean : bool
        Lean anchors (the added rows' terms of the alphas in use only).
    """
    N, D, M, K = layer.n_candidates, layer.dim, n_targets, n_alphas
    kc = buffer_rows(lean)  # rows an anchor's buffers hold
    # statistics per slot; carried refits (refit.py): per split and alpha an inverse and
    # the predicted stimuli's solves, and their predictions; anchors (anchor.py): per
    # split the eigenvectors, V1, G, the added rows' terms per alpha, the embedding and
    # carried terms of the predicted stimuli (E0 D_a G per alpha; lean: instead the added
    # rows' carried terms of anchor_added.py, a Cholesky factor per alpha, w and P w)
    return {"gram": 8 * N * N, "stats": 8 * n_blocks * (D * D + D * M + D)
            + 8 * n_blocks * K * D * D + 8 * n_predict * (D * K + M),
            "anchors": 8 * sum(n0 * (n0 + M + K + kc)
                               + (2 * kc * M + 2 * K * kc * kc + r * M if lean
                                  else 2 * K * kc * (M + kc))
                               + r * (2 * n0 + M + K * kc) + 4 * N for n0, r in splits)}


@dataclass
class MemoryPlan:
    """How a refresh uses its memory budget."""

    budget: int
    shared: int
    per_layer: int
    n_parallel: int
    caches: dict[int, list[str]] = field(default_factory=dict)
    cache_bytes: int = 0

    @classmethod
    def make(cls, engine, *, budget: int) -> MemoryPlan:
        """Plan for ``engine`` (its features, targets and store) under ``budget`` bytes."""
        N = engine.features.n_stimuli
        M = engine.n_targets
        n_scoring = int(engine.geometry.scoring.sum())
        shared = 8 * M * (N + 3 * n_scoring)  # stimulus means + split halves and M2
        n_pred = n_scoring if engine.design else N
        per_layer = max(layer_peak_bytes(n=N, dim=d, n_targets=M, n_predict=n_pred)
                        for d in engine.features.dims)
        room = budget - shared
        n_par = max(1, min(engine.n_jobs, room // max(per_layer, 1)))
        return cls(budget=budget, shared=shared, per_layer=per_layer, n_parallel=int(n_par))

    def enable_caches(self, engine) -> None:
        """Choose the live caches of every layer, greedily, inside three quarters of the
        spare budget (the rest: results, held-out predictions, RSA's model side)."""
        room = 3 * (self.budget - self.shared - self.n_parallel * self.per_layer) // 4
        layers = engine.layers
        N, M = engine.features.n_stimuli, engine.n_targets
        nb = engine.block_targets.n_slots
        n_pred = int(engine.geometry.scoring.sum()) if engine.design else N
        wide = [i for i, ly in enumerate(layers) if ly.dim >= N]
        narrow = sorted((i for i, ly in enumerate(layers) if ly.dim < N),
                        key=lambda i: layers[i].dim)
        wanted = [(i, "gram") for i in wide] + [(i, "stats") for i in narrow]
        wanted += [(i, "gram") for i in narrow]
        wanted += [(i, "anchors") for i in wide] + [(i, "anchors") for i in narrow]
        splits = split_sizes(engine.geometry)
        for i, kind in wanted:
            if kind == "anchors" and "gram" not in self.caches.get(i, []):
                continue  # anchors extend the Gram matrix's eigendecompositions
            need = cache_bytes(layers[i], n_blocks=nb, n_targets=M, n_predict=n_pred,
                               n_alphas=engine.alphas.size, splits=splits,
                               lean=engine.lean_anchors)[kind]
            if self.cache_bytes + need > room:
                continue
            self.cache_bytes += need
            self.caches.setdefault(i, []).append(kind)
            if kind == "stats":
                layers[i].enable_stats(engine.block_targets)
            elif kind == "gram":
                layers[i].want_gram = True
            else:
                layers[i].want_anchors = True

    def describe(self) -> dict:
        """What results.json records of the plan."""
        return {
            "budget_gb": round(self.budget / _GB, 3),
            "shared_gb": round(self.shared / _GB, 3),
            "per_layer_peak_gb": round(self.per_layer / _GB, 3),
            "layers_in_parallel": self.n_parallel,
            "cache_gb": round(self.cache_bytes / _GB, 3),
            "caches": {str(k): v for k, v in sorted(self.caches.items())},
        }


def split_sizes(geometry) -> tuple:
    """``(training, predicted)`` candidate stimuli of every outer split of ``geometry``: the
    most each split can hold once every stimulus has been seen."""
    counts = np.bincount(geometry.block, minlength=geometry.n_blocks)
    if geometry.design:
        test = int(counts[geometry.n_folds])
        return ((int(counts.sum()) - test, test),)
    return tuple((int(counts.sum() - c), int(c)) for c in counts)


class TaskRunner:
    """Runs a refresh's independent tasks (RSA chunks, each layer) on threads, BLAS on one.

    The per-layer work is eigendecompositions and mid-sized products that NumPy runs without
    the GIL, so threads over tasks beat BLAS threads inside each product.
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._size = 0

    def run(self, tasks: list[Callable], n_parallel: int) -> list:
        """Results of ``tasks`` (in order), ``n_parallel`` at a time."""
        if n_parallel <= 1 or len(tasks) < 2:
            return [t() for t in tasks]
        from threadpoolctl import threadpool_limits

        if self._pool is None or self._size != n_parallel:
            self._pool = ThreadPoolExecutor(max_workers=n_parallel,
                                            thread_name_prefix="neuralign-refresh")
            self._size = n_parallel
        with threadpool_limits(limits=1, user_api="blas"):
            futures = [self._pool.submit(t) for t in tasks]
            return [f.result() for f in futures]

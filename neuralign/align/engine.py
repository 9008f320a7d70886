"""The alignment engine shared by offline analysis and live sessions.

One object accumulates epochs (one at a time from a live stream, or in batches from a dataset)
and, on :meth:`AlignmentEngine.refresh`, solves every layer's ridge encoding model, RSA and the
noise ceilings from what it has accumulated so far (its parts: see docs/engine.md).

Which stimuli score:
- with ``test_ids`` (a designated test set, as in THINGS-EEG2): alphas are chosen on the
  training stimuli only, the model is fitted on all training stimuli and scored on the test
  stimuli's means; RSA and noise ceilings use the test stimuli.
- without: nested cross-validation. Stimuli are assigned to ``n_folds`` folds by a stable hash
  of their id; for each outer fold the alpha of every target is chosen on the other folds,
  and held-out predictions are pooled into one Pearson r per target.

The maps depend on epoch order only through the odd/even repetition split (each stimulus's
repetitions alternate between half A and half B in arrival order), which only the split-half
noise ceiling and the cross-validated RDM use.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from ..base import FeatureSet
from ..errors import NeuralignError
from .assemble import (
    EEGSideCache,
    RSAComputer,
    build_result,
    engine_counts,
    engine_settings,
)
from .backends import get_backend
from .confidence import HeldOut, bootstrap_peaks, permutation_mask
from .data import AlignmentResult
from .folds import BlockChanges, FoldGeometry, stable_fold
from .layer import LayerSolver, RefreshInput
from .memory import MemoryPlan, TaskRunner, available_memory, peak_rss_bytes
from .primal import BlockTargets, slot_layout
from .store import StimulusStore, check_flat_epochs

DEFAULT_ALPHAS = np.logspace(-1, 6, 8)

__all__ = ["DEFAULT_ALPHAS", "AlignmentEngine", "stable_fold"]


class AlignmentEngine:
    """Streaming ridge encoding + RSA + noise ceilings for every layer of one model.

    Parameters
    ----------
    features : FeatureSet
        Per-layer features of every stimulus that may be shown (layers may be memory-mapped).
    times : array, shape (T,)
        Epoch time axis in seconds.
    ch_names : sequence of str, length C
        Channel names.
    test_ids : sequence of str, optional
        Designated test stimuli (score on these, train on the rest). ``None``: nested CV.
    alphas : array, optional
        Ridge regularisation values (default ``logspace(-1, 6, 8)``), on z-scored features.
    n_folds : int
        Cross-validation folds (default 5).
    backend : str
        ``"numpy"`` (default), ``"torch"`` (CUDA when available) or ``"torch_cuda"``.
    dtype : str
        ``"float64"`` (default) or ``"float32"`` for the large products of the refresh.
        Eigendecompositions, alpha selection and accumulated statistics are always float64.
    standardize : bool
        Z-score each feature over the training stimuli of ``features`` (default True).
    max_rsa_stimuli : int, optional
        Cap on the stimuli in the RDMs (chosen by stable hash); default 200 (the size of the
        THINGS-EEG2 test set). ``None``: no cap.
    reselect_every : int
        Re-select every layer's alphas on every ``reselect_every``-th refresh (1 = every
        refresh), staggered: each refresh re-selects about ``1 / reselect_every`` of the
        layers, so refreshes cost alike. Between reselections a layer reuses the alphas last
        chosen (refitting and scoring still run); ``refresh(select_alphas=True)`` re-selects
        every layer. Above 1, wide layers (kept eigendecompositions extended for stimuli added
        since) re-select by GCV when that decomposition is rebuilt, where it is cheap.
    rsa_every : int
        Recompute RSA and the noise ceilings on every ``rsa_every``-th refresh (1 = every
        refresh; always on a refresh that re-selects alphas or re-anchors). RSA is sort-bound:
        a busy live session can refresh the encoding maps more often than RSA.
    alpha_selection : str
        ``"gcv"`` (default): generalised cross-validation on each training set, from the same
        eigendecomposition (almost free); ``"kfold"``: K-fold cross-validation over the
        training folds (inner folds of the nested split), ~``n_folds`` x more work.
    n_jobs : int, optional
        Threads over layers during a refresh (BLAS on one thread meanwhile). Default: the
        number of CPU cores, fewer when the memory budget asks for it.
    memory : int, optional
        Memory budget in bytes for the refresh's working sets and the live caches (default:
        80% of the memory available when the engine starts).
    incremental : bool
        Keep per-layer caches between refreshes (Gram matrices of wide layers, sufficient
        statistics of narrow ones, eigendecompositions) when the budget allows: right for live
        sessions, which refresh often. False (what :func:`analyze_epochs` uses): keep nothing,
        solve layer by layer and drop each layer's working set.
    form : str
        ``"auto"`` (default: per layer and refresh, whichever is cheaper), ``"dual"`` or
        ``"primal"`` (forced; the answer is the same).
    rsa_cache : EEGSideCache, optional
        Shared with other engines fed the same epochs (:class:`~neuralign.align.group.ModelGroup`):
        the EEG side of RSA and the noise ceilings are computed once for all of them.
    """

    def __init__(
        self,
        features: FeatureSet,
        *,
        times: Sequence[float],
        ch_names: Sequence[str],
        test_ids: Sequence[str] | None = None,
        alphas: Sequence[float] | None = None,
        n_folds: int = 5,
        backend: str = "numpy",
        dtype: str = "float64",
        standardize: bool = True,
        max_rsa_stimuli: int | None = 200,
        reselect_every: int = 1,
        rsa_every: int = 1,
        alpha_selection: str = "gcv",
        n_jobs: int | None = None,
        memory: int | None = None,
        incremental: bool = True,
        form: str = "auto",
        rsa_cache: EEGSideCache | None = None,
    ) -> None:
        if not isinstance(features, FeatureSet):
            raise TypeError(f"features must be a FeatureSet, got {type(features).__name__}")
        for name, v, low in (("n_folds", n_folds, 2), ("reselect_every", reselect_every, 1),
                             ("rsa_every", rsa_every, 1)):
            if v < low:
                raise NeuralignError(f"{name} must be at least {low}, got {v}")
        for name, v, ok in (("dtype", dtype, ("float32", "float64")), ("form", form, (
                "auto", "dual", "primal")), ("alpha_selection", alpha_selection, ("gcv", "kfold"))):
            if v not in ok:
                raise NeuralignError(f"{name} must be one of {', '.join(ok)}; got {v!r}")
        self.features = features
        self.times = np.asarray(times, dtype=float)
        self.ch_names = [str(c) for c in ch_names]
        self.n_channels = len(self.ch_names)
        self.n_times = int(self.times.size)
        if self.n_channels < 1 or self.n_times < 1:
            raise NeuralignError("need at least one channel and one time point")
        self.n_targets = self.n_channels * self.n_times
        self.alphas = np.asarray(DEFAULT_ALPHAS if alphas is None else alphas, dtype=float)
        if self.alphas.ndim != 1 or self.alphas.size < 1 or np.any(self.alphas <= 0):
            raise NeuralignError("alphas must be a non-empty list of positive numbers")
        self.n_folds = int(n_folds)
        self.backend_name = backend
        self._B = get_backend(backend)
        self.dtype = dtype
        self.standardize = standardize
        self.max_rsa_stimuli = max_rsa_stimuli
        self.reselect_every = int(reselect_every)
        self.rsa_every = int(rsa_every)
        self.alpha_selection = alpha_selection
        # anchors (anchor.py) keep the added rows' terms of the alphas in use only
        self.lean_anchors = self.reselect_every > 1 or alpha_selection == "kfold"
        self.form = form
        self.incremental = bool(incremental)
        self.n_jobs = int(n_jobs) if n_jobs is not None else max(1, os.cpu_count() or 1)
        self.memory = int(memory) if memory is not None else int(0.8 * available_memory())
        if self.memory <= 0:
            raise NeuralignError(f"memory budget must be positive, got {self.memory} bytes")
        self._runner = TaskRunner()

        N = features.n_stimuli
        self.design = test_ids is not None
        is_test = np.zeros(N, dtype=bool)
        if self.design:
            is_test[features.index_of(list(test_ids), source="the test set")] = True
        self.geometry = FoldGeometry(features.stimulus_ids, is_test, self.n_folds,
                                     design=self.design)
        self.store = StimulusStore(features.index, self.n_targets, self.geometry.scoring)
        train_rows = ~is_test if (~is_test).any() else np.ones(N, dtype=bool)
        self.layers = [LayerSolver(features, li, standardize_rows=train_rows if standardize
                                   else None, backend=self._B, dtype=dtype)
                       for li in range(features.n_layers)]
        slots = slot_layout(self.n_folds, design=self.design,
                            per_fold=not self.design or alpha_selection == "kfold")
        self.block_targets = BlockTargets(self.geometry.n_blocks, self.n_targets, slots)
        self.plan = MemoryPlan.make(self, budget=self.memory)
        if self.incremental:
            self.plan.enable_caches(self)
        self._rsa_part = None
        self._rsa_refresh = -1
        self._rsa = RSAComputer(features, self.store, n_channels=self.n_channels,
                                n_times=self.n_times, max_stimuli=max_rsa_stimuli,
                                shared=rsa_cache)
        self._alpha_idx: list[list[np.ndarray] | None] = [None] * features.n_layers
        self._refresh_lock = threading.Lock()
        self._n_refresh = 0
        self.last_refresh_s = float("nan")
        self.last_forms: list[str] = []
        #: held-out predictions of the last refresh (what :meth:`confidence` resamples)
        self.held_out: HeldOut | None = None

    @property
    def n_epochs(self) -> int:
        """Epochs accumulated so far."""
        return self.store.n_epochs

    @property
    def unknown_ids(self):
        """Counter of the stimulus ids that are not in the features."""
        return self.store.unknown_ids

    @property
    def n_refresh(self) -> int:
        """Refreshes so far."""
        return self._n_refresh

    @property
    def rsa_refresh(self) -> int:
        """The refresh whose data the RSA maps and noise ceilings come from."""
        return self._rsa_refresh

    @property
    def n_stimuli_seen(self) -> int:
        """Stimuli with at least one epoch."""
        return int(np.count_nonzero(self.store.count))

    def add_epoch(self, stimulus_id: str, epoch: np.ndarray) -> bool:
        """Add one epoch ``(C, T)`` of ``stimulus_id``; O(C T).

        Returns False (and counts it in :attr:`unknown_ids`) when the stimulus is not in the
        features.
        """
        e = np.asarray(epoch, dtype=float)
        if e.shape != (self.n_channels, self.n_times):
            raise NeuralignError(
                f"epoch shape {e.shape} does not match (channels={self.n_channels}, "
                f"times={self.n_times})"
            )
        if not np.isfinite(e).all():
            raise NeuralignError("epoch contains NaN or Inf")
        return self.store.add(stimulus_id, e.reshape(-1))

    def add_epochs(self, stimulus_ids: Sequence[str], epochs: np.ndarray) -> int:
        """Add a batch of epochs ``(n, C, T)``; same state as adding them one by one in order.

        Returns the number of epochs added (unknown stimulus ids are counted and skipped).
        """
        flat = check_flat_epochs(epochs, self.n_channels, self.n_times)
        ids = np.asarray(stimulus_ids).astype(str)
        if ids.shape != (flat.shape[0],):
            raise NeuralignError(f"{ids.size} stimulus ids for {flat.shape[0]} epochs")
        return self.store.add_many(ids, flat)

    def refresh(self, *, select_alphas: bool | None = None, reanchor: bool = False,
                progress: Callable[[int], None] | None = None) -> AlignmentResult:
        """Solve every layer from what has been accumulated; return the maps.

        Parameters
        ----------
        select_alphas : bool, optional
            Force (True) or skip (False) alpha re-selection; by default it runs on the first
            refresh and then every ``reselect_every``-th refresh.
        reanchor : bool
            Rebuild every eigendecomposition kept from earlier refreshes (live sessions extend
            them exactly for stimuli added since; rebuilding gives the same maps to round-off
            and the very same arithmetic as an offline analysis).
        progress : callable, optional
            Called with 1 each time a layer is solved (from a worker thread).
        """
        with self._refresh_lock:
            t0 = time.perf_counter()
            ch = self.store.take_changes()
            changes = None
            if self.incremental and ch.rows.size:
                g = self.geometry
                changes = BlockChanges.group(g.block, g.n_blocks, ch.rows, ch.old, ch.new,
                                             ch.first_seen)
                self.block_targets.update(changes)
            L, M = len(self.layers), self.n_targets
            r = np.full((L, M), np.nan)
            alpha_map = np.full((L, M), np.nan)
            mask = self.store.count > 0
            forms = ["-"] * L
            ri = (self._refresh_input(mask, select_alphas, reanchor)
                  if self.geometry.enough(mask) else None)

            def layer_task(li: int):
                layer = self.layers[li]
                if changes is not None:
                    layer.update(changes)
                if ri is None:
                    return None
                own = ri.reselect or (select_alphas is None  # staggered over the layers
                                      and (self._n_refresh + li) % self.reselect_every == 0)
                ri_l = dataclasses.replace(ri, reselect=own, scheduled=own and not ri.reselect,
                                           previous=self._alpha_idx[li])
                fit = layer.solve(ri_l, keep_spectra=self.incremental, form=self.form)
                if progress is not None:
                    progress(1)
                return fit

            redo_rsa = (self._rsa_part is None or reanchor or select_alphas
                        or self._n_refresh % self.rsa_every == 0)
            job = self._rsa.start(n_chunks=self.plan.n_parallel) if redo_rsa else None
            rsa_tasks = job.tasks if job is not None else []
            tasks: list[Callable] = list(rsa_tasks)
            tasks += [functools.partial(layer_task, li) for li in range(L)]
            done = self._runner.run(tasks, self.plan.n_parallel if self.backend_name == "numpy"
                                    else 1)
            if job is not None:
                self._rsa_part = job.finish(done[:len(rsa_tasks)])
                self._rsa_refresh = self._n_refresh + 1  # 1-based, like n_refresh
            part = self._rsa_part
            fits = done[len(rsa_tasks):]
            self.held_out = None if ri is None else self._held_out(ri, [f.pred for f in fits])
            for li, fit in enumerate(fits):
                if fit is not None:  # the alpha used; for nested CV, the median over folds
                    r[li], self._alpha_idx[li], forms[li] = fit.r, fit.alpha_idx, fit.form
                    alpha_map[li] = np.median(self.alphas[np.stack(fit.alpha_idx)], axis=0)
            self._n_refresh += 1
            self.last_forms = forms
            shape = (L, self.n_channels, self.n_times)
            result = build_result(
                features=self.features, times=self.times, ch_names=self.ch_names,
                r=r.reshape(shape), alpha=alpha_map.reshape(shape), part=part,
                counts=engine_counts(self, part), settings=engine_settings(self, part))
            self.last_refresh_s = time.perf_counter() - t0
            result.counts["refresh_s"] = self.last_refresh_s
            result.counts["peak_rss_gb"] = peak_rss_bytes() / 1024**3
            return result

    def alpha_indices(self, layer: int) -> list[np.ndarray] | None:
        """Index into :attr:`alphas` of every target's alpha, per outer split (last refresh)."""
        return self._alpha_idx[layer]

    def outer_splits(self):
        """The scoring splits of the stimuli seen so far (see :mod:`~neuralign.align.folds`)."""
        return self.geometry.outer_splits(self.store.count > 0)

    def _held_out(self, ri: RefreshInput, preds: list[np.ndarray]) -> HeldOut:
        """The scored stimuli's held-out predictions, EEG and repetition statistics."""
        rows = np.concatenate([sp.predict for sp in ri.outer])
        return HeldOut(self.features.stimulus_ids[rows], ri.y[np.searchsorted(ri.seen, rows)],
                       tuple(preds), self.n_channels, self.times.copy(),
                       self.store.view(rows, halves=False).counts, self.store.m2(rows),
                       tuple(self.features.layers))

    def confidence(self, *, n_boot: int = 500, n_perm: int = 200, alpha: float = 0.05,
                   seed: int = 0) -> dict:
        """Intervals and significance of the last refresh's maps (no refitting).

        Parameters
        ----------
        n_boot : int
            Bootstrap resamples of the scored stimuli (0: no intervals).
        n_perm : int
            Stimulus-label permutations for the family-wise mask (0: no mask).
        alpha : float
            Family-wise error rate of the mask.
        seed : int
            Seed of resampling and permutations.

        Returns
        -------
        dict
            ``peaks`` (:class:`~neuralign.align.confidence.PeakIntervals` or None) and
            ``mask`` (:class:`~neuralign.align.confidence.MapMask` or None).
        """
        h = self.held_out
        if h is None or h.n < 3:
            return {"peaks": None, "mask": None}
        return {"peaks": bootstrap_peaks(h, n_boot=n_boot, seed=seed) if n_boot else None,
                "mask": (permutation_mask(h, n_perm=n_perm, alpha=alpha, seed=seed)
                         if n_perm else None)}

    def _refresh_input(self, mask: np.ndarray, select_alphas: bool | None,
                       reanchor: bool) -> RefreshInput:
        outer = self.geometry.outer_splits(mask)
        stale = any(p is None or len(p) != len(outer) for p in self._alpha_idx)
        if select_alphas is not None and not stale:
            reselect = bool(select_alphas)
        else:
            reselect = stale or self.reselect_every == 1  # else layer by layer (refresh)
        inner = (self.geometry.inner_splits(mask, outer) if self.alpha_selection == "kfold"
                 and (reselect or select_alphas is None) else [])
        seen = np.nonzero(mask)[0]
        return RefreshInput(seen=seen, y=self.store.means(seen), outer=outer, inner=inner,
                            alphas=self.alphas, reselect=reselect,
                            alpha_selection=self.alpha_selection, previous=None,
                            reanchor=reanchor,
                            lean_anchors=self.lean_anchors,
                            select_at_rebuild=(select_alphas is None and self.lean_anchors
                                               and self.alpha_selection == "gcv"))

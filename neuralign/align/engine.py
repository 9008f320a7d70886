"""The alignment engine shared by offline analysis and live sessions.

One object accumulates epochs (one at a time from a live stream, or in batches from a dataset)
and, on :meth:`AlignmentEngine.refresh`, solves every layer's ridge encoding model, RSA and the
noise ceilings from what it has accumulated so far.

Accumulation (the acquisition path) only updates per-stimulus running means, which is O(C T)
per epoch. The ridge sufficient statistics of each cross-validation block are brought up to
date lazily at refresh time with one matrix product per block over the stimuli whose means
changed (``S_xy += X' delta``), which is the O(D C T)-per-epoch work done in BLAS instead of in
the acquisition thread. The result does not depend on how epochs were batched; it depends on
epoch order only through the odd/even repetition split (each stimulus's repetitions alternate
between half A and half B in arrival order), which only the split-half noise ceiling and the
cross-validated RDM use.

Which stimuli score:
- with ``test_ids`` (a designated test set, as in THINGS-EEG2): alphas are chosen per target by
  K-fold cross-validation over the training stimuli only, the model is refitted on all training
  stimuli and scored on the test stimuli' means; RSA and noise ceilings use the test stimuli.
- without: nested cross-validation. Stimuli are assigned to ``n_folds`` folds by a stable hash
  of their id; for each outer fold the alpha of every target is chosen by cross-validation over
  the other folds, and held-out predictions are pooled into one Pearson r per target.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
from scipy import sparse

from ..base import FeatureSet
from ..errors import NeuralignError
from . import reliability, ridge, rsa
from .backends import get_backend
from .data import AlignmentResult

DEFAULT_ALPHAS = np.logspace(-1, 6, 8)


def stable_fold(stimulus_id: str, n_folds: int) -> int:
    """Fold of a stimulus: a stable hash of its id (independent of order and of the process)."""
    h = hashlib.blake2b(str(stimulus_id).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "little") % n_folds


class AlignmentEngine:
    """Streaming ridge encoding + RSA + noise ceilings for every layer of one model.

    Parameters
    ----------
    features : FeatureSet
        Per-layer features of every stimulus that may be shown.
    times : array, shape (T,)
        Epoch time axis in seconds.
    ch_names : sequence of str, length C
    test_ids : sequence of str, optional
        Designated test stimuli (score on these, train on the rest). ``None``: nested CV.
    alphas : array, optional
        Ridge regularisation values (default ``logspace(-1, 6, 8)``), on z-scored features.
    n_folds : int
        Cross-validation folds (default 5).
    backend : str
        ``"numpy"`` (default), ``"torch"`` (CUDA when available) or ``"torch_cuda"``.
    dtype : str
        ``"float64"`` (default, exact) or ``"float32"`` (faster) for the refresh's linear algebra.
        Accumulated statistics are always float64.
    standardize : bool
        Z-score each feature over the training stimuli of ``features`` (default True).
    max_rsa_stimuli : int, optional
        Cap on the stimuli in the RDMs (chosen by stable hash); default 200 (the size of the
        THINGS-EEG2 test set). ``None``: no cap.
    n_jobs : int, optional
        Threads over layers during a refresh (NumPy backend; BLAS limited to one thread
        meanwhile). Default: the number of CPU cores. 1: no threads.
    alpha_selection : str
        How each target's alpha is chosen from training data only:
        ``"gcv"`` (default): generalised cross-validation on each training set, from the same
        eigendecomposition (almost free); ``"kfold"``: K-fold cross-validation over the
        training folds (inner folds of the nested split), ~``n_folds`` x more work.
    reselect_every : int
        Re-select alphas on every ``reselect_every``-th refresh (1 = every refresh). Between
        reselections the alphas last chosen are reused (refitting and scoring still run).
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
        alpha_selection: str = "gcv",
        n_jobs: int | None = None,
    ) -> None:
        if not isinstance(features, FeatureSet):
            raise TypeError(f"features must be a FeatureSet, got {type(features).__name__}")
        if n_folds < 2:
            raise NeuralignError(f"n_folds must be at least 2, got {n_folds}")
        if dtype not in ("float32", "float64"):
            raise NeuralignError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        if reselect_every < 1:
            raise NeuralignError(f"reselect_every must be >= 1, got {reselect_every}")
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
        if alpha_selection not in ("gcv", "kfold"):
            raise NeuralignError(f"alpha_selection must be 'gcv' or 'kfold', got {alpha_selection!r}")
        self.alpha_selection = alpha_selection
        self.n_jobs = int(n_jobs) if n_jobs is not None else max(1, os.cpu_count() or 1)
        self._pool: ThreadPoolExecutor | None = None

        N = features.n_stimuli
        ids = features.stimulus_ids
        self.design = test_ids is not None
        self._is_test = np.zeros(N, dtype=bool)
        if self.design:
            test_ids = list(test_ids)
            self._is_test[features.index_of(test_ids, source="the test set")] = True
        # Blocks: folds 0..F-1 over non-test stimuli, block F = the designated test set.
        self._block = np.array([stable_fold(s, self.n_folds) for s in ids], dtype=np.int64)
        self._block[self._is_test] = self.n_folds
        self.n_blocks = self.n_folds + (1 if self.design else 0)
        self._scoring = self._is_test.copy() if self.design else np.ones(N, dtype=bool)

        train = ~self._is_test
        self._X = []
        for a in features.arrays:
            x = np.asarray(a, dtype=float)
            if standardize:
                ref = x[train] if train.any() else x
                mu, sd = ref.mean(0), ref.std(0)
                sd[sd == 0] = 1.0
                x = (x - mu) / sd
            self._X.append(np.ascontiguousarray(x))

        # Per-stimulus running state (rows = feature rows).
        self._count = np.zeros(N, dtype=np.int64)
        self._mean = np.zeros((N, self.n_targets))
        self._reps: dict[int, list[np.ndarray]] = {}  # scoring stimuli with >= 2 reps: [A, B, M2]
        self._pending: dict[int, np.ndarray | None] = {}  # dirty rows -> mean when last folded in
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()

        # Ridge sufficient statistics: shared target stats + per-layer feature stats.
        B_, M = self.n_blocks, self.n_targets
        self._n = np.zeros(B_)
        self._sy = np.zeros((B_, M))
        self._syy = np.zeros((B_, M))
        self._stats = []
        for x in self._X:
            d = x.shape[1]
            self._stats.append(
                ridge.BlockStats(
                    n=self._n, sx=np.zeros((B_, d)), sxx=np.zeros((B_, d, d)),
                    sxy=np.zeros((B_, d, M)), sy=self._sy, syy=self._syy,
                )
            )
        self._alpha_idx: list[list[np.ndarray]] | None = None
        self._model_rdm_key: bytes | None = None
        self._model_rdm = None
        self._n_refresh = 0
        self.n_epochs = 0
        self.unknown_ids: Counter = Counter()
        self.last_refresh_s = float("nan")

    # ------------------------------------------------------------------ accumulation
    @property
    def n_stimuli_seen(self) -> int:
        return int(np.count_nonzero(self._count))

    def _check_epoch(self, epoch: np.ndarray) -> np.ndarray:
        e = np.asarray(epoch, dtype=float)
        if e.shape != (self.n_channels, self.n_times):
            raise NeuralignError(
                f"epoch shape {e.shape} does not match (channels={self.n_channels}, "
                f"times={self.n_times})"
            )
        if not np.isfinite(e).all():
            raise NeuralignError("epoch contains NaN or Inf")
        return e.reshape(-1)

    def add_epoch(self, stimulus_id: str, epoch: np.ndarray) -> bool:
        """Add one epoch ``(C, T)`` of ``stimulus_id``; O(C T).

        Returns False (and counts it in :attr:`unknown_ids`) when the stimulus is not in the
        features.
        """
        i = self.features.index.get(str(stimulus_id))
        if i is None:
            self.unknown_ids[str(stimulus_id)] += 1
            return False
        e = self._check_epoch(epoch)
        with self._lock:
            n0 = self._count[i]
            if i not in self._pending:
                self._pending[i] = self._mean[i].copy() if n0 else None
            mean_old = self._mean[i]
            delta = e - mean_old
            n = n0 + 1
            mean_new = mean_old + delta / n
            if self._scoring[i] and n0 >= 1:
                rep = self._reps.get(i)
                if rep is None:  # second repetition: the first one was the mean
                    rep = self._reps[i] = [mean_old.copy(), np.zeros_like(e), np.zeros_like(e)]
                rep[0 if n0 % 2 == 0 else 1] += e
                rep[2] += delta * (e - mean_new)
            self._mean[i] = mean_new
            self._count[i] = n
            self.n_epochs += 1
        return True

    def add_epochs(self, stimulus_ids: Sequence[str], epochs: np.ndarray) -> int:
        """Add a batch of epochs ``(n, C, T)``; same state as adding them one by one in order.

        Returns the number of epochs added (unknown stimulus ids are counted and skipped).
        """
        epochs = np.asarray(epochs)
        ids = np.asarray(stimulus_ids).astype(str)
        if epochs.ndim != 3 or epochs.shape[1:] != (self.n_channels, self.n_times):
            raise NeuralignError(
                f"epochs shape {epochs.shape} does not match (n, channels={self.n_channels}, "
                f"times={self.n_times})"
            )
        if ids.shape != (epochs.shape[0],):
            raise NeuralignError(f"{ids.size} stimulus ids for {epochs.shape[0]} epochs")
        index = self.features.index
        rows = np.fromiter((index.get(s, -1) for s in ids), dtype=np.int64, count=ids.size)
        for s in ids[rows < 0]:
            self.unknown_ids[str(s)] += 1
        keep = np.nonzero(rows >= 0)[0]
        if keep.size == 0:
            return 0
        rows = rows[keep]
        flat = epochs.reshape(epochs.shape[0], -1)
        if keep.size != epochs.shape[0]:
            flat = flat[keep]
        if not np.isfinite(flat).all():
            raise NeuralignError("epochs contain NaN or Inf")
        # Group epochs by stimulus, keeping arrival order inside each group.
        uniq, inv = np.unique(rows, return_inverse=True)
        order = np.argsort(inv, kind="stable")
        k = np.bincount(inv, minlength=uniq.size)
        starts = np.concatenate([[0], np.cumsum(k)[:-1]])
        pos = np.empty(rows.size, dtype=np.int64)
        pos[order] = np.arange(rows.size) - np.repeat(starts, k)
        with self._lock:
            n0 = self._count[uniq]
            parity = (n0[inv] + pos) % 2  # 0 -> half A, 1 -> half B (global repetition index)
            g = sparse.csr_matrix(
                (np.ones(rows.size), (inv, np.arange(rows.size))), shape=(uniq.size, rows.size)
            )
            sums = np.asarray(g @ flat, dtype=float)
            mean_b = sums / k[:, None]
            for j, i in enumerate(uniq):
                if i not in self._pending:
                    self._pending[i] = self._mean[i].copy() if n0[j] else None
            scoring = self._scoring[uniq]
            if scoring.any():
                sel = np.nonzero(scoring)[0]
                in_sel = np.isin(inv, sel)
                cols = np.nonzero(in_sel)[0]
                sub = flat[cols].astype(float)
                gi = inv[cols]
                ga = sparse.csr_matrix(
                    ((parity[cols] == 0).astype(float), (gi, np.arange(cols.size))),
                    shape=(uniq.size, cols.size),
                )
                gb = sparse.csr_matrix(
                    ((parity[cols] == 1).astype(float), (gi, np.arange(cols.size))),
                    shape=(uniq.size, cols.size),
                )
                gall = ga + gb
                sum_a = np.asarray(ga @ sub)
                sum_b = np.asarray(gb @ sub)
                sumsq = np.asarray(gall @ (sub * sub))
                for j in sel:
                    i = uniq[j]
                    n_old, kb = int(n0[j]), int(k[j])
                    n_new = n_old + kb
                    if n_new < 2:
                        continue
                    m2_b = sumsq[j] - kb * mean_b[j] ** 2
                    rep = self._reps.get(i)
                    if rep is None:
                        if n_old == 1:
                            rep = [self._mean[i].copy(), np.zeros(self.n_targets),
                                   np.zeros(self.n_targets)]
                        else:
                            rep = [np.zeros(self.n_targets) for _ in range(3)]
                        self._reps[i] = rep
                    d = mean_b[j] - self._mean[i]
                    rep[0] += sum_a[j]
                    rep[1] += sum_b[j]
                    rep[2] += m2_b + d * d * (n_old * kb / n_new)
            n_new = n0 + k
            self._mean[uniq] += (mean_b - self._mean[uniq]) * (k / n_new)[:, None]
            self._count[uniq] = n_new
            self.n_epochs += int(rows.size)
        return int(rows.size)

    # ------------------------------------------------------------------ refresh
    def _flush(self) -> None:
        """Fold the means that changed since the last refresh into the block statistics."""
        with self._lock:
            pending, self._pending = self._pending, {}
            if not pending:
                return
            idx = np.fromiter(pending.keys(), dtype=np.int64, count=len(pending))
            new_means = self._mean[idx].copy()
        is_new = np.array([pending[i] is None for i in idx.tolist()])
        old = np.zeros_like(new_means)
        for j, i in enumerate(idx.tolist()):
            if pending[i] is not None:
                old[j] = pending[i]
        delta = new_means - old
        blocks = self._block[idx]
        dsq = new_means**2 - old**2
        for b in np.unique(blocks):
            sel = blocks == b
            newsel = sel & is_new
            self._n[b] += newsel.sum()
            self._sy[b] += delta[sel].sum(0)
            self._syy[b] += dsq[sel].sum(0)
            for x, st in zip(self._X, self._stats):
                xb = x[idx[sel]]
                st.sxy[b] += xb.T @ delta[sel]
                if newsel.any():
                    xn = x[idx[newsel]]
                    st.sx[b] += xn.sum(0)
                    st.sxx[b] += xn.T @ xn

    def _splits(self):
        """Training sets, validation triples and outer splits for the current mode."""
        F = self.n_folds
        present = self._n[:F] > 0
        if self.design:
            allm = np.zeros(self.n_blocks, dtype=bool)
            allm[:F] = True
            inner_sets = []
            triples = []
            for g in range(F):
                if not present[g]:
                    continue
                m = allm.copy()
                m[g] = False
                inner_sets.append(m)
                triples.append((len(inner_sets) - 1, g, 0))
            outer = [(allm, [F])]
        else:
            inner_sets, triples, pair_index = [], [], {}
            for f in range(F):
                for g in range(F):
                    if g == f or not present[g] or not present[f]:
                        continue
                    key = (min(f, g), max(f, g))
                    if key not in pair_index:
                        m = np.ones(self.n_blocks, dtype=bool)
                        m[[f, g]] = False
                        inner_sets.append(m)
                        pair_index[key] = len(inner_sets) - 1
                    triples.append((pair_index[key], g, f))
            outer = []
            for f in range(F):
                m = np.ones(self.n_blocks, dtype=bool)
                m[f] = False
                outer.append((m, [f]))
        return inner_sets, triples, outer

    def _select(self, st: ridge.BlockStats, inner_sets, triples, n_outer) -> list[np.ndarray]:
        B = self._B
        a = B.asarray(self.alphas, self.dtype)
        solved = ridge._solve_trainsets(B, st, inner_sets, self.dtype) if inner_sets else []
        sse: list = [None] * n_outer
        G_cache = {}
        for ti, vb, o in triples:
            s = solved[ti]
            if ti not in G_cache:
                G_cache[ti] = s.Z[None, :, :] / (s.lam[None, :, None] + a[:, None, None])
            G = G_cache[ti]
            nv, su, P, Q, syv, syyv = ridge._val_projections(B, s, st, vb, self.dtype)
            s_h, s_hy, s_hh = ridge._pred_sums(B, G, s, nv, su, P, Q, syv)
            e = syyv[None, :] - 2.0 * s_hy + s_hh
            sse[o] = e if sse[o] is None else sse[o] + e
        out = []
        for e in sse:
            if e is None:
                out.append(np.zeros(self.n_targets, dtype=np.int64))
            else:
                out.append(np.asarray(B.to_numpy(B.argmin(e, axis=0)), dtype=np.int64))
        return out

    def _run_tasks(self, tasks: list) -> list:
        """Run independent tasks (RSA, each layer's ridge) on ``n_jobs`` threads, BLAS on one.

        The per-layer work is many mid-sized products and array passes that NumPy runs without
        the GIL, so threads over tasks beat BLAS threads inside each small product
        (bench/bench_engine.py; an RSA thread beside 2-thread BLAS was slower).
        """
        if self.n_jobs <= 1 or len(tasks) < 2 or self.backend_name != "numpy":
            return [t() for t in tasks]
        from threadpoolctl import threadpool_limits

        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.n_jobs,
                                            thread_name_prefix="neuralign-refresh")
        with threadpool_limits(limits=1, user_api="blas"):
            futures = [self._pool.submit(t) for t in tasks]
            return [f.result() for f in futures]

    def refresh(self, *, select_alphas: bool | None = None) -> AlignmentResult:
        """Solve every layer from what has been accumulated; return the maps.

        Parameters
        ----------
        select_alphas : bool, optional
            Force (True) or skip (False) alpha re-selection; by default it runs on the first
            refresh and then every ``reselect_every``-th refresh.
        """
        with self._refresh_lock:
            t0 = time.perf_counter()
            self._flush()
            L, C, T = len(self._X), self.n_channels, self.n_times
            r = np.full((L, C * T), np.nan)
            alpha_map = np.full((L, C * T), np.nan)
            inner_sets, triples, outer = self._splits()
            n_train = float(self._n[: self.n_folds].sum())
            enough = n_train >= 3 and (not self.design or self._n[self.n_folds] >= 2)
            reselect = self._alpha_idx is None or (
                select_alphas if select_alphas is not None
                else self._n_refresh % self.reselect_every == 0
            )
            masks = [m for m, _ in outer]

            def solve_layer(li: int):
                st = self._stats[li]
                if reselect and self.alpha_selection == "kfold":
                    idx = self._select(st, inner_sets, triples, len(outer))
                    solved = None
                else:
                    solved = ridge._solve_trainsets(self._B, st, masks, self.dtype)
                    idx = ([ridge.gcv_select(self._B, s_, self.alphas, self.dtype) for s_ in solved]
                           if reselect else self._alpha_idx[li])
                acc = ridge.fit_score(self._B, st, outer, self.alphas, idx, self.dtype,
                                      solved=solved)
                return idx, acc["r"]

            # RSA + noise ceilings and every layer's ridge are independent tasks
            tasks = [self._rsa_part]
            if enough:
                tasks += [partial(solve_layer, li) for li in range(L)]
            done = self._run_tasks(tasks)
            rsa_part = done[0]
            if enough:
                new_idx = []
                for li, (idx, r_l) in enumerate(done[1:]):
                    new_idx.append(idx)
                    r[li] = r_l
                    # report the alpha used; for nested CV, the median over outer folds
                    alpha_map[li] = np.median(np.stack([self.alphas[i] for i in idx]), axis=0)
                self._alpha_idx = new_idx
            self._n_refresh += 1
            result = self._assemble(r.reshape(L, C, T), alpha_map.reshape(L, C, T), rsa_part)
            self.last_refresh_s = time.perf_counter() - t0
            result.counts["refresh_s"] = self.last_refresh_s
            return result

    def _rsa_rows(self) -> tuple[np.ndarray, bool]:
        with self._lock:
            rep_rows = np.array(sorted(self._reps), dtype=np.int64)
            seen = np.nonzero(self._scoring & (self._count > 0))[0]
        rows, with_halves = (rep_rows, True) if rep_rows.size >= 3 else (seen, False)
        if self.max_rsa_stimuli is not None and rows.size > self.max_rsa_stimuli:
            ids = self.features.stimulus_ids[rows]
            keys = np.array([hashlib.blake2b(s.encode(), digest_size=8).hexdigest() for s in ids])
            rows = np.sort(rows[np.argsort(keys)[: self.max_rsa_stimuli]])
        return rows, with_halves

    def _rsa_part(self):
        """RSA maps and noise ceilings from a snapshot of the stimulus store."""
        C, T = self.n_channels, self.n_times
        rows, with_halves = self._rsa_rows()
        with self._lock:
            means = self._mean[rows].copy()
            counts = self._count[rows].copy()
            reps = [self._reps[i] for i in rows.tolist()] if with_halves else []
            ha = np.stack([rp[0] for rp in reps]) if reps else None
            hb = np.stack([rp[1] for rp in reps]) if reps else None
            m2 = np.stack([rp[2].copy() for rp in reps]) if reps else None
            scored_counts = self._count[self._scoring & (self._count > 0)]
        if reps:
            na = (counts + 1) // 2
            nb = counts // 2
            ha = ha / na[:, None]
            hb = hb / nb[:, None]
        shape3 = (rows.size, C, T)
        key = rows.tobytes()
        if self._model_rdm_key != key and rows.size >= 3:
            self._model_rdm = rsa.model_rdm_ranks([a[rows] for a in self.features.arrays])
            self._model_rdm_key = key
        maps = rsa.rsa_maps(
            [a[rows] for a in self.features.arrays],
            means.reshape(shape3),
            None if ha is None else ha.reshape(shape3),
            None if hb is None else hb.reshape(shape3),
            prepared=self._model_rdm if rows.size >= 3 else None,
        )
        rsa_nc = np.full(T, np.nan)
        if reps and rows.size >= 3:
            rsa_nc = rsa.rdm_split_half_ceiling(ha.reshape(shape3), hb.reshape(shape3))
        if reps:
            nc = reliability.noise_ceilings(
                counts, means, ha, hb, m2,
                scored_inv_counts=float(np.mean(1.0 / scored_counts)),
            )
        else:
            nc = reliability.noise_ceilings(
                np.zeros(0), np.zeros((0, C * T)), np.zeros((0, C * T)),
                np.zeros((0, C * T)), np.zeros((0, C * T)),
            )
        nc = {k: v.reshape(C, T) for k, v in nc.items()}
        return rows, with_halves, maps, rsa_nc, nc

    def _assemble(self, r: np.ndarray, alpha_map: np.ndarray, part=None) -> AlignmentResult:
        C, T = self.n_channels, self.n_times
        rows, with_halves, maps, rsa_nc, nc = self._rsa_part() if part is None else part
        n_test = int(np.count_nonzero(self._is_test & (self._count > 0)))
        counts_d = {
            "n_epochs": int(self.n_epochs),
            "n_stimuli": self.n_stimuli_seen,
            "n_train_stimuli": int(self._n[: self.n_folds].sum()),
            "n_test_stimuli": n_test if self.design else 0,
            "n_scored_stimuli": n_test if self.design else int(self._n[: self.n_folds].sum()),
            "n_rsa_stimuli": int(rows.size),
            "n_unknown_epochs": int(sum(self.unknown_ids.values())),
            "unknown_ids": sorted(self.unknown_ids)[:100],
            "n_refresh": int(self._n_refresh),
        }
        settings = {
            "mode": "train/test" if self.design else "nested-cv",
            "alphas": self.alphas.tolist(),
            "n_folds": self.n_folds,
            "alpha_selection": self.alpha_selection,
            "alpha_selection_detail": (
                "per target, generalised CV on each training set (training data only)"
                if self.alpha_selection == "gcv"
                else "per target, K-fold CV over the training folds (nested inside outer folds)"
            ),
            "score": "Pearson r of held-out predictions vs stimulus-mean EEG",
            "standardize_features": self.standardize,
            "backend": self.backend_name,
            "dtype": self.dtype,
            "rsa_eeg_distance": "correlation (1 - r over channels); cv: split-half Euclidean",
            "rsa_model_distance": "correlation (1 - r over features)",
            "rsa_cv_available": bool(with_halves),
            "max_rsa_stimuli": self.max_rsa_stimuli,
            "n_channels": C,
            "n_times": T,
            "feature_dims": list(self.features.dims),
            "features": self.features.provenance,
        }
        return AlignmentResult(
            layers=list(self.features.layers),
            times=self.times.copy(),
            ch_names=list(self.ch_names),
            encoding_r=r,
            encoding_alpha=alpha_map,
            rsa_spearman=maps["spearman"],
            rsa_pearson=maps["pearson"],
            rsa_cv_spearman=maps["cv_spearman"],
            noise_ceiling=nc,
            counts=counts_d,
            settings=settings,
            rsa_stimulus_ids=self.features.stimulus_ids[rows].tolist(),
            rsa_noise_ceiling=rsa_nc,
        )


def analyze_epochs(
    data, features: FeatureSet, *, chunk: int = 2000, progress=None, **engine_kw
) -> AlignmentResult:
    """Batch analysis of an :class:`~neuralign.offline.datasets.EpochData` with one engine.

    The engine is the live one: batch accumulation (``chunk`` epochs at a time, calling
    ``progress(n_added)`` after each chunk when given) followed by one refresh.
    """
    test_ids = engine_kw.pop("test_ids", data.test_ids)
    features.index_of(sorted(set(data.stimulus_ids.tolist())), source="the EEG")
    eng = AlignmentEngine(features, times=data.times, ch_names=data.ch_names,
                          test_ids=test_ids, **engine_kw)
    n = data.epochs.shape[0]
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        eng.add_epochs(data.stimulus_ids[start:stop], data.epochs[start:stop])
        if progress is not None:
            progress(stop - start)
    res = eng.refresh()
    res.settings["dataset"] = dict(getattr(data, "info", {}) or {})
    return res

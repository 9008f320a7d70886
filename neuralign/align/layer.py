"""One layer's ridge encoding: choose the form, solve every split, score.

A :class:`LayerSolver` reads its layer's features on demand (they may be memory-mapped) and
keeps, when the engine allows it (live sessions), caches that make the next refresh cheaper:

- ``gram``: the Gram matrix of every candidate stimulus (``N x N``; for layers wider than the
  stimulus set, this *is* the layer: ridge depends on features only through inner products);
- ``stats``: per-block sufficient statistics for the primal form (``D x D`` and ``D x M`` per
  block; only for narrow layers), updated as stimulus means change;
- ``spectra``: the eigendecomposition of each training set, reused while the set is unchanged.

Without caches (offline analysis: one refresh) everything is computed from the store and the
features, then dropped, so memory does not grow with depth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..base import FeatureSet
from ..base.features import mean_sd
from . import solvers
from .anchor import DualAnchor
from .anchor_policy import keep_or_rebuild
from .folds import BlockChanges, Split
from .primal import BlockStats, BlockTargets, RefitCache
from .refit import CarriedRefit
from .scoring import eeg_side, pearson_columns

_READ_ROWS = 4096  # rows read from a (memory-mapped) layer at a time


@dataclass
class LayerFit:
    """What a refresh produced for one layer."""

    r: np.ndarray  # (M,) held-out Pearson r
    alpha_idx: list[np.ndarray]  # per outer split, (M,) index into alphas
    form: str  # "dual" or "primal"
    pred: np.ndarray | None = None  # (n_scored, M) float32 held-out predictions, centred


@dataclass
class RefreshInput:
    """What every layer's solve shares in one refresh (read once from the store)."""

    seen: np.ndarray  # sorted rows with at least one epoch
    y: np.ndarray  # (len(seen), M) float64 stimulus means of the seen rows
    outer: list[Split]
    inner: list[Split]
    alphas: np.ndarray
    reselect: bool
    alpha_selection: str  # "gcv" | "kfold"
    previous: list[np.ndarray] | None  # alpha indices of the last refresh, per outer split
    reanchor: bool = False  # rebuild every kept eigendecomposition (exact final maps)
    # anchors keep the added rows' terms of the alphas in use only (live policy); a layer
    # whose reselection is only ``scheduled`` (staggered) then defers it to its next anchor
    # rebuild, where GCV is cheap; ``select_at_rebuild``: every rebuild re-selects (GCV)
    lean_anchors: bool = False
    scheduled: bool = False
    select_at_rebuild: bool = False
    # what every layer computes alike (the scored EEG's centred side), shared by the copies
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    def scored_side(self, rows: np.ndarray) -> tuple:
        """The EEG side of :func:`pearson_columns` for the scored ``rows`` (computed once)."""
        key = rows.tobytes()
        side = self.memo.get(key)
        if side is None:
            side = self.memo.setdefault(key, eeg_side(self.y[np.searchsorted(self.seen, rows)]))
        return side


class LayerSolver:
    """Ridge encoding of one layer against the stimulus store.

    Parameters
    ----------
    features : FeatureSet
        All layers' features (this solver reads layer ``li`` only).
    li : int
        Layer index.
    standardize_rows : ndarray of bool or None
        Rows whose mean and standard deviation z-score the features (the training
        candidates); None: no standardisation.
    backend : module
        Array backend.
    dtype : str
        Precision of the large products.
    """

    def __init__(self, features: FeatureSet, li: int, *, standardize_rows: np.ndarray | None,
                 backend, dtype: str) -> None:
        self.features = features
        self.li = li
        self.B = backend
        self.dtype = dtype
        self.dim = int(features.dims[li])
        self.n_candidates = features.n_stimuli
        a = features.arrays[li]
        if standardize_rows is None:
            self.mu = np.zeros(self.dim)
            self.sd = np.ones(self.dim)
        else:
            self.mu, self.sd = mean_sd(a, np.nonzero(standardize_rows)[0])
        self.gram_all: np.ndarray | None = None
        self.want_gram = False  # build gram_all at the first solve (live caches)
        self.want_anchors = False  # keep anchors and dual spectra (live caches, with gram)
        self.stats: BlockStats | None = None
        self._spectra: dict[bytes, solvers.Spectrum] = {}
        self._anchors: dict[tuple, DualAnchor] = {}
        self._refits = RefitCache()  # kept-alpha primal refits without statistics
        self._carried: dict[tuple, CarriedRefit] = {}  # ... with them (live caches)
        self._carried_next: dict[tuple, CarriedRefit] = {}

    # ------------------------------------------------------------------ features
    def rows(self, rows: np.ndarray, dtype: str = "float64") -> np.ndarray:
        """Standardised features of ``rows``, ``(len(rows), D)`` in ``dtype``."""
        x = np.asarray(self.features.arrays[self.li][np.asarray(rows, dtype=np.int64)],
                       dtype=float)
        x -= self.mu
        x /= self.sd
        return x if dtype == "float64" else x.astype(dtype)

    def gram(self, rows: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        """Gram block ``X[rows] X[cols]'`` (float64), from the cache when there is one."""
        if self.gram_all is not None:
            return self.gram_all[np.ix_(rows, rows if cols is None else cols)]
        xr = self.rows(rows, self.dtype)
        g = xr @ (xr if cols is None else self.rows(cols, self.dtype)).T
        return np.asarray(g, dtype=float)

    def build_gram_cache(self) -> None:
        """Compute and keep the Gram matrix of every candidate stimulus (``N x N``, float64).

        The product runs in the solver's ``dtype``, block by block of rows read from the layer.
        """
        N = self.n_candidates
        x = self.rows(np.arange(N), self.dtype)
        g = np.empty((N, N))
        for start in range(0, N, _READ_ROWS):
            g[start:start + _READ_ROWS] = x[start:start + _READ_ROWS] @ x.T
        self.gram_all = g

    # ------------------------------------------------------------------ form
    def choose_form(self, ri: RefreshInput) -> str:
        """``"dual"`` or ``"primal"``: whichever costs fewer operations this refresh."""
        n_tr = max((s.train.size for s in ri.outer), default=0)
        n_sets = len(ri.outer) + (len(ri.inner) if ri.alpha_selection == "kfold" else 0)
        D, M, n_seen = self.dim, ri.y.shape[1], ri.seen.size
        r_dual = min(n_tr, n_seen)
        dual = n_sets * (10.0 * r_dual**3 + 2.0 * r_dual**2 * M)
        if self.gram_all is None:
            dual += 2.0 * n_seen**2 * D
        primal = n_sets * (10.0 * D**3 + 2.0 * D * D * M)
        if self.stats is None:
            primal += 2.0 * n_sets * n_tr * D * (D + M)
        return "dual" if dual <= primal else "primal"

    # ------------------------------------------------------------------ solve
    @staticmethod
    def _spectrum_key(form: str, split: Split) -> bytes:
        """Where a training set's eigendecomposition is kept in ``_spectra``."""
        return form.encode() + split.train.tobytes()

    def _spectrum(self, form: str, split: Split, pos: np.ndarray, kseen, stats_fn):
        key = self._spectrum_key(form, split)
        spec = self._spectra.get(key)
        if spec is None:
            if form == "dual":
                p = pos[split.train]
                spec = solvers.dual_spectrum(self.B, self.B.asarray(kseen[np.ix_(p, p)]))
            else:
                st = stats_fn(split)
                spec = solvers.primal_spectrum(self.B, n=st[0], sx=st[1], sxx=st[2])
        return key, spec

    def _basis(self, form, spec, split, pos, ri, stats_fn):
        B = self.B
        if form == "dual":
            y = B.asarray(ri.y[pos[split.train]])
            return solvers.dual_basis(B, spec, y, self.dtype)
        st = stats_fn(split)
        return solvers.primal_basis(B, spec, sy=st[3], syy=st[4], sxy=st[5], dtype=self.dtype)

    def _embed(self, form, basis, split, pos, kseen):
        B = self.B
        if form == "dual":
            cross = kseen[np.ix_(pos[split.predict], pos[split.train])]
        else:
            cross = self.rows(split.predict)
        return solvers.embed(B, basis, B.asarray(cross), self.dtype)

    def solve(self, ri: RefreshInput, *, keep_spectra: bool = False,
              form: str = "auto") -> LayerFit:
        """Select alphas (when asked), fit every outer split and score the held-out stimuli.

        Parameters
        ----------
        ri : RefreshInput
            The refresh's shared input.
        keep_spectra : bool
            Keep each training set's eigendecomposition for the next refresh.
        form : str
            ``"auto"`` (the cheaper form), ``"dual"`` or ``"primal"``.
        """
        B = self.B
        if self.want_gram and self.gram_all is None:
            self.build_gram_cache()
        form = self.choose_form(ri) if form == "auto" else form
        pos = np.full(self.n_candidates, -1, dtype=np.int64)
        pos[ri.seen] = np.arange(ri.seen.size)
        if form == "dual" and not self.want_anchors:
            keep_spectra = False  # not in the memory plan: nothing n0 x n0 is kept
        anchored = (form == "dual" and keep_spectra and self.gram_all is not None
                    and self.B.name == "numpy")
        need_kseen = form == "dual" and (not anchored or (ri.reselect and ri.alpha_selection
                                                          == "kfold"))
        kseen = self.gram(ri.seen) if need_kseen else None
        stats_fn = self._stats_fn(ri, pos)
        new_spectra: dict[bytes, solvers.Spectrum] = {}

        def basis_of(split):
            key, spec = self._spectrum(form, split, pos, kseen, stats_fn)
            new_spectra[key] = spec
            return self._basis(form, spec, split, pos, ri, stats_fn)

        n_outer = len(ri.outer)
        idx: list[np.ndarray | None] = [None] * n_outer
        if ri.reselect and ri.alpha_selection == "kfold":
            sse: list = [None] * n_outer
            for sp in ri.inner:
                basis = basis_of(sp)
                E = self._embed(form, basis, sp, pos, kseen)
                yv = ri.y[pos[sp.predict]]
                e = np.stack([((yv - B.to_numpy(yh)) ** 2).sum(0) for _, yh in
                              solvers.predict_per_alpha(B, basis, E, ri.alphas, self.dtype)])
                sse[sp.outer] = e if sse[sp.outer] is None else sse[sp.outer] + e
            idx = [np.zeros(ri.y.shape[1], np.int64) if e is None else np.argmin(e, 0)
                   for e in sse]
        elif not ri.reselect and ri.previous is not None and len(ri.previous) == n_outer:
            idx = list(ri.previous)
        preds = []
        anchors: dict[tuple, DualAnchor] = {}
        self._refits.start()
        self._carried_next = {}
        for o, sp in enumerate(ri.outer):
            if anchored:
                prev = ri.previous[o] if ri.previous is not None and len(
                    ri.previous) == n_outer else None
                an, want = keep_or_rebuild(
                    self._anchors.get(sp.left_out), gram=self.gram_all, train=sp.train,
                    y_train=lambda sp=sp: ri.y[pos[sp.train]], alphas=ri.alphas, layer=self.li,
                    split=o, lean=ri.lean_anchors, reanchor=ri.reanchor, scheduled=ri.scheduled,
                    select_at_rebuild=ri.select_at_rebuild, idx=idx[o], previous=prev)
                anchors[sp.left_out] = an
                idx[o], pred = an.solve(sp.train, sp.predict, lambda r: ri.y[pos[r]], want,
                                        self.dtype)
                preds.append(pred)
                continue
            if form == "primal":  # the split's kept solves stay valid while it is unchanged
                self._refits.entry(RefitCache.key(sp.train, sp.predict, ri.alphas))
            if form == "primal" and not ri.reselect and idx[o] is not None and not ri.reanchor:
                pred = self._primal_refit(sp, ri, idx[o], stats_fn)
                if pred is not None:
                    key = self._spectrum_key(form, sp)
                    if key in self._spectra:  # still this training set's: keep it
                        new_spectra[key] = self._spectra[key]
                    preds.append(pred)
                    continue
            basis = basis_of(sp)
            if idx[o] is None:
                idx[o] = solvers.gcv_select(B, basis, ri.alphas)
            pred = (self._primal_refit(sp, ri, idx[o], stats_fn, selected=True)
                    if form == "primal" and not ri.reanchor else None)
            if pred is None:  # the carried refit serves re-selected alphas too, when there is one
                E = self._embed(form, basis, sp, pos, kseen)
                pred = solvers.predict(B, basis, E, ri.alphas, idx[o], self.dtype)
            preds.append(pred)
        self._anchors = anchors
        self._carried = self._carried_next if keep_spectra and not ri.reanchor else {}
        self._spectra = new_spectra if keep_spectra else {}
        if keep_spectra and not ri.reanchor:
            self._refits.finish()
        else:
            self._refits.clear()
        rows = np.concatenate([sp.predict for sp in ri.outer])
        pred = np.concatenate(preds)
        r, pc = pearson_columns(pred, ri.scored_side(rows), return_centred=True)
        # kept centred: float32 then holds the variation of even nearly constant predictions
        return LayerFit(r=r, alpha_idx=[np.asarray(i, np.int64) for i in idx], form=form,
                        pred=pc.astype(np.float32))

    @property
    def anchors(self) -> dict[tuple, DualAnchor]:
        """The kept anchors by left-out block (a copy of the mapping)."""
        return dict(self._anchors)

    def _primal_refit(self, split: Split, ri: RefreshInput, idx: np.ndarray, stats_fn, *,
                      selected: bool = False):
        """A refit without an eigendecomposition, or None when refitting from the
        eigendecomposition is cheaper (or needed).

        With kept statistics (live caches) the refit is carried forward from the last refresh
        by low-rank updates (:class:`~neuralign.align.refit.CarriedRefit`); without them, by
        Cholesky factorisations (:func:`solvers.primal_refit`). ``selected``: the alphas were
        just re-selected; only a carried refit serves them (the targets whose alpha changed
        are refitted), else None."""
        if self.B.name != "numpy":
            return None
        st = tuple(self.B.to_numpy(a) if i else a for i, a in enumerate(stats_fn(split)))
        if self.stats is not None:
            cr = self._carried.get(split.left_out)
            if not (cr is not None and (cr.fits(ri.alphas, idx) or selected and np.array_equal(
                    cr.alphas, ri.alphas)) and cr.advance(
                    st, self.stats.changes(split.left_out), version=self.stats.version,
                    train=split.train, predict=split.predict, xp_fn=self.rows)
                    and cr.retarget(st, idx, self.rows)):
                if selected or not self._worth_factorising(split, ri, idx, carried=True):
                    return None
                cr = CarriedRefit.build(st, train=split.train, predict=split.predict,
                                        xp=self.rows(split.predict), alphas=ri.alphas, idx=idx,
                                        version=self.stats.version)
                if cr is None:
                    return None
            self._carried_next[split.left_out] = cr
            return cr.predictions(st)
        if selected:
            return None
        solves, unchanged = self._refits.entry(RefitCache.key(split.train, split.predict,
                                                              ri.alphas))
        if not unchanged and not self._worth_factorising(split, ri, idx, carried=False):
            return None
        return solvers.primal_refit(st, self.rows(split.predict), ri.alphas, idx, self.dtype,
                                    solves=solves, keep_all=unchanged)

    def _worth_factorising(self, split: Split, ri: RefreshInput, idx: np.ndarray, *,
                           carried: bool) -> bool:
        """Whether factorising ``C_xx + a I`` per distinct alpha costs fewer operations than
        refitting from the (kept or new) eigendecomposition."""
        D, M, n_new = self.dim, ri.y.shape[1], split.predict.size
        counts = np.bincount(np.asarray(idx), minlength=ri.alphas.size)
        if carried:  # factor, explicit inverse, Z: then cheap refreshes while it is carried
            chol = sum(D**3 + 2.0 * n_new * D * D for c in counts if c)
        else:
            chol = sum(D**3 / 3.0 + 4.0 * D * D * min(n_new, int(c)) for c in counts if c)
        cached = self._spectrum_key("primal", split) in self._spectra
        return chol <= (0.0 if cached else 10.0 * D**3) + 2.0 * D * D * M

    # ------------------------------------------------------------------ primal statistics
    def _stats_fn(self, ri: RefreshInput, pos: np.ndarray):
        """Sufficient statistics of a split's training set (cached blocks or from scratch)."""
        B = self.B
        memo: dict[bytes, tuple] = {}

        def fn(split: Split):
            key = split.train.tobytes()
            if key not in memo:
                if self.stats is not None:
                    st = self.stats.training(split.left_out)
                else:  # one pass over the rows; the products in the solver's dtype
                    x = self.rows(split.train, self.dtype)
                    y = ri.y[pos[split.train]]
                    yd = y if self.dtype == "float64" else y.astype(self.dtype)
                    st = (float(x.shape[0]), x.sum(0, dtype=float),
                          np.asarray(x.T @ x, dtype=float), y.sum(0), (y * y).sum(0),
                          np.asarray(x.T @ yd, dtype=float))
                memo[key] = (st[0],) + tuple(B.asarray(a) for a in st[1:])
            return memo[key]

        return fn

    def enable_stats(self, targets: BlockTargets) -> None:
        """Keep per-block primal statistics from now on (live sessions, narrow layers)."""
        self.stats = BlockStats(targets, self.dim)

    def update(self, changes: BlockChanges) -> None:
        """Fold changed stimulus means into the cached statistics and anchors."""
        if not changes.rows.size:
            return
        if self.stats is not None:
            self.stats.update(self.rows, changes)
        for an in self._anchors.values():
            an.apply_changes(changes.rows, changes.delta)

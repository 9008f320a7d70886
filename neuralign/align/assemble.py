"""RSA, noise ceilings and the assembly of an :class:`~neuralign.align.data.AlignmentResult`.

RSA and the noise ceilings are computed from a consistent copy of the stimulus store (means and
split halves of the scoring stimuli); the layer RDMs only change when the set of RSA stimuli
changes, so they are cached by that set.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass

import numpy as np

from ..base import FeatureSet
from . import reliability, rsa
from .data import AlignmentResult
from .folds import stable_order
from .store import StimulusStore


@dataclass
class RSAPart:
    """RSA maps, RSA ceiling and noise ceilings of one refresh."""

    rows: np.ndarray
    with_halves: bool
    maps: dict[str, np.ndarray]
    rsa_ceiling: np.ndarray
    noise_ceiling: dict[str, np.ndarray]


class RSAComputer:
    """Layer x time RSA and noise ceilings from the store.

    Parameters
    ----------
    features : FeatureSet
        The layers (only the RSA stimuli's rows are read).
    store : StimulusStore
        Per-stimulus means and split halves.
    n_channels, n_times : int
        Epoch shape.
    max_stimuli : int or None
        Cap on the stimuli in the RDMs (chosen by a stable hash of their ids).
    shared : EEGSideCache, optional
        Where engines fed the same epochs (several models) share the EEG side of RSA and the
        noise ceilings.
    """

    def __init__(self, features: FeatureSet, store: StimulusStore, *, n_channels: int,
                 n_times: int, max_stimuli: int | None,
                 shared: EEGSideCache | None = None) -> None:
        self.features = features
        self.store = store
        self.C, self.T = n_channels, n_times
        self.max_stimuli = max_stimuli
        self.shared = shared
        self._key: bytes | None = None
        self._model = None
        # what the EEG RDMs were last ranked from, and the rankers per time chunk
        self._last: tuple | None = None
        self._rankers: dict[tuple[int, int], dict] = {}

    def rows(self) -> tuple[np.ndarray, bool]:
        """The RSA stimuli: scoring rows with split halves, else every seen scoring row."""
        st = self.store
        rep_rows = st.repetition_rows()
        seen = np.nonzero(st.scoring & (st.count > 0))[0]
        rows, with_halves = (rep_rows, True) if rep_rows.size >= 3 else (seen, False)
        if self.max_stimuli is not None and rows.size > self.max_stimuli:
            order = stable_order(self.features.stimulus_ids[rows])
            rows = np.sort(rows[order[: self.max_stimuli]])
        return rows, with_halves

    def compute(self) -> RSAPart:
        """RSA maps and ceilings of the current store (in one go)."""
        job = self.start(n_chunks=1)
        return job.finish([task() for task in job.tasks])

    def start(self, *, n_chunks: int = 2) -> RSAJob:
        """RSA of the current store as independent tasks over time chunks, and a finisher.

        The EEG RDMs are ranked time point by time point (sorting dominates RSA), so chunks of
        time points run in parallel with the layers' solves.
        """
        rows, with_halves = self.rows()
        key = (tuple(self.features.stimulus_ids[rows].tolist()), with_halves,
               self.store.n_epochs)
        cached = self.shared.get(key) if self.shared is not None else None
        if cached is not None:
            return RSAJob(self, rows, with_halves, key, None, [], cached)
        v = self.store.view(rows, halves=with_halves)
        shape3 = (rows.size, self.C, self.T)
        m = v.means.reshape(shape3)
        ha = None if v.half_a is None else v.half_a.reshape(shape3)
        hb = None if v.half_b is None else v.half_b.reshape(shape3)
        changed = self._changed(rows, with_halves, v)
        tasks = []
        if rows.size >= 3:
            chunks = np.array_split(np.arange(self.T), max(1, min(n_chunks, self.T)))
            for i, sl in enumerate(chunks):
                sl = slice(int(sl[0]), int(sl[-1]) + 1)
                rankers = self._rankers.setdefault((len(chunks), i), {})
                tasks.append(functools.partial(_eeg_chunk, m[:, :, sl],
                                               None if ha is None else ha[:, :, sl],
                                               None if hb is None else hb[:, :, sl],
                                               rankers, changed))
        return RSAJob(self, rows, with_halves, key, v, tasks, None)

    def _changed(self, rows: np.ndarray, with_halves: bool, v) -> np.ndarray | None:
        """RSA stimuli (positions in ``rows``) whose EEG changed since the last ranking."""
        prev, self._last = self._last, (rows.tobytes(), with_halves, v.means, v.half_a,
                                        v.half_b)
        if prev is None or prev[0] != rows.tobytes() or prev[1] != with_halves:
            self._rankers.clear()
            return None
        diff = (prev[2] != v.means).any(axis=1)
        for old, new in ((prev[3], v.half_a), (prev[4], v.half_b)):
            if old is not None and new is not None:
                diff |= (old != new).any(axis=1)
        return np.nonzero(diff)[0]

    def maps(self, rows: np.ndarray, brain: dict | None) -> dict[str, np.ndarray]:
        """Layer x time RSA maps against an EEG side."""
        if rows.size >= 3 and self._key != rows.tobytes():
            layers = [np.asarray(a[rows], dtype=float) for a in self.features.arrays]
            self._model = rsa.model_rdm_ranks(layers)
            self._key = rows.tobytes()
        L, T = self.features.n_layers, self.T
        out = {k: np.full((L, T), np.nan) for k in ("spearman", "pearson", "cv_spearman")}
        if rows.size >= 3 and brain is not None:
            zr, zv = self._model
            out["spearman"] = zr @ brain["rank"].T
            out["pearson"] = zv @ brain["value"].T
            if brain["cv_rank"] is not None:
                out["cv_spearman"] = zr @ brain["cv_rank"].T
        return out


def _eeg_chunk(means, half_a, half_b, rankers, changed) -> dict:
    """EEG RDMs and the split-half RSA ceiling of a chunk of time points."""
    out = rsa.brain_rdms(means, half_a, half_b, rankers=rankers, changed=changed)
    out["rsa_nc"] = (rsa.rdm_split_half_ceiling(half_a, half_b, rankers=rankers,
                                                changed=changed)
                     if half_a is not None else np.full(means.shape[2], np.nan))
    return out


@dataclass
class RSAJob:
    """One refresh's RSA: tasks over time chunks, then :meth:`finish`."""

    computer: RSAComputer
    rows: np.ndarray
    with_halves: bool
    key: tuple
    view: object
    tasks: list
    cached: dict | None

    def finish(self, chunks: list[dict]) -> RSAPart:
        """Assemble the chunks' results (or the shared EEG side) into the RSA part."""
        rc = self.computer
        eeg = self.cached
        if eeg is None:
            eeg = self._eeg(chunks)
            if rc.shared is not None:
                rc.shared.put(self.key, eeg)
        return RSAPart(self.rows, self.with_halves, rc.maps(self.rows, eeg["brain"]),
                       eeg["rsa_nc"], eeg["nc"])

    def _eeg(self, chunks: list[dict]) -> dict:
        rc, v = self.computer, self.view
        C, T = rc.C, rc.T
        brain = None
        rsa_nc = np.full(T, np.nan)
        if chunks:
            brain = {k: np.concatenate([c[k] for c in chunks]) for k in ("rank", "value")}
            brain["cv_rank"] = (None if chunks[0]["cv_rank"] is None
                                else np.concatenate([c["cv_rank"] for c in chunks]))
            rsa_nc = np.concatenate([c["rsa_nc"] for c in chunks])
        if v.half_a is not None:
            scored = rc.store.count[rc.store.scoring & (rc.store.count > 0)]
            nc = reliability.noise_ceilings(v.counts, v.means, v.half_a, v.half_b, v.m2,
                                            scored_inv_counts=float(np.mean(1.0 / scored)))
        else:
            empty = np.zeros((0, C * T))
            nc = reliability.noise_ceilings(np.zeros(0), empty, empty, empty, empty)
        nc = {k: a.reshape(C, T) for k, a in nc.items()}
        return {"brain": brain, "rsa_nc": rsa_nc, "nc": nc}


class EEGSideCache:
    """The last EEG side of RSA and noise ceilings, shared by engines fed the same epochs."""

    def __init__(self) -> None:
        self._item: tuple | None = None
        self._lock = threading.Lock()

    def get(self, key: tuple) -> dict | None:
        """The stored EEG side if it was computed for ``key`` (RSA stimuli, halves, epochs)."""
        with self._lock:
            return self._item[1] if self._item is not None and self._item[0] == key else None

    def put(self, key: tuple, value: dict) -> None:
        """Store the EEG side computed for ``key``."""
        with self._lock:
            self._item = (key, value)


def build_result(*, features: FeatureSet, times: np.ndarray, ch_names: list[str],
                 r: np.ndarray, alpha: np.ndarray, part: RSAPart, counts: dict,
                 settings: dict) -> AlignmentResult:
    """Assemble the result of a refresh (``r``, ``alpha``: (L, C, T))."""
    return AlignmentResult(
        layers=list(features.layers),
        times=np.asarray(times, dtype=float).copy(),
        ch_names=list(ch_names),
        encoding_r=r,
        encoding_alpha=alpha,
        rsa_spearman=part.maps["spearman"],
        rsa_pearson=part.maps["pearson"],
        rsa_cv_spearman=part.maps["cv_spearman"],
        noise_ceiling=part.noise_ceiling,
        counts=counts,
        settings=settings,
        rsa_stimulus_ids=features.stimulus_ids[part.rows].tolist(),
        rsa_noise_ceiling=part.rsa_ceiling,
    )


def engine_counts(eng, part: RSAPart) -> dict:
    """The counts an engine's refresh reports."""
    g, st = eng.geometry, eng.store
    seen = st.count > 0
    n_train = int(np.count_nonzero(seen & ~g.is_test))
    n_test = int(np.count_nonzero(seen & g.is_test))
    return {
        "n_epochs": int(st.n_epochs),
        "n_stimuli": int(np.count_nonzero(seen)),
        "n_train_stimuli": n_train,
        "n_test_stimuli": n_test if eng.design else 0,
        "n_scored_stimuli": n_test if eng.design else n_train,
        "n_rsa_stimuli": int(part.rows.size),
        "n_unknown_epochs": int(sum(st.unknown_ids.values())),
        "unknown_ids": sorted(st.unknown_ids)[:100],
        "n_refresh": int(eng.n_refresh),
        "rsa_refresh": int(eng.rsa_refresh),
        "solver_forms": list(eng.last_forms),
    }

def engine_settings(eng, part: RSAPart) -> dict:
    """Every setting the maps of an engine's refresh depend on."""
    return {
        "mode": "train/test" if eng.design else "nested-cv",
        "alphas": eng.alphas.tolist(),
        "n_folds": eng.n_folds,
        "alpha_selection": eng.alpha_selection,
        "reselect_every": eng.reselect_every,  # live: staggered over layers; final: all layers
        "rsa_every": eng.rsa_every,
        "alpha_selection_detail": (
            "per target, generalised CV on each training set (training data only)"
            if eng.alpha_selection == "gcv"
            else "per target, K-fold CV over the training folds (nested inside outer folds)"
        ),
        "score": "Pearson r of held-out predictions vs stimulus-mean EEG",
        "standardize_features": eng.standardize,
        "backend": eng.backend_name,
        "dtype": eng.dtype,
        "solver_form": eng.form,
        "solver_forms": list(eng.last_forms),
        "memory_budget_bytes": eng.memory,
        "memory_plan": eng.plan.describe(),
        "rsa_eeg_distance": "correlation (1 - r over channels); cv: split-half Euclidean",
        "rsa_model_distance": "correlation (1 - r over features)",
        "rsa_cv_available": bool(part.with_halves),
        "max_rsa_stimuli": eng.max_rsa_stimuli,
        "n_channels": eng.n_channels,
        "n_times": eng.n_times,
        "feature_dims": list(eng.features.dims),
        "features": eng.features.provenance,
    }

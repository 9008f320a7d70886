"""Single-subject statistics of an offline analysis: how far to trust each map and peak.

Everything resamples the engine's held-out predictions (nothing is refitted):

- per layer, the peak r and peak latency of the channel-mean encoding map with bootstrap
  intervals over the scored stimuli (:func:`~neuralign.align.confidence.bootstrap_peaks`);
- a family-wise significance mask over the layer x time map: stimulus-label permutations with
  the maximum statistic over every layer and time point
  (:func:`~neuralign.align.confidence.permutation_mask`);
- the latency hierarchy over the significant layers: Spearman rho of peak latency with depth
  and its permutation p (:func:`~neuralign.align.hierarchy.latency_hierarchy`).

:class:`LayerStatistics` holds them, writes them to JSON + arrays and reads them back (the
stat cache), and says in plain words what they allow one to conclude (:meth:`statements`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..align.confidence import (
    MapMask,
    PeakIntervals,
    bootstrap_peaks,
    latency_hierarchy,
    permutation_mask,
)
from ..errors import NeuralignError


@dataclass(frozen=True)
class StatOptions:
    """Settings of the statistics (every one enters the cache key).

    Parameters
    ----------
    n_perm : int
        Stimulus-label permutations of the family-wise mask (0: no mask, no test).
    n_boot : int
        Bootstrap resamples of the scored stimuli (0: no intervals).
    seed : int
        Seed of permutations and resamples.
    alpha : float
        Family-wise error rate.
    """

    n_perm: int = 1000
    n_boot: int = 1000
    seed: int = 0
    alpha: float = 0.05

    def check(self) -> None:
        """Raise :class:`~neuralign.errors.NeuralignError` naming the bad option."""
        if self.n_perm < 0:
            raise NeuralignError(f"--permutations must be 0 or more, got {self.n_perm}")
        if self.n_boot < 0:
            raise NeuralignError(f"--bootstrap must be 0 or more, got {self.n_boot}")
        if not 0.0 < self.alpha < 1.0:
            raise NeuralignError(f"--alpha must be between 0 and 1, got {self.alpha}")
        if self.n_perm and self.alpha * (self.n_perm + 1) < 1:
            need = int(np.ceil(1.0 / self.alpha - 1.0))
            raise NeuralignError(
                f"--permutations {self.n_perm} cannot reach --alpha {self.alpha}: the smallest "
                f"permutation p is 1/(N+1); use at least {need}")

    def to_dict(self) -> dict:
        """JSON-ready settings."""
        return {"n_permutations": self.n_perm, "n_bootstrap": self.n_boot, "seed": self.seed,
                "alpha": self.alpha}


@dataclass
class LayerStatistics:
    """Intervals, significance and hierarchy test of one feature set's maps.

    Attributes
    ----------
    label : str
        The feature set.
    layers : list of str
        Layer names (depth order).
    times : ndarray (T,)
        Time axis (s).
    latency_s, peak_r : ndarray (L,)
        Peak latency and peak r of each layer's channel-mean encoding map.
    latency_ci, peak_r_ci : ndarray (L, 2)
        Bootstrap intervals (NaN without bootstrap).
    peak_r_norm, peak_r_norm_ci : ndarray (L,), (L, 2)
        Peak of the noise-ceiling normalised map and its interval (NaN without ceilings).
    map_ci : ndarray (L, 2, T) or None
        Bootstrap interval of the channel-mean map.
    mask, p : ndarray (L, T) or None
        Family-wise significant cells and their corrected p (None without permutations).
    threshold : float
        Null maximum above which a cell is significant.
    hierarchy : dict
        :func:`~neuralign.align.hierarchy.latency_hierarchy` over the significant layers.
    options : StatOptions
        The settings.
    notes : list of str
        What the user must know to read the numbers.
    """

    label: str
    layers: list[str]
    times: np.ndarray
    latency_s: np.ndarray
    latency_ci: np.ndarray
    peak_r: np.ndarray
    peak_r_ci: np.ndarray
    peak_r_norm: np.ndarray
    peak_r_norm_ci: np.ndarray
    map_ci: np.ndarray | None
    mask: np.ndarray | None
    p: np.ndarray | None
    threshold: float
    hierarchy: dict
    options: StatOptions
    notes: list[str] = field(default_factory=list)

    @property
    def significant(self) -> np.ndarray | None:
        """(L,) layers with at least one significant cell (None without permutations)."""
        return None if self.mask is None else self.mask.any(axis=1)

    def to_dict(self) -> dict:
        """The ``statistics`` entry of ``results.json``."""
        sig = self.significant
        rows = []
        for i, name in enumerate(self.layers):
            row = {"layer": name, "peak_latency_s": self.latency_s[i],
                   "peak_latency_ci": self.latency_ci[i], "peak_r": self.peak_r[i],
                   "peak_r_ci": self.peak_r_ci[i]}
            if sig is not None:
                times = self.times[self.mask[i]]
                pi = self.p[i][np.isfinite(self.p[i])]
                row.update(significant=bool(sig[i]), min_p=pi.min() if pi.size else None,
                           significant_from_s=times.min() if times.size else None,
                           significant_to_s=times.max() if times.size else None)
            rows.append(row)
        out = {"options": self.options.to_dict(), "ci": 0.95, "layers": rows,
               "hierarchy": self.hierarchy, "notes": list(self.notes),
               "interval": "percentile bootstrap over the scored stimuli (held-out "
                           "predictions resampled, nothing refitted)"}
        out["statements"] = self.statements()
        if self.mask is not None:
            out["mask"] = {"cells": self.mask, "p": self.p,
                           "n_significant_cells": int(self.mask.sum()),
                           "n_significant_layers": int(sig.sum()),
                           "threshold_r": self.threshold,
                           "correction": "max statistic over layers x times (stimulus-label "
                                         "permutations of the EEG against the predictions)",
                           "file": "significance.npz"}
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays for ``significance.npz`` (and the cache)."""
        out = {"layers": np.asarray(self.layers, dtype=str), "times": self.times,
               "peak_latency_s": self.latency_s, "peak_latency_ci": self.latency_ci,
               "peak_r": self.peak_r, "peak_r_ci": self.peak_r_ci,
               "peak_r_norm": self.peak_r_norm, "peak_r_norm_ci": self.peak_r_norm_ci}
        if self.map_ci is not None:
            out["map_ci"] = self.map_ci
        if self.mask is not None:
            out.update(mask=self.mask, p=self.p, threshold=np.asarray(self.threshold))
        return out

    def monitor_dict(self) -> dict:
        """The record a live session writes for one model
        (:meth:`neuralign.align.monitor.ModelConfidence.to_dict`): the same keys, so live
        and offline statistics of the same epochs and seed compare key by key."""
        o = self.options
        peaks = None
        if o.n_boot:
            peaks = {"latency_s": self.latency_s, "latency_ci": self.latency_ci,
                     "peak_r": self.peak_r, "peak_r_ci": self.peak_r_ci,
                     "peak_r_norm": self.peak_r_norm, "peak_r_norm_ci": self.peak_r_norm_ci,
                     "n_boot": o.n_boot, "ci": 0.95}
        mask = None
        if self.mask is not None:
            mask = {"mask": self.mask, "p": self.p, "threshold": self.threshold,
                    "n_perm": o.n_perm, "alpha": o.alpha,
                    "correction": "max statistic over layers x times (stimulus permutations)"}
        sig = self.significant
        return {"layers": list(self.layers), "peaks": peaks, "mask": mask,
                "significant_layers": None if sig is None or peaks is None else sig}

    @classmethod
    def from_saved(cls, label: str, meta: dict, arrays) -> LayerStatistics:
        """Rebuild from :meth:`to_dict` and :meth:`arrays` (as the cache stores them).

        Parameters
        ----------
        label : str
            The feature set.
        meta : dict
            :meth:`to_dict`'s content.
        arrays : mapping of str to ndarray
            :meth:`arrays`' content.
        """
        o = meta["options"]
        opts = StatOptions(n_perm=o["n_permutations"], n_boot=o["n_bootstrap"],
                           seed=o["seed"], alpha=o["alpha"])
        has = "mask" in arrays
        return cls(label, [str(s) for s in arrays["layers"]], np.asarray(arrays["times"]),
                   arrays["peak_latency_s"], arrays["peak_latency_ci"], arrays["peak_r"],
                   arrays["peak_r_ci"], arrays["peak_r_norm"], arrays["peak_r_norm_ci"],
                   arrays["map_ci"] if "map_ci" in arrays else None,
                   arrays["mask"].astype(bool) if has else None,
                   arrays["p"] if has else None,
                   float(arrays["threshold"]) if has else float("nan"),
                   _nan_safe(meta["hierarchy"]), opts, list(meta.get("notes", [])))

    def statements(self) -> list[str]:
        """What the statistics allow one to say, in words (one line each)."""
        o, lines = self.options, []
        sig = self.significant
        if sig is None:
            lines.append(f"[{self.label}] no permutation test (--permutations 0): nothing "
                         "here says whether any layer is above chance")
        elif not sig.any():
            lines.append(f"[{self.label}] no layer significant (family-wise alpha {o.alpha}, "
                         f"{o.n_perm} permutations): the maps do not differ from chance and "
                         "the latency hierarchy is not interpretable")
        else:
            names = [n for n, s in zip(self.layers, sig) if s]
            lines.append(f"[{self.label}] {len(names)} of {len(self.layers)} layers significant "
                         f"(family-wise alpha {o.alpha}, {o.n_perm} permutations): "
                         + ", ".join(names))
        h = self.hierarchy
        if h.get("note"):
            lines.append(f"[{self.label}] latency hierarchy: {h['note']}")
        elif np.isfinite(h.get("rho", np.nan)):
            lo, hi = h.get("ci", [np.nan, np.nan])
            lines.append(f"[{self.label}] latency hierarchy over {len(h['layers'])} "
                         f"{'significant ' if sig is not None else ''}layers: Spearman rho = "
                         f"{h['rho']:.2f} (95% CI {_f(lo, 2)} to {_f(hi, 2)}), permutation "
                         f"p = {h['p']:.3g}"
                         + (" -> later layers peak later" if h["p"] <= o.alpha
                            else " -> no evidence that deeper layers peak later"))
            p_min = 2.0 / (h["n_perm"] + 1) if h.get("n_perm") else np.nan
            if h["p"] > o.alpha and p_min > o.alpha:
                lines[-1] += (f" (with {len(h['layers'])} layers the smallest attainable p is "
                              f"{p_min:.3g}: the test cannot reach alpha {o.alpha})")
        lines += [f"[{self.label}] note: {n}" for n in self.notes]
        return lines


def _f(x, nd: int = 3) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def _nan_safe(d: dict) -> dict:
    """JSON null -> NaN in a hierarchy record."""
    out = dict(d)
    for k in ("rho", "p"):
        out[k] = float("nan") if out.get(k) is None else out[k]
    out["ci"] = [float("nan") if v is None else v for v in out.get("ci", [None, None])]
    return out


def layer_statistics(held, result, *, label: str, options: StatOptions,
                     progress=None) -> LayerStatistics:
    """Intervals, mask and hierarchy test of one engine's last refresh.

    Parameters
    ----------
    held : HeldOut or None
        The engine's held-out predictions (None: too few scored stimuli; only the peaks).
    result : AlignmentResult
        The maps of the same refresh (peaks without bootstrap).
    label : str
        The feature set's label.
    options : StatOptions
        Permutations, resamples, seed, alpha.
    progress : callable, optional
        Called with 1 after each layer of the bootstrap and of the permutations.

    Returns
    -------
    LayerStatistics
    """
    L, T = len(result.layers), np.asarray(result.times).size
    notes: list[str] = []
    peaks: PeakIntervals | None = None
    mask: MapMask | None = None
    usable = held is not None and held.n >= 3
    if not usable:
        notes.append("fewer than 3 scored stimuli: no intervals and no permutation test")
    if usable and options.n_boot:
        peaks = bootstrap_peaks(held, n_boot=options.n_boot, seed=options.seed,
                                progress=progress)
    if usable and options.n_perm:
        mask = permutation_mask(held, n_perm=options.n_perm, alpha=options.alpha,
                                seed=options.seed, progress=progress)
    if peaks is None:
        lat, val = result.peaks("encoding")
        nan2 = np.full((L, 2), np.nan)
        peaks = PeakIntervals(lat, nan2, val, nan2.copy(), np.full(L, np.nan), nan2.copy(),
                              np.full((L, 2, T), np.nan), 0, 0.95)
    sig = None if mask is None else mask.mask.any(axis=1)
    hier = latency_hierarchy(peaks, significant=sig, seed=options.seed)
    if sig is None and not hier.get("note"):
        notes.append("hierarchy over every layer, significant or not (no permutation test)")
    if usable and held.n < 20:
        notes.append(f"only {held.n} scored stimuli: intervals are wide and the permutation "
                     "test has little power")
    return LayerStatistics(
        label, list(result.layers), np.asarray(result.times, float), peaks.latency_s,
        peaks.latency_ci, peaks.peak_r, peaks.peak_r_ci, peaks.peak_r_norm,
        peaks.peak_r_norm_ci,
        peaks.map_ci if peaks.n_boot else None,
        None if mask is None else mask.mask, None if mask is None else mask.p,
        float("nan") if mask is None else mask.threshold, hier, options, notes)


def rsa_notes(features) -> list[str]:
    """Layers whose RSA is undefined (fewer than two feature dimensions), as notes.

    Parameters
    ----------
    features : FeatureSet
        The layers analysed.

    Returns
    -------
    list of str
        One note per such layer (its RSA map is NaN, never a number).
    """
    out = []
    for name, a in zip(features.layers, features.arrays):
        d = int(np.shape(a)[1]) if np.ndim(a) == 2 else 0
        if d < 2:
            out.append(f"layer {name!r} has {d} feature dimension(s): its RDM (correlation "
                       "distance) is undefined, so its RSA is NaN (not computed)")
    return out

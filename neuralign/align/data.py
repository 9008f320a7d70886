""":class:`AlignmentResult`: the layer x channel x time maps an engine refresh produces
(encoding r, RSA, noise ceilings), with peaks, JSON export and ``maps.npz`` export.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import NeuralignError
from .reliability import normalize_by_ceiling


def _nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    """NaN-ignoring mean that returns NaN (without a warning) where everything is NaN."""
    x = np.asarray(x, dtype=float)
    ok = np.isfinite(x)
    n = ok.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, np.where(ok, x, 0.0).sum(axis=axis) / n, np.nan)


def _peaks(map_lt: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer peak latency (s) and peak value of a (layers, times) map (NaN-safe)."""
    lat = np.full(map_lt.shape[0], np.nan)
    val = np.full(map_lt.shape[0], np.nan)
    for i, row in enumerate(map_lt):
        if np.all(np.isnan(row)):
            continue
        j = int(np.nanargmax(row))
        lat[i], val[i] = times[j], row[j]
    return lat, val


def jsonable(x):
    """A JSON-serialisable copy of ``x``: arrays to lists, NaN/Inf to None, paths to str."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Path):
        return str(x)
    return x


@dataclass
class AlignmentResult:
    """The maps of one engine refresh.

    Attributes
    ----------
    layers, times, ch_names
        Axes: layer names (depth order), epoch time points in seconds, channel names.
    encoding_r : ndarray (L, C, T)
        Held-out Pearson r of the ridge encoding model per layer, channel and time.
    encoding_alpha : ndarray (L, C, T)
        The regularisation chosen (without looking at the scored data) per target.
    rsa_spearman, rsa_pearson : ndarray (L, T)
        Spearman / Pearson correlation between the layer's RDM and the EEG RDM (correlation
        distance between stimulus means over channels) at each time.
    rsa_cv_spearman : ndarray (L, T)
        Spearman correlation with the cross-validated Euclidean EEG RDM from split halves.
    noise_ceiling : dict of str -> ndarray (C, T)
        ``r_ceiling`` (the highest r a perfect model could reach against the scored means),
        ``split_half`` (odd/even half-mean correlation), ``spearman_brown``,
        ``things_lower`` / ``things_upper`` (THINGS-EEG2 bounds), ``ncsnr_pct``.
    counts : dict
        Numbers of epochs, stimuli, train/test stimuli, unknown ids...
    settings : dict
        Every setting the maps depend on.
    analyses : dict
        Further analyses of the same data (unit-level encoding, readouts, ...): name ->
        JSON-ready summary; written into ``results.json`` under ``analyses`` when not empty.
    """

    layers: list[str]
    times: np.ndarray
    ch_names: list[str]
    encoding_r: np.ndarray
    encoding_alpha: np.ndarray
    rsa_spearman: np.ndarray
    rsa_pearson: np.ndarray
    rsa_cv_spearman: np.ndarray
    noise_ceiling: dict[str, np.ndarray]
    counts: dict
    settings: dict
    rsa_stimulus_ids: list[str] = field(default_factory=list)
    #: (T,) ceiling on RSA Spearman rho from split-half EEG RDMs (NaN without repetitions)
    rsa_noise_ceiling: np.ndarray | None = None
    analyses: dict = field(default_factory=dict)

    # ---------------------------------------------------------------- derived maps
    def encoding_map(self, *, normalized: bool = False) -> np.ndarray:
        """(L, T) encoding r averaged over channels, optionally divided by the noise ceiling.

        Normalisation divides each channel x time by its r ceiling before averaging; targets
        with a ceiling below 0.1 are left out of the normalised mean (they would blow up).
        """
        r = self.encoding_r
        if normalized:
            ceil = self.noise_ceiling.get("r_ceiling")
            if ceil is None:
                return np.full((r.shape[0], r.shape[2]), np.nan)
            r = normalize_by_ceiling(r, ceil)
        return _nanmean(r, axis=1)

    def rsa_map(self, kind: str = "rsa", *, normalized: bool = False) -> np.ndarray:
        """(L, T) RSA map: ``"rsa"`` (correlation RDM) or ``"rsa_cv"`` (cross-validated RDM).

        ``normalized`` divides ``"rsa"`` by :attr:`rsa_noise_ceiling` (time points whose
        ceiling is below 0.1 become NaN). The ceiling is that of the correlation RDM, so the
        cross-validated map is never normalised (NaN).
        """
        m = self.rsa_cv_spearman if kind == "rsa_cv" else self.rsa_spearman
        if not normalized:
            return np.asarray(m, dtype=float)
        ceil = self.rsa_noise_ceiling
        if kind == "rsa_cv" or ceil is None:
            return np.full(np.shape(m), np.nan)
        return normalize_by_ceiling(m, ceil)

    def noise_ceiling_time(self, kind: str = "r_ceiling") -> np.ndarray:
        """(T,) noise ceiling averaged over channels."""
        nc = self.noise_ceiling.get(kind)
        if nc is None:
            return np.full(self.times.size, np.nan)
        return _nanmean(nc, axis=0)

    def peaks(self, kind: str = "encoding", *, normalized: bool = False):
        """Per-layer (peak latency in s, peak value) of the encoding or RSA map."""
        if kind == "encoding":
            m = self.encoding_map(normalized=normalized)
        elif kind in ("rsa", "rsa_cv"):
            m = self.rsa_map(kind, normalized=normalized)
        else:
            raise ValueError(f"kind must be 'encoding', 'rsa' or 'rsa_cv', got {kind!r}")
        return _peaks(np.asarray(m, dtype=float), self.times)

    # ---------------------------------------------------------------- export
    def to_dict(self) -> dict:
        """The ``results.json`` content (JSON-serialisable; NaN written as null)."""
        with np.errstate(all="ignore"):
            enc = self.encoding_map()
            enc_n = self.encoding_map(normalized=True)
        lat, val = self.peaks("encoding")
        rlat, rval = self.peaks("rsa")
        clat, cval = self.peaks("rsa_cv")
        rnlat, rnval = self.peaks("rsa", normalized=True)
        nlat, nval = self.peaks("encoding", normalized=True)
        out = {
            "layers": list(self.layers),
            "times": self.times,
            "ch_names": list(self.ch_names),
            "encoding": {
                "r": enc,
                "r_normalized": enc_n,
                "peak_latency_s": lat,
                "peak_r": val,
                "peak_latency_s_normalized": nlat,
                "peak_r_normalized": nval,
            },
            "rsa": {
                "rho": self.rsa_spearman,
                "pearson": self.rsa_pearson,
                "cv_rho": self.rsa_cv_spearman,
                "peak_latency_s": rlat,
                "peak_rho": rval,
                "cv_peak_latency_s": clat,
                "cv_peak_rho": cval,
                "rho_normalized": self.rsa_map("rsa", normalized=True),
                "peak_latency_s_normalized": rnlat,
                "peak_rho_normalized": rnval,
                "n_stimuli": len(self.rsa_stimulus_ids),
                "noise_ceiling": (np.full(self.times.size, np.nan)
                                  if self.rsa_noise_ceiling is None else self.rsa_noise_ceiling),
            },
            "noise_ceiling": self.noise_ceiling_time("r_ceiling"),
            "noise_ceiling_split_half": self.noise_ceiling_time("spearman_brown"),
            "noise_ceiling_things_lower": self.noise_ceiling_time("things_lower"),
            "noise_ceiling_things_upper": self.noise_ceiling_time("things_upper"),
            "counts": self.counts,
            "settings": self.settings,
        }
        if self.analyses:
            out["analyses"] = self.analyses
        return jsonable(out)

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``results.json`` and ``maps.npz`` into ``out_dir``; return their paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        rj = out / "results.json"
        tmp = rj.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1))
        tmp.replace(rj)
        mz = out / "maps.npz"
        arrays = {
            "layers": np.asarray(self.layers, dtype=str),
            "times": np.asarray(self.times, dtype=float),
            "ch_names": np.asarray(self.ch_names, dtype=str),
            "encoding_r": self.encoding_r,
            "encoding_alpha": self.encoding_alpha,
            "rsa_spearman": self.rsa_spearman,
            "rsa_pearson": self.rsa_pearson,
            "rsa_cv_spearman": self.rsa_cv_spearman,
            "rsa_stimulus_ids": np.asarray(self.rsa_stimulus_ids, dtype=str),
        }
        if self.rsa_noise_ceiling is not None:
            arrays["rsa_noise_ceiling"] = np.asarray(self.rsa_noise_ceiling, dtype=float)
        for k, v in self.noise_ceiling.items():
            arrays[f"noise_ceiling_{k}"] = v
        tmpz = out / "maps.tmp.npz"
        np.savez_compressed(tmpz, **arrays)
        tmpz.replace(mz)
        return {"results": rj, "maps": mz}

    @classmethod
    def load(cls, out_dir: str | Path) -> AlignmentResult:
        """Read back what :meth:`save` wrote (``maps.npz`` + ``results.json``)."""
        out = Path(out_dir)
        try:
            meta = json.loads((out / "results.json").read_text())
            z = np.load(out / "maps.npz", allow_pickle=False)
        except FileNotFoundError as e:
            raise NeuralignError("missing results.json or maps.npz", path=out) from e
        nc = {k[len("noise_ceiling_"):]: z[k] for k in z.files if k.startswith("noise_ceiling_")}
        return cls(
            layers=z["layers"].tolist(),
            times=z["times"],
            ch_names=z["ch_names"].tolist(),
            encoding_r=z["encoding_r"],
            encoding_alpha=z["encoding_alpha"],
            rsa_spearman=z["rsa_spearman"],
            rsa_pearson=z["rsa_pearson"],
            rsa_cv_spearman=z["rsa_cv_spearman"],
            noise_ceiling=nc,
            counts=meta.get("counts", {}),
            settings=meta.get("settings", {}),
            rsa_stimulus_ids=z["rsa_stimulus_ids"].tolist(),
            rsa_noise_ceiling=z["rsa_noise_ceiling"] if "rsa_noise_ceiling" in z.files else None,
            analyses=meta.get("analyses", {}),
        )

"""Unit-level encoding and readouts inside a study (``[units]`` and ``[readouts]`` of
``STUDY.toml``): checked before the study starts, run in every (subject, model) task beside
its maps (:mod:`neuralign.offline.unit_analysis`), summarised over subjects.

A layer choice of ``peak`` is each subject's own peak layer. The group summary lists, per model
and layer, every subject's best units and the units that recur among the best ten of at least
half of the subjects (the same model, so the same units); and, per readout, every subject's
difference from ridge with its paired test, how many subjects it beats or loses to ridge in
(p <= 0.05), and an exact sign-flip test of the mean difference over subjects.
"""

from __future__ import annotations

from collections import Counter
from itertools import product

import numpy as np

from ..errors import NeuralignError
from .unit_analysis import plan_unit_analyses, run_unit_analyses

#: How the study config names the options in errors.
OPTION_NAMES = {"units": "[units] layers", "readouts": "[readouts] layers",
                "top_k": "[units] top_units", "ranks": "[readouts] ranks",
                "pca": "[readouts] pca", "n_boot": "[readouts] n_boot"}


def check_study_options(options: dict, features, model: str) -> None:
    """Refuse ``[units]`` / ``[readouts]`` choices a model's features cannot satisfy.

    Parameters
    ----------
    options : dict
        The ``unit_options`` of :class:`~neuralign.offline.study.config.StudyConfig`.
    features : FeatureSet
        The model's features (layer names).
    model : str
        The model's name (in the error).
    """
    if not options:
        return
    try:
        plan_unit_analyses(features=features, n_channels=2**31, option_names=OPTION_NAMES,
                           **options)
    except NeuralignError as e:
        raise NeuralignError(f"model {model!r}: {e}") from e


def run_study_unit_task(options: dict, data, features, result, *, out, engine_kw: dict,
                        seed: int = 0) -> dict:
    """The unit-level and readout analyses of one (subject, model) task.

    Parameters
    ----------
    options : dict
        The ``unit_options`` of :class:`~neuralign.offline.study.config.StudyConfig`.
    data : EpochData
        The subject's epochs.
    features : FeatureSet
        The model's features.
    result : AlignmentResult
        The task's maps (its ``analyses`` receive the summaries).
    out : Path
        The task's folder.
    engine_kw : dict
        The study's engine settings.
    seed : int
        Seed of the resampling.

    Returns
    -------
    dict
        The summaries.
    """
    plan = plan_unit_analyses(features=features, n_channels=len(data.ch_names),
                              option_names=OPTION_NAMES, seed=seed, **options)
    return run_unit_analyses(plan, data, features, result, out=out, engine_kw=engine_kw,
                             quiet=True)


def sign_flip_p(d: np.ndarray, *, n_max: int = 4096, seed: int = 0) -> float:
    """Two-sided sign-flip p of the mean of ``d`` (exact up to 12 values, else sampled).

    Parameters
    ----------
    d : ndarray
        Per-subject differences.
    n_max : int
        Sampled sign patterns beyond 12 values.
    seed : int
        Seed of the sampling.

    Returns
    -------
    float
        NaN without at least two finite values.
    """
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return float("nan")
    if d.size <= 12:
        signs = np.array(list(product((1, -1), repeat=d.size)))
    else:
        signs = np.random.default_rng(seed).choice((1, -1), size=(n_max, d.size))
    null = np.abs(signs @ d) / d.size
    return float((null >= abs(d.mean()) - 1e-12).mean())


def study_unit_summary(results: dict) -> dict:
    """Per model and layer: the subjects' best units and readout tests, and the group view.

    Parameters
    ----------
    results : dict
        ``(subject, model) -> AlignmentResult`` (their ``analyses``).

    Returns
    -------
    dict
        ``model -> {"units": {layer: ...}, "readouts": {layer: ...}}``.
    """
    out: dict = {}
    for (s, m), r in results.items():
        a = getattr(r, "analyses", None) or {}
        for layer, d in ((a.get("units") or {}).get("layers") or {}).items():
            e = out.setdefault(m, {}).setdefault("units", {}).setdefault(layer, {})
            e.setdefault("per_subject", {})[s] = {
                "best_units": [b["unit"] for b in d["best_units"][:10]],
                "polarity": [b["polarity"] for b in d["best_units"][:10]],
                "peak_r": [b["peak_r"] for b in d["best_units"][:10]],
                "n_units_90": (d.get("redundancy") or {}).get("n_units_90")}
        for layer, d in ((a.get("readouts") or {}).get("layers") or {}).items():
            e = out.setdefault(m, {}).setdefault("readouts", {}).setdefault(layer, {})
            e.setdefault("per_subject", {})[s] = {
                "mean_r": d["mean_r"],
                "vs_ridge": {k: {"diff": v["diff"], "p": v["p"]} for k, v in d["vs_ridge"].items()}}
    for m in out.values():
        for e in (m.get("units") or {}).values():
            per = e["per_subject"]
            count = Counter(u for d in per.values() for u in d["best_units"])
            need = max(2, int(np.ceil(len(per) / 2)))
            e["recurring_units"] = [{"unit": int(u), "subjects": int(c)}
                                    for u, c in count.most_common() if c >= need]
        for e in (m.get("readouts") or {}).values():
            per = e["per_subject"]
            names = sorted({k for d in per.values() for k in d["vs_ridge"]})
            group = {}
            for k in names:
                v = [d["vs_ridge"][k] for d in per.values() if k in d["vs_ridge"]]
                diff = np.array([x["diff"] for x in v], dtype=float)
                group[k] = {"mean_diff": float(np.nanmean(diff)), "n_subjects": len(v),
                            "n_better": int(sum(x["diff"] > 0 and x["p"] <= 0.05 for x in v)),
                            "n_worse": int(sum(x["diff"] < 0 and x["p"] <= 0.05 for x in v)),
                            "p_sign_flip": sign_flip_p(diff)}
            e["group"] = group
    return out

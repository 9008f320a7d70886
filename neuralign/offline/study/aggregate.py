"""Group statistics over a study's saved (subject, model) results.

:func:`aggregate`: per model, group layer x time maps (mean encoding r over the channels every
subject has), per-subject and group summary scores (peak r, mean r in the window, peak layer
depth relative to model depth, peak latency), group cluster tests over the layer x time plane
and over time, point-wise tests with FDR/Bonferroni/Holm, bootstrap CIs over subjects (maps,
peak r, per-layer peak latencies), noise-ceiling-normalised maps, paired model comparisons and
a regression of alignment on model descriptors.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np

from ...align.data import jsonable
from ...errors import NeuralignError, few
from .config import StudyConfig

DESCRIPTOR_NAMES = ("family", "params", "encoder", "downstream")


def _quiet_nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=axis)


def _nanmax_or_none(x: np.ndarray) -> float | None:
    return float(np.nanmax(x)) if np.isfinite(x).any() else None


def channel_mean(r_lct: np.ndarray, ch_names, keep: list[str] | None) -> np.ndarray:
    """Average a (layers, channels, times) map over ``keep`` channels (NaN-ignoring).

    Parameters
    ----------
    r_lct : ndarray, shape (n_layers, n_channels, n_times)
        E.g. encoding r.
    ch_names : sequence of str
        The channels of ``r_lct``.
    keep : list of str | None
        The channels to average (``None``: all).

    Returns
    -------
    ndarray, shape (n_layers, n_times)
        The channel mean.
    """
    r = np.asarray(r_lct, dtype=float)
    if keep is not None:
        idx = [list(ch_names).index(c) for c in keep]
        r = r[:, idx]
    return _quiet_nanmean(r, axis=1)


def _norm_map(res, keep: list[str]) -> np.ndarray:
    from ...align.reliability import normalize_by_ceiling

    idx = [list(res.ch_names).index(c) for c in keep]
    ceil = res.noise_ceiling.get("r_ceiling")
    if ceil is None:
        return np.full((len(res.layers), res.times.size), np.nan)
    return _quiet_nanmean(normalize_by_ceiling(res.encoding_r[:, idx], ceil[idx][None]), axis=1)


def summarize_map(m: np.ndarray, times: np.ndarray, window: tuple[float, float]) -> dict:
    """Peak r, its layer and latency, relative depth and the best layer's mean r in ``window``.

    Parameters
    ----------
    m : ndarray, shape (n_layers, n_times)
        A layer x time map.
    times : ndarray, shape (n_times,)
        Its time axis in seconds.
    window : (float, float)
        The window (seconds) of ``window_r``.

    Returns
    -------
    dict
        ``peak_r``, ``peak_layer``, ``peak_latency_s``, ``relative_depth``, ``window_r``
        and ``window_layer``.
    """
    m = np.asarray(m, dtype=float)
    n_layers = m.shape[0]
    if not np.isfinite(m).any():
        return {"peak_r": float("nan"), "peak_layer": None, "peak_latency_s": float("nan"),
                "relative_depth": float("nan"), "window_r": float("nan")}
    flat = np.nanargmax(np.where(np.isfinite(m), m, -np.inf))
    li, ti = np.unravel_index(flat, m.shape)
    win = (times >= window[0] - 1e-9) & (times <= window[1] + 1e-9)
    wr = _quiet_nanmean(m[:, win], axis=1) if win.any() else np.full(n_layers, np.nan)
    return {
        "peak_r": float(m[li, ti]),
        "peak_layer": int(li),
        "peak_latency_s": float(times[ti]),
        "relative_depth": float((li + 1) / n_layers),
        "window_r": float(np.nanmax(wr)) if np.isfinite(wr).any() else float("nan"),
        "window_layer": int(np.nanargmax(wr)) if np.isfinite(wr).any() else None,
    }


def common_axes(cfg: StudyConfig, results: dict) -> tuple[np.ndarray, list[str], list[str]]:
    """The shared time axis and channels of all results, with notes on what differs.

    Parameters
    ----------
    cfg : StudyConfig
        The study (its subjects, models and ``channels`` policy).
    results : dict
        ``(subject, model) -> AlignmentResult``.

    Returns
    -------
    times : ndarray
        The time axis every result has.
    channels : list of str
        The channels every subject has (in the first subject's order).
    notes : list of str
        What the report should say about differing channel sets.

    Raises
    ------
    NeuralignError
        Differing time axes, differing channels with ``channels = "strict"``, or no channel in
        common.
    """
    subjects = [s.name for s in cfg.subjects]
    first_model = cfg.models[0].name
    times = np.asarray(results[(subjects[0], first_model)].times)
    for (s, _m), r in results.items():
        if r.times.size != times.size or not np.allclose(r.times, times, atol=1e-6):
            raise NeuralignError(
                f"subject {s!r} has a different time axis ({r.times.size} points, "
                f"{r.times[0]:.3f}..{r.times[-1]:.3f} s) than subject {subjects[0]!r} "
                f"({times.size} points, {times[0]:.3f}..{times[-1]:.3f} s): resample/crop them "
                "to one axis")
    ch_sets = {s: list(results[(s, first_model)].ch_names) for s in subjects}
    common = [c for c in ch_sets[subjects[0]] if all(c in v for v in ch_sets.values())]
    notes: list[str] = []
    if any(set(v) != set(common) for v in ch_sets.values()):
        differ = [s for s in subjects if set(ch_sets[s]) != set(common)]
        if cfg.channels == "strict":
            raise NeuralignError(
                f"subjects have different channel sets ({few(differ)} differ from the "
                "intersection); set [study] channels = \"intersect\" to use the shared ones")
        if not common:
            raise NeuralignError("the subjects share no channel")
        notes.append(
            f"channel sets differ across subjects ({few(differ)}): encoding maps use the "
            f"{len(common)} shared channels ({', '.join(common)}); RSA uses each subject's own")
    return times, common, notes


def _group_tests(maps: np.ndarray, course: np.ndarray, times: np.ndarray, sc: dict
                 ) -> tuple[dict, dict]:
    """Cluster, point-wise and bootstrap statistics of one model's subject maps."""
    from ...align import clusters
    from ...align import stats as st

    seed = int(sc["seed"])
    test = {"n_permutations": sc["n_permutations"], "p_threshold": sc["p_threshold"],
            "alpha": sc["alpha"], "tail": sc["tail"], "seed": seed}
    plane = clusters.group_cluster_test(maps, **test)
    time_ct = clusters.group_cluster_test(course, **test)
    point = clusters.group_pointwise_test(course, correction=sc["correction"], alpha=sc["alpha"],
                                    tail=sc["tail"])
    boot = st.bootstrap_units(maps, n_boot=sc["n_boot"], ci=sc["ci"], seed=seed)
    lat_ci = st.peak_latency_ci(boot.samples, times, ci=sc["ci"])
    peaks_boot = np.nanmax(boot.samples.reshape(boot.samples.shape[0], -1), axis=1)
    lo, hi = np.nanquantile(peaks_boot, [(1 - sc["ci"]) / 2, 1 - (1 - sc["ci"]) / 2])
    stats = {
        "plane_cluster_test": plane.to_dict(),
        "time_cluster_test": time_ct.to_dict(),
        "time_pointwise": {"correction": sc["correction"], "significant": point["reject"],
                           "p_corrected": point["p_corrected"]},
        "peak_r_ci": [float(lo), float(hi)],
        "peak_latency_ci_s": lat_ci,
    }
    arrays = {"plane_mask": plane.mask, "time_mask": time_ct.mask,
              "encoding_r_ci_lo": boot.lo, "encoding_r_ci_hi": boot.hi}
    return stats, arrays


def _label_permutations(results: dict, subjects: list[str], model: str, alpha: float) -> dict:
    """The single-subject label-permutation tests saved with the tasks, per subject."""
    perm = {}
    for s in subjects:
        ex = results[(s, model)].settings.get("_extra", {}).get("label_permutation")
        if ex is not None:
            perm[s] = {k: ex[k] for k in ("n_permutations", "n_clusters", "cluster_p",
                                          "threshold")}
            perm[s]["significant"] = any(p < alpha for p in ex["cluster_p"])
    return perm


def _model_summary(cfg: StudyConfig, results: dict, model: str, times: np.ndarray,
                   common: list[str]) -> tuple[dict, dict, dict, np.ndarray, list[str]]:
    """Group maps, scores and tests of one model.

    Returns the model's entry, its per-subject scores, its arrays (keys without the model
    prefix), its (subjects, times) layer-mean courses and notes.
    """
    subjects = [s.name for s in cfg.subjects]
    sc, window = cfg.stats, cfg.window
    res = [results[(s, model)] for s in subjects]
    maps = np.stack([channel_mean(r.encoding_r, r.ch_names, common) for r in res])  # (S, L, T)
    norm = np.stack([_norm_map(r, common) for r in res])
    rsa = np.stack([np.asarray(r.rsa_spearman, dtype=float) for r in res])
    gmap, gnorm, grsa = (_quiet_nanmean(x, axis=0) for x in (maps, norm, rsa))
    arrays = {"encoding_r": gmap, "encoding_r_normalized": gnorm, "rsa_spearman": grsa,
              "subject_encoding_r": maps}
    subj = {s: summarize_map(maps[i], times, window) for i, s in enumerate(subjects)}
    for i, s in enumerate(subjects):
        subj[s]["rsa_peak_rho"] = _nanmax_or_none(rsa[i])
        subj[s]["peak_r_normalized"] = _nanmax_or_none(norm[i])
    group = summarize_map(gmap, times, window)
    group["peak_r_normalized"] = _nanmax_or_none(gnorm)
    group["rsa_peak_rho"] = _nanmax_or_none(grsa)
    layers = list(res[0].layers)
    entry: dict = {
        "layers": layers, "n_layers": len(layers), "group": group,
        "peak_latency_per_layer_s": times[np.argmax(np.where(np.isfinite(gmap), gmap, -np.inf),
                                                    axis=1)],
        "descriptors": next(x.descriptors for x in cfg.models if x.name == model),
    }
    course = np.nanmean(maps, axis=1)  # (S, T) layer-mean time course
    notes: list[str] = []
    if len(subjects) >= 2 and np.isfinite(maps).all():
        entry["stats"], more = _group_tests(maps, course, times, sc)
        arrays.update(more)
    elif len(subjects) < 2:
        entry["stats"] = {"note": "one subject: group tests need >= 2 subjects; see the "
                                  "label-permutation test (stats.subject_permutations)"}
    else:
        entry["stats"] = {"note": "maps contain NaN (e.g. flat channels): no group tests"}
        notes.append(f"model {model!r}: some subject maps contain NaN; group tests skipped")
    perm = _label_permutations(results, subjects, model, sc["alpha"])
    if perm:
        entry["label_permutation"] = perm
    return entry, subj, arrays, course, notes


def _comparisons(models: list[str], subjects: list[str], scores: dict, courses: dict,
                 times: np.ndarray, sc: dict) -> list[dict]:
    """Paired comparisons of every two models (scores and layer-mean time courses)."""
    from ...align import clusters
    from ...align import stats as st

    seed = int(sc["seed"])
    comparisons = []
    for a, b in itertools.combinations(models, 2):
        row: dict = {"a": a, "b": b}
        for score in ("peak_r", "window_r"):
            va = np.array([scores[a][s][score] for s in subjects])
            vb = np.array([scores[b][s][score] for s in subjects])
            row[score] = st.paired_comparison(va, vb, seed=seed)
        diff = courses[a] - courses[b]
        if np.isfinite(diff).all():
            ct = clusters.group_cluster_test(diff, n_permutations=sc["n_permutations"],
                                       p_threshold=sc["p_threshold"], alpha=sc["alpha"],
                                       tail=0, seed=seed)
            row["time_cluster_test"] = {"cluster_p": ct.cluster_p,
                                        "significant_times_s": times[ct.mask]}
        comparisons.append(row)
    for score in ("peak_r", "window_r"):
        p = np.array([c[score]["p_perm"] for c in comparisons])
        rej, pc = clusters.correct_pvalues(p, method=sc["correction"], alpha=sc["alpha"])
        for c, pr, r in zip(comparisons, pc, rej):
            c[score]["p_perm_corrected"] = float(pr)
            c[score]["significant"] = bool(r)
    return comparisons


def _regression(cfg: StudyConfig, models: list[str], per_model: dict
                ) -> tuple[dict | None, list[str]]:
    """Regression of the group peak r on the model descriptors every model has."""
    from ...align import stats as st

    notes: list[str] = []
    names = [d for d in DESCRIPTOR_NAMES if all(d in x.descriptors for x in cfg.models)]
    partial = [d for d in DESCRIPTOR_NAMES
               if any(d in x.descriptors for x in cfg.models) and d not in names]
    if partial:
        notes.append(f"descriptor(s) {', '.join(partial)} are missing for some models: left "
                     "out of the regression")
    if not names:
        return None, notes
    y = np.array([per_model[m]["group"]["peak_r"] for m in models])
    desc = {d: [next(x for x in cfg.models if x.name == m).descriptors[d] for m in models]
            for d in names}
    regression = st.descriptor_regression(y, desc)
    regression["score"] = "group peak r"
    sh = {k: v.get("shapley_r2") for k, v in regression["descriptors"].items()}
    if sh.get("family") is not None and sh.get("params"):
        regression["family_over_params"] = (sh["family"] / sh["params"]
                                            if sh["params"] > 0 else None)
    return regression, notes


def aggregate(cfg: StudyConfig, results: dict) -> tuple[dict, dict]:
    """Group statistics over the saved results.

    Parameters
    ----------
    cfg : StudyConfig
        The study.
    results : dict
        ``(subject, model) -> AlignmentResult``.

    Returns
    -------
    summary : dict
        The ``study.json`` content (JSON-ready; ``variance_partitioning`` is filled in later).
    arrays : dict of str to ndarray
        What ``group_maps.npz`` holds, keyed ``<model>/<name>``.
    """
    subjects = [s.name for s in cfg.subjects]
    models = [m.name for m in cfg.models]
    sc = cfg.stats
    times, common, notes = common_axes(cfg, results)
    n_sub = len(subjects)
    if 2 <= n_sub < 6:
        p_min = (1 if int(sc["tail"]) else 2) / 2**n_sub
        notes.append(f"{n_sub} subjects: sign-flip tests cannot reach p below {p_min:.3g}; "
                     "group tests need about 6 or more subjects")
    arrays: dict[str, np.ndarray] = {"times": times, "ch_names": np.asarray(common)}
    per_model: dict[str, dict] = {}
    scores: dict[str, dict[str, dict]] = {}
    courses: dict[str, np.ndarray] = {}
    for m in models:
        entry, subj, arr, course, more = _model_summary(cfg, results, m, times, common)
        per_model[m], scores[m], courses[m] = entry, subj, course
        arrays.update({f"{m}/{k}": v for k, v in arr.items()})
        notes.extend(more)
    comparisons = []
    if n_sub >= 2 and len(models) >= 2:
        comparisons = _comparisons(models, subjects, scores, courses, times, sc)
    regression, more = _regression(cfg, models, per_model)
    notes.extend(more)
    summary = {
        "study": cfg.name,
        "subjects": subjects,
        "models": models,
        "times": times,
        "channels": common,
        "window_s": list(cfg.window),
        "settings": {"engine": cfg.engine_kwargs(), "stats": cfg.stats,
                     "channels": cfg.channels},
        "notes": notes,
        "per_model": per_model,
        "per_subject": scores,
        "comparisons": comparisons,
        "descriptor_regression": regression,
        "variance_partitioning": [],
    }
    return jsonable(summary), arrays

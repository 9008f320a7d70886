"""Many subjects x many models in one run, with group statistics and model comparisons.

Work is split into independent ``(subject, model)`` tasks (:func:`run_task`): load the subject,
load the model's features, run the alignment engine, save the
:class:`~neuralign.align.AlignmentResult` into ``<cache>/<subject>__<model>/`` with a
``task.json`` holding the task's key (a hash of the dataset files' sizes and mtimes, of the
feature file's content and of every analysis setting). A task whose key matches is skipped, so
an interrupted study resumes where it stopped. Tasks run in-process (``scheduler="none"``), on a
``dask.distributed.LocalCluster`` bound to 127.0.0.1 (``"local"``), or on an existing scheduler
(its address). The aggregation always reads the saved results back from the cache, so a
single-process run and a cluster run produce identical study outputs.

Aggregation (:func:`aggregate`): per model, group layer x time maps (mean encoding r over the
channels every subject has), per-subject and group summary scores (peak r, mean r in the
window, peak layer depth relative to model depth, peak latency), group cluster tests over the
layer x time plane and over time, point-wise tests with FDR/Bonferroni/Holm, bootstrap CIs over
subjects (maps, peak r, per-layer peak latencies), noise-ceiling-normalised maps, paired model
comparisons, a regression of alignment on model descriptors and variance partitioning.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import threading
import time
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..align.data import jsonable
from ..errors import NeuralignError, few
from .study_config import StudyConfig

TASK_VERSION = 1
_CACHE_LOCK = threading.Lock()
_DATA_CACHE: OrderedDict = OrderedDict()
_FEAT_CACHE: OrderedDict = OrderedDict()
_MAX_DATA = 2
_MAX_FEAT = 4


# ------------------------------------------------------------------------------ fingerprints
def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def _tree_fingerprint(path: Path) -> str:
    """Sizes and modification times of every file under ``path`` (or of the file itself)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files[:20000]:
        st = p.stat()
        h.update(f"{p.relative_to(path) if p != path else p.name}:{st.st_size}:{st.st_mtime_ns};"
                 .encode())
    return h.hexdigest()


_CODE_FP: str | None = None


def code_fingerprint() -> str:
    """Hash of the neuralign code a result depends on (engine, loaders, feature readers), so a
    changed engine never reuses stale cached results."""
    global _CODE_FP
    if _CODE_FP is None:
        from .. import __version__

        pkg = Path(__file__).resolve().parents[1]
        h = hashlib.sha256(__version__.encode())
        skip = {"stats.py", "study.py", "study_config.py", "study_report.py", "replay_lsl.py"}
        for sub in ("align", "offline", "io", "sim"):
            for f in sorted((pkg / sub).rglob("*.py")):
                if f.name in skip:
                    continue
                h.update(f.relative_to(pkg).as_posix().encode())
                h.update(f.read_bytes())
        _CODE_FP = h.hexdigest()[:16]
    return _CODE_FP


def dataset_paths(spec: str, options: dict) -> list[Path]:
    """Files/folders a dataset spec reads (for fingerprints)."""
    kind, _, p = spec.partition(":")
    path = Path(p)
    paths = [path]
    if kind in ("things-eeg2", "sim") and path.is_dir():
        paths.append(path.parent / "image_metadata.npy")
    for k in ("metadata", "mapping", "events"):
        if k in options:
            paths.append(Path(options[k]))
    return [q for q in paths if q.exists()]


def task_key(cfg: StudyConfig, subject, model, *, feature_sha: str | None = None) -> str:
    blob = {
        "v": TASK_VERSION,
        "dataset": subject.dataset,
        "options": subject.options,
        "data_fp": [_tree_fingerprint(p) for p in dataset_paths(subject.dataset, subject.options)],
        "features": feature_sha or _file_sha(Path(model.features)),
        "settings": cfg.settings_hash(),
        "code": code_fingerprint(),
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()


# ------------------------------------------------------------------------------ loading
def _cached(cache: OrderedDict, size: int, key, make):
    with _CACHE_LOCK:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    value = make()
    with _CACHE_LOCK:
        cache[key] = value
        while len(cache) > size:
            cache.popitem(last=False)
    return value


def load_subject(spec: str, options: dict):
    """Load a dataset (kept in a small per-process cache: tasks of one subject share it)."""
    from .datasets import load_dataset

    key = (spec, json.dumps(options, sort_keys=True, default=str))
    return _cached(_DATA_CACHE, _MAX_DATA, key, lambda: load_dataset(spec, **options))


def load_model_features(path: str):
    from ..io.features import load_features

    st = Path(path).stat()
    return _cached(_FEAT_CACHE, _MAX_FEAT, (path, st.st_size, st.st_mtime_ns),
                   lambda: load_features(path))


def _permuted(fs, perm: np.ndarray):
    from ..base import FeatureSet

    return FeatureSet(fs.stimulus_ids, fs.layers, tuple(a[perm] for a in fs.arrays),
                      dict(fs.provenance))


# ------------------------------------------------------------------------------ one task
def set_blas_threads(n: int | None) -> None:
    """Pin this process's BLAS/OpenMP pools to ``n`` threads (``None``: leave them).

    Process-wide and idempotent (concurrent tasks set the same value). The same thread count in
    every mode (dask worker processes run with 1) makes single-process and cluster runs
    bit-identical: BLAS sums in a different order with a different thread count.
    """
    if n is None:
        return
    from threadpoolctl import threadpool_info, threadpool_limits

    if any(p.get("num_threads") != n for p in threadpool_info()):
        threadpool_limits(limits=n)


def run_task(task: dict) -> dict:
    """Compute (or skip, when cached) one (subject, model) result. Picklable for dask."""
    out = Path(task["out_dir"])
    marker = out / "task.json"
    if marker.is_file():
        try:
            done = json.loads(marker.read_text())
        except ValueError:
            done = {}
        if done.get("key") == task["key"] and (out / "maps.npz").is_file():
            return {"subject": task["subject"], "model": task["model"], "status": "cached",
                    "seconds": 0.0}
    set_blas_threads(task.get("blas_threads"))
    return _compute_task(task, out, marker)


def _compute_task(task: dict, out: Path, marker: Path) -> dict:
    from ..align import analyze_epochs
    from ..align import stats as st

    t0 = time.perf_counter()
    data = load_subject(task["dataset"], task["options"])
    fs = load_model_features(task["features"])
    used = list(dict.fromkeys(data.stimulus_ids.tolist()))
    missing = [s for s in used if s not in fs]
    if missing:
        raise NeuralignError(
            f"model {task['model']!r} lacks {len(missing)} of {len(used)} stimuli of subject "
            f"{task['subject']!r}: {few(missing)}", path=task["features"])
    fs = fs.subset(used)
    kw = dict(task["engine_kw"])
    res = analyze_epochs(data, fs, **kw)
    res.settings["study_task"] = {"subject": task["subject"], "model": task["model"]}
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # all-NaN ceiling slices are expected and harmless
        warnings.simplefilter("ignore", RuntimeWarning)
        res.save(out)
    extra: dict = {}
    n_perm = int(task.get("subject_permutations", 0))
    if n_perm > 0:
        ch = task.get("ch_names")

        def map_fn(perm):
            r = res if perm is None else analyze_epochs(data, _permuted(fs, perm), **kw)
            return _channel_mean(r.encoding_r, r.ch_names, ch)

        ct = st.single_subject_cluster_test(
            map_fn, fs.n_stimuli, n_permutations=n_perm, p_threshold=task["p_threshold"],
            alpha=task["alpha"], tail=task["tail"], seed=task["seed"])
        extra["label_permutation"] = ct.to_dict()
        np.save(out / "label_permutation_mask.npy", ct.mask)
    seconds = time.perf_counter() - t0
    (out / "extra.json").write_text(json.dumps(extra))
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": task["key"], "subject": task["subject"],
                               "model": task["model"], "seconds": seconds}))
    tmp.replace(marker)
    return {"subject": task["subject"], "model": task["model"], "status": "computed",
            "seconds": seconds}


def run_varpart_task(task: dict) -> dict:
    """Variance partitioning of two (model, layer) feature spaces on one subject."""

    out = Path(task["out_file"])
    meta = out.with_suffix(".json")
    if out.is_file() and meta.is_file() and json.loads(meta.read_text()).get("key") == task["key"]:
        return {"status": "cached", **{k: task[k] for k in ("subject", "pair")}}
    set_blas_threads(task.get("blas_threads"))
    return _compute_varpart(task, out, meta)


def _compute_varpart(task: dict, out: Path, meta: Path) -> dict:
    from .varpart import variance_partition

    data = load_subject(task["dataset"], task["options"])
    fa = load_model_features(task["features_a"])
    fb = load_model_features(task["features_b"])
    used = list(dict.fromkeys(data.stimulus_ids.tolist()))
    fa, fb = fa.subset(used), fb.subset(used)
    res = variance_partition(
        data, fa.arrays[task["layer_a"]], fb.arrays[task["layer_b"]],
        stimulus_ids=fa.stimulus_ids.tolist(), alphas=task.get("alphas"),
        n_folds=task.get("n_folds", 5))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, ch_names=np.asarray(data.ch_names), **res)
    meta.write_text(json.dumps({"key": task["key"]}))
    return {"status": "computed", **{k: task[k] for k in ("subject", "pair")}}


# ------------------------------------------------------------------------------ execution
class Executor:
    """Runs task functions in-process or on dask.distributed (LocalCluster on 127.0.0.1)."""

    def __init__(self, scheduler: str | None = "none", *, workers: int = 2,
                 processes: bool = False, threads_per_worker: int = 1,
                 blas_threads: int | None = 1) -> None:
        self.scheduler = "none" if scheduler in (None, "", "none", "sync", "single") else scheduler
        self.workers = int(workers)
        self.processes = bool(processes)
        self.threads_per_worker = int(threads_per_worker)
        self.blas_threads = blas_threads
        self._limiter = None
        self.client = None
        self.cluster = None

    def __enter__(self) -> Executor:
        if self.blas_threads is not None:  # tasks in this process (single / thread workers)
            from threadpoolctl import threadpool_limits

            self._limiter = threadpool_limits(limits=self.blas_threads)
        if self.scheduler == "none":
            return self
        try:
            from distributed import Client, LocalCluster
        except ImportError as e:  # pragma: no cover - extra not installed
            raise NeuralignError("dask.distributed is not installed (extra 'scale')") from e
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.scheduler == "local":
                # threads: in-process "inproc://" transport, no socket at all; processes:
                # scheduler and workers listen on the loopback interface only
                net = {"host": "127.0.0.1"} if self.processes else {}
                self.cluster = LocalCluster(
                    n_workers=self.workers, threads_per_worker=self.threads_per_worker,
                    processes=self.processes, dashboard_address=None, silence_logs=40, **net,
                )
                self.client = Client(self.cluster)
            else:
                try:
                    self.client = Client(self.scheduler, timeout="10s")
                except (OSError, TimeoutError) as e:
                    raise NeuralignError(f"cannot reach dask scheduler {self.scheduler!r} ({e})") from None
        return self

    def __exit__(self, *exc) -> None:
        if self._limiter is not None:
            self._limiter.restore_original_limits()
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    @property
    def description(self) -> str:
        if self.scheduler == "none":
            return "single process"
        if self.scheduler == "local":
            kind = "processes on 127.0.0.1" if self.processes else "threads, in-process"
            return f"dask LocalCluster ({self.workers} workers, {kind})"
        return f"dask scheduler {self.scheduler}"

    def map(self, fn, tasks: list[dict], *, desc: str, progress: bool = True) -> list[dict]:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=desc, unit="task", disable=not progress or not tasks)
        out: list[dict] = []
        try:
            if self.client is None:
                for t in tasks:
                    out.append(fn(t))
                    bar.update(1)
                return out
            from distributed import as_completed

            futs = self.client.map(fn, tasks, pure=False)
            for f in as_completed(futs):
                out.append(f.result())
                bar.update(1)
            return out
        finally:
            bar.close()


# ------------------------------------------------------------------------------ helpers
def _channel_mean(r_lct: np.ndarray, ch_names, keep: list[str] | None) -> np.ndarray:
    r = np.asarray(r_lct, dtype=float)
    if keep is not None:
        idx = [list(ch_names).index(c) for c in keep]
        r = r[:, idx]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(r, axis=1)


def _norm_map(res, keep: list[str]) -> np.ndarray:
    from ..align.stats import normalize_by_ceiling

    idx = [list(res.ch_names).index(c) for c in keep]
    ceil = res.noise_ceiling.get("r_ceiling")
    if ceil is None:
        return np.full((len(res.layers), res.times.size), np.nan)
    n = normalize_by_ceiling(res.encoding_r[:, idx], ceil[idx][None])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(n, axis=1)


def summarize_map(m: np.ndarray, times: np.ndarray, window: tuple[float, float]) -> dict:
    """Peak r, its layer/latency, relative depth and the best layer's mean r in ``window``."""
    m = np.asarray(m, dtype=float)
    n_layers = m.shape[0]
    if not np.isfinite(m).any():
        return {"peak_r": float("nan"), "peak_layer": None, "peak_latency_s": float("nan"),
                "relative_depth": float("nan"), "window_r": float("nan")}
    flat = np.nanargmax(np.where(np.isfinite(m), m, -np.inf))
    li, ti = np.unravel_index(flat, m.shape)
    win = (times >= window[0] - 1e-9) & (times <= window[1] + 1e-9)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        wr = np.nanmean(m[:, win], axis=1) if win.any() else np.full(n_layers, np.nan)
    return {
        "peak_r": float(m[li, ti]),
        "peak_layer": int(li),
        "peak_latency_s": float(times[ti]),
        "relative_depth": float((li + 1) / n_layers),
        "window_r": float(np.nanmax(wr)) if np.isfinite(wr).any() else float("nan"),
        "window_layer": int(np.nanargmax(wr)) if np.isfinite(wr).any() else None,
    }




# ------------------------------------------------------------------------------ aggregation
def aggregate(cfg: StudyConfig, results: dict, *, varpart: list | None = None) -> tuple[dict, dict]:
    """Group statistics over the saved results.

    Parameters
    ----------
    cfg : StudyConfig
    results : dict (subject, model) -> AlignmentResult

    Returns
    -------
    summary : dict (JSON-ready) and arrays : dict name -> ndarray (for ``group_maps.npz``)
    """
    from ..align import stats as st

    subjects = [s.name for s in cfg.subjects]
    models = [m.name for m in cfg.models]
    notes: list[str] = []
    sc = cfg.stats
    window = cfg.window

    # ---- axes: time must agree, channels intersect (or strict)
    first = results[(subjects[0], models[0])]
    times = np.asarray(first.times)
    for (s, _m), r in results.items():
        if r.times.size != times.size or not np.allclose(r.times, times, atol=1e-6):
            raise NeuralignError(
                f"subject {s!r} has a different time axis ({r.times.size} points, "
                f"{r.times[0]:.3f}..{r.times[-1]:.3f} s) than subject {subjects[0]!r} "
                f"({times.size} points, {times[0]:.3f}..{times[-1]:.3f} s): resample/crop them "
                "to one axis")
    ch_sets = {s: list(results[(s, models[0])].ch_names) for s in subjects}
    common = [c for c in ch_sets[subjects[0]] if all(c in v for v in ch_sets.values())]
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

    n_sub = len(subjects)
    if 2 <= n_sub < 6:
        p_min = (1 if int(sc["tail"]) else 2) / 2**n_sub
        notes.append(f"{n_sub} subjects: sign-flip tests cannot reach p below {p_min:.3g}; "
                     "group tests need about 6 or more subjects")
    rng_seed = int(sc["seed"])
    arrays: dict[str, np.ndarray] = {"times": times, "ch_names": np.asarray(common)}
    per_model: dict[str, dict] = {}
    per_subject_scores: dict[str, dict[str, dict]] = {}
    lm_courses: dict[str, np.ndarray] = {}
    for m in models:
        maps = np.stack([_channel_mean(results[(s, m)].encoding_r, results[(s, m)].ch_names,
                                       common) for s in subjects])  # (S, L, T)
        norm = np.stack([_norm_map(results[(s, m)], common) for s in subjects])
        rsa = np.stack([np.asarray(results[(s, m)].rsa_spearman, dtype=float) for s in subjects])
        layers = list(results[(subjects[0], m)].layers)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            gmap = np.nanmean(maps, axis=0)
            gnorm = np.nanmean(norm, axis=0)
            grsa = np.nanmean(rsa, axis=0)
        arrays[f"{m}/encoding_r"] = gmap
        arrays[f"{m}/encoding_r_normalized"] = gnorm
        arrays[f"{m}/rsa_spearman"] = grsa
        arrays[f"{m}/subject_encoding_r"] = maps
        subj = {s: summarize_map(maps[i], times, window) for i, s in enumerate(subjects)}
        for i, s in enumerate(subjects):
            subj[s]["rsa_peak_rho"] = float(np.nanmax(rsa[i])) if np.isfinite(rsa[i]).any() else None
            subj[s]["peak_r_normalized"] = (float(np.nanmax(norm[i]))
                                            if np.isfinite(norm[i]).any() else None)
        per_subject_scores[m] = subj
        group = summarize_map(gmap, times, window)
        group["peak_r_normalized"] = float(np.nanmax(gnorm)) if np.isfinite(gnorm).any() else None
        group["rsa_peak_rho"] = float(np.nanmax(grsa)) if np.isfinite(grsa).any() else None
        lat_per_layer = times[np.argmax(np.where(np.isfinite(gmap), gmap, -np.inf), axis=1)]
        entry: dict = {
            "layers": layers, "n_layers": len(layers), "group": group,
            "peak_latency_per_layer_s": lat_per_layer,
            "descriptors": next(x.descriptors for x in cfg.models if x.name == m),
        }
        lm = np.nanmean(maps, axis=1)  # (S, T) layer-mean time course
        lm_courses[m] = lm
        if n_sub >= 2 and np.isfinite(maps).all():
            plane = st.group_cluster_test(maps, n_permutations=sc["n_permutations"],
                                          p_threshold=sc["p_threshold"], alpha=sc["alpha"],
                                          tail=sc["tail"], seed=rng_seed)
            course = st.group_cluster_test(lm, n_permutations=sc["n_permutations"],
                                           p_threshold=sc["p_threshold"], alpha=sc["alpha"],
                                           tail=sc["tail"], seed=rng_seed)
            point = st.group_pointwise_test(lm, correction=sc["correction"], alpha=sc["alpha"],
                                            tail=sc["tail"])
            boot = st.bootstrap_units(maps, n_boot=sc["n_boot"], ci=sc["ci"], seed=rng_seed)
            lat_ci = st.peak_latency_ci(boot.samples, times, ci=sc["ci"])
            peaks_boot = np.nanmax(boot.samples.reshape(boot.samples.shape[0], -1), axis=1)
            lo, hi = np.nanquantile(peaks_boot, [(1 - sc["ci"]) / 2, 1 - (1 - sc["ci"]) / 2])
            entry["stats"] = {
                "plane_cluster_test": plane.to_dict(),
                "time_cluster_test": course.to_dict(),
                "time_pointwise": {"correction": sc["correction"],
                                   "significant": point["reject"],
                                   "p_corrected": point["p_corrected"]},
                "peak_r_ci": [float(lo), float(hi)],
                "peak_latency_ci_s": lat_ci,
            }
            arrays[f"{m}/plane_mask"] = plane.mask
            arrays[f"{m}/time_mask"] = course.mask
            arrays[f"{m}/encoding_r_ci_lo"] = boot.lo
            arrays[f"{m}/encoding_r_ci_hi"] = boot.hi
        elif n_sub < 2:
            entry["stats"] = {"note": "one subject: group tests need >= 2 subjects; see the "
                                      "label-permutation test (stats.subject_permutations)"}
        else:
            entry["stats"] = {"note": "maps contain NaN (e.g. flat channels): no group tests"}
            notes.append(f"model {m!r}: some subject maps contain NaN; group tests skipped")
        perm = {}
        for s in subjects:
            ex = results[(s, m)].settings.get("_extra", {})
            if "label_permutation" in ex:
                perm[s] = {k: ex["label_permutation"][k] for k in
                           ("n_permutations", "n_clusters", "cluster_p", "threshold")}
                perm[s]["significant"] = any(p < sc["alpha"] for p in ex["label_permutation"]["cluster_p"])
        if perm:
            entry["label_permutation"] = perm
        per_model[m] = entry

    # ---- model comparisons
    comparisons = []
    if n_sub >= 2 and len(models) >= 2:
        for a, b in itertools.combinations(models, 2):
            row: dict = {"a": a, "b": b}
            for score in ("peak_r", "window_r"):
                va = np.array([per_subject_scores[a][s][score] for s in subjects])
                vb = np.array([per_subject_scores[b][s][score] for s in subjects])
                row[score] = st.paired_comparison(va, vb, seed=rng_seed)
            diff = lm_courses[a] - lm_courses[b]
            if np.isfinite(diff).all():
                ct = st.group_cluster_test(diff, n_permutations=sc["n_permutations"],
                                           p_threshold=sc["p_threshold"], alpha=sc["alpha"],
                                           tail=0, seed=rng_seed)
                row["time_cluster_test"] = {"cluster_p": ct.cluster_p,
                                            "significant_times_s": times[ct.mask]}
            comparisons.append(row)
        for score in ("peak_r", "window_r"):
            p = np.array([c[score]["p_perm"] for c in comparisons])
            rej, pc = st.correct_pvalues(p, method=sc["correction"], alpha=sc["alpha"])
            for c, pr, r in zip(comparisons, pc, rej):
                c[score]["p_perm_corrected"] = float(pr)
                c[score]["significant"] = bool(r)

    # ---- regression on model descriptors
    regression = None
    desc_names = [d for d in ("family", "params", "encoder", "downstream")
                  if all(d in x.descriptors for x in cfg.models)]
    partial = [d for d in ("family", "params", "encoder", "downstream")
               if any(d in x.descriptors for x in cfg.models) and d not in desc_names]
    if partial:
        notes.append(f"descriptor(s) {', '.join(partial)} are missing for some models: left "
                     "out of the regression")
    if desc_names:
        y = np.array([per_model[m]["group"]["peak_r"] for m in models])
        desc = {d: [next(x for x in cfg.models if x.name == m).descriptors[d] for m in models]
                for d in desc_names}
        regression = st.descriptor_regression(y, desc)
        regression["score"] = "group peak r"
        sh = {k: v.get("shapley_r2") for k, v in regression["descriptors"].items()}
        if sh.get("family") is not None and sh.get("params"):
            regression["family_over_params"] = (sh["family"] / sh["params"]
                                                if sh["params"] > 0 else None)

    summary = {
        "study": cfg.name,
        "subjects": subjects,
        "models": models,
        "times": times,
        "channels": common,
        "window_s": list(window),
        "settings": {"engine": cfg.engine_kwargs(), "stats": cfg.stats,
                     "channels": cfg.channels},
        "notes": notes,
        "per_model": per_model,
        "per_subject": per_subject_scores,
        "comparisons": comparisons,
        "descriptor_regression": regression,
        "variance_partitioning": varpart or [],
    }
    return jsonable(summary), arrays


# ------------------------------------------------------------------------------ driver
def _tasks(cfg: StudyConfig, feature_sha: dict[str, str]) -> list[dict]:
    tasks = []
    for s in cfg.subjects:
        for m in cfg.models:
            tasks.append({
                "subject": s.name, "model": m.name, "dataset": s.dataset, "options": s.options,
                "features": m.features, "out_dir": str(cfg.cache / f"{s.name}__{m.name}"),
                "key": task_key(cfg, s, m, feature_sha=feature_sha[m.name]),
                "engine_kw": cfg.engine_kwargs(),
                "subject_permutations": int(cfg.stats["subject_permutations"]),
                "p_threshold": float(cfg.stats["p_threshold"]), "alpha": float(cfg.stats["alpha"]),
                "tail": int(cfg.stats["tail"]), "seed": int(cfg.stats["seed"]),
                "blas_threads": cfg.blas_threads,
            })
    return tasks


def load_results(cfg: StudyConfig) -> dict:
    from ..align.data import AlignmentResult

    out = {}
    for s in cfg.subjects:
        for m in cfg.models:
            d = cfg.cache / f"{s.name}__{m.name}"
            r = AlignmentResult.load(d)
            ex = d / "extra.json"
            r.settings["_extra"] = json.loads(ex.read_text()) if ex.is_file() else {}
            out[(s.name, m.name)] = r
    return out


def _varpart(cfg: StudyConfig, executor: Executor, per_model: dict, feature_sha: dict,
             progress: bool) -> list[dict]:
    from .varpart import layer_index

    if not cfg.varpart:
        return []
    tasks, specs = [], []
    for _i, v in enumerate(cfg.varpart):
        fa = load_model_features(next(m.features for m in cfg.models if m.name == v.a))
        fb = load_model_features(next(m.features for m in cfg.models if m.name == v.b))
        la = layer_index(fa, v.layer_a, per_model[v.a]["group"]["peak_layer"])
        lb = layer_index(fb, v.layer_b, per_model[v.b]["group"]["peak_layer"])
        pair = f"{v.a}.{fa.layers[la]}__{v.b}.{fb.layers[lb]}"
        specs.append({"a": v.a, "b": v.b, "layer_a": fa.layers[la], "layer_b": fb.layers[lb],
                      "pair": pair})
        for s in cfg.subjects:
            key = hashlib.sha256(json.dumps([
                task_key(cfg, s, next(m for m in cfg.models if m.name == v.a),
                         feature_sha=feature_sha[v.a]),
                feature_sha[v.b], la, lb, v.alphas], default=str).encode()).hexdigest()
            tasks.append({"subject": s.name, "pair": pair, "dataset": s.dataset,
                          "options": s.options, "key": key,
                          "features_a": next(m.features for m in cfg.models if m.name == v.a),
                          "features_b": next(m.features for m in cfg.models if m.name == v.b),
                          "layer_a": la, "layer_b": lb, "alphas": v.alphas,
                          "n_folds": cfg.engine_kwargs().get("n_folds", 5),
                          "blas_threads": cfg.blas_threads,
                          "out_file": str(cfg.cache / "varpart" / pair / f"{s.name}.npz")})
    executor.map(run_varpart_task, tasks, desc="variance partitioning", progress=progress)
    out = []
    keys = ("r2_a", "r2_b", "r2_ab", "unique_a", "unique_b", "shared")
    win = cfg.window
    for spec in specs:
        per_sub = {}
        for s in cfg.subjects:
            z = np.load(cfg.cache / "varpart" / spec["pair"] / f"{s.name}.npz", allow_pickle=False)
            per_sub[s.name] = {k: np.nanmean(z[k], axis=0) for k in keys}  # (T,) channel means
        courses = {k: np.nanmean([per_sub[s][k] for s in per_sub], axis=0) for k in keys}
        spec["time_courses"] = courses
        t = np.asarray(load_results_times(cfg))
        w = (t >= win[0] - 1e-9) & (t <= win[1] + 1e-9)
        spec["window_mean"] = {k: float(np.nanmean(v[w])) for k, v in courses.items()}
        out.append(spec)
    return out


def load_results_times(cfg: StudyConfig) -> np.ndarray:
    s, m = cfg.subjects[0].name, cfg.models[0].name
    z = np.load(cfg.cache / f"{s}__{m}" / "maps.npz", allow_pickle=False)
    return z["times"]


def run_study(
    cfg: StudyConfig,
    *,
    scheduler: str | None = "none",
    workers: int = 2,
    processes: bool = False,
    progress: bool = True,
    report: bool = True,
) -> dict:
    """Run (or resume) a study and write its outputs into ``cfg.out``.

    Returns
    -------
    dict
        ``summary`` (the ``study.json`` content), ``paths`` (written files) and ``run``
        (scheduler, task counts computed/cached, wall time).
    """
    t0 = time.perf_counter()
    cfg.out.mkdir(parents=True, exist_ok=True)
    cfg.cache.mkdir(parents=True, exist_ok=True)
    feature_sha = {m.name: _file_sha(Path(m.features)) for m in cfg.models}
    tasks = _tasks(cfg, feature_sha)
    with Executor(scheduler, workers=workers, processes=processes,
                  blas_threads=cfg.blas_threads) as ex:
        done = ex.map(run_task, tasks, desc="subject x model", progress=progress)
        results = load_results(cfg)
        summary, arrays = aggregate(cfg, results)
        vp = _varpart(cfg, ex, summary["per_model"], feature_sha, progress)
        summary["variance_partitioning"] = jsonable(vp)
        desc = ex.description
    paths = write_study_outputs(cfg, summary, arrays, report=report)
    run = {
        "scheduler": desc,
        "tasks": len(tasks),
        "computed": sum(d["status"] == "computed" for d in done),
        "cached": sum(d["status"] == "cached" for d in done),
        "task_seconds": sum(d["seconds"] for d in done),
        "wall_seconds": time.perf_counter() - t0,
        "pid": os.getpid(),
    }
    (cfg.out / "run.json").write_text(json.dumps(run, indent=1))
    return {"summary": summary, "paths": paths, "run": run}


def write_study_outputs(cfg: StudyConfig, summary: dict, arrays: dict, *,
                        report: bool = True) -> dict[str, Path]:
    out = cfg.out
    paths: dict[str, Path] = {}
    p = out / "study.json"
    p.write_text(json.dumps(summary, indent=1))
    paths["study"] = p
    z = out / "group_maps.npz"
    np.savez_compressed(z, **{k.replace("/", "__"): v for k, v in arrays.items()})
    paths["maps"] = z
    t = out / "models.csv"
    with open(t, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "n_layers", "peak_r", "peak_r_ci_lo", "peak_r_ci_hi", "peak_layer",
                    "relative_depth", "peak_latency_s", "window_r", "peak_r_normalized",
                    "rsa_peak_rho", "family", "params", "encoder", "downstream"])
        for m, e in summary["per_model"].items():
            g = e["group"]
            ci = (e.get("stats") or {}).get("peak_r_ci") or [None, None]
            d = e.get("descriptors") or {}
            w.writerow([m, e["n_layers"], g["peak_r"], ci[0], ci[1],
                        e["layers"][g["peak_layer"]] if g["peak_layer"] is not None else None,
                        g["relative_depth"], g["peak_latency_s"], g["window_r"],
                        g.get("peak_r_normalized"), g.get("rsa_peak_rho"), d.get("family"),
                        d.get("params"), d.get("encoder"), d.get("downstream")])
    paths["table"] = t
    if report:
        from .study_report import write_report

        paths.update(write_report(cfg, summary, arrays))
    return paths

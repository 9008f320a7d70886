"""One study task: the alignment of one (subject, model) pair, computed once and cached.

:func:`run_task` loads the subject (with the dataset loader the task names), loads the model's
features, runs the alignment engine and saves the :class:`~neuralign.align.AlignmentResult`
into ``<cache>/<subject>__<model>/`` with a ``task.json`` holding the task's key
(:func:`task_key`: a hash of the dataset files' sizes and mtimes, of the feature file's
content, of every analysis setting and of the code). A task whose key matches is skipped, so an
interrupted study resumes where it stopped. :func:`run_varpart_task` does the same for one
variance partitioning of one subject.

Task dicts are plain (picklable) so that dask workers can run them.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ...base import FeatureSet
from ...errors import NeuralignError, few
from ..unit_study import run_study_unit_task
from .aggregate import channel_mean
from .config import StudyConfig
from .executor import set_blas_threads

TASK_VERSION = 1
_CACHE_LOCK = threading.Lock()
_DATA_CACHE: OrderedDict = OrderedDict()
_FEAT_CACHE: OrderedDict = OrderedDict()
_MAX_DATA = 2
_MAX_FEAT = 4


def file_sha(path: Path) -> str:
    """sha256 of a file's content (hex).

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    str
        The hex digest.
    """
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
        from ... import __version__

        pkg = Path(__file__).resolve().parents[2]
        h = hashlib.sha256(__version__.encode())
        skip = {"stats.py", "player.py", "amp.py"}
        for sub in ("base", "align", "offline", "io", "sim"):
            for f in sorted((pkg / sub).rglob("*.py")):
                if f.name in skip or "study" in f.relative_to(pkg).parts[1:-1]:
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
    """The cache key of one (subject, model) result.

    Parameters
    ----------
    cfg : StudyConfig
        The study (its settings).
    subject : SubjectSpec
        The subject (dataset and options).
    model : StudyModel
        The model (features file).
    feature_sha : str | None
        sha256 of the features file, when already known.

    Returns
    -------
    str
        A hash of the dataset files' sizes and mtimes, the features, the settings and the code.
    """
    blob = {
        "v": TASK_VERSION,
        "dataset": subject.dataset,
        "options": subject.options,
        "data_fp": [_tree_fingerprint(p) for p in dataset_paths(subject.dataset, subject.options)],
        "features": feature_sha or file_sha(Path(model.features)),
        "settings": cfg.settings_hash(),
        "code": code_fingerprint(),
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()

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


def load_subject(spec: str, options: dict, load_dataset):
    """Load a dataset, kept in a small per-process cache (tasks of one subject share it).

    Parameters
    ----------
    spec : str
        The dataset as ``KIND:PATH``.
    options : dict
        Loader options.
    load_dataset : callable
        ``load_dataset(spec, **options) -> EpochData`` (the dataset registry).

    Returns
    -------
    EpochData
        The subject's epochs.
    """
    key = (spec, json.dumps(options, sort_keys=True, default=str))
    return _cached(_DATA_CACHE, _MAX_DATA, key, lambda: load_dataset(spec, **options))


def load_model_features(path: str):
    """Load a features file, kept in a small per-process cache.

    Parameters
    ----------
    path : str
        The features file.

    Returns
    -------
    FeatureSet
        Its features.
    """
    from ...io.features import load_features

    st = Path(path).stat()
    return _cached(_FEAT_CACHE, _MAX_FEAT, (path, st.st_size, st.st_mtime_ns),
                   lambda: load_features(path))


def _permuted(fs, perm: np.ndarray):
    return FeatureSet(fs.stimulus_ids, fs.layers, tuple(a[perm] for a in fs.arrays),
                      dict(fs.provenance))

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
    from ...align import analyze_epochs, permutation

    t0 = time.perf_counter()
    data = load_subject(task["dataset"], task["options"], task["load_dataset"])
    fs = load_model_features(task["features"])
    used = data.unique_ids()
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
    if task.get("unit_options"):  # [units] / [readouts]: files beside the task's maps
        run_study_unit_task(task["unit_options"], data, fs, res, out=out, engine_kw=kw,
                            seed=int(task.get("seed", 0)))
    with warnings.catch_warnings():  # all-NaN ceiling slices are expected and harmless
        warnings.simplefilter("ignore", RuntimeWarning)
        res.save(out)
    extra: dict = {}
    n_perm = int(task.get("subject_permutations", 0))
    if n_perm > 0:
        ch = task.get("ch_names")

        def map_fn(perm):
            r = res if perm is None else analyze_epochs(data, _permuted(fs, perm), **kw)
            return channel_mean(r.encoding_r, r.ch_names, ch)

        ct = permutation.single_subject_cluster_test(
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
    """Variance partitioning of two (model, layer) feature spaces on one subject (the engine's
    banded ridge, :func:`neuralign.offline.varpart.variance_partition`)."""

    out = Path(task["out_file"])
    meta = out.with_suffix(".json")
    if out.is_file() and meta.is_file() and json.loads(meta.read_text()).get("key") == task["key"]:
        return {"status": "cached", **{k: task[k] for k in ("subject", "pair")}}
    set_blas_threads(task.get("blas_threads"))
    return _compute_varpart(task, out, meta)


def _compute_varpart(task: dict, out: Path, meta: Path) -> dict:
    from ..varpart import variance_partition

    data = load_subject(task["dataset"], task["options"], task["load_dataset"])
    fa = load_model_features(task["features_a"])
    fb = load_model_features(task["features_b"])
    used = data.unique_ids()
    fa, fb = fa.subset(used), fb.subset(used)
    res = variance_partition(
        data, fa.arrays[task["layer_a"]], fb.arrays[task["layer_b"]],
        stimulus_ids=fa.stimulus_ids.tolist(), alphas=task.get("alphas"),
        n_folds=task.get("n_folds", 5), n_boot=task.get("n_boot", 500),
        n_perm=task.get("n_perm", 500), seed=task.get("seed", 0),
        engine_kw=task.get("engine_kw"))
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, ch_names=np.asarray(data.ch_names), **res)
    meta.write_text(json.dumps({"key": task["key"]}))
    return {"status": "computed", **{k: task[k] for k in ("subject", "pair")}}

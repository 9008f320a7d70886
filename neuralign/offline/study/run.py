"""Running a study: tasks out to the executor, results back from the cache, outputs written.

:func:`run_study` builds one task per (subject, model) pair
(:func:`neuralign.offline.study.tasks.run_task`), runs them on an
:class:`~neuralign.offline.study.executor.Executor`, reads every saved result back from the
cache (so a single-process run and a cluster run produce identical outputs), aggregates them
(:func:`~neuralign.offline.study.aggregate.aggregate`), runs the variance partitionings and
writes ``study.json``, ``group_maps.npz``, ``models.csv``, figures and ``report.html``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ...align.data import AlignmentResult, jsonable
from ..unit_study import check_study_options, study_unit_summary
from .aggregate import aggregate
from .config import StudyConfig
from .executor import Executor
from .report import write_study_outputs
from .tasks import file_sha, load_model_features, run_task, run_varpart_task, task_key

#: ``load_dataset(spec, **options) -> EpochData``: the dataset registry the tasks load with.
DatasetLoader = Callable[..., object]


def study_tasks(cfg: StudyConfig, feature_sha: dict[str, str], load_dataset: DatasetLoader
                ) -> list[dict]:
    """One task dict per (subject, model) pair.

    Parameters
    ----------
    cfg : StudyConfig
        The study.
    feature_sha : dict of str to str
        Model name -> sha256 of its features file (:func:`~.tasks.file_sha`).
    load_dataset : callable
        The dataset registry the tasks load subjects with.

    Returns
    -------
    list of dict
        Picklable task dicts for :func:`~.tasks.run_task`.
    """
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
                "blas_threads": cfg.blas_threads, "load_dataset": load_dataset,
                "unit_options": cfg.unit_options,
            })
    return tasks


def load_results(cfg: StudyConfig) -> dict:
    """Read every (subject, model) result back from the cache.

    Parameters
    ----------
    cfg : StudyConfig
        The study.

    Returns
    -------
    dict
        ``(subject, model) -> AlignmentResult``, with the task's extra outputs in
        ``settings["_extra"]``.
    """
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
             load_dataset: DatasetLoader, progress: bool) -> list[dict]:
    from ..varpart import layer_index, partition_summary

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
                feature_sha[v.b], la, lb, v.alphas, v.n_boot, v.n_permutations,
                cfg.stats["seed"], "engine-partition"], default=str).encode()).hexdigest()
            tasks.append({"subject": s.name, "pair": pair, "dataset": s.dataset,
                          "options": s.options, "key": key,
                          "features_a": next(m.features for m in cfg.models if m.name == v.a),
                          "features_b": next(m.features for m in cfg.models if m.name == v.b),
                          "layer_a": la, "layer_b": lb, "alphas": v.alphas,
                          "n_folds": cfg.engine_kwargs().get("n_folds", 5),
                          "n_boot": v.n_boot, "n_perm": v.n_permutations,
                          "seed": cfg.stats["seed"], "engine_kw": cfg.engine_kwargs(),
                          "blas_threads": cfg.blas_threads, "load_dataset": load_dataset,
                          "out_file": str(cfg.cache / "varpart" / pair / f"{s.name}.npz")})
    executor.map(run_varpart_task, tasks, desc="variance partitioning", progress=progress)
    out = []
    win = cfg.window
    t = np.asarray(_result_times(cfg))
    w = (t >= win[0] - 1e-9) & (t <= win[1] + 1e-9)
    for spec in specs:
        spec.update(partition_summary(
            {s.name: cfg.cache / "varpart" / spec["pair"] / f"{s.name}.npz"
             for s in cfg.subjects}, w, alpha=cfg.stats["alpha"]))
        out.append(spec)
    return out


def _result_times(cfg: StudyConfig) -> np.ndarray:
    s, m = cfg.subjects[0].name, cfg.models[0].name
    z = np.load(cfg.cache / f"{s}__{m}" / "maps.npz", allow_pickle=False)
    return z["times"]


def run_study(
    cfg: StudyConfig,
    *,
    load_dataset: DatasetLoader,
    scheduler: str | None = "none",
    workers: int = 2,
    processes: bool = False,
    progress: bool = True,
    report: bool = True,
) -> dict:
    """Run (or resume) a study and write its outputs into ``cfg.out``.

    Parameters
    ----------
    cfg : StudyConfig
        The study (:func:`~neuralign.offline.study.config.load_study_config`).
    load_dataset : callable
        ``load_dataset(spec, **options) -> EpochData``: the dataset registry
        (:func:`neuralign.commands.datasets.load_dataset`).
    scheduler : str | None
        ``"none"`` (this process), ``"local"`` (a dask LocalCluster) or a scheduler address.
    workers : int
        LocalCluster workers.
    processes : bool
        LocalCluster with worker processes (default: threads in this process).
    progress : bool
        Show progress bars.
    report : bool
        Write figures and ``report.html``.

    Returns
    -------
    dict
        ``summary`` (the ``study.json`` content), ``paths`` (written files) and ``run``
        (scheduler, task counts computed/cached, wall time).
    """
    t0 = time.perf_counter()
    cfg.out.mkdir(parents=True, exist_ok=True)
    cfg.cache.mkdir(parents=True, exist_ok=True)
    feature_sha = {m.name: file_sha(Path(m.features)) for m in cfg.models}
    for m in cfg.models:  # layer names of [units] / [readouts], before anything runs
        check_study_options(cfg.unit_options, load_model_features(m.features), m.name)
    tasks = study_tasks(cfg, feature_sha, load_dataset)
    with Executor(scheduler, workers=workers, processes=processes,
                  blas_threads=cfg.blas_threads) as ex:
        done = ex.map(run_task, tasks, desc="subject x model", progress=progress)
        results = load_results(cfg)
        summary, arrays = aggregate(cfg, results)
        vp = _varpart(cfg, ex, summary["per_model"], feature_sha, load_dataset, progress)
        summary["variance_partitioning"] = jsonable(vp)
        if cfg.unit_options:
            summary["units_readouts"] = jsonable(study_unit_summary(results))
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

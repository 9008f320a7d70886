"""Stimuli + model -> per-layer feature caches: batched, streamed to disk, resumable.

One call extracts one or more *feature sets* from one pass over the images: one per prompt
for LVLMs (``--prompt`` repeatable or a prompts file; the vision tower runs once per batch, the
language model once per prompt), or the captions' features (``text``). Each feature set is a
cache folder (:mod:`neuralign.io.feature_cache`) written batch by batch; a killed extraction
resumes where it stopped; a changed model file or image recomputes it.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import NeuralignError
from ..io.cache_reader import cache_progress, load_cache_dir
from ..io.feature_cache import FORMAT, CacheWriter, clear_cache_dir, is_cache_dir
from .jobs import Job, make_jobs, stimulus_record
from .spec import ModelSpec
from .stimuli import StimulusSet, open_source, pixels


@dataclass
class ExtractResult:
    """What one feature set's extraction did.

    Parameters
    ----------
    path : Path
        The cache folder.
    reused : bool
        A valid cache was there already.
    n_stimuli, n_layers : int
        Rows and layers of the cache.
    skipped : list of (str, str)
        Unreadable stimuli (file, reason).
    seconds : float
        Wall time of the whole call.
    providers : list of str
        ONNX Runtime providers used (``torch`` listed when torch parts ran).
    stale_reason : str, optional
        Why an existing cache was recomputed.
    label : str, optional
        Prompt label (LVLM prompts) or ``text``.
    resumed_from : int
        Rows already on disk when this call started.
    batch_size : int
        Images per batch.
    batch_reason : str
        How the batch size was chosen.
    extra : dict
        Anything else worth recording (e.g. the prompt).
    """

    path: Path
    reused: bool
    n_stimuli: int
    n_layers: int
    skipped: list[tuple[str, str]]
    seconds: float
    providers: list[str]
    stale_reason: str | None = None
    label: str | None = None
    resumed_from: int = 0
    batch_size: int = 0
    batch_reason: str = ""
    extra: dict = field(default_factory=dict)


def _open_writer(job: Job, stim: StimulusSet, *, raw: bool, force: bool) -> CacheWriter:
    path = job.raw_path if raw else job.path
    key = job.raw_key if raw else job.key
    if force and is_cache_dir(path):
        clear_cache_dir(path)
    return CacheWriter.open(path, key=key, stimulus_ids=stim.ids,
                            image_sha256=[s.sha256 for s in stim.stimuli],
                            layers=job.layer_records, provenance=job.provenance(raw=raw),
                            inputs=job.inputs)


def _reusable(job: Job, force: bool) -> bool:
    prog = cache_progress(job.path)
    if force or prog is None or prog["state"] != "complete" or prog["key"] != job.key:
        return False
    try:
        load_cache_dir(job.path, verify="auto")
    except NeuralignError as e:
        job.stale = f"the cache failed its check ({e})"
        return False
    return True


def extract_features(model: str | ModelSpec, source: str | StimulusSet, out: str | Path, *,
                     pca: int | None = None, batch_size: int | str = "auto",
                     memory: int | None = None, pooling: str | None = None,
                     prompts: list | None = None, template: str | None = None,
                     stages: list[str] | None = None, text: str | None = None,
                     text_template: str | None = None, providers: list[str] | None = None,
                     threads: int | None = None, progress: bool = True, force: bool = False,
                     on_batch=None) -> list[ExtractResult]:
    """Compute (or reuse, or resume) the feature caches of ``model`` on ``source``.

    Parameters
    ----------
    model : str or ModelSpec
        Built-in name, exported model folder or ``.onnx`` file
        (:func:`~neuralign.models.registry.resolve_model`).
    source : str or StimulusSet
        ``builtin``, an image folder or a THINGS image folder.
    out : str or Path
        The cache folder (when it does not exist yet, or is a cache), or a folder in which
        caches named after model, pooling, stimuli, PCA, stages and prompt are written
        (always so with several prompts).
    pca : int, optional
        Keep this many principal components per layer, fit on the training stimuli only.
    batch_size : int or "auto"
        Images per batch; ``auto`` chooses from the memory available (or ``memory``).
    memory : int, optional
        Memory budget in bytes for ``auto``.
    pooling : str, optional
        ``cls``, ``mean``, ``last`` or ``all``; layers that do not offer it use their
        default (recorded per layer).
    prompts : list of Prompt, optional
        LVLMs: one feature set per prompt (default: the model's default prompt).
    template : str, optional
        LVLMs: overrides the family's prompt template.
    stages : list of str, optional
        Only layers of these stages (e.g. ``["vision", "projector"]``).
    text : str, optional
        Caption features instead of images: ``concepts`` or a captions file.
    text_template : str, optional
        Template of the captions (``{text}`` marker), e.g. ``"a photo of a {text}."``.
    providers : list of str, optional
        ONNX Runtime providers (default: CUDA when present, else CPU).
    threads : int, optional
        Intra-op threads.
    progress : bool
        A progress bar per model on stderr.
    force : bool
        Recompute even when a valid cache exists.
    on_batch : callable, optional
        Called with the number of rows done after each batch is on disk.

    Returns
    -------
    list of ExtractResult
        One per feature set (prompt).
    """
    from .batching import choose_batch_size
    from .registry import resolve_model
    from .runtime import LayerRunner, choose_providers

    t0 = time.perf_counter()
    spec = resolve_model(model) if isinstance(model, str) else model
    stim = open_source(source) if isinstance(source, str) else source
    jobs = make_jobs(spec, stim, Path(out), pca=pca, pooling=pooling, prompts=prompts,
                     template=template, stages=stages, text=text, text_template=text_template)
    bs, why = choose_batch_size(spec, requested=batch_size, memory=memory)
    results: dict[int, ExtractResult] = {}
    active: list[tuple[Job, CacheWriter]] = []
    for k, job in enumerate(jobs):
        if _reusable(job, force):
            fs = load_cache_dir(job.path, verify="none")
            results[k] = ExtractResult(job.path, True, fs.n_stimuli, fs.n_layers, stim.skipped,
                                       0.0, [], label=job.label, batch_size=bs, batch_reason=why)
            continue
        if job.stale is None:
            job.stale = job.stale_reason()
        if job.stale:
            print(f"neuralign: cache {job.path} is stale ({job.stale}): recomputing",
                  file=sys.stderr)
        if job.raw_path is not None and job.path.exists() and not is_cache_dir(job.path):
            raise NeuralignError("exists and is not a feature cache; refusing to overwrite",
                                 path=job.path)
        w = _open_writer(job, stim, raw=job.raw_path is not None, force=force)
        if w.rows_done:
            print(f"neuralign: resuming {w.path} at row {w.rows_done} of {w.n_stimuli}",
                  file=sys.stderr)
        active.append((job, w))
    providers = providers or choose_providers()
    used: list[str] = []
    if active:
        runner = LayerRunner(spec, providers=providers, threads=threads, mode=jobs[0].mode,
                             stages=stages)
        used = list(providers) + (["torch"] if runner.uses_torch else [])
        starts = {id(w): w.rows_done for _, w in active}
        if jobs[0].mode == "text":
            _run_text(runner, jobs[0], active[0][1], stim, bs, progress, on_batch)
        else:
            _run_images(runner, active, stim, bs, progress, on_batch)
        done = time.perf_counter() - t0
        for job, w in active:
            extra = {"providers": used, "batch_size": bs, "batch_size_reason": why,
                     "seconds": round(done, 3), "skipped": [{"file": f, "reason": r}
                                                            for f, r in _skipped(stim, w)]}
            path = _finish(job, w, stim, extra)
            fs = load_cache_dir(path, verify="none")
            results[jobs.index(job)] = ExtractResult(
                path, False, fs.n_stimuli, fs.n_layers, _skipped(stim, w), done, used,
                job.stale, job.label, starts[id(w)], bs, why)
    seconds = time.perf_counter() - t0
    for r in results.values():
        r.seconds = r.seconds or seconds
    return [results[k] for k in range(len(jobs))]


def _skipped(stim: StimulusSet, w: CacheWriter) -> list[tuple[str, str]]:
    failed = [(str(stim.stimuli[r].path or stim.stimuli[r].id), "could not be preprocessed")
              for r in w.failed]
    return list(stim.skipped) + failed


def _finish(job: Job, w: CacheWriter, stim: StimulusSet, extra: dict) -> Path:
    extra = {**extra, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if job.raw_path is None:
        return w.finalize(provenance=extra)
    from .pca import write_pca

    w.finalize(provenance=extra)
    return write_pca(job, stim, extra)


def _progress_bar(spec: ModelSpec, total: int, initial: int, label: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"{spec.name}{label}", unit="img",
                disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def _run_images(runner, active: list[tuple[Job, CacheWriter]], stim: StimulusSet, bs: int,
                progress: bool, on_batch) -> None:
    from .preprocess import preprocess

    spec = runner.spec
    start = min(w.rows_done for _, w in active)
    contexts = [job.context for job, _ in active]
    label = f" [{active[0][0].label}]" if len(active) == 1 and active[0][0].label else (
        f" [{len(active)} prompts]" if len(active) > 1 else "")
    n = len(stim.stimuli)
    bar = _progress_bar(spec, n, start, label, progress)
    try:
        for i in range(start, n, bs):
            chunk = stim.stimuli[i:i + bs]
            ok, failed, batch = [], [], []
            for r, s in enumerate(chunk, start=i):
                try:
                    batch.append(preprocess(pixels(s), spec.preprocessing))
                    ok.append(r)
                except NeuralignError:
                    failed.append(r)
            if batch:
                values = runner.outputs_many(np.stack(batch), contexts)
                for (job, w), vals in zip(active, values):
                    rows = runner.pool(vals, job.pooling_per_layer)
                    _check_finite(rows, spec)
                    _write_rows(w, ok, rows)
            for _, w in active:
                w.commit(max(w.rows_done, i + len(chunk)), failed=failed)
            bar.update(len(chunk))
            if on_batch is not None:
                on_batch(i + len(chunk))
    finally:
        bar.close()


def _write_rows(w: CacheWriter, rows: list[int], values: dict[str, np.ndarray]) -> None:
    """Rows are contiguous except where a stimulus failed: write each contiguous run."""
    runs, s = [], 0
    for k in range(1, len(rows) + 1):
        if k == len(rows) or rows[k] != rows[k - 1] + 1:
            runs.append((rows[s], s, k))
            s = k
    for first, a, b in runs:
        w.write(first, {name: v[a:b] for name, v in values.items()})


def _check_finite(rows: dict[str, np.ndarray], spec: ModelSpec) -> None:
    for name, a in rows.items():
        if not np.isfinite(a).all():
            raise NeuralignError(f"layer {name!r} produced NaN/Inf features", path=spec.root)


def _run_text(runner, job: Job, w: CacheWriter, stim: StimulusSet, bs: int, progress: bool,
              on_batch) -> None:
    """Captions: each distinct caption runs once (one call per caption, no padding)."""
    spec = runner.spec
    n = len(stim.stimuli)
    memo: dict[str, dict[str, np.ndarray]] = {}
    bar = _progress_bar(spec, n, w.rows_done, " [text]", progress)
    try:
        for i in range(w.rows_done, n, bs):
            chunk = stim.stimuli[i:i + bs]
            rows: dict[str, list[np.ndarray]] = {}
            for s in chunk:
                cap = job.captions[s.id]
                if cap not in memo:
                    vals = runner.outputs(None, **job.text_context(cap))
                    memo[cap] = runner.pool(vals, job.pooling_per_layer)
                    _check_finite(memo[cap], spec)
                for name, v in memo[cap].items():
                    rows.setdefault(name, []).append(v)
            w.write(i, {name: np.concatenate(v, axis=0) for name, v in rows.items()})
            w.commit(i + len(chunk))
            bar.update(len(chunk))
            if on_batch is not None:
                on_batch(i + len(chunk))
    finally:
        bar.close()


__all__ = ["FORMAT", "ExtractResult", "extract_features", "stimulus_record"]

"""Stimuli + model -> feature cache, with ONNX Runtime (batched, progress bar, optional PCA)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import NeuralignError
from .cache import FORMAT, cache_key, is_cache, read_provenance, write_cache
from .spec import ModelSpec, graph_sha256
from .stimuli import StimulusSet, open_source


@dataclass
class ExtractResult:
    path: Path
    reused: bool
    n_stimuli: int
    n_layers: int
    skipped: list[tuple[str, str]]
    seconds: float
    providers: list[str]
    stale_reason: str | None = None


def _model_record(spec: ModelSpec) -> dict:
    graphs = []
    for g, p in zip(spec.graphs, spec.graph_paths()):
        if not p.is_file():
            raise NeuralignError("model graph file is missing", path=p)
        digest = graph_sha256(p)
        if g.get("sha256") and g["sha256"] != digest:
            raise NeuralignError("model file does not match the hash recorded when it was "
                                 "exported (modified? export it again)", path=p)
        graphs.append({"file": g["file"], "path": str(p.resolve()), "sha256": digest})
    return {"name": spec.name, "family": spec.family, "graphs": graphs, "notes": spec.notes,
            "verification": spec.verification}


def _stale_reason(old: dict, new: dict, old_hashes: dict, new_hashes: dict) -> str:
    if [g["sha256"] for g in old.get("model", {}).get("graphs", [])] != [
            g["sha256"] for g in new["model"]["graphs"]]:
        return "the model file changed"
    changed = [s for s in new_hashes if s in old_hashes and old_hashes[s] != new_hashes[s]]
    if changed:
        return f"{len(changed)} image(s) changed (e.g. {changed[0]!r})"
    if set(old_hashes) != set(new_hashes):
        return "the stimulus set changed"
    return "settings changed (preprocessing, pooling or PCA)"


def default_cache_name(spec: ModelSpec, stim: StimulusSet, pooling: str, pca: int | None) -> str:
    pc = f"_pca{pca}" if pca else ""
    return f"{spec.name}_{pooling}_{stim.name}{pc}.npz"


def extract_features(
    model: str | ModelSpec,
    source: str | StimulusSet,
    out: str | Path,
    *,
    pca: int | None = None,
    batch_size: int = 16,
    pooling: str | None = None,
    providers: list[str] | None = None,
    threads: int | None = None,
    progress: bool = True,
    force: bool = False,
) -> ExtractResult:
    """Compute (or reuse) the feature cache of ``model`` on ``source``.

    Parameters
    ----------
    model : str or ModelSpec
        Built-in name, exported model folder, ``.onnx`` file (see
        :func:`~neuralign.models.registry.resolve_model`).
    source : str or StimulusSet
        ``builtin``, an image folder or a THINGS image folder.
    out : path
        The cache file (``.npz``), or a folder where a file named after model, pooling, stimulus
        set and PCA is written.
    pca : int, optional
        Keep this many principal components per layer, fit on the training stimuli only (all
        stimuli except the source's test set).
    batch_size : int
        Images per ONNX Runtime call.
    pooling : str, optional
        ``cls``, ``mean`` or ``last``; the model's default when None. Layers that do not offer
        it use their own default (recorded per layer).
    force : bool
        Recompute even when a valid cache exists.
    """
    from .preprocess import preprocess
    from .registry import resolve_model
    from .runtime import LayerRunner

    t0 = time.perf_counter()
    spec = resolve_model(model) if isinstance(model, str) else model
    stim = open_source(source) if isinstance(source, str) else source
    if batch_size < 1:
        raise NeuralignError(f"--batch-size must be >= 1, got {batch_size}")
    per_layer = spec.resolve_pooling(pooling)
    pool_name = pooling or spec.default_pooling
    out = Path(out)
    path = out / default_cache_name(spec, stim, pool_name, pca) if out.suffix != ".npz" else out
    stim_record = {"kind": "builtin" if stim.source == "builtin" else
                   ("things" if stim.test_ids is not None else "folder"),
                   "name": stim.name, "source": stim.source,
                   "files": ({s.id: Path(s.path).relative_to(stim.source).as_posix()
                              for s in stim.stimuli} if stim.source != "builtin" else None)}
    settings = {
        "format": FORMAT,
        "model": _model_record(spec),
        "preprocessing": spec.preprocessing,
        "pooling": pool_name,
        "pooling_per_layer": per_layer,
        "pca": pca,
        "layers": spec.layer_names,
    }
    hashes = stim.hashes()
    key = cache_key({k: v for k, v in settings.items() if k != "model"} |
                    {"model_sha256": [g["sha256"] for g in settings["model"]["graphs"]]}, hashes)
    stale = None
    if path.exists() and not force:
        if not is_cache(path):
            raise NeuralignError("exists and is not a feature cache; refusing to overwrite",
                                 path=path)
        old = read_provenance(path)
        if old.get("key") == key:
            from .cache import load_cache

            fs = load_cache(path)
            return ExtractResult(path, True, fs.n_stimuli, fs.n_layers, stim.skipped,
                                 time.perf_counter() - t0, [], None)
        with np.load(path, allow_pickle=False) as z:
            old_hashes = dict(zip(z["stimulus_ids"].tolist(), z["image_sha256"].tolist()))
        stale = _stale_reason(old, settings, old_hashes, hashes)
        print(f"neuralign: cache {path} is stale ({stale}): recomputing", file=sys.stderr)

    runner = LayerRunner(spec, providers=providers, threads=threads)
    skipped = list(stim.skipped)
    ids: list[str] = []
    digests: list[str] = []
    chunks: dict[str, list[np.ndarray]] = {n: [] for n in spec.layer_names}
    from tqdm import tqdm

    bar = tqdm(total=len(stim.stimuli), desc=f"features {spec.name}", unit="img",
               disable=not progress, file=sys.stderr)
    try:
        for i in range(0, len(stim.stimuli), batch_size):
            batch, bids = [], []
            for s in stim.stimuli[i : i + batch_size]:
                try:
                    batch.append(preprocess(s.load(), spec.preprocessing))
                    bids.append(s)
                except NeuralignError as e:
                    skipped.append((str(s.path or s.id), str(e)))
            if batch:
                res = runner.run(np.stack(batch), per_layer)
                for n in spec.layer_names:
                    chunks[n].append(res[n])
                ids += [s.id for s in bids]
                digests += [s.sha256 for s in bids]
            bar.update(len(stim.stimuli[i : i + batch_size]))
    finally:
        bar.close()
    if not ids:
        raise NeuralignError("no stimulus could be read", path=stim.source)
    arrays = [np.concatenate(chunks[n], axis=0) for n in spec.layer_names]
    for n, a in zip(spec.layer_names, arrays):
        if not np.isfinite(a).all():
            raise NeuralignError(f"layer {n!r} produced NaN/Inf features", path=spec.root)
    test_ids = [t for t in (stim.test_ids or []) if t in set(ids)]
    pca_store = None
    pca_info = None
    if pca:
        arrays, pca_store, pca_info = _fit_pca(arrays, ids, test_ids, pca)
    provenance = dict(settings)
    provenance.update({
        "key": key,
        "stimuli": stim_record,
        "n_stimuli": len(ids),
        "test_ids": test_ids or None,
        "skipped": [{"file": f, "reason": r} for f, r in skipped],
        "pca_info": pca_info,
        "providers": runner.providers,
        "batch_size": batch_size,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    if stim_record["files"]:
        provenance["stimuli"]["files"] = {k: v for k, v in stim_record["files"].items()
                                          if k in set(ids)}
    write_cache(path, stimulus_ids=ids, layers=spec.layer_names, arrays=arrays,
                image_sha256=digests, provenance=provenance, pca=pca_store)
    return ExtractResult(path, False, len(ids), len(arrays), skipped, time.perf_counter() - t0,
                         runner.providers, stale)


def _fit_pca(arrays, ids, test_ids, n):
    """PCA per layer fit on the training stimuli (all but ``test_ids``), applied to all."""
    from sklearn.decomposition import PCA

    test = set(test_ids)
    train = np.array([s not in test for s in ids])
    if train.sum() < 2:
        raise NeuralignError(f"PCA needs at least 2 training stimuli, got {int(train.sum())}")
    out, store, info = [], {}, []
    for i, a in enumerate(arrays):
        k = int(min(n, train.sum(), a.shape[1]))
        p = PCA(n_components=k, svd_solver="full", random_state=0).fit(a[train].astype(np.float64))
        out.append(p.transform(a.astype(np.float64)).astype(np.float32))
        store[i] = (p.components_, p.mean_)
        info.append({"n_components": k, "explained_variance": float(p.explained_variance_ratio_.sum())})
    return out, store, {"n_requested": n, "fit_on": "training stimuli",
                        "n_fit": int(train.sum()), "layers": info}

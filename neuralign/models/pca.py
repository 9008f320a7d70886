"""Per-layer PCA of an extracted cache, fit on the training stimuli only, one layer at a time.

The raw features are extracted into ``CACHE.raw`` (resumable like any cache); each layer is
read from its memory map, fit (scikit-learn, full SVD) on the training rows (all stimuli but
the source's test set) and applied to every row; the reduced cache is written at ``CACHE`` with
the components and means, and the raw cache is removed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ..errors import NeuralignError
from ..io.cache_reader import load_cache_dir
from ..io.feature_cache import CacheWriter


def write_pca(job, stim, extra: dict) -> Path:
    """Reduce the raw cache of ``job`` into its final cache.

    Parameters
    ----------
    job : Job
        A job with a ``raw_path`` (complete) and ``settings["pca"]`` components.
    stim : StimulusSet
        The stimuli (for the image hashes).
    extra : dict
        Provenance added to the final cache.

    Returns
    -------
    Path
        The final cache folder.
    """
    from sklearn.decomposition import PCA

    raw = load_cache_dir(job.raw_path, verify="none")
    ids = raw.stimulus_ids.tolist()
    test = set(job.base.get("test_ids") or [])
    train = np.array([s not in test for s in ids])
    if train.sum() < 2:
        raise NeuralignError(f"PCA needs at least 2 training stimuli, got {int(train.sum())}")
    n = int(job.settings["pca"])
    hashes = dict(zip(stim.ids, (s.sha256 for s in stim.stimuli)))
    w = CacheWriter.open(job.path, key=job.key, stimulus_ids=ids,
                         image_sha256=[hashes[s] for s in ids], layers=job.layer_records,
                         provenance=job.provenance(), inputs=job.inputs)
    files, info = {}, []
    train_rows = np.nonzero(train)[0]
    for i, name in enumerate(raw.layers):
        x = raw.layer(i, train_rows, dtype=np.float64)
        k = int(min(n, x.shape[0], x.shape[1]))
        p = PCA(n_components=k, svd_solver="full", random_state=0).fit(x)
        step = max(1, (64 << 20) // (8 * raw.dims[i]))
        for s in range(0, raw.n_stimuli, step):
            block = np.asarray(raw.arrays[i][s:s + step], dtype=np.float64)
            w.write(s, {name: p.transform(block).astype(np.float32)})
        files[f"pca_components_{i:03d}.npy"] = p.components_.astype(np.float32)
        files[f"pca_mean_{i:03d}.npy"] = p.mean_.astype(np.float32)
        info.append({"n_components": k,
                     "explained_variance": float(p.explained_variance_ratio_.sum())})
    w.commit(raw.n_stimuli)
    pca_info = {"n_requested": n, "fit_on": "training stimuli", "n_fit": int(train.sum()),
                "layers": info}
    path = w.finalize(provenance={**extra, "pca_info": pca_info,
                                  "test_ids": [s for s in ids if s in test] or None},
                      extra_files=files)
    del raw
    shutil.rmtree(job.raw_path, ignore_errors=True)
    return path

"""A simulated study: several subjects (THINGS-EEG2 layout) x several models + ``STUDY.toml``.

The synthetic brains are driven by the first model's features (each subject with its own
seed, patterns and noise), so the first model aligns best; the other models are independent
hierarchies over the same stimuli, optionally sharing part of the first model's features
(``overlap``) so variance partitioning has something shared to find.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..base import FeatureSet
from ..io.features import save_features
from .dataset import things_like_ids, write_things_eeg2
from .features import hierarchical_features


def write_simulated_study(
    root: str | Path,
    *,
    n_subjects: int = 3,
    layers: tuple[int, ...] = (4, 6, 5),
    dim: int = 16,
    n_train: int = 120,
    n_test: int = 30,
    train_reps: int = 2,
    test_reps: int = 4,
    overlap: float = 0.5,
    snr: float = 0.6,
    seed: int = 0,
    varpart: bool = True,
    stats: dict | None = None,
) -> Path:
    """Write subjects, feature files and ``STUDY.toml`` under ``root``; return the config path."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tr, _, te, _ = things_like_ids(n_train, n_test)
    ids = tr + te
    feats = []
    families = ["cnn", "vit", "vlm", "vit", "cnn", "vlm"]
    for k, n_l in enumerate(layers):
        fs = hierarchical_features(ids, n_layers=n_l, dim=dim, seed=seed + 100 * k)
        if k > 0 and overlap > 0:
            base = feats[0]
            mid = base.arrays[base.n_layers // 2]
            arrays = tuple(np.sqrt(1 - overlap) * a + np.sqrt(overlap) * mid[:, : a.shape[1]]
                           for a in fs.arrays)
            fs = FeatureSet(fs.stimulus_ids, fs.layers, arrays, {"simulated": True})
        feats.append(fs)
        save_features(root / f"model{k}.npz", fs)
    data = root / "data"
    lat = np.linspace(0.08, 0.30, layers[0])
    for s in range(n_subjects):
        write_things_eeg2(data, n_train=n_train, n_test=n_test, train_reps=train_reps,
                          test_reps=test_reps, features=feats[0], seed=seed + s + 1,
                          subject=f"sub-{s + 1:02d}",
                          brain_kw={"snr": snr, "peak_latencies": lat.tolist()})
    lines = ['[study]', 'name = "simulated study"', 'out = "out"', "",
             "[analysis]", "n_folds = 5", "window = [0.1, 0.3]", "", "[stats]"]
    st = {"n_permutations": 256, "n_boot": 200, "seed": 0, **(stats or {})}
    lines += [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in st.items()]
    for s in range(n_subjects):
        lines += ["", "[[subjects]]", f'name = "sub-{s + 1:02d}"',
                  f'dataset = "things-eeg2:data/sub-{s + 1:02d}"']
    for k, n_l in enumerate(layers):
        lines += ["", "[[models]]", f'name = "model{k}"', f'features = "model{k}.npz"',
                  f'family = "{families[k % len(families)]}"', f"params = {1e7 * (k + 1) * n_l:g}",
                  f'encoder = "{"ViT" if k % 2 else "CNN"}"']
    if varpart and len(layers) >= 2:
        lines += ["", "[[variance_partitioning]]", 'a = "model0"', 'b = "model1"',
                  'layer_a = "peak"', 'layer_b = "peak"']
    cfg = root / "STUDY.toml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg

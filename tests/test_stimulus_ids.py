"""One stimulus id everywhere: presenter markers -> features -> live engine.

For a THINGS image folder the id is the file name exactly as ``image_metadata.npy`` lists it
(``aardvark_01b.jpg``): what ``neuralign features --stimuli FOLDER`` keys the features by,
what the THINGS-EEG2 loaders use, and (issue 13) what the presenter sends. For a plain image
folder it is the file stem. A live THINGS session used to call every marker unknown.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuralign.align import AlignmentEngine
from neuralign.io.things import METADATA_FILE
from neuralign.models.stimuli import open_source
from neuralign.realtime.core import SessionCore
from neuralign.realtime.epocher import MarkerClassifier
from neuralign.realtime.settings import EpochSettings
from neuralign.sim.features import hierarchical_features
from neuralign.stimulus.config import load_config
from neuralign.stimulus.run import prepare_plan


def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def things_folder(root: Path) -> Path:
    """A THINGS image folder: image_metadata.npy + training_images/ + test_images/."""
    meta: dict[str, list[str]] = {}
    for part, sub, n in (("train", "training_images", 6), ("test", "test_images", 3)):
        files = [f"thing{part}{i}_01b.jpg" for i in range(n)]
        concepts = [f"{i + 1:05d}_thing{part}{i}" for i in range(n)]
        for k, (f, c) in enumerate(zip(files, concepts)):
            _image(root / sub / c / f, seed=k + 10 * (part == "test"))
        meta[f"{part}_img_files"], meta[f"{part}_img_concepts"] = files, concepts
        meta[f"{part}_img_concepts_THINGS"] = concepts
    np.save(root / METADATA_FILE, meta, allow_pickle=True)
    return root


def plain_folder(root: Path) -> Path:
    """A folder of images in sub-folders (ids are stems)."""
    for i in range(8):
        _image(root / f"set{i % 2}" / f"photo{i}.png", seed=i)
    return root


@pytest.mark.parametrize("layout", ["things", "plain"])
def test_presenter_ids_are_feature_ids_and_reach_the_live_engine(tmp_path, layout):
    folder = (things_folder if layout == "things" else plain_folder)(tmp_path / layout)
    # 1. the presenter: every trial's marker is a stimulus id
    config = load_config(None, overrides={
        "seed": 3, "stimuli": {"source": str(folder), "train_reps": 2, "test_reps": 3,
                               "n_test": -1 if layout == "things" else 2}})
    plan = prepare_plan(config, progress=False)
    markers = [t.marker for t in plan.trials if t.kind == "stimulus"]
    # 2. the features: keyed as `neuralign features --stimuli FOLDER` keys them
    feature_ids = open_source(str(folder)).ids
    assert set(plan.roles) <= set(feature_ids)
    if layout == "things":
        meta = np.load(folder / METADATA_FILE, allow_pickle=True).item()
        assert sorted(plan.roles) == sorted(meta["train_img_files"] + meta["test_img_files"])
        assert plan.design.test_ids == meta["test_img_files"]
        assert all(m.endswith(".jpg") for m in markers)
    else:
        assert sorted(plan.roles) == [f"photo{i}" for i in range(8)]
    features = hierarchical_features(feature_ids, n_layers=2, dim=4, seed=0)
    # 3. the live path: markers classified against the features, epoched, into the engine
    settings = EpochSettings(tmin=-0.1, tmax=0.3, sfreq=100.0)
    core = SessionCore(settings, stream_sfreq=100.0, n_channels=3, classifier=MarkerClassifier(
        features.stimulus_ids, control=settings.control_markers))
    onsets = 1.0 + 0.5 * np.arange(len(markers))
    n = int((onsets[-1] + 1.0) * 100)
    eeg, ts = np.random.default_rng(1).standard_normal((n, 3)), np.arange(n) / 100.0
    events = core.markers(markers, onsets)
    for a in range(0, n, 20):  # chunks, as an inlet delivers them
        events += core.eeg(eeg[a:a + 20], ts[a:a + 20])
    events += core.flush()
    assert dict(core.unknown) == {}
    epochs = [e for e in events if e.kind == "epoch"]
    assert [e.stimulus_id for e in epochs] == markers
    engine = AlignmentEngine(features, times=core.epocher.times, ch_names=["a", "b", "c"],
                             test_ids=plan.design.test_ids or None)
    assert all(engine.add_epoch(e.stimulus_id, e.data) for e in epochs)
    assert engine.n_stimuli_seen == len(plan.roles)

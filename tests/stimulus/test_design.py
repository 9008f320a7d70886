"""Session design: config parsing, bad input, reproducible trial lists (no display needed)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from neuralign.errors import NeuralignError
from neuralign.stimulus.config import dump_toml, load_config, parse_overrides
from neuralign.stimulus.run import prepare_plan
from neuralign.stimulus.timing import FrameRoundingWarning, frame_timing

from .conftest import make_images, write_config


def _config(tmp_path: Path, body: str = "", **over):
    path = write_config(tmp_path / "session.toml", body)
    return load_config(path, overrides=over or None)


BASIC = """
seed = 7
[stimuli]
source = "folder:imgs"
n_test = 2
train_reps = 3
test_reps = 5
[timing]
sequence_length = 4
[blocks]
n_blocks = 2
"""


def test_counts_roles_and_no_immediate_repeats(tmp_path, image_folder):
    design = prepare_plan(_config(tmp_path, BASIC), progress=False)
    roles = design.roles
    assert sorted(roles) == [f"img{i:02d}" for i in range(6)]
    assert Counter(roles.values()) == {"train": 4, "test": 2}
    counts = Counter(t.stimulus_id for t in design.trials)
    for sid, role in roles.items():
        assert counts[sid] == (3 if role == "train" else 5)
    ids = [t.stimulus_id for t in design.trials]
    assert all(a != b for a, b in zip(ids, ids[1:]))
    # blocks split the presentations evenly; sequences hold at most 4 images
    per_block = Counter(t.block for t in design.trials)
    assert sorted(per_block) == [0, 1]
    assert abs(per_block[0] - per_block[1]) <= 1
    assert max(Counter(t.sequence for t in design.trials).values()) <= 4
    # every trial's marker is its stimulus id, repetition numbers count up
    assert all(t.marker == t.stimulus_id for t in design.trials)
    reps = {}
    for t in design.trials:
        assert t.rep == reps.get(t.stimulus_id, 0)
        reps[t.stimulus_id] = t.rep + 1


def test_same_seed_same_design_other_seed_differs(tmp_path, image_folder):
    a = prepare_plan(_config(tmp_path, BASIC), progress=False)
    b = prepare_plan(_config(tmp_path, BASIC), progress=False)
    c = prepare_plan(_config(tmp_path, BASIC, seed=8), progress=False)
    assert a.trials == b.trials
    assert [t.stimulus_id for t in a.trials] != [t.stimulus_id for t in c.trials]


def test_onset_frames_follow_timing(tmp_path, image_folder):
    cfg = _config(tmp_path, BASIC + "\n[monitor]\nrefresh_hz = 100\n")
    design = prepare_plan(cfg, progress=False)
    t = design.timing
    assert (t.on, t.off, t.lead_in, t.sequence_gap) == (10, 10, 50, 50)
    for block in range(2):
        trials = design.block_trials(block)
        assert trials[0].onset_frame == t.lead_in
        for prev, cur in zip(trials, trials[1:]):
            gap = t.sequence_gap if cur.sequence != prev.sequence else 0
            assert cur.onset_frame - prev.onset_frame == t.on + t.off + gap


def test_targets_inserted_per_fraction(tmp_path, image_folder):
    cfg = _config(tmp_path, BASIC + "\n[task]\ntarget_fraction = 0.5\n")
    design = prepare_plan(cfg, progress=False)
    n_seq = len({t.sequence for t in design.trials})
    targets = [t for t in design.trials if t.kind == "target"]
    assert len(targets) == round(0.5 * n_seq)
    assert all(t.marker == "target" and t.role == "target" for t in targets)
    assert len({t.sequence for t in targets}) == len(targets)  # at most one per sequence
    assert "target" not in design.roles  # never a scoring stimulus


def test_design_file_round_trip_and_realtime_reader(tmp_path, image_folder):
    design = prepare_plan(_config(tmp_path, BASIC), progress=False)
    paths = design.write(tmp_path / "out")
    data = json.loads(paths["design"].read_text())
    assert data["version"] == 1
    assert data["marker_stream"] == "neuralign-markers"
    assert len(data["trials"]) == len(design.trials)
    assert {s["id"]: s["role"] for s in data["stimuli"]} == design.roles
    lines = paths["trials"].read_text().splitlines()
    assert len(lines) == len(design.trials) + 1
    # the resolved config reproduces the same design
    again = prepare_plan(load_config(paths["config"]), progress=False)
    assert again.trials == design.trials
    from neuralign.base import load_design

    loaded = load_design(paths["design"])
    assert sorted(loaded.test_ids) == sorted(design.test_ids)
    assert loaded.marker_stream == "neuralign-markers"


def test_frame_rounding_warns_with_real_duration(tmp_path, image_folder):
    cfg = _config(tmp_path, BASIC + "\n[monitor]\nrefresh_hz = 144\n")
    with pytest.warns(FrameRoundingWarning, match=r"using 14 frame\(s\) = 97\.22 ms"):
        timing = frame_timing(cfg)
    assert timing.on == 14


def test_whole_frames_do_not_warn(tmp_path, image_folder, recwarn):
    frame_timing(_config(tmp_path, BASIC))  # 100 ms at 60 Hz = 6 frames
    assert not [w for w in recwarn if issubclass(w.category, FrameRoundingWarning)]


def test_too_many_test_images_refused(tmp_path, image_folder):
    with pytest.raises(NeuralignError, match="asks for 9 test images but the source has only 6"):
        prepare_plan(_config(tmp_path, BASIC, stimuli={"n_test": 9}), progress=False)


def test_unknown_test_ids_refused(tmp_path, image_folder):
    with pytest.raises(NeuralignError, match="nope"):
        prepare_plan(_config(tmp_path, BASIC, stimuli={"test_ids": ["img01", "nope"]}),
                       progress=False)


def test_unreadable_images_refused_by_name(tmp_path, image_folder):
    (image_folder / "broken.png").write_bytes(b"not a png at all")
    (image_folder / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    with pytest.raises(NeuralignError, match="2 unreadable image") as e:
        prepare_plan(_config(tmp_path, BASIC), progress=False)
    assert "broken.png" in str(e.value)
    assert "cut.jpg" in str(e.value)


def test_reserved_ids_refused(tmp_path):
    make_images(tmp_path / "imgs", 2)
    make_images(tmp_path / "tmp2", 1)
    (tmp_path / "tmp2" / "img00.png").rename(tmp_path / "imgs" / "target.png")
    with pytest.raises(NeuralignError, match="reserved marker words.*'target'"):
        prepare_plan(_config(tmp_path, BASIC, stimuli={"n_test": 0}), progress=False)


def test_bad_config_values(tmp_path, image_folder):
    with pytest.raises(NeuralignError, match=r"unknown setting\(s\) timing.on_msec"):
        _config(tmp_path, "[timing]\non_msec = 10\n")
    with pytest.raises(NeuralignError, match="timing.on_ms must be float"):
        _config(tmp_path, '[timing]\non_ms = "fast"\n')
    with pytest.raises(NeuralignError, match="not valid TOML"):
        _config(tmp_path, "[timing\n")
    with pytest.raises(NeuralignError, match="config file not found"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(NeuralignError, match="unknown stimulus source"):
        prepare_plan(_config(tmp_path, '[stimuli]\nsource = "zip:x"\n'), progress=False)
    with pytest.raises(NeuralignError, match="stimulus folder not found"):
        prepare_plan(_config(tmp_path, '[stimuli]\nsource = "folder:nowhere"\n'),
                       progress=False)


def test_overrides_parse_toml_values():
    over = parse_overrides(["timing.on_ms=50", "seed=3", "stimuli.source=builtin",
                            "display.background=[0, 0, 0]"])
    assert over == {"timing": {"on_ms": 50}, "seed": 3, "stimuli": {"source": "builtin"},
                    "display": {"background": [0, 0, 0]}}
    cfg = load_config(None, overrides=over)
    assert cfg.timing.on_ms == 50.0
    assert cfg.seed == 3
    assert load_config(None, overrides=parse_overrides([])).to_dict() == \
        load_config(None).to_dict()
    text = dump_toml(cfg)
    assert "on_ms = 50.0" in text


def test_things_folder_roles_from_metadata(tmp_path):
    root = tmp_path / "things"
    meta = {"train_img_files": [], "train_img_concepts": [], "test_img_files": [],
            "test_img_concepts": []}
    for role, sub, n in (("train", "training_images", 4), ("test", "test_images", 2)):
        for i in range(n):
            concept = f"{i + 1:05d}_thing{role}{i}"
            make_images(root / sub / concept, 1, seed=i)
            (root / sub / concept / "img00.png").rename(root / sub / concept / f"{role}{i}_01b.png")
            meta[f"{role}_img_files"].append(f"{role}{i}_01b.png")
            meta[f"{role}_img_concepts"].append(concept)
    np.save(root / "image_metadata.npy", meta, allow_pickle=True)  # the THINGS layout (pickled)
    cfg = _config(tmp_path, f'[stimuli]\nsource = "things:{root}"\ntest_reps = 2\n')
    design = prepare_plan(cfg, progress=False)
    # ids are the file names exactly as image_metadata.npy lists them (the THINGS-EEG2 ids)
    assert design.roles == {"train0_01b.png": "train", "train1_01b.png": "train",
                            "train2_01b.png": "train", "train3_01b.png": "train",
                            "test0_01b.png": "test", "test1_01b.png": "test"}
    with pytest.raises(NeuralignError, match="asks for 3 test images but the source has only 2"):
        prepare_plan(_config(tmp_path, f'[stimuli]\nsource = "things:{root}"\nn_test = 3\n'),
                       progress=False)


def test_feature_source_needs_images_for_every_id(tmp_path, image_folder):
    ids = np.array(["img00", "img01", "img02", "zzz"])
    np.savez(tmp_path / "f.npz", stimulus_ids=ids, layer1=np.ones((4, 3)))
    body = '[stimuli]\nsource = "features:f.npz"\nimages = "imgs"\n'
    with pytest.raises(NeuralignError, match="no image in .*'zzz'"):
        prepare_plan(_config(tmp_path, body), progress=False)
    np.savez(tmp_path / "f.npz", stimulus_ids=ids[:3], layer1=np.ones((3, 3)))
    design = prepare_plan(_config(tmp_path, body), progress=False)
    assert list(design.roles) == ["img00", "img01", "img02"]


def test_builtin_source(tmp_path):
    from neuralign.commands.present import builtin_stimuli

    cfg = load_config(None, overrides={"stimuli": {"source": "builtin", "n_test": 6,
                                                   "train_reps": 1, "test_reps": 2}})
    with pytest.raises(NeuralignError, match="built-in stimulus set is not available"):
        prepare_plan(cfg, progress=False)  # the presenter alone knows no image set
    design = prepare_plan(cfg, builtin=builtin_stimuli, progress=False)
    assert len(design.test_ids) == 6
    assert "astronaut" in design.roles


def test_image_feeder_lookahead_thread_keeps_trial_order(tmp_path, image_folder):
    from neuralign.stimulus.images import ImageFeeder

    design = prepare_plan(_config(tmp_path, BASIC), progress=False)
    preloaded = ImageFeeder(design, design.trials, 32, progress=False)
    threaded = ImageFeeder(design, design.trials, 32, budget_mb=0, lookahead=3, progress=False)
    assert threaded._queue is not None
    assert preloaded._queue is None
    for t in design.trials:
        a, b = preloaded.next(t.stimulus_id), threaded.next(t.stimulus_id)
        assert max(a.size) == 32
        assert np.array_equal(np.asarray(a), np.asarray(b))
    threaded.close()

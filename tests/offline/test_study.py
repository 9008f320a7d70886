"""`neuralign study`: 3 subjects x 3 models from one config to a report, single-process and on
a 2-worker dask LocalCluster with identical results; resumable; bad inputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from neuralign.cli import main
from neuralign.commands.datasets import load_dataset
from neuralign.errors import NeuralignError
from neuralign.offline.study import load_study_config, run_study
from neuralign.sim.study import write_simulated_study


@pytest.fixture(scope="module")
def sim_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    cfg = write_simulated_study(root, n_train=80, n_test=24, layers=(4, 5, 3), snr=0.8)
    return root, cfg


def _run_cli(cfg, out, *extra):
    return main(["study", "--config", str(cfg), "--out", str(out), "--quiet", *extra])


def test_study_single_process_and_dask_identical(sim_study):
    root, cfg = sim_study
    out1, out2 = root / "single", root / "dask"
    assert _run_cli(cfg, out1, "--scheduler", "none") == 0
    for f in ("study.json", "group_maps.npz", "models.csv", "report.html", "group_maps.png",
              "time_courses.png", "scores.png", "varpart_0.png"):
        assert (out1 / f).is_file(), f
    assert _run_cli(cfg, out2, "--scheduler", "local", "--workers", "2") == 0
    run1 = json.loads((out1 / "run.json").read_text())
    run2 = json.loads((out2 / "run.json").read_text())
    assert run1["computed"] == run2["computed"] == 9
    assert "LocalCluster (2 workers" in run2["scheduler"]
    # worker processes (listening on 127.0.0.1): identical too (BLAS pinned to 1 thread per task)
    out3 = root / "dask_processes"
    assert _run_cli(cfg, out3, "--scheduler", "local", "--workers", "2", "--processes") == 0
    assert "processes" in json.loads((out3 / "run.json").read_text())["scheduler"]
    assert json.loads((out3 / "study.json").read_text()) == json.loads(
        (out1 / "study.json").read_text())
    s1 = json.loads((out1 / "study.json").read_text())
    s2 = json.loads((out2 / "study.json").read_text())
    assert s1 == s2
    z1, z2 = np.load(out1 / "group_maps.npz"), np.load(out2 / "group_maps.npz")
    assert sorted(z1.files) == sorted(z2.files)
    for k in z1.files:
        np.testing.assert_array_equal(z1[k], z2[k])
    # per-task maps are bitwise identical too
    for d in (out1 / "cache").glob("sub-*__model*"):
        a = np.load(d / "maps.npz")["encoding_r"]
        b = np.load(out2 / "cache" / d.name / "maps.npz")["encoding_r"]
        np.testing.assert_array_equal(a, b)

    # the planted truth: model0 drives the brains, so it aligns best; its layers peak in order
    pm = s1["per_model"]
    assert pm["model0"]["group"]["peak_r"] > max(pm["model1"]["group"]["peak_r"],
                                                 pm["model2"]["group"]["peak_r"])
    lat = np.array(pm["model0"]["peak_latency_per_layer_s"])
    np.testing.assert_allclose(lat, np.linspace(0.08, 0.30, 4), atol=0.035)
    assert len(s1["comparisons"]) == 3
    assert s1["descriptor_regression"]["warning"].startswith("3 models")
    vp = s1["variance_partitioning"][0]
    assert vp["layer_a"] == pm["model0"]["layers"][pm["model0"]["group"]["peak_layer"]]
    assert set(vp["per_subject"]) == set(s1["subjects"])
    for d in vp["per_subject"].values():  # engine partition: tests and negative counts
        assert 0 < d["p_unique_mean"]["unique_a"] <= 1
        assert set(d["negative_targets"]) == {"unique_a", "unique_b", "shared"}
    assert vp["n_subjects"] == 3
    rows = (out1 / "models.csv").read_text().strip().splitlines()
    assert len(rows) == 4
    assert rows[0].startswith("model,n_layers,peak_r")
    html = (out1 / "report.html").read_text()
    assert "model0" in html
    assert "Variance partitioning" in html


def test_study_resumes_from_cache(sim_study):
    root, cfg_path = sim_study
    cfg = load_study_config(cfg_path)
    cfg.out = root / "resume"
    cfg.cache = cfg.out / "cache"
    first = run_study(cfg, load_dataset=load_dataset, scheduler="none", progress=False,
                      report=False)
    assert first["run"]["computed"] == 9
    again = run_study(cfg, load_dataset=load_dataset, scheduler="local", workers=2,
                      progress=False, report=False)
    assert again["run"]["computed"] == 0
    assert again["run"]["cached"] == 9
    assert again["summary"] == first["summary"]
    shutil.rmtree(cfg.cache / "sub-02__model1")
    third = run_study(cfg, load_dataset=load_dataset, scheduler="none", progress=False,
                      report=False)
    assert third["run"]["computed"] == 1
    assert third["run"]["cached"] == 8
    assert third["summary"] == first["summary"]


def test_unknown_config_keys_are_refused(tmp_path, sim_study, capsys):
    _, cfg = sim_study
    bad = tmp_path / "bad.toml"
    bad.write_text(cfg.read_text().replace("[stats]", "[stats]\nn_perms = 5"))
    with pytest.raises(NeuralignError, match=r"unknown key\(s\) n_perms in \[stats\]; valid keys: "
                                             r"alpha, n_permutations"):
        load_study_config(bad)
    bad.write_text("[study]\nname='x'\n[plots]\nx=1\n")
    assert main(["study", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) plots in the top level; valid keys: study, analysis" in err
    assert "Traceback" not in err


def _copy_subject(src, dst, *, drop_channel=None, crop=None):
    from neuralign.io.safe_pickle import load_npy

    dst.mkdir(parents=True)
    for f in src.glob("preprocessed_eeg_*.npy"):
        d = load_npy(f)
        if drop_channel is not None:
            i = d["ch_names"].index(drop_channel)
            d["preprocessed_eeg_data"] = np.delete(d["preprocessed_eeg_data"], i, axis=2)
            d["ch_names"] = [c for c in d["ch_names"] if c != drop_channel]
        if crop is not None:
            d["preprocessed_eeg_data"] = d["preprocessed_eeg_data"][..., crop]
            d["times"] = np.asarray(d["times"])[crop]
        np.save(dst / f.name, d, allow_pickle=True)


def test_mixed_channels_time_axes_and_missing_stimuli(sim_study, tmp_path):
    root, cfg_path = sim_study
    data = root / "data"
    _copy_subject(data / "sub-03", data / "sub-03-noOz", drop_channel="Oz")
    _copy_subject(data / "sub-03", data / "sub-03-crop", crop=slice(0, 90))
    base = cfg_path.read_text().split("[[subjects]]")[0]
    models = "[[models]]" + cfg_path.read_text().split("[[models]]", 1)[1].split(
        "[[variance_partitioning]]")[0]

    def write(subjects, extra=""):
        p = root / f"cfg_{len(list(root.glob('cfg_*')))}.toml"
        text = base.replace('out = "out"', f'out = "{tmp_path / p.stem}"') + extra
        for s in subjects:
            text += f'\n[[subjects]]\nname = "{s}"\ndataset = "things-eeg2:data/{s}"\n'
        p.write_text(text + "\n" + models)
        return load_study_config(p)

    cfg = write(["sub-01", "sub-03-noOz"])
    res = run_study(cfg, load_dataset=load_dataset, scheduler="none", progress=False, report=False)
    assert res["summary"]["channels"] == [c for c in res["summary"]["channels"] if c != "Oz"]
    assert len(res["summary"]["channels"]) == 16
    assert any("shared channels" in n for n in res["summary"]["notes"])
    cfg_s = write(["sub-01", "sub-03-noOz"])
    cfg_s.channels = "strict"
    with pytest.raises(NeuralignError, match="different channel sets"):
        run_study(cfg_s, load_dataset=load_dataset, scheduler="none", progress=False, report=False)
    cfg_t = write(["sub-01", "sub-03-crop"])
    with pytest.raises(NeuralignError, match="different time axis"):
        run_study(cfg_t, load_dataset=load_dataset, scheduler="none", progress=False, report=False)

    # a feature file that lacks stimuli of the EEG
    from neuralign.io.features import load_features, save_features

    fs = load_features(root / "model1.npz")
    save_features(root / "short.npz", fs.subset(fs.stimulus_ids[5:].tolist()))
    cfg_m = write(["sub-01"])
    cfg_m.models[1].features = str(root / "short.npz")
    with pytest.raises(NeuralignError, match=r"model 'model1' lacks 5 of \d+ stimuli of subject"):
        run_study(cfg_m, load_dataset=load_dataset, scheduler="none", progress=False, report=False)
    with pytest.raises(NeuralignError, match="lacks 5"):
        run_study(cfg_m, load_dataset=load_dataset, scheduler="local", workers=2, progress=False, report=False)


def test_single_subject_label_permutation(sim_study, tmp_path):
    root, cfg_path = sim_study
    cfg = load_study_config(cfg_path)
    cfg.subjects = cfg.subjects[:1]
    cfg.models = cfg.models[:1]
    cfg.varpart = []
    cfg.stats["subject_permutations"] = 39
    cfg.out = tmp_path / "one"
    cfg.cache = cfg.out / "cache"
    res = run_study(cfg, load_dataset=load_dataset, scheduler="none", progress=False, report=True)
    lp = res["summary"]["per_model"]["model0"]["label_permutation"]["sub-01"]
    assert lp["n_permutations"] == 39
    # the planted alignment beats every permuted-label map: p = 1/40
    assert min(lp["cluster_p"]) == pytest.approx(1 / 40)
    assert lp["significant"]
    assert "note" in res["summary"]["per_model"]["model0"]["stats"]


def test_variance_partitioning_recovers_unique_and_shared():
    from neuralign.base import EpochData
    from neuralign.offline.varpart import variance_partition

    rng = np.random.default_rng(0)
    n, c, t = 300, 3, 4
    ids = [f"s{i:03d}" for i in range(n)]
    shared = rng.standard_normal((n, 4))
    only_a = rng.standard_normal((n, 4))
    a = np.hstack([shared, only_a])
    b = np.hstack([shared, rng.standard_normal((n, 4))])
    # targets: channel 0 driven by the shared part, channel 1 by A's own part, channel 2 noise
    y = np.zeros((n, c, t))
    y[:, 0] = shared @ rng.standard_normal((4, t))
    y[:, 1] = only_a @ rng.standard_normal((4, t))
    reps = 2
    epochs = np.repeat(y, reps, axis=0) + 0.5 * rng.standard_normal((n * reps, c, t))
    data = EpochData(epochs=epochs, stimulus_ids=np.repeat(ids, reps), times=np.arange(t) / 100,
                     ch_names=["a", "b", "c"], test_ids=ids[:80])
    vp = variance_partition(data, a, b, stimulus_ids=ids, n_boot=100, n_perm=100)
    np.testing.assert_allclose(vp["unique_a"] + vp["shared"], vp["r2_a"], atol=1e-12)
    np.testing.assert_allclose(vp["unique_b"] + vp["shared"], vp["r2_b"], atol=1e-12)
    assert vp["shared"][0].mean() > 0.5
    assert abs(vp["unique_a"][0].mean()) < 0.05
    assert vp["unique_a"][1].mean() > 0.5
    assert abs(vp["shared"][1].mean()) < 0.05
    assert abs(vp["unique_b"][1].mean()) < 0.05
    assert vp["r2_ab"][2].mean() < 0.05
    # the engine's banded ridge with its tests: A's own part is significant, B's is not
    assert vp["p_mean_unique_a"] < 0.05
    assert vp["p_mean_unique_b"] > 0.05
    assert (vp["p_unique_a"][1] <= 0.05).all()
    assert vp["ci_unique_a"].shape == (2, t)
    assert int(vp["negative_unique_b"]) == int((vp["unique_b"] < 0).sum())


def test_study_partition_is_the_engines():
    """The study's partition of one subject = align.partition on engines fed the same epochs
    (same folds, same alphas chosen per target, same banded ridge)."""
    from neuralign.align import AlignmentEngine
    from neuralign.align.partition import variance_partition as engine_partition
    from neuralign.base import EpochData, FeatureSet
    from neuralign.offline.varpart import variance_partition

    rng = np.random.default_rng(1)
    n, c, t = 120, 2, 3
    ids = [f"s{i:03d}" for i in range(n)]
    a, b = rng.standard_normal((n, 5)), rng.standard_normal((n, 3))
    y = np.einsum("nd,dct->nct", a[:, :2], rng.standard_normal((2, c, t)))
    epochs = np.repeat(y, 2, axis=0) + rng.standard_normal((2 * n, c, t))
    data = EpochData(epochs=epochs, stimulus_ids=np.repeat(ids, 2), times=np.arange(t) / 100,
                     ch_names=["x", "y"])  # no test set: the engine's folds
    vp = variance_partition(data, a, b, stimulus_ids=ids, n_folds=4, n_boot=50, n_perm=50,
                            seed=3)
    engs = {}
    for label, x in (("A", a), ("B", b)):
        eng = AlignmentEngine(FeatureSet(np.array(ids), [label], [x]), times=data.times,
                              ch_names=data.ch_names, n_folds=4)
        eng.add_epochs(data.stimulus_ids, data.epochs)
        eng.refresh()
        engs[label] = eng
    ref = engine_partition(engs, {"A": 0, "B": 0}, n_boot=50, n_perm=50, seed=3)
    np.testing.assert_allclose(vp["r2_ab"].ravel(), ref.r2["A+B"], atol=1e-10)
    np.testing.assert_allclose(vp["unique_b"].ravel(), ref.parts["unique B"], atol=1e-10)
    np.testing.assert_allclose(vp["p_unique_a"].ravel(), ref.p_unique["unique A"])

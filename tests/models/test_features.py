"""Stimulus sources, feature extraction with ONNX Runtime, and the feature cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuralign.cli import main
from neuralign.errors import NeuralignError
from neuralign.io.cache_reader import load_cache_dir
from neuralign.io.feature_cache import is_cache_dir
from neuralign.io.features import load_features
from neuralign.models.extract import extract_features
from neuralign.models.stimuli import (
    builtin_ids,
    builtin_stimuli,
    folder_set,
    write_builtin_stimuli,
)


def test_builtin_stimuli_are_stable_real_images(tmp_path):
    ids = builtin_ids()
    assert len(ids) == len(set(ids)) == 102
    assert ids[:3] == ["astronaut", "astronaut_tl", "astronaut_tr"]
    items = builtin_stimuli()
    assert [i for i, _ in items] == ids
    assert items[0][1].size == (512, 512)
    assert items[0][1].mode == "RGB"
    paths = write_builtin_stimuli(tmp_path / "b")
    assert len(paths) == 102
    assert paths[0].name == "astronaut.png"


def test_folder_skips_unreadable_files(image_folder):
    (image_folder / "broken.jpg").write_bytes(b"not a jpeg")
    (image_folder / "notes.bin").write_bytes(b"\x00\x01")
    s = folder_set(image_folder)
    assert len(s.stimuli) == 8
    assert sorted(p.split("/")[-1] for p, _ in s.skipped) == ["broken.jpg", "notes.bin"]


def test_cache_reuse_and_invalidation(hf_export, image_folder, tmp_path, capsys):
    _, spec = hf_export("vit")
    out = tmp_path / "feat"
    [r1] = extract_features(spec, str(image_folder), out, batch_size=3, progress=False)
    assert not r1.reused
    assert r1.n_stimuli == 8
    assert is_cache_dir(out)
    fs = load_features(out)  # the io dispatch accepts caches
    assert fs.layers == ("vision.00", "vision.01")
    assert fs.arrays[0].shape == (8, 32)
    assert fs.provenance["pooling"] == "cls"
    assert fs.provenance["stages"] == {"vision.00": "vision", "vision.01": "vision"}
    [r2] = extract_features(spec, str(image_folder), out, progress=False)
    assert r2.reused
    # change one image: loading the old cache is refused, re-running recomputes
    from PIL import Image

    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(image_folder / "astronaut.png")
    with pytest.raises(NeuralignError, match="stale: 1 image"):
        load_cache_dir(out)
    [r3] = extract_features(spec, str(image_folder), out, progress=False)
    assert not r3.reused
    assert "1 image(s) changed" in r3.stale_reason
    fs3 = load_cache_dir(out)
    i = list(fs3.stimulus_ids).index("astronaut")
    assert not np.allclose(fs3.arrays[0][i], fs.arrays[0][i])
    j = list(fs3.stimulus_ids).index("chelsea")
    np.testing.assert_allclose(fs3.arrays[0][j], fs.arrays[0][j], atol=1e-6)


def test_tampered_cache_refused(hf_export, image_folder, tmp_path):
    _, spec = hf_export("vit")
    out = tmp_path / "feat"
    extract_features(spec, str(image_folder), out, progress=False)
    a = np.load(out / "layer_000.npy", mmap_mode="r+")
    a[0, 0] += 1.0
    a.flush()
    del a
    with pytest.raises(NeuralignError, match="does not match its recorded hash"):
        load_cache_dir(out)


def test_pooling_option_recorded(hf_export, image_folder, tmp_path):
    _, spec = hf_export("llava")
    [r] = extract_features(spec, str(image_folder), tmp_path, pooling="mean", progress=False)
    fs = load_cache_dir(r.path)
    prov = fs.provenance
    assert prov["pooling"] == "mean"
    assert r.path.name == "llava_mean_stim"
    assert prov["pooling_per_layer"] == {"vision.00": "mean", "vision.01": "mean",
                                         "projector": "mean", "llm.00": "mean",
                                         "llm.01": "mean"}
    [r2] = extract_features(spec, str(image_folder), tmp_path, progress=False)
    assert load_cache_dir(r2.path).provenance["pooling_per_layer"]["llm.01"] == "last"
    [r3] = extract_features(spec, str(image_folder), tmp_path, pooling="all", progress=False)
    per = load_cache_dir(r3.path).provenance["pooling_per_layer"]
    assert per == {"vision.00": "cls", "vision.01": "cls", "projector": "mean",
                   "llm.00": "all", "llm.01": "all"}
    with pytest.raises(NeuralignError, match="offers pooling"):
        extract_features(hf_export("siglip_vision")[1], str(image_folder), tmp_path,
                         pooling="cls", progress=False)


def test_pca_fit_on_training_stimuli_only(hf_export, tmp_path):
    """THINGS layout: PCA fit on the metadata's training images, equal to sklearn's."""
    from PIL import Image
    from sklearn.decomposition import PCA

    from neuralign.models.stimuli import builtin_arrays

    _, spec = hf_export("dinov2")
    root = tmp_path / "things"
    (root / "training_images" / "a").mkdir(parents=True)
    (root / "test_images" / "b").mkdir(parents=True)
    arrays = list(builtin_arrays())[:12]
    train, test = [], []
    for k, (sid, a) in enumerate(arrays):
        sub = "test_images/b" if k % 4 == 0 else "training_images/a"
        Image.fromarray(a).save(root / sub / f"{sid}.jpg", quality=95)
        (test if k % 4 == 0 else train).append(f"{sid}.jpg")
    np.save(root / "image_metadata.npy",
            {"train_img_files": np.array(train), "test_img_files": np.array(test)},
            allow_pickle=True)
    raw = load_cache_dir(extract_features(spec, str(root), tmp_path / "raw",
                                          progress=False)[0].path)
    red = load_cache_dir(extract_features(spec, str(root), tmp_path / "pca", pca=3,
                                          progress=False)[0].path)
    assert red.provenance["test_ids"] == test
    assert set(red.stimulus_ids) == set(train + test)
    is_train = np.array([s not in set(red.provenance["test_ids"]) for s in raw.stimulus_ids])
    ref = PCA(n_components=3, svd_solver="full").fit(raw.arrays[1][is_train].astype(np.float64))
    proj = ref.transform(raw.arrays[1].astype(np.float64))
    # components are defined up to sign
    signs = np.sign((proj * red.arrays[1]).sum(axis=0))
    np.testing.assert_allclose(red.arrays[1], proj * signs, atol=1e-3)
    assert np.load(tmp_path / "pca" / "pca_components_001.npy").shape == (3, 32)
    assert not (tmp_path / "pca.raw").exists()  # the raw features are removed after PCA


def test_cli_features_builtin_mobilenet(tmp_path, capsys, mobilenet_spec):
    out = tmp_path / "mb"
    assert main(["features", "--model", "mobilenet_v2", "--stimuli", "builtin",
                 "--out", str(out), "--no-progress"]) == 0
    assert "102 stimuli x 20 layers" in capsys.readouterr().out
    fs = load_features(out)
    assert fs.dims[-1] == 1000
    assert fs.dims[0] == 32
    assert main(["features", "--model", "mobilenet_v2", "--stimuli", "builtin",
                 "--out", str(out), "--no-progress"]) == 0
    assert "reused" in capsys.readouterr().out


def test_cli_features_vit_s14_focus(tmp_path, capsys, image_folder, focus_spec):
    assert main(["features", "--model", "vit_s14_focus", "--stimuli", str(image_folder),
                 "--out", str(tmp_path), "--no-progress", "--batch-size", "4"]) == 0
    fs = load_features(tmp_path / "vit_s14_focus_cls_stim")
    assert fs.n_layers == 12
    assert fs.dims == (384,) * 12


def test_cli_bad_inputs(tmp_path, capsys, hf_export, image_folder):
    import onnx
    from onnx import TensorProto, helper

    def err_of(argv):
        assert main(argv) == 2
        e = capsys.readouterr().err.strip()
        assert len(e.splitlines()) == 1, e
        return e

    model_dir, _ = hf_export("vit")
    assert "export it first" in err_of(["features", "--model", str(model_dir),
                                        "--stimuli", "builtin", "--out", str(tmp_path)])
    # an ONNX file without an image input
    g = helper.make_graph([helper.make_node("Add", ["a", "b"], ["c"])], "g",
                          [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 4]),
                           helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1, 4])])
    bad = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(g), str(bad))
    assert "expected" in err_of(["features", "--model", str(bad), "--stimuli", "builtin",
                                 "--out", str(tmp_path)])
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.png").write_bytes(b"junk")
    assert "no readable images" in err_of(["features", "--model", "mobilenet_v2", "--stimuli",
                                           str(tmp_path / "junk"), "--out", str(tmp_path)])
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert "not supported" in err_of(["models", "export", str(tmp_path), "--out",
                                      str(tmp_path / "o")])
    notcache = tmp_path / "x.npz"
    np.savez(notcache, a=np.zeros(3))
    assert "give --out without .npz" in err_of(["features", "--model", "mobilenet_v2",
                                                "--stimuli", str(image_folder), "--out",
                                                str(notcache)])
    assert "--batch-size" in err_of(["features", "--model", "mobilenet_v2", "--stimuli",
                                     str(image_folder), "--out", str(tmp_path / "c"),
                                     "--batch-size", "x"])
    assert "unknown stage" in err_of(["features", "--model", "mobilenet_v2", "--stimuli",
                                      str(image_folder), "--out", str(tmp_path / "c"),
                                      "--stages", "vision,brain"])


def test_changed_model_invalidates_cache(hf_export, image_folder, tmp_path):
    import shutil

    _, vit = hf_export("vit")
    _, dino = hf_export("dinov2")
    plain = tmp_path / "plain"
    plain.mkdir()
    onnx_file = plain / "m.onnx"
    shutil.copy(vit.root / "model.onnx", onnx_file)
    out = tmp_path / "c"
    [r1] = extract_features(str(onnx_file), str(image_folder), out, progress=False)
    assert r1.n_layers == 4  # a plain ONNX file: every output is a layer
    shutil.copy(dino.root / "model.onnx", onnx_file)
    with pytest.raises(NeuralignError, match="stale: model file"):
        load_cache_dir(out)
    [r2] = extract_features(str(onnx_file), str(image_folder), out, progress=False)
    assert not r2.reused
    assert r2.stale_reason == "the model file changed"
    # an exported model folder whose graph was modified after export is refused
    exported = tmp_path / "exp"
    shutil.copytree(vit.root, exported)
    shutil.copy(dino.root / "model.onnx", exported / "model.onnx")
    with pytest.raises(NeuralignError, match="does not match the hash recorded"):
        extract_features(str(exported), str(image_folder), tmp_path / "d", progress=False)

"""Built-in models (weights from installed packages), the registry and `neuralign models`."""

from __future__ import annotations

import numpy as np
import pytest

from neuralign.cli import main
from neuralign.errors import NeuralignError
from neuralign.models import builtin
from neuralign.models.runtime import LayerRunner


def test_models_list_shows_families_and_builtins(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("mobilenet_v2", "vit_s14_focus", "vit", "clip_vision", "siglip_vision",
                 "dinov2", "llava", "qwen2_vl", "internvl"):
        assert name in out
    assert "fine-tuned for saliency" in out


def test_mobilenet_export_matches_torch_and_classifies(mobilenet_spec):
    import torch

    spec = mobilenet_spec
    assert spec.layer_names == [f"features.{i:02d}" for i in range(19)] + ["classifier"]
    assert spec.verification["max_abs_diff"] <= 1e-4
    net = builtin.load_mobilenet_torch()
    from neuralign.models.preprocess import preprocess
    from neuralign.models.stimuli import builtin_arrays

    arrays = dict(builtin_arrays())
    x = np.stack([preprocess(arrays[k], spec.preprocessing) for k in ("chelsea", "coffee")])
    got = LayerRunner(spec, providers=["CPUExecutionProvider"]).run(x, spec.resolve_pooling(None))
    with torch.no_grad():
        logits = net(torch.from_numpy(x)).numpy()
        f0 = net.features[0](torch.from_numpy(x)).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(got["classifier"], logits, atol=1e-4, rtol=0)
    np.testing.assert_allclose(got["features.00"], f0, atol=1e-4, rtol=0)
    # real ImageNet weights: the cat photo is a cat (281-285), the coffee photo a cup/espresso
    assert set(np.argsort(logits[0])[-3:]) & {281, 282, 283, 284, 285}
    assert set(np.argsort(logits[1])[-3:]) & {967, 968}


def test_vit_s14_focus_block_outputs(focus_spec):
    spec = focus_spec
    assert spec.layer_names == [f"vision.{i:02d}" for i in range(12)]
    assert spec.verification["max_abs_diff"] <= 1e-4
    assert "saliency" in spec.notes
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    got = LayerRunner(spec, providers=["CPUExecutionProvider"]).run(x, spec.resolve_pooling("mean"))
    assert all(got[n].shape == (2, 384) for n in spec.layer_names)


def test_builtin_is_cached_and_hash_checked(mobilenet_spec, tmp_path):
    again = builtin.build_mobilenet_v2()
    assert again.graphs[0]["sha256"] == mobilenet_spec.graphs[0]["sha256"]
    bad = dict(builtin.MOBILENET, sha256="0" * 64)
    with pytest.raises(NeuralignError, match="does not match the expected"):
        builtin.package_file(bad)
    missing = dict(builtin.MOBILENET, package="no_such_package_xyz")
    with pytest.raises(NeuralignError, match="is not installed"):
        builtin.package_file(missing)


def test_unknown_model_lists_known(capsys, tmp_path):
    assert main(["features", "--model", "resnet9000", "--stimuli", "builtin",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "mobilenet_v2" in err
    assert "vit_s14_focus" in err
    assert len(err.strip().splitlines()) == 1

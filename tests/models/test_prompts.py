"""Prompts as an input of one export, caption (text) features, stage selection."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from neuralign.cli import main
from neuralign.errors import NeuralignError
from neuralign.io.cache_reader import load_cache_dir
from neuralign.models.extract import extract_features
from neuralign.models.prompts import Prompt, gather_prompts, read_prompts_file

from . import tiny


def test_two_prompts_one_export_two_labelled_feature_sets(hf_export, image_folder, tmp_path):
    _, spec = hf_export("llava")
    prompts = [Prompt("describe", "Describe the image"), Prompt("count", "count objects")]
    res = extract_features(spec, str(image_folder), tmp_path / "f", prompts=prompts,
                           batch_size=4, progress=False)
    assert [r.label for r in res] == ["describe", "count"]
    assert [r.path.name for r in res] == ["llava_last_stim_p-describe", "llava_last_stim_p-count"]
    a, b = (load_cache_dir(r.path) for r in res)
    assert a.layers == b.layers == ("vision.00", "vision.01", "projector", "llm.00", "llm.01")
    for name in ("vision.00", "vision.01", "projector"):
        np.testing.assert_array_equal(a.arrays[a.layers.index(name)], b.arrays[b.layers.index(name)])
    for name in ("llm.00", "llm.01"):
        assert not np.allclose(a.arrays[a.layers.index(name)], b.arrays[b.layers.index(name)])
    assert a.provenance["prompt"]["label"] == "describe"
    assert a.provenance["prompt"]["text"] == "Describe the image"
    assert a.provenance["prompt"]["ids"][:2] == [1, tiny.tokenizer("llava").convert_tokens_to_ids("USER:")]
    assert a.provenance["pooling_per_layer"]["llm.00"] == "last"
    # the same call again reuses both
    again = extract_features(spec, str(image_folder), tmp_path / "f", prompts=prompts,
                             progress=False)
    assert all(r.reused for r in again)


def test_prompts_file_and_cli(hf_export, image_folder, tmp_path, capsys):
    _, spec = hf_export("qwen2_vl")
    pf = tmp_path / "prompts.tsv"
    pf.write_text("# action vs reasoning prompts\naction\tWhat is the person doing ?\n"
                  "what is shown here\n")
    prompts = read_prompts_file(pf)
    assert prompts == [Prompt("action", "What is the person doing ?"),
                       Prompt("what-is-shown-here", "what is shown here")]
    out = tmp_path / "q"
    assert main(["features", "--model", str(spec.root), "--stimuli", str(image_folder),
                 "--out", str(out), "--prompts", str(pf), "--prompt", "Describe the image",
                 "--no-progress", "--batch-size", "3"]) == 0
    text = capsys.readouterr().out
    assert "[action]" in text
    assert "[describe-the-image]" in text
    names = sorted(p.name for p in out.iterdir())
    assert names == ["qwen2_vl_last_stim_p-action", "qwen2_vl_last_stim_p-describe-the-image",
                     "qwen2_vl_last_stim_p-what-is-shown-here"]
    fs = load_cache_dir(out / names[0])
    assert fs.n_stimuli == 8
    assert fs.dims[-1] == 32


@pytest.mark.parametrize(("content", "match"), [
    ("", "no prompts in the file"),
    ("a\t\n", "label 'a' has no prompt text"),
    ("x\tone\nx\ttwo\n", "duplicate prompt labels"),
])
def test_bad_prompts_files(tmp_path, content, match, capsys):
    pf = tmp_path / "p.txt"
    pf.write_text(content)
    with pytest.raises(NeuralignError, match=match) as ei:
        gather_prompts(None, pf)
    assert str(pf) in str(ei.value)
    assert main(["features", "--model", "any", "--stimuli", "builtin", "--out",
                 str(tmp_path / "o"), "--prompts", str(pf)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"neuralign: error: {pf}: ")
    (tmp_path / "p.json").write_text(json.dumps(["not", "an", "object"]))
    with pytest.raises(NeuralignError, match="must be an object"):
        read_prompts_file(tmp_path / "p.json")


def test_missing_tokenizer_is_a_clear_error(hf_export, image_folder, tmp_path, capsys):
    from neuralign.models.hf import export_hf

    model_dir, _ = hf_export("llava")
    bare = tmp_path / "bare"
    shutil.copytree(model_dir, bare, ignore=shutil.ignore_patterns("tokenizer*", "special*"))
    spec = export_hf(bare, tmp_path / "exp")
    assert spec.info["tokenizer"] is None
    assert main(["features", "--model", str(spec.root), "--stimuli", str(image_folder),
                 "--out", str(tmp_path / "o"), "--prompt", "hello"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"neuralign: error: {spec.root}: no tokenizer")
    # the stages that need no text still work
    [r] = extract_features(spec, str(image_folder), tmp_path / "v", stages=["vision", "projector"],
                           progress=False)
    assert load_cache_dir(r.path).layers == ("vision.00", "vision.01", "projector")
    with pytest.raises(NeuralignError, match="no layer of model 'vit'.*reads a prompt"):
        extract_features(hf_export("vit")[1], str(image_folder), tmp_path / "x",
                         prompts=[Prompt("p", "hi")], progress=False)
    with pytest.raises(NeuralignError, match="has the stages vision, projector, llm"):
        extract_features(spec, str(image_folder), tmp_path / "x", stages=["text"],
                         progress=False)


def test_caption_features_clip_text_tower(hf_export, tmp_path):
    """Concept names of the built-in set through CLIP's text tower: one row per stimulus,
    equal rows for stimuli of the same concept, equal to the tower run on the caption."""
    import torch

    _, spec = hf_export("clip")
    [r] = extract_features(spec, "builtin", tmp_path / "t", text="concepts",
                           text_template="a photo of a {text}", progress=False)
    fs = load_cache_dir(r.path)
    assert fs.layers == ("text.00", "text.01", "embed.text")
    assert fs.n_stimuli == 102
    assert fs.provenance["text"]["template"] == "a photo of a {text}"
    i, j = fs.index["astronaut"], fs.index["astronaut_tl"]
    np.testing.assert_array_equal(fs.arrays[2][i], fs.arrays[2][j])
    assert not np.allclose(fs.arrays[2][i], fs.arrays[2][fs.index["coffee"]])
    ids = torch.tensor([tiny.tokenizer("clip")("a photo of a astronaut")["input_ids"]])
    assert ids[0, 0] == 1
    assert ids[0, -1] == 3
    model = tiny.build("clip").eval()
    with torch.no_grad():
        ref = model.get_text_features(input_ids=ids)
    ref = getattr(ref, "pooler_output", ref)
    np.testing.assert_allclose(fs.arrays[2][i], ref[0].numpy(), atol=1e-4)


def test_caption_features_of_an_lvlm_and_a_captions_file(hf_export, image_folder, tmp_path):
    _, spec = hf_export("llava")
    caps = tmp_path / "caps.tsv"
    lines = [f"{p.stem}\tphoto of a cat" if k % 2 else f"{p.stem}\tphoto of a dog"
             for k, p in enumerate(sorted(image_folder.glob("*.png")))]
    caps.write_text("\n".join(lines) + "\n")
    [r] = extract_features(spec, str(image_folder), tmp_path / "o", text=str(caps),
                           pooling="mean", progress=False)
    fs = load_cache_dir(r.path)
    assert fs.layers == ("llm.00", "llm.01")
    assert fs.provenance["pooling_per_layer"] == {"llm.00": "all", "llm.01": "all"}
    assert len({tuple(np.round(row, 5)) for row in np.asarray(fs.arrays[1])}) == 2
    caps.write_text(lines[0] + "\n")
    with pytest.raises(NeuralignError, match="7 stimulus id"):
        extract_features(spec, str(image_folder), tmp_path / "o2", text=str(caps),
                         progress=False)
    with pytest.raises(NeuralignError, match="no concept names"):
        extract_features(spec, str(image_folder), tmp_path / "o3", text="concepts",
                         progress=False)


@pytest.mark.parametrize("family", ["idefics3", "blip2", "llava_next"])
def test_lvlm_features_end_to_end(hf_export, image_folder, tmp_path, family):
    """Feature extraction through the torch-eager vision part (Idefics3), the Q-Former stage
    (BLIP-2) and anyres tiles (LLaVA-NeXT)."""
    _, spec = hf_export(family)
    [r] = extract_features(spec, str(image_folder), tmp_path / "o", batch_size=3,
                           progress=False)
    fs = load_cache_dir(r.path)
    assert fs.layers == tuple(spec.layer_names)
    assert fs.n_stimuli == 8
    if family == "idefics3":
        assert "torch" in r.providers
    assert set(fs.provenance["stages"].values()) == set(spec.stages())


def test_models_list_shows_families_and_stages(capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for fam in ("qwen2_5_vl", "llava_next", "llava_onevision", "paligemma", "idefics3",
                "smolvlm", "blip2", "internvl", "clip", "siglip"):
        assert f"  {fam} [" in out
    assert "qformer.NN" in out
    assert "projector" in out
    assert "embed.text" in out
    assert main(["models", "list", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert "llm" in d["families"]["paligemma"]["stages"]

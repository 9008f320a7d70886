"""``neuralign analyze`` statistics end to end: intervals, the family-wise mask, the hierarchy
test, the stat cache, several feature sets ranked, variance partitioning, bad options."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuralign.base import FeatureSet
from neuralign.cli import main
from neuralign.io.features import load_features, save_features


def _run(root, out, *extra, features=None):
    feats = features or ["--features", str(root / "features.npz")]
    return main(["analyze", "--dataset", f"things-eeg2:{root / 'sub-01'}", *feats,
                 "--out", str(out), "--folds", "3", *extra])


@pytest.fixture(scope="module")
def random_npz(tiny_sim, tmp_path_factory):
    """Features of the tiny subject's stimuli that drive nothing (same shapes)."""
    fs = load_features(tiny_sim / "features.npz")
    rng = np.random.default_rng(123)
    arrays = tuple(rng.standard_normal(np.shape(a)).astype(np.float32) for a in fs.arrays)
    path = tmp_path_factory.mktemp("random") / "random.npz"
    save_features(path, FeatureSet(fs.stimulus_ids, fs.layers, arrays))
    return path


def test_statistics_in_results_json_npz_and_report(tiny_sim, tmp_path, capsys):
    out = tmp_path / "res"
    rc = _run(tiny_sim, out, "--permutations", "199", "--bootstrap", "300", "--seed", "3")
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    res = json.loads((out / "results.json").read_text())
    st = res["statistics"]
    assert st["options"] == {"n_permutations": 199, "n_bootstrap": 300, "seed": 3,
                             "alpha": 0.05}
    assert [r["layer"] for r in st["layers"]] == res["layers"]
    z = np.load(out / "significance.npz", allow_pickle=False)
    assert z["mask"].shape == (3, 100)
    assert z["p"].shape == (3, 100)
    # the mask is exactly the cells whose corrected p reaches alpha
    np.testing.assert_array_equal(z["mask"], np.nan_to_num(z["p"], nan=1.0) <= 0.05)
    for i, row in enumerate(st["layers"]):
        # the peak is the maps' own peak, inside its bootstrap interval
        assert row["peak_r"] == pytest.approx(res["encoding"]["peak_r"][i])
        assert row["peak_latency_s"] == pytest.approx(res["encoding"]["peak_latency_s"][i])
        lo, hi = row["peak_r_ci"]
        assert lo <= row["peak_r"] <= hi
        assert row["significant"] == bool(z["mask"][i].any())
        assert row["min_p"] >= 1 / 200
    # the planted subject's layers are above chance and the hierarchy was tested on them
    assert st["mask"]["n_significant_layers"] >= 2
    h = st["hierarchy"]
    assert h["layers"] == [i for i, r in enumerate(st["layers"]) if r["significant"]]
    assert "12 scored stimuli" in " ".join(res["notes"])
    for name in ("encoding_r_significance.png", "peak_intervals.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    html = (out / "report.html").read_text()
    assert "Peak intervals" in html
    assert "layers significant (family-wise alpha 0.05, 199 permutations)" in html
    assert "peak r 95% CI" in cap.out
    assert "layers significant" in cap.out


def test_random_features_say_nothing_is_significant(tiny_sim, random_npz, tmp_path, capsys):
    out = tmp_path / "res"
    rc = _run(tiny_sim, out, "--permutations", "199", "--bootstrap", "100",
              features=["--features", str(random_npz)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    st = json.loads((out / "results.json").read_text())["statistics"]
    assert st["mask"]["n_significant_layers"] == 0
    assert "no layer significant" in cap.out
    assert "the latency hierarchy is not interpretable" in cap.out
    assert np.isnan(st["hierarchy"]["rho"] if st["hierarchy"]["rho"] is not None else np.nan)


def test_cache_reuses_the_null_and_keys_on_options(tiny_sim, tmp_path, capsys, monkeypatch):
    import neuralign.offline.analysis as analysis

    cache = tmp_path / "cache"
    args = ("--permutations", "99", "--bootstrap", "50", "--cache", str(cache))
    assert _run(tiny_sim, tmp_path / "a", *args) == 0
    first = json.loads((tmp_path / "a" / "results.json").read_text())
    assert first["statistics_cache"]["written"]
    assert not first["statistics_cache"]["read"]

    def boom(*a, **k):
        raise AssertionError("the permutation null was recomputed")

    monkeypatch.setattr(analysis, "permutation_mask", boom)
    monkeypatch.setattr(analysis, "bootstrap_peaks", boom)
    # the same data, the same features (copied elsewhere: the key is the content), options
    copy = tmp_path / "copy.npz"
    copy.write_bytes((tiny_sim / "features.npz").read_bytes())
    assert _run(tiny_sim, tmp_path / "b", *args,
                features=["--features", f"features={copy}"]) == 0
    second = json.loads((tmp_path / "b" / "results.json").read_text())
    assert second["statistics_cache"]["read"]
    assert not second["statistics_cache"]["written"]
    assert second["statistics"] == first["statistics"]
    np.testing.assert_array_equal(np.load(tmp_path / "a" / "significance.npz")["p"],
                                  np.load(tmp_path / "b" / "significance.npz")["p"])
    # another seed is another null: recomputed (and here refused by the patched function)
    capsys.readouterr()
    with pytest.raises(AssertionError, match="recomputed"):
        _run(tiny_sim, tmp_path / "c", *args, "--seed", "1")
    # --no-cache never reads
    with pytest.raises(AssertionError, match="recomputed"):
        _run(tiny_sim, tmp_path / "d", *args, "--no-cache")


def test_no_statistics_when_disabled(tiny_sim, tmp_path, capsys):
    rc = _run(tiny_sim, tmp_path / "o", "--permutations", "0", "--bootstrap", "0", "--no-cache")
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    st = json.loads((tmp_path / "o" / "results.json").read_text())["statistics"]
    assert "mask" not in st
    assert all(r["peak_r_ci"] == [None, None] for r in st["layers"])
    assert "no permutation test" in cap.out


def test_several_feature_sets_are_ranked(tiny_sim, random_npz, tmp_path, capsys):
    out = tmp_path / "cmp"
    rc = _run(tiny_sim, out, "--permutations", "99", "--bootstrap", "200",
              features=["--features", f"model={tiny_sim / 'features.npz'}",
                        "--features", str(random_npz), "--features", f"again={random_npz}"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    top = json.loads((out / "results.json").read_text())
    assert set(top["feature_sets"]) == {"model", "random", "again"}
    for label in ("model", "random", "again"):
        res = json.loads((out / label / "results.json").read_text())
        assert res["statistics"]["layers"]
        assert (out / label / "significance.npz").exists()
    rk = top["ranking"]
    assert [m["label"] for m in rk["models"]][0] == "model"
    # the same features under two labels: the same peak, no difference
    peaks = {m["label"]: m["peak_r"] for m in rk["models"]}
    assert peaks["random"] == pytest.approx(peaks["again"])
    comp = next(c for c in rk["comparisons"] if c["worse"] == "random")
    assert comp["better"] == "model"
    assert comp["diff"] > 0
    assert comp["n_stimuli"] == 12
    assert (out / "ranking.png").exists()
    assert (out / "report.html").exists()
    assert "ranking: model vs random" in cap.out


@pytest.fixture(scope="module")
def pair_sim(tmp_path_factory):
    """A subject driven by a planted pair: A at 100 ms, B at 300 ms, 4 shared dimensions."""
    from neuralign.sim.calibration import planted_pair, stimulus_ids
    from neuralign.sim.dataset import write_things_eeg2

    root = tmp_path_factory.mktemp("pair")
    tr, te = stimulus_ids(160, 40)
    a, b, drive = planted_pair(tr + te, seed=1)
    write_things_eeg2(root, n_train=160, n_test=40, train_reps=2, test_reps=8,
                      features=drive, seed=1,
                      brain_kw={"snr": 0.5, "peak_latencies": [0.1, 0.3]})
    save_features(root / "a.npz", a)
    save_features(root / "b.npz", b)
    return root


def test_partition_of_a_planted_pair(pair_sim, tmp_path, capsys):
    out = tmp_path / "part"
    rc = _run(pair_sim, out, "--permutations", "199", "--bootstrap", "200", "--partition",
              features=["--features", f"A={pair_sim / 'a.npz'}",
                        "--features", f"B={pair_sim / 'b.npz'}"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    part = json.loads((out / "results.json").read_text())["partition"]
    assert part["labels"] == ["A", "B"]
    assert part["layers"] == {"A": "A", "B": "B"}
    assert set(part["parts_mean"]) == {"unique A", "unique B", "shared"}
    assert set(part["negative_targets"]) == set(part["parts_mean"])
    z = np.load(out / "partition.npz", allow_pickle=False)
    times = z["times"]
    assert z["parts/unique A"].shape == (17, times.size)
    assert z["ci/unique A"].shape == (2, 17, times.size)
    early, late = np.argmin(abs(times - 0.1)), np.argmin(abs(times - 0.3))
    ua, ub = z["parts/unique A"].mean(0), z["parts/unique B"].mean(0)
    assert ua[early] > 0.05
    assert ua[early] > ub[early]
    assert ub[late] > 0.05
    assert ub[late] > ua[late]
    # where each unique part is significant: around its own latency
    sig_a = times[(z["p_unique/unique A"] <= 0.05).any(0)]
    sig_b = times[(z["p_unique/unique B"] <= 0.05).any(0)]
    assert sig_a.size
    assert sig_b.size
    assert np.all(abs(sig_a - 0.1) < abs(sig_a - 0.3))
    assert np.all(abs(sig_b - 0.3) < abs(sig_b - 0.1))
    assert (out / "partition.png").exists()
    assert "partition: unique A" in cap.out
    assert "above chance" in cap.out
    if any(part["negative_targets"].values()):
        assert "NEGATIVE" in cap.out


def test_rsa_of_a_one_dimensional_layer_is_nan_with_a_note(tiny_sim, tmp_path, capsys):
    fs = load_features(tiny_sim / "features.npz")
    arrays = (np.asarray(fs.arrays[0])[:, :1],) + tuple(fs.arrays[1:])
    path = tmp_path / "thin.npz"
    save_features(path, FeatureSet(fs.stimulus_ids, fs.layers, arrays))
    rc = _run(tiny_sim, tmp_path / "o", "--permutations", "19", "--alpha", "0.1",
              "--bootstrap", "0", features=["--features", str(path)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert all(v is None for v in res["rsa"]["rho"][0])
    assert any("layer00" in n and "RSA is NaN" in n for n in res["notes"])
    assert "RSA is NaN" in cap.out


BAD = [
    (["--permutations", "-1"], "--permutations must be 0 or more"),
    (["--bootstrap", "-5"], "--bootstrap must be 0 or more"),
    (["--alpha", "0"], "--alpha must be between 0 and 1"),
    (["--alpha", "1.5"], "--alpha must be between 0 and 1"),
    (["--permutations", "10"], "--permutations 10 cannot reach --alpha 0.05"),
    (["--partition"], "--partition needs 2 or 3 --features, got 1"),
    (["--partition-layer", "x=layer00"], "--partition-layer is only used with --partition"),
    (["--features", "FEAT"], "label 'features' given twice"),
    (["--features", "bad label=FEAT"], "label 'bad label' must be"),
    (["--features", "b=FEAT", "--partition", "--partition-layer", "b"],
     "expected LABEL=LAYER"),
    (["--features", "b=FEAT", "--partition", "--partition-layer", "b=nope"],
     "--partition-layer b=nope: no such layer"),
    (["--features", "b=FEAT", "--partition", "--permutations", "0"],
     "--partition needs --permutations and --bootstrap above 0"),
    (["--features", "b=FEAT", "--partition", "--memory", "100KB"],
     "--partition of 2 feature sets over 72 stimuli needs about 0.2 MB"),
]


@pytest.mark.parametrize(("extra", "expected"), BAD)
def test_bad_options_one_line_exit_2(tiny_sim, tmp_path, capsys, extra, expected):
    feat = str(tiny_sim / "features.npz")
    extra = [feat if a == "FEAT" else a.replace("=FEAT", f"={feat}") for a in extra]
    rc = _run(tiny_sim, tmp_path / "out", *extra)
    err = capsys.readouterr().err
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("neuralign: error: "), err
    assert expected in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "results.json").exists()


def test_statistics_equal_the_live_monitors(tiny_sim, random_npz, tmp_path):
    """analyze's statistics of several sets, in the live layout, are what a live session's
    StatisticsMonitor computes on the same epochs with the same seed (live = offline)."""
    from neuralign.align.batch import analyze_models
    from neuralign.align.monitor import StatisticsMonitor
    from neuralign.commands.datasets import load_dataset

    out = tmp_path / "o"
    specs = {"planted": tiny_sim / "features.npz", "random": random_npz}
    rc = _run(tiny_sim, out, "--n-boot", "200", "--n-perm", "100", "--seed", "7", "--quiet",
              features=[a for k, p in specs.items() for a in ("--features", f"{k}={p}")])
    assert rc == 0
    offline = json.loads((out / "results.json").read_text())["statistics"]
    data = load_dataset(f"things-eeg2:{tiny_sim / 'sub-01'}")
    group, _ = analyze_models(data, {k: load_features(p) for k, p in specs.items()}, n_folds=3)
    live = StatisticsMonitor(n_boot=200, n_perm=100, seed=7).evaluate(group.engines).to_dict()
    for label in specs:
        a, b = live["models"][label], offline["models"][label]
        for key in ("latency_ci", "peak_r_ci", "peak_r", "latency_s"):
            np.testing.assert_allclose(np.array(a["peaks"][key], float),
                                       np.array(b["peaks"][key], float), atol=1e-9)
        assert a["mask"]["mask"] == b["mask"]["mask"]
        np.testing.assert_allclose(np.array(a["mask"]["p"], float),
                                   np.array(b["mask"]["p"], float))
        assert a["significant_layers"] == b["significant_layers"]
    assert [m["label"] for m in live["ranking"]["models"]] == \
        [m["label"] for m in offline["ranking"]["models"]]

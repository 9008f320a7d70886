"""``neuralign simulate`` and ``neuralign demo`` through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuralign.cli import main
from neuralign.io.features import load_features, save_features
from neuralign.sim import hierarchical_features


def test_simulate_then_analyze_sim_kind(tmp_path, capsys):
    out = tmp_path / "sim"
    rc = main(["simulate", "--out", str(out), "--n-train", "40", "--n-test", "10",
               "--train-reps", "2", "--test-reps", "4", "--layers", "3", "--dim", "6",
               "--seed", "2", "--snr", "0.4"])
    assert rc == 0
    assert "SIMULATED" in capsys.readouterr().out
    planted = json.loads((out / "planted.json").read_text())
    assert planted["simulated"] is True
    assert planted["layout"]["n_train"] == 40
    assert len(planted["peak_latencies_s"]) == 3
    fs = load_features(out / "features.npz")
    assert fs.n_stimuli == 50
    rc = main(["analyze", "--dataset", f"sim:{out}", "--features", str(out / "features.npz"),
               "--out", str(tmp_path / "res"), "--folds", "2", "--quiet"])
    assert rc == 0
    extra = json.loads((tmp_path / "res" / "extra.json").read_text())
    assert extra["simulated"] is True
    assert "spearman" in extra["recovery"]


def test_simulate_with_given_features(tmp_path):
    ids = [f"photo_{i}.png" for i in range(30)]
    fpath = save_features(tmp_path / "f.npz", hierarchical_features(ids, n_layers=2, dim=5))
    out = tmp_path / "sim"
    rc = main(["simulate", "--out", str(out), "--n-train", "20", "--n-test", "5",
               "--train-reps", "1", "--test-reps", "2", "--features", str(fpath)])
    assert rc == 0
    fs = load_features(out / "features.npz")
    assert fs.stimulus_ids.tolist() == ids[:25]
    assert fs.layers == ("layer00", "layer01")


def test_simulate_bad_args(tmp_path, capsys):
    rc = main(["simulate", "--out", str(tmp_path / "x"), "--n-test", "0"])
    assert rc == 2
    assert capsys.readouterr().err.startswith("neuralign: error: --n-test")


@pytest.mark.parametrize("value", ["-1", "nan"])
def test_simulate_amp_bad_wait_consumer_is_one_line(value, capsys):
    """Before any stream exists: a negative wait would start unheard, NaN would never start."""
    rc = main(["simulate-amp", "--wait-consumer", value, "--duration", "0.5"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("neuralign: error: --wait-consumer must be")
    assert "streaming" not in err


def test_demo_small(tmp_path, capsys):
    rc = main(["demo", "--out", str(tmp_path), "--n-train", "200", "--n-test", "40",
               "--test-reps", "16", "--layers", "5", "--dim", "16", "--snr", "0.4", "--quiet",
               "--stages", "offline"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "simulated" in out
    assert "planted hierarchy: Spearman" in out
    res = json.loads((tmp_path / "offline" / "results" / "results.json").read_text())
    lat = np.asarray(res["encoding"]["peak_latency_s"])
    assert np.all(np.diff(lat) >= 0)  # the planted order comes back at this SNR
    assert (tmp_path / "offline" / "results" / "report.html").is_file()
    assert (tmp_path / "offline" / "data" / "sub-01" / "preprocessed_eeg_test.npy").is_file()
    assert "RECOVERED" in out  # the demo's summary line


def test_demo_rejects_unknown_stage(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--stages", "offline,bogus"]) == 2
    assert "bogus" in capsys.readouterr().err

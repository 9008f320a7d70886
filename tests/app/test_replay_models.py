"""``replay`` and ``analyze`` with several --features, statistics and --stop-when."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from neuralign.base import FeatureSet
from neuralign.io.features import load_features, save_features


@pytest.fixture(scope="module")
def sim_two(tmp_path_factory):
    from neuralign.sim.dataset import write_things_eeg2

    out = tmp_path_factory.mktemp("sim2")
    # a clear planted answer: at the realistic default SNR, 20 test images leave the peak r of
    # random features within chance reach of the planted ones (ranking is then a coin flip)
    write_things_eeg2(out, n_train=60, n_test=20, train_reps=2, test_reps=6, n_layers=3, dim=8,
                      seed=2, brain_kw={"snr": 0.4})
    planted = load_features(out / "features.npz")
    rng = np.random.default_rng(1)
    rand = FeatureSet(planted.stimulus_ids, ["r0", "r1"],
                      [rng.standard_normal((planted.n_stimuli, 8)) for _ in range(2)])
    save_features(out / "random.npz", rand)
    return out


def cli(*args, timeout=240):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "-m", "neuralign.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_replay_two_models_stops_by_rule_and_writes_statistics(sim_two, tmp_path):
    out = tmp_path / "out"
    r = cli("replay", "--dataset", f"sim:{sim_two}", "--features",
            f"planted={sim_two / 'features.npz'}", "--features", sim_two / "random.npz",
            "--headless", "--out", out, "--speed", "4", "--refresh-every", "0.5",
            "--stop-when", "epochs>=100", "--n-boot", "100", "--n-perm", "50")
    assert r.returncode == 0, r.stderr
    assert "stop rule met" in r.stderr
    res = json.loads((out / "results.json").read_text())
    st = res["statistics"]
    n = res["counts"]["n_epochs"]
    assert 100 <= n < 60 * 2 + 20 * 6  # stopped by the rule, before the data ran out
    assert set(st["models"]) == {"planted", "random"}  # labelled, and by the file stem
    assert {m["label"] for m in st["ranking"]["models"]} == {"planted", "random"}
    assert st["stopping_history"][-1]["satisfied"]
    assert (out / "models" / "random" / "results.json").is_file()
    assert (out / "stopping_history.png").is_file()
    assert "Confidence, ranking and stopping" in (out / "report.html").read_text()


@pytest.mark.parametrize(("cmd", "args", "msg"), [
    ("replay", ["--stop-when", "latency<5ms"], "--stop-when: cannot read"),
    ("replay", ["--features", "x=nope.npz"], "no such file"),
    ("replay", ["--n-boot", "-1"], "--n-boot must be >= 0"),
    ("live", ["--stop-when", "ranking p<2"], "--stop-when: p must be in (0, 1)"),
    ("live", ["--stats-every", "0"], "--stats-every must be >= 1"),
    ("live", ["--stop-when", "ranking p<0.01"], "compares models: give two --features"),
])
def test_bad_model_options_are_one_line(sim_two, tmp_path, capsys, cmd, args, msg):
    from neuralign.cli import main

    base = [cmd, "--out", str(tmp_path / "o")]
    base += (["--dataset", f"sim:{sim_two}", "--headless"] if cmd == "replay"
             else ["--eeg-stream", "nothing-here", "--marker-stream", "nothing-here"])
    if "--features" not in args:
        base += ["--features", str(sim_two / "features.npz")]
    rc = main(base + args)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1  # validated before anything starts (no stream is looked up)
    assert msg in err[0]

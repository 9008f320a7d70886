"""``neuralign replay`` / ``neuralign gui`` end to end, in subprocesses (offscreen Qt)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from neuralign.app.run import run_window
from neuralign.realtime.source import StaticSource

from .conftest import make_snapshot


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory):
    from neuralign.sim.dataset import write_things_eeg2

    out = tmp_path_factory.mktemp("sim")
    write_things_eeg2(out, n_train=60, n_test=10, train_reps=2, test_reps=6, n_layers=4, dim=8,
                      seed=2)
    return out


def cli(*args, timeout=240):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "-m", "neuralign.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def _png_size(path):
    from PySide6 import QtGui

    img = QtGui.QImage(str(path))
    assert not img.isNull()
    return img.width(), img.height()


def test_run_window_screenshot_and_exit_after(qtbot, tmp_path):
    shot = tmp_path / "shots" / "w.png"
    rc = run_window(StaticSource(make_snapshot(None)), screenshot=shot, exit_after=0.3,
                    size=(1200, 800))
    assert rc == 0
    assert _png_size(shot) == (1200, 800)


def test_replay_headless_writes_results(sim_dir, tmp_path):
    out = tmp_path / "out"
    r = cli("replay", "--dataset", f"sim:{sim_dir}", "--headless", "--out", out)
    assert r.returncode == 0, r.stderr
    res = json.loads((out / "results.json").read_text())
    assert res["layers"] == ["layer00", "layer01", "layer02", "layer03"]
    assert res["counts"]["n_epochs"] == 60 * 2 + 10 * 6
    assert "replayed 180 epochs" in r.stdout
    assert (out / "maps.npz").is_file()


def test_replay_window_screenshot_exit_after(sim_dir, tmp_path):
    shot = tmp_path / "replay.png"
    out = tmp_path / "out"
    r = cli("replay", "--dataset", f"sim:{sim_dir}", "--speed", "0", "--refresh-every", "0.5",
            "--screenshot", shot, "--exit-after", "3", "--out", out)
    assert r.returncode == 0, r.stderr
    assert _png_size(shot) == (1600, 1000)
    assert (out / "results.json").is_file()
    assert f"screenshot written to {shot}" in r.stdout


def test_gui_shows_saved_results(sim_dir, tmp_path):
    from neuralign.align.data import AlignmentResult

    from .conftest import make_result

    make_result().save(tmp_path / "res")
    AlignmentResult.load(tmp_path / "res")
    shot = tmp_path / "gui.png"
    r = cli("gui", "--results", tmp_path / "res", "--screenshot", shot, "--exit-after", "0.5")
    assert r.returncode == 0, r.stderr
    assert _png_size(shot) == (1600, 1000)


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["replay", "--dataset", "sim:/nonexistent/x", "--headless", "--out", "o"], "not found"),
        (["replay", "--dataset", "nokind:/x", "--headless", "--out", "o"], "KIND:PATH"),
        (["replay", "--dataset", "sim:SIM", "--headless"], "--out"),
        (["gui", "--eeg-stream", "amp"], "both --eeg-stream and --marker-stream"),
    ],
)
def test_user_errors_are_one_line(sim_dir, args, msg):
    args = [a.replace("SIM", str(sim_dir)) for a in args]
    r = cli(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("neuralign: error:")
    assert msg in lines[0]


def test_replay_without_features_says_so(sim_dir, tmp_path):
    import shutil

    d = tmp_path / "nofeat"
    shutil.copytree(sim_dir, d)
    (d / "features.npz").unlink()
    r = cli("replay", "--dataset", f"sim:{d}", "--headless", "--out", tmp_path / "o")
    assert r.returncode == 2
    assert "--features" in r.stderr


def test_replay_lsl_streams_a_dataset_to_a_live_inlet(tmp_path):
    """`neuralign replay --lsl` puts every epoch and its marker on LSL (machine scope)."""
    import subprocess
    import sys
    import uuid

    from neuralign.lsl import configure_lsl
    from neuralign.sim.dataset import write_things_eeg2

    configure_lsl()
    import pylsl

    sdir = write_things_eeg2(tmp_path / "d", n_train=6, n_test=3, train_reps=1, test_reps=2,
                             n_layers=2, dim=4, seed=0)
    name = f"rep-{uuid.uuid4().hex[:6]}"
    proc = subprocess.Popen([sys.executable, "-m", "neuralign.cli", "replay", "--dataset",
                             f"things-eeg2:{sdir}", "--lsl", "--eeg-stream", name, "--speed", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # both in one resolve, with room for a loaded machine (CI saw a second resolve miss)
        found = pylsl.resolve_bypred(f"name='{name}' or name='{name}-markers'", 2, 60)
        mk = [s for s in found if s.name() == f"{name}-markers"]
        eeg = [s for s in found if s.name() == name]
        assert mk
        assert eeg
        mk_in = pylsl.StreamInlet(mk[0])
        eeg_in = pylsl.StreamInlet(eeg[0])
        mk_in.open_stream(timeout=10)
        eeg_in.open_stream(timeout=10)
        markers = []
        while proc.poll() is None or len(markers) < 12:
            s, _ = mk_in.pull_sample(timeout=2.0)
            if s is None:
                break
            markers.append(s[0])
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert len(markers) == 6 + 3 * 2
        assert "sent 12 epochs" in out
    finally:
        proc.kill()

"""``neuralign session --simulate --headless``: presenter + simulated amplifier + live engine."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import write_config

pytestmark = [pytest.mark.xvfb, pytest.mark.lsl]

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
seed = 2
[stimuli]
source = "folder:imgs"
n_test = 2
train_reps = 1
test_reps = 2
[timing]
sequence_length = 5
sequence_gap_ms = 100
lead_in_ms = 100
[monitor]
resolution = [200, 150]
[display]
image_size = 64
image_units = "pix"
"""


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run not installed (Debian: "
                    "apt-get install xvfb libgl1-mesa-dri libglu1-mesa)")
def test_simulated_headless_session_writes_the_results_contract(tmp_path, image_folder):
    pytest.importorskip("neuralign.commands.live")
    pytest.importorskip("neuralign.commands.simulate_amp")
    cfg = write_config(tmp_path / "session.toml", CONFIG)
    out = tmp_path / "session"
    env = {k: v for k, v in __import__("os").environ.items() if k != "DISPLAY"}  # -> xvfb-run
    proc = subprocess.run(
        [sys.executable, "-m", "neuralign.cli", "session", "--simulate", "--headless",
         "--config", str(cfg), "--out", str(out), "--set", "markers.stream_name="
         f"nl-sess-{tmp_path.name[-12:]}"],
        capture_output=True, text=True, timeout=400, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    design = json.loads((out / "presenter" / "design.json").read_text())
    n_shown = sum(1 for t in design["trials"] if t["kind"] == "stimulus")
    summary = json.loads((out / "presenter" / "summary.json").read_text())
    assert summary["n_shown"] == len(design["trials"])
    assert not summary["aborted"]
    results = json.loads((out / "results.json").read_text())
    counts = results["counts"]
    # every shown image became one accepted epoch; the design's test set is what scores
    assert counts["n_epochs"] == n_shown
    assert counts["n_test_stimuli"] == 2
    assert counts["n_unknown_epochs"] == 0
    for name in ("maps.npz", "report.html"):
        assert (out / name).is_file()
    assert (out / "recording").is_dir()
    assert "session done" in proc.stdout

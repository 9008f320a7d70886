"""The real presenter under Xvfb: markers on LSL vs images shown vs the run log.

Xvfb has no vsync, so timing is not tested: counts and order are. Each test runs
``neuralign present`` in a subprocess under ``xvfb-run`` and reads the marker stream with an LSL
inlet in this process (machine-scope config from tests/conftest.py, unique stream names).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from neuralign.stimulus.runlog import read_run_log

from .conftest import write_config

pytestmark = [pytest.mark.xvfb, pytest.mark.lsl]

ROOT = Path(__file__).resolve().parents[2]
XVFB = ["xvfb-run", "-a", "--server-args=-screen 0 1024x768x24"]
needs_xvfb = pytest.mark.skipif(shutil.which("xvfb-run") is None,
                                reason="xvfb-run not installed (Debian: apt-get install xvfb "
                                "libgl1-mesa-dri libglu1-mesa); the presenter needs an X server")

CONFIG = """
seed = 11
[stimuli]
source = "folder:imgs"
n_test = 2
train_reps = 1
test_reps = 2
[timing]
on_frames = 2
off_frames = 1
sequence_length = 4
sequence_gap_ms = 50
lead_in_ms = 50
[task]
target_fraction = {target_fraction}
[blocks]
n_blocks = 2
break_mode = "timed"
break_s = 0.1
[monitor]
resolution = [200, 150]
refresh_hz = 60
[display]
image_size = 64
image_units = "pix"
photodiode = true
[markers]
wait_for_consumer_s = {wait}
settle_s = 0.2
"""


class MarkerReader(threading.Thread):
    """Collect every string marker of stream ``name`` until ``end``/``abort`` or a timeout."""

    def __init__(self, name: str, timeout: float = 60.0) -> None:
        super().__init__(daemon=True)
        self.name, self.timeout, self.markers, self.error = name, timeout, [], None

    def run(self) -> None:
        import time

        import pylsl

        try:
            found = pylsl.resolve_byprop("name", self.name, timeout=self.timeout)
            if not found:
                self.error = "stream not found"
                return
            inlet = pylsl.StreamInlet(found[0])
            inlet.open_stream(timeout=10)
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                sample, _ = inlet.pull_sample(timeout=0.2)
                if sample:
                    self.markers.append(sample[0])
                    if sample[0] in ("end", "end_abort"):
                        return
        except Exception as e:  # pragma: no cover - reported by the test
            self.error = repr(e)


def _present(tmp_path: Path, *args: str, target_fraction: float = 0.0, wait: float = 30,
             xvfb: bool = True, env: dict | None = None) -> tuple[subprocess.CompletedProcess, Path]:
    cfg = write_config(tmp_path / "session.toml",
                       CONFIG.format(target_fraction=target_fraction, wait=wait))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "neuralign.cli", "present", "--config", str(cfg), "--out",
           str(out), "--no-progress", *args]
    proc = subprocess.run((XVFB if xvfb else []) + cmd, capture_output=True, text=True,
                          timeout=180, cwd=ROOT, env=env)
    return proc, out


def _shown_markers(markers: list[str]) -> list[str]:
    return [m for m in markers if m not in ("block_start", "break", "end", "end_abort", "response")]


@needs_xvfb
def test_every_image_one_marker_in_order(tmp_path, image_folder):
    name = f"nl-test-{uuid.uuid4().hex[:8]}"
    reader = MarkerReader(name)
    reader.start()
    proc, out = _present(tmp_path, "--marker-stream", name, target_fraction=0.5)
    reader.join(timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert reader.error is None, reader.error
    design = json.loads((out / "design.json").read_text())
    planned = [t["marker"] for t in design["trials"]]
    markers = reader.markers
    # every shown image produced exactly one marker, with its id, in the planned order
    assert _shown_markers(markers) == planned
    assert "target" in planned
    assert markers[0] == "block_start"
    assert markers[-1] == "end"
    assert markers.count("block_start") == 2
    assert markers.count("break") == 1
    # the run log matches: one row per shown trial, same order, markers stamped
    events, rows = read_run_log(out)
    assert [r["marker"] for r in rows] == planned
    assert [int(r["index"]) for r in rows] == list(range(len(planned)))
    assert all(r["lsl_time"] for r in rows)
    lsl = [float(r["lsl_time"]) for r in rows]
    assert lsl == sorted(lsl)
    assert all(int(r["on_frames"]) == 2 for r in rows)
    assert [e["event"] for e in events if e["event"] != "trial"] == [
        "run_start", "block_start", "block_end", "break", "block_start", "block_end", "end"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_shown"] == len(planned)
    assert not summary["aborted"]
    assert summary["markers_sent"] == len(markers)
    assert len(summary["dropped_per_block"]) == 2
    assert (out / "frame_intervals.npy").is_file()
    assert "presenter done" in proc.stdout


@needs_xvfb
def test_escape_aborts_cleanly_and_log_says_where(tmp_path, image_folder):
    name = f"nl-test-{uuid.uuid4().hex[:8]}"
    reader = MarkerReader(name)
    reader.start()
    proc, out = _present(tmp_path, "--marker-stream", name, "--inject-key", "3:escape")
    reader.join(timeout=60)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "aborted by Escape at block 0" in proc.stderr
    design = json.loads((out / "design.json").read_text())
    planned = [t["marker"] for t in design["trials"]]
    # trials 0..3 were shown (Escape is pressed right after trial 3's onset flip), then abort
    assert _shown_markers(reader.markers) == planned[:4]
    assert reader.markers[-1] == "end_abort"
    events, rows = read_run_log(out)
    assert [r["marker"] for r in rows] == planned[:4]
    abort = [e for e in events if e["event"] == "abort"]
    assert len(abort) == 1
    assert f"trial 3 ({planned[3]})" in abort[0]["where"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["aborted"]
    assert summary["n_shown"] == 4


@needs_xvfb
def test_response_key_on_target_is_a_hit(tmp_path, image_folder):
    name = f"nl-test-{uuid.uuid4().hex[:8]}"
    cfg = write_config(tmp_path / "probe.toml", CONFIG.format(target_fraction=0.5, wait=0))
    from neuralign.stimulus.config import load_config
    from neuralign.stimulus.run import prepare_plan

    design = prepare_plan(load_config(cfg), progress=False)
    target = next(t.index for t in design.trials if t.kind == "target")
    reader = MarkerReader(name)
    reader.start()
    proc, out = _present(tmp_path, "--marker-stream", name, "--inject-key", f"{target}:space",
                         target_fraction=0.5)
    reader.join(timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["hits"] == 1
    assert summary["false_alarms"] == 0
    assert reader.markers.count("response") == 1
    i = reader.markers.index("response")
    assert reader.markers[i - 1] == "target"  # sent right after the target's onset
    _, rows = read_run_log(out)
    responses = [r for r in rows if r["kind"] == "response"]
    assert len(responses) == 1
    assert responses[0]["responded"] == "True"
    assert int(responses[0]["index"]) == target
    assert float(responses[0]["rt_s"]) >= 0
    shown = [r for r in rows if r["kind"] != "response"]
    assert [int(r["index"]) for r in shown] == list(range(len(design.trials)))


def test_no_consumer_times_out_with_a_clear_message(tmp_path, image_folder):
    name = f"nl-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DISPLAY": os.environ.get("DISPLAY", ":999")}  # never opened
    proc, out = _present(tmp_path, "--marker-stream", name, wait=1, xvfb=False, env=env)
    assert proc.returncode == 2
    assert f"no consumer connected to marker stream '{name}' within 1 s" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (out / "design.json").is_file()  # the design is written before the run
    assert not (out / "run_log.csv").exists()  # no window was opened


def test_no_display_is_a_clear_error(tmp_path, image_folder):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc, _ = _present(tmp_path, "--marker-stream", "unused", wait=0, xvfb=False, env=env)
    assert proc.returncode == 2
    assert "no display: run under xvfb-run" in proc.stderr
    assert "Traceback" not in proc.stderr


@needs_xvfb
def test_xvfb_flag_reruns_without_a_display(tmp_path, image_folder):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc, out = _present(tmp_path, "--xvfb", "--marker-stream", f"nl-{uuid.uuid4().hex[:8]}",
                         wait=0, xvfb=False, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no display: running under xvfb-run" in proc.stderr
    design = json.loads((out / "design.json").read_text())
    _, rows = read_run_log(out)
    assert [r["marker"] for r in rows] == [t["marker"] for t in design["trials"]]

"""Closed loop end to end under Xvfb: the presenter driven by the back channel.

- ``neuralign session --simulate --headless --order closed-loop``: the live session chooses
  every block, the presenter shows them, the decisions are recorded, and a replay of the
  recording through the chooser gives the same blocks;
- a presenter whose back channel answers two sequences and then disappears falls back to its
  planned order and finishes; one without any back channel shows the plan; a ``stop`` ends the
  run cleanly. (This test process plays the live session: it reads the presenter's ``#next``
  markers and publishes blocks with a real back-channel outlet.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from neuralign.io.backchannel import BackChannelOutlet
from neuralign.lsl import get_pylsl
from neuralign.stimulus.runlog import read_run_log

from .conftest import make_images, write_config

pytestmark = [pytest.mark.xvfb, pytest.mark.lsl]

ROOT = Path(__file__).resolve().parents[2]
XVFB = ["xvfb-run", "-a", "--server-args=-screen 0 1024x768x24"]
needs_xvfb = pytest.mark.skipif(shutil.which("xvfb-run") is None,
                                reason="xvfb-run not installed (Debian: apt-get install xvfb "
                                "libgl1-mesa-dri libglu1-mesa); the presenter needs an X server")

PRESENT = """
seed = 5
order = "closed-loop"
[stimuli]
source = "folder:imgs"
n_test = 2
train_reps = 2
test_reps = 2
[timing]
on_frames = 2
off_frames = 1
sequence_length = 4
sequence_gap_ms = 50
lead_in_ms = 50
[monitor]
resolution = [200, 150]
[display]
image_size = 64
image_units = "pix"
[markers]
wait_for_consumer_s = {wait}
settle_s = 0.1
[closed_loop]
timeout_s = {timeout}
connect_s = {connect}
"""


class FakeLive(threading.Thread):
    """Answer the presenter's ``#next N`` markers for ``answer`` sequences, then vanish
    (or send ``stop``)."""

    def __init__(self, markers: str, *, answer: int, then: str) -> None:
        super().__init__(daemon=True)
        self.markers, self.answer, self.then = markers, answer, then
        self.out = BackChannelOutlet(markers)
        self.sent: dict[int, list[str]] = {}
        self.requests: list[int] = []
        self.error = None
        self.ids: list[str] = []  # set by the test once the design is written
        self.seen: list[str] = []

    def run(self) -> None:
        try:
            pylsl = get_pylsl()
            found = pylsl.resolve_byprop("name", self.markers, 1, 60)
            inlet = pylsl.StreamInlet(found[0])
            inlet.open_stream(timeout=10)
            end = time.monotonic() + 90
            while time.monotonic() < end:
                sample, _ = inlet.pull_sample(timeout=0.1)
                if not sample:
                    continue
                if sample[0] in ("end", "end_abort"):
                    return
                self.seen.append(sample[0])
                if self.then == "stop-random" and len(self.seen) == 5:
                    self.out.stop("rule met")  # random order: no requests, a stop all the same
                if not sample[0].startswith("#next "):
                    continue
                n = int(sample[0].split()[1])
                self.requests.append(n)
                if n < self.answer:
                    ids = self.ids[n % 3:][:4]  # not the planned order
                    self.sent[n] = ids
                    self.out.block(n, ids, picks=[], for_sequence=n)
                elif self.then == "stop":
                    self.out.stop("rule met")
                else:
                    self.out.close()  # the live session is gone
        except Exception as e:  # pragma: no cover - reported by the test
            self.error = repr(e)


def _present(tmp_path: Path, name: str, *args: str, wait: float, timeout: float,
             connect: float):
    make_images(tmp_path / "imgs", 10)
    cfg = write_config(tmp_path / "session.toml",
                       PRESENT.format(wait=wait, timeout=timeout, connect=connect))
    out = tmp_path / "out"
    cmd = [*XVFB, sys.executable, "-m", "neuralign.cli", "present", "--config", str(cfg),
           "--out", str(out), "--no-progress", "--marker-stream", name, *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=ROOT), out


def _planned_by_sequence(out: Path) -> dict[int, list[str]]:
    design = json.loads((out / "design.json").read_text())
    seqs: dict[int, list[str]] = {}
    for t in design["trials"]:
        seqs.setdefault(t["sequence"], []).append(t["stimulus_id"])
    return seqs


@needs_xvfb
@pytest.mark.parametrize("then", ["vanish", "stop", "stop-random"])
def test_presenter_follows_the_back_channel_then_falls_back_or_stops(tmp_path, then):
    name = f"nl-cl-{uuid.uuid4().hex[:8]}"
    live = FakeLive(name, answer=2, then=then)
    extra = ["--order", "random"] if then == "stop-random" else []
    proc, out = _present(tmp_path, name, *extra, wait=30, timeout=0.5, connect=20)
    while not (out / "design.json").is_file() and proc.poll() is None:
        time.sleep(0.05)
    design = json.loads((out / "design.json").read_text())
    live.ids = [s["id"] for s in design["stimuli"]]
    live.start()
    text, _ = proc.communicate(timeout=120)
    live.join(timeout=10)
    assert proc.returncode == 0, text[-3000:]
    assert live.error is None, live.error
    planned = _planned_by_sequence(out)
    events, rows = read_run_log(out)
    seqs = [e for e in events if e["event"] == "sequence"]
    summary = json.loads((out / "summary.json").read_text())
    if then == "stop-random":
        # the plan's order, no requests; the stop ends the run at a sequence boundary
        assert summary["order"] == "random"
        assert not live.requests
        assert not seqs
        assert summary["stopped"] == "rule met"
        assert not summary["aborted"]
        assert summary["n_shown"] % 4 == 0
        assert 0 < summary["n_shown"] < 20
        assert [r["stimulus_id"] for r in rows] == [
            i for s in sorted(planned) for i in planned[s]][:summary["n_shown"]]
        assert [e["event"] for e in events][-1] == "stop"
        return
    assert summary["order"] == "closed-loop"
    assert live.requests[:3] == [0, 1, 2]
    # the first two sequences show the blocks sent, in the order sent
    for s in (0, 1):
        assert seqs[s]["source"] == "closed-loop"
        assert seqs[s]["ids"] == live.sent[s]
        assert [r["stimulus_id"] for r in rows if int(r["sequence"]) == s] == live.sent[s]
    if then == "vanish":
        # the back channel is gone: every later sequence shows the plan, and the run finishes
        assert len(seqs) == len(planned) == 5
        for e in seqs[2:]:
            assert e["source"] == "fallback"
            assert e["ids"] == planned[e["sequence"]]
        assert summary["n_shown"] == summary["n_planned"] == 20
        assert not summary["aborted"]
        assert (summary["closed_loop_sequences"], summary["fallback_sequences"]) == (2, 3)
        assert "planned (fallback)" in text
    else:
        # stop: the run ends cleanly before sequence 2 (complete, not aborted)
        assert len(seqs) == 2
        assert summary["stopped"] == "rule met"
        assert not summary["aborted"]
        assert summary["n_shown"] == 8
        assert [e["event"] for e in events][-1] == "stop"


@needs_xvfb
def test_presenter_without_a_back_channel_shows_its_plan(tmp_path):
    proc, out = _present(tmp_path, f"nl-cl-{uuid.uuid4().hex[:8]}", wait=0, timeout=0.3,
                         connect=0.5)
    text, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, text[-3000:]
    assert "no back channel" in text
    planned = _planned_by_sequence(out)
    events, rows = read_run_log(out)
    seqs = [e for e in events if e["event"] == "sequence"]
    assert [e["source"] for e in seqs] == ["fallback"] * len(planned)
    assert [r["stimulus_id"] for r in rows] == [i for s in sorted(planned) for i in planned[s]]
    # only the first sequence waited for a block; the quiet channel did not slow the rest
    assert seqs[0]["waited_s"] >= 0.25
    assert all(e["waited_s"] < 0.1 for e in seqs[1:])


SESSION = """
seed = 2
[stimuli]
source = "folder:imgs"
n_test = 4
train_reps = 1
test_reps = 2
[timing]
sequence_length = 6
sequence_gap_ms = 100
lead_in_ms = 100
[monitor]
resolution = [200, 150]
[display]
image_size = 64
image_units = "pix"
"""


@needs_xvfb
def test_closed_loop_session_end_to_end_and_replayed(tmp_path):
    pytest.importorskip("neuralign.commands.simulate_amp")
    from neuralign.io.features import load_features
    from neuralign.realtime.decisions import replay_decisions
    from neuralign.realtime.recording import load_recording

    make_images(tmp_path / "imgs", 24)
    cfg = write_config(tmp_path / "session.toml", SESSION)
    out = tmp_path / "session"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}  # -> xvfb-run
    proc = subprocess.run(
        [sys.executable, "-m", "neuralign.cli", "session", "--simulate", "--headless",
         "--order", "closed-loop", "--config", str(cfg), "--out", str(out),
         "--set", f"markers.stream_name=nl-clsess-{uuid.uuid4().hex[:8]}"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((out / "recording" / "design.json").read_text())
    blocks = record["closed_loop"]["blocks"]
    events, rows = read_run_log(out / "presenter")
    seqs = [e for e in events if e["event"] == "sequence"]
    chosen = [e for e in seqs if e["source"] == "closed-loop"]
    assert len(seqs) == 5
    assert len(chosen) >= 3, seqs  # the live session answers within a sequence
    test_ids = {s["id"] for s in record["stimuli"] if s["role"] == "test"}
    for e in chosen:  # what was shown is the block chosen for that sequence
        b = blocks[e["chosen_block"]]
        assert b["for_sequence"] == e.get("late_for", e["sequence"])
        assert e["ids"] == b["ids"][:len(e["ids"])]
        assert all((p["role"] == "test") == (p["id"] in test_ids) for p in b["picks"])
        assert all(p["reason"] for p in b["picks"])
    shown = [r["stimulus_id"] for r in rows]
    results = json.loads((out / "results.json").read_text())
    assert results["counts"]["n_epochs"] == len(shown) == 28
    # the recorded decisions come back from the recording through the chooser
    data = load_recording(out)
    assert data.stimulus_ids.tolist() == shown
    again = replay_decisions(record, data, load_features(out / "features_simulated.npz"))
    assert [r["ids"] for r in again] == [b["ids"] for b in blocks]
    assert "closed loop: 5 sequences chosen live" in proc.stdout or len(chosen) < 5

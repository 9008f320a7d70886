"""Signals, a vanished console and a killed parent all end a session cleanly, results written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from neuralign.io.features import save_features
from neuralign.realtime.integrity import check_recording
from neuralign.sim.features import hierarchical_features

from ..realtime.lslkit import ROOT, env, neuralign, stop, unique, wait_for_stream, wait_until

pytestmark = [pytest.mark.lsl, pytest.mark.faults, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def amp(tmp_path_factory):
    """One scheduled amplifier (EEG + markers) for the module's sessions."""
    d = tmp_path_factory.mktemp("sig")
    fs = hierarchical_features([f"stim_{i:03d}" for i in range(30)], n_layers=2, dim=8, seed=1)
    save_features(d / "f.npz", fs)
    name = unique("sig")
    proc = neuralign(["simulate-amp", "--eeg-stream", name, "--source-id", name, "--features",
                      str(d / "f.npz"), "--schedule", "--channels", "8", "--sfreq", "250",
                      "--train-reps", "50", "--soa", "0.1", "--duration", "170"],
                     d / "amp.log")
    wait_for_stream(name)
    yield name, d / "f.npz"
    stop(proc)


def _live_args(amp, out):
    name, feats = amp
    return ["live", "--eeg-stream", name, "--marker-stream", f"{name}-markers", "--features",
            str(feats), "--out", str(out), "--refresh-every", "0.5"]


def _clean_end(out, stopped_by):
    res = json.loads((out / "results.json").read_text())
    assert res["settings"]["live"]["stopped_by"] == stopped_by
    assert res["counts"]["n_epochs"] >= 5
    integ = check_recording(out / "recording" / "session.xdf")
    assert integ.intact
    assert integ.closed  # footers written: the XDF was closed, not cut


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_signal_ends_live_with_results(tmp_path, amp, sig):
    out = tmp_path / "out"
    log = tmp_path / "live.log"
    live = neuralign(_live_args(amp, out), log)
    try:
        assert wait_until(lambda: "connected:" in log.read_text(), 60), log.read_text()
        time.sleep(2.0)
        live.send_signal(sig)  # the process only (a closed terminal sends SIGHUP like this)
        live.wait(90)
    finally:
        stop(live)
    assert live.returncode == 0, log.read_text()[-2000:]
    assert f"stopping ({'Ctrl-C' if sig == signal.SIGINT else sig.name})" in log.read_text()
    _clean_end(out, sig.name)


def test_broken_output_pipe_ends_live_with_results(tmp_path, amp):
    out = tmp_path / "out"
    live = subprocess.Popen([sys.executable, "-m", "neuralign.cli", *_live_args(amp, out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env(),
                            cwd=str(ROOT), start_new_session=True)
    try:
        head = b""
        while b"connected:" not in head:
            line = live.stdout.readline()
            assert line, head
            head += line
        live.stdout.close()  # `neuralign live ... | head -2`: the reader goes away
        live.wait(90)
    finally:
        stop(live)
    assert live.returncode == 0
    _clean_end(out, "broken pipe")


def test_children_end_when_the_session_process_is_killed(tmp_path, amp):
    """kill -9 of the process that started them (as `neuralign session` starts its children):
    each child sees its lifeline break at once; live still writes its results."""
    name, feats = amp
    out = tmp_path / "out"
    driver = tmp_path / "driver.py"
    driver.write_text(f"""
import sys, time
from pathlib import Path
from neuralign.commands.orchestrate import CLI, start_child
logs = Path({str(tmp_path / 'logs')!r})
own = unique = {unique('life')!r}
amp = start_child("simulate-amp", [*CLI, "simulate-amp", "--eeg-stream", own, "--channels", "4",
                                    "--sfreq", "250"], logs)
live = start_child("live", [*CLI, *{_live_args(amp, out)!r}], logs, watch="connected:")
print(amp.proc.pid, live.proc.pid, flush=True)
live.seen.wait(60)
print("connected", flush=True)
time.sleep(600)
""")
    proc = subprocess.Popen([sys.executable, str(driver)], stdout=subprocess.PIPE, env=env(),
                            cwd=str(ROOT), text=True, start_new_session=True)
    pids = [int(p) for p in proc.stdout.readline().split()]
    try:
        assert proc.stdout.readline().strip() == "connected"
        time.sleep(1.0)
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

        def gone(pid):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            return _zombie(pid)

        assert wait_until(lambda: gone(pids[0]), 2.0, step=0.02), "amplifier outlived the parent"
        t_amp = time.monotonic() - t0
        assert wait_until(lambda: gone(pids[1]), 90.0), "live outlived the parent"
    finally:
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert t_amp < 2.0
    # (its log went through the dead parent: the results say how it ended)
    _clean_end(out, "SIGTERM")


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True

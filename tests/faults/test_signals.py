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
                      str(d / "f.npz"), "--schedule", "--design-out", str(d / "design.json"),
                      "--channels", "8", "--sfreq", "250",
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


def test_signals_and_a_broken_pipe_end_live_with_results(tmp_path, amp):
    """SIGHUP (terminal closed), SIGTERM, SIGINT, and the reader of its output going away
    (`neuralign live ... | head -2`): four sessions at once, each ends cleanly."""
    sigs = [signal.SIGHUP, signal.SIGTERM, signal.SIGINT]
    lives = {}
    try:
        for sig in sigs:
            out, log = tmp_path / sig.name, tmp_path / f"{sig.name}.log"
            lives[sig.name] = (neuralign(_live_args(amp, out), log), out, log)
        piped = subprocess.Popen([sys.executable, "-m", "neuralign.cli",
                                  *_live_args(amp, tmp_path / "pipe")],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env(),
                                 cwd=str(ROOT), start_new_session=True)
        head = b""
        while b"connected:" not in head:
            line = piped.stdout.readline()
            assert line, head
            head += line
        piped.stdout.close()  # the reader goes away
        for name, (_, _, log) in lives.items():
            assert wait_until(lambda log=log: "connected:" in log.read_text(), 60), name
        time.sleep(2.0)
        for sig in sigs:
            lives[sig.name][0].send_signal(sig)  # the process only, as a closed terminal does
        for proc, _, _ in lives.values():
            proc.wait(120)
        piped.wait(120)
    finally:
        for proc, _, _ in lives.values():
            stop(proc)
        stop(piped)
    for sig in sigs:
        proc, out, log = lives[sig.name]
        assert proc.returncode == 0, log.read_text()[-2000:]
        said = "Ctrl-C" if sig == signal.SIGINT else sig.name
        assert f"stopping ({said})" in log.read_text()
        _clean_end(out, sig.name)
    assert piped.returncode == 0
    _clean_end(tmp_path / "pipe", "broken pipe")


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

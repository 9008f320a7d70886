"""Helpers for the loopback LSL tests: amplifiers in subprocesses, unique names, cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from neuralign.lsl import configure_lsl

ROOT = Path(__file__).resolve().parents[2]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def env() -> dict:
    e = dict(os.environ)
    e["LSLAPICFG"] = str(configure_lsl())
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def neuralign(args: list[str], log: Path) -> subprocess.Popen:
    """Start ``neuralign ARGS`` in its own process group, output to ``log``."""
    fh = open(log, "wb")  # noqa: SIM115 - closed by the process ending
    return subprocess.Popen([sys.executable, "-m", "neuralign.cli", *args], stdout=fh,
                            stderr=subprocess.STDOUT, env=env(), cwd=str(ROOT),
                            start_new_session=True)


def stop(proc: subprocess.Popen, *, sig=signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def wait_for_stream(name: str, timeout: float = 30.0):
    configure_lsl()
    import pylsl

    found = pylsl.resolve_byprop("name", name, 1, timeout)
    assert found, f"stream {name!r} did not appear within {timeout} s"
    return found[0]


def marker_outlet(name: str, *, fmt: str = "string"):
    configure_lsl()
    import pylsl

    cf = pylsl.cf_string if fmt == "string" else pylsl.cf_int32
    info = pylsl.StreamInfo(name, "Markers", 1, 0.0, cf, name)
    outlet = pylsl.StreamOutlet(info)
    # An in-process outlet can take a moment to answer discovery on a loaded machine (CI saw a
    # session's 10 s resolve miss one): return only once it is visible, as a consumer would.
    wait_for_stream(name)
    return outlet


def wait_until(pred, timeout: float, step: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()

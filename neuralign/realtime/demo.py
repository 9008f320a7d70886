"""The simulated live session end to end, headless (for ``neuralign demo`` / ``make demo``).

Starts ``neuralign simulate-amp --schedule`` in a subprocess (machine-scope LSL), runs a
:class:`~neuralign.realtime.session.LiveSession` on its streams until the schedule is over,
writes the report and the recording, and stops the amplifier.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from ..errors import NeuralignError
from ..lsl import configure_lsl


def run_live_demo(out_dir: str | Path, *, features_path: str | Path, n_test: int | None = None,
                  train_reps: int = 2, test_reps: int = 5, soa: float = 0.2, snr: float = 0.5,
                  channels: int = 17, refresh_hz: float = 1.0, timeout_s: float = 900.0,
                  quiet: bool = False, title: str = "neuralign live demo (simulated amplifier)",
                  ) -> dict:
    """Run the demo; return ``{"paths": ..., "snapshot": Snapshot, "result": AlignmentResult}``."""
    from ..commands.live import write_results
    from ..io.features import load_features
    from .design import load_design
    from .lsl_io import resolve
    from .session import LiveSession

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    features = load_features(features_path)
    name = f"neuralign-demo-{uuid.uuid4().hex[:8]}"
    design_path = out / "design.json"
    if design_path.exists():
        design_path.unlink()
    args = [sys.executable, "-m", "neuralign.cli", "simulate-amp", "--name", name,
            "--source-id", name, "--features", str(features_path), "--schedule",
            "--design-out", str(design_path), "--train-reps", str(train_reps),
            "--test-reps", str(test_reps), "--soa", str(soa), "--snr", str(snr),
            "--channels", str(channels)]
    if n_test is not None:
        args += ["--n-test", str(n_test)]
    env = dict(os.environ, LSLAPICFG=str(configure_lsl()))
    log = open(out / "simulate-amp.log", "wb")  # noqa: SIM115 - closed below
    amp = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        resolve(name, what="EEG", timeout=60)
        t0 = time.monotonic()
        while not design_path.exists():
            if amp.poll() is not None or time.monotonic() - t0 > 60:
                raise NeuralignError("the simulated amplifier did not start",
                                     path=out / "simulate-amp.log")
            time.sleep(0.1)
        design = load_design(design_path)
        n_total = sum(design.reps.values())
        sess = LiveSession(features, eeg_stream=name, marker_stream=f"{name}-markers",
                           out_dir=out, design=design, refresh_hz=refresh_hz)
        sess.start()
        end = time.monotonic() + timeout_s
        last = 0.0
        while time.monotonic() < end and sess.running:
            s = sess.snapshot
            if s is not None and s.epochs_accepted + s.epochs_rejected >= n_total:
                break
            if not quiet and time.monotonic() - last > 5:
                last = time.monotonic()
                print(sess.status_line(), file=sys.stderr, flush=True)
            time.sleep(0.2)
        result = sess.stop()
        sess.check()
    finally:
        if amp.poll() is None:
            amp.terminate()
            try:
                amp.wait(10)
            except subprocess.TimeoutExpired:
                amp.kill()
        log.close()
    paths = write_results(result, out, title=title,
                          extra={"recording": str(out / "recording"), "design": str(design_path)})
    if not quiet:
        print(sess.status_line(), file=sys.stderr)
    return {"paths": paths, "snapshot": sess.snapshot, "result": result}

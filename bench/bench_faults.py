"""Fault figures for docs/realtime.md's "What is guaranteed" table.

    .venv/bin/python bench/bench_faults.py [--quick]

Measures, with real LSL outlets in subprocesses (machine-scope configuration):

1. delivery: a counter channel at 64 ch x 1 kHz through `neuralign live`'s recording (dropped and
   duplicated samples);
2. `kill -9` of `live`: seconds of EEG not on disk (kill time - last recorded timestamp), and
   whether the truncated recording analyses;
3. corruption: one byte flipped at random places of a recording: EEG seconds skipped per flip,
   samples kept;
4. signals: SIGHUP, SIGTERM, SIGINT and a broken output pipe: exit status, results written,
   seconds from the signal to exit;
5. `kill -9` of the parent of `session`-style children: seconds until the amplifier child is gone;
6. network: the sockets an outlet process opens and their bound addresses.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neuralign.lsl import configure_lsl, listening_sockets  # noqa: E402

configure_lsl()

from neuralign.io.features import save_features  # noqa: E402
from neuralign.realtime import xdf, xdfread  # noqa: E402
from neuralign.realtime.integrity import check_recording  # noqa: E402
from neuralign.realtime.recording import EEG_ID, read_meta, stream_hints  # noqa: E402
from neuralign.sim.features import hierarchical_features  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def cli(args, log: Path, **kw) -> subprocess.Popen:
    """``neuralign ARGS`` in its own process group, output to ``log``."""
    fh = open(log, "wb")  # noqa: SIM115 - closed when the process ends
    return subprocess.Popen([sys.executable, "-m", "neuralign.cli", *args], stdout=fh,
                            stderr=subprocess.STDOUT, env=ENV, cwd=str(ROOT),
                            start_new_session=True, **kw)


def wait_for(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def end(proc) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


def recorded_eeg(out: Path):
    ch = [c for c in xdfread.read_chunks(out / "recording" / "session.xdf")
          if c.tag == xdf.TAG_SAMPLES and c.stream_id == EEG_ID]
    return np.concatenate([c.data for c in ch]), np.concatenate([c.ts for c in ch])


def amp(d: Path, name: str, *extra) -> subprocess.Popen:
    if "--schedule" in extra:  # the design beside the logs, not in the working directory
        extra = (*extra, "--design-out", str(d / f"{name}-design.json"))
    p = cli(["simulate-amp", "--eeg-stream", name, "--source-id", name, *extra],
            d / f"amp-{name}.log")
    return p


def live(d: Path, name: str, out: Path, feats: Path, *extra, **kw) -> subprocess.Popen:
    return cli(["live", "--eeg-stream", name, "--marker-stream", f"{name}-markers", "--features",
                str(feats), "--out", str(out), "--refresh-every", "0.5", *extra],
               d / f"live-{out.name}.log", **kw)


def delivery(d: Path, feats: Path, seconds: float) -> dict:
    name = f"bf-cnt-{uuid.uuid4().hex[:6]}"
    a = amp(d, name, "--channels", "64", "--sfreq", "1000", "--counter", "--features",
            str(feats), "--schedule", "--train-reps", "200", "--soa", "0.2",
            "--duration", str(seconds + 40))
    out = d / "delivery"
    lv = live(d, name, out, feats, "--duration", str(seconds))
    try:
        lv.wait(seconds + 120)
    finally:
        end(lv)
        end(a)
    data, _ = recorded_eeg(out)
    steps = np.diff(data[:, 0].astype(np.int64))
    return {"channels": 64, "rate": 1000, "seconds": seconds, "samples": int(data.shape[0]),
            "dropped": int(steps[steps > 1].sum() - (steps > 1).sum()),
            "duplicated": int((steps < 1).sum())}


def kill9(d: Path, feats: Path, n: int) -> dict:
    import pylsl

    lost = []
    for k in range(n):
        name = f"bf-k9-{uuid.uuid4().hex[:6]}"
        a = amp(d, name, "--features", str(feats), "--schedule", "--train-reps", "50",
                "--soa", "0.1", "--duration", "120")
        out = d / f"k9-{k}"
        lv = live(d, name, out, feats)
        try:
            x = out / "recording" / "session.xdf"
            wait_for(lambda x=x: x.exists() and x.stat().st_size > 300_000, 60)
            time.sleep(random.uniform(0.5, 2.0))
            t = pylsl.local_clock()
            os.killpg(lv.pid, signal.SIGKILL)
            lv.wait(10)
        finally:
            end(lv)
            end(a)
        _, ts = recorded_eeg(out)
        lost.append(t - ts[-1])
    rc = subprocess.run([sys.executable, "-m", "neuralign.cli", "analyze", "--dataset",
                         f"recording:{d / 'k9-0'}", "--features", str(feats), "--out",
                         str(d / "k9-an"), "--quiet"], env=ENV, cwd=str(ROOT),
                        capture_output=True).returncode
    return {"runs": n, "lost_s_median": float(np.median(lost)), "lost_s_max": float(max(lost)),
            "analyze_exit": rc}


def corruption(d: Path, n_flips: int) -> dict:
    """Flip one byte at random places of the delivery recording (a copy each time)."""
    xp = d / "delivery" / "recording" / "session.xdf"
    src = xp.read_bytes()
    rng = random.Random(0)
    hints = stream_hints(read_meta(xp))  # as analyze and verify-recording read it
    whole = check_recording(xp, hints=hints)
    skipped, kept = [], []
    for _ in range(n_flips):
        raw = bytearray(src)
        pos = rng.randrange(200, len(raw))
        raw[pos] ^= 1 << rng.randrange(8)
        p = d / "flip.xdf"
        p.write_bytes(bytes(raw))
        integ = check_recording(p, hints=hints)
        skipped.append(integ.skipped_s)
        kept.append(integ.eeg_samples / whole.eeg_samples)
    return {"flips": n_flips, "detected": int(sum(s > 0 for s in skipped)),
            "skipped_s_max": float(max(skipped)), "kept_min": float(min(kept)),
            "kept_median": float(np.median(kept))}


def signals(d: Path, feats: Path) -> dict:
    name = f"bf-sig-{uuid.uuid4().hex[:6]}"
    a = amp(d, name, "--channels", "8", "--sfreq", "250", "--features", str(feats),
            "--schedule", "--train-reps", "100", "--soa", "0.1", "--duration", "200")
    res = {}
    try:
        for how in ("SIGHUP", "SIGTERM", "SIGINT", "broken pipe"):
            out = d / f"sig-{how.replace(' ', '_')}"
            if how == "broken pipe":
                lv = subprocess.Popen(
                    [sys.executable, "-m", "neuralign.cli", "live", "--eeg-stream", name,
                     "--marker-stream", f"{name}-markers", "--features", str(feats), "--out",
                     str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV,
                    cwd=str(ROOT), start_new_session=True)
                while b"connected:" not in lv.stdout.readline():
                    pass
                time.sleep(2.0)
                t0 = time.monotonic()
                lv.stdout.close()
            else:
                lv = live(d, name, out, feats)
                log = d / f"live-{out.name}.log"
                wait_for(lambda log=log: "connected:" in log.read_text(), 60)
                time.sleep(2.0)
                t0 = time.monotonic()
                lv.send_signal(getattr(signal, how))
            lv.wait(120)
            res[how] = {"exit": lv.returncode, "results": (out / "results.json").exists(),
                        "seconds_to_exit": round(time.monotonic() - t0, 2),
                        "xdf_closed": check_recording(out / "recording" / "session.xdf").closed}
    finally:
        end(a)
    return res


def lifeline(d: Path, n: int) -> dict:
    times = []
    for _ in range(n):
        name = f"bf-life-{uuid.uuid4().hex[:6]}"
        drv = subprocess.Popen([sys.executable, "-c", (
            "import time\nfrom pathlib import Path\n"
            "from neuralign.commands.orchestrate import CLI, start_child\n"
            f"c = start_child('simulate-amp', [*CLI, 'simulate-amp', '--eeg-stream', '{name}'],"
            f" Path({str(d / 'logs')!r}))\n"
            "print(c.proc.pid, flush=True)\ntime.sleep(600)\n")],
            stdout=subprocess.PIPE, text=True, env=ENV, cwd=str(ROOT), start_new_session=True)
        pid = int(drv.stdout.readline())
        time.sleep(3.0)
        t0 = time.monotonic()
        os.kill(drv.pid, signal.SIGKILL)
        drv.wait(10)

        def gone(pid=pid) -> bool:
            try:
                os.kill(pid, 0)
                with open(f"/proc/{pid}/stat") as fh:
                    return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
            except (ProcessLookupError, FileNotFoundError):
                return True

        wait_for(gone, 30)
        times.append(time.monotonic() - t0)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return {"runs": n, "child_gone_s_median": float(np.median(times)),
            "child_gone_s_max": float(max(times))}


def network(d: Path) -> dict:
    name = f"bf-net-{uuid.uuid4().hex[:6]}"
    a = amp(d, name, "--channels", "2", "--sfreq", "100", "--duration", "30")
    try:
        import pylsl

        pylsl.resolve_byprop("name", name, 1, 20)
        return {"sockets": [f"{p} {ip}:{port}" for p, ip, port in listening_sockets(a.pid)]}
    finally:
        end(a)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    q = args.quick
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        fs = hierarchical_features([f"stim_{i:03d}" for i in range(60)], n_layers=3, dim=12,
                                   seed=1)
        feats = d / "f.npz"
        save_features(feats, fs)
        out = {"delivery": delivery(d, feats, 10.0 if q else 60.0)}
        print(json.dumps(out["delivery"]), flush=True)
        out["corruption"] = corruption(d, 20 if q else 200)
        print(json.dumps(out["corruption"]), flush=True)
        out["kill9"] = kill9(d, feats, 2 if q else 5)
        print(json.dumps(out["kill9"]), flush=True)
        out["signals"] = signals(d, feats)
        print(json.dumps(out["signals"]), flush=True)
        out["lifeline"] = lifeline(d, 2 if q else 5)
        print(json.dumps(out["lifeline"]), flush=True)
        out["network"] = network(d)
        print(json.dumps(out["network"]), flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

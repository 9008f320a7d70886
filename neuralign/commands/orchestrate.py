"""Run presenter + (simulated) amplifier + live engine together as subprocesses.

``neuralign session --simulate`` starts, in this order:

1. the design (in this process): ``OUT/presenter/design.json``, ``trials.csv``,
   ``session_config.toml``; and the features the engine and the simulated brain share;
2. ``neuralign simulate-amp --listen MARKERS`` (EEG stream; it answers the presenter's markers
   with the planted evoked responses);
3. ``neuralign present --wait-file GATE`` (creates the marker outlet, then waits at the gate);
4. ``neuralign live --design ...`` (or ``neuralign gui``); once it reports that it is connected
   the gate file is created and the presenter starts, so no marker is lost;
5. when the presenter ends (or ``--duration`` is up): ``live`` gets SIGTERM after the last
   epoch's data has arrived and writes ``results.json`` / ``maps.npz`` / figures /
   ``report.html`` and its recording into ``OUT``; then the amplifier is stopped.

Every child's output goes to ``OUT/logs/<name>.log``. Every child runs in its own process
group and holds the read end of a lifeline pipe (:func:`~neuralign.commands.console.lifeline`):
if this process dies, even by ``kill -9``, each child sees end-of-file at once and stops
cleanly (``live`` writes its results), so none outlives the session.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NeuralignError
from ..stimulus.config import SessionConfig
from ..stimulus.run import prepare_plan
from . import neuralign_command
from .console import lifeline
from .present import XVFB_ENV, builtin_stimuli, xvfb_command

CLI = neuralign_command()
_LIFELINE: tuple[dict, int, int] | None = None  # children end when this process ends


@dataclass
class Child:
    """A running sub-command with its log file."""

    name: str
    proc: subprocess.Popen
    log_path: Path
    lines: list[str] = field(default_factory=list)
    seen: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def tail(self, n: int = 8) -> str:
        """The last ``n`` output lines of the child, for error messages."""
        return "\n".join(self.lines[-n:])


def start_child(name: str, cmd: list[str], logs: Path, *, watch: str = "",
                env: dict | None = None) -> Child:
    """Start ``cmd`` in its own process group, holding this process's lifeline.

    Its output (stdout+stderr) is copied to ``logs/name.log``; ``seen`` is set on the first
    line containing ``watch``.

    Parameters
    ----------
    name : str
        The child's name (its log is ``logs/name.log``).
    cmd : list of str
        The command line.
    logs : Path
        The log folder.
    watch : str
        A text to watch for in the output.
    env : dict | None
        Added to the environment.

    Returns
    -------
    Child
        The running child.
    """
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    global _LIFELINE
    if _LIFELINE is None:  # the write end stays open in this process until it ends
        _LIFELINE = lifeline()
    line_env, line_fd, _ = _LIFELINE
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        env={**os.environ, **(env or {}), **line_env}, start_new_session=True,
        pass_fds=(line_fd,),
    )
    child = Child(name, proc, log_path)

    def pump() -> None:
        with open(log_path, "w", encoding="utf-8") as f, proc.stdout:
            f.write("$ " + " ".join(cmd) + "\n")
            for line in proc.stdout:
                f.write(line)
                f.flush()
                text = line.rstrip("\r\n")
                for part in text.split("\r"):
                    if part.strip():
                        child.lines.append(part)
                if watch and watch in text:
                    child.seen.set()

    child._thread = threading.Thread(target=pump, daemon=True)
    child._thread.start()
    return child


def _stop(child: Child, sig: int, *, timeout: float) -> int | None:
    """Send ``sig`` to the child (if running) and wait; kill it if it does not exit."""
    if child.proc.poll() is None:
        try:  # the child's own process group (xvfb-run, Xvfb and the presenter together)
            os.killpg(child.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            child.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait(timeout=10)
    if child._thread is not None:
        child._thread.join(timeout=5)
    return child.proc.returncode


def _terminate_on_sigterm():
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt so the children are stopped (they run in
    their own process groups and would outlive us). Returns a function restoring the old
    handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}

    def restore() -> None:
        for sig, h in old.items():
            signal.signal(sig, h)

    return restore


def simulated_features(ids: list[str], out: Path, *, seed: int) -> Path:
    """Synthetic hierarchical features for ``ids`` (when no real features are given).

    Parameters
    ----------
    ids : list of str
        The stimulus ids.
    out : Path
        The ``.npz`` file to write.
    seed : int
        Seed of the synthetic features.

    Returns
    -------
    Path
        ``out``.
    """
    from ..io.features import save_features
    from ..sim.features import hierarchical_features

    return save_features(out, hierarchical_features(ids, seed=seed))


@dataclass
class SessionSetup:
    """Everything the orchestrator needs (built by ``neuralign session``)."""

    config: SessionConfig
    out: Path
    features: Path | None = None
    model: str = ""  # compute real features with `neuralign features --model`
    gui: bool = False
    duration: float | None = None
    snr: float = 0.3
    channels: int = 17
    sfreq: float = 1000.0
    xvfb: bool = False
    connect_timeout: float = 60.0
    live_args: list[str] = field(default_factory=list)  # given to `live` and `gui`
    #: several models (``LABEL=PATH``): the engine compares them, the amplifier plants the
    #: first (``features``)
    model_specs: list[str] = field(default_factory=list)
    screenshot: Path | None = None  # GUI: save the window here and exit after exit_after s
    exit_after: float | None = None


def _features_for(plan: SessionSetup, design, logs: Path) -> tuple[Path, str]:
    ids = list(design.roles)
    if plan.features is not None:
        return plan.features, "given"
    source = plan.config.stimuli.source
    if source.startswith("features:"):
        return plan.config.resolve_path(source.partition(":")[2]), "the stimulus source"
    if plan.model:
        stim = "builtin" if source == "builtin" else str(
            plan.config.resolve_path(source.partition(":")[2] if ":" in source else source))
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(plan.model).name)
        cache = plan.out / f"features_{safe}.npz"
        print(f"computing {plan.model} features of {stim} ...", flush=True)
        child = start_child("features", [*CLI, "features", "--model", plan.model, "--stimuli", stim,
                                    "--out", str(cache), "--no-progress"], logs)
        rc = child.proc.wait()
        child._thread.join(timeout=5)
        if rc != 0 or not cache.is_file():
            raise NeuralignError(f"`neuralign features` failed (exit {rc}):\n{child.tail()}",
                                 path=child.log_path)
        return cache, f"model {plan.model} (real), EEG simulated"
    path = simulated_features(ids, plan.out / "features_simulated.npz", seed=plan.config.seed)
    return path, "synthetic (neuralign.sim hierarchy; no model)"


def run_session(plan: SessionSetup) -> int:
    """Run the whole simulated session; return the exit status.

    Raises
    ------
    NeuralignError
        Bad input (found before anything starts), or a child that failed (naming its log).
    """
    out = plan.out
    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    pres_dir = out / "presenter"
    gate, stop_file = out / ".presenter_go", out / ".presenter_stop"
    gate.unlink(missing_ok=True)
    stop_file.unlink(missing_ok=True)
    design = prepare_plan(plan.config, builtin=builtin_stimuli)
    paths = design.write(pres_dir)
    features, kind = _features_for(plan, design, logs)
    markers = plan.config.markers.stream_name
    eeg = f"neuralign-sim-eeg-{uuid.uuid4().hex[:6]}"
    print(f"session: {len(design.trials)} presentations, ~{design.duration_s():.0f} s; "
          f"features: {kind} ({features}); EEG stream {eeg!r}, markers {markers!r}; "
          f"output {out}", flush=True)
    children: list[Child] = []
    restore = _terminate_on_sigterm()
    try:
        amp = start_child("simulate-amp", [
            *CLI, "simulate-amp", "--eeg-stream", eeg, "--features", str(features), "--listen", markers,
            "--seed", str(plan.config.seed), "--snr", str(plan.snr), "--channels",
            str(plan.channels), "--sfreq", str(plan.sfreq)], logs)
        children.append(amp)
        pres_cmd = ["present", "--config", str(paths["config"]), "--out", str(pres_dir),
                    "--wait-file", str(gate), "--stop-file", str(stop_file), "--no-progress"]
        env = {}
        if plan.xvfb:
            cmd = xvfb_command(pres_cmd, resolution=plan.config.monitor.resolution)
            env[XVFB_ENV] = "1"
        else:
            cmd = [*CLI, *pres_cmd]
        presenter = start_child("present", cmd, logs, env=env, watch="presenting ")
        children.append(presenter)
        feats = [a for spec in (plan.model_specs or [str(features)])
                 for a in ("--features", spec)]
        if plan.gui:
            gui_cmd = [*CLI, "gui", "--eeg-stream", eeg, "--marker-stream", markers, *feats,
                       "--out", str(out), "--design", str(paths["design"]),
                       "--order", plan.config.order, *plan.live_args]
            gui_env = None
            if plan.screenshot is not None:
                gui_cmd += ["--screenshot", str(plan.screenshot)]
                gui_env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
            if plan.exit_after is not None:
                gui_cmd += ["--exit-after", str(plan.exit_after)]
            engine = start_child("gui", gui_cmd, logs, env=gui_env)
        else:
            engine = start_child("live", [
                *CLI, "live", "--eeg-stream", eeg, "--marker-stream", markers, *feats,
                "--out", str(out), "--design", str(paths["design"]),
                "--connect-timeout", str(plan.connect_timeout), "--order", plan.config.order,
                *plan.live_args],
                logs, watch="connected:")
        children.append(engine)
        _open_gate(plan, engine, presenter, amp, gate)
        print("engine connected: starting the presenter", flush=True)
        t_end = None
        while presenter.proc.poll() is None and not presenter.seen.wait(0.1):
            pass  # --duration counts from the presenter's first image
        if plan.duration is not None:
            t_end = time.monotonic() + plan.duration
        stopped = False
        while presenter.proc.poll() is None and engine.proc.poll() is None:
            if t_end is not None and time.monotonic() >= t_end:
                print(f"--duration {plan.duration:g} s reached: stopping the presenter",
                      flush=True)
                stop_file.touch()  # the presenter aborts cleanly at its next frame
                stopped = True
                break
            time.sleep(0.2)
        if presenter.proc.poll() is None and engine.proc.poll() is not None:
            stop_file.touch()  # the window was closed (or --exit-after): end the presentation
            stopped = True
        pres_rc = presenter.proc.wait(timeout=30)
        if engine.proc.poll() not in (None, 0) and not plan.gui:  # 0: its --stop-when held
            raise NeuralignError(f"`neuralign live` ended early (exit {engine.proc.returncode})"
                                 f":\n{engine.tail()}", path=engine.log_path)
        # the last epoch needs tmax of data after its marker (plus amplifier latency)
        time.sleep(1.5)
        if plan.gui and engine.proc.poll() is None:
            print("presenter finished; close the window to end the session", flush=True)
            engine_rc = engine.proc.wait()
        else:
            engine_rc = _stop(engine, signal.SIGTERM, timeout=180)
        _stop(amp, signal.SIGINT, timeout=15)
    finally:  # (normally all stopped already) presenter, then engine, then amplifier
        stop_file.touch()
        by_name = {c.name: c for c in children}
        if "present" in by_name:
            try:
                by_name["present"].proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for name in ("present", "live", "gui", "simulate-amp"):
            if name in by_name:
                _stop(by_name[name], signal.SIGTERM, timeout=60 if name == "live" else 10)
        restore()
        gate.unlink(missing_ok=True)
        stop_file.unlink(missing_ok=True)
    for line in presenter.lines:
        if line.startswith(("presenter ", "neuralign: warning")):
            print(line, flush=True)
    if not plan.gui:
        for line in engine.lines[-16:]:
            if line.startswith(("epochs:", "results:", "report:", "recording:")):
                print(line, flush=True)
    if engine_rc not in (0, None):
        raise NeuralignError(f"`neuralign live` failed (exit {engine_rc}):\n{engine.tail()}",
                             path=engine.log_path)
    if pres_rc not in (0, 1):
        raise NeuralignError(f"the presenter failed (exit {pres_rc}):\n{presenter.tail()}",
                             path=presenter.log_path)
    print(f"session done: results in {out} (logs in {logs})", flush=True)
    return 0 if pres_rc == 0 or stopped else 1


def _open_gate(plan: SessionSetup, engine: Child, presenter: Child, amp: Child,
               gate: Path, *, gui_wait: float = 5.0) -> None:
    """Create the presenter's start gate once the engine is connected (GUI: after a pause)."""
    t0 = time.monotonic()
    while True:
        for child in (engine, presenter, amp):
            if child.proc.poll() is not None:
                time.sleep(0.3)  # let the pump read the last lines
                raise NeuralignError(
                    f"`neuralign {child.name}` ended before the session started (exit "
                    f"{child.proc.returncode}):\n{child.tail()}", path=child.log_path)
        waited = time.monotonic() - t0
        if engine.seen.is_set() or (plan.gui and waited > gui_wait):
            break  # (the GUI does not report its connection: give it a few seconds)
        if waited > plan.connect_timeout + 30:
            raise NeuralignError(f"`neuralign live` did not connect:\n{engine.tail()}",
                                 path=engine.log_path)
        time.sleep(0.1)
    gate.touch()

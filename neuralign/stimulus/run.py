"""From a config to a finished run: prepare (check everything), write the design, present."""

from __future__ import annotations

from pathlib import Path

from ..base import fill_doc
from ..errors import NeuralignError
from ..io.backchannel import BackChannelReader
from ..lsl import MarkerOutlet
from .config import SessionConfig
from .plan import PresentationPlan, build_plan, target_stimulus
from .sources import BuiltinSet, check_readable, resolve_source


@fill_doc
def prepare_plan(config: SessionConfig, *, builtin: BuiltinSet | None = None,
                 check_images: bool = True, progress: bool = True) -> PresentationPlan:
    """Resolve the stimuli, refuse bad input, and build the trial list.

    Everything that can be wrong with the input (unknown or unreadable images, impossible
    designs) is found here, before any window or LSL stream exists.

    Parameters
    ----------
    config : SessionConfig
        The session configuration.
    builtin : callable | None
        Provides the built-in stimulus set (for ``source = "builtin"``).
    check_images : bool
        Decode every image once before the run.
    %(progress)s

    Returns
    -------
    PresentationPlan
        The plan, ready to write and present.
    """
    stimuli = resolve_source(config.stimuli.source, images=config.stimuli.images,
                             resolve=config.resolve_path, builtin=builtin)
    target = target_stimulus(config)
    plan = build_plan(stimuli, config, target=target)
    if check_images:
        used = list(plan.stimuli.values()) + ([target] if target is not None else [])
        check_readable(used, progress=progress)
    return plan


def wait_for_file(path: str | Path, *, timeout: float) -> None:
    """Block until ``path`` exists (a start gate set by ``neuralign session``)."""
    import time

    path = Path(path)
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise NeuralignError(f"start signal not given within {timeout:g} s", path=path)
        time.sleep(0.05)


def present(config: SessionConfig, out_dir: str | Path, *, builtin: BuiltinSet | None = None,
            design_only: bool = False, inject_keys: dict[int, list[str]] | None = None,
            progress: bool = True, wait_file: str | Path | None = None,
            wait_file_timeout: float = 120.0, stop_file: str | Path | None = None) -> int:
    """Run a presenter session into ``out_dir``.

    Order: check the input and write ``design.json`` / ``trials.csv``; create the marker
    outlet; wait for a consumer (and for ``wait_file`` to exist, when given: the start gate
    ``neuralign session`` sets once ``live`` is connected); open the window and present; write
    the run log as it goes.

    Parameters
    ----------
    config : SessionConfig
        The session configuration.
    out_dir : str | Path
        Receives the design files, the run log and the summary.
    builtin : callable | None
        Provides the built-in stimulus set (for ``source = "builtin"``).
    design_only : bool
        Check the input, write the design files and stop.
    inject_keys : dict of int to list of str | None
        Key presses to emulate at trial onsets (tests, demos).
    progress : bool
        Show progress bars.
    wait_file : str | Path | None
        Start presenting only once this file exists (the gate of ``neuralign session``).
    wait_file_timeout : float
        Seconds to wait for ``wait_file``.
    stop_file : str | Path | None
        Abort cleanly at the next frame once this file exists.

    Returns
    -------
    int
        0, or 1 if the run was aborted.
    """
    from .presenter import Presenter, check_display

    out = Path(out_dir)
    if not design_only:
        check_display()  # before the (possibly long) image check
    plan = prepare_plan(config, builtin=builtin, progress=progress)
    paths = plan.write(out)
    n_test = len(plan.test_ids)
    n_targets = sum(1 for t in plan.trials if t.kind == "target")
    print(
        f"design: {len(plan.trials)} presentations of {len(plan.roles) - n_test} train + "
        f"{n_test} test stimuli{f' + {n_targets} targets' if n_targets else ''}, "
        f"{plan.n_blocks} block(s), "
        f"{plan.timing.on}+{plan.timing.off} frames at {plan.timing.refresh_hz:g} Hz, "
        f"~{plan.duration_s():.1f} s; written to {paths['design']}",
        flush=True,
    )
    if design_only:
        return 0
    from .order import SequenceOrder

    outlet = MarkerOutlet(config.markers.stream_name, source_id=config.markers.source_id)
    # the back channel: the closed loop's blocks, and stop requests in either order
    reader = BackChannelReader(config.markers.stream_name)
    reader.start()
    closed = config.order == "closed-loop"
    try:
        outlet.wait_for_consumer(config.markers.wait_for_consumer_s,
                                 settle=0.0 if wait_file else config.markers.settle_s)
        if wait_file is not None:
            wait_for_file(wait_file, timeout=wait_file_timeout)
        if closed and not reader.connect(config.closed_loop.connect_s):
            print(f"neuralign: warning: closed loop: no back channel {reader.name!r} within "
                  f"{config.closed_loop.connect_s:g} s (is `neuralign live --order closed-loop` "
                  "running?): showing the planned order until blocks come", flush=True)
        order = SequenceOrder(plan, reader=reader, closed_loop=closed,
                              timeout_s=config.closed_loop.timeout_s)
        presenter = Presenter(plan, out_dir=out, outlet=outlet, inject_keys=inject_keys,
                              progress=progress, stop_file=stop_file, order=order)
        summary = presenter.run()
    finally:
        outlet.close()
        reader.close()
    drops = ", ".join(str(d) for d in summary.dropped_per_block) or "-"
    status = "ABORTED at " + summary.abort_where if summary.aborted else "done"
    if summary.stopped:
        status = f"stopped by the live session ({summary.stopped})"
    if summary.order == "closed-loop":
        status += (f"; closed loop: {summary.closed_loop_sequences} sequences chosen live, "
                   f"{summary.fallback_sequences} planned (fallback)")
    print(
        f"presenter {status}: {summary.n_shown}/{summary.n_planned} images, "
        f"{summary.markers_sent} markers, dropped frames per block: {drops}, "
        f"targets hit {summary.hits}, missed {summary.misses}, false alarms "
        f"{summary.false_alarms}; log in {out / 'run_log.csv'}",
        flush=True,
    )
    return 1 if summary.aborted else 0


def parse_inject(items: list[str] | None) -> dict[int, list[str]]:
    """``["3:escape", "5:space"]`` -> ``{3: ["escape"], 5: ["space"]}``."""
    out: dict[int, list[str]] = {}
    for item in items or []:
        trial, _, key = item.partition(":")
        if not trial.strip().isdigit() or not key:
            raise NeuralignError(f"--inject-key expects TRIAL:KEY, got {item!r}")
        out.setdefault(int(trial), []).append(key.strip())
    return out

"""The PsychoPy RSVP presenter: frame-counted image presentation with LSL markers on the flip.

Frame loop practice (PsychoPy): durations in whole frames; two ImageStims alternate, so the
next image's texture is uploaded while the current one is on screen; the marker is pushed with
``win.callOnFlip`` right after the flip that first shows the image; ``win.recordFrameIntervals``
records every interval. Without vsync (Xvfb, some virtual machines) flips return at once: the
presenter then paces frames in software (``monitor.pace``) so a simulated session still runs in
real time, and says so (timings there are approximate).

Which images a sequence shows comes from a :class:`~neuralign.stimulus.order.SequenceOrder`:
the plan's, or in closed loop the live session's blocks over the back channel (the frame loop
inserts fixation frames while a due block is awaited, up to its timeout).

PsychoPy is imported only inside :meth:`Presenter.run` (the rest of neuralign never needs it).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import NeuralignError
from ..lsl import MarkerOutlet
from .images import ImageFeeder, image_size_pix
from .order import SequenceOrder
from .plan import PresentationPlan, Trial
from .runlog import RunLog, to_json


class PresenterWarning(UserWarning):
    """Timing caveats found at run time (no vsync, refresh differs from the config)."""


class _Stopped(Exception):
    """The live session asked the presentation to end (a ``stop`` on the back channel)."""


class _Abort(Exception):
    """Escape pressed (or the session's stop file appeared)."""

    def __init__(self, reason: str = "Escape") -> None:
        super().__init__(reason)
        self.reason = reason


def has_display() -> bool:
    """Whether a window system is reachable (X11/Wayland on Linux/BSD; elsewhere always)."""
    if not sys.platform.startswith(("linux", "freebsd")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def check_display() -> None:
    """Refuse to start without a display (Linux/BSD: ``DISPLAY`` / ``WAYLAND_DISPLAY``)."""
    if not has_display():
        raise NeuralignError(
            "no display: run under xvfb-run -a --server-args=\"-screen 0 1024x768x24\" "
            "(or pass --xvfb), or start it from a desktop session"
        )


@dataclass
class RunSummary:
    """What happened in a run (also written to ``summary.json``)."""

    n_planned: int
    n_shown: int = 0
    markers_sent: int = 0
    aborted: bool = False
    abort_where: str = ""
    abort_reason: str = ""
    dropped_per_block: list[int] = field(default_factory=list)
    measured_refresh_hz: float | None = None
    paced: bool = False
    hits: int = 0
    misses: int = 0
    false_alarms: int = 0
    duration_s: float = 0.0
    order: str = "random"
    closed_loop_sequences: int = 0
    fallback_sequences: int = 0
    stopped: str = ""  # the reason of a stop request that ended the run

    def to_dict(self) -> dict:
        """The summary as plain data (``summary.json``)."""
        return dict(self.__dict__)


class Presenter:
    """Run a :class:`PresentationPlan` on screen, sending markers on ``outlet``.

    Parameters
    ----------
    plan : PresentationPlan
    out_dir : path-like
        Where ``run_log.jsonl``, ``run_log.csv``, ``frame_intervals.npy`` and ``summary.json``
        are written.
    outlet : MarkerOutlet or None
        The LSL marker stream (created, and its consumer awaited, before :meth:`run`).
    inject_keys : dict, optional
        ``{trial_index: [key, ...]}``: key presses emulated at that trial's onset (through
        PsychoPy's own key buffer). For tests and demos (``--inject-key``).
    progress : bool
        Show a progress bar on stderr.
    stop_file : path-like, optional
        When this file appears the run stops as if Escape was pressed (``neuralign session``
        uses it for ``--duration``).
    order : SequenceOrder, optional
        Where each sequence's images come from (default: the plan's order, no back channel).
    """

    def __init__(self, plan: PresentationPlan, *, out_dir: str | Path,
                 outlet: MarkerOutlet | None, inject_keys: dict[int, list[str]] | None = None,
                 progress: bool = True, stop_file: str | Path | None = None,
                 order: SequenceOrder | None = None) -> None:
        self.plan = plan
        self.out_dir = Path(out_dir)
        self.outlet = outlet
        self.inject_keys = {int(k): list(v) for k, v in (inject_keys or {}).items()}
        self.progress = progress
        self.stop_file = None if stop_file is None else Path(stop_file)
        self.cfg = plan.config
        self.timing = plan.timing
        self.frame_s = plan.timing.frame_s
        self.summary = RunSummary(n_planned=len(plan.trials))
        self.order = order or SequenceOrder(plan, reader=None, closed_loop=False)
        self.summary.order = "closed-loop" if self.order.closed_loop else "random"
        self.shown: list[Trial] = []  # the trials as shown (closed loop: the chosen ids)
        self._t0: float | None = None  # presenter clock at the run's first flip
        self._last_flip: float | None = None
        self._block, self._block_dropped = 0, 0
        self._last_target: tuple[float, dict] | None = None  # onset, its trial row
        self._pending: dict | None = None  # the trial on screen, finished at its offset flip
        self._where = "before the first trial"

    # -- helpers --------------------------------------------------------------------------
    def _marker(self, marker: str, row: dict | None = None) -> None:
        """Push ``marker`` (called right after a flip, via ``callOnFlip``)."""
        if self.outlet is None:
            stamp = float("nan")
        else:
            stamp = self.outlet.push(marker)
            self.summary.markers_sent += 1
        if row is not None:
            row["lsl_time"] = stamp

    def _rel(self, t: float) -> float:
        return t - self._t0 if self._t0 is not None else 0.0

    def _flip(self, planned: float | None, *, showing: int | None = None,
              onset: dict | None = None) -> float:
        """Flip (pacing in software without vsync); count drops; poll keys.

        ``showing`` is the index of the trial whose image this frame shows (None: no image);
        the first flip without the pending trial's image ends that trial.
        """
        if self._pace and planned is not None:
            # half a frame early: without vsync the flip returns at once (a constant offset);
            # with vsync it still lands on the vsync at ``planned`` instead of the next one
            delay = planned - 0.5 * self.frame_s - self._core.getTime()
            if delay > 0:
                time.sleep(delay)
        t = self.win.flip()
        if t is None:
            t = self._core.getTime()
        if self._t0 is None:
            self._t0 = t
        if self._last_flip is not None:
            n_frames = (t - self._last_flip) / self.frame_s
            if n_frames > 1.5:
                self._block_dropped += int(round(n_frames)) - 1
        self._last_flip = t
        if self._pending is not None and self._pending["index"] != showing:
            self._finish_pending(t)
        if onset is not None:  # this flip showed a new image: its row is now pending
            onset["onset_s"] = self._rel(t)
            onset["onset_error_ms"] = (t - planned) * 1000.0
            self._pending = onset
            self.summary.n_shown += 1
            if onset["kind"] == "target":
                self._last_target = (onset["onset_s"], onset)
            self._inject(onset["index"])
        self._poll_keys()
        return t

    def _finish_pending(self, t: float) -> None:
        row = self._pending
        self._pending = None
        row["offset_s"] = self._rel(t)
        row["dropped_frames"] = self._block_dropped - row.pop("_dropped_before")
        self.log.trial(row)

    def _poll_keys(self) -> None:
        if self.stop_file is not None and self.stop_file.exists():
            raise _Abort("stop request")
        keys = self._event.getKeys(timeStamped=True)  # core.getTime() base, as win.flip()
        for key, when in keys:
            if key == "escape":
                raise _Abort
            if key == self.cfg.task.response_key:
                self._response(when)

    def _response(self, when: float) -> None:
        """A response key press at ``when`` (presenter clock): marker, hit/false alarm, log row."""
        rel = self._rel(when)
        if self.outlet is not None:  # stamped at the key press, not at this poll
            self.outlet.push("response", stamp=self.outlet.local_clock()
                             - (self._core.getTime() - when))
            self.summary.markers_sent += 1
        hit, rt, target = False, None, None
        if self._last_target is not None:
            onset, row = self._last_target
            rt = rel - onset
            if 0 <= rt <= self.cfg.task.response_window_ms / 1000.0 and not row.get("_answered"):
                hit, target = True, row
                row["_answered"] = True
                self.summary.hits += 1
        if not hit:
            self.summary.false_alarms += 1
        self.log.trial({
            "index": "" if target is None else target["index"], "block": self._block,
            "kind": "response", "stimulus_id": "" if target is None else target["stimulus_id"],
            "marker": "response", "onset_s": rel, "responded": hit, "rt_s": rt if hit else None,
        }, event="response")

    def _inject(self, index: int) -> None:
        """Emulated key presses for trial ``index``, right after its onset flip."""
        for key in self.inject_keys.get(index, []):
            self._event._onPygletKey(key, 0, emulated=True)

    # -- the run --------------------------------------------------------------------------
    def _open_window(self) -> None:
        from psychopy import core, event, logging, monitors, visual

        logging.console.setLevel(logging.ERROR)
        self._core, self._event = core, event
        m, d = self.cfg.monitor, self.cfg.display
        mon = monitors.Monitor(m.name, width=m.width_cm, distance=m.distance_cm, autoLog=False)
        mon.setSizePix(list(m.resolution))
        self.win = visual.Window(
            size=list(m.resolution), fullscr=m.fullscreen, screen=m.screen, monitor=mon,
            units="pix", color=list(d.background), colorSpace="rgb255", allowGUI=False,
            waitBlanking=True, checkTiming=False, autoLog=False,
        )
        self.win.mouseVisible = False

    def _measure_refresh(self) -> None:
        m = self.cfg.monitor
        measured = self.win.getActualFrameRate(nIdentical=10, nMaxFrames=120, nWarmUpFrames=10,
                                               threshold=1)
        self.summary.measured_refresh_hz = None if measured is None else float(measured)
        no_vsync = bool(measured is None or measured > 1.5 * m.refresh_hz)
        self._pace = bool(m.pace == "on" or (m.pace == "auto" and no_vsync))
        self.summary.paced = self._pace
        if self._pace:
            warnings.warn(
                f"no vsync (measured {'no stable' if measured is None else f'{measured:.0f}'} Hz, e.g. Xvfb): frames are paced in"
                f" software at {m.refresh_hz:g} Hz; flip times are approximate",
                PresenterWarning, stacklevel=2,
            )
        elif measured is not None and abs(measured - m.refresh_hz) > 0.05 * m.refresh_hz:
            msg = (
                f"the display refreshes at {measured:.2f} Hz but monitor.refresh_hz = "
                f"{m.refresh_hz:g}: durations in frames would be wrong; set monitor.refresh_hz"
            )
            if m.check_refresh == "error":
                raise NeuralignError(msg)
            if m.check_refresh == "warn":
                warnings.warn(msg, PresenterWarning, stacklevel=2)

    def _make_stims(self) -> None:
        from psychopy import visual

        d = self.cfg.display
        self.images = [visual.ImageStim(self.win, image=None, units="pix", autoLog=False)
                       for _ in range(2)]
        fix_rgb = [c / 127.5 - 1.0 for c in d.fixation_color]
        self.fixation = visual.Circle(
            self.win, radius=d.fixation_size_pix / 2, units="pix", fillColor=fix_rgb,
            lineColor=fix_rgb, colorSpace="rgb", autoLog=False,
        ) if d.fixation else None
        self.diode = None
        if d.photodiode:
            w, h = self.win.size
            s = d.photodiode_size_pix
            x = (w / 2 - s / 2) * (1 if "right" in d.photodiode_corner else -1)
            y = (h / 2 - s / 2) * (1 if "top" in d.photodiode_corner else -1)
            self.diode = visual.Rect(self.win, width=s, height=s, pos=(x, y), units="pix",
                                     fillColor=[1, 1, 1], lineColor=None, colorSpace="rgb",
                                     autoLog=False)
        self.text = visual.TextStim(self.win, text="", units="pix", height=24,
                                    color=[1, 1, 1], colorSpace="rgb", autoLog=False)

    def _warm_up(self) -> None:
        """Draw every kind of stimulus once (shaders, fonts, first texture), then clear."""
        probe = self.plan.trials[0] if self.plan.trials else None
        if probe is not None:
            im = self.plan.stimuli.get(probe.stimulus_id) or self.plan.target
            if im is not None:
                pic = im.open()
                self.images[0].image = pic
                self.images[0].size = (16, 16)
                self.images[0].draw()
        self.text.text = " "
        self.text.draw()
        self._draw_background(diode_on=True)
        self.win.flip()
        self._draw_background(diode_on=False)
        self.win.flip()

    def _draw_background(self, *, diode_on: bool) -> None:
        if self.fixation is not None:
            self.fixation.draw()
        if self.diode is not None:
            self.diode.fillColor = [1, 1, 1] if diode_on else [-1, -1, -1]
            self.diode.draw()

    def _load_into(self, stim, trial: Trial) -> None:
        im = self.feeder.next(trial.stimulus_id)
        stim.image = im
        stim.size = im.size

    def _break(self, block: int) -> None:
        b = self.cfg.blocks
        if b.break_mode == "none":
            return
        self._where = f"break before block {block}"
        if b.break_mode == "timed":
            self.text.text = f"Break: block {block + 1} of {self.plan.n_blocks} starts soon"
        else:
            self.text.text = (f"Break. Press {b.continue_key.upper()} to start block "
                              f"{block + 1} of {self.plan.n_blocks}")
        self.text.draw()
        self.win.callOnFlip(self._marker, "break")
        t_start = self._flip(None)
        self.log.event("break", block=block, time_s=self._rel(t_start), mode=b.break_mode)
        self._event.clearEvents()
        while True:
            now = self._core.getTime()
            if b.break_mode == "timed" and now - t_start >= b.break_s:
                break
            keys = self._event.getKeys(keyList=[b.continue_key, "escape"])
            if "escape" in keys:
                raise _Abort
            if self.stop_file is not None and self.stop_file.exists():
                raise _Abort("stop request")
            if b.break_mode == "self-paced" and keys and now - t_start >= min(b.break_s, 0):
                break
            self.text.draw()
            self.win.flip()
            self._last_flip = None  # break frames are not counted as drops
        self._last_flip = None

    def _run_block(self, block: int, trials: list[Trial], bar) -> None:
        on, frame_s = self.timing.on, self.frame_s
        self._block, self._block_dropped = block, 0
        self._where = f"block {block}, before its first trial"
        nframes = self.plan.block_frames[block]
        trials = list(trials)
        k = 0  # which ImageStim is next
        if trials:  # the first texture is uploaded before the block starts
            trials = self._next_sequence(trials, 0, t_block=None)
            self._load_into(self.images[k], trials[0])
        # first flip of the block: fixation, block_start marker
        self._draw_background(diode_on=False)
        self.win.callOnFlip(self._marker, "block_start")
        t_block = self._flip(None)
        self.log.event("block_start", block=block, time_s=self._rel(t_block),
                       n_trials=len(trials))
        f = 1
        for i in range(len(trials)):
            if i and trials[i].sequence != trials[i - 1].sequence:
                # the sequence's images: the back channel may make it wait (frames inserted)
                n0 = self._inserted
                trials = self._next_sequence(trials, i, t_block=t_block, frame=f)
                t_block += (self._inserted - n0) * frame_s
                self._load_into(self.images[k], trials[i])
            trial = trials[i]
            while f < trial.onset_frame:  # fixation / blank until the onset
                self._draw_background(diode_on=False)
                self._flip(t_block + f * frame_s)
                f += 1
            self._where = (f"block {block}, sequence {trial.sequence}, trial {trial.index} "
                           f"({trial.stimulus_id})")
            stim = self.images[k]
            planned = t_block + trial.onset_frame * frame_s
            row = {
                "index": trial.index, "block": block, "sequence": trial.sequence,
                "position": trial.position, "kind": trial.kind, "stimulus_id": trial.stimulus_id,
                "role": trial.role, "marker": trial.marker, "on_frames": on,
                "_dropped_before": self._block_dropped,
            }
            for j in range(on):
                stim.draw()
                self._draw_background(diode_on=True)
                if j == 0:
                    self.win.callOnFlip(self._marker, trial.marker, row)
                    row["planned_onset_s"] = self._rel(planned)
                self._flip(t_block + (trial.onset_frame + j) * frame_s, showing=trial.index,
                           onset=row if j == 0 else None)
                if j == 0:
                    bar.update(1)
                    k = 1 - k
                    if i + 1 < len(trials) and trials[i + 1].sequence == trial.sequence:
                        # upload the next texture while this one shows
                        self._load_into(self.images[k], trials[i + 1])
                f += 1
        while f < nframes:  # the last off period
            self._draw_background(diode_on=False)
            self._flip(t_block + f * frame_s)
            f += 1
        self._draw_background(diode_on=False)
        self._flip(t_block + f * frame_s)  # ends the last trial when off = 0
        self.summary.dropped_per_block.append(self._block_dropped)
        self.log.event("block_end", block=block, dropped_frames=self._block_dropped,
                       time_s=self._rel(self._last_flip or t_block))

    def _next_sequence(self, trials: list[Trial], i: int, *, t_block: float | None,
                       frame: int = 0) -> list[Trial]:
        """Resolve the sequence starting at ``trials[i]`` (waiting, with fixation frames, for
        its block up to the order's timeout); ask for the following one; log where it came
        from. Raises :class:`_Stopped` on a stop request."""
        seq = trials[i].sequence
        j = i
        while j < len(trials) and trials[j].sequence == seq:
            j += 1
        t0 = self._core.getTime()
        limit = t0 + self.order.wait_s()
        while not self.order.ready(seq) and self._core.getTime() < limit:
            self._draw_background(diode_on=False)  # an inserted fixation frame
            if t_block is None:
                time.sleep(self.frame_s)  # before the block's first flip: no timeline yet
            self._flip(None if t_block is None else t_block + frame * self.frame_s)
            if t_block is not None:
                t_block += self.frame_s
            self._inserted += 1
        if self.order.stop_reason is not None:
            raise _Stopped(self.order.stop_reason)
        got, info = self.order.resolve(seq, trials[i:j], waited_s=self._core.getTime() - t0)
        marker = self.order.request(seq + 1)
        if marker is not None and self.outlet is not None:
            self.outlet.push(marker)
            self.summary.markers_sent += 1
        if self.order.closed_loop:
            self.log.event("sequence", block=self._block, **info)
            if info["source"] == "fallback":
                print(f"sequence {seq}: {info['reason']}: showing the planned images",
                      file=sys.stderr, flush=True)
        self.summary.closed_loop_sequences = self.order.n_closed_loop
        self.summary.fallback_sequences = self.order.n_fallback
        self.shown.extend(got)
        return trials[:i] + got + trials[j:]

    def run(self) -> RunSummary:
        """Present the whole plan. Returns the summary (``aborted`` if Escape was pressed)."""
        from tqdm import tqdm

        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.log = RunLog(self.out_dir)
        self.feeder = ImageFeeder(self.plan, self.plan.trials, image_size_pix(self.plan),
                                  progress=self.progress, random_access=self.order.closed_loop)
        self._open_window()
        self._inserted = 0  # fixation frames inserted while waiting for blocks
        wall0 = time.time()
        try:
            self._measure_refresh()
            self._make_stims()
            self._warm_up()
            self.win.recordFrameIntervals = True
            self.win.refreshThreshold = 1.5 * self.frame_s
            self.log.event(
                "run_start", wall_time=wall0, n_trials=len(self.plan.trials),
                refresh_hz=self.timing.refresh_hz,
                measured_refresh_hz=self.summary.measured_refresh_hz, paced=self._pace,
                marker_stream=None if self.outlet is None else self.outlet.name,
                order=self.summary.order, back_channel=None if self.order.reader is None
                else (self.order.reader.name if self.order.reader.inlet is not None else ""),
                window_size=[int(v) for v in self.win.size],
            )
            self._event.clearEvents()
            first = self.order.request(0)
            if first is not None and self.outlet is not None:
                self.outlet.push(first)  # the live session chooses the first block now
                self.summary.markers_sent += 1
            print(f"presenting {len(self.plan.trials)} images "
                  f"({self.plan.duration_s():.1f} s + breaks)", flush=True)
            with tqdm(total=len(self.plan.trials), desc="presenting", unit="img",
                      disable=not self.progress, leave=False) as bar:
                for block in range(self.plan.n_blocks):
                    if block > 0:
                        self._break(block)
                    self._run_block(block, self.plan.block_trials(block), bar)
            if self.outlet is not None:
                self._marker("end")
            self.log.event("end", time_s=self._rel(self._core.getTime()),
                           n_shown=self.summary.n_shown)
        except _Stopped as stop:
            self.summary.stopped = str(stop)
            if self._pending is not None:
                self._finish_pending(self._core.getTime())
            if len(self.summary.dropped_per_block) < self._block + 1:
                self.summary.dropped_per_block.append(self._block_dropped)
            if self.outlet is not None:
                self._marker("end")
            self.log.event("stop", reason=str(stop), where=self._where,
                           n_shown=self.summary.n_shown, time_s=self._rel(self._core.getTime()))
            print(f"stopped by the live session ({stop}) at {self._where}; "
                  f"{self.summary.n_shown} of {self.summary.n_planned} images shown",
                  file=sys.stderr)
        except _Abort as abort:
            self.summary.aborted = True
            self.summary.abort_where = self._where
            self.summary.abort_reason = abort.reason
            if len(self.summary.dropped_per_block) < self._block + 1:  # the block cut short
                self.summary.dropped_per_block.append(self._block_dropped)
            if self._pending is not None:
                self._finish_pending(self._core.getTime())
            if self.outlet is not None:
                self._marker("end_abort")
            self.log.event("abort", where=self._where, reason=abort.reason,
                           n_shown=self.summary.n_shown, time_s=self._rel(self._core.getTime()))
            print(f"aborted by {abort.reason} at {self._where}; {self.summary.n_shown} of "
                  f"{self.summary.n_planned} images shown", file=sys.stderr)
        finally:
            self.summary.duration_s = time.time() - wall0
            self._finish(wall0)
        return self.summary

    def _finish(self, wall0: float) -> None:
        self.feeder.close()
        shown = self.shown[: self.summary.n_shown]
        n_targets = sum(1 for t in shown if t.kind == "target")
        self.summary.misses = max(0, n_targets - self.summary.hits)
        try:
            intervals = np.asarray(self.win.frameIntervals, dtype=float)
            np.save(self.out_dir / "frame_intervals.npy", intervals)
        finally:
            self.win.close()
            self.log.close()
        (self.out_dir / "summary.json").write_text(to_json(self.summary.to_dict(), indent=1),
                                                   encoding="utf-8")

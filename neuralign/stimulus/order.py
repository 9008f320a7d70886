"""Which images each RSVP sequence shows: the plan's own order, or the live session's blocks.

``order = "random"`` (default): every sequence shows the plan's pre-shuffled trials.

``order = "closed-loop"``: before each sequence the presenter takes the block the live session
chose for it (``neuralign live --order closed-loop``) from the back channel
(:mod:`neuralign.io.backchannel`). It asks for the block of sequence ``s + 1`` with the control
marker ``#next s+1`` when sequence ``s`` starts (``#next 0`` before the first), so the session
has a whole sequence to answer. The block's ids replace the sequence's stimulus trials in order
(catch trials and frame timing stay as planned). When no block has come
``closed_loop.timeout_s`` after the sequence is due (the session is slow, or gone), the
sequence shows the plan's own trials instead: the presentation never stops for the back
channel. A block that comes after its sequence was due is shown in the next sequence without
a block of its own (a slow session still steers; the newest late block wins). Each sequence's
source is logged (run log event ``sequence``).

In both orders a ``stop`` message on the back channel ends the run cleanly before the next
sequence (run log event ``stop``; the run is complete, not aborted).
"""

from __future__ import annotations

import dataclasses

from ..io.backchannel import BackChannelReader, Message
from .plan import PresentationPlan, Trial

REQUEST = "#next"


class SequenceOrder:
    """The trials of each sequence, from the plan or from the back channel.

    Parameters
    ----------
    plan : PresentationPlan
        The plan (its trials are the fallback order).
    reader : BackChannelReader | None
        The back channel (``None``: no back channel at all).
    closed_loop : bool
        Take blocks from the back channel (else only ``stop`` messages are read).
    timeout_s : float
        Seconds a due sequence waits for its block before falling back.
    """

    def __init__(self, plan: PresentationPlan, *, reader: BackChannelReader | None,
                 closed_loop: bool, timeout_s: float = 2.0) -> None:
        self.plan = plan
        self.reader = reader
        self.closed_loop = bool(closed_loop and reader is not None)
        self.timeout_s = float(timeout_s)
        self.blocks: dict[int, Message] = {}
        self.stop_reason: str | None = None
        self.n_closed_loop = 0
        self.n_fallback = 0
        self.late: list[int] = []
        self._reps: dict[str, int] = {}
        self._fell_back = False

    def request(self, sequence: int) -> str | None:
        """The marker that asks for the block of ``sequence`` (``None`` when not needed).

        Parameters
        ----------
        sequence : int
            The sequence number.

        Returns
        -------
        str | None
            ``"#next <sequence>"`` in closed loop, for an existing sequence.
        """
        n_seq = 1 + max((t.sequence for t in self.plan.trials), default=-1)
        if self.closed_loop and sequence < n_seq:
            return f"{REQUEST} {sequence}"
        return None

    def poll(self) -> None:
        """Read what the back channel sent (never blocks)."""
        if self.reader is None:
            return
        while (msg := self.reader.poll(0.0)) is not None:
            if msg.kind == "stop" and self.stop_reason is None:
                self.stop_reason = msg.reason or "stop requested"
            elif msg.kind == "block" and self.closed_loop:
                self.blocks[int(msg.body.get("for_sequence", msg.block))] = msg

    def wait_s(self) -> float:
        """How long the next due sequence may wait for its block (0 after a fallback or a late
        block: a session that is behind does not slow the presentation down)."""
        return 0.0 if (not self.closed_loop or self._fell_back) else self.timeout_s

    def ready(self, sequence: int) -> bool:
        """Whether a block for ``sequence`` (or a late one) has come, or a stop."""
        self.poll()
        return (self.stop_reason is not None
                or any(s <= sequence for s in self.blocks))

    def resolve(self, sequence: int, planned: list[Trial], *, waited_s: float = 0.0
                ) -> tuple[list[Trial], dict]:
        """The trials ``sequence`` shows, and the ``sequence`` run-log record.

        Parameters
        ----------
        sequence : int
            The sequence number.
        planned : list of Trial
            Its trials in the plan.
        waited_s : float
            How long it waited for its block.

        Returns
        -------
        (list of Trial, dict)
            The trials (the block's ids in place of the planned stimulus ids), and what
            happened: ``source`` (``closed-loop``, ``fallback`` or ``plan``), ``block``,
            ``reason`` and the ``ids`` shown.
        """
        self.poll()
        msg = self.blocks.pop(sequence, None)
        older = sorted(s for s in self.blocks if s < sequence)
        late_for = None
        if msg is None and older:  # a slow session: its newest late block is still news
            late_for = older.pop()
            msg = self.blocks.pop(late_for)
        for s in older:
            self.late.append(s)  # superseded by a newer block: never shown
            self.blocks.pop(s)
        info: dict = {"sequence": sequence, "waited_s": round(waited_s, 4)}
        if not self.closed_loop:
            trials = planned
            info.update(source="plan")
        elif msg is None:
            self._fell_back = True
            self.n_fallback += 1
            trials = planned
            why = (f"no block within {self.timeout_s:g} s" if waited_s > 0 else
                   "no block (back channel quiet since an earlier sequence)")
            info.update(source="fallback", reason=why)
        else:
            self._fell_back = late_for is not None  # behind: do not wait for the next one
            self.n_closed_loop += 1
            trials, unknown = self._substitute(planned, msg.ids)
            info.update(source="closed-loop", chosen_block=msg.block,
                        n_epochs=msg.body.get("n_epochs"))
            if late_for is not None:
                info["late_for"] = late_for
            if unknown:
                info["replaced"] = unknown  # ids the plan has no image for: planned ones shown
        if self.closed_loop:  # repetitions as shown (the plan counted its own order)
            trials = [self._counted(t) for t in trials]
        info["ids"] = [t.stimulus_id for t in trials if t.kind == "stimulus"]
        return trials, info

    def _substitute(self, planned: list[Trial], ids: list[str]) -> tuple[list[Trial], list]:
        """The planned trials with the block's ids in the stimulus slots, in order."""
        usable = [i for i in ids if i in self.plan.roles]
        unknown = [i for i in ids if i not in self.plan.roles]
        out, k = [], 0
        for t in planned:
            if t.kind != "stimulus" or k >= len(usable):
                out.append(t)  # catch trials stay; a short block keeps the planned rest
                continue
            sid = usable[k]
            k += 1
            out.append(dataclasses.replace(t, stimulus_id=sid, marker=sid,
                                           role=self.plan.roles[sid]))
        return out, unknown

    def _counted(self, t: Trial) -> Trial:
        if t.kind != "stimulus":
            return t
        rep = self._reps.get(t.stimulus_id, 0)
        self._reps[t.stimulus_id] = rep + 1
        return dataclasses.replace(t, rep=rep)

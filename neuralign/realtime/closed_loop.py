"""Closed loop in a live session: choose the next block, publish it, record why.

The presenter (``neuralign present --order closed-loop``) asks for the block of sequence ``s``
with the control marker ``#next s`` (sent on its marker stream, so the request is recorded with
the session) when sequence ``s - 1`` starts, and reads the answer from the back channel
(:mod:`neuralign.io.backchannel`) before sequence ``s``: the session has a whole RSVP sequence
(20 images at 5 Hz + the gap, ~4.5 s) to answer.

For every request :class:`ClosedLoop` (a thread beside the session's refresh worker):

1. holds the session's feeding gate (the acquisition thread waits at its next epoch, nothing is
   lost: LSL buffers) while it refreshes the maps (alphas re-selected) and takes an
   :class:`~neuralign.realtime.decisions.EngineView` of them: exactly the first ``n`` epochs
   of the recording;
2. releases the gate and, from the view, computes the intervals and significance (seeded by
   the block number);
3. asks :class:`~neuralign.realtime.decisions.BlockPolicy` for the block: training stimuli by expected variance reduction,
   test repetitions by marginal gain (:func:`neuralign.align.chooser.choose_block`; the test
   set is the design's, fixed in advance; test EEG never chooses anything), in an order
   shuffled with a seed of the block number;
4. publishes it and appends the decision to ``OUT/recording/design.json`` (the session design
   plus ``"order": "closed-loop"`` and ``"closed_loop"``: the policy and, per block, its
   number, the sequence it was for, the time, ``n_epochs``, the layers in question, the ids
   in order and each pick's role, score and reason).

:func:`~neuralign.realtime.decisions.replay_decisions` runs a recording's epochs through a fresh engine and the same policy,
stopping at each recorded ``n_epochs``: it gives the recorded blocks again.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from pathlib import Path

import numpy as np

from ..base import SessionDesign
from ..errors import NeuralignError
from ..io.backchannel import BackChannelOutlet
from ..lsl import get_pylsl
from .decisions import BlockPolicy, engines_of, pending, refresh_for_decision, views_of

#: The presenter's request marker: ``"#next <sequence>"`` (a control marker: never analysed).
REQUEST = "#next"


def parse_request(marker) -> int | None:
    """The sequence a ``#next N`` marker asks for (``None`` for any other marker).

    Parameters
    ----------
    marker : str
        A marker value.

    Returns
    -------
    int | None
        ``N``.
    """
    if not isinstance(marker, str) or not marker.startswith(REQUEST + " "):
        return None
    tail = marker[len(REQUEST) + 1:].strip()
    return int(tail) if tail.isdigit() else None



class ClosedLoop:
    """Answer the presenter's ``#next`` requests with chosen blocks (see the module docs).

    Parameters
    ----------
    engine : AlignmentEngine
        The session's engine.
    outlet : BackChannelOutlet
        Where blocks are published.
    design : SessionDesign
        The session design (its test set is fixed in advance).
    record_path : str | Path
        The design file the decisions are appended to.
    policy : BlockPolicy
        How blocks are chosen.
    refresh : callable | None
        Refreshes the engine before a decision (default :func:`refresh_for_decision`; a
        session passes its publisher's, so the window shows those maps too).
    clock : callable | None
        The LSL clock (``pylsl.local_clock``).
    engine_settings : dict | None
        Engine settings to record (a replay builds its engine with them).
    """

    def __init__(self, engine, *, outlet, design: SessionDesign, record_path: str | Path,
                 policy: BlockPolicy, refresh=None, clock=None,
                 engine_settings: dict | None = None) -> None:
        if not design.test_ids:
            raise NeuralignError("--order closed-loop needs a design with test stimuli "
                                 "(the test set is fixed in advance)", path=design.path or None)
        self.engine = engine
        self.outlet = outlet
        self.design = design
        self.policy = policy
        self.record_path = Path(record_path)
        self._refresh = refresh or (lambda: refresh_for_decision(engine))
        self._clock = clock or time.monotonic
        self.gate = threading.Lock()
        first = next(iter(engines_of(engine).values()))  # refuses models in other orders
        self.candidates = np.isin(first.features.stimulus_ids, list(design.stimuli))
        self.blocks: list[dict] = []
        self._counts: list[np.ndarray] = []  # the epoch counts each block was chosen at
        self.errors: list[str] = []
        self.t0 = self._clock()
        self._requests: queue.Queue[int] = queue.Queue()
        self._last_seq = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.engine_settings = dict(engine_settings or {})
        self.write()

    def on_markers(self, values) -> None:
        """Look for ``#next N`` requests among marker values (acquisition thread; cheap)."""
        for v in values:
            if isinstance(v, list | tuple):
                v = v[0] if v else ""
            seq = parse_request(v)
            if seq is not None:
                self._requests.put(seq)

    def feeding(self):
        """The gate the acquisition thread holds while it adds an epoch to the engine."""
        return self.gate

    def start(self) -> None:
        """Start answering requests in a thread."""
        self._thread = threading.Thread(target=self._run, name="neuralign-closed-loop",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop answering (the record is complete on disk)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.write()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                seq = self._requests.get(timeout=0.1)
            except queue.Empty:
                continue
            with contextlib.suppress(queue.Empty):
                while True:  # answer the newest request only
                    seq = max(seq, self._requests.get_nowait())
            if seq <= self._last_seq:
                continue
            try:
                self.decide(seq)
            except Exception as e:  # noqa: BLE001 - the presenter falls back; the session goes on
                self.errors.append(f"block for sequence {seq}: {type(e).__name__}: {e}")

    def decide(self, sequence: int) -> dict:
        """Choose, publish and record the block for presenter sequence ``sequence``.

        Parameters
        ----------
        sequence : int
            The presenter's sequence number.

        Returns
        -------
        dict
            The decision as recorded.
        """
        self._last_seq = sequence
        t_start = time.perf_counter()
        block = len(self.blocks)
        with self.gate:  # the engine holds exactly the first n_epochs epochs
            self._refresh()
            views = views_of(self.engine)
        view = next(iter(views.values()))
        n = view.n_epochs
        got = self.policy.choose(views, block, candidates=self.candidates,
                                 pending=pending(view, self.blocks, self._counts))
        self._counts.append(view.store.count)
        t = self._clock()
        self.outlet.block(block, got["ids"], picks=got["picks"], for_sequence=int(sequence),
                          n_epochs=n)
        rec = {"block": block, "for_sequence": int(sequence), "n_epochs": n,
               "time_s": round(t - self.t0, 6), "decide_s": round(time.perf_counter() - t_start, 6),
               **got}
        self.blocks.append(rec)
        self.write()
        return rec

    def write(self) -> Path:
        """(Re)write the design file with the decisions so far (atomically)."""
        d = self.design.to_dict()
        d["order"] = "closed-loop"
        d["closed_loop"] = {
            "protocol": "presenter sends '#next N' markers; blocks go on "
                        f"{getattr(self.outlet, 'name', '')!r} (neuralign.io.backchannel)",
            "policy": self.policy.settings(), "engine": self.engine_settings,
            "test_ids": list(self.design.test_ids), "blocks": self.blocks,
            "errors": self.errors,
        }
        self.record_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.record_path.with_name(self.record_path.name + ".tmp")
        tmp.write_text(json.dumps(d, indent=1), encoding="utf-8")
        tmp.replace(self.record_path)
        return self.record_path


def attach_back_channel(session) -> tuple:
    """The back channel of a live session, and its closed loop when it runs one.

    Parameters
    ----------
    session : LiveSession
        A connected session (streams, engine, publisher and recorder open).

    Returns
    -------
    (BackChannelOutlet, ClosedLoop | None)
        The outlet (named after the marker stream) and the closed loop (``None`` unless the
        session has a ``closed_loop`` policy).
    """
    outlet = BackChannelOutlet(session.mk.name)
    if session.closed_loop is None:
        return outlet, None
    eng = session.engine

    def refresh() -> None:
        if eng.n_epochs > 0:
            session.publisher.refresh(select_alphas=True, stats=False)  # statistics: its own

    loop = ClosedLoop(eng, outlet=outlet, design=session.design,
                      record_path=session.recorder.dir / "design.json",
                      policy=session.closed_loop, refresh=refresh, clock=get_pylsl().local_clock,
                      engine_settings={k: v for k, v in session.engine_kw.items()
                                       if k in ("backend", "dtype")})
    return outlet, loop

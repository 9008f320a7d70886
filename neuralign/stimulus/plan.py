"""The presentation plan: which stimuli, in which order, in which blocks; reproducible.

:func:`build_plan` turns a :class:`~neuralign.stimulus.config.SessionConfig` into a
:class:`PresentationPlan` (the full trial list, planned frame by frame). Its
:attr:`PresentationPlan.design` is the session design (:class:`neuralign.base.SessionDesign`,
the one format ``neuralign live --design`` reads); :meth:`PresentationPlan.write` writes, before
the run:

- ``design.json``: the session design, with the presenter's additions (``trials``,
  ``reserved_markers``, ``timing``, ``n_blocks``, ``planned_duration_s``, ``seed``,
  ``config``)::

    "trials": [{"index": 0, "block": 0, "sequence": 0, "position": 0, "kind": "stimulus",
                "stimulus_id": "img001", "role": "train", "rep": 0, "marker": "img001",
                "onset_frame": 30}, ...]

- ``trials.csv``: the same trial list as a table;
- ``session_config.toml``: the resolved configuration (re-running it with the same seed gives
  the same trial list).

``role`` is ``train`` or ``test``: the live engine scores on the ``test`` stimuli (none: nested
cross-validation). Trials of kind ``target`` (catch trials) send the marker ``target`` and are
not analysed. ``onset_frame`` counts frames from the block's first flip.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..base import SessionDesign, Stimulus
from ..errors import NeuralignError, few
from .config import RESERVED_MARKERS, SessionConfig, dump_toml
from .timing import FrameTiming, frame_timing

TARGET_ID = "target"


@dataclass(frozen=True)
class Trial:
    """One image presentation."""

    index: int
    block: int
    sequence: int  # global sequence number
    position: int  # position inside the sequence
    kind: str  # "stimulus" | "target"
    stimulus_id: str
    role: str  # "train" | "test" | "target"
    rep: int  # repetition number of this stimulus (0-based)
    marker: str  # the LSL marker sent on the flip that shows it
    onset_frame: int  # frames from the block's first flip to this image's first flip


@dataclass
class PresentationPlan:
    """A full presentation: the stimuli used, their roles and the trial list, frame by frame.

    Parameters
    ----------
    config : SessionConfig
        The resolved configuration.
    timing : FrameTiming
        Durations in whole frames.
    stimuli : dict of str to Stimulus
        Every stimulus a trial shows, by id.
    roles : dict of str to str
        Stimulus id -> ``"train"`` or ``"test"``, in source order.
    trials : list of Trial
        Every presentation, in order.
    target : Stimulus | None
        The catch-trial image (when there are catch trials).
    block_frames : list of int
        Frames per block (without breaks).
    """

    config: SessionConfig
    timing: FrameTiming
    stimuli: dict[str, Stimulus]
    roles: dict[str, str]
    trials: list[Trial]
    target: Stimulus | None = None
    block_frames: list[int] = field(default_factory=list)

    @property
    def n_blocks(self) -> int:
        """Number of blocks."""
        return self.config.blocks.n_blocks

    @property
    def test_ids(self) -> list[str]:
        """The scoring stimuli, in source order."""
        return [s for s, r in self.roles.items() if r == "test"]

    def block_trials(self, block: int) -> list[Trial]:
        """The trials of one block, in order.

        Parameters
        ----------
        block : int
            Block number (0-based).

        Returns
        -------
        list of Trial
            Its presentations.
        """
        return [t for t in self.trials if t.block == block]

    def duration_s(self) -> float:
        """Planned presentation time in seconds (without breaks)."""
        return sum(self.block_frames) / self.timing.refresh_hz

    @property
    def design(self) -> SessionDesign:
        """The session design of this plan (what ``design.json`` holds)."""
        reps = {"train": self.config.stimuli.train_reps, "test": self.config.stimuli.test_reps}
        return SessionDesign(
            stimuli=tuple(self.roles), roles=dict(self.roles),
            marker_stream=self.config.markers.stream_name,
            reps={sid: reps[role] for sid, role in self.roles.items()},
            soa_s=self.timing.soa_s,
            extra={
                "trials": [asdict(t) for t in self.trials],
                "reserved_markers": list(RESERVED_MARKERS),
                "timing": self.timing.to_dict(),
                "n_blocks": self.n_blocks,
                "planned_duration_s": round(self.duration_s(), 6),
                "seed": self.config.seed,
                "config": self.config.to_dict(),
            },
        )

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``design.json``, ``trials.csv`` and ``session_config.toml``.

        Parameters
        ----------
        out_dir : str | Path
            The folder (created if needed).

        Returns
        -------
        dict of str to Path
            ``design``, ``trials`` and ``config``.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "design": self.design.save(out / "design.json"),
            "trials": out / "trials.csv",
            "config": out / "session_config.toml",
        }
        with open(paths["trials"], "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(Trial.__dataclass_fields__))
            writer.writeheader()
            for t in self.trials:
                writer.writerow(asdict(t))
        paths["config"].write_text(dump_toml(self.config), encoding="utf-8")
        return paths


def _pick(rng: np.random.Generator, pool: list[str], n: int) -> list[str]:
    """``n`` ids from ``pool`` chosen at random, kept in pool order."""
    idx = np.sort(rng.choice(len(pool), size=n, replace=False))
    return [pool[i] for i in idx]


def assign_roles(stimuli: list[Stimulus], config: SessionConfig, rng: np.random.Generator
                 ) -> dict[str, str]:
    """Decide which stimuli are shown, and which are test (scoring) stimuli.

    Raises
    ------
    NeuralignError
        Unknown ``test_ids``; more test or train images asked for than the source has.
    """
    sc = config.stimuli
    ids = [s.id for s in stimuli]
    by_id = {s.id: s for s in stimuli}
    if sc.test_ids:
        unknown = [i for i in sc.test_ids if i not in by_id]
        if unknown:
            raise NeuralignError(f"stimuli.test_ids not in the stimulus source: {few(unknown)}")
        test_pool = list(dict.fromkeys(sc.test_ids))
    elif any(s.role == "test" for s in stimuli):
        test_pool = [s.id for s in stimuli if s.role == "test"]
    else:
        test_pool = list(ids)
    if sc.test_ids:
        n_test = len(test_pool) if sc.n_test < 0 else sc.n_test
    elif any(s.role == "test" for s in stimuli):
        n_test = len(test_pool) if sc.n_test < 0 else sc.n_test
    else:
        n_test = max(0, sc.n_test)
    if n_test > len(test_pool):
        raise NeuralignError(
            f"the design asks for {n_test} test images but the source has only "
            f"{len(test_pool)} candidate(s)"
        )
    tests = test_pool[:n_test] if sc.test_ids else _pick(rng, test_pool, n_test)
    test_set = set(tests)
    train_pool = [i for i in ids if i not in test_set and by_id[i].role != "test"]
    n_train = len(train_pool) if sc.n_train < 0 else sc.n_train
    if n_train > len(train_pool):
        raise NeuralignError(
            f"the design asks for {n_train} train images but only {len(train_pool)} remain "
            f"after {len(tests)} test image(s)"
        )
    trains = train_pool if n_train == len(train_pool) else _pick(rng, train_pool, n_train)
    if not trains and not tests:
        raise NeuralignError("the design shows no images (n_train = 0 and no test images)")
    roles = {i: "train" for i in trains}
    roles.update({i: "test" for i in tests})
    return {i: roles[i] for i in ids if i in roles}  # source order


def _no_immediate_repeats(seq: list[str], rng: np.random.Generator) -> list[str]:
    """Swap elements so that no stimulus follows itself (when possible)."""
    seq = list(seq)
    n = len(seq)
    for i in range(1, n):
        if seq[i] != seq[i - 1]:
            continue
        candidates = [
            j for j in range(n)
            if seq[j] != seq[i - 1]
            and (j + 1 >= n or seq[j + 1] != seq[i])
            and (j == 0 or seq[j - 1] != seq[i])
            and abs(j - i) > 1
        ]
        if candidates:
            j = candidates[int(rng.integers(len(candidates)))]
            seq[i], seq[j] = seq[j], seq[i]
    return seq


def build_plan(stimuli: list[Stimulus], config: SessionConfig, *,
               target: Stimulus | None = None) -> PresentationPlan:
    """The full trial list for ``config`` over ``stimuli`` (reproducible from ``config.seed``).

    Parameters
    ----------
    stimuli : list of Stimulus
        What the source offers (see :func:`~neuralign.stimulus.sources.resolve_source`).
    config : SessionConfig
    target : Stimulus, optional
        The catch-trial image (needed when ``task.target_fraction > 0``).

    Returns
    -------
    PresentationPlan
    """
    rng = np.random.default_rng(config.seed)
    timing = frame_timing(config)
    roles = assign_roles(stimuli, config, rng)
    sc = config.stimuli
    events = [(i, r) for i, r in roles.items() for _ in range(sc.train_reps if r == "train"
                                                            else sc.test_reps)]
    order = rng.permutation(len(events))
    seq_ids = _no_immediate_repeats([events[k][0] for k in order], rng)
    n_blocks = config.blocks.n_blocks
    if n_blocks > len(seq_ids):
        raise NeuralignError(
            f"blocks.n_blocks = {n_blocks} but the design has only {len(seq_ids)} presentations"
        )
    blocks = np.array_split(np.arange(len(seq_ids)), n_blocks)
    L = config.timing.sequence_length
    sequences: list[tuple[int, list[str]]] = []  # (block, ids)
    for b, idx in enumerate(blocks):
        ids = [seq_ids[k] for k in idx]
        for start in range(0, len(ids), L):
            sequences.append((b, ids[start:start + L]))
    n_target_seq = int(round(config.task.target_fraction * len(sequences)))
    if n_target_seq and target is None:
        raise NeuralignError("task.target_fraction > 0 needs a target image")
    target_seqs = set(rng.choice(len(sequences), size=n_target_seq, replace=False).tolist())
    trials: list[Trial] = []
    reps: dict[str, int] = {}
    block_frames = [0] * n_blocks
    soa = timing.on + timing.off
    for s, (b, ids) in enumerate(sequences):
        items = [(i, roles[i]) for i in ids]
        if s in target_seqs:
            items.insert(int(rng.integers(len(items) + 1)), (TARGET_ID, "target"))
        frame = block_frames[b] + (timing.lead_in if block_frames[b] == 0 else timing.sequence_gap)
        for pos, (sid, role) in enumerate(items):
            rep = reps.get(sid, 0)
            reps[sid] = rep + 1
            trials.append(Trial(
                index=len(trials), block=b, sequence=s, position=pos,
                kind="target" if role == "target" else "stimulus",
                stimulus_id=sid, role=role, rep=rep,
                marker=TARGET_ID if role == "target" else sid, onset_frame=frame,
            ))
            frame += soa
        block_frames[b] = frame
    by_id = {s.id: s for s in stimuli}
    return PresentationPlan(
        config=config, timing=timing, stimuli={i: by_id[i] for i in roles}, roles=roles,
        trials=trials, target=target, block_frames=block_frames,
    )


def make_target_image(size: int = 256):
    """A generated catch-trial picture (a yellow star on purple), used when none is configured."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (size, size), (90, 30, 120))
    draw = ImageDraw.Draw(im)
    c, r1, r2 = size / 2, size * 0.45, size * 0.18
    pts = []
    for k in range(10):
        ang = np.pi / 2 + k * np.pi / 5
        r = r1 if k % 2 == 0 else r2
        pts.append((c + r * np.cos(ang), c - r * np.sin(ang)))
    draw.polygon(pts, fill=(255, 220, 0))
    return im


def target_stimulus(config: SessionConfig) -> Stimulus | None:
    """The catch-trial image for ``config`` (``None`` when there are no catch trials)."""
    if config.task.target_fraction <= 0:
        return None
    if config.task.target_image:
        return Stimulus(id=TARGET_ID, path=config.resolve_path(config.task.target_image),
                        role="target")
    return Stimulus(id=TARGET_ID, image=make_target_image(), role="target")

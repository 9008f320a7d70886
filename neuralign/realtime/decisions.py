"""Closed-loop decisions: the block policy, the engine state it reads, and their replay.

The same code chooses a block live (:class:`~neuralign.realtime.closed_loop.ClosedLoop`) and in
a replay of the recording (:func:`replay_decisions`): a refresh on exactly the first
``n_epochs`` epochs (alphas re-selected), an :class:`EngineView` of it, the intervals and
significance seeded by the block number, the layers still in question, and
:func:`neuralign.align.chooser.choose_block` with the presentations still in flight counted as
shown (:func:`pending`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from types import SimpleNamespace

import numpy as np

from ..align.chooser import LearningCurve, choose_block, layers_in_question
from ..align.confidence import bootstrap_peaks, permutation_mask
from ..base import EpochData, FeatureSet
from ..errors import NeuralignError


@dataclass
class BlockPolicy:
    """How a closed-loop session chooses blocks (the same live and in a replay).

    Parameters
    ----------
    block_size : int
        Stimuli per block (the presenter's sequence length).
    latency_target_s : float | None
        Peak-latency interval width the session aims at (layers wider stay in question).
    n_boot, n_perm : int
        Bootstrap resamples and permutations of the intervals and significance.
    seed : int
        Seed of the block order (with the block number).
    curve : LearningCurve
        The session's learning-curve history (grows with every decision).
    """

    block_size: int = 20
    latency_target_s: float | None = 0.02
    n_boot: int = 100
    n_perm: int = 100
    seed: int = 0
    curve: LearningCurve = field(default_factory=lambda: LearningCurve({}), repr=False)

    def settings(self) -> dict:
        """The policy's settings as plain data (recorded with the decisions)."""
        d = asdict(self)
        d.pop("curve")
        return d

    def choose(self, engines: dict, block: int, *, candidates: np.ndarray | None = None,
               pending: np.ndarray | None = None) -> dict:
        """The next block for the session's models as they are now (:func:`views_of`).

        Parameters
        ----------
        engines : dict of str to EngineView
            Each model's engine (with the design's test set), or a view of it; the layers in
            question of every model weigh in.
        block : int
            The block's number (seeds the intervals and the order).
        candidates : ndarray of bool, optional
            Feature rows the presenter can show.
        pending : ndarray of int, optional
            Presentations chosen earlier whose epochs have not arrived (:func:`pending`).

        Returns
        -------
        dict
            ``ids`` (presentation order), ``picks`` (id, role, score, reason, in the
            chooser's order) and ``layers`` (the layers in question, per model).
        """
        layers = {}
        for label, eng in engines.items():
            conf = None
            if eng.held_out is not None and (self.n_boot or self.n_perm):
                conf = eng.confidence(n_boot=self.n_boot, n_perm=self.n_perm, seed=block)
            layers[label] = layers_in_question(eng.features.n_layers, conf,
                                               latency_target_s=self.latency_target_s)
        picks = choose_block(engines, layers=layers, block_size=self.block_size,
                             curve=self.curve, candidates=candidates, pending=pending)
        order = np.random.default_rng([self.seed, block]).permutation(len(picks))
        return {"ids": [picks[i].stimulus_id for i in order],
                "picks": [{"id": p.stimulus_id, "role": p.role, "score": round(float(p.score), 9),
                           "reason": p.reason} for p in picks],
                "layers": {k: [int(x) for x in v] for k, v in layers.items()}}


#: Blocks whose presentations may still be on their way when the next block is chosen (the
#: one being shown, and the tail of the one before); older ones were shown or never will be.
IN_FLIGHT = 2


def pending(engine, blocks: list[dict], counts: list[np.ndarray]) -> np.ndarray:
    """Presentations per feature row of the last blocks that have no epoch yet.

    Parameters
    ----------
    engine : AlignmentEngine
        The engine (its epoch counts now).
    blocks : list of dict
        The blocks published so far (``ids``).
    counts : list of ndarray
        The engine's epoch counts when each block was chosen.

    Returns
    -------
    ndarray of int
        Over the last :data:`IN_FLIGHT` blocks: each block's presentations of a row minus the
        row's epochs since that block was chosen, at least 0.
    """
    index = engine.features.index
    now = engine.store.count
    out = np.zeros(now.size, dtype=np.int64)
    for b, c0 in zip(blocks[-IN_FLIGHT:], counts[-IN_FLIGHT:]):
        want = np.zeros(now.size, dtype=np.int64)
        for sid in b["ids"]:
            if sid in index:
                want[index[sid]] += 1
        out += np.maximum(want - (now - c0), 0)
    return out


def refresh_for_decision(engine) -> None:
    """The refresh a decision starts from (the same live and in a replay)."""
    if engine.n_epochs > 0:
        engine.refresh(select_alphas=True)


def engines_of(engine) -> dict:
    """The engines of a session: ``{label: engine}`` of a model group, else ``{"model": engine}``.

    Parameters
    ----------
    engine : AlignmentEngine | ModelGroup
        The session's engine.

    Returns
    -------
    dict of str to AlignmentEngine
        Every model's engine (their features must list the stimuli in the same order: the
        chooser indexes them by the first model's rows).
    """
    engines = dict(engine.engines) if hasattr(engine, "engines") else {"model": engine}
    ids = next(iter(engines.values())).features.stimulus_ids
    for label, e in engines.items():
        if not np.array_equal(e.features.stimulus_ids, ids):
            raise NeuralignError(f"closed loop with several models: model {label!r} lists the "
                                 "stimuli in another order than the first; give features in "
                                 "the same order")
    return engines


def views_of(engine) -> dict:
    """:class:`EngineView` of every model of a session (call with its feeding held).

    Parameters
    ----------
    engine : AlignmentEngine | ModelGroup
        The session's (refreshed) engine.

    Returns
    -------
    dict of str to EngineView
        By model label (``"model"`` for a single engine).
    """
    return {label: EngineView.of(e) for label, e in engines_of(engine).items()}


@dataclass(frozen=True)
class EngineView:
    """What a decision reads from an engine, frozen right after a refresh.

    The session's engine goes on taking epochs (and refreshing) while a block is chosen from
    the view; the view's epoch counts, alphas and held-out predictions stay those of the
    decision's refresh.
    """

    features: object
    geometry: object
    layers: list
    alphas: np.ndarray
    store: SimpleNamespace  # ``count``: epochs per feature row
    held_out: object
    alpha_idx: list
    n_epochs: int

    @classmethod
    def of(cls, engine) -> EngineView:
        """The view of ``engine`` now (call with its feeding held).

        Parameters
        ----------
        engine : AlignmentEngine
            A refreshed engine.

        Returns
        -------
        EngineView
            Its state.
        """
        L = engine.features.n_layers
        return cls(engine.features, engine.geometry, engine.layers, engine.alphas,
                   SimpleNamespace(count=engine.store.count.copy()), engine.held_out,
                   [engine.alpha_indices(li) for li in range(L)], int(engine.n_epochs))

    def alpha_indices(self, layer: int):
        """Index into :attr:`alphas` of every target's alpha, per outer split (the refresh's)."""
        return self.alpha_idx[layer]

    def confidence(self, *, n_boot: int, n_perm: int, seed: int) -> dict:
        """Intervals and significance of the refresh's maps (as the engine's ``confidence``).

        Parameters
        ----------
        n_boot, n_perm : int
            Bootstrap resamples and permutations (0: none).
        seed : int
            Their seed.

        Returns
        -------
        dict
            ``peaks`` and ``mask`` (``None`` when not computed).
        """
        h = self.held_out
        if h is None or h.n < 3:
            return {"peaks": None, "mask": None}
        return {"peaks": bootstrap_peaks(h, n_boot=n_boot, seed=seed) if n_boot else None,
                "mask": permutation_mask(h, n_perm=n_perm, seed=seed) if n_perm else None}



def replay_decisions(record: dict, data: EpochData,
                     features: FeatureSet | dict[str, FeatureSet]) -> list[dict]:
    """Re-make a session's closed-loop decisions from its recording.

    Parameters
    ----------
    record : dict
        The design file a closed-loop session wrote (``closed_loop`` key).
    data : EpochData
        The session's epochs in the order the engine took them
        (:func:`~neuralign.realtime.recording.load_recording`).
    features : FeatureSet | dict of str to FeatureSet
        The session's features (one set, or each model's by label).

    Returns
    -------
    list of dict
        Per recorded block: ``block``, ``n_epochs``, ``ids``, ``picks`` and ``layers``.
    """
    from ..align.engine import AlignmentEngine
    from ..align.group import ModelGroup

    cl = record.get("closed_loop")
    if not isinstance(cl, dict):
        raise NeuralignError("not a closed-loop design record (no 'closed_loop' key)")
    models = features if isinstance(features, dict) else {"model": features}
    first = next(iter(models.values()))
    kw = dict(times=data.times, ch_names=data.ch_names,
              test_ids=[x for x in cl["test_ids"] if x in first], **cl.get("engine", {}))
    eng = ModelGroup(models, **kw) if len(models) > 1 else AlignmentEngine(first, **kw)
    policy = BlockPolicy(**cl["policy"])
    allowed = np.isin(first.stimulus_ids, [s["id"] for s in record["stimuli"]])
    out, fed, counts = [], 0, []
    for d in cl["blocks"]:
        while fed < len(data.stimulus_ids) and eng.n_epochs < d["n_epochs"]:
            eng.add_epoch(str(data.stimulus_ids[fed]), data.epochs[fed])
            fed += 1
        if eng.n_epochs != d["n_epochs"]:
            raise NeuralignError(f"block {d['block']} was chosen after {d['n_epochs']} epochs "
                                 f"but the recording has {eng.n_epochs}")
        refresh_for_decision(eng)
        views = views_of(eng)
        view0 = next(iter(views.values()))
        out.append({"block": d["block"], "n_epochs": d["n_epochs"],
                    **policy.choose(views, d["block"], candidates=allowed,
                                    pending=pending(view0, out, counts))})
        counts.append(view0.store.count)
    return out

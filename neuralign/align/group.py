"""Several models in one session: the same epochs, one engine per model, ranked together.

Epochs are cut once and given to every model's engine (accumulation is O(C T) per model). The
EEG side of RSA and the noise ceilings are computed once per refresh and shared. Confidence
(intervals, masks) is per model; the ranking compares models over the same held-out stimuli.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..base import FeatureSet
from ..errors import NeuralignError
from .assemble import EEGSideCache
from .data import AlignmentResult
from .engine import AlignmentEngine
from .ranking import Ranking, rank_models


class ModelGroup:
    """One engine per model, fed the same epochs.

    Parameters
    ----------
    features : mapping of str to FeatureSet
        Model label -> its per-layer features (every model must list the stimuli of the
        session; the same test set scores all of them).
    times : array (T,)
        Epoch time axis in seconds.
    ch_names : sequence of str
        Channel names.
    test_ids : sequence of str, optional
        Designated test stimuli; None: nested cross-validation.
    **engine_kw
        Options of :class:`~neuralign.align.AlignmentEngine`, shared by every model.
    """

    def __init__(self, features: Mapping[str, FeatureSet], *, times: Sequence[float],
                 ch_names: Sequence[str], test_ids: Sequence[str] | None = None,
                 **engine_kw) -> None:
        if not features:
            raise NeuralignError("no feature sets given")
        shared = EEGSideCache()
        if engine_kw.get("memory") is None:
            # one budget for the session, split between the models (each engine would
            # otherwise plan its caches for 80% of the memory available on its own)
            from .memory import available_memory

            engine_kw["memory"] = max(1, int(0.8 * available_memory()) // len(features))
        self.engines: dict[str, AlignmentEngine] = {}
        ids0 = None
        for label, fs in features.items():
            ids = set(fs.stimulus_ids.tolist())
            if ids0 is not None and ids != ids0:
                raise NeuralignError(f"model {label!r} lists other stimuli than the first model; "
                                     "models compared in one session need the same stimuli")
            ids0 = ids
            self.engines[str(label)] = AlignmentEngine(fs, times=times, ch_names=ch_names,
                                                       test_ids=test_ids, rsa_cache=shared,
                                                       **engine_kw)
        self.last_ranking: Ranking | None = None

    @property
    def labels(self) -> list[str]:
        """Model labels, in the order given."""
        return list(self.engines)

    @property
    def n_epochs(self) -> int:
        """Epochs accumulated (the same in every engine)."""
        return next(iter(self.engines.values())).n_epochs

    @property
    def n_stimuli_seen(self) -> int:
        """Stimuli with at least one epoch (the same in every engine)."""
        return next(iter(self.engines.values())).n_stimuli_seen

    def add_epoch(self, stimulus_id: str, epoch: np.ndarray) -> bool:
        """Give one epoch ``(C, T)`` to every model; False when no model knows the stimulus."""
        return any([e.add_epoch(stimulus_id, epoch) for e in self.engines.values()])

    def add_epochs(self, stimulus_ids: Sequence[str], epochs: np.ndarray) -> int:
        """Give a batch ``(n, C, T)`` to every model; returns the epochs the first one took."""
        counts = [e.add_epochs(stimulus_ids, epochs) for e in self.engines.values()]
        return counts[0]

    def refresh(self, **kw) -> dict[str, AlignmentResult]:
        """Refresh every model (options of :meth:`AlignmentEngine.refresh`)."""
        return {label: e.refresh(**kw) for label, e in self.engines.items()}

    def confidence(self, **kw) -> dict[str, dict]:
        """Intervals and masks of every model (options of :meth:`AlignmentEngine.confidence`)."""
        return {label: e.confidence(**kw) for label, e in self.engines.items()}

    def ranking(self, *, n_boot: int = 500, seed: int = 0,
                confidence: dict[str, dict] | None = None) -> Ranking | None:
        """Models ranked by their best layer's peak r, with paired comparisons (two or more
        models with refreshed maps; else None)."""
        held = {k: e.held_out for k, e in self.engines.items() if e.held_out is not None}
        if len(held) < 2:
            return None
        peaks = None
        if confidence is not None:
            peaks = {k: c["peaks"] for k, c in confidence.items() if c.get("peaks") is not None}
        self.last_ranking = rank_models(held, n_boot=n_boot, seed=seed, peaks=peaks)
        return self.last_ranking

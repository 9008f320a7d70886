"""Simulated sessions, block by block, in random or closed-loop order, until a stopping rule.

A :class:`~neuralign.sim.brain.SyntheticBrain` plants a known layer x latency answer; each
block of stimuli is "shown" (its epochs simulated), added to the engine, the maps refreshed,
their intervals and significance computed, and the stopping rule evaluated — what a live
session does, without streams, so many sessions can be compared quickly
(``bench/bench_closed_loop.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..align import AlignmentEngine
from ..align.chooser import LearningCurve, choose_block, layers_in_question
from ..align.stopping import StoppingRule
from ..base import FeatureSet
from .brain import SyntheticBrain


@dataclass
class SessionOutcome:
    """How a simulated session ended."""

    mode: str
    epochs: int
    stopped: bool  # the rule was met (else the pool ran out / the cap was hit)
    latency_error_s: float  # mean |peak latency - planted| over the significant layers
    history: list[dict] = field(default_factory=list)
    decisions: list[dict] = field(default_factory=list)


def planted_features(n: int, n_layers: int, dim: int, seed: int, *,
                     kind: str = "independent") -> FeatureSet:
    """Random layers, each with its own signal (so its peak is its planted one).

    ``kind="independent"``: i.i.d. Gaussian features (every stimulus alike);
    ``"clustered"``: stimuli in clusters of unequal size and spread, with a decaying spectrum,
    as the features of real image sets are (concepts, categories).
    """
    rng = np.random.default_rng(seed)
    ids = [f"img{seed}_{i:05d}" for i in range(n)]
    if kind == "independent":
        arrays = [rng.standard_normal((n, dim)).astype(np.float32) for _ in range(n_layers)]
    else:
        k = max(4, n // 25)
        sizes = rng.dirichlet(np.full(k, 0.7)) * n
        lab = np.repeat(np.arange(k), np.maximum(1, np.round(sizes).astype(int)))[:n]
        lab = np.concatenate([lab, rng.integers(0, k, n - lab.size)])
        rng.shuffle(lab)
        arrays = []
        for _ in range(n_layers):
            spec = 1.0 / np.sqrt(1.0 + np.arange(dim))
            centres = rng.standard_normal((k, dim)) * spec * 2.0
            spread = rng.uniform(0.2, 1.0, k)[lab, None]
            x = centres[lab] + spread * rng.standard_normal((n, dim)) * spec
            arrays.append(x.astype(np.float32))
    return FeatureSet(ids, [f"layer{i:02d}" for i in range(n_layers)], arrays,
                      {"model": "independent random layers (simulation)"})


def random_order(n_train: int, n_test: int, train_reps: int, test_reps: int,
                 seed: int) -> np.ndarray:
    """A pre-shuffled presentation sequence (rows), as a fixed session design would be."""
    seq = np.concatenate([np.repeat(np.arange(n_train), train_reps),
                          np.repeat(np.arange(n_train, n_train + n_test), test_reps)])
    return np.random.default_rng([seed, 7]).permutation(seq)


def run_session(mode: str, *, seed: int, n_train: int = 600, n_test: int = 50,
                n_layers: int = 4, dim: int = 32, snr: float = 0.35, block: int = 20,
                rule: str = "latency-ci<=20ms", train_reps: int = 2, test_reps: int = 5,
                max_epochs: int | None = None, n_boot: int = 200, n_perm: int = 200,
                sfreq: float = 100.0, features: str = "independent",
                test_share: float | None = None, lag: int = 0) -> SessionOutcome:
    """One simulated session in ``mode`` ``"random"`` or ``"closed-loop"``.

    The random session shows a fixed shuffled sequence (every training stimulus
    ``train_reps`` times, every test stimulus ``test_reps`` times); the closed loop asks the
    chooser for every block. Both stop when ``rule`` holds (checked after every block) or at
    ``max_epochs`` (default: the random sequence's length). ``lag``: blocks the closed loop
    chooses ahead of the one shown (a live session chooses a sequence ahead: 1), the blocks
    chosen but not shown yet counted as pending.
    """
    fs = planted_features(n_train + n_test, n_layers, dim, seed, kind=features)
    times = np.arange(-0.1, 0.5, 1.0 / sfreq)
    brain = SyntheticBrain(fs, snr=snr, seed=seed)
    ids = fs.stimulus_ids
    test_ids = ids[n_train:].tolist()
    eng = AlignmentEngine(fs, times=times, ch_names=brain.ch_names, test_ids=test_ids)
    stop = StoppingRule.parse(rule)
    seq = random_order(n_train, n_test, train_reps, test_reps, seed)
    cap = int(max_epochs or seq.size)
    out = SessionOutcome(mode, 0, False, float("nan"))
    k = 0
    conf = None
    curve = LearningCurve({})
    ahead: list[list] = []  # closed loop: blocks chosen, not shown yet
    index = fs.index
    while eng.n_epochs < cap:
        if mode == "random":
            rows = seq[k * block:(k + 1) * block]
            if rows.size == 0:
                break
            chosen = ids[rows]
        else:
            while len(ahead) <= lag:
                pending = np.zeros(len(ids), dtype=np.int64)
                for picks in ahead:
                    for p in picks:
                        pending[index[p.stimulus_id]] += 1
                picks = _closed_loop_block(eng, conf, stop, block, test_share, curve,
                                           pending=pending if ahead else None)
                out.decisions.append({"block": k + len(ahead), "n_epochs": eng.n_epochs,
                                      "picks": [p.__dict__ for p in picks]})
                ahead.append(picks)
            chosen = np.array([p.stimulus_id for p in ahead.pop(0)])
        ep = brain.epochs(chosen.tolist(), 1, times=times, seed=seed * 100003 + k)[:, 0]
        eng.add_epochs(chosen, ep)
        k += 1
        if not eng.geometry.enough(eng.store.count > 0):
            continue
        eng.refresh()
        conf = eng.confidence(n_boot=n_boot, n_perm=n_perm, seed=seed)
        if conf["peaks"] is None:
            continue
        sig = conf["mask"].mask.any(axis=1)
        st = stop.evaluate(n_epochs=eng.n_epochs, latency_ci=conf["peaks"].latency_ci,
                           significant=sig)
        if st.satisfied:
            out.stopped = True
            break
    out.epochs = int(eng.n_epochs)
    out.history = list(stop.history)
    if conf is not None and conf["peaks"] is not None:
        sig = conf["mask"].mask.any(axis=1)
        err = np.abs(conf["peaks"].latency_s - brain.peak_latencies)[sig]
        out.latency_error_s = float(err.mean()) if err.size else float("nan")
    return out


def _closed_loop_block(eng, conf, stop, block, test_share=None, curve=None, pending=None):
    """The layers still in question: significant ones whose interval is too wide (or all)."""
    target = next((c.target for c in stop.conditions if c.kind == "latency"), None)
    layers = layers_in_question(eng.features.n_layers, conf, latency_target_s=target)
    return choose_block({"model": eng}, layers={"model": layers}, block_size=block,
                        test_share=test_share, curve=curve, pending=pending)

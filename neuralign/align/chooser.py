"""Closed loop: choose the next block of stimuli to answer the user's question sooner.

The test set is fixed in advance and never chosen by looking at test EEG. The chooser decides
(a) which *training* stimuli to show next and (b) how many *repetitions of test stimuli* the
block carries, from what the engine already holds (features of every candidate, the stimuli
shown so far and the alphas chosen on training data):

- **Training stimuli** by expected variance reduction of the held-out predictions that the
  question depends on. In the ridge model's Gaussian view (weights ~ N(0, I / a), noise
  variance 1), the posterior covariance of the predictions at stimuli ``i, j`` given the
  training set ``T`` is ``K_ij - K_iT (K_TT + a I)^-1 K_Tj`` (features centred at the training
  mean); showing candidate ``u`` shrinks the summed variance of the test predictions by
  ``sum_j cov(j, u)^2 / (var(u) + a)``. Candidates are picked greedily, the covariance
  conditioned on each pick (so a block is not twenty near-duplicates). Each layer that still
  matters for the question weighs in with its own alpha (the median of its chosen alphas):
  for ``latency``, layers whose peak-latency interval is wider than the target; for
  ``ranking``, the competing models' best layers.
- **Test repetitions vs new training stimuli**, by marginal gain on the held-out r of the
  layers in question. That r is ``rho * sqrt(R)``: ``rho`` the model's correlation with the
  noise-free response, ``R = v_s / (v_s + s2 / k)`` the reliability of test means over ``k``
  repetitions (the square of the noise ceiling). A test repetition raises it by
  ``r (1 - R) / (2 k n_test)``; a new training stimulus by ``r c / (2 n (n + c))``, with the
  learning curve ``rho^2 = rho_inf^2 n / (n + c)`` fitted on the refresh history (``1 / rho^2``
  is linear in ``1 / n``). Each epoch of the block goes where the gain is larger, the state
  updated after each; test repetitions go to the test stimuli with the fewest.

Every pick carries its score and reason, recorded in the session design so an offline replay
reproduces the decisions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla


@dataclass(frozen=True)
class Pick:
    """One stimulus of a chosen block."""

    stimulus_id: str
    role: str  # "train" or "test"
    score: float
    reason: str


def _median_alpha(engine, layer: int) -> float:
    idx = engine.alpha_indices(layer)
    if not idx:
        return float(np.median(engine.alphas))
    return float(np.median(engine.alphas[np.concatenate(idx)]))


def variance_reduction(gram: np.ndarray, train: np.ndarray, test: np.ndarray,
                       cand: np.ndarray, alpha: float, k: int) -> list[tuple[int, float]]:
    """Greedy picks of ``k`` candidates that most shrink the test predictions' variance.

    Parameters
    ----------
    gram : ndarray (N, N)
        Gram matrix of the (standardised) features of every stimulus.
    train, test, cand : ndarray of int64
        Rows of the training set, the test set and the candidates.
    alpha : float
        Ridge penalty (the prior precision of the weights).
    k : int
        Picks to make.

    Returns
    -------
    list of (row, gain)
        Gains are relative to the summed posterior variance of the test predictions.
    """
    allr = np.concatenate([train, test, cand])
    # centre at the training mean (or the test mean before any training stimulus)
    ref = train if train.size else test
    kbar = gram[np.ix_(allr, ref)].mean(1)
    kb = float(gram[np.ix_(ref, ref)].mean())
    pos = {int(r): i for i, r in enumerate(allr.tolist())}

    def kh(a, b):
        ia, ib = [pos[int(x)] for x in a], [pos[int(x)] for x in b]
        return gram[np.ix_(a, b)] - kbar[ia][:, None] - kbar[ib][None, :] + kb

    if train.size:
        cf = sla.cho_factor(kh(train, train) + alpha * np.eye(train.size), lower=True,
                            check_finite=False)
        A_te = sla.cho_solve(cf, kh(train, test), check_finite=False)  # H K_Te
        A_c = sla.cho_solve(cf, kh(train, cand), check_finite=False)  # H K_Tc
        cov = kh(test, cand) - kh(test, train) @ A_c  # (n_te, n_c)
        var_c = np.diag(kh(cand, cand)) - (kh(train, cand) * A_c).sum(0)
        var_te = np.diag(kh(test, test)) - (kh(train, test) * A_te).sum(0)
    else:
        cov = kh(test, cand)
        var_c = np.diag(kh(cand, cand)).copy()
        var_te = np.diag(kh(test, test)).copy()
        A_c = None
    total = float(np.maximum(var_te, 0).sum()) or 1.0
    picks: list[tuple[int, float]] = []
    alive = np.ones(cand.size, dtype=bool)
    for _ in range(min(k, cand.size)):
        gain = np.where(alive, (cov * cov).sum(0) / (np.maximum(var_c, 0) + alpha), -np.inf)
        j = int(np.argmax(gain))
        picks.append((int(cand[j]), float(gain[j] / total)))
        alive[j] = False
        # condition on the pick: cov(., .) -= cov(., u) cov(u, .) / (var(u) + a)
        c_u = kh(cand[j:j + 1], cand)[0]
        if A_c is not None:
            c_u = c_u - kh(cand[j:j + 1], train)[0] @ A_c
        denom = var_c[j] + alpha
        col = cov[:, j].copy()
        cov -= np.outer(col, c_u) / denom
        var_c -= c_u * c_u / denom
    return picks


@dataclass
class LearningCurve:
    """Model quality against training stimuli, per layer: ``1 / rho^2 = a + b / n``."""

    points: dict[int, list[tuple[int, float]]]

    def add(self, layer: int, n: int, rho: float) -> None:
        """Record the model quality ``rho`` of ``layer`` with ``n`` training stimuli."""
        if np.isfinite(rho) and rho > 0.02 and n > 0:
            pts = self.points.setdefault(layer, [])
            if not pts or pts[-1][0] != n:
                pts.append((n, float(min(rho, 0.999))))

    def c(self, layer: int, n: int) -> float:
        """The curve's half-way point ``c`` (``n`` itself until the history can tell)."""
        pts = self.points.get(layer, [])[-12:]
        if len(pts) < 3 or pts[-1][0] < 1.3 * pts[0][0]:
            return float(n)
        x = 1.0 / np.array([p[0] for p in pts], float)
        y = 1.0 / np.array([p[1] for p in pts]) ** 2
        b, a = np.polyfit(x, y, 1)
        if a <= 0 or b <= 0:
            return float(n)
        # noisy early points fit a saturated curve: never below n / 2 (keep learning)
        return float(np.clip(b / a, 0.5 * n, 100.0 * n))


def allocate(n_block: int, *, r: float, R: float, k: float, n_test: int, n_train: int,
             c: float) -> int:
    """Test repetitions in a block of ``n_block`` epochs, by marginal gain (see above).

    Parameters
    ----------
    n_block : int
        Epochs in the block.
    r : float
        Held-out r of the layers in question now.
    R : float
        Reliability of the test means now (noise ceiling squared).
    k : float
        Mean repetitions of the test stimuli.
    n_test, n_train : int
        Test stimuli; training stimuli shown so far.
    c : float
        Half-way point of the learning curve.
    """
    if not (np.isfinite(r) and np.isfinite(R)) or r <= 0 or not 0 < R < 1:
        return n_block // 2
    v_ratio = R / ((1 - R) * k)  # v_s / s2 (per-trial signal-to-noise variance ratio)
    out = 0
    for _ in range(n_block):
        rel = v_ratio * k / (v_ratio * k + 1)
        g_test = (1 - rel) / (2 * k * n_test)
        g_train = c / (2 * n_train * (n_train + c)) if n_train > 0 else np.inf
        if g_test > g_train:
            out += 1
            k += 1.0 / n_test
        else:
            n_train += 1
    return out


def layer_state(engine, layer: int) -> tuple[float, float]:
    """Held-out r and test-mean reliability at the layer's peak (channel means)."""
    h = engine.held_out
    if h is None or h.counts is None or h.m2 is None or (h.counts < 2).any():
        return float("nan"), float("nan")
    from .confidence import HeldOut  # noqa: F401 - the type of ``h``

    C = h.n_channels
    p = h.pred[layer].astype(float)
    yc = h.y - h.y.mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (p * yc).sum(0) / np.sqrt((p * p).sum(0) * (yc * yc).sum(0))
        rm = np.nanmean(r.reshape(C, -1), 0)
    if not np.isfinite(rm).any():
        return float("nan"), float("nan")
    t = int(np.nanargmax(rm))
    T = r.size // C
    win = np.arange(max(0, t - 2), min(T, t + 3))  # a few samples around the peak
    cols = (np.arange(C)[:, None] * T + win[None, :]).ravel()
    noise = (h.m2[:, cols] / (h.counts[:, None] - 1) / h.counts[:, None]).mean(0)
    total = h.y[:, cols].var(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        R = float(np.nanmean(np.clip(1 - noise / total, 1e-3, 0.999)))
    return float(rm[t]), R


def choose_block(engines: dict, *, layers: dict[str, list[int]], block_size: int = 20,
                 test_share: float | None = None, min_test_reps: int = 2,
                 curve: LearningCurve | None = None,
                 candidates: np.ndarray | None = None,
                 pending: np.ndarray | None = None) -> list[Pick]:
    """The next block: greedy variance-reduction picks of training stimuli plus test repeats.

    Parameters
    ----------
    engines : dict of str to AlignmentEngine
        The session's engines (one per model), all fed the same epochs, with a test set.
    layers : dict of str to list of int
        The layers that matter for the question, per model (e.g. layers whose latency
        interval is still too wide, or each model's best layer).
    block_size : int
        Stimuli per block (an RSVP sequence).
    test_share : float, optional
        Share of the block for test repetitions (default: by marginal gain, :func:`allocate`,
        for the weakest layer in question; at least enough to bring every test stimulus to
        ``min_test_reps``).
    min_test_reps : int
        Repetitions every test stimulus gets before the gain rule applies.
    curve : LearningCurve, optional
        The session's learning-curve history (updated here).
    candidates : ndarray of bool, optional
        Feature rows that may be shown as new training stimuli (default: every one; a live
        session passes the stimuli its presenter has).
    pending : ndarray of int, optional
        Presentations per feature row already chosen whose epochs have not arrived yet (a
        live session decides a sequence ahead). They count as shown: the variance of the
        predictions depends on which stimuli are shown, not on their EEG.
    """
    eng0 = next(iter(engines.values()))
    g = eng0.geometry
    count = eng0.store.count
    if pending is not None:
        count = count + np.asarray(pending, dtype=count.dtype)
    test = np.nonzero(g.is_test)[0]
    train = np.nonzero(~g.is_test & (count > 0))[0]
    allowed = ~g.is_test & (count == 0)
    if candidates is not None:
        allowed &= np.asarray(candidates, dtype=bool)
    cand = np.nonzero(allowed)[0]
    ids = eng0.features.stimulus_ids
    under = test[count[test] < min_test_reps]
    if test_share is not None:
        n_gain = int(round(float(test_share) * block_size))
        why = f"fixed test share {float(test_share):.2f}"
    else:
        n_gain, why = _gain_split(engines, layers, block_size, test, train, count, curve)
    n_test = min(block_size, max(n_gain, under.size))
    share = n_test / block_size
    if cand.size == 0:
        n_test = block_size
    n_train = block_size - n_test
    picks: list[Pick] = []
    if n_train > 0 and cand.size:
        gains: dict[int, float] = {}
        for label, eng in engines.items():
            for li in layers.get(label, []):
                ly = eng.layers[li]
                gram = ly.gram_all if ly.gram_all is not None else ly.gram(np.arange(ids.size))
                for row, gain in variance_reduction(gram, train, test, cand,
                                                    _median_alpha(eng, li), n_train):
                    gains[row] = gains.get(row, 0.0) + gain
        if not gains:  # nothing to reduce yet: spread over the candidates
            rng = np.random.default_rng(int(count.sum()))
            gains = {int(r): 0.0 for r in rng.choice(cand, min(n_train, cand.size),
                                                     replace=False)}
        best = sorted(gains, key=lambda r: -gains[r])[:n_train]
        picks += [Pick(str(ids[r]), "train", gains[r], "expected variance reduction of the "
                       "test predictions of the layers in question") for r in best]
    if n_test > 0 and test.size:
        order = test[np.lexsort((test, count[test]))]
        reps = np.resize(order, n_test)
        picks += [Pick(str(ids[r]), "test", float(share), f"test repetition ({why})")
                  for r in reps]
    return picks


def _gain_split(engines, layers, block_size, test, train, count, curve):
    """Test repetitions of a block for the weakest layer in question, and why."""
    worst = None
    for label, eng in engines.items():
        for li in layers.get(label, []):
            r, R = layer_state(eng, li)
            if np.isfinite(r) and (worst is None or r < worst[0]):
                worst = (r, R, li)
            if curve is not None and np.isfinite(r) and np.isfinite(R) and R > 0:
                curve.add(li, int(train.size), r / np.sqrt(R))
    if worst is None:
        return block_size // 2, "no estimate yet: half"
    r, R, li = worst
    c = curve.c(li, int(train.size)) if curve is not None else float(max(train.size, 1))
    k = float(count[test].mean()) if test.size else 1.0
    n = allocate(block_size, r=r, R=R, k=max(k, 1.0), n_test=int(test.size),
                 n_train=int(train.size), c=c)
    # both sides keep moving: estimates are noisy, and neither can be fixed later
    lo, hi = int(round(0.2 * block_size)), int(round(0.8 * block_size))
    n = min(max(n, lo), hi)
    return n, f"marginal gain for layer {li}: r {r:.2f}, reliability {R:.2f}, c {c:.0f}"


def layers_in_question(n_layers: int, conf: dict | None, *,
                       latency_target_s: float | None) -> list[int]:
    """The layers a block should help: not yet significant, or latency interval too wide.

    Parameters
    ----------
    n_layers : int
        Layers of the model.
    conf : dict | None
        :meth:`~neuralign.align.AlignmentEngine.confidence` of the last refresh (``None``:
        every layer).
    latency_target_s : float | None
        Width the peak-latency intervals should shrink to (``None``: significance only).

    Returns
    -------
    list of int
        The layers in question (every layer when none is left, so the session goes on).
    """
    every = list(range(n_layers))
    if conf is None or conf.get("peaks") is None or conf.get("mask") is None:
        return every
    w = np.diff(conf["peaks"].latency_ci, axis=1)[:, 0]
    sig = conf["mask"].mask.any(axis=1)
    todo = [i for i in every
            if not sig[i] or (latency_target_s is not None and not w[i] <= latency_target_s)]
    return todo or every

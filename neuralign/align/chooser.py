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
- **Test repetitions**: the held-out score is limited by the model (variance of its test
  predictions, relative) and by the noise of the test means (split-half noise variance over
  the number of repetitions, relative to the signal). The block gives test repetitions the
  share of the second, to the test stimuli with the fewest repetitions.

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


def test_noise_share(engine) -> float:
    """The share of the held-out score's uncertainty due to noise in the test means.

    Noise: mean over scored stimuli and targets of (noise variance / repetitions), relative to
    the variance of the test means; model: 1 - the squared held-out r (what the predictions do
    not capture). Returns noise / (noise + model), 0.5 while unknown.
    """
    h = engine.held_out
    if h is None or h.counts is None or h.m2 is None or (h.counts < 2).any():
        return 0.5
    noise_var = (h.m2 / (h.counts[:, None] - 1)) / h.counts[:, None]
    total_var = h.y.var(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        noise = float(np.nanmean(noise_var.mean(0) / total_var))
    pred = h.pred.astype(float)
    yc = h.y - h.y.mean(0)
    r = (pred * yc[None]).sum(1) / np.sqrt((pred * pred).sum(1) * (yc * yc).sum(0)[None])
    model = float(np.nanmean(1 - np.nanmax(r, axis=0) ** 2))
    if not np.isfinite(noise) or not np.isfinite(model) or noise + model <= 0:
        return 0.5
    return float(np.clip(noise / (noise + model), 0.0, 1.0))


def choose_block(engines: dict, *, layers: dict[str, list[int]], block_size: int = 20,
                 test_share: float | None = None, min_test_reps: int = 2) -> list[Pick]:
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
        Share of the block for test repetitions (default: :func:`test_noise_share` of the first
        engine, at least enough to bring every test stimulus to ``min_test_reps``).
    min_test_reps : int
        Repetitions every test stimulus gets before the share rule applies.
    """
    eng0 = next(iter(engines.values()))
    g = eng0.geometry
    count = eng0.store.count
    test = np.nonzero(g.is_test)[0]
    train = np.nonzero(~g.is_test & (count > 0))[0]
    cand = np.nonzero(~g.is_test & (count == 0))[0]
    ids = eng0.features.stimulus_ids
    share = test_noise_share(eng0) if test_share is None else float(test_share)
    under = test[count[test] < min_test_reps]
    n_test = min(block_size, max(int(round(share * block_size)), under.size if under.size
                                 else 0))
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
        picks += [Pick(str(ids[r]), "test", float(share), "test repetition (noise share "
                       f"{share:.2f} of the score's uncertainty)") for r in reps]
    return picks

"""The memory plan of a live engine: what it keeps is what it planned, and a budget too small
for a cache is honoured without changing the maps."""

from __future__ import annotations

import numpy as np
import pytest

from neuralign.align import AlignmentEngine
from neuralign.align.memory import cache_bytes, split_sizes

from .conftest import make_problem


def _wide_problem():
    """Layers wider than the stimuli (the dual form, anchors) and many targets."""
    fs, sids, epochs, times, ch = make_problem(n=120, d=8, c=6, t=30, layers=3, reps=2, seed=11)
    rng = np.random.default_rng(11)
    wide = [a @ rng.standard_normal((a.shape[1], 300)) + 0.1 * rng.standard_normal((120, 300))
            for a in fs.arrays]
    return type(fs)(fs.stimulus_ids, fs.layers, wide), sids, epochs, times, ch


def _anchor_bytes(eng):
    return [sum(an.nbytes() for an in ly.anchors.values()) for ly in eng.layers]


@pytest.mark.parametrize("reselect_every", [1, 2], ids=["full", "lean"])
@pytest.mark.parametrize("design", [True, False], ids=["train/test", "nested"])
def test_anchors_hold_no_more_than_planned(design, reselect_every):
    """After refreshes that add stimuli, repetitions and targets of every kind, every layer's
    anchors hold at most what the plan counted for them."""
    fs, sids, epochs, times, ch = _wide_problem()
    test_ids = fs.stimulus_ids[:20].tolist() if design else None
    eng = AlignmentEngine(fs, times=times, ch_names=ch, test_ids=test_ids,
                          reselect_every=reselect_every)
    assert eng.lean_anchors == (reselect_every > 1)
    assert all("anchors" in eng.plan.caches[i] for i in range(3))
    for part in np.array_split(np.arange(sids.size), 8):
        eng.add_epochs(sids[part], epochs[part])
        eng.refresh()
    held = _anchor_bytes(eng)
    assert min(held) > 0
    splits = split_sizes(eng.geometry)
    for ly, h in zip(eng.layers, held, strict=True):
        plan = cache_bytes(ly, n_blocks=1, n_targets=eng.n_targets, n_alphas=eng.alphas.size,
                           splits=splits, lean=eng.lean_anchors)["anchors"]
        assert h <= plan, (h, plan)


def test_a_budget_without_room_for_anchors_keeps_none_and_the_same_maps():
    """A budget with room for the Gram matrices but not the anchors: no anchor is kept, the
    plan says so, and the maps equal those of an engine that keeps them."""
    fs, sids, epochs, times, ch = _wide_problem()
    test_ids = fs.stimulus_ids[:20].tolist()
    big = AlignmentEngine(fs, times=times, ch_names=ch, test_ids=test_ids)
    per_layer = big.plan.per_layer
    need = [cache_bytes(big.layers[0], n_blocks=1, n_targets=big.n_targets,
                        n_alphas=big.alphas.size, splits=split_sizes(big.geometry))[k]
            for k in ("gram", "anchors")]
    # the caches get 3/4 of the spare budget: room for the three Gram matrices, no anchors
    budget = (big.plan.shared + big.plan.n_parallel * per_layer
              + 4 * (3 * need[0] + need[1] // 2) // 3)
    small = AlignmentEngine(fs, times=times, ch_names=ch, test_ids=test_ids, memory=budget)
    assert small.plan.n_parallel == big.plan.n_parallel
    assert all(small.plan.caches[i] == ["gram"] for i in range(3))
    assert small.plan.describe()["caches"] == {str(i): ["gram"] for i in range(3)}
    for part in np.array_split(np.arange(sids.size), 5):
        for e in (big, small):
            e.add_epochs(sids[part], epochs[part])
        a, b = big.refresh(), small.refresh()
        np.testing.assert_array_equal(a.encoding_alpha, b.encoding_alpha)
        np.testing.assert_allclose(a.encoding_r, b.encoding_r, atol=1e-9)
    assert max(_anchor_bytes(small)) == 0
    assert min(_anchor_bytes(big)) > 0

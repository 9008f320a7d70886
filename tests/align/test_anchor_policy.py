"""When a live layer keeps, extends or rebuilds an anchor (align/anchor_policy.py)."""

from __future__ import annotations

import numpy as np
import pytest

from neuralign.align.anchor import DualAnchor
from neuralign.align.anchor_policy import K_RANGE, buffer_rows, keep_or_rebuild, rebuild_bound

ALPHAS = np.logspace(-1, 4, 6)


@pytest.mark.parametrize("lean", [False, True])
def test_rebuild_bound_is_staggered_inside_its_range_and_shrinks_for_small_anchors(lean):
    low, high = K_RANGE[lean]
    bounds = {(li, s): rebuild_bound(2000, layer=li, split=s, lean=lean)
              for li in range(32) for s in range(5)}
    assert min(bounds.values()) == low
    assert max(bounds.values()) <= high
    assert buffer_rows(lean) > max(bounds.values())
    # spread: the layers of one split do not all rebuild at the same size
    assert len({bounds[li, 0] for li in range(32)}) == (high - low) // 8 + 1
    small = rebuild_bound(low, layer=0, split=0, lean=lean)
    assert 16 <= small < low  # in proportion to n0 below 5 x low (never under 16)
    assert rebuild_bound(5 * low, layer=0, split=0, lean=lean) == low


def _setup(lean):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((600, 700))
    gram = X @ X.T
    y = rng.standard_normal((600, 4))
    rows0 = np.arange(300)
    an = DualAnchor(gram, rows0, y[rows0], ALPHAS, expect_k=buffer_rows(lean), lean=lean)
    return gram, y, an


def _call(an, gram, y, train, *, lean=True, idx=None, previous=None, scheduled=False,
          select_at_rebuild=False, reanchor=False, alphas=ALPHAS):
    return keep_or_rebuild(an, gram=gram, train=train, y_train=lambda: y[train], alphas=alphas,
                           layer=0, split=0, lean=lean, reanchor=reanchor, scheduled=scheduled,
                           select_at_rebuild=select_at_rebuild, idx=idx, previous=previous)


def test_an_anchor_is_kept_up_to_its_bound_and_rebuilt_past_it():
    gram, y, an = _setup(lean=True)
    bound = rebuild_bound(300, layer=0, split=0, lean=True)
    keep = np.zeros(4, np.int64)
    kept, idx = _call(an, gram, y, np.arange(300 + bound), idx=keep)
    assert kept is an
    assert idx is keep
    new, idx = _call(an, gram, y, np.arange(300 + bound + 1), idx=keep)
    assert new is not an
    assert new.n0 == 300 + bound + 1
    assert new.k == 0
    assert idx is keep
    # what the rebuild was for: the new anchor solves the new set (a row left out: rebuilt)
    again, _ = _call(new, gram, y, np.arange(1, 300 + bound + 1), idx=keep)
    assert again is not new


@pytest.mark.parametrize("change", ["reanchor", "kind", "alphas"])
def test_a_changed_setting_rebuilds_the_anchor(change):
    gram, y, an = _setup(lean=True)
    kw = {"reanchor": change == "reanchor", "lean": change != "kind",
          "alphas": ALPHAS * (2.0 if change == "alphas" else 1.0)}
    new, _ = _call(an, gram, y, np.arange(300), idx=np.zeros(4, np.int64), **kw)
    assert new is not an
    assert new.lean == kw["lean"]
    np.testing.assert_array_equal(new.alphas, kw["alphas"])


def test_a_lean_anchor_defers_a_scheduled_selection_and_rebuilds_for_a_forced_one():
    gram, y, an = _setup(lean=True)
    train = np.arange(320)
    an.solve(train, np.arange(500, 520), lambda r: y[r], np.zeros(4, np.int64), "float64")
    assert an.k == 20
    assert not an.can_select(train)
    prev = np.array([1, 2, 3, 4])
    kept, idx = _call(an, gram, y, train, scheduled=True, previous=prev)
    assert kept is an
    assert idx is prev
    new, idx = _call(an, gram, y, train, scheduled=False, previous=prev)
    assert new is not an
    assert idx is None
    assert new.can_select(train)
    full = DualAnchor(gram, np.arange(300), y[:300], ALPHAS, expect_k=buffer_rows(False))
    kept, idx = _call(full, gram, y, train, lean=False)
    assert kept is full
    assert idx is None


def test_a_rebuild_reselects_when_the_policy_asks():
    gram, y, an = _setup(lean=True)
    new, idx = _call(an, gram, y, np.arange(300), reanchor=True, idx=np.zeros(4, np.int64),
                     select_at_rebuild=True)
    assert new is not an
    assert idx is None

"""When a live layer keeps, extends or rebuilds a training set's dual anchor.

A :class:`~neuralign.align.anchor.DualAnchor` is extended exactly for the stimuli added to its
training set since it was built; each added row makes the next solve dearer, so after a bound
number of added rows the anchor is rebuilt (one eigendecomposition). The bound is staggered
over layers and splits so that rebuilds spread over refreshes instead of coming all at once.
"""

from __future__ import annotations

import numpy as np

from .anchor import DualAnchor

#: stimuli added to an anchor before it is rebuilt, at least and at most, by kind: lean
#: anchors' added rows cost little (no GCV terms, their prediction terms carried), so they
#: are rebuilt less often, over a wider range (rebuilds spread over more refreshes)
K_RANGE = {False: (64, 120), True: (128, 248)}

__all__ = ["K_RANGE", "buffer_rows", "keep_or_rebuild", "rebuild_bound"]


def buffer_rows(lean: bool) -> int:
    """Rows an anchor's buffers are sized for (the largest bound and a margin)."""
    return K_RANGE[lean][1] + 16


def rebuild_bound(n0: int, *, layer: int, split: int, lean: bool) -> int:
    """Rows an anchor of ``n0`` rows (outer split ``split`` of layer ``layer``) takes in
    before it is rebuilt: 128-248 (lean) or 64-120 in steps of 8, in proportion to ``n0``
    below 5x the lower end (small anchors are cheap to rebuild, and a lean anchor re-selects
    its alphas at each rebuild)."""
    low, high = K_RANGE[lean]
    cap = low + 8 * ((layer + 3 * split) % ((high - low) // 8 + 1))
    return min(cap, max(16, n0 * cap // (5 * low)))


def keep_or_rebuild(anchor: DualAnchor | None, *, gram: np.ndarray, train: np.ndarray,
                    y_train, alphas: np.ndarray, layer: int, split: int, lean: bool,
                    reanchor: bool, scheduled: bool, select_at_rebuild: bool,
                    idx: np.ndarray | None, previous: np.ndarray | None):
    """The anchor to solve a training set with, and the alphas to solve with.

    Parameters
    ----------
    anchor : DualAnchor or None
        The split's anchor kept from the last refresh.
    gram : ndarray
        Gram matrix of every candidate stimulus.
    train : ndarray
        The training rows now.
    y_train : callable
        ``y_train()`` -> the training rows' targets (read only for a rebuild).
    alphas : ndarray
        Candidate alphas.
    layer : int
        Layer index (staggers the bound).
    split : int
        Outer split index (staggers the bound).
    lean : bool
        Lean anchors (the terms of the alphas in use only).
    reanchor : bool
        Rebuild whatever was kept.
    scheduled : bool
        The re-selection asked for is the staggered one; a lean anchor defers it to its next
        rebuild, where GCV is cheap.
    select_at_rebuild : bool
        A rebuild re-selects the alphas (GCV).
    idx : ndarray or None
        Alpha indices asked for (None: select by GCV).
    previous : ndarray or None
        Alpha indices of the last refresh.

    Returns
    -------
    tuple
        ``(anchor, idx)``; ``idx`` None: select by GCV on the anchor.
    """
    an = anchor
    rebuild = (an is None or reanchor or an.lean != lean or not an.covers(train)
               or an.added(train).size > rebuild_bound(an.n0, layer=layer, split=split,
                                                       lean=an.lean)
               or not np.array_equal(an.alphas, alphas))
    if not rebuild and idx is None and not an.can_select(train):
        if scheduled and previous is not None:
            idx = previous  # deferred to the next rebuild
        else:
            rebuild = True
    if rebuild:
        an = DualAnchor(gram, train, y_train(), alphas, expect_k=buffer_rows(lean), lean=lean)
        if select_at_rebuild:
            idx = None
    return an, idx

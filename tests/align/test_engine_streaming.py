"""Online accumulation = batch accumulation; results do not depend on epoch order."""

from __future__ import annotations

import numpy as np
import pytest

from neuralign.align import AlignmentEngine

from .conftest import make_problem

KEYS = ("encoding_r", "rsa_spearman", "rsa_pearson", "rsa_cv_spearman")


def _run(fs, sids, epochs, times, ch, *, one_by_one, test_ids=None, chunks=None):
    eng = AlignmentEngine(fs, times=times, ch_names=ch, test_ids=test_ids)
    if one_by_one:
        for s, e in zip(sids, epochs):
            assert eng.add_epoch(s, e)
    elif chunks:
        for part in np.array_split(np.arange(len(sids)), chunks):
            eng.add_epochs(sids[part], epochs[part])
            eng.refresh()  # intermediate refreshes must not change the final answer
    else:
        eng.add_epochs(sids, epochs)
    return eng.refresh()


def _assert_same(a, b, keys=KEYS, nc=True):
    for k in keys:
        np.testing.assert_allclose(getattr(a, k), getattr(b, k), atol=1e-6, err_msg=k)
    if nc:
        for k in a.noise_ceiling:
            np.testing.assert_allclose(a.noise_ceiling[k], b.noise_ceiling[k], atol=1e-6, err_msg=k)


@pytest.mark.parametrize("design", [False, True])
def test_one_at_a_time_equals_batch(design):
    fs, sids, epochs, times, ch = make_problem(ragged=True)
    test_ids = fs.stimulus_ids[:20].tolist() if design else None
    batch = _run(fs, sids, epochs, times, ch, one_by_one=False, test_ids=test_ids)
    online = _run(fs, sids, epochs, times, ch, one_by_one=True, test_ids=test_ids)
    chunked = _run(fs, sids, epochs, times, ch, one_by_one=False, test_ids=test_ids, chunks=4)
    _assert_same(batch, online)
    _assert_same(batch, chunked)
    assert np.isfinite(batch.encoding_r).all()
    assert np.isfinite(batch.rsa_cv_spearman).all()
    assert batch.counts["n_epochs"] == online.counts["n_epochs"] == len(sids)


def test_interleaving_order_does_not_matter():
    """Any order that keeps each stimulus's repetitions in sequence gives identical maps."""
    fs, sids, epochs, times, ch = make_problem(seed=5, ragged=True)
    rng = np.random.default_rng(0)
    ref = _run(fs, sids, epochs, times, ch, one_by_one=False)
    # shuffle globally, then put each stimulus's repetitions back in their original sequence
    perm = rng.permutation(len(sids))
    new = np.empty(len(sids), dtype=int)
    for s in set(sids.tolist()):
        new[np.nonzero(sids[perm] == s)[0]] = np.nonzero(sids == s)[0]
    assert not np.array_equal(new, np.arange(len(sids)))
    out = _run(fs, sids[new], epochs[new], times, ch, one_by_one=True)
    _assert_same(ref, out)


def test_full_shuffle_keeps_order_free_maps():
    """Fully shuffled (repetitions too): encoding, correlation RSA and ncsnr are unchanged."""
    fs, sids, epochs, times, ch = make_problem(seed=6)
    perm = np.random.default_rng(1).permutation(len(sids))
    a = _run(fs, sids, epochs, times, ch, one_by_one=False)
    b = _run(fs, sids[perm], epochs[perm], times, ch, one_by_one=True)
    _assert_same(a, b, keys=("encoding_r", "rsa_spearman", "rsa_pearson"), nc=False)
    for k in ("ncsnr", "ncsnr_pct", "r_ceiling"):
        np.testing.assert_allclose(a.noise_ceiling[k], b.noise_ceiling[k], atol=1e-6)


def test_unknown_ids_counted_not_fatal():
    fs, sids, epochs, times, ch = make_problem()
    eng = AlignmentEngine(fs, times=times, ch_names=ch)
    assert not eng.add_epoch("not-a-stimulus", epochs[0])
    assert eng.add_epochs(np.array(["x1", "x2", sids[0]]), epochs[:3]) == 1
    res = eng.refresh()
    assert res.counts["n_unknown_epochs"] == 3
    assert res.counts["unknown_ids"] == ["not-a-stimulus", "x1", "x2"]


def test_empty_batch_adds_nothing():
    fs, sids, epochs, times, ch = make_problem()
    eng = AlignmentEngine(fs, times=times, ch_names=ch)
    assert eng.add_epochs(sids[:0], epochs[:0]) == 0
    assert eng.n_epochs == 0


def test_bad_epochs_refused():
    from neuralign.errors import NeuralignError

    fs, sids, epochs, times, ch = make_problem()
    eng = AlignmentEngine(fs, times=times, ch_names=ch)
    with pytest.raises(NeuralignError, match="shape"):
        eng.add_epoch(sids[0], epochs[0][:, :2])
    bad = epochs[0].copy()
    bad[0, 0] = np.nan
    with pytest.raises(NeuralignError, match="NaN"):
        eng.add_epoch(sids[0], bad)


def test_early_refresh_is_nan_not_error():
    fs, sids, epochs, times, ch = make_problem()
    eng = AlignmentEngine(fs, times=times, ch_names=ch)
    res = eng.refresh()
    assert np.isnan(res.encoding_r).all()
    eng.add_epoch(sids[0], epochs[0])
    assert np.isnan(eng.refresh().encoding_r).all()


def test_rsa_at_a_lower_cadence():
    """rsa_every=3: RSA and ceilings are recomputed every third refresh (and on demand)."""
    fs, sids, epochs, times, ch = make_problem(n=60, reps=4, seed=3)
    eng = AlignmentEngine(fs, times=times, ch_names=ch, rsa_every=3)
    ref = AlignmentEngine(fs, times=times, ch_names=ch)
    parts = np.array_split(np.arange(len(sids)), 5)
    seen = []
    for k, part in enumerate(parts[:4]):
        for e in (eng, ref):
            e.add_epochs(sids[part], epochs[part])
        a, b = eng.refresh(), ref.refresh()
        seen.append(a.counts["rsa_refresh"])
        np.testing.assert_allclose(a.encoding_r, b.encoding_r, atol=1e-12)
        if k % 3 == 0:
            np.testing.assert_allclose(a.rsa_spearman, b.rsa_spearman, atol=1e-12)
    assert seen == [1, 1, 1, 4]
    for e in (eng, ref):
        e.add_epochs(sids[parts[4]], epochs[parts[4]])
    a, b = eng.refresh(select_alphas=True), ref.refresh()
    assert a.counts["rsa_refresh"] == 5
    np.testing.assert_allclose(a.rsa_spearman, b.rsa_spearman, atol=1e-12)


@pytest.mark.parametrize("selection", ["gcv", "kfold"])
def test_reselection_staggered_over_layers(selection, monkeypatch):
    """reselect_every=3: after the first refresh each refresh re-selects the alphas of the
    layers ``li`` with ``(refresh + li) % 3 == 0`` only (the others keep theirs); a refresh
    with select_alphas=True re-selects every layer and equals a fresh engine's answer."""
    from neuralign.align.layer import LayerSolver

    fs, sids, epochs, times, ch = make_problem(n=60, reps=4, layers=5, seed=4)
    calls = []
    real = LayerSolver.solve

    def spy(self, ri, **kw):
        calls.append((self.li, bool(ri.reselect)))
        return real(self, ri, **kw)

    monkeypatch.setattr(LayerSolver, "solve", spy)
    eng = AlignmentEngine(fs, times=times, ch_names=ch, reselect_every=3,
                          alpha_selection=selection, n_jobs=1)
    parts = np.array_split(np.arange(len(sids)), 6)
    for k, part in enumerate(parts[:5]):
        eng.add_epochs(sids[part], epochs[part])
        calls.clear()
        eng.refresh()
        got = sorted(li for li, re in calls if re)
        assert got == (list(range(5)) if k == 0 else [li for li in range(5) if (k + li) % 3 == 0])
    eng.add_epochs(sids[parts[5]], epochs[parts[5]])
    calls.clear()
    final = eng.refresh(select_alphas=True, reanchor=True)
    assert sorted(li for li, re in calls if re) == list(range(5))
    ref = AlignmentEngine(fs, times=times, ch_names=ch, alpha_selection=selection)
    ref.add_epochs(sids, epochs)
    want = ref.refresh()
    np.testing.assert_array_equal(final.encoding_alpha, want.encoding_alpha)
    np.testing.assert_allclose(final.encoding_r, want.encoding_r, atol=1e-10)


@pytest.mark.parametrize("design", [False, True], ids=["nested", "train/test"])
def test_wide_layers_reselect_when_their_anchor_is_rebuilt(design):
    """Live policy (reselect_every > 1) with layers wider than the stimuli: a layer keeps its
    alphas while its anchor is extended by added stimuli, and re-selects them when the anchor
    is rebuilt, choosing what a fresh engine chooses on the same epochs; the final refresh
    equals offline analysis."""
    fs, sids, epochs, times, ch = make_problem(n=120, d=8, c=3, t=6, layers=3, reps=2, seed=9)
    rng = np.random.default_rng(9)
    wide = [a @ rng.standard_normal((a.shape[1], 300)) + 0.3 * rng.standard_normal((120, 300))
            for a in fs.arrays]
    fs = type(fs)(fs.stimulus_ids, fs.layers, wide)
    test_ids = fs.stimulus_ids[:24].tolist() if design else None

    def engine(**kw):
        return AlignmentEngine(fs, times=times, ch_names=ch, test_ids=test_ids, n_jobs=1, **kw)

    eng = engine(reselect_every=4)
    assert eng.lean_anchors
    kept = rebuilt = moved = 0
    upto = 0
    for part in np.array_split(np.arange(len(sids)), 24):
        eng.add_epochs(sids[part], epochs[part])
        upto = part[-1] + 1
        before_idx = [eng.alpha_indices(li) for li in range(3)]
        before_an = [ly.anchors for ly in eng.layers]
        eng.refresh()
        if eng.alpha_indices(0) is None:
            continue
        assert set(eng.last_forms) == {"dual"}
        splits = eng.outer_splits()
        ref = None
        for li, ly in enumerate(eng.layers):
            now = ly.anchors
            for o, sp in enumerate(splits):
                old = before_an[li].get(sp.left_out)
                new_idx = eng.alpha_indices(li)[o]
                if old is not None and now[sp.left_out] is old:
                    if old.k:  # extended by added stimuli: alphas kept
                        np.testing.assert_array_equal(new_idx, before_idx[li][o])
                        kept += 1
                    continue
                rebuilt += 1
                if ref is None:  # what a fresh engine selects on the epochs so far
                    ref = engine()
                    ref.add_epochs(sids[:upto], epochs[:upto])
                    ref.refresh()
                np.testing.assert_array_equal(new_idx, ref.alpha_indices(li)[o])
                if before_idx[li] is not None and len(before_idx[li]) == len(splits):
                    moved += int((new_idx != before_idx[li][o]).any())
    assert kept > 0
    assert rebuilt > 0
    assert moved > 0
    final = eng.refresh(select_alphas=True, reanchor=True)
    off = engine()
    off.add_epochs(sids, epochs)
    want = off.refresh()
    np.testing.assert_array_equal(final.encoding_alpha, want.encoding_alpha)
    np.testing.assert_allclose(final.encoding_r, want.encoding_r, atol=1e-10)

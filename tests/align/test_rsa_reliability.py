"""RSA against scipy (pdist + spearmanr) and noise ceilings against direct computations."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist
from scipy.stats import pearsonr, spearmanr

from neuralign.align import AlignmentEngine
from neuralign.align.rsa import compare_rdms, crossval_euclidean_rdms

from .conftest import make_problem


def _trials(fs, sids, epochs):
    out = {}
    for s, e in zip(sids, epochs):
        out.setdefault(s, []).append(e)
    return {s: np.stack(v) for s, v in out.items()}


def test_rsa_matches_scipy():
    fs, sids, epochs, times, ch = make_problem(n=40, c=6, reps=4, seed=7)
    test_ids = fs.stimulus_ids[:25].tolist()
    eng = AlignmentEngine(fs, times=times, ch_names=ch, test_ids=test_ids)
    eng.add_epochs(sids, epochs)
    res = eng.refresh()
    assert res.rsa_stimulus_ids == sorted(test_ids)
    tr = _trials(fs, sids, epochs)
    ids = res.rsa_stimulus_ids
    means = np.stack([tr[s].mean(0) for s in ids])
    ha = np.stack([tr[s][0::2].mean(0) for s in ids])
    hb = np.stack([tr[s][1::2].mean(0) for s in ids])
    for li, feats in enumerate(fs.arrays):
        f = feats[fs.index_of(ids)]
        m_rdm = pdist(f, "correlation")
        for t in range(len(times)):
            e_rdm = pdist(means[:, :, t], "correlation")
            np.testing.assert_allclose(res.rsa_spearman[li, t], spearmanr(m_rdm, e_rdm)[0], atol=1e-6)
            np.testing.assert_allclose(res.rsa_pearson[li, t], pearsonr(m_rdm, e_rdm)[0], atol=1e-6)
            n = len(ids)
            cv = [
                (ha[i, :, t] - ha[j, :, t]) @ (hb[i, :, t] - hb[j, :, t]) / len(ch)
                for i in range(n) for j in range(i + 1, n)
            ]
            np.testing.assert_allclose(res.rsa_cv_spearman[li, t], spearmanr(m_rdm, cv)[0], atol=1e-6)


def test_compare_rdms_ties_like_scipy():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(3, 30)).astype(float)  # many ties
    b = rng.integers(0, 5, size=(2, 30)).astype(float)
    out = compare_rdms(a, b)
    for i in range(3):
        for j in range(2):
            np.testing.assert_allclose(out[i, j], spearmanr(a[i], b[j])[0], atol=1e-12)


def test_crossval_euclidean_unbiased():
    """With pure noise, the cross-validated distance averages ~0 (plain Euclidean does not)."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((1, 30, 50))
    b = rng.standard_normal((1, 30, 50))
    d = crossval_euclidean_rdms(a, b)
    assert abs(d.mean()) < 0.2
    assert pdist(a[0], "sqeuclidean").mean() / 50 > 1.5


def test_noise_ceilings_match_direct():
    fs, sids, epochs, times, ch = make_problem(n=60, reps=6, noise=1.0, seed=8)
    eng = AlignmentEngine(fs, times=times, ch_names=ch)
    eng.add_epochs(sids, epochs)
    nc = eng.refresh().noise_ceiling
    tr = _trials(fs, sids, epochs)
    ids = sorted(tr)
    x = np.stack([tr[s] for s in ids])  # (n, reps, C, T)
    n, R = x.shape[:2]
    a, b = x[:, 0::2].mean(1), x[:, 1::2].mean(1)
    full = x.mean(1)

    def corr(u, v):
        return np.array([[np.corrcoef(u[:, c, t], v[:, c, t])[0, 1] for t in range(u.shape[2])]
                         for c in range(u.shape[1])])

    r_half = corr(a, b)
    np.testing.assert_allclose(nc["split_half"], r_half, atol=1e-6)
    np.testing.assert_allclose(nc["spearman_brown"], 2 * r_half / (1 + r_half), atol=1e-6)
    np.testing.assert_allclose(nc["things_upper"], corr(full, a), atol=1e-6)
    # ncsnr: z-score single trials over all images x repetitions
    flat = x.reshape(n * R, *x.shape[2:])
    z = (x - flat.mean(0)) / flat.std(0, ddof=1)
    noise_sd = np.sqrt(z.var(1, ddof=1).mean(0))
    sig_sd = np.sqrt(np.maximum(0, 1 - noise_sd**2))
    ncsnr = sig_sd / noise_sd
    np.testing.assert_allclose(nc["ncsnr"], ncsnr, atol=1e-6)
    np.testing.assert_allclose(nc["ncsnr_pct"], 100 * ncsnr**2 / (ncsnr**2 + 1 / R), atol=1e-6)
    # the ceiling is a real bound: the noise-free signal correlates with the means below it
    assert np.nanmean(nc["r_ceiling"]) > 0.5


def test_rsa_matches_rsatoolbox():
    rsatoolbox = __import__("pytest").importorskip("rsatoolbox")
    fs, sids, epochs, times, ch = make_problem(n=30, c=5, reps=3, seed=11)
    eng = AlignmentEngine(fs, times=times, ch_names=ch)
    eng.add_epochs(sids, epochs)
    res = eng.refresh()
    tr = _trials(fs, sids, epochs)
    ids = res.rsa_stimulus_ids
    means = np.stack([tr[s].mean(0) for s in ids])
    models = rsatoolbox.rdm.concat([
        rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(f[fs.index_of(ids)]), method="correlation")
        for f in fs.arrays
    ])
    for t in range(len(times)):
        eeg = rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(means[:, :, t]), method="correlation")
        ref = rsatoolbox.rdm.compare(models, eeg, method="spearman")[:, 0]
        np.testing.assert_allclose(res.rsa_spearman[:, t], ref, atol=1e-6)


def test_rsa_noise_ceiling_bounds_rho():
    """The split-half RDM ceiling is high with strong signal and bounds the model's rho."""
    fs, sids, epochs, times, ch = make_problem(n=40, c=8, reps=8, noise=0.5, seed=12)
    eng = AlignmentEngine(fs, times=times, ch_names=ch)
    eng.add_epochs(sids, epochs)
    res = eng.refresh()
    assert res.rsa_noise_ceiling.shape == (len(times),)
    assert np.all(res.rsa_noise_ceiling > 0.5)
    assert np.all(res.rsa_spearman <= res.rsa_noise_ceiling[None] + 0.05)


def test_rsa_map_normalised_by_its_ceiling():
    fs, sids, epochs, times, ch = make_problem(n=40, c=8, reps=8, noise=0.5, seed=13)
    eng = AlignmentEngine(fs, times=times, ch_names=ch)
    eng.add_epochs(sids, epochs)
    res = eng.refresh()
    norm = res.rsa_map("rsa", normalized=True)
    np.testing.assert_allclose(norm, res.rsa_spearman / res.rsa_noise_ceiling[None], atol=1e-12)
    assert np.isnan(res.rsa_map("rsa_cv", normalized=True)).all()
    lat, val = res.peaks("rsa", normalized=True)
    np.testing.assert_allclose(val, np.nanmax(norm, axis=1))


def test_rsa_of_a_one_dimensional_layer_is_nan():
    """Correlation distance needs two feature dimensions at least: NaN, never a number."""
    from neuralign.align.rsa import rsa_maps

    rng = np.random.default_rng(0)
    means = rng.standard_normal((12, 4, 5))
    maps = rsa_maps([rng.standard_normal((12, 1)), rng.standard_normal((12, 6))], means)
    assert np.isnan(maps["spearman"][0]).all()
    assert np.isnan(maps["pearson"][0]).all()
    assert np.isfinite(maps["spearman"][1]).all()


def test_incremental_ranks_equal_a_fresh_rank():
    """Merging changed columns into the kept order gives exactly rank_rows' ranks."""
    from neuralign.align.rsa import IncrementalRanker, pairs_of, rank_rows, upper_indices

    rng = np.random.default_rng(0)
    n = 40
    P = n * (n - 1) // 2
    v = rng.standard_normal((6, P))
    rk = IncrementalRanker()
    np.testing.assert_array_equal(rk.rank(v, None), rank_rows(v))
    for step in range(5):
        stim = rng.choice(n, 2, replace=False)
        cols = pairs_of(stim, n)
        iu, ju = upper_indices(n)
        assert set(cols.tolist()) == {p for p in range(P) if iu[p] in stim or ju[p] in stim}
        v = v.copy()
        v[:, cols] = rng.standard_normal((6, cols.size)) * (1 + step)
        if step == 3:  # a tie between a changed and a kept value
            v[2, cols[0]] = v[2, np.setdiff1d(np.arange(P), cols)[5]]
        np.testing.assert_array_equal(rk.rank(v, cols), rank_rows(v))

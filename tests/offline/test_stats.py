"""Statistics over maps: corrections, cluster tests (incl. null calibration), bootstrap, regression."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as sps

from neuralign.align import clusters, permutation
from neuralign.align import stats as st
from neuralign.align.reliability import normalize_by_ceiling
from neuralign.errors import NeuralignError


def test_corrections_match_references():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.2, size=50) ** 2
    rej, pc = clusters.correct_pvalues(p, method="fdr", alpha=0.05)
    np.testing.assert_allclose(pc, sps.false_discovery_control(p, method="bh"), atol=1e-12)
    assert np.array_equal(rej, pc <= 0.05)
    rej, pc = clusters.correct_pvalues(p, method="bonferroni")
    np.testing.assert_allclose(pc, np.minimum(p * p.size, 1))
    # Holm: reference by the textbook loop
    order = np.argsort(p)
    ref = np.empty_like(p)
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, (p.size - i) * p[j])
        ref[j] = min(running, 1.0)
    _, pc = clusters.correct_pvalues(p, method="holm")
    np.testing.assert_allclose(pc, ref)
    with pytest.raises(NeuralignError, match="fdr, bonferroni"):
        clusters.correct_pvalues(p, method="sidak")


def test_group_cluster_test_matches_exhaustive_sign_flips():
    """p-values equal a hand-written exhaustive sign-flip max-cluster-mass test (to 1/2**n)."""
    rng = np.random.default_rng(1)
    n, t = 7, 30
    x = rng.standard_normal((n, t)) * 0.5
    x[:, 10:16] += 0.9
    res = clusters.group_cluster_test(x, n_permutations=10_000, fisher=False, tail=1, p_threshold=0.05)
    thr = sps.t.ppf(0.95, n - 1)
    assert res.threshold == pytest.approx(thr)

    def tstat(a):
        return a.mean(0) / (a.std(0, ddof=1) / np.sqrt(n))

    t_obs = tstat(x)
    np.testing.assert_allclose(res.stat, t_obs, rtol=1e-10)
    null = []
    for signs in itertools.product((1.0, -1.0), repeat=n):
        ts = tstat(x * np.array(signs)[:, None])
        cl = clusters.find_clusters(ts, thr, tail=1)
        null.append(max([ts[c].sum() for c in cl], default=0.0))
    null = np.array(null)
    assert res.clusters, "the planted effect forms a cluster"
    for c, p in zip(res.clusters, res.cluster_p):
        mass = t_obs[c].sum()
        # MNE counts the identity flip twice (observed + its all-ones pattern): 1/2**n apart
        assert p == pytest.approx(np.mean(null >= mass - 1e-9), abs=1 / 2**n + 1e-9)
    assert res.significant
    assert res.mask[10:16].all()


def test_group_cluster_layer_time_plane():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 5, 40)) * 0.05
    x[:, 2:4, 15:25] += 0.08
    res = clusters.group_cluster_test(x, n_permutations=256, seed=0)
    assert res.stat.shape == (5, 40)
    assert res.significant
    m = res.mask
    assert m[2:4, 15:25].mean() > 0.8
    assert m[:, :10].sum() == 0


def _assert_calibrated(hits: int, reps: int, alpha: float = 0.05) -> None:
    """The observed false-positive count is consistent with a rate of at most ``alpha``.

    An exact permutation test has a family-wise rate of at most alpha, so the count over
    ``reps`` null data sets is Binomial(reps, <= alpha); we reject calibration when a one-sided
    binomial test says the rate exceeds alpha (p < 0.05), and bound the point estimate too.
    """
    p = sps.binomtest(hits, reps, alpha, alternative="greater").pvalue
    assert p > 0.05, f"false-positive rate {hits}/{reps} exceeds {alpha} (binomial p={p:.3g})"
    assert hits / reps <= alpha + 2 * np.sqrt(alpha * (1 - alpha) / reps)


def test_group_null_calibration_false_positive_rate():
    """No planted signal: family-wise false-positive rate at alpha = 0.05 is at most 5 %."""
    rng = np.random.default_rng(123)
    reps = 200
    hits = 0
    for i in range(reps):
        maps = rng.standard_normal((10, 30)) * 0.05
        res = clusters.group_cluster_test(maps, n_permutations=256, seed=i)
        hits += res.significant
    _assert_calibrated(hits, reps)


def _rsa_problem(rng, n=30, t=24, layers=3, signal=0.0):
    feats = [rng.standard_normal((n, 8)) for _ in range(layers)]
    mod = np.stack([1 - np.corrcoef(f) for f in feats])
    eeg = []
    for k in range(t):
        y = rng.standard_normal((n, 12))
        if signal and 8 <= k < 16:
            y = y + signal * feats[1] @ rng.standard_normal((8, 12))
        eeg.append(1 - np.corrcoef(y))
    return np.stack(eeg), mod


def test_rsa_map_function_is_spearman():
    rng = np.random.default_rng(3)
    eeg, mod = _rsa_problem(rng, n=12, t=4, layers=2)
    fn = permutation.rsa_map_function(eeg, mod)
    perm = rng.permutation(12)
    iu = np.triu_indices(12, 1)
    got = fn(perm)
    for li in range(2):
        m = mod[li][perm][:, perm]
        for k in range(4):
            ref = sps.spearmanr(m[iu], eeg[k][iu]).statistic
            assert got[li, k] == pytest.approx(ref, abs=1e-10)


def test_single_subject_null_calibration_and_power():
    """Label permutation on maps with no signal: FPR <= 5 %; with a planted signal: power."""
    rng = np.random.default_rng(7)
    reps, hits = 100, 0
    for i in range(reps):
        eeg, mod = _rsa_problem(rng)
        res = permutation.single_subject_cluster_test(
            permutation.rsa_map_function(eeg, mod), eeg.shape[-1], n_permutations=99, seed=i
        )
        hits += res.significant
    _assert_calibrated(hits, reps)
    found = 0
    for i in range(10):
        eeg, mod = _rsa_problem(rng, signal=0.6)
        res = permutation.single_subject_cluster_test(
            permutation.rsa_map_function(eeg, mod), eeg.shape[-1], n_permutations=99, seed=i
        )
        found += res.significant and res.mask[1, 8:16].any() and not res.mask[:, :6].any()
    assert found >= 9


def test_bootstrap_units_agrees_with_scipy():
    rng = np.random.default_rng(4)
    x = rng.normal(0.1, 0.05, size=(12, 3))
    b = st.bootstrap_units(x, n_boot=4000, seed=0)
    ref = sps.bootstrap((x,), lambda a, axis: a.mean(axis=axis), n_resamples=4000,
                        method="percentile", axis=0, random_state=0)
    np.testing.assert_allclose(b.estimate, x.mean(0))
    np.testing.assert_allclose(b.lo, ref.confidence_interval.low, atol=0.006)
    np.testing.assert_allclose(b.hi, ref.confidence_interval.high, atol=0.006)


def test_bootstrap_items_and_peak_latency_ci():
    rng = np.random.default_rng(5)
    times = np.arange(-0.2, 0.8, 0.01)
    n = 60
    # per-stimulus contributions with a peak at 150 ms (layer 0) and 300 ms (layer 1)
    prof = np.stack([np.exp(-((times - c) ** 2) / (2 * 0.03**2)) for c in (0.15, 0.30)])
    contrib = prof[None] + rng.standard_normal((n, 2, times.size)) * 0.5

    def map_fn(idx):
        return contrib.mean(0) if idx is None else contrib[idx].mean(0)

    b = st.bootstrap_items(map_fn, n, n_boot=300, seed=0)
    assert b.samples.shape == (300, 2, times.size)
    assert np.all(b.lo <= b.estimate + 1e-12)
    assert np.all(b.estimate <= b.hi + 1e-12)
    ci = st.peak_latency_ci(b.samples, times)
    for li, c in enumerate((0.15, 0.30)):
        assert ci["lo"][li] <= c + 1e-9 <= ci["hi"][li] + 2e-9
        assert ci["hi"][li] - ci["lo"][li] < 0.1


def test_normalize_by_ceiling():
    r = np.array([[0.1, 0.2, 0.3]])
    c = np.array([0.5, 0.05, np.nan])
    out = normalize_by_ceiling(r, c)
    assert out[0, 0] == pytest.approx(0.2)
    assert np.isnan(out[0, 1])
    assert np.isnan(out[0, 2])


def test_paired_comparison():
    rng = np.random.default_rng(6)
    a = rng.normal(0.2, 0.02, 8)
    b = a - 0.03 + rng.normal(0, 0.01, 8)
    out = st.paired_comparison(a, b)
    assert out["p_t"] == pytest.approx(sps.ttest_rel(a, b).pvalue)
    assert out["p_perm"] == pytest.approx(2 / 256)  # exact: only all-plus / all-minus as extreme
    assert out["mean_diff"] == pytest.approx(np.mean(a - b))


def test_descriptor_regression_against_sklearn():
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(8)
    n = 32
    family = rng.choice(["llava", "qwen", "idefics", "blip"], n)
    params = 10 ** rng.uniform(8, 10.5, n)
    fam_eff = {"llava": 0.0, "qwen": 0.03, "idefics": -0.02, "blip": 0.05}
    y = np.array([fam_eff[f] for f in family]) + 0.004 * np.log10(params) + rng.normal(0, 0.01, n)
    out = st.descriptor_regression(y, {"family": family.tolist(), "params": params.tolist()})
    x = np.column_stack([(family == f).astype(float) for f in ["blip", "idefics", "llava", "qwen"][1:]]
                        + [np.log10(params)])
    ref = LinearRegression().fit(x, y).score(x, y)
    assert out["r2_full"] == pytest.approx(ref, abs=1e-10)
    d = out["descriptors"]
    assert sum(v["shapley_r2"] for v in d.values()) == pytest.approx(out["r2_full"], abs=1e-10)
    xf = x[:, :3]
    assert d["family"]["r2_alone"] == pytest.approx(LinearRegression().fit(xf, y).score(xf, y))
    assert d["family"]["shapley_r2"] > d["params"]["shapley_r2"]
    small = st.descriptor_regression(y[:3], {"family": family[:3].tolist(),
                                             "params": params[:3].tolist()})
    assert "warning" in small

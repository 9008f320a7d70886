"""Calibration of analyze's statistics, short version (the full one: bench/bench_calibration.py,
measured in docs/offline-analyze.md): random features -> family-wise false positives at the
nominal rate; planted features -> planted layers significant; a planted pair -> each unique
part where it was planted; random features -> no unique variance above chance."""

from __future__ import annotations

import warnings

from neuralign.commands.calibration import calibrate, partition_run, rate


def test_rate_has_binomial_error_and_exact_interval():
    r = rate(5, 100)
    assert r["rate"] == 0.05
    assert abs(r["se"] - (0.05 * 0.95 / 100) ** 0.5) < 1e-12
    lo, hi = r["ci"]  # Clopper-Pearson for 5/100 (R: binom.test(5, 100))
    assert abs(lo - 0.01643) < 1e-4
    assert abs(hi - 0.11284) < 1e-4


def test_short_calibration():
    warnings.simplefilter("ignore", RuntimeWarning)
    res = calibrate(20, n_perm=199, what=("null",))
    # expected 1 false positive in 20 at alpha 0.05; P(>= 5 | 5%) = 0.3%
    assert res["null"]["fwer"]["k"] <= 4
    res = calibrate(5, n_perm=199, what=("planted",))
    assert res["planted"]["all_layers_significant"]["k"] >= 4
    res = calibrate(4, n_perm=199, what=("partition",))
    assert res["partition"]["recovered"]["k"] >= 3
    res = calibrate(10, n_perm=199, what=("partition_null",), seed0=100)
    e = res["partition_null"]
    # P(>= 3 of 10 | 5%) = 1.2%
    assert e["unique_B_significant"]["k"] <= 2
    assert e["unique_B_any_target"]["k"] <= 2


def test_partition_run_reports_where_and_negatives():
    r = partition_run(0, n_perm=99, n_boot=50)
    assert set(r["where_ms"]) == {"unique A", "unique B"}
    assert all(abs(t - 100) < abs(t - 300) for t in r["where_ms"]["unique A"])
    assert set(r["negative"]) == {"unique A", "unique B", "shared"}

"""Held-out Pearson r per column against NumPy, with constant columns undefined."""

from __future__ import annotations

import numpy as np

from neuralign.align.scoring import eeg_side, pearson_columns


def test_pearson_columns_equals_numpy_and_marks_constant_columns():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((40, 6))
    pred = 0.5 * y + rng.standard_normal((40, 6)) + 3.0
    pred[:, 2] = 7.0  # a constant prediction
    y[:, 4] = 1.0 + 1e-9 * np.float32(1.0)  # constant EEG
    r, pc = pearson_columns(pred, eeg_side(y), return_centred=True)
    want = [np.corrcoef(pred[:, j], y[:, j])[0, 1] for j in (0, 1, 3, 5)]
    np.testing.assert_allclose(r[[0, 1, 3, 5]], want, rtol=1e-12)
    assert np.isnan(r[2])
    assert np.isnan(r[4])
    np.testing.assert_allclose(pc, pred - pred.mean(0), atol=1e-12)
    np.testing.assert_array_equal(pearson_columns(pred, y), r)

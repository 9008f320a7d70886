"""The statistics monitor: confidence of every model, ranking and rule, one call."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuralign.align import ModelGroup
from neuralign.align.confidence import bootstrap_peaks
from neuralign.align.monitor import StatisticsMonitor, significant_peaks
from neuralign.align.stopping import StoppingRule
from neuralign.base import FeatureSet

from .conftest import make_problem


def _group(n=120, reps=3, seed=11):
    fs, sids, epochs, times, ch = make_problem(n=n, reps=reps, seed=seed)
    rng = np.random.default_rng(0)
    random = FeatureSet(fs.stimulus_ids, ("r0", "r1"),
                        [rng.standard_normal(a.shape) for a in fs.arrays])
    g = ModelGroup({"random": random, "planted": fs}, times=times, ch_names=ch,
                   test_ids=fs.stimulus_ids[:40].tolist())
    return g, sids, epochs


def test_monitor_ranks_evaluates_rule_and_is_json():
    g, sids, epochs = _group()
    g.add_epochs(sids, epochs)
    g.refresh()
    mon = StatisticsMonitor(rule=StoppingRule.parse("ranking p<0.01 and epochs>=100"),
                            n_boot=200, n_perm=100, seed=3)
    st = mon.evaluate(g.engines)
    assert st.n_epochs == len(sids)
    assert [r.label for r in st.ranking.rows] == ["planted", "random"]
    assert st.watched == "planted"
    assert st.stopping.satisfied
    # the monitor's intervals are the engine's (same seed), nothing else
    ref = bootstrap_peaks(g.engines["planted"].held_out, n_boot=200, seed=3)
    np.testing.assert_array_equal(st.models["planted"].peaks.latency_ci, ref.latency_ci)
    sig = st.models["planted"].significant
    assert sig[0]
    assert not st.models["random"].significant.any()
    assert "top=planted" in st.status_fragment()
    assert "MET" in st.status_fragment()
    d = json.loads(json.dumps(st.to_dict()))
    assert d["ranking"]["models"][0]["label"] == "planted"
    assert d["stopping_history"][-1]["satisfied"] is True


def test_rule_history_grows_and_is_not_met_early():
    g, sids, epochs = _group()
    mon = StatisticsMonitor(rule=StoppingRule.parse("ranking p<0.01 and epochs>=300"),
                            n_boot=100, n_perm=0)
    for a, b in ((0, 150), (150, 250), (250, 360)):
        g.add_epochs(sids[a:b], epochs[a:b])
        g.refresh()
        st = mon.evaluate(g.engines)
    assert [h["n_epochs"] for h in st.history] == [150, 250, 360]
    assert not st.history[0]["satisfied"]
    assert st.history[-1]["satisfied"]
    assert st.models["planted"].mask is None  # n_perm=0: no mask, no significance
    assert st.models["planted"].significant is None


def test_significant_peaks_reads_the_peak_cell():
    g, sids, epochs = _group()
    g.add_epochs(sids, epochs)
    g.refresh()
    c = g.engines["planted"].confidence(n_boot=50, n_perm=50)
    times = g.engines["planted"].times
    sig = significant_peaks(c["peaks"], c["mask"], times)
    j = np.searchsorted(times, c["peaks"].latency_s[0])
    assert sig[0] == c["mask"].mask[0, j]


def test_nan_percentiles_equal_numpy():
    from neuralign.align.quantiles import nan_percentiles

    rng = np.random.default_rng(4)
    x = rng.standard_normal((301, 5, 7))
    x[rng.random(x.shape) < 0.2] = np.nan
    x[:, 0, 0] = np.nan  # an all-NaN column
    x[:, 1, 1] = 3.0  # ties
    x[:300, 2, 2] = np.nan  # one value
    for q in (0.0, 2.5, 50.0, 97.5, 100.0):
        got = nan_percentiles(x, [q])[0]
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
            want = np.nanpercentile(x, q, axis=0)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-14, equal_nan=True)


def test_paired_comparison_from_bootstrap_samples_equals_compare_models():
    from neuralign.align.confidence import compare_models
    from neuralign.align.ranking import compare_bootstrapped

    g, sids, epochs = _group()
    g.add_epochs(sids, epochs)
    g.refresh()
    ha, hb = g.engines["planted"].held_out, g.engines["random"].held_out
    pa = bootstrap_peaks(ha, n_boot=300, seed=4)
    pb = bootstrap_peaks(hb, n_boot=300, seed=4)
    fast = compare_bootstrapped(pa, 0, pb, 1)
    slow = compare_models(ha, 0, hb, 1, n_boot=300, seed=4)
    assert fast["p"] == slow["p"]
    np.testing.assert_allclose(fast["ci"], slow["ci"], atol=1e-12)
    assert fast["diff"] == pytest.approx(slow["diff"], abs=1e-12)
    assert fast["n_stimuli"] == slow["n_stimuli"]
    # other stimuli or another number of resamples do not pair up
    assert compare_bootstrapped(pa, 0, bootstrap_peaks(hb, n_boot=200, seed=4), 1) is None

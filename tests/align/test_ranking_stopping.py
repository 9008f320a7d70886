"""Several models ranked with paired tests; stopping rules and their extrapolation."""

from __future__ import annotations

import numpy as np
import pytest

from neuralign.align import AlignmentEngine
from neuralign.align.ranking import rank_models
from neuralign.align.stopping import StoppingRule, parse_rule
from neuralign.base import FeatureSet
from neuralign.errors import NeuralignError

from .conftest import make_problem


def test_planted_model_ranks_first_with_a_small_p():
    fs, sids, epochs, times, ch = make_problem(n=120, reps=3, seed=11)
    rng = np.random.default_rng(0)
    random = FeatureSet(fs.stimulus_ids, ("r0", "r1"),
                        [rng.standard_normal(a.shape) for a in fs.arrays])
    test_ids = fs.stimulus_ids[:40].tolist()
    held = {}
    for label, f in (("random", random), ("planted", fs)):
        eng = AlignmentEngine(f, times=times, ch_names=ch, test_ids=test_ids)
        eng.add_epochs(sids, epochs)
        eng.refresh()
        held[label] = eng.held_out
    rk = rank_models(held, n_boot=300, seed=2)
    assert [r.label for r in rk.rows] == ["planted", "random"]
    assert rk.rows[0].best_layer == "layer0"
    assert rk.top_p < 0.01
    d = rk.to_dict()
    assert d["comparisons"][0]["better"] == "planted"
    assert d["comparisons"][0]["ci"][0] > 0


@pytest.mark.parametrize(("text", "kinds"), [
    ("latency-ci<=20ms", ["latency"]),
    ("ranking p<0.01", ["ranking"]),
    ("latency-ci<=0.02s and ranking p<0.05 and epochs>=100", ["latency", "ranking", "epochs"]),
    ("latency-ci<=20ms and significant>=4", ["latency", "significant"]),
])
def test_rules_parse(text, kinds):
    assert [c.kind for c in parse_rule(text)] == kinds


@pytest.mark.parametrize("text", ["", "latency<=20ms", "ranking p<2", "latency-ci<=0ms",
                                  "epochs>=many"])
def test_bad_rules_are_one_clear_error(text):
    with pytest.raises(NeuralignError, match="--stop-when"):
        parse_rule(text)


def test_latency_rule_progress_and_epochs_needed():
    rule = StoppingRule.parse("latency-ci<=20ms")
    sig = np.array([True, True, False])
    for n in (100, 200, 400, 800):  # widths shrinking as 1/sqrt(n), from 160 ms at n = 100
        w = 0.16 * np.sqrt(100 / n)
        st = rule.evaluate(n_epochs=n, latency_ci=np.array([[0.1, 0.1 + w], [0.2, 0.2 + w / 2],
                                                            [0.0, 1.0]]), significant=sig)
    assert not st.satisfied
    assert st.progress == pytest.approx(0.02 / (0.16 * np.sqrt(100 / 800)))
    # 160 ms at 100 epochs shrinks to 20 ms at 6400 epochs: 5600 more than 800
    assert st.epochs_needed == pytest.approx(5600, rel=1e-6)
    st = rule.evaluate(n_epochs=6400, latency_ci=np.array([[0.1, 0.12], [0.2, 0.21],
                                                           [0.0, 1.0]]), significant=sig)
    assert st.satisfied
    assert "MET" in st.line()
    assert rule.to_dict()["history"][-1]["satisfied"]


def test_no_significant_layer_never_satisfies():
    rule = StoppingRule.parse("latency-ci<=20ms")
    st = rule.evaluate(n_epochs=50, latency_ci=np.array([[0.1, 0.101]]),
                       significant=np.array([False]))
    assert not st.satisfied


def test_ranking_rule():
    rule = StoppingRule.parse("ranking p<0.01")
    st = rule.evaluate(n_epochs=400, top_p=0.0455)  # z = 2
    assert not st.satisfied
    # z must reach 2.576: n grows by (2.576 / 2)^2
    assert st.epochs_needed == pytest.approx(400 * ((2.5758293 / 2.0) ** 2 - 1), rel=1e-4)
    assert rule.evaluate(n_epochs=900, top_p=0.001).satisfied


def test_significant_layers_rule():
    rule = StoppingRule.parse("latency-ci<=20ms and significant>=3")
    ci = np.array([[0.1, 0.11], [0.2, 0.21], [0.3, 0.31]])
    assert not rule.evaluate(n_epochs=100, latency_ci=ci,
                             significant=np.array([1, 1, 0], bool)).satisfied
    assert rule.evaluate(n_epochs=200, latency_ci=ci,
                         significant=np.array([1, 1, 1], bool)).satisfied


def test_model_group_shares_epochs_and_the_eeg_side_and_ranks():
    from neuralign.align import ModelGroup

    fs, sids, epochs, times, ch = make_problem(n=120, reps=3, seed=12)
    rng = np.random.default_rng(1)
    random = FeatureSet(fs.stimulus_ids, ("r0", "r1"),
                        [rng.standard_normal(a.shape) for a in fs.arrays])
    test_ids = fs.stimulus_ids[:40].tolist()
    grp = ModelGroup({"random": random, "planted": fs}, times=times, ch_names=ch,
                     test_ids=test_ids)
    grp.add_epochs(sids[:200], epochs[:200])
    for s, e in zip(sids[200:], epochs[200:]):
        grp.add_epoch(s, e)
    res = grp.refresh()
    alone = AlignmentEngine(fs, times=times, ch_names=ch, test_ids=test_ids)
    alone.add_epochs(sids, epochs)
    ref = alone.refresh()
    np.testing.assert_allclose(res["planted"].encoding_r, ref.encoding_r, atol=1e-12)
    np.testing.assert_allclose(res["planted"].rsa_spearman, ref.rsa_spearman, atol=1e-12)
    for k in ref.noise_ceiling:
        np.testing.assert_allclose(res["random"].noise_ceiling[k], ref.noise_ceiling[k],
                                   atol=1e-12, equal_nan=True)
    conf = grp.confidence(n_boot=100, n_perm=50)
    rk = grp.ranking(n_boot=200, confidence=conf)
    assert rk.rows[0].label == "planted"
    assert rk.top_p < 0.01


def test_model_group_refuses_models_on_other_stimuli():
    from neuralign.align import ModelGroup

    fs, sids, epochs, times, ch = make_problem(n=30, seed=1)
    other = FeatureSet([f"x{i}" for i in range(30)], fs.layers, fs.arrays)
    with pytest.raises(NeuralignError, match="other stimuli"):
        ModelGroup({"a": fs, "b": other}, times=times, ch_names=ch)

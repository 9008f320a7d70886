"""The window paints the statistics it is given: CI bands, mask outline, ranking, stop rule,
and one model at a time (the model selector)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from neuralign.align import ModelGroup
from neuralign.align.monitor import StatisticsMonitor
from neuralign.align.stopping import StoppingRule
from neuralign.app.window import MainWindow
from neuralign.base import FeatureSet
from neuralign.realtime.source import StaticSource

from .conftest import make_snapshot


@pytest.fixture(scope="module")
def two_models():
    """Two models refreshed on the same epochs (one planted, one random) and their stats."""
    rng = np.random.default_rng(0)
    n, C, T = 90, 3, 8
    ids = [f"s{i:03d}" for i in range(n)]
    good = rng.standard_normal((n, 6))
    w = rng.standard_normal((6, C * T))
    bump = np.exp(-((np.arange(T) - 3) / 1.5) ** 2)
    signal = ((good @ w).reshape(n, C, T) * bump) / 2
    planted = FeatureSet(ids, ["l0", "l1"], [good, rng.standard_normal((n, 5))])
    random = FeatureSet(ids, ["r0", "r1", "r2"], [rng.standard_normal((n, 4)) for _ in range(3)])
    times = np.arange(T) / 100.0
    g = ModelGroup({"planted": planted, "random": random}, times=times,
                   ch_names=["O1", "Oz", "O2"], test_ids=ids[:30])
    for _ in range(3):
        g.add_epochs(ids, signal + rng.standard_normal((n, C, T)))
    results = g.refresh()
    mon = StatisticsMonitor(rule=StoppingRule.parse("ranking p<0.01 and epochs>=1000"),
                            n_boot=100, n_perm=50, seed=1)
    return results, mon.evaluate(g.engines)


@pytest.fixture
def window(qtbot):
    win = MainWindow(None)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    return win


def test_window_paints_intervals_mask_ranking_and_stop_rule(window, two_models):
    results, stats = two_models
    snap = dataclasses.replace(make_snapshot(results["planted"]), results=results, stats=stats)
    window.set_source(StaticSource(snap))
    window.tick()
    view = window.stats_view
    assert view.menu.isVisibleTo(window)
    assert [view.menu.itemText(i) for i in range(view.menu.count())] == ["planted", "random"]
    pk = stats.models["planted"]
    np.testing.assert_allclose(view.bands.ci, pk.peaks.latency_ci.astype(np.float32))
    x, lo = view.bands.lower.getData()
    np.testing.assert_allclose(lo, pk.peaks.latency_ci[:, 0].astype(np.float32))
    np.testing.assert_array_equal(view.mask.mask, pk.mask.mask)
    assert pk.mask.mask.any()  # the planted layer is significant: an outline is drawn
    assert view.mask.curve.data is not None
    table = view.ranking.table
    assert table.rowCount() == 2
    assert table.item(0, 0).text() == "planted"
    assert table.item(1, 0).text() == "random"
    assert "planted &gt; random" in view.ranking.comparisons.text()
    assert view.ranking.stop_bar.isVisibleTo(window)
    assert view.ranking.stop_bar.value() == int(round(100 * stats.stopping.progress))
    assert "more epochs" in view.ranking.stop_line.text()
    assert "stop rule" in window.statusBar().currentMessage()
    # the selector paints the other model's maps and intervals
    view.menu.setCurrentText("random")
    np.testing.assert_allclose(window.enc_map.data, results["random"].encoding_map(),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(view.bands.ci,
                               stats.models["random"].peaks.latency_ci.astype(np.float32))
    np.testing.assert_array_equal(view.mask.mask, stats.models["random"].mask.mask)


def test_single_model_without_statistics_hides_selector(window, snapshot):
    window.set_source(StaticSource(snapshot))
    window.tick()
    assert not window.stats_view.menu.isVisibleTo(window)
    assert window.stats_view.bands.ci is None
    assert window.stats_view.ranking.table.rowCount() == 0

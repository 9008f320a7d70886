"""The refresh loop with statistics in their own thread: maps keep refreshing, each
evaluation takes the newest refresh, the rule's callback fires once it holds."""

from __future__ import annotations

import threading
import time

import numpy as np

from neuralign.align import ModelGroup
from neuralign.align.monitor import StatisticsMonitor
from neuralign.align.stopping import StoppingRule
from neuralign.base import FeatureSet
from neuralign.realtime.publisher import SnapshotPublisher
from neuralign.realtime.snapshot import StreamHealth


def _problem(seed=0, n=80, C=3, T=8):
    rng = np.random.default_rng(seed)
    ids = [f"s{i:03d}" for i in range(n)]
    good = rng.standard_normal((n, 6))
    sig = (good @ rng.standard_normal((6, C * T))).reshape(n, C, T) / 2
    planted = FeatureSet(ids, ["l0"], [good])
    random = FeatureSet(ids, ["r0"], [rng.standard_normal((n, 5))])
    g = ModelGroup({"planted": planted, "random": random}, times=np.arange(T) / 100.0,
                   ch_names=[f"c{k}" for k in range(C)], test_ids=ids[:30])
    order = np.tile(np.arange(n), 4)
    epochs = sig[order] + rng.standard_normal((order.size, C, T))
    return g, np.array(ids)[order], epochs


def test_statistics_thread_follows_refreshes_and_fires_the_rule():
    g, sids, epochs = _problem()
    met: list = []
    mon = StatisticsMonitor(rule=StoppingRule.parse("epochs>=200"), n_boot=50, n_perm=20)
    pub = SnapshotPublisher(g, interval_s=0.05, epoch_shape=epochs.shape[1:], monitor=mon,
                            stats_async=True, on_stats=met.append)
    stop = threading.Event()
    loop = threading.Thread(target=pub.refresh_loop, args=(stop,), daemon=True)
    loop.start()
    try:
        for k in range(0, sids.size, 40):
            g.add_epochs(sids[k:k + 40], epochs[k:k + 40])
            time.sleep(0.3)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(s.stopping.satisfied for s in met):
            time.sleep(0.1)
    finally:
        stop.set()
        loop.join(60)
    assert not loop.is_alive()  # the statistics thread was joined with it
    assert met, "no evaluation"
    n = [s.n_epochs for s in met]
    assert n == sorted(n)  # every evaluation took the newest refresh, in order
    assert any(s.stopping.satisfied for s in met)
    assert not met[0].stopping.satisfied
    last = met[-1]
    assert set(last.models) == {"planted", "random"}
    assert last.ranking.rows[0].label == "planted"
    assert pub.n_refreshes >= len(met)  # statistics at most once per refresh
    snap = pub.publish(StreamHealth(), session_time=0.0, times=np.arange(8) / 100.0)
    assert snap.stats is pub.stats
    assert set(snap.models) == {"planted", "random"}
    assert "stop rule" in snap.status_line()

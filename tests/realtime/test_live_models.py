"""Several models in one live session over loopback LSL: ranked, with intervals, auto-stop.

The simulated amplifier plants one model's features in the EEG; a second model is random. The
session ranks the planted model first with p < 0.01, the stopping rule ends it before the
amplifier's schedule is over, and ``neuralign analyze`` of its recording gives the very same
intervals (same seed).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuralign.align.monitor import StatisticsMonitor
from neuralign.align.stopping import StoppingRule
from neuralign.base import FeatureSet, load_design
from neuralign.cli import main
from neuralign.io.backchannel import BackChannelReader
from neuralign.io.features import save_features
from neuralign.realtime.session import LiveSession
from neuralign.report import write_session
from neuralign.sim.features import hierarchical_features

from .lslkit import neuralign, stop, unique, wait_for_stream, wait_until

pytestmark = [pytest.mark.lsl, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    ids = [f"stim_{i:03d}" for i in range(80)]
    planted = hierarchical_features(ids, n_layers=4, dim=12, seed=1)
    rng = np.random.default_rng(5)
    random = FeatureSet(planted.stimulus_ids, [f"rand{i}" for i in range(3)],
                        [rng.standard_normal((80, 10)) for _ in range(3)])
    d = tmp_path_factory.mktemp("feat")
    save_features(d / "planted.npz", planted)
    save_features(d / "random.npz", random)
    return d / "planted.npz", d / "random.npz", planted, random


def test_two_models_ranked_auto_stop_and_offline_intervals(tmp_path, two_models):
    ppath, rpath, planted, random = two_models
    name = unique("models")
    design_path = tmp_path / "design.json"
    # 40 train x 2 + 40 test x 8 = 400 presentations, ~20 s at 20 Hz
    amp = neuralign(["simulate-amp", "--eeg-stream", name, "--source-id", name, "--features",
                     str(ppath), "--schedule", "--design-out", str(design_path), "--n-test",
                     "40", "--train-reps", "2", "--test-reps", "8", "--soa", "0.05",
                     "--snr", "1.5", "--seed", "3"], tmp_path / "amp.log")
    out = tmp_path / "live"
    rule = StoppingRule.parse("ranking p<0.01 and epochs>=120")
    monitor = StatisticsMonitor(rule=rule, n_boot=200, n_perm=100, seed=7)
    try:
        wait_for_stream(name)
        assert wait_until(design_path.exists, 30)
        design = load_design(design_path)
        sess = LiveSession({"random": random, "planted": planted}, eeg_stream=name,
                           marker_stream=f"{name}-markers", out_dir=out, design=design,
                           refresh_every=0.5, statistics=monitor, stats_every=1)
        sess.connect()
        presenter = BackChannelReader(f"{name}-markers")  # what `neuralign present` reads
        assert presenter.connect(20)
        sess.start()
        assert wait_until(sess.rule_met.is_set, 90), sess.status_line()
        live_line = sess.status_line()
        told = presenter.poll(timeout=10)
        result = sess.stop()
        presenter.close()
    finally:
        stop(amp)
    # the presenter was told over the back channel to stop, with the reason
    assert told is not None
    assert told.kind == "stop"
    assert "ranking p<0.01" in told.reason
    st = sess.stats
    # the session stopped by itself, before the schedule's 400 presentations
    assert sess.stop_reason.startswith("stop rule met")
    assert st.n_epochs < 400
    assert "stop rule" in live_line
    assert "ci" in live_line
    # several models: each has maps, intervals and a mask; the planted one is ranked first
    assert set(sess.results) == {"random", "planted"}
    assert [r.label for r in st.ranking.rows] == ["planted", "random"]
    met = [h for h in st.history if h["satisfied"]]
    assert met[0]["top_p"] < 0.01  # the live ranking was sure before the session ended
    assert st.ranking.pairs[("planted", "random")]["diff"] > 0
    assert st.models["planted"].significant.any()
    assert not st.models["random"].mask.mask.any()
    hist = st.history
    assert len(hist) >= 3  # CI width and p vs epochs, up to the final maps
    assert not hist[0]["satisfied"]
    assert hist[-1]["n_epochs"] == st.n_epochs
    paths = write_session(result, out, title="test", results=sess.results, stats=st)
    assert paths["stopping_history"].exists()
    saved = json.loads((out / "results.json").read_text())["statistics"]
    assert saved["ranking"]["models"][0]["label"] == "planted"
    assert (out / "models" / "random" / "results.json").exists()
    with np.load(out / "maps.npz") as z:
        assert z["mask_planted"].shape == (4, result.times.size)
    # offline: the same epochs, engines and seed give the very same intervals
    off = tmp_path / "offline"
    assert main(["analyze", "--dataset", f"recording:{out}", "--features", f"random={rpath}",
                 "--features", f"planted={ppath}", "--n-boot", "200", "--n-perm", "100",
                 "--seed", "7", "--out", str(off), "--quiet"]) == 0
    offs = json.loads((off / "results.json").read_text())["statistics"]
    for label in ("planted", "random"):
        a, b = saved["models"][label]["peaks"], offs["models"][label]["peaks"]
        np.testing.assert_allclose(np.array(a["latency_ci"], float),
                                   np.array(b["latency_ci"], float), atol=1e-9)
        np.testing.assert_allclose(np.array(a["peak_r_ci"], float),
                                   np.array(b["peak_r_ci"], float), atol=1e-6)
        assert saved["models"][label]["mask"]["mask"] == offs["models"][label]["mask"]["mask"]
    assert offs["ranking"]["models"][0]["label"] == "planted"
    # and a replay of the recording (in-process, same order) ends on the same intervals
    rep = tmp_path / "replayed"
    assert main(["replay", "--recording", str(out), "--features", f"random={rpath}",
                 "--features", f"planted={ppath}", "--headless", "--out", str(rep),
                 "--n-boot", "200", "--n-perm", "100", "--stats-seed", "7"]) == 0
    reps = json.loads((rep / "results.json").read_text())["statistics"]
    assert reps["n_epochs"] == st.n_epochs
    for label in ("planted", "random"):
        a, b = saved["models"][label]["peaks"], reps["models"][label]["peaks"]
        np.testing.assert_allclose(np.array(a["latency_ci"], float),
                                   np.array(b["latency_ci"], float), atol=1e-9)
        np.testing.assert_allclose(np.array(a["peak_r_ci"], float),
                                   np.array(b["peak_r_ci"], float), atol=1e-6)
        assert saved["models"][label]["mask"]["mask"] == reps["models"][label]["mask"]["mask"]

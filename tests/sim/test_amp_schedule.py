"""The simulated amplifier starts its schedule only when a session listens to both streams."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from neuralign.lsl import configure_lsl

pytestmark = [pytest.mark.lsl, pytest.mark.timeout(60)]


def _amp(wait_s: float):
    from neuralign.sim.amp import SimulatedAmp, make_schedule

    ids = [f"s{i}" for i in range(6)]
    sch = make_schedule(ids, n_test=2, train_reps=1, test_reps=1, soa=0.05, n_channels=2,
                        ch_names=["O1", "O2"])
    name = f"test-amp-{uuid.uuid4().hex[:8]}"
    amp = SimulatedAmp(name=name, source_id=name, sfreq=100.0, ch_names=["O1", "O2"],
                       schedule=sch, wait_consumers_s=wait_s, lead_s=0.1)
    return amp, name, len(sch.ids) + len(sch.extra)


def _inlet(pylsl, name: str):
    info = pylsl.resolve_byprop("name", name, 1, 10.0)
    assert info, name
    inlet = pylsl.StreamInlet(info[0], max_buflen=60)
    inlet.open_stream(timeout=5)
    return inlet


def test_schedule_waits_for_eeg_and_marker_consumers():
    configure_lsl()
    import pylsl

    amp, name, n = _amp(wait_s=30.0)
    th = threading.Thread(target=amp.run, kwargs={"duration": 40.0}, daemon=True)
    th.start()
    try:
        mk = _inlet(pylsl, f"{name}-markers")
        time.sleep(1.0)  # a marker consumer alone: the session's EEG inlet is not there yet
        assert amp.markers_pushed == 0
        eeg = _inlet(pylsl, name)
        got: list[str] = []
        end = time.monotonic() + 20
        while len(got) < n and time.monotonic() < end:
            vals, _ = mk.pull_chunk(timeout=0.2)
            got.extend(v[0] for v in vals)
            eeg.pull_chunk(timeout=0.0)
        assert len(got) == n == amp.markers_pushed
        assert amp.markers_unheard == 0
        assert not amp.started_unheard
    finally:
        amp.stop()
        th.join(10)


def test_schedule_without_consumer_starts_and_counts_the_unheard_markers(capsys):
    configure_lsl()
    amp, _, n = _amp(wait_s=0.2)
    amp.run(duration=2.0)
    assert amp.started_unheard
    assert amp.markers_pushed == amp.markers_unheard == n
    assert "no marker consumer after 0.2 s" in capsys.readouterr().err

"""Whole recordings: a damaged one still analyses (with a warning naming what was skipped),
verify-recording says what it holds, replay finds features recorded as a cache_file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuralign.cli import main
from neuralign.io.features import save_features
from neuralign.realtime import xdf
from neuralign.realtime.recording import SessionRecorder, load_recording
from neuralign.realtime.settings import EpochSettings
from neuralign.sim.features import hierarchical_features

pytestmark = pytest.mark.faults
FS, N_CH, SOA = 250.0, 4, 0.25


def make_recording(out, features, *, seconds=30.0, features_meta=None):
    """A session recording as `live` writes it (XDF + session.json), without LSL: EEG chunks of
    40 ms, one stimulus marker every SOA; returns the byte offset of each EEG chunk."""
    ids = features.stimulus_ids.tolist()
    eeg_xml = xdf.stream_header_xml(name="eeg", stype="EEG", channel_count=N_CH,
                                    nominal_srate=FS, channel_format="float32",
                                    ch_names=[f"c{i}" for i in range(N_CH)])
    mk_xml = xdf.stream_header_xml(name="mk", stype="Markers", channel_count=1,
                                   nominal_srate=0.0, channel_format="string")
    meta = {"settings": EpochSettings().to_dict(),
            "eeg": {"name": "eeg", "sfreq": FS, "n_channels": N_CH,
                    "ch_names": [f"c{i}" for i in range(N_CH)]},
            "markers": {"name": "mk"}, "known_ids": ids, "test_ids": None, "codes": {},
            "features": features_meta or {}}
    rec = SessionRecorder(out / "recording", meta, eeg_header=eeg_xml, eeg_format="float32",
                          n_channels=N_CH, marker_header=mk_xml, marker_format="string",
                          flush_s=0.0)
    rec.xdf.boundary_s = 0.2  # (the clock of this loop is not the data's)
    rng = np.random.default_rng(0)
    t0, n_chunk, starts, k = 1000.0, 10, [], 0
    for c in range(int(seconds * FS / n_chunk)):
        ts = t0 + (c * n_chunk + np.arange(n_chunk)) / FS
        rec.flush()
        starts.append(rec.xdf.path.stat().st_size)
        rec.eeg(rng.standard_normal((n_chunk, N_CH)).astype(np.float32), ts)
        while t0 + 0.5 + k * SOA <= ts[-1]:
            rec.markers([ids[k % len(ids)]], [t0 + 0.5 + k * SOA])
            k += 1
        if c % 25 == 0:
            import time

            time.sleep(0.21)  # let a boundary chunk in
    rec.close(final={})
    return starts, k


@pytest.fixture
def feats(tmp_path):
    fs = hierarchical_features([f"s{i:02d}" for i in range(24)], n_layers=2, dim=6, seed=0)
    save_features(tmp_path / "f.npz", fs)
    return fs


def test_damaged_recording_analyses_with_a_warning(tmp_path, feats, capsys):
    out = tmp_path / "sess"
    starts, n_markers = make_recording(out, feats)
    assert main(["verify-recording", str(out)]) == 0
    assert "intact" in capsys.readouterr().out
    whole = load_recording(out)
    p = out / "recording" / "session.xdf"
    raw = bytearray(p.read_bytes())
    raw[starts[len(starts) // 3] + 1] ^= 0x5A  # one byte, a third of the way in
    p.write_bytes(bytes(raw))
    rc = main(["verify-recording", str(out)])
    text = capsys.readouterr().out
    assert rc == 1
    assert "DAMAGED" in text
    with pytest.warns(UserWarning, match="DAMAGED"):
        part = load_recording(out)
    n_whole, n_part = len(whole.stimulus_ids), len(part.stimulus_ids)
    assert n_part >= n_whole - 1 / SOA - 1 - 4  # at most the second after the damage (+edges)
    assert n_part < n_whole
    assert part.info["integrity"]["skipped_s"] <= 1.0 + 2 / FS
    rc = main(["analyze", "--dataset", f"recording:{out}", "--features", str(tmp_path / "f.npz"),
               "--out", str(tmp_path / "an"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 0
    assert "neuralign: warning:" in err
    assert "DAMAGED" in err
    assert "EEG samples" in err
    assert "markers lost" in err


def test_nothing_usable_is_an_error(tmp_path, feats, capsys):
    out = tmp_path / "sess"
    make_recording(out, feats, seconds=2.0)
    p = out / "recording" / "session.xdf"
    p.write_bytes(p.read_bytes()[:300])  # headers only
    assert main(["verify-recording", str(out)]) == 2
    assert "nothing usable" in capsys.readouterr().err


def test_replay_finds_features_recorded_as_a_cache_file(tmp_path, feats):
    out = tmp_path / "sess"
    elsewhere = tmp_path / "cache" / "features_model.npz"
    elsewhere.parent.mkdir()
    save_features(elsewhere, feats)
    make_recording(out, feats, seconds=10.0,
                   features_meta={"cache_file": str(elsewhere), "stimuli": {"source": "x"}})
    rc = main(["replay", "--recording", str(out), "--headless", "--out", str(tmp_path / "r"),
               "--speed", "0"])
    assert rc == 0
    extra = json.loads((tmp_path / "r" / "extra.json").read_text())
    assert extra["features"] == str(elsewhere)

"""Every bad input: one line naming the file/option and the problem, exit 2, no traceback,
checked before anything starts (no stream is looked for, nothing is written)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neuralign.cli import main
from neuralign.errors import NeuralignError
from neuralign.io.features import save_features
from neuralign.io.safe_pickle import load_npy
from neuralign.realtime.settings import EpochSettings
from neuralign.sim.features import hierarchical_features

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def feats(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    fs = hierarchical_features([f"s{i:02d}" for i in range(20)], n_layers=2, dim=6, seed=0)
    save_features(d / "f.npz", fs)
    return d


def _live(d, *extra):
    # a stream that does not exist: a check that waits for it would say "no LSL stream"
    return ["live", "--eeg-stream", "no-such-eeg", "--marker-stream", "no-such-mk", "--features",
            str(d / "f.npz"), "--connect-timeout", "0.2", "--out", str(d / "o"), *extra]


def _one_line(capsys, rc, *words):
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("neuralign: error: ")
    for w in words:
        assert w in last, last
    assert "LSL" not in last  # refused before looking for any stream


CASES = {
    "design-types": ({"design.json": {"format": "neuralign-design", "eeg": {"n_channels": "x"},
                                      "stimuli": [{"id": "s00", "role": "test"}]}},
                     ["--design", "{d}/design.json"], ["design.json", "eeg.n_channels"]),
    "design-codes": ({"design.json": {"format": "neuralign-design", "codes": [1, 2],
                                      "stimuli": ["s00"]}},
                     ["--design", "{d}/design.json"], ["design.json", "'codes'"]),
    "codes-list": ({"codes.json": [1, 2]}, ["--codes", "{d}/codes.json"],
                   ["codes.json", "--codes must be a JSON object"]),
    "baseline-words": ({}, ["--baseline", "a", "b"], ["--baseline takes two numbers"]),
    "baseline-outside": ({}, ["--baseline", "2", "3"], ["--baseline 2..3 s lies outside"]),
    "band-reversed": ({}, ["--l-freq", "40", "--h-freq", "10"], ["--l-freq 40 Hz must be below"]),
    "gap-negative": ({}, ["--gap", "-1"], ["--gap must be > 0"]),
    "reject-negative": ({}, ["--reject-ptp", "-5"], ["--reject-ptp must be > 0"]),
    "refresh-zero": ({}, ["--refresh-every", "0"], ["--refresh-every must be > 0"]),
    "reselect-zero": ({}, ["--reselect-every", "0"], ["--reselect-every must be >= 1"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_live_bad_option_or_file(feats, capsys, case):
    files, extra, words = CASES[case]
    for name, content in files.items():
        (feats / name).write_text(json.dumps(content))
    rc = main(_live(feats, *[a.format(d=feats) for a in extra]))
    _one_line(capsys, rc, *words)
    assert not (feats / "o").exists()


def test_out_is_an_existing_file_or_holds_a_recording(feats, capsys):
    (feats / "afile").write_text("x")
    args = _live(feats)
    args[args.index("--out") + 1] = str(feats / "afile")
    _one_line(capsys, main(args), "afile", "--out names an existing file")
    rec = feats / "prev" / "recording"
    rec.mkdir(parents=True)
    (rec / "session.xdf").write_bytes(b"XDF:precious")
    args[args.index("--out") + 1] = str(feats / "prev")
    _one_line(capsys, main(args), "session.xdf", "never overwritten")
    assert (rec / "session.xdf").read_bytes() == b"XDF:precious"
    rc = main(["analyze", "--dataset", f"recording:{feats / 'prev'}", "--features",
               str(feats / "f.npz"), "--out", str(feats / "afile")])
    _one_line(capsys, rc, "--out names an existing file")


def test_session_json_of_wrong_types(feats, capsys):
    rec = feats / "badrec" / "recording"
    rec.mkdir(parents=True)
    (rec / "session.json").write_text(json.dumps({"settings": "x", "eeg": 3}))
    (rec / "session.xdf").write_bytes(b"XDF:")
    rc = main(["analyze", "--dataset", f"recording:{feats / 'badrec'}", "--features",
               str(feats / "f.npz"), "--out", str(feats / "o2")])
    _one_line(capsys, rc, "session.json", "malformed")


def test_npy_header_claiming_terabytes_is_refused_without_allocating(tmp_path):
    p = tmp_path / "big.npy"
    with open(p, "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f8", "fortran_order": False, "shape": (1 << 40, 1)})
    with pytest.raises(NeuralignError, match="claims .* but the file holds 0 bytes"):
        load_npy(p)


def test_settings_record_only_what_is_applied():
    """Accepted settings are applied as recorded: no silent fallbacks left."""
    with pytest.raises(NeuralignError, match="Nyquist"):
        EpochSettings(h_freq=600.0).check_stream(1000.0, stream="eeg")
    with pytest.raises(NeuralignError, match="--l-freq 500 Hz is at or above the Nyquist"):
        EpochSettings(l_freq=500.0).check_stream(1000.0, stream="eeg")
    with pytest.raises(NeuralignError, match="holds no sample"):
        EpochSettings(baseline=(0.001, 0.002))
    with pytest.raises(NeuralignError, match="every epoch would be rejected"):
        EpochSettings(reject_ptp=1.0, flat_ptp=2.0)
    ok = EpochSettings(baseline=(-0.1, 0.0), l_freq=0.5, h_freq=40.0)
    ok.check_stream(250.0)
    assert ok.to_dict()["baseline"] == [-0.1, 0.0]

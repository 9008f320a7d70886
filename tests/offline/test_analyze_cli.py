"""``neuralign analyze`` end to end, and every bad input as a one-line error with exit code 2."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from neuralign.cli import main


def _read(path):
    with open(path, "rb") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        return pickle.load(f).item()


def _analyze(root, out, *extra):
    return main(["analyze", "--dataset", f"things-eeg2:{root / 'sub-01'}",
                 "--features", str(root / "features.npz"), "--out", str(out), "--quiet",
                 "--folds", "3", *extra])


def test_analyze_end_to_end(tiny_sim, tmp_path, capsys):
    out = tmp_path / "res"
    rc = main(["analyze", "--dataset", f"things-eeg2:{tiny_sim / 'sub-01'}",
               "--features", str(tiny_sim / "features.npz"), "--out", str(out),
               "--folds", "3", "--alphas", "1", "100", "10000"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "layer00" in cap.out
    assert "planted hierarchy" in cap.out
    res = json.loads((out / "results.json").read_text())
    for key in ("layers", "times", "noise_ceiling", "counts", "settings"):
        assert key in res
    assert res["layers"] == ["layer00", "layer01", "layer02"]
    assert len(res["times"]) == 100
    enc, rsa = res["encoding"], res["rsa"]
    assert np.asarray(enc["r"], dtype=float).shape == (3, 100)
    assert len(enc["peak_latency_s"]) == 3
    assert len(enc["peak_r"]) == 3
    assert np.asarray(rsa["rho"], dtype=float).shape == (3, 100)
    assert len(rsa["peak_latency_s"]) == 3
    assert len(res["noise_ceiling"]) == 100
    assert res["counts"]["n_epochs"] == 192
    assert res["settings"]["alphas"] == [1.0, 100.0, 10000.0]
    assert res["settings"]["n_folds"] == 3
    z = np.load(out / "maps.npz", allow_pickle=False)
    assert z["encoding_r"].shape == (3, 17, 100)
    for name in ("encoding_r.png", "encoding_r_normalized.png", "rsa_rho.png",
                 "peak_latency.png", "noise_ceiling.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert "simulated" in html
    assert "n_folds" in html


def _save(path, obj):
    np.save(path, obj, allow_pickle=True)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def _break(root, case):
    """Damage a copy of the tiny subject; return (extra CLI args, expected text)."""
    sub = root / "sub-01"
    tr_p, te_p = sub / "preprocessed_eeg_training.npy", sub / "preprocessed_eeg_test.npy"
    if case == "missing_train":
        tr_p.unlink()
        return [], "preprocessed_eeg_training.npy: file not found"
    if case == "missing_metadata":
        (root / "image_metadata.npy").unlink()
        return [], "image_metadata.npy not found"
    if case == "missing_features":
        (root / "features.npz").unlink()
        return [], "features file not found"
    if case == "wrong_rank":
        d = _read(tr_p)
        d["preprocessed_eeg_data"] = d["preprocessed_eeg_data"][:, 0]
        _save(tr_p, d)
        return [], "must be 4-D"
    if case == "channels_disagree":
        d = _read(te_p)
        d["preprocessed_eeg_data"] = d["preprocessed_eeg_data"][:, :, :16]
        d["ch_names"] = d["ch_names"][:16]
        _save(te_p, d)
        return [], "16 channels"
    if case == "times_disagree":
        d = _read(te_p)
        d["preprocessed_eeg_data"] = d["preprocessed_eeg_data"][..., :90]
        d["times"] = d["times"][:90]
        _save(te_p, d)
        return [], "90 time points"
    if case == "ch_names_count":
        d = _read(tr_p)
        d["ch_names"] = d["ch_names"][:5]
        _save(tr_p, d)
        return [], "5 ch_names for 17 channels"
    if case == "metadata_length":
        m = _read(root / "image_metadata.npy")
        m["train_img_files"] = m["train_img_files"][:-1]
        _save(root / "image_metadata.npy", m)
        return [], "train_img_files lists 59 images"
    if case == "all_nan":
        d = _read(te_p)
        d["preprocessed_eeg_data"][:] = np.nan
        _save(te_p, d)
        return [], "every epoch contains NaN/Inf"
    if case == "features_nan":
        z = dict(np.load(root / "features.npz", allow_pickle=False))
        z["layer01"] = z["layer01"].copy()
        z["layer01"][4, 2] = np.nan
        np.savez(root / "features.npz", **z)
        return [], "layer 'layer01' has NaN/Inf"
    if case == "features_lack_ids":
        z = dict(np.load(root / "features.npz", allow_pickle=False))
        keep = np.arange(z["stimulus_ids"].size) != 7
        for k in ("stimulus_ids", "layer00", "layer01", "layer02"):
            z[k] = z[k][keep]
        np.savez(root / "features.npz", **z)
        return [], "1 of 72 EEG stimulus ids are not in the features: 'concept0001_08b.jpg'"
    if case == "features_rank":
        z = dict(np.load(root / "features.npz", allow_pickle=False))
        z["layer02"] = z["layer02"][:, :, None]
        np.savez(root / "features.npz", **z)
        return [], "layer 'layer02': features must be 2-D"
    if case == "missing_subject_dir":
        import shutil

        shutil.rmtree(sub)
        return [], "subject folder not found"
    if case == "too_few_stimuli":
        return ["--folds", "100"], "fewer than --folds 100"
    if case == "forbidden_pickle":
        marker = root / "pwned"
        arr = np.empty((), dtype=object)
        arr[()] = {"preprocessed_eeg_data": _Evil(str(marker))}
        with tr_p.open("wb") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "|O", "fortran_order": False, "shape": ()})
            pickle.dump(arr, f, protocol=3)
        return [], "forbidden object"
    if case == "bad_kind":
        return [], "expected KIND:PATH"
    raise AssertionError(case)


CASES = ["missing_train", "missing_metadata", "missing_features", "wrong_rank",
         "channels_disagree", "times_disagree", "ch_names_count", "metadata_length", "all_nan",
         "features_nan", "features_lack_ids", "features_rank", "missing_subject_dir", "too_few_stimuli", "forbidden_pickle", "bad_kind"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_one_line_exit_2(sim_copy, tmp_path, capsys, case):
    extra, expected = _break(sim_copy, case)
    if case == "bad_kind":
        rc = main(["analyze", "--dataset", f"nope:{sim_copy}", "--features",
                   str(sim_copy / "features.npz"), "--out", str(tmp_path / "o"), "--quiet"])
    else:
        rc = _analyze(sim_copy, tmp_path / "out", *extra)
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("neuralign: error: ")
    assert expected in lines[0]
    assert not (sim_copy / "pwned").exists()
    assert not (tmp_path / "out" / "results.json").exists()


def test_nan_epochs_warn_one_line_and_run(sim_copy, tmp_path, capsys):
    tr_p = sim_copy / "sub-01" / "preprocessed_eeg_training.npy"
    d = _read(tr_p)
    d["preprocessed_eeg_data"][0, 0, 0, 0] = np.nan
    _save(tr_p, d)
    rc = _analyze(sim_copy, tmp_path / "out")
    err = capsys.readouterr().err
    assert rc == 0
    assert "neuralign: warning: " in err
    assert "dropped 1 of 120 epochs that contain NaN/Inf" in err
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["counts"]["n_epochs"] == 191

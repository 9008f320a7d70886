"""things-eeg2-raw: simulated raw files (npy dicts and BrainVision) -> official preprocessing."""

from __future__ import annotations

import numpy as np
import pytest

from neuralign.commands.datasets import load_dataset
from neuralign.errors import NeuralignError
from neuralign.io import things
from neuralign.offline import mvnn
from neuralign.offline import things_eeg2_files as F
from neuralign.offline import things_eeg2_raw as R
from neuralign.sim.dataset import THINGS_TIMES
from neuralign.sim.raw import write_things_eeg2_raw


@pytest.fixture(scope="module")
def raw_subject(tmp_path_factory):
    root = tmp_path_factory.mktemp("eeg2raw")
    sdir, brain, feats = write_things_eeg2_raw(root, brainvision=True, seed=3)
    return root, sdir, brain, feats


def _official_reference(sdir, meta, seed=R.OFFICIAL_SEED):
    """The official gifale95/eeg_encoding epoching + merging, written out as published
    (full RawArray, find_events, regexp pick, Epochs, resample, sklearn shuffles)."""
    import mne
    from sklearn.utils import shuffle

    out = {}
    for part, max_rep in (("test", 20), ("training", 2)):
        sess_data, sess_cond = [], []
        for ses_dir in sorted(sdir.glob("ses-*")):
            d = np.load(ses_dir / f"raw_eeg_{part}.npy", allow_pickle=True).item()  # own test file
            info = mne.create_info(d["ch_names"], d["sfreq"], d["ch_types"])
            raw = mne.io.RawArray(d["raw_eeg_data"], info, verbose=False)
            events = mne.find_events(raw, stim_channel="stim", verbose=False)
            events = np.delete(events, np.where(events[:, 2] == 99999)[0], 0)
            chan_idx = np.asarray(mne.pick_channels_regexp(raw.info["ch_names"], "^O *|^P *"))
            raw.pick([raw.info["ch_names"][c] for c in chan_idx])
            epochs = mne.Epochs(raw, events, tmin=-0.2, tmax=0.8, baseline=(None, 0),
                                preload=True, verbose=False)
            epochs.resample(100, verbose=False)
            ch_names, times = epochs.info["ch_names"], epochs.times
            data, ev = epochs.get_data(), epochs.events[:, 2]
            img_cond = np.unique(ev)
            rep = min(max_rep, min(np.sum(ev == c) for c in img_cond))
            sd = np.zeros((len(img_cond), rep, data.shape[1], data.shape[2]))
            for i, c in enumerate(img_cond):
                idx = shuffle(np.where(ev == c)[0], random_state=seed, n_samples=rep)
                sd[i] = data[idx]
            sess_data.append(sd)
            sess_cond.append(img_cond)
        if part == "test":
            merged = np.concatenate(sess_data, 1)
            merged = merged[:, shuffle(np.arange(merged.shape[1]), random_state=seed)]
            conds = sess_cond[0]
        else:
            white, cond = np.concatenate(sess_data, 0), np.concatenate(sess_cond, 0)
            conds = np.unique(cond)
            merged = np.stack([np.concatenate([white[j] for j in np.where(cond == c)[0]], 0)
                               for c in conds])
            merged = merged[:, shuffle(np.arange(merged.shape[1]), random_state=seed)]
        files = meta[f"{'train' if part == 'training' else 'test'}_img_files"]
        out[part] = (merged, ch_names, times, [files[c - 1] for c in conds])
    return out


def test_raw_to_preprocessed_reproduces_official_layout(raw_subject, tmp_path):
    root, sdir, brain, feats = raw_subject
    meta_path = root / "image_set" / "image_metadata.npy"
    meta = np.load(meta_path, allow_pickle=True).item()  # written by this test session
    res = R.preprocess_things_eeg2_raw(sdir)
    ref = _official_reference(sdir, meta)
    for part, (n_img, n_rep) in (("training", (12, 4)), ("test", (4, 6))):
        d = res[part]["preprocessed_eeg_data"]
        assert d.shape == (n_img, n_rep, 17, 100)
        assert res[part]["ch_names"] == list(things.THINGS_EEG2_CHANNELS)
        np.testing.assert_allclose(res[part]["times"], THINGS_TIMES, atol=1e-9)
        rdata, rch, rtimes, rfiles = ref[part]
        assert res[part]["img_files"] == rfiles == meta[
            "train_img_files" if part == "training" else "test_img_files"]
        assert rch == res[part]["ch_names"]
        np.testing.assert_allclose(d, rdata, rtol=0, atol=1e-15)

    # written as the preprocessed files, the things-eeg2 loader reads the same epochs
    out = tmp_path / "prep" / "sub-01"
    R.write_preprocessed(res, out)
    pre = load_dataset(f"things-eeg2:{out}", metadata=meta_path)
    raw = load_dataset(f"things-eeg2-raw:{sdir}")
    assert raw.epochs.shape == pre.epochs.shape == (12 * 4 + 4 * 6, 17, 100)
    np.testing.assert_array_equal(raw.stimulus_ids, pre.stimulus_ids)
    np.testing.assert_allclose(raw.epochs, pre.epochs, atol=1e-12)
    assert raw.test_ids == pre.test_ids
    assert raw.ch_names == pre.ch_names
    np.testing.assert_allclose(raw.times, pre.times)


def test_raw_content_matches_planted_responses(tmp_path):
    """Noise-free, non-overlapping responses: the epochs are the planted evoked responses."""
    sdir, brain, _ = write_things_eeg2_raw(tmp_path, noise=False, soa=1.0, n_train=6, n_test=3,
                                           n_sessions=1)
    res = R.preprocess_things_eeg2_raw(sdir)
    d = res["test"]["preprocessed_eeg_data"]
    picks = [list(brain.ch_names).index(c) for c in things.THINGS_EEG2_CHANNELS]
    ev = brain.evoked(res["test"]["img_files"], THINGS_TIMES)[:, picks] * 1e-6
    # every repetition is the same response (noise-free); MNE's resampling of 1001 -> 100
    # samples stretches time by 0.1 %, so the match is close but not exact
    np.testing.assert_allclose(d, np.broadcast_to(d[:, :1], d.shape), atol=1e-18)
    r = np.corrcoef(d[:, 0].ravel(), ev.ravel())[0, 1]
    assert r > 0.98


def test_brainvision_source_matches_npy(raw_subject):
    root, sdir, _, _ = raw_subject
    meta = root / "image_set" / "image_metadata.npy"
    a = R.preprocess_things_eeg2_raw(sdir)
    b = R.preprocess_things_eeg2_raw(root / "bids" / "sub-01", metadata=meta)
    assert b["info"]["raw_format"] == "brainvision"
    for part in ("training", "test"):
        assert a[part]["img_files"] == b[part]["img_files"]
        # BrainVision stores float32 microvolts
        np.testing.assert_allclose(b[part]["preprocessed_eeg_data"],
                                   a[part]["preprocessed_eeg_data"], atol=1e-11)


def test_mvnn_matches_sklearn_and_scipy():
    from scipy.linalg import fractional_matrix_power
    from sklearn.discriminant_analysis import _cov

    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 6, 8)) @ np.eye(8)  # (images, reps, C, T)
    x[:, :, 1] += 0.8 * x[:, :, 0]
    y = rng.standard_normal((4, 4, 6, 8))
    for dim in ("time", "epochs"):
        ref_parts = []
        for part in (x, y):
            conds = []
            for cond in part:
                if dim == "time":
                    conds.append(np.mean([_cov(cond[:, :, t], shrinkage="auto")
                                          for t in range(cond.shape[2])], axis=0))
                else:
                    conds.append(np.mean([_cov(cond[e].T, shrinkage="auto")
                                          for e in range(cond.shape[0])], axis=0))
            ref_parts.append(np.mean(conds, axis=0))
        ref = np.mean(ref_parts, axis=0)
        sig = mvnn.mvnn_sigma([x, y], dim=dim, chunk=2)
        np.testing.assert_allclose(sig, ref, rtol=1e-10, atol=1e-12)
        inv = fractional_matrix_power(ref, -0.5).real
        np.testing.assert_allclose(mvnn.inv_sqrtm(sig), inv, rtol=1e-8, atol=1e-10)
        white_ref = np.reshape((np.reshape(x, (-1, 6, 8)).swapaxes(1, 2) @ inv).swapaxes(1, 2),
                               x.shape)
        np.testing.assert_allclose(mvnn.whiten(x, mvnn.inv_sqrtm(sig)), white_ref, atol=1e-10)


def test_mvnn_option_whitens(raw_subject):
    _, sdir, _, _ = raw_subject
    d = load_dataset(f"things-eeg2-raw:{sdir}", mvnn="time")
    assert d.info["preprocessing"]["mvnn"] == "time"
    assert d.epochs.shape == (72, 17, 100)
    # whitened data are in noise-SD units (order 1), not volts
    assert 0.1 < float(np.std(d.epochs)) < 10


def test_raw_bad_inputs(tmp_path, raw_subject):
    with pytest.raises(NeuralignError, match="no raw_eeg"):
        load_dataset(f"things-eeg2-raw:{tmp_path}")
    _, sdir, _, _ = raw_subject
    with pytest.raises(NeuralignError, match="image_metadata.npy not found"):
        things.find_metadata(tmp_path)
    bad = tmp_path / "ses-01"
    bad.mkdir()
    np.save(bad / "raw_eeg_test.npy", {"raw_eeg_data": np.zeros((3, 10)), "ch_names": ["a", "b", "c"],
                                       "sfreq": 1000.0}, allow_pickle=True)
    with pytest.raises(NeuralignError, match="no 'stim' channel"):
        F.read_raw_npy(bad / "raw_eeg_test.npy")


def test_raw_refuses_several_subjects(raw_subject, tmp_path):
    import shutil

    _, sdir, _, _ = raw_subject
    for sub in ("sub-01", "sub-02"):
        shutil.copytree(sdir / "ses-01", tmp_path / "raw_data" / sub / "ses-01")
    with pytest.raises(NeuralignError, match="under this folder: give one subject"):
        F.discover(tmp_path / "raw_data")

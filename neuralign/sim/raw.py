"""Simulated continuous recordings written in the raw layouts the offline loaders read.

Used by tests and benchmarks (no real data can be downloaded here):

- :func:`simulate_rsvp`: continuous EEG of a :class:`~neuralign.sim.SyntheticBrain` watching an
  RSVP sequence (responses overlap when the SOA is shorter than the response), with onsets.
- :func:`write_things_eeg2_raw`: a THINGS-EEG2 subject in the raw layout
  (``raw_data/sub-XX/ses-YY/raw_eeg_{training,test}.npy`` pickled dicts, 63 EEG channels + ``stim``
  at 1000 Hz, targets 99999) plus ``image_set/image_metadata.npy`` and optionally the
  BrainVision source files (:func:`write_brainvision`, a minimal writer of the published
  format: ``.vhdr`` header, ``.vmrk`` markers, float32 multiplexed ``.eeg``).
- :func:`write_eeglab_set`: an EEGLAB ``.set`` (MATLAB v5 struct with the data inline), the
  format of THINGS-EEG1's ``derivatives/eeglab`` files, written with :func:`scipy.io.savemat`
  (``eeglabio`` is not installed here).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..io.things import METADATA_FILE, THINGS_EEG2_RAW_CHANNELS
from .brain import SyntheticBrain
from .dataset import things_like_ids
from .features import hierarchical_features


def simulate_rsvp(
    brain,
    sequence: Sequence[str | None],
    *,
    sfreq: float = 1000.0,
    soa: float = 0.2,
    lead_s: float = 1.0,
    tail_s: float = 1.2,
    noise: bool = True,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Continuous EEG (C, n_samples) in volts and onset samples of ``sequence``.

    ``None`` entries in ``sequence`` are target (catch) images with no planted response.
    """
    n_ev = len(sequence)
    onsets = (np.round((lead_s + np.arange(n_ev) * soa) * sfreq)).astype(np.int64)
    n = int(onsets[-1] + round(tail_s * sfreq)) if n_ev else int(lead_s * sfreq)
    c = len(brain.ch_names)
    if noise:
        x = brain.noise_stream(sfreq=sfreq, seed=seed).read(n).astype(np.float64)
    else:
        x = np.zeros((c, n))
    cache: dict[str, np.ndarray] = {}
    for s, o in zip(sequence, onsets):
        if s is None:
            continue
        if s not in cache:
            cache[s] = brain.response(s, sfreq=sfreq, tmax=0.8)
        r = cache[s]
        m = min(r.shape[1], n - o)
        x[:, o:o + m] += r[:, :m]
    return x * 1e-6, onsets  # brain units are ~uV


def rsvp_sequence(ids: Sequence[str], reps: int, *, rng: np.random.Generator,
                  target_every: int = 0) -> list[str | None]:
    """Each id ``reps`` times in random order, with a target (None) after every
    ``target_every`` images (0 = no targets)."""
    seq = [s for s in ids for _ in range(reps)]
    order = rng.permutation(len(seq))
    out: list[str | None] = []
    for k, i in enumerate(order):
        out.append(seq[i])
        if target_every and (k + 1) % target_every == 0:
            out.append(None)
    return out


def write_brainvision(vhdr: str | Path, data_v: np.ndarray, ch_names: Sequence[str],
                      sfreq: float, markers: Sequence[tuple[int, str]]) -> Path:
    """Write BrainVision ``.vhdr``/``.vmrk``/``.eeg`` (float32, multiplexed, microvolts).

    ``markers``: (sample index, description such as ``"S  5"``) of Stimulus markers.
    """
    vhdr = Path(vhdr)
    vhdr.parent.mkdir(parents=True, exist_ok=True)
    stem = vhdr.stem
    eeg, vmrk = vhdr.with_suffix(".eeg"), vhdr.with_suffix(".vmrk")
    (np.asarray(data_v, dtype=np.float64).T * 1e6).astype("<f4").tofile(eeg)
    chans = "\n".join(f"Ch{i + 1}={n},,1,µV" for i, n in enumerate(ch_names))
    vhdr.write_text(
        "Brain Vision Data Exchange Header File Version 1.0\n\n[Common Infos]\nCodepage=UTF-8\n"
        f"DataFile={stem}.eeg\nMarkerFile={stem}.vmrk\nDataFormat=BINARY\n"
        f"DataOrientation=MULTIPLEXED\nNumberOfChannels={len(ch_names)}\n"
        f"SamplingInterval={1e6 / sfreq:g}\n\n[Binary Infos]\nBinaryFormat=IEEE_FLOAT_32\n\n"
        f"[Channel Infos]\n{chans}\n",
        encoding="utf-8",
    )
    mk = ["Mk1=New Segment,,1,1,0"]
    mk += [f"Mk{i + 2}=Stimulus,{d},{s + 1},1,0" for i, (s, d) in enumerate(markers)]
    vmrk.write_text(
        "Brain Vision Data Exchange Marker File Version 1.0\n\n[Common Infos]\nCodepage=UTF-8\n"
        f"DataFile={stem}.eeg\n\n[Marker Infos]\n" + "\n".join(mk) + "\n",
        encoding="utf-8",
    )
    return vhdr


def write_things_eeg2_raw(
    root: str | Path,
    *,
    n_train: int = 12,
    n_test: int = 4,
    n_sessions: int = 2,
    train_reps: int = 2,
    test_reps: int = 3,
    n_layers: int = 3,
    dim: int = 16,
    soa: float = 0.2,
    noise: bool = True,
    brainvision: bool = False,
    subject: str = "sub-01",
    seed: int = 0,
    snr: float = 1.0,
):
    """Simulate a THINGS-EEG2 subject in the raw layout.

    Every training and test image appears ``train_reps`` / ``test_reps`` times in every session
    (the real data: 2 per training image in 2 of 4 sessions, 20 per test image per session).

    Returns
    -------
    (Path, SyntheticBrain, FeatureSet)
        The subject folder, the brain and its features.
    """
    root = Path(root)
    train_files, train_concepts, test_files, test_concepts = things_like_ids(n_train, n_test)
    feats = hierarchical_features(train_files + test_files, n_layers=n_layers, dim=dim, seed=seed)
    brain = SyntheticBrain(feats, ch_names=THINGS_EEG2_RAW_CHANNELS, seed=seed, snr=snr)
    (root / "image_set").mkdir(parents=True, exist_ok=True)
    np.save(root / "image_set" / METADATA_FILE, {
        "train_img_files": train_files, "train_img_concepts": train_concepts,
        "train_img_concepts_THINGS": train_concepts, "test_img_files": test_files,
        "test_img_concepts": test_concepts, "test_img_concepts_THINGS": test_concepts,
    }, allow_pickle=True)
    code = {s: i + 1 for i, s in enumerate(train_files)}
    code.update({s: i + 1 for i, s in enumerate(test_files)})
    sdir = root / "raw_data" / subject
    rng = np.random.default_rng([seed, 5])
    sfreq = 1000.0
    for ses in range(1, n_sessions + 1):
        for part, files, reps in (("training", train_files, train_reps),
                                  ("test", test_files, test_reps)):
            seq = rsvp_sequence(files, reps, rng=rng, target_every=5)
            x, onsets = simulate_rsvp(brain, seq, sfreq=sfreq, soa=soa, noise=noise,
                                      seed=ses * 10 + (part == "test"))
            stim = np.zeros(x.shape[1])
            codes = [99999 if s is None else code[s] for s in seq]
            for o, c in zip(onsets, codes):
                stim[o:o + 5] = c
            ses_dir = sdir / f"ses-{ses:02d}"
            ses_dir.mkdir(parents=True, exist_ok=True)
            np.save(ses_dir / f"raw_eeg_{part}.npy", {
                "raw_eeg_data": np.vstack([x, stim[None]]),
                "ch_names": list(THINGS_EEG2_RAW_CHANNELS) + ["stim"],
                "ch_types": ["eeg"] * len(THINGS_EEG2_RAW_CHANNELS) + ["stim"],
                "sfreq": sfreq, "highpass": 0.01, "lowpass": 100.0,
            }, allow_pickle=True)
            if brainvision:
                task = "test" if part == "test" else "train_part-01"
                write_brainvision(
                    root / "bids" / subject / f"ses-{ses:02d}" / "eeg"
                    / f"{subject}_ses-{ses:02d}_task-{task}_eeg.vhdr",
                    x, THINGS_EEG2_RAW_CHANNELS, sfreq,
                    [(int(o), f"S{c:3d}") for o, c in zip(onsets, codes)],
                )
    return sdir, brain, feats


def write_eeglab_set(path: str | Path, data_v: np.ndarray, ch_names: Sequence[str],
                     sfreq: float, events: Sequence[tuple[int, str]] = ()) -> Path:
    """Write a continuous EEGLAB ``.set`` (data inline, units uV) that MNE can read.

    ``events``: (sample index 0-based, type string) written into ``EEG.event``.
    """
    from scipy.io import savemat

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(data_v, dtype=np.float64) * 1e6
    n_ch, n = data.shape
    chanlocs = np.zeros(n_ch, dtype=[("labels", object), ("X", object), ("Y", object),
                                      ("Z", object), ("theta", object), ("radius", object),
                                      ("type", object)])
    for i, c in enumerate(ch_names):
        chanlocs[i] = (c, np.array([]), np.array([]), np.array([]), np.array([]),
                       np.array([]), "EEG")
    ev = np.zeros(len(events), dtype=[("type", object), ("latency", object),
                                      ("duration", object)])
    for i, (s, t) in enumerate(events):
        ev[i] = (str(t), float(s + 1), 0.0)
    eeg = {
        "setname": path.stem, "filename": path.name, "filepath": str(path.parent),
        "nbchan": float(n_ch), "trials": 1.0, "pnts": float(n), "srate": float(sfreq),
        "xmin": 0.0, "xmax": (n - 1) / sfreq, "times": np.arange(n) / sfreq * 1000.0,
        "data": data.astype(np.float32), "chanlocs": chanlocs, "event": ev,
        "urevent": np.array([]), "epoch": np.array([]), "ref": "common",
        "icawinv": np.array([]), "icasphere": np.array([]), "icaweights": np.array([]),
        "icachansind": np.array([]), "chaninfo": {"plotrad": np.array([]), "shrink": np.array([]),
                                                   "nosedir": "+X"},
    }
    savemat(path, {"EEG": eeg}, appendmat=False, oned_as="row")
    return path

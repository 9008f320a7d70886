"""Fixtures of the window tests: isolated settings file, synthetic results and snapshots."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

from neuralign.align.data import AlignmentResult  # noqa: E402
from neuralign.realtime.snapshot import Snapshot, StreamHealth  # noqa: E402

CH_NAMES = ["Fz", "Cz", "Pz", "P3", "P4", "O1", "Oz", "O2", "PO7", "PO8"]
TIMES = np.round(np.arange(-20, 80) / 100.0, 2)


@pytest.fixture(autouse=True)
def _gc_back_in_main_thread(qapp):
    """Windows pin cycle collection to the GUI thread; after each test the test's windows are
    collected here (the GUI thread) and automatic collection is on again for later tests."""
    yield
    from neuralign.app import qt

    qt.release_gc()


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    """Every test gets its own settings file (never the user's ~/.config)."""
    monkeypatch.setenv("NEURALIGN_GUI_SETTINGS", str(tmp_path / "gui.json"))


def make_result(n_layers: int = 6, *, seed: int = 0, nan_layer: int | None = None):
    """An AlignmentResult whose layer l peaks at 80 + 40 l ms (plus noise)."""
    rng = np.random.default_rng(seed)
    L, C, T = n_layers, len(CH_NAMES), TIMES.size
    peaks = 0.08 + 0.04 * np.arange(L)
    bump = np.exp(-(((TIMES[None, :] - peaks[:, None]) / 0.03) ** 2))  # (L, T)
    enc = 0.5 * bump[:, None, :] + 0.02 * rng.standard_normal((L, C, T))
    if nan_layer is not None:
        enc[nan_layer] = np.nan
    ceil = np.clip(0.3 + 0.5 * bump.max(0)[None, :] + 0.05 * rng.standard_normal((C, T)), 0, 1)
    rsa = 0.3 * bump + 0.01 * rng.standard_normal((L, T))
    return AlignmentResult(
        layers=[f"block{i}" for i in range(L)],
        times=TIMES.copy(),
        ch_names=list(CH_NAMES),
        encoding_r=enc,
        encoding_alpha=np.full((L, C, T), 10.0),
        rsa_spearman=rsa,
        rsa_pearson=rsa * 1.1,
        rsa_cv_spearman=np.roll(rsa, 3, axis=1),
        noise_ceiling={"r_ceiling": ceil, "spearman_brown": ceil * 0.9,
                       "things_lower": ceil * 0.8, "things_upper": ceil * 1.05},
        counts={"n_epochs": 480, "n_stimuli": 60},
        settings={},
        rsa_stimulus_ids=[f"s{i}" for i in range(20)],
    )


def make_snapshot(result=None, *, n_epochs: int = 480, session_time: float = 12.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    C = len(CH_NAMES)
    sfreq = 100.0
    scope_t = session_time - 3.0 + np.arange(300) / sfreq
    erp = rng.standard_normal((C, TIMES.size)).astype(np.float32)
    return Snapshot(
        wall_time=time.time(),
        session_time=session_time,
        health=StreamHealth(
            eeg_name="test-eeg", marker_name="test-markers", sfreq=sfreq, n_channels=C,
            ch_names=tuple(CH_NAMES), connected=True, buffer_fill=0.5, samples_received=1200,
            dropped_samples=7, reconnects=1, latency_s=0.0123, markers_received=n_epochs + 2,
        ),
        epochs_accepted=n_epochs,
        epochs_rejected=3,
        stimuli_seen=60,
        unknown_markers=2,
        refresh_s=0.25,
        last_refresh_wall=time.time() - 1.0,
        result=result,
        erp=erp,
        times=TIMES.copy(),
        scope=rng.standard_normal((C, scope_t.size)).astype(np.float32),
        scope_times=scope_t,
        marker_times=tuple(session_time - 2.5 + 0.2 * np.arange(10)),
    )


@pytest.fixture
def result():
    return make_result()


@pytest.fixture
def snapshot(result):
    return make_snapshot(result)

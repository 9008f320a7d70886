"""Live LSL sessions as a window source: :class:`LiveSource` wraps
:class:`neuralign.realtime.session.LiveSession` so connecting and stopping never block the GUI.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ..errors import NeuralignError
from ..realtime.snapshot import Snapshot


class LiveSource:
    """Adapter: ``latest()`` reads the session's published snapshot (no lock).

    ``start()`` connects (LSL resolve can take seconds) and starts the session in a worker
    thread; ``stop()`` flushes and makes the final refresh. Errors land in :attr:`error`.
    """

    def __init__(self, session, *, on_connected=None) -> None:
        self.session = session
        self.on_connected = on_connected
        self.error: str | None = None
        self.result = None
        self._worker: threading.Thread | None = None
        self._started = False

    def latest(self) -> Snapshot | None:
        s = self.session
        get = getattr(s, "latest", None)
        return get() if callable(get) else getattr(s, "snapshot", None)

    def _run(self, fn, what: str) -> None:
        try:
            out = fn()
            if what == "stop":
                self.result = out
            elif self.on_connected is not None:
                self.on_connected(self.session)
            self.error = None
        except NeuralignError as e:
            self.error = f"{what}: {e}"
        except Exception as e:  # noqa: BLE001 - shown in the window, never fatal to the GUI
            self.error = f"{what}: {type(e).__name__}: {e}"

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self._worker = threading.Thread(
            target=self._run, args=(self.session.start, "connect"), name="neuralign-connect",
            daemon=True,
        )
        self._worker.start()

    def stop(self, timeout: float = 60.0) -> None:
        if not self._started:
            return
        if self._worker is not None:
            self._worker.join(timeout)
        self._started = False
        if getattr(self.session, "connected", True):
            self._run(self.session.stop, "stop")

    def check(self) -> None:
        if hasattr(self.session, "check"):
            self.session.check()


def connected_line(session) -> str:
    """The ``connected: ...`` line that ``neuralign live`` prints (orchestrators watch for it)."""
    eeg, mk = getattr(session, "eeg", None), getattr(session, "mk", None)
    if eeg is None:
        return "connected:"
    scoring = "design test set" if getattr(session, "test_ids", None) else \
        "nested cross-validation"
    rec = getattr(getattr(session, "recorder", None), "dir", "")
    return (f"connected: {eeg.name} ({eeg.n_channels} ch @ {eeg.sfreq:g} Hz), markers "
            f"{getattr(mk, 'name', '?')}; scoring: {scoring}; recording to {rec}")


def live_source_factory(settings: dict, *, design=None, connect_timeout: float = 10.0,
                        on_connected=None) -> LiveSource:
    """Build a :class:`LiveSource` from the window settings (streams, features, window, band).

    ``design`` (a :class:`~neuralign.realtime.design.SessionDesign`) sets the test stimuli.
    """
    from ..io.features import load_features
    from ..realtime.session import LiveSession
    from ..realtime.settings import EpochSettings

    eeg, markers = settings.get("eeg_stream", ""), settings.get("marker_stream", "")
    if not eeg or not markers:
        raise NeuralignError("choose an EEG stream and a marker stream (Connect…)")
    if not settings.get("features"):
        raise NeuralignError("choose the features file of the stimuli first (Analysis > Features)")
    features = load_features(settings["features"])
    lf = settings.get("l_freq") or None
    hf = settings.get("h_freq") or None
    epoch = EpochSettings(tmin=float(settings.get("tmin", -0.2)),
                          tmax=float(settings.get("tmax", 0.8)), l_freq=lf, h_freq=hf)
    out = settings.get("out_dir") or str(
        Path.cwd() / "neuralign_sessions" / time.strftime("%Y%m%d-%H%M%S")
    )
    refresh_s = float(settings.get("refresh_s", 2.0))
    session = LiveSession(features, eeg_stream=eeg, marker_stream=markers, out_dir=out,
                          settings=epoch, design=design, connect_timeout=connect_timeout,
                          refresh_hz=1.0 / max(refresh_s, 0.05))
    return LiveSource(session, on_connected=on_connected)

"""What the window paints: a :class:`SnapshotSource` (``latest()``, ``start()``, ``stop()``).

Every source publishes immutable :class:`~neuralign.realtime.snapshot.Snapshot` objects that
:meth:`SnapshotSource.latest` hands out at once (a reference read: no lock held across
computation, no I/O), so the window can call it from a QTimer in the GUI thread. Sources:

- :class:`LiveSource`: a live LSL session (:class:`~neuralign.realtime.session.LiveSession`),
  connected and stopped in a worker thread so the window never blocks;
- :class:`~neuralign.realtime.replay.ReplaySource`: epochs played through an engine as if live
  (pause, speed and refresh interval can be changed while it plays);
- :class:`StaticSource`: snapshots handed to it (saved results, tests).

A source declares the optional controls it honours in :attr:`SnapshotSource.controls`; the
window enables exactly those.
"""

from __future__ import annotations

import threading

from ..errors import NeuralignError
from .snapshot import Snapshot

#: The optional controls a source may honour (see :attr:`SnapshotSource.controls`).
CONTROLS = ("pause", "speed", "refresh_interval")


class SnapshotSource:
    """Base of every source the window paints.

    Subclasses implement :meth:`latest` and, when they run workers, :meth:`start` and
    :meth:`stop`. Optional controls (:data:`CONTROLS`) are listed in :attr:`controls` and
    implemented by overriding :meth:`set_paused`, :meth:`set_speed` and
    :meth:`set_refresh_interval`.
    """

    #: The optional controls this source honours.
    controls: frozenset[str] = frozenset()
    #: A message about the last failure (``None`` when all is well); shown by the window.
    error: str | None = None
    #: True while a map refresh is running.
    refreshing: bool = False

    def latest(self) -> Snapshot | None:
        """The newest snapshot, at once (``None`` before the first one).

        Returns
        -------
        Snapshot | None
            Immutable: read it from any thread.
        """
        raise NotImplementedError

    def start(self) -> None:
        """Start (or resume) publishing; must not block for long."""

    def stop(self) -> None:
        """Stop publishing (may join a worker briefly)."""

    @property
    def progress(self) -> float | None:
        """Fraction of the data played (``None`` for open-ended sources)."""
        return None

    @property
    def speed(self) -> float | None:
        """Replay speed (x real time), when the source has one."""
        return None

    @property
    def refresh_interval(self) -> float | None:
        """Seconds between map refreshes, when the source lets it be changed."""
        return None

    def set_paused(self, paused: bool) -> None:
        """Pause or resume (sources with the ``"pause"`` control).

        Parameters
        ----------
        paused : bool
            True pauses.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot pause")

    def set_speed(self, speed: float) -> None:
        """Change the speed (sources with the ``"speed"`` control).

        Parameters
        ----------
        speed : float
            x real time; ``inf`` or a value <= 0 means as fast as possible.
        """
        raise NotImplementedError(f"{type(self).__name__} has no speed")

    def set_refresh_interval(self, seconds: float) -> None:
        """Change the refresh interval (sources with the ``"refresh_interval"`` control).

        Parameters
        ----------
        seconds : float
            Seconds between map refreshes.
        """
        raise NotImplementedError(f"{type(self).__name__} has a fixed refresh interval")


class StaticSource(SnapshotSource):
    """A source that publishes the snapshots handed to it (tests, viewing saved results).

    Parameters
    ----------
    snapshot : Snapshot | None
        The first snapshot to publish.
    """

    def __init__(self, snapshot: Snapshot | None = None) -> None:
        self._snapshot = snapshot

    def publish(self, snapshot: Snapshot | None) -> None:
        """Replace the published snapshot (one reference swap: safe from any thread).

        Parameters
        ----------
        snapshot : Snapshot | None
            The new snapshot.
        """
        self._snapshot = snapshot

    def latest(self) -> Snapshot | None:
        """The published snapshot."""
        return self._snapshot


class LiveSource(SnapshotSource):
    """A live session as a source: connecting and stopping never block the caller.

    :meth:`start` connects (an LSL resolve can take seconds) and starts the session in a
    worker thread; :meth:`stop` flushes it and makes the final refresh (its maps land in
    :attr:`result`). Failures land in :attr:`error`.

    Parameters
    ----------
    session : LiveSession
        The session (:class:`~neuralign.realtime.session.LiveSession`), not yet started.
    on_connected : callable | None
        Called with the session once it is connected.
    """

    def __init__(self, session, *, on_connected=None) -> None:
        self.session = session
        self.on_connected = on_connected
        self.error: str | None = None
        self.result = None
        self._worker: threading.Thread | None = None
        self._started = False
        self._stop_lock = threading.Lock()
        self._auto_stop: threading.Thread | None = None

    def latest(self) -> Snapshot | None:
        """The session's newest snapshot (stops the session, in the background, once its
        stopping rule holds)."""
        rule_met = getattr(self.session, "rule_met", None)
        if rule_met is not None and rule_met.is_set() and self._auto_stop is None \
                and self._started:
            self._auto_stop = threading.Thread(target=self.stop, name="neuralign-auto-stop",
                                               daemon=True)
            self._auto_stop.start()
        return self.session.snapshot

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
        """Connect and start the session in a worker thread (once)."""
        if self._started:
            return
        self._started = True
        self._worker = threading.Thread(
            target=self._run, args=(self.session.start, "connect"), name="neuralign-connect",
            daemon=True,
        )
        self._worker.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Wait for the connect worker, then stop the session (final refresh).

        Parameters
        ----------
        timeout : float
            Seconds to wait for a connect still in progress.
        """
        with self._stop_lock:
            if not self._started:
                return
            if self._worker is not None:
                self._worker.join(timeout)
            self._started = False
            if self.session.connected:
                self._run(self.session.stop, "stop")

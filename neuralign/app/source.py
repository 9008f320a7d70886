"""What the window reads: anything with a non-blocking ``latest() -> Snapshot | None``.

The live updater (:mod:`neuralign.realtime`) and the in-process replay
(:class:`neuralign.app.replay.ReplaySource`) both satisfy :class:`SnapshotSource`. Sources may
also offer the optional controls of :class:`ControllableSource`; the window enables a control
only when the source has the method.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..realtime.snapshot import Snapshot


@runtime_checkable
class SnapshotSource(Protocol):
    """A publisher of immutable :class:`~neuralign.realtime.snapshot.Snapshot` objects.

    ``latest()`` must return at once (no locks held across computation, no I/O): the window
    calls it from a QTimer in the GUI thread. It returns ``None`` before the first snapshot.
    """

    def latest(self) -> Snapshot | None: ...


@runtime_checkable
class ControllableSource(SnapshotSource, Protocol):
    """A source that can be started, stopped, paused and sped up (all optional in practice).

    ``start()`` / ``stop()`` must not block for long (``stop`` may join a worker briefly);
    ``set_paused(bool)`` and ``set_speed(float)`` take effect on the worker's next step.
    """

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def set_paused(self, paused: bool) -> None: ...

    def set_speed(self, speed: float) -> None: ...


class StaticSource:
    """A source that publishes snapshots handed to it (tests, viewing a saved result).

    Parameters
    ----------
    snapshot : Snapshot or None
        The first snapshot to publish.
    """

    def __init__(self, snapshot: Snapshot | None = None) -> None:
        self._snapshot = snapshot

    def publish(self, snapshot: Snapshot | None) -> None:
        """Replace the published snapshot (one reference swap: safe from any thread)."""
        self._snapshot = snapshot

    def latest(self) -> Snapshot | None:
        return self._snapshot


class AttributeSource:
    """Adapter for publishers that expose the snapshot as an attribute (``obj.snapshot``).

    Only ``latest()`` is forwarded: the window shows such an object but does not control it.
    """

    def __init__(self, obj, attr: str = "snapshot") -> None:
        self.obj = obj
        self.attr = attr

    def latest(self) -> Snapshot | None:
        return getattr(self.obj, self.attr, None)

    @property
    def error(self):
        e = getattr(self.obj, "_error", None)
        return None if e is None else str(e)


def as_source(obj):
    """``obj`` if it has ``latest()``; an :class:`AttributeSource` if it has ``.snapshot``."""
    if obj is None or callable(getattr(obj, "latest", None)):
        return obj
    if hasattr(obj, "snapshot"):
        return AttributeSource(obj)
    raise TypeError(f"{type(obj).__name__} has neither latest() nor a snapshot attribute")

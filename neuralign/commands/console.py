"""Ending a command cleanly: stop signals, a console that may go away, a parent that may die.

- :class:`StopSignals`: SIGINT, SIGTERM and SIGHUP (terminal closed, SSH dropped) set an
  event the command's loop watches, so it stops and writes its results; a second Ctrl-C
  raises :class:`KeyboardInterrupt`.
- :func:`say`: print a line; when the console is gone (a broken pipe, a closed terminal) the
  output goes to ``/dev/null`` from then on and ``False`` comes back, so a loop can end the
  session cleanly instead of dying on :class:`BrokenPipeError`.
- :func:`lifeline` / :func:`watch_parent`: a child of ``neuralign session`` ends itself
  (SIGTERM to itself, so its own clean stop runs) as soon as its parent is gone, even after
  ``kill -9`` of the parent: the parent holds the write end of a pipe whose read end every
  child watches; the kernel closes it when the parent dies, however it dies.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

LIFELINE_ENV = "NEURALIGN_LIFELINE_FD"


class StopSignals:
    """Turn SIGINT, SIGTERM and SIGHUP into ``stop.set()`` while the block runs.

    Parameters
    ----------
    stop : threading.Event
        Set on the first signal.
    on_signal : callable | None
        ``on_signal(name)`` on each signal (e.g. to print ``stopping (SIGHUP)...``).
    """

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self, stop: threading.Event, *, on_signal=None) -> None:
        self.stop = stop
        self.on_signal = on_signal
        self.received: str | None = None
        self._old: dict = {}

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set() and name == "SIGINT":
            raise KeyboardInterrupt  # second Ctrl-C: stop waiting
        self.received = self.received or name
        if self.on_signal is not None:
            self.on_signal(name)
        self.stop.set()

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                sig = getattr(signal, name, None)
                if sig is None:
                    continue
                if name == "SIGINT" and signal.getsignal(sig) is not signal.default_int_handler:
                    continue  # someone (a test runner, a host app) owns Ctrl-C
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old = {}


def console_gone() -> None:
    """Send stdout and stderr to ``/dev/null`` (their reader is gone); never raises."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            try:
                os.dup2(null, stream.fileno())
            except (OSError, ValueError, AttributeError):
                pass
        os.close(null)
    except OSError:
        pass


def say(text: str, *, end: str = "\n", file=None) -> bool:
    """Print ``text`` (to stderr by default) and flush; ``False`` when the console is gone.

    Parameters
    ----------
    text : str
        The line.
    end : str
        Line end (``"\\r"`` for a status line on a terminal).
    file : file | None
        Where (default ``sys.stderr``).

    Returns
    -------
    bool
        Whether the line could be written.
    """
    try:
        print(text, end=end, file=file or sys.stderr, flush=True)
        return True
    except (BrokenPipeError, ConnectionResetError, OSError, ValueError):
        console_gone()
        return False


def lifeline() -> tuple[dict, int, int]:
    """A lifeline for children: ``(env, read_fd, write_fd)``.

    Start each child with ``env`` added to its environment and ``pass_fds=(read_fd,)``; keep
    ``write_fd`` open (it is not inherited) for as long as the children may run. When this
    process ends, however it ends (``kill -9`` included), the kernel closes ``write_fd`` and
    every child's :func:`watch_parent` sees end-of-file at once.

    Returns
    -------
    (dict, int, int)
        The environment entry, the read end (for the children), the write end (ours).
    """
    r, w = os.pipe()  # both non-inheritable; pass_fds hands the read end to each child
    return {LIFELINE_ENV: str(r)}, r, w


def watch_parent(*, grace_s: float = 120.0) -> threading.Thread | None:
    """End this process with SIGTERM (its clean stop) once the parent's lifeline breaks.

    Only when started with a lifeline (``NEURALIGN_LIFELINE_FD`` set by :func:`lifeline`);
    the child notices at once (a blocking read returns end-of-file), sends itself SIGTERM,
    and exits hard if its clean stop has not finished ``grace_s`` later.

    Parameters
    ----------
    grace_s : float
        Seconds the clean stop may take.

    Returns
    -------
    threading.Thread | None
        The watcher (a daemon thread), or ``None`` when there is no lifeline.
    """
    raw = os.environ.pop(LIFELINE_ENV, "")
    if not raw.isdigit():
        return None
    fd = int(raw)
    try:
        os.fstat(fd)
    except OSError:
        return None

    def watch() -> None:
        while True:
            try:
                if os.read(fd, 1) == b"":
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        os.kill(os.getpid(), signal.SIGTERM)
        threading.Event().wait(grace_s)
        os._exit(143)

    t = threading.Thread(target=watch, name="neuralign-lifeline", daemon=True)
    t.start()
    return t

"""The closed-loop back channel: the live session tells the presenter what to show next.

In a closed-loop session (``--order closed-loop``) the live session (``neuralign live``)
chooses the next block of stimuli (:func:`neuralign.align.chooser.choose_block`) and publishes
it on an LSL string stream; the presenter (``neuralign present``) reads it before each RSVP
sequence. Both sides need the protocol, and the presenter may use nothing but the ground, so it
lives here.

Stream
------
- name: ``<marker stream name>-backchannel`` (:func:`backchannel_name`): the marker stream's
  name is the one thing both programs are already told;
- type ``neuralign-backchannel``, one string channel, irregular rate, source id
  ``neuralign-backchannel-<12 hex digits of sha1(name)>`` (inlets recover after a restart);
- machine-scope LSL configuration (:func:`neuralign.lsl.get_pylsl`), like every neuralign
  stream.

Messages (one JSON object per sample, ``"v": 1``)
-------------------------------------------------
``{"kind": "block", "block": 3, "ids": ["img07", ...], "picks": [{"id": "img07",
"role": "train", "score": 0.021, "reason": "..."}, ...], "for_sequence": 3, "n_epochs": 60,
"time": <LSL time>}``
    The stimuli of the next sequence, in presentation order. ``block`` counts the blocks the
    session published (0, 1, ...); ``for_sequence`` is the presenter sequence the block was
    chosen for.
``{"kind": "stop", "reason": "latency-ci<=20ms holds", "time": <LSL time>}``
    End the presentation cleanly (the presenter stops at the next sequence boundary).
``{"kind": "hello", "time": <LSL time>}``
    Sent once when the outlet opens (tells a reader the channel exists; carries nothing).

A reader skips samples that are not JSON objects of a known kind (and counts them in
:attr:`BackChannelReader.n_bad`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from ..errors import NeuralignError
from ..lsl import get_pylsl

SUFFIX = "-backchannel"
STREAM_TYPE = "neuralign-backchannel"
VERSION = 1
KINDS = ("block", "stop", "hello")


def backchannel_name(marker_stream: str) -> str:
    """The back channel's stream name for a session whose markers go on ``marker_stream``.

    Parameters
    ----------
    marker_stream : str
        The marker stream's name (``markers.stream_name``; a ``name:X`` spec is accepted).

    Returns
    -------
    str
        ``<marker_stream>-backchannel``.
    """
    key, sep, value = marker_stream.partition(":")
    if sep and key == "name":
        marker_stream = value
    if not marker_stream.strip():
        raise NeuralignError("the back channel needs a marker stream name")
    return marker_stream + SUFFIX


def backchannel_source_id(name: str) -> str:
    """A stable LSL source id for a back channel named ``name``.

    Parameters
    ----------
    name : str
        The back channel's stream name.

    Returns
    -------
    str
        ``neuralign-backchannel-<12 hex digits>``.
    """
    return "neuralign-backchannel-" + hashlib.sha1(name.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Message:
    """One back-channel message (see the module docstring).

    Parameters
    ----------
    kind : str
        ``"block"``, ``"stop"`` or ``"hello"``.
    body : dict
        The message's other fields.
    stamp : float
        The LSL timestamp of its sample (reader side; 0 when built in memory).
    """

    kind: str
    body: dict = field(default_factory=dict)
    stamp: float = 0.0

    @property
    def ids(self) -> list[str]:
        """The stimulus ids of a ``block`` message (empty for other kinds)."""
        return [str(x) for x in self.body.get("ids", [])]

    @property
    def block(self) -> int:
        """The block number of a ``block`` message (-1 for other kinds)."""
        return int(self.body.get("block", -1))

    @property
    def reason(self) -> str:
        """The reason of a ``stop`` message (``""`` for other kinds)."""
        return str(self.body.get("reason", ""))

    def encode(self) -> str:
        """The JSON text of the message.

        Returns
        -------
        str
            One line of JSON with ``v`` and ``kind``.
        """
        return json.dumps({"v": VERSION, "kind": self.kind, **self.body},
                          separators=(",", ":"))

    @classmethod
    def decode(cls, text: str, stamp: float = 0.0) -> Message | None:
        """The message of a sample, or ``None`` if it is not one.

        Parameters
        ----------
        text : str
            The sample's string.
        stamp : float
            Its LSL timestamp.

        Returns
        -------
        Message | None
            ``None`` for anything but a JSON object of a known kind (and, for ``block``, a
            list of ids).
        """
        try:
            d = json.loads(text)
        except (TypeError, ValueError):
            return None
        if not isinstance(d, dict) or d.get("kind") not in KINDS:
            return None
        kind = d.pop("kind")
        d.pop("v", None)
        if kind == "block" and not (isinstance(d.get("ids"), list)
                                    and all(isinstance(x, str) for x in d["ids"])):
            return None
        return cls(kind, d, float(stamp))


class BackChannelOutlet:
    """The live session's side: publish blocks and stop requests.

    Parameters
    ----------
    marker_stream : str
        The session's marker stream name; the back channel is named after it
        (:func:`backchannel_name`).
    """

    def __init__(self, marker_stream: str) -> None:
        pylsl = get_pylsl()
        self._pylsl = pylsl
        self.name = backchannel_name(marker_stream)
        self.source_id = backchannel_source_id(self.name)
        info = pylsl.StreamInfo(self.name, STREAM_TYPE, 1, pylsl.IRREGULAR_RATE, "string",
                                self.source_id)
        info.desc().append_child_value("protocol", f"neuralign back channel v{VERSION} (JSON)")
        self.outlet = pylsl.StreamOutlet(info)
        self.n_sent = 0
        self.send(Message("hello"))

    def send(self, message: Message) -> float:
        """Push one message.

        Parameters
        ----------
        message : Message
            What to send.

        Returns
        -------
        float
            Its LSL timestamp.
        """
        stamp = self._pylsl.local_clock()
        self.outlet.push_sample([message.encode()], stamp)
        self.n_sent += 1
        return stamp

    def block(self, block: int, ids: list[str], *, picks: list[dict] | None = None,
              **fields) -> float:
        """Publish the next block of stimulus ids.

        Parameters
        ----------
        block : int
            The block's number.
        ids : list of str
            The stimulus ids, in presentation order.
        picks : list of dict | None
            Why each was chosen (``id``, ``role``, ``score``, ``reason``).
        **fields
            Further fields (``for_sequence``, ``n_epochs``...).

        Returns
        -------
        float
            Its LSL timestamp.
        """
        return self.send(Message("block", {"block": int(block), "ids": [str(x) for x in ids],
                                           "picks": picks or [], **fields,
                                           "time": self._pylsl.local_clock()}))

    def stop(self, reason: str) -> float:
        """Ask the presenter to stop.

        Parameters
        ----------
        reason : str
            Why (shown in the presenter's log).

        Returns
        -------
        float
            Its LSL timestamp.
        """
        return self.send(Message("stop", {"reason": str(reason),
                                          "time": self._pylsl.local_clock()}))

    def have_consumers(self) -> bool:
        """Whether a presenter (an inlet) is connected."""
        return bool(self.outlet is not None and self.outlet.have_consumers())

    def close(self) -> None:
        """Drop the outlet (readers see the stream go quiet)."""
        self.outlet = None


class BackChannelReader:
    """The presenter's side: find the back channel and read its messages without blocking.

    The stream is looked up in a background thread (until found), so a presenter can start
    before the live session and :meth:`poll` never blocks longer than its timeout (a frame
    loop may call it with 0).

    Parameters
    ----------
    marker_stream : str
        The session's marker stream name (the back channel is named after it).
    retry_s : float
        Seconds each look-up listens (it returns as soon as the stream answers; a loaded
        machine can take seconds to answer discovery).
    """

    def __init__(self, marker_stream: str, *, retry_s: float = 5.0) -> None:
        self.name = backchannel_name(marker_stream)
        self.retry_s = float(retry_s)
        self.inlet = None
        self._queue: deque[Message] = deque()
        self._found = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self.n_received = 0
        self.n_bad = 0
        self.last_message: float | None = None  # time.monotonic() of the last message

    def start(self) -> None:
        """Start looking the stream up in the background (idempotent)."""
        if self._thread is None and self.inlet is None:
            self._thread = threading.Thread(target=self._lookup, daemon=True,
                                            name="neuralign-backchannel-lookup")
            self._thread.start()

    def _lookup(self) -> None:
        pylsl = get_pylsl()
        while not self._closed.is_set():
            found = pylsl.resolve_byprop("name", self.name, 1, self.retry_s)
            if found:
                inlet = pylsl.StreamInlet(found[0], max_buflen=60, recover=True)
                inlet.open_stream(timeout=5.0)
                self.inlet = inlet
                self._found.set()
                return

    def connect(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the stream to be found and opened.

        Parameters
        ----------
        timeout : float
            Seconds to wait.

        Returns
        -------
        bool
            Whether it is connected.
        """
        self.start()
        return self._found.wait(max(float(timeout), 0.0))

    def poll(self, timeout: float = 0.0) -> Message | None:
        """The next message, waiting up to ``timeout`` seconds (0: do not wait).

        Parameters
        ----------
        timeout : float
            Seconds to wait for a message.

        Returns
        -------
        Message | None
            The oldest unread message, or ``None`` when none came in time.
        """
        self.start()
        end = time.monotonic() + max(float(timeout), 0.0)
        while True:
            self._pull()
            if self._queue:
                return self._queue.popleft()
            left = end - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(0.005, left))

    def _pull(self) -> None:
        inlet = self.inlet
        if inlet is None:
            return
        while True:
            try:
                sample, stamp = inlet.pull_sample(timeout=0.0)
            except Exception:  # noqa: BLE001 - a lost stream: quiet until it recovers
                return
            if sample is None:
                return
            msg = Message.decode(sample[0], stamp)
            if msg is None:
                self.n_bad += 1
                continue
            self.n_received += 1
            self.last_message = time.monotonic()
            if msg.kind != "hello":
                self._queue.append(msg)

    def quiet_for(self) -> float:
        """Seconds since the last message (infinite before the first)."""
        return float("inf") if self.last_message is None else time.monotonic() - self.last_message

    def close(self) -> None:
        """Stop looking, close the inlet (errors of a lost stream are ignored)."""
        self._closed.set()
        inlet, self.inlet = self.inlet, None
        with contextlib.suppress(Exception):
            if inlet is not None:
                inlet.close_stream()


def wait_for_reader(outlet: BackChannelOutlet, timeout: float) -> bool:
    """Block until a reader is connected to ``outlet`` (or ``timeout`` seconds passed).

    Parameters
    ----------
    outlet : BackChannelOutlet
        The live session's outlet.
    timeout : float
        Seconds to wait at most.

    Returns
    -------
    bool
        Whether a reader is connected.
    """
    end = time.monotonic() + timeout
    while not outlet.have_consumers():
        if time.monotonic() >= end:
            return False
        time.sleep(0.02)
    return True



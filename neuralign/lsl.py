"""LSL for every part of neuralign: machine-scope configuration, stream lookup, marker outlet.

Default LSL discovery sends multicast/broadcast packets off the machine. neuralign always points
liblsl at the configuration shipped in the package (``neuralign/lsl_api.cfg``: IPv6 off,
``ResolveScope = machine``, ``KnownPeers = {127.0.0.1}``) unless the user already set
``LSLAPICFG``. Import ``pylsl`` only through :func:`get_pylsl`, which applies it first.

Stream specs (how commands name a stream): ``NAME`` (a name or a source id), ``name:X``,
``type:X`` or ``source_id:X``.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from .errors import NeuralignError

LSL_CONFIG = Path(__file__).with_name("lsl_api.cfg")


def configure_lsl() -> Path:
    """Point liblsl at the machine-scope configuration, unless ``LSLAPICFG`` is already set.

    A ``LSLAPICFG`` that names a missing, unreadable or empty file is an error: liblsl would
    log one line and fall back to its defaults, whose discovery leaves the machine.

    Returns
    -------
    Path
        The configuration file in force.

    Raises
    ------
    NeuralignError
        ``LSLAPICFG`` is set to a missing, unreadable or empty file.
    """
    os.environ.setdefault("LSLAPICFG", str(LSL_CONFIG))
    p = Path(os.environ["LSLAPICFG"])
    try:
        text = p.read_text(encoding="utf-8", errors="replace") if os.environ["LSLAPICFG"] else ""
    except OSError as e:
        raise NeuralignError(f"LSLAPICFG names a file that cannot be read ({e.strerror}); "
                             "liblsl would fall back to defaults that send discovery beyond "
                             "this machine: unset LSLAPICFG (neuralign then uses its "
                             f"machine-scope {LSL_CONFIG.name}) or fix the path",
                             path=p) from None
    if not any(ln.strip() and not ln.lstrip().startswith((";", "#"))
               for ln in text.splitlines()):
        raise NeuralignError("LSLAPICFG names an empty LSL configuration; liblsl would fall "
                             "back to defaults that send discovery beyond this machine: unset "
                             f"LSLAPICFG (neuralign then uses its {LSL_CONFIG.name}) or fill it",
                             path=p)
    return p


def listening_sockets(pid: int | str = "self") -> list[tuple[str, str, int]]:
    """The TCP listening and UDP sockets a process has open, with their bound addresses.

    Linux only (``/proc``); elsewhere an empty list.

    Parameters
    ----------
    pid : int | str
        The process (default: this one).

    Returns
    -------
    list of (str, str, int)
        ``(protocol, address, port)``, e.g. ``("tcp", "0.0.0.0", 16572)``: what liblsl's
        outlets expose (see docs/realtime.md).
    """
    try:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return []
    found = []
    for proto in ("tcp", "udp", "tcp6", "udp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[9] not in inodes or (proto.startswith("tcp") and f[3] != "0A"):  # 0A: LISTEN
                continue
            hexip, hexport = f[1].split(":")
            if len(hexip) == 8:
                ip = ".".join(str(int(hexip[i:i + 2], 16)) for i in (6, 4, 2, 0))
            else:
                ip = "::" if int(hexip, 16) == 0 else hexip
            found.append((proto.rstrip("6"), ip, int(hexport, 16)))
    return sorted(set(found))


def get_pylsl():
    """``pylsl``, imported after the machine-scope LSL configuration is in force.

    Returns
    -------
    module
        The ``pylsl`` module.
    """
    configure_lsl()
    import pylsl

    return pylsl


def predicate(spec: str) -> str:
    """The XPath predicate of a stream spec.

    Parameters
    ----------
    spec : str
        ``NAME`` (a name or a source id), ``name:X``, ``type:X`` or ``source_id:X``.

    Returns
    -------
    str
        E.g. ``"type='EEG'"`` or ``"(name='amp' or source_id='amp')"``.
    """
    key, sep, value = spec.partition(":")
    if sep and key in ("name", "type", "source_id"):
        return f"{key}='{value}'"
    return f"(name='{spec}' or source_id='{spec}')"


def visible_streams(wait_time: float = 1.0) -> list[dict]:
    """The LSL streams visible on this machine, as plain dicts.

    Parameters
    ----------
    wait_time : float
        Seconds to listen for streams.

    Returns
    -------
    list of dict
        ``name``, ``type``, ``channels``, ``rate``, ``source_id`` and ``hostname`` of each.
    """
    pylsl = get_pylsl()
    return [{"name": s.name(), "type": s.type(), "channels": s.channel_count(),
             "rate": s.nominal_srate(), "source_id": s.source_id(), "hostname": s.hostname()}
            for s in pylsl.resolve_streams(wait_time=wait_time)]


def resolve(spec: str, *, what: str, timeout: float = 10.0):
    """Find one stream matching ``spec``.

    Parameters
    ----------
    spec : str
        A stream spec (see the module docstring).
    what : str
        What the stream is (``"EEG"``, ``"marker"``), for the message.
    timeout : float
        Seconds to wait for it.

    Returns
    -------
    pylsl.StreamInfo
        The first matching stream.

    Raises
    ------
    NeuralignError
        When nothing matches in time, listing the streams that are visible.
    """
    if "'" in spec:
        raise NeuralignError(f"{what} stream spec {spec!r} must not contain quotes")
    pylsl = get_pylsl()
    found = pylsl.resolve_bypred(predicate(spec), 1, timeout)
    if not found:
        names = ", ".join(f"{s['name']!r} ({s['type']})" for s in visible_streams(0.5))
        raise NeuralignError(
            f"no LSL {what} stream matching {spec!r} within {timeout:g} s "
            f"(visible on this machine: {names or 'none'})")
    return found[0]


def default_source_id(stream_name: str) -> str:
    """A stable source id for a marker stream name (lets inlets recover after a restart).

    Parameters
    ----------
    stream_name : str
        The marker stream's name.

    Returns
    -------
    str
        ``neuralign-markers-<12 hex digits>``.
    """
    return "neuralign-markers-" + hashlib.sha1(stream_name.encode()).hexdigest()[:12]


class MarkerOutlet:
    """An LSL string marker stream (type ``Markers``, one channel, irregular rate).

    The presenter, the simulated amplifier's own schedule and the dataset player all send
    their stimulus ids through one of these.

    Parameters
    ----------
    name : str
        LSL stream name (what ``neuralign live --marker-stream`` looks for).
    source_id : str
        LSL source id; default derived from ``name`` (:func:`default_source_id`).
    """

    def __init__(self, name: str, *, source_id: str = "") -> None:
        pylsl = get_pylsl()
        self._pylsl = pylsl
        self.name = name
        self.source_id = source_id or default_source_id(name)
        info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, "string",
                                self.source_id)
        desc = info.desc()
        desc.append_child_value("manufacturer", "neuralign")
        ch = desc.append_child("channels").append_child("channel")
        ch.append_child_value("label", "marker")
        ch.append_child_value("type", "Markers")
        self.outlet = pylsl.StreamOutlet(info)
        self.n_pushed = 0

    def local_clock(self) -> float:
        """The LSL clock now, in seconds."""
        return self._pylsl.local_clock()

    def push(self, marker: str, *, stamp: float | None = None) -> float:
        """Send one marker.

        Parameters
        ----------
        marker : str
            A stimulus id or a control word.
        stamp : float | None
            Its LSL timestamp (default: now).

        Returns
        -------
        float
            The timestamp used.
        """
        if stamp is None:
            stamp = self._pylsl.local_clock()
        self.outlet.push_sample([marker], stamp)
        self.n_pushed += 1
        return stamp

    def have_consumers(self) -> bool:
        """Whether an inlet is connected."""
        return bool(self.outlet.have_consumers())

    def wait_for_consumer(self, timeout: float, *, settle: float = 0.0) -> None:
        """Block until an inlet is connected (markers pushed before are lost).

        Parameters
        ----------
        timeout : float
            Seconds to wait at most; 0 does not wait.
        settle : float
            Seconds to pause after a consumer connected.

        Raises
        ------
        NeuralignError
            When nothing connected in time, saying what to start.
        """
        if timeout <= 0:
            return
        print(f"waiting up to {timeout:g} s for a consumer of marker stream {self.name!r} "
              "(neuralign live or an LSL recorder) ...", flush=True)
        if not self.outlet.wait_for_consumers(timeout):
            raise NeuralignError(
                f"no consumer connected to marker stream {self.name!r} within {timeout:g} s: "
                f"start `neuralign live --marker-stream {self.name} ...` (or LabRecorder) first, "
                "check that both use the same LSLAPICFG, or set markers.wait_for_consumer_s = 0 "
                "to present without one (markers are then lost)"
            )
        if settle > 0:
            time.sleep(settle)

    def close(self) -> None:
        """Drop the outlet (its consumers see the stream end)."""
        self.outlet = None


def exposure_line(pid: int | str = "self") -> str:
    """One line saying where this process's LSL outlets can be reached from.

    Parameters
    ----------
    pid : int | str
        The process (default: this one).

    Returns
    -------
    str
        E.g. ``"network: LSL discovery on loopback only; liblsl's data server listens on all
        interfaces: tcp 16572, udp 16573 (see docs/realtime.md)"``.
    """
    socks = listening_sockets(pid)
    wide = [f"{proto} {port}" for proto, ip, port in socks if ip in ("0.0.0.0", "::")]
    local = all(ip.startswith("127.") for _, ip, port in socks if port == 16571)
    head = "network: LSL discovery on " + ("loopback only" if local else "ALL interfaces")
    if not wide:
        return head
    return (f"{head}; liblsl's data and service sockets listen on all interfaces "
            f"({', '.join(wide)}): block them with a firewall on an untrusted network "
            "(docs/realtime.md)")

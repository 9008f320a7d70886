"""What a neuralign outlet exposes: discovery answers on loopback only; what liblsl cannot
bind to loopback (its per-outlet TCP data server and UDP service socket) is exactly known."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from neuralign.lsl import listening_sockets

from ..realtime.lslkit import ROOT, env, neuralign, stop, unique, wait_for_stream, wait_until

pytestmark = [pytest.mark.lsl, pytest.mark.faults, pytest.mark.timeout(120)]
DISCOVERY = 16571  # liblsl's MulticastPort


def _lan_address() -> str | None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # no packet is sent: picks the outgoing interface
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") else ip


def _shortinfo(host: str, port: int, name: str) -> bytes | None:
    """Ask (host, port) for stream `name` as an LSL resolver does; the answer or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    s.settimeout(1.0)
    try:
        q = f"LSL:shortinfo\r\nname='{name}'\r\n{s.getsockname()[1]} 4242\r\n".encode()
        s.sendto(q, (host, port))
        return s.recvfrom(65536)[0]
    except OSError:
        return None
    finally:
        s.close()


def test_outlet_sockets_and_who_gets_an_answer(tmp_path):
    name = unique("net")
    amp = neuralign(["simulate-amp", "--eeg-stream", name, "--source-id", name, "--channels",
                     "2", "--sfreq", "100", "--duration", "60"], tmp_path / "amp.log")
    try:
        wait_for_stream(name)
        assert wait_until(lambda: "network:" in (tmp_path / "amp.log").read_text(), 30), \
            (tmp_path / "amp.log").read_text()
        socks = listening_sockets(amp.pid)
    finally:
        stop(amp)
    # discovery (the responder on the multicast port) is bound to loopback only
    disco = [s for s in socks if s[2] == DISCOVERY]
    assert disco == [("udp", "127.0.0.1", DISCOVERY)], socks
    # the rest, exactly: one TCP data server and one UDP service socket on all interfaces,
    # inside liblsl's port range (documented in docs/realtime.md); no IPv6
    wide = sorted((p, ip) for p, ip, port in socks if port != DISCOVERY)
    assert wide == [("tcp", "0.0.0.0"), ("udp", "0.0.0.0")], socks
    assert all(16572 <= port < 16572 + 32 for _, _, port in socks if port != DISCOVERY)
    log = (tmp_path / "amp.log").read_text()
    assert "network: LSL discovery on loopback only" in log
    assert "listen on all interfaces" in log


def test_discovery_is_not_answered_on_the_lan_address(tmp_path):
    lan = _lan_address()
    if lan is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    name = unique("lan")
    amp = neuralign(["simulate-amp", "--eeg-stream", name, "--source-id", name, "--channels",
                     "2", "--sfreq", "100", "--duration", "60"], tmp_path / "amp.log")
    try:
        wait_for_stream(name)
        assert _shortinfo("127.0.0.1", DISCOVERY, name) is not None  # machine scope works
        assert _shortinfo(lan, DISCOVERY, name) is None  # from the network: no answer
    finally:
        stop(amp)


def test_missing_or_empty_lslapicfg_is_one_line_exit_2(tmp_path):
    procs = {}
    for k, content in enumerate([None, "", "; only a comment\n"]):  # (three at once)
        cfg = tmp_path / f"lsl_api{k}.cfg"
        if content is not None:
            cfg.write_text(content)
        procs[cfg] = subprocess.Popen(
            [sys.executable, "-m", "neuralign.cli", "simulate-amp", "--duration", "1",
             "--eeg-stream", unique("cfg")], env=dict(env(), LSLAPICFG=str(cfg)),
            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for cfg, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 2
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith(f"neuralign: error: {cfg}: LSLAPICFG names")
        assert "streaming" not in err
    assert os.environ["LSLAPICFG"] not in map(str, procs)

"""UDP port publishing end to end: `-p HOSTPORT:CPORT/udp` and
`-p 127.0.0.1::CPORT/udp` (a random host port), from a host socket through
dockyard's nftables DNAT to the container and back.

busybox has no UDP server (its nc has no -u, no udpsvd), so the responder is
this Python run by nsenter in the container's network namespace: it binds
CPORT/udp there exactly as a program in the container would, and answers
with what it got and on which port. Traffic goes only to loopback, the
host's side of the test bridge and the test's containers."""
from __future__ import annotations

import json
import secrets
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

# One datagram in, one out: "<port it arrived on> <payload>".
RESPONDER = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(b"%d " % s.getsockname()[1] + data, peer)
"""


def uname(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


def free_port() -> int:
    """A host port free for both UDP and TCP (a test publishes both on one)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("0.0.0.0", 0))
            port = s.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            try:
                t.bind(("0.0.0.0", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no port free for both tcp and udp")


class Responder:
    """The UDP responder in a running container's network namespace."""

    def __init__(self, daemon, name: str, port: int):
        pid = json.loads(daemon.docker("inspect", name).stdout)[0]["State"]["Pid"]
        assert pid > 0
        self.proc = subprocess.Popen(["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", RESPONDER,
                                      str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.close()
            pytest.fail(f"responder did not start: {line!r} {self.proc.stderr.read()}")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def ask(host: str, port: int, payload: bytes) -> bytes:
    """Send one datagram and wait for the answer (resent now and then: UDP may drop)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        s.connect((host, port))
        for _ in range(20):
            s.send(payload)
            try:
                return s.recv(2048)
            except (TimeoutError, socket.timeout):
                continue
            except ConnectionRefusedError:   # ICMP unreachable: nothing bound there (yet)
                time.sleep(0.1)
    raise AssertionError(f"no answer from {host}:{port}/udp")


def bridge_addr(daemon) -> str:
    return daemon.bip.split("/")[0]


def test_udp_published_on_all_addresses_with_tcp_on_the_same_port(daemon, bb_image):
    """-p HP:CPORT/udp next to -p HP:CPORT (tcp): each protocol reaches its own server."""
    hp = free_port()
    name = uname("udp")
    daemon.docker("run", "-d", "--name", name, "-p", f"{hp}:8053/udp", "-p", f"{hp}:8053", bb_image, "sh", "-c",
                  "mkdir -p /www && echo tcp-side > /www/index.html && httpd -f -p 8053 -h /www")
    try:
        r = Responder(daemon, name, 8053)
        try:
            assert ask("127.0.0.1", hp, b"via-loopback") == b"8053 via-loopback"
            assert ask(bridge_addr(daemon), hp, b"via-bridge") == b"8053 via-bridge"
            # and [::]: the daemon's relay, as docker-proxy (the container has IPv4 only)
            assert ask("::1", hp, b"via-v6") == b"8053 via-v6"
            assert ask("::1", hp, b"again-v6") == b"8053 again-v6"   # the same relay socket
        finally:
            r.close()
        deadline = time.monotonic() + 10
        while True:   # the tcp twin still answers on the same host port (httpd may still be starting)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{hp}/", timeout=5) as resp:
                    assert resp.read().decode().strip() == "tcp-side"
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        lines = sorted(daemon.docker("port", name).stdout.strip().splitlines())
        # both families, as dockerd lists them
        assert lines == [f"8053/tcp -> 0.0.0.0:{hp}", f"8053/tcp -> [::]:{hp}",
                         f"8053/udp -> 0.0.0.0:{hp}", f"8053/udp -> [::]:{hp}"]
        assert daemon.docker("port", name, "8053/udp").stdout.strip().splitlines() == [f"0.0.0.0:{hp}",
                                                                                        f"[::]:{hp}"]
        info = json.loads(daemon.docker("inspect", name).stdout)[0]
        assert info["NetworkSettings"]["Ports"]["8053/udp"] == [{"HostIp": "0.0.0.0", "HostPort": str(hp)},
                                                                {"HostIp": "::", "HostPort": str(hp)}]
        assert info["HostConfig"]["PortBindings"]["8053/udp"] == [{"HostIp": "", "HostPort": str(hp)}]
        assert "8053/udp" in info["Config"]["ExposedPorts"]
        # the host port is held for udp: a second container cannot take it
        r2 = daemon.docker("run", "-d", "-p", f"{hp}:9/udp", bb_image, "true", check=False)
        assert r2.returncode != 0 and "already allocated" in r2.stderr
    finally:
        daemon.docker("rm", "-f", name)
        daemon.docker("container", "prune", "-f")
    # gone with the container: the port is free again for anyone
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", hp))


def test_udp_random_port_on_loopback_survives_restart(daemon, bb_image):
    """-p 127.0.0.1::CPORT/udp: a port from the ephemeral range, shown by port/inspect/ps,
    and published again after a container restart."""
    name = uname("udpr")
    daemon.docker("run", "-d", "--name", name, "-p", "127.0.0.1::5353/udp", bb_image, "sleep", "300")
    try:
        info = json.loads(daemon.docker("inspect", name).stdout)[0]
        (binding,) = info["NetworkSettings"]["Ports"]["5353/udp"]
        hp = int(binding["HostPort"])
        assert binding["HostIp"] == "127.0.0.1"
        lo, hi = map(int, open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
        assert lo <= hp <= hi
        assert daemon.docker("port", name).stdout.strip() == f"5353/udp -> 127.0.0.1:{hp}"
        assert f"127.0.0.1:{hp}->5353/udp" in daemon.docker("ps", "--filter", f"name={name}").stdout
        r = Responder(daemon, name, 5353)
        try:
            assert ask("127.0.0.1", hp, b"first") == b"5353 first"
        finally:
            r.close()
        daemon.docker("restart", "-t", "0", name)   # the ports go with the old start and come back
        ports = json.loads(daemon.docker("inspect", name).stdout)[0]["NetworkSettings"]["Ports"]
        hp = int(ports["5353/udp"][0]["HostPort"])
        r = Responder(daemon, name, 5353)
        try:
            assert ask("127.0.0.1", hp, b"again") == b"5353 again"
            # bound on 127.0.0.1 only: the same port on the bridge-side address is not published
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.5)
                s.connect((bridge_addr(daemon), hp))
                s.send(b"nobody")
                with pytest.raises((TimeoutError, socket.timeout, ConnectionRefusedError)):
                    s.recv(2048)
        finally:
            r.close()
    finally:
        daemon.docker("rm", "-f", name)


def test_udp_flow_started_before_the_publish_reaches_the_container(daemon, bb_image):
    """A client that was already sending to the host port before the container published it
    (the kernel then keeps an un-NATed conntrack entry for its flow) reaches the container."""
    hp = free_port()
    name = uname("udpe")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        s.connect(("127.0.0.1", hp))
        s.send(b"early")   # nothing there yet: refused, but the flow is tracked
        with pytest.raises((TimeoutError, socket.timeout, ConnectionRefusedError)):
            s.recv(2048)
        daemon.docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{hp}:5353/udp", bb_image, "sleep", "300")
        try:
            r = Responder(daemon, name, 5353)
            try:
                for _ in range(20):
                    s.send(b"same-flow")
                    try:
                        got = s.recv(2048)
                        break
                    except (TimeoutError, socket.timeout, ConnectionRefusedError):
                        continue
                else:
                    raise AssertionError("the flow started before the publish never reached the container")
                assert got == b"5353 same-flow"
            finally:
                r.close()
        finally:
            daemon.docker("rm", "-f", name)

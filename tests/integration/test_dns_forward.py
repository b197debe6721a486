"""The embedded resolver (network/resolver.py) on real sockets, without a daemon: names it
does not know go to the upstream resolvers over the protocol they came on and the answer
comes back unchanged; Internal networks forward nothing; a resolver that does not answer
gives SERVFAIL; an answer too big for UDP arrives whole over TCP.

The upstream is a fake resolver this test runs on a 127.x loopback address, so no question
ever leaves the machine. The service serves sockets the test binds on loopback (in the daemon
they are bound inside the container's namespace, behind its DNAT of 127.0.0.11:53).
"""
from __future__ import annotations

import asyncio
import random
import socket
import threading

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from dockyard.network import resolver

BIG = [f'"{i:03d}-{"x" * 60}"' for i in range(20)]   # ~1300 bytes of TXT


def loopback(kind: int, port: int = 53) -> tuple[socket.socket, str]:
    """A socket bound to `port` of a free 127.x address."""
    for _ in range(50):
        ip = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(2, 250)}"
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((ip, port))
            return s, ip
        except OSError:
            s.close()
    pytest.skip(f"no free 127.x:{port}")


def fake_answer(q: dns.message.Message) -> dns.message.Message:
    r = dns.message.make_response(q)
    name = q.question[0].name
    rdtype = dns.rdatatype.to_text(q.question[0].rdtype)
    if name.to_text() == "big.test.":
        r.answer.append(dns.rrset.from_text_list(name, 60, "IN", "TXT", BIG))
    elif rdtype == "A":
        r.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "192.0.2.7"))
    return r   # other types: no data


class FakeUpstream:
    """UDP and TCP on one 127.x:53: A 192.0.2.7 for every name, a big TXT for big.test."""

    def __init__(self):
        self.udp, self.ip = loopback(socket.SOCK_DGRAM)
        self.tcp = socket.socket()
        self.tcp.bind((self.ip, 53))
        self.tcp.listen(8)
        self.asked: list[tuple[str, str]] = []    # (protocol, name)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._serve_udp, self._serve_tcp)]
        for t in self.threads:
            t.start()

    def _serve_udp(self):
        self.udp.settimeout(0.2)
        while not self.stop.is_set():
            try:
                data, addr = self.udp.recvfrom(4096)
            except socket.timeout:
                continue
            q = dns.message.from_wire(data)
            self.asked.append(("udp", q.question[0].name.to_text()))
            limit = max(512, q.payload) if q.edns >= 0 else 512
            self.udp.sendto(fake_answer(q).to_wire(max_size=limit, prefer_truncation=True), addr)

    def _serve_tcp(self):
        self.tcp.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(2)
                q, _ = dns.query.receive_tcp(conn)
                self.asked.append(("tcp", q.question[0].name.to_text()))
                dns.query.send_tcp(conn, fake_answer(q))

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(5)   # before the close: a recvfrom on a closed socket is EBADF
        self.udp.close()
        self.tcp.close()


class FakeManager:
    def __init__(self, forwards: dict[str, bool]):
        self.forwards = forwards

    def dns_names(self, container_id):
        return {"db": ["10.1.0.2"]}

    def dns_reverse(self, container_id, ip):
        return None

    def dns_forwards(self, container_id):
        return self.forwards[container_id]


@pytest.fixture
def upstream():
    up = FakeUpstream()
    yield up
    up.close()


@pytest.fixture
def service():
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    svc = resolver.DnsService(loop, FakeManager({"open": True, "internal": False}))
    try:
        yield svc
    finally:
        loop.call_soon_threadsafe(svc.close_all)
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()


def serve(svc, container_id: str, servers: list[str]) -> tuple[str, int, int]:
    """Bind a UDP and a TCP socket on a free 127.x (ports the kernel picks), serve them: (ip, udp, tcp)."""
    udp, ip = loopback(socket.SOCK_DGRAM, 0)
    tcp = socket.socket()
    tcp.bind((ip, 0))
    tcp.listen(8)
    udp.setblocking(False)
    tcp.setblocking(False)
    svc.serve(container_id, udp, tcp, servers)
    return ip, udp.getsockname()[1], tcp.getsockname()[1]


def test_unknown_names_are_forwarded_and_relayed_unchanged(service, upstream):
    ip, udp, tcp = serve(service, "open", [upstream.ip])
    local = dns.query.udp(dns.message.make_query("db", "A"), ip, port=udp, timeout=5)
    assert local.answer[0][0].to_text() == "10.1.0.2" and upstream.asked == []   # ours: not forwarded
    q = dns.message.make_query("example.org", "A")
    answer = dns.query.udp(q, ip, port=udp, timeout=5)
    assert upstream.asked == [("udp", "example.org.")]
    assert answer.id == q.id and answer.answer[0][0].to_text() == "192.0.2.7"
    # over TCP, forwarded over TCP
    answer = dns.query.tcp(dns.message.make_query("example.net", "A"), ip, port=tcp, timeout=5)
    assert upstream.asked[-1] == ("tcp", "example.net.") and answer.answer[0][0].to_text() == "192.0.2.7"
    local = dns.query.tcp(dns.message.make_query("DB", "A"), ip, port=tcp, timeout=5)
    assert local.answer[0][0].to_text() == "10.1.0.2"


def test_a_big_answer_is_truncated_over_udp_and_whole_over_tcp_or_edns(service, upstream):
    ip, udp, tcp = serve(service, "open", [upstream.ip])
    cut = dns.query.udp(dns.message.make_query("big.test", "TXT"), ip, port=udp, timeout=5)
    assert cut.flags & dns.flags.TC
    whole = dns.query.tcp(dns.message.make_query("big.test", "TXT"), ip, port=tcp, timeout=5)
    assert not whole.flags & dns.flags.TC and len(whole.answer[0]) == len(BIG)
    assert len(whole.to_wire()) > 512
    edns = dns.query.udp(dns.message.make_query("big.test", "TXT", use_edns=0, payload=4096), ip, port=udp,
                         timeout=5)
    assert not edns.flags & dns.flags.TC and len(edns.answer[0]) == len(BIG)


def test_internal_networks_forward_nothing(service, upstream):
    ip, udp, _ = serve(service, "internal", [upstream.ip])
    answer = dns.query.udp(dns.message.make_query("example.org", "A"), ip, port=udp, timeout=5)
    assert answer.rcode() == dns.rcode.SERVFAIL and upstream.asked == []   # at once
    assert dns.query.udp(dns.message.make_query("db", "A"), ip, port=udp, timeout=5).answer[0][0].to_text() \
        == "10.1.0.2"


def test_a_resolver_that_does_not_answer_gives_servfail(service, monkeypatch):
    silent, silent_ip = loopback(socket.SOCK_DGRAM)   # bound, never answers
    try:
        monkeypatch.setattr(resolver, "FORWARD_TIMEOUT", 0.3)
        ip, udp, _ = serve(service, "open", [silent_ip])
        q = dns.message.make_query("example.org", "A")
        answer = dns.query.udp(q, ip, port=udp, timeout=5)
        assert answer.id == q.id and answer.rcode() == dns.rcode.SERVFAIL
        silent.settimeout(1)
        assert silent.recv(512)   # it was asked
    finally:
        silent.close()


def test_in_a_namespace_the_rules_are_kept_across_a_restart_unless_a_port_was_taken(tmp_path):
    """bind_in_namespace: a fresh namespace gets the DNAT table; after a daemon restart the same ports are
    bound again and the rules stay (no ~10 ms table replacement per container); a port taken meanwhile
    gives new ports and replaced rules. 127.0.0.11:53 reaches the listener every time."""
    from dockyard.network import netns
    from dockyard.network.rtnl import Rtnl

    def lo_up():
        with Rtnl() as ns:
            ns.set_link(name="lo", up=True)

    def ask_53(udp: socket.socket) -> bytes:   # a query to 127.0.0.11:53 arrives at the listener
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
            c.sendto(b"ping", (resolver.ADDRESS, 53))
        udp.settimeout(2)
        return udp.recv(16)

    path = str(tmp_path / "ns")
    netns.create(path, then=lo_up)
    try:
        udp, tcp = netns.run_in(path, resolver.bind_in_namespace)
        ports = (udp.getsockname()[1], tcp.getsockname()[1])
        assert netns.run_in(path, lambda: ask_53(udp)) == b"ping"
        udp.close()
        tcp.close()
        udp, tcp = netns.run_in(path, lambda: resolver.bind_in_namespace(True))
        assert (udp.getsockname()[1], tcp.getsockname()[1]) == ports
        assert netns.run_in(path, lambda: ask_53(udp)) == b"ping"
        udp.close()
        tcp.close()

        def take() -> socket.socket:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((resolver.ADDRESS, ports[0]))
            return s

        blocker = netns.run_in(path, take)
        try:
            udp, tcp = netns.run_in(path, lambda: resolver.bind_in_namespace(True))
            assert udp.getsockname()[1] != ports[0]
            assert netns.run_in(path, resolver.existing_ports) == {"udp": udp.getsockname()[1],
                                                                 "tcp": tcp.getsockname()[1]}
            assert netns.run_in(path, lambda: ask_53(udp)) == b"ping"
            udp.close()
            tcp.close()
        finally:
            blocker.close()
    finally:
        netns.remove(path)

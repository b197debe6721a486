"""The user networks' DNS server (network/dns.py) on real UDP sockets, without a daemon:
names it does not know go to the host's resolvers and the answer comes back unchanged;
Internal networks forward nothing; a resolver that does not answer gives SERVFAIL.

The "host resolver" is a fake one this test runs on a 127.x loopback address, so no
question ever leaves the machine.
"""
from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading

import pytest

from dockyard.network import dns


def query(name: str, qtype: int = dns.QTYPE_A, qid: int = 0x4242) -> bytes:
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack("!HH", qtype, 1)


def loopback_udp53() -> tuple[socket.socket, str]:
    """A UDP socket bound to port 53 of a free 127.x address."""
    for _ in range(50):
        ip = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.{random.randint(2, 250)}"
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((ip, 53))
            return s, ip
        except OSError:
            s.close()
    pytest.skip("no free 127.x:53")


class FakeManager:
    def __init__(self, forwards: dict[str, bool]):
        self.forwards = forwards

    def dns_names(self, network_id, asker=None):
        return {"db": ["10.1.0.2"]}

    def dns_reverse(self, network_id, ip):
        return None

    def dns_forwards(self, network_id):
        return self.forwards[network_id]


@pytest.fixture
def service(monkeypatch):
    """DnsService on its own loop thread, a fake upstream resolver; yields (service, upstream)."""
    upstream, upstream_ip = loopback_udp53()
    upstream.settimeout(0.2)
    asked: list[bytes] = []
    stop = threading.Event()

    def resolve():
        while not stop.is_set():
            try:
                data, addr = upstream.recvfrom(512)
            except socket.timeout:
                continue
            asked.append(data)
            q = dns.parse_question(data)
            upstream.sendto(dns.reply(data, q[4], [(dns.QTYPE_A, socket.inet_aton("192.0.2.7"))]), addr)

    resolver = threading.Thread(target=resolve, daemon=True)
    resolver.start()
    monkeypatch.setattr(dns, "upstream_servers", lambda: [upstream_ip])
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    svc = dns.DnsService(loop, FakeManager({"open": True, "internal": False}))
    try:
        yield svc, asked
    finally:
        loop.call_soon_threadsafe(svc.close_all)
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()
        stop.set()
        resolver.join(5)   # before the close: a recvfrom on a closed socket is EBADF
        upstream.close()


def ask(server_ip: str, msg: bytes, timeout: float = 5) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
        c.settimeout(timeout)
        c.sendto(msg, (server_ip, 53))
        return c.recv(512)


def listen(svc, network_id: str) -> str:
    s, ip = loopback_udp53()   # a free address; the service binds it itself
    s.close()
    svc.listen(network_id, ip)
    return ip


def test_unknown_names_are_forwarded_and_relayed_unchanged(service):
    svc, asked = service
    ip = listen(svc, "open")
    local = ask(ip, query("db"))
    assert local[-4:] == socket.inet_aton("10.1.0.2") and asked == []   # ours: answered, not forwarded
    q = query("example.org", qid=0x1111)
    answer = ask(ip, q)
    assert asked == [q]
    assert answer == dns.reply(q, dns.parse_question(q)[4], [(dns.QTYPE_A, socket.inet_aton("192.0.2.7"))])


def test_internal_networks_forward_nothing(service):
    svc, asked = service
    ip = listen(svc, "internal")
    answer = ask(ip, query("example.org"))
    assert answer[3] & 0xF == 2 and asked == []   # SERVFAIL at once
    assert ask(ip, query("db"))[-4:] == socket.inet_aton("10.1.0.2")


def test_a_resolver_that_does_not_answer_gives_servfail(service, monkeypatch):
    svc, asked = service
    silent, silent_ip = loopback_udp53()   # bound, never answers
    try:
        monkeypatch.setattr(dns, "upstream_servers", lambda: [silent_ip])
        monkeypatch.setattr(dns, "FORWARD_TIMEOUT", 0.3)
        ip = listen(svc, "open")
        answer = ask(ip, query("example.org", qid=0x2222))
        assert answer[:2] == b"\x22\x22" and answer[3] & 0xF == 2
        silent.settimeout(1)
        assert silent.recv(512)   # it was asked
    finally:
        silent.close()

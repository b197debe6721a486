"""The DNS server of user-defined networks, on each network's gateway address.

One UDP socket per network, bound to <gateway>:53 and served on the
daemon's event loop. It answers A (and empty AAAA) for the names of
containers on that network (name, short id, aliases), PTR for their
addresses, and forwards every other question to the host's resolvers,
relaying the answer unchanged (SERVFAIL if none answers); on Internal
networks nothing is forwarded.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
from typing import Callable

from dockyard.network.etcfiles import parse_resolv_conf, read_host_resolv_conf

log = logging.getLogger(__name__)

QTYPE_A, QTYPE_PTR, QTYPE_AAAA = 1, 12, 28
TTL = 600
FORWARD_TIMEOUT = 3.0
IP_FREEBIND = 15


def parse_question(msg: bytes) -> tuple[int, int, str, int, int] | None:
    """(id, flags, name, qtype, end of question) of a one-question query, or None."""
    if len(msg) < 12:
        return None
    qid, flags, qdcount = struct.unpack_from("!HHH", msg)
    if flags & 0x8000 or qdcount != 1:
        return None
    labels, i = [], 12
    while True:
        if i >= len(msg):
            return None
        n = msg[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0:
            return None
        labels.append(msg[i + 1: i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    if i + 4 > len(msg):
        return None
    qtype, _qclass = struct.unpack_from("!HH", msg, i)
    return qid, flags, ".".join(labels), qtype, i + 4


def _encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        b = label.encode()[:63]
        out += bytes([len(b)]) + b
    return out + b"\0"


def reply(query: bytes, qend: int, answers: list[tuple[int, bytes]], rcode: int = 0) -> bytes:
    """A response to query: its question, then answers (type, rdata) naming it by pointer."""
    qid, flags = struct.unpack_from("!HH", query)
    rd = flags & 0x0100
    head = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x0080 | rcode, 1, len(answers), 0, 0)
    body = query[12:qend]
    for rtype, rdata in answers:
        body += struct.pack("!HHHIH", 0xC00C, rtype, 1, TTL, len(rdata)) + rdata
    return head + body


def _ptr_ip(name: str) -> str | None:
    parts = name.lower().rstrip(".").split(".")
    if len(parts) == 6 and parts[4:] == ["in-addr", "arpa"]:
        return ".".join(reversed(parts[:4]))
    return None


def answer_locally(query: bytes, names: Callable[[], dict[str, list[str]]],
                   reverse: Callable[[str], str | None]) -> bytes | None:
    """The response when the question is about this network, else None (forward it)."""
    q = parse_question(query)
    if q is None:
        return None
    _, _, name, qtype, qend = q
    key = name.lower().rstrip(".")
    if qtype == QTYPE_PTR:
        ip = _ptr_ip(key)
        target = reverse(ip) if ip else None
        return reply(query, qend, [(QTYPE_PTR, _encode_name(target))]) if target else None
    ips = names().get(key)
    if not ips:
        return None
    if qtype == QTYPE_A:
        return reply(query, qend, [(QTYPE_A, socket.inet_aton(ip)) for ip in ips])
    return reply(query, qend, [])   # the name is ours, it has no records of this type (e.g. AAAA)


def upstream_servers() -> list[str]:
    """The host's resolvers; loopback ones are fine, the daemon runs on the host."""
    servers = []
    for ns in parse_resolv_conf(read_host_resolv_conf())[0]:
        try:
            ipaddress.IPv4Address(ns)
            servers.append(ns)
        except ValueError:
            pass
    return servers


class _Forward(asyncio.DatagramProtocol):
    def __init__(self, done: asyncio.Future):
        self.done = done

    def datagram_received(self, data, addr) -> None:
        if not self.done.done():
            self.done.set_result(data)


class _Server(asyncio.DatagramProtocol):
    def __init__(self, service: "DnsService", network_id: str):
        self.service, self.network_id = service, network_id
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        nm = self.service.manager
        try:
            out = answer_locally(data, lambda: nm.dns_names(self.network_id, addr[0]),
                                 lambda ip: nm.dns_reverse(self.network_id, ip))
        except Exception:
            log.exception("DNS query on network %s", self.network_id[:12])
            out = None
        if out is not None:
            self.transport.sendto(out, addr)
        elif (q := parse_question(data)) is not None:
            if nm.dns_forwards(self.network_id):
                self.service.spawn(self._forward(data, addr))
            else:   # internal networks keep their questions to themselves
                self.transport.sendto(reply(data, q[4], [], rcode=2), addr)

    async def _forward(self, data: bytes, addr) -> None:
        loop = asyncio.get_running_loop()
        for server in upstream_servers():
            done = loop.create_future()
            try:
                transport, _ = await loop.create_datagram_endpoint(lambda: _Forward(done),
                                                                   remote_addr=(server, 53))
            except OSError:
                continue
            try:
                transport.sendto(data)
                answer = await asyncio.wait_for(done, FORWARD_TIMEOUT)
                self.transport.sendto(answer, addr)
                return
            except asyncio.TimeoutError:
                continue
            finally:
                transport.close()
        q = parse_question(data)
        if q is not None:
            self.transport.sendto(reply(data, q[4], [], rcode=2), addr)   # SERVFAIL


class DnsService:
    """The listeners of all user networks; thread-safe to call from the manager's worker threads."""

    def __init__(self, loop: asyncio.AbstractEventLoop, manager):
        self.loop, self.manager = loop, manager
        self._transports: dict[str, asyncio.DatagramTransport] = {}
        self._tasks: set = set()

    def spawn(self, coro) -> None:
        t = self.loop.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def listen(self, network_id: str, address: str) -> None:
        """Bind <address>:53 now (errors surface to the caller), serve it on the loop."""
        if network_id in self._transports:
            return
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
            s.bind((address, 53))
            s.setblocking(False)
        except OSError:
            s.close()
            raise

        async def serve() -> None:
            transport, _ = await self.loop.create_datagram_endpoint(lambda: _Server(self, network_id), sock=s)
            self._transports[network_id] = transport

        self._run(serve())

    def close(self, network_id: str) -> None:
        async def stop() -> None:
            t = self._transports.pop(network_id, None)
            if t is not None:
                t.close()
        self._run(stop())

    def close_all(self) -> None:
        for t in self._transports.values():
            t.close()
        self._transports.clear()

    def _run(self, coro) -> None:
        """Run on the loop; wait for it when called from another thread."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.spawn(coro)
        else:
            asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

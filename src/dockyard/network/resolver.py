"""The embedded DNS server at 127.0.0.11 inside each container on a user network, as Docker's.

Per container, a UDP and a TCP socket are bound to 127.0.0.11 on ports the
kernel picks, inside the container's network namespace, and an nftables
table there (`dockyard-dns`) DNATs 127.0.0.11:53 to them, as Docker does with
iptables: port 53 stays free for the container's own servers. Both sockets
are served on the daemon's event loop.

It answers A and AAAA for the names on the container's user networks
(container names, short ids, aliases, `name.network`), PTR for their
addresses, and forwards every other question, over the protocol it came on,
to the container's `--dns` servers or else the host's resolvers, relaying
the answer unchanged (SERVFAIL when none answers). Forwarding goes out from
the host's namespace, so a resolver on the host's loopback works. A
container only on Internal networks gets no forwarding. The wire format is
dnspython's: EDNS payload sizes honoured, a local answer too big for UDP is
sent truncated (TC) and whole over TCP.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
import struct
from dataclasses import dataclass, field
from typing import Callable, Protocol

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

from dockyard.network import netns, nft
from dockyard.network.etcfiles import parse_resolv_conf, read_host_resolv_conf

log = logging.getLogger(__name__)

ADDRESS = "127.0.0.11"
TABLE = "dockyard-dns"
TTL = 600
FORWARD_TIMEOUT = 3.0
TCP_IDLE = 10.0
UDP_MAX = 512   # without EDNS (RFC 1035)


class Names(Protocol):
    """What the resolver asks the network manager, per container."""

    def dns_names(self, container_id: str) -> dict[str, list[str]]: ...

    def dns_reverse(self, container_id: str, ip: str) -> str | None: ...

    def dns_forwards(self, container_id: str) -> bool: ...


# -- answers -------------------------------------------------------------------

def parse_query(data: bytes) -> dns.message.Message | None:
    """A one-question query, or None (garbage, or a response: never answer those)."""
    try:
        msg = dns.message.from_wire(data, ignore_trailing=True)
    except Exception:   # dnspython raises many kinds for malformed input
        return None
    if msg.flags & dns.flags.QR or msg.opcode() != dns.opcode.QUERY or len(msg.question) != 1:
        return None
    return msg


def _response(query: dns.message.Message, rcode: int = dns.rcode.NOERROR) -> dns.message.Message:
    resp = dns.message.make_response(query, recursion_available=True)
    resp.flags |= dns.flags.AA
    resp.set_rcode(rcode)
    return resp


def max_udp(query: dns.message.Message) -> int:
    """The largest UDP answer the client takes: its EDNS payload size, else 512."""
    return max(UDP_MAX, query.payload) if query.edns >= 0 else UDP_MAX


def wire(resp: dns.message.Message, max_size: int = 65535) -> bytes:
    """The response in at most max_size bytes: truncated with TC set when too big."""
    return resp.to_wire(max_size=max_size, prefer_truncation=True)


def reverse_ip(name: str) -> str | None:
    """The address an in-addr.arpa / ip6.arpa name asks about, or None."""
    try:
        return str(dns.reversename.to_address(dns.name.from_text(name)))
    except Exception:
        return None


def answer_locally(query: dns.message.Message, names: Callable[[], dict[str, list[str]]],
                   reverse: Callable[[str], str | None]) -> dns.message.Message | None:
    """The response when the question is about the container's networks, else None (forward it)."""
    q = query.question[0]
    key = q.name.to_text(omit_final_dot=True).lower()
    if q.rdtype == dns.rdatatype.PTR:
        ip = reverse_ip(key)
        target = reverse(ip) if ip else None
        if not target:
            return None
        resp = _response(query)
        resp.answer.append(dns.rrset.from_text(q.name, TTL, dns.rdataclass.IN, dns.rdatatype.PTR,
                                               target.rstrip(".") + "."))
        return resp
    ips = names().get(key)
    if not ips:
        return None
    resp = _response(query)   # the name is ours: other types have no records (NODATA)
    version = {dns.rdatatype.A: 4, dns.rdatatype.AAAA: 6}.get(q.rdtype)
    found = [ip for ip in ips if ipaddress.ip_address(ip).version == version]
    if found:
        resp.answer.append(dns.rrset.from_text_list(q.name, TTL, dns.rdataclass.IN, q.rdtype, found))
    return resp


def servfail(query: dns.message.Message) -> dns.message.Message:
    return _response(query, dns.rcode.SERVFAIL)


def upstream_servers(configured: list[str] | tuple = ()) -> list[str]:
    """Where other names go: the container's --dns servers, else the host's resolvers
    (loopback and IPv6 ones too: forwarding runs in the host's namespace)."""
    out = []
    for ns in list(configured) or parse_resolv_conf(read_host_resolv_conf())[0]:
        try:
            out.append(str(ipaddress.ip_address(ns.split("%", 1)[0])))
        except ValueError:
            pass
    return out


# -- forwarding ----------------------------------------------------------------

class _Forward(asyncio.DatagramProtocol):
    def __init__(self, done: asyncio.Future, qid: int):
        self.done, self.qid = done, qid

    def datagram_received(self, data, addr) -> None:
        if len(data) >= 2 and struct.unpack_from("!H", data)[0] == self.qid and not self.done.done():
            self.done.set_result(data)


async def forward_udp(data: bytes, qid: int, servers: list[str]) -> bytes | None:
    """The first answer of servers to the query, as it came, or None."""
    loop = asyncio.get_running_loop()
    for server in servers:
        done = loop.create_future()
        try:
            transport, _ = await loop.create_datagram_endpoint(lambda: _Forward(done, qid),
                                                               remote_addr=(server, 53))
        except OSError:
            continue
        try:
            transport.sendto(data)
            return await asyncio.wait_for(done, FORWARD_TIMEOUT)
        except asyncio.TimeoutError:
            continue
        finally:
            transport.close()
    return None


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    (n,) = struct.unpack("!H", await reader.readexactly(2))
    return await reader.readexactly(n)


async def forward_tcp(data: bytes, servers: list[str]) -> bytes | None:
    for server in servers:
        writer = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(server, 53), FORWARD_TIMEOUT)
            writer.write(struct.pack("!H", len(data)) + data)
            return await asyncio.wait_for(_read_frame(reader), FORWARD_TIMEOUT)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            continue
        finally:
            if writer is not None:
                writer.close()
    return None


# -- one container's server ----------------------------------------------------------

@dataclass
class _Listener:
    container_id: str
    servers: list[str]            # the container's --dns ([]: the host's resolvers)
    udp: asyncio.DatagramTransport | None = None
    tcp: asyncio.AbstractServer | None = None
    conns: set = field(default_factory=set)
    closed: bool = False

    def close(self) -> None:
        self.closed = True
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            self.tcp.close()
        for w in list(self.conns):
            w.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, service: "DnsService", listener: _Listener):
        self.service, self.listener = service, listener
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        query = parse_query(data)
        if query is None:
            return
        out = self.service.answer(self.listener, query)
        if out is not None:
            self.transport.sendto(wire(out, max_udp(query)), addr)
        else:
            self.service.spawn(self._forward(data, query, addr))

    async def _forward(self, data: bytes, query: dns.message.Message, addr) -> None:
        answer = await forward_udp(data, query.id, upstream_servers(self.listener.servers))
        if not self.transport.is_closing():
            self.transport.sendto(answer if answer is not None else wire(servfail(query), max_udp(query)), addr)


class DnsService:
    """Every container's resolver; thread-safe to call from the manager's worker threads."""

    def __init__(self, loop: asyncio.AbstractEventLoop, manager: Names):
        self.loop, self.manager = loop, manager
        self._listeners: dict[str, _Listener] = {}
        self._tasks: set = set()

    def spawn(self, coro) -> None:
        t = self.loop.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def listening(self, container_id: str) -> bool:
        return container_id in self._listeners

    def answer(self, listener: _Listener, query: dns.message.Message) -> dns.message.Message | None:
        """Ours, SERVFAIL (nothing forwarded), or None: forward it."""
        cid, nm = listener.container_id, self.manager
        try:
            out = answer_locally(query, lambda: nm.dns_names(cid), lambda ip: nm.dns_reverse(cid, ip))
            if out is None and not nm.dns_forwards(cid):   # Internal networks keep their questions
                out = servfail(query)
        except Exception:
            log.exception("DNS query of %s", cid[:12])
            out = servfail(query)
        return out

    # -- per container --------------------------------------------------------
    def listen(self, container_id: str, netns_path: str, servers: list[str] | tuple = (),
               replace: bool = False) -> None:
        """Blocking (a worker thread): sockets and DNAT rules in the container's namespace, served on the
        loop. `replace` for a namespace that may have rules already (a daemon restart): new sockets, the
        rules replaced (that costs the kernel ~10 ms of RCU grace, so a start does not ask for it)."""
        self.close(container_id)
        udp, tcp = netns.run_in(netns_path, lambda: bind_in_namespace(replace))
        self.serve(container_id, udp, tcp, servers)

    def serve(self, container_id: str, udp: socket.socket, tcp: socket.socket,
              servers: list[str] | tuple = ()) -> None:
        """Serve bound sockets (UDP, listening TCP) for the container; they are the service's now."""
        listener = _Listener(container_id, list(servers))
        self._listeners[container_id] = listener

        async def start() -> None:
            if listener.closed:
                udp.close()
                tcp.close()
                return
            try:
                listener.udp, _ = await self.loop.create_datagram_endpoint(lambda: _Udp(self, listener), sock=udp)
                listener.tcp = await asyncio.start_server(lambda r, w: self._tcp(listener, r, w), sock=tcp)
            except OSError:
                log.exception("DNS listener of %s", container_id[:12])
                listener.close()
                udp.close()
                tcp.close()

        # not waited for: the sockets are bound already, the kernel queues what comes meanwhile
        self.loop.call_soon_threadsafe(self.spawn, start())

    def close(self, container_id: str) -> None:
        listener = self._listeners.pop(container_id, None)
        if listener is not None:
            listener.closed = True
            try:
                self.loop.call_soon_threadsafe(listener.close)
            except RuntimeError:   # the loop is closed (daemon shutdown): nothing is served any more
                pass

    def close_all(self) -> None:
        for listener in self._listeners.values():
            listener.close()
        self._listeners.clear()

    async def _tcp(self, listener: _Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        listener.conns.add(writer)
        try:
            while not listener.closed:
                try:
                    data = await asyncio.wait_for(_read_frame(reader), TCP_IDLE)
                except (asyncio.TimeoutError, asyncio.IncompleteReadError, OSError):
                    return
                query = parse_query(data)
                if query is None:
                    return
                out = self.answer(listener, query)
                if out is not None:
                    answer = wire(out)
                else:
                    answer = await forward_tcp(data, upstream_servers(listener.servers))
                    if answer is None:
                        answer = wire(servfail(query))
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
        except OSError:
            pass
        finally:
            listener.conns.discard(writer)
            writer.close()


# -- inside the container's namespace ------------------------------------------------

def ruleset(udp_port: int, tcp_port: int, replace: bool = False) -> str:
    """127.0.0.11:53 to the listener's ports. `replace`: declared, deleted and made again, atomically
    (deleting a table waits for the kernel's RCU grace period: a fresh namespace has none to delete)."""
    head = f"table ip {TABLE}\ndelete table ip {TABLE}\n" if replace else ""
    return (head +
            f"table ip {TABLE} {{\n"
            f"  chain output {{\n"
            f"    type nat hook output priority -100; policy accept;\n"
            f"    ip daddr {ADDRESS} udp dport 53 dnat to {ADDRESS}:{udp_port}\n"
            f"    ip daddr {ADDRESS} tcp dport 53 dnat to {ADDRESS}:{tcp_port}\n"
            f"  }}\n"
            f"}}\n")


_RULE_PORT = re.compile(rf"ip daddr {re.escape(ADDRESS)} (udp|tcp) dport 53 dnat (?:ip )?to {re.escape(ADDRESS)}:(\d+)")


def existing_ports() -> dict[str, int]:
    """In the container's namespace: the ports the last daemon's rules send 127.0.0.11:53 to."""
    ok, out = nft.run_fresh(f"list table ip {TABLE}", check=False)
    return {proto: int(port) for proto, port in _RULE_PORT.findall(out)} if ok else {}


def bind_in_namespace(replace: bool = False) -> tuple[socket.socket, socket.socket]:
    """Run in the container's namespace: lo is up (the plumbing did it); the sockets, then the rules.
    `replace` (a daemon restart): the ports of the rules there if they are free again, so the rules
    stay as they are; else new ports and the rules replaced."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        old = existing_ports() if replace else {}
        try:
            udp.bind((ADDRESS, old.get("udp", 0)))
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # its old connections' TIME_WAITs
            tcp.bind((ADDRESS, old.get("tcp", 0)))
            kept = len(old) == 2
        except OSError:
            if not old:
                raise
            for s in (udp, tcp):
                s.close()
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
            udp.bind((ADDRESS, 0))
            tcp.bind((ADDRESS, 0))
            kept = False
        tcp.listen(64)
        udp.setblocking(False)
        tcp.setblocking(False)
        if not kept:
            nft.run_fresh(ruleset(udp.getsockname()[1], tcp.getsockname()[1], replace))
    except BaseException:
        udp.close()
        tcp.close()
        raise
    return udp, tcp

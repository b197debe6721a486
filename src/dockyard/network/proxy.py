"""Published ports nftables cannot DNAT: a bind of the family the container has no address of,
and IPv6 loopback (see ports.py).

nftables cannot NAT an IPv6 packet to an IPv4 address, so, like Docker's
docker-proxy, the daemon relays: it listens on the held `[::]:PORT` (or
`[::1]:PORT`, ...) socket and connects to the container's address for
each TCP connection; for UDP it keeps one connected socket per client (30 s
without traffic closes it). The relays run on the daemon's event loop; the
container sees the connection come from its network's gateway, as with
docker-proxy. IPv4 binds stay DNAT in the ports table (ports.py).
"""
from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

UDP_IDLE = 30.0
CHUNK = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, asyncio.CancelledError):
        writer.close()


class _UdpClient(asyncio.DatagramProtocol):
    """The connected socket of one client towards the container; answers go back to the client."""

    def __init__(self, front: "_UdpFront", client):
        self.front, self.client = front, client
        self.transport = None
        self.seen = time.monotonic()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        self.seen = time.monotonic()
        if self.front.transport is not None and not self.front.transport.is_closing():
            self.front.transport.sendto(data, self.client)


class _UdpFront(asyncio.DatagramProtocol):
    def __init__(self, target: tuple[str, int], relay: "_Relay"):
        self.target, self.relay = target, relay
        self.transport = None
        self.clients: dict = {}
        self.pending: dict = {}

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        c = self.clients.get(addr)
        if c is not None and c.transport is not None:
            c.seen = time.monotonic()
            c.transport.sendto(data)
            return
        self.pending.setdefault(addr, []).append(data)
        if len(self.pending[addr]) == 1:
            self.relay.spawn(self._open(addr))

    async def _open(self, addr) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, proto = await loop.create_datagram_endpoint(lambda: _UdpClient(self, addr),
                                                                   remote_addr=self.target)
        except OSError as e:
            log.debug("udp proxy to %s: %s", self.target, e)
            self.pending.pop(addr, None)
            return
        self.clients[addr] = proto
        for data in self.pending.pop(addr, []):
            transport.sendto(data)

    def sweep(self) -> None:
        now = time.monotonic()
        for addr, c in list(self.clients.items()):
            if now - c.seen > UDP_IDLE:
                c.transport.close()
                del self.clients[addr]

    def close(self) -> None:
        for c in self.clients.values():
            c.transport.close()
        self.clients.clear()
        if self.transport is not None:
            self.transport.close()


@dataclass
class _Relay:
    loop: asyncio.AbstractEventLoop
    servers: list = field(default_factory=list)     # asyncio Servers and _UdpFronts
    writers: set = field(default_factory=set)
    tasks: set = field(default_factory=set)
    closed: bool = False

    def spawn(self, coro) -> None:
        t = self.loop.create_task(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    def close(self) -> None:
        self.closed = True
        for s in self.servers:
            s.close()
        for w in list(self.writers):
            w.close()
        for t in list(self.tasks):
            t.cancel()


class PortProxy:
    """The relays of every container's IPv6 binds; called from the manager's worker threads."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self._relays: dict[str, _Relay] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def serve(self, container_id: str, proto: str, sock: socket.socket, target: tuple[str, int]) -> None:
        """Relay what comes to `sock` (a bound IPv6 socket, now the proxy's) to the container's target."""
        relay = self._relays.setdefault(container_id, _Relay(self.loop))
        sock.setblocking(False)

        async def start() -> None:
            if relay.closed:
                sock.close()
                return
            try:
                if proto == "tcp":
                    sock.listen(128)
                    server = await asyncio.start_server(lambda r, w: self._tcp(relay, target, r, w), sock=sock)
                else:
                    server = _UdpFront(target, relay)
                    await self.loop.create_datagram_endpoint(lambda: server, sock=sock)
                    self._sweep_later()
                relay.servers.append(server)
                if relay.closed:   # closed while it was starting
                    server.close()
            except OSError:
                log.exception("port proxy for %s", container_id[:12])
                sock.close()

        self.loop.call_soon_threadsafe(relay.spawn, start())

    async def _tcp(self, relay: _Relay, target: tuple[str, int], reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> None:
        relay.writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            relay.writers.discard(writer)
            return
        relay.writers.add(up_writer)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()
                relay.writers.discard(w)

    def _sweep_later(self) -> None:
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(UDP_IDLE / 2, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        fronts = [s for r in self._relays.values() for s in r.servers if isinstance(s, _UdpFront)]
        for f in fronts:
            f.sweep()
        if fronts:
            self._sweep_later()

    def close(self, container_id: str) -> None:
        """Stop the container's relays; from a worker thread this waits until their sockets are closed,
        so the ports are free again for the next start."""
        relay = self._relays.pop(container_id, None)
        if relay is None:
            return
        relay.closed = True
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            relay.close()
            return

        async def close() -> None:
            relay.close()
            for _ in range(3):   # a transport's socket closes in a callback of the next iteration
                await asyncio.sleep(0)
        try:
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        except Exception:   # a stopped loop (shutdown): its sockets are closed with it
            log.debug("port proxy of %s: close not confirmed", container_id[:12])

    def close_all(self) -> None:
        for relay in self._relays.values():
            relay.close()
        self._relays.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()

"""Publishing a container's ports: pick and hold host ports, record them, add
the DNAT elements of both families (network/ports.py has the tables and the rules); all or
nothing, undone by `unpublish`, restored by `restore` after a daemon restart.

As Docker 28 with ip6tables and docker-proxy: an IPv6 bind of a container with an IPv6 address is
DNAT to that address, and the port proxy (proxy.py) serves its socket for what DNAT cannot reach
(::1); a bind of the family the container lacks is only relayed, the proxy translating."""
from __future__ import annotations

import socket
from typing import Protocol

from dockyard.errors import InvalidParameter
from dockyard.network import conntrack, ports
from dockyard.network.rtnl import Rtnl


class PortRelay(Protocol):
    """network.proxy.PortProxy as the publisher uses it."""

    def serve(self, container_id: str, proto: str, sock: socket.socket, target: tuple[str, int]) -> None: ...

    def close(self, container_id: str) -> None: ...

    def close_all(self) -> None: ...


class Publisher:
    def __init__(self, store, table: str):
        self.store, self.table = store, table
        self.proxy: PortRelay | None = None              # IPv6 binds (network.proxy.PortProxy), from setup()
        self._held: dict[str, list[socket.socket]] = {}   # bound host ports, per container

    def _addresses(self, host_ip: str) -> list[str]:
        """The rows' host addresses of a binding: IPv6 only where this host and the proxy have it."""
        out = ports.families(host_ip)
        if host_ip == "" and (self.proxy is None or not ports.ipv6_enabled()):
            out = [""]
        if any(ports.is_v6(a) for a in out) and self.proxy is None:
            raise InvalidParameter(f"cannot publish on {host_ip}: IPv6 binds need the daemon's port proxy")
        return out

    def _hold_all(self, proto: str, addresses: list[str], port: int) -> list[socket.socket] | None:
        """The port on every address, or None (nothing kept) if one has it taken."""
        got: list[socket.socket] = []
        for addr in addresses:
            s = ports.hold(proto, addr, port)
            if s is None:
                for g in got:
                    g.close()
                return None
            got.append(s)
        return got

    def publish(self, container_id: str, container_ip: str | None, bindings: list,
                host_veth: str | None = None, container_ip6: str | None = None) -> list[tuple]:
        """Returns rows (proto, host_ip, host_port, container_ip, container_port); a row's container_ip
        is of its host address's family when the container has that family (ports.target_for)."""
        held: list[tuple[str, socket.socket]] = []     # (row host address, socket)
        rows: list[tuple] = []
        taken: set[tuple[str, int]] = set()   # the published ports in the bindings' ranges, not all of them
        lo, hi = ports.ephemeral_range()
        try:
            for b in bindings:
                addresses = self._addresses(b.host_ip)
                candidates = range(b.host_port, b.host_port_end + 1) if b.host_port else range(lo, hi + 1)
                if candidates:
                    taken |= {(b.proto, p) for p in self.store.taken_ports(b.proto, candidates[0], candidates[-1])}
                for port in candidates:
                    if (b.proto, port) in taken:
                        continue
                    got = self._hold_all(b.proto, addresses, port)
                    if got is not None:
                        break
                else:
                    shown = b.host_ip if b.host_ip and not ports.is_v6(b.host_ip) else \
                        f"[{b.host_ip}]" if b.host_ip else "0.0.0.0"
                    where = f"{shown}:{b.host_port}" if b.host_port else "the ephemeral range"
                    if b.host_port and b.host_port == b.host_port_end:
                        raise InvalidParameter(f"driver failed programming external connectivity: Bind for "
                                               f"{where} failed: port is already allocated")
                    raise InvalidParameter(f"no free host port for {b.container_port}/{b.proto} in {where}")
                held += zip(addresses, got)
                taken.add((b.proto, port))
                rows += [(b.proto, addr, port, ports.target_for(addr, container_ip, container_ip6), b.container_port)
                         for addr in addresses]
            self.store.save_ports(container_id, rows)
            try:
                if host_veth:   # hairpin: see Rtnl.set_bridge_port
                    with Rtnl() as host:
                        host.set_bridge_port(name=host_veth, hairpin=True)
                ports.add_elements(self.table, rows)
                conntrack.forget_udp([r for r in rows if ports.dnat(r)])   # flows that predate the DNAT
            except Exception:
                self.store.forget_ports(container_id)
                raise
        except BaseException:
            for _, s in held:
                s.close()
            raise
        self._keep(container_id, rows, [s for _, s in held])
        return rows

    def _keep(self, container_id: str, rows: list[tuple], socks: list[socket.socket]) -> None:
        """Sockets of DNAT-only rows just hold their port; the others go to the proxy, which relays to
        the container (ports.relayed)."""
        kept = []
        for row, s in zip(rows, socks):
            if ports.relayed(row) and self.proxy is not None:
                self.proxy.serve(container_id, row[0], s, (row[3], row[4]))
            else:
                kept.append(s)
        self._held[container_id] = kept

    def published(self, container_id: str) -> list[tuple]:
        return [(r["proto"], r["host_ip"], r["host_port"], r["container_ip"], r["container_port"])
                for r in self.store.ports(container_id)]

    def unpublish(self, container_id: str) -> None:
        rows = self.published(container_id)
        if rows:
            ports.delete_elements(self.table, rows)
            self.store.forget_ports(container_id)
        if self.proxy is not None:
            self.proxy.close(container_id)
        for s in self._held.pop(container_id, []):
            s.close()

    def restore(self, live: set[str]) -> None:
        """After a restart: forget the ports of containers that are gone; put back the rules
        (setup made the table afresh), hold the ports again and relay the IPv6 ones for the live ones."""
        for r in self.store.ports():
            if r["container_id"] not in live:
                self.store.forget_ports(r["container_id"])
        for cid in live:
            rows = self.published(cid)
            if rows:
                ports.add_elements(self.table, rows)
                conntrack.forget_udp([r for r in rows if ports.dnat(r)])
                kept = [(r, s) for r, s in ((r, ports.hold(r[0], r[1], r[2])) for r in rows) if s is not None]
                self._keep(cid, [r for r, _ in kept], [s for _, s in kept])

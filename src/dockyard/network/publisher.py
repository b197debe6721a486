"""Publishing a container's ports: pick and hold host ports, record them, add
the DNAT elements (network/ports.py has the table and the rules); all or
nothing, undone by `unpublish`, restored by `restore` after a daemon restart."""
from __future__ import annotations

import socket

from dockyard.errors import InvalidParameter
from dockyard.network import conntrack, ports
from dockyard.network.rtnl import Rtnl


class Publisher:
    def __init__(self, store, table: str):
        self.store, self.table = store, table
        self._held: dict[str, list[socket.socket]] = {}   # bound host ports, per container

    def publish(self, container_id: str, container_ip: str, bindings: list,
                host_veth: str | None = None) -> list[tuple]:
        """Returns rows (proto, host_ip, host_port, container_ip, container_port)."""
        held: list[socket.socket] = []
        rows: list[tuple] = []
        taken = {(r["proto"], r["host_port"]) for r in self.store.ports()}
        lo, hi = ports.ephemeral_range()
        try:
            for b in bindings:
                candidates = range(b.host_port, b.host_port_end + 1) if b.host_port else range(lo, hi + 1)
                for port in candidates:
                    if (b.proto, port) in taken:
                        continue
                    s = ports.hold(b.proto, b.host_ip, port)
                    if s is not None:
                        break
                else:
                    where = f"{b.host_ip or '0.0.0.0'}:{b.host_port}" if b.host_port else "the ephemeral range"
                    if b.host_port and b.host_port == b.host_port_end:
                        raise InvalidParameter(f"driver failed programming external connectivity: Bind for "
                                               f"{where} failed: port is already allocated")
                    raise InvalidParameter(f"no free host port for {b.container_port}/{b.proto} in {where}")
                held.append(s)
                taken.add((b.proto, port))
                rows.append((b.proto, b.host_ip, port, container_ip, b.container_port))
            self.store.save_ports(container_id, rows)
            try:
                if host_veth:   # hairpin: see Rtnl.set_bridge_port
                    with Rtnl() as host:
                        host.set_bridge_port(name=host_veth, hairpin=True)
                ports.add_elements(self.table, rows)
                conntrack.forget_udp(rows)   # flows that predate the DNAT would bypass it
            except Exception:
                self.store.forget_ports(container_id)
                raise
        except BaseException:
            for s in held:
                s.close()
            raise
        self._held[container_id] = held
        return rows

    def published(self, container_id: str) -> list[tuple]:
        return [(r["proto"], r["host_ip"], r["host_port"], r["container_ip"], r["container_port"])
                for r in self.store.ports(container_id)]

    def unpublish(self, container_id: str) -> None:
        rows = self.published(container_id)
        if rows:
            ports.delete_elements(self.table, rows)
            self.store.forget_ports(container_id)
        for s in self._held.pop(container_id, []):
            s.close()

    def restore(self, live: set[str]) -> None:
        """After a restart: forget the ports of containers that are gone; put back the rules
        (setup made the table afresh) and hold the ports again for the live ones."""
        for r in self.store.ports():
            if r["container_id"] not in live:
                self.store.forget_ports(r["container_id"])
        for cid in live:
            rows = self.published(cid)
            if rows:
                ports.add_elements(self.table, rows)
                conntrack.forget_udp(rows)
                self._held[cid] = [s for s in (ports.hold(r[0], r[1], r[2]) for r in rows) if s is not None]

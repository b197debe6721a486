"""SQLite tables for networks, endpoints and IP allocations.

Kept in the daemon's database so a restarted daemon knows which addresses
are taken and which namespaces and veths are its own.
"""
from __future__ import annotations

import contextlib
import json
import secrets
import threading
from datetime import datetime, timezone
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from typing import Iterator

from dockyard.errors import Conflict, InvalidParameter, Unavailable
from dockyard.network.endpoint import Endpoint
from dockyard.network.ipam import AddressPool
from dockyard.network.record import NetworkRecord
from dockyard.store.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    driver   TEXT NOT NULL,
    bridge   TEXT,
    subnet   TEXT,
    gateway  TEXT,
    created  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ip_allocations (
    network_id    TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    ip            TEXT NOT NULL,
    container_id  TEXT NOT NULL,
    PRIMARY KEY (network_id, ip)
);
CREATE INDEX IF NOT EXISTS ip_allocations_by_container ON ip_allocations(container_id);
CREATE TABLE IF NOT EXISTS network_config (
    network_id  TEXT PRIMARY KEY REFERENCES networks(id) ON DELETE CASCADE,
    config      TEXT NOT NULL          -- JSON: Internal, Attachable, Labels, Options, IPAM, ...
);
CREATE TABLE IF NOT EXISTS attachments (
    container_id  TEXT NOT NULL,
    network       TEXT NOT NULL,
    network_id    TEXT NOT NULL,
    netns_path    TEXT NOT NULL,
    ip            TEXT,
    prefixlen     INTEGER,
    gateway       TEXT,
    mac           TEXT,
    host_veth     TEXT,
    subnet        TEXT,
    hostname      TEXT,
    ifname        TEXT NOT NULL DEFAULT 'eth0',
    aliases       TEXT NOT NULL DEFAULT '[]',   -- JSON list: DNS names besides the container's
    name          TEXT,
    links         TEXT NOT NULL DEFAULT '[]',   -- JSON list of [alias, target]: the container's legacy links
    ip6           TEXT,
    ip6_prefixlen INTEGER,
    gateway6      TEXT,
    PRIMARY KEY (container_id, network_id)
);
CREATE TABLE IF NOT EXISTS published_ports (
    container_id    TEXT NOT NULL,
    proto           TEXT NOT NULL,
    host_ip         TEXT NOT NULL,
    host_port       INTEGER NOT NULL,
    container_ip    TEXT NOT NULL,
    container_port  INTEGER NOT NULL,
    PRIMARY KEY (proto, host_ip, host_port)
);
-- a container's rows are read and dropped at every stop: no scan of everyone's
CREATE INDEX IF NOT EXISTS published_ports_by_container ON published_ports(container_id);
CREATE INDEX IF NOT EXISTS attachments_by_network ON attachments(network_id);
"""
# Before user networks a container had at most one endpoint, keyed by container.
_LEGACY = "SELECT name FROM sqlite_master WHERE type='table' AND name='endpoints'"
_MIGRATE = """
INSERT OR IGNORE INTO attachments (container_id, network, network_id, netns_path, ip, prefixlen,
    gateway, mac, host_veth, subnet, hostname)
SELECT container_id, network, network_id, netns_path, ip, prefixlen, gateway, mac, host_veth,
    subnet, hostname FROM endpoints;
DROP TABLE endpoints;
"""


def _int(ip: str) -> int:
    return int(IPv6Address(ip) if ":" in ip else IPv4Address(ip))


class NetworkStore:
    def __init__(self, db: Database):
        self.db = db
        # (network id, IPv6?) -> its allocations of that family as integers, loaded at the network's first
        # allocation and kept in step with every change of ip_allocations below: an allocation costs the
        # same with one container on the network or a thousand (no read and parse of all its rows per start)
        self._used: dict[tuple[str, bool], set[int]] = {}
        self._used_lock = threading.RLock()
        # bumped whenever a network is made, renamed or removed: what shows a network's name or
        # id (a listing's cached rows) is current while this has not moved
        self.generation = 0
        db.ensure_schema(SCHEMA)
        have = {r["name"] for r in db.query("PRAGMA table_info(attachments)")}
        for col, kind in (("ip6", "TEXT"), ("ip6_prefixlen", "INTEGER"), ("gateway6", "TEXT")):
            if col not in have:   # a database from before IPv6 networks
                db.execute(f"ALTER TABLE attachments ADD COLUMN {col} {kind}")
        if db.one(_LEGACY) is not None:
            db.ensure_schema(_MIGRATE)
        if not any(r["name"] == "links" for r in db.query("PRAGMA table_info(attachments)")):
            db.execute("ALTER TABLE attachments ADD COLUMN links TEXT NOT NULL DEFAULT '[]'")

    # -- networks --------------------------------------------------------
    def network(self, name: str) -> NetworkRecord | None:
        return self._record(self.db.one("SELECT * FROM networks WHERE name = ?", (name,)))

    def save_network(self, name: str, driver: str, bridge: str | None = None,
                     subnet: str | None = None, gateway: str | None = None) -> str:
        """Insert or update by name; the id is made once and then stays stable."""
        self.generation += 1
        with self.db.transaction() as conn:
            row = conn.execute("SELECT id FROM networks WHERE name = ?", (name,)).fetchone()
            if row is not None:
                conn.execute("UPDATE networks SET driver=?, bridge=?, subnet=?, gateway=? WHERE id=?",
                             (driver, bridge, subnet, gateway, row["id"]))
                return row["id"]
            network_id = secrets.token_hex(32)
            conn.execute("INSERT INTO networks (id, name, driver, bridge, subnet, gateway, created)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (network_id, name, driver, bridge, subnet, gateway,
                          datetime.now(timezone.utc).isoformat()))
            return network_id

    def network_by_id(self, network_id: str) -> NetworkRecord | None:
        return self._record(self.db.one("SELECT * FROM networks WHERE id = ?", (network_id,)))

    def networks_by_id_prefix(self, prefix: str) -> list[NetworkRecord]:
        rows = self.db.query("SELECT * FROM networks WHERE substr(id, 1, ?) = ? ORDER BY created",
                             (len(prefix), prefix))
        return [r for r in map(self._record, rows) if r is not None]

    def networks(self) -> list[NetworkRecord]:
        configs = {r["network_id"]: json.loads(r["config"])
                   for r in self.db.query("SELECT network_id, config FROM network_config")}
        return [NetworkRecord.from_row(r, configs.get(r["id"], {}))
                for r in self.db.query("SELECT * FROM networks ORDER BY created")]

    def _record(self, row) -> NetworkRecord | None:
        return NetworkRecord.from_row(row, self.network_config(row["id"])) if row is not None else None

    def set_network_config(self, network_id: str, config: dict) -> None:
        self.db.execute("INSERT OR REPLACE INTO network_config (network_id, config) VALUES (?, ?)",
                        (network_id, json.dumps(config)))

    def network_config(self, network_id: str) -> dict:
        row = self.db.one("SELECT config FROM network_config WHERE network_id = ?", (network_id,))
        return json.loads(row["config"]) if row is not None else {}

    def create_network(self, network_id: str, name: str, bridge: str, subnet: str, gateway: str,
                       config: dict) -> str:
        """Insert a user-defined network; the name must be free (Conflict otherwise)."""
        self.generation += 1
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM networks WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"network with name {name} already exists")
            conn.execute("INSERT INTO networks (id, name, driver, bridge, subnet, gateway, created)"
                         " VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (network_id, name, "bridge", bridge, subnet, gateway,
                          datetime.now(timezone.utc).isoformat()))
            conn.execute("INSERT INTO network_config (network_id, config) VALUES (?, ?)",
                         (network_id, json.dumps(config)))
        return network_id

    def delete_network(self, network_id: str) -> None:
        self.generation += 1
        with self._allocations() as conn:
            self._used.pop((network_id, False), None)
            self._used.pop((network_id, True), None)
            conn.execute("DELETE FROM ip_allocations WHERE network_id = ?", (network_id,))
            conn.execute("DELETE FROM network_config WHERE network_id = ?", (network_id,))
            conn.execute("DELETE FROM networks WHERE id = ?", (network_id,))

    # -- addresses -------------------------------------------------------
    def allocate_ip(self, network_id: str, subnet: str, gateway: str, container_id: str,
                    requested: str | None = None, ip_range: str | None = None,
                    reserved: list[str] | tuple = ()) -> str:
        """Pick and record an address in one transaction, so concurrent callers never collide;
        `reserved` (IPAM auxiliary addresses) are never handed out."""
        with self._allocations() as conn:
            used = self._index(conn, network_id, False)
            # the pool works on the index itself (a failure below drops the whole index: _allocations),
            # on a copy when reserved addresses join it (they are no allocations)
            pool = AddressPool(subnet, gateway, reserved, ip_range, used_ints=set(used) if reserved else used)
            ip = str(pool.allocate(requested))
            conn.execute("INSERT INTO ip_allocations (network_id, ip, container_id) VALUES (?, ?, ?)",
                         (network_id, ip, container_id))
            used.add(_int(ip))
            return ip

    @contextlib.contextmanager
    def _allocations(self) -> Iterator:
        """A transaction that changes ip_allocations (and the index with it): should it fail, even at
        COMMIT, the index is dropped and loaded again from what the database kept."""
        with self._used_lock:
            try:
                with self.db.transaction() as conn:
                    yield conn
            except BaseException:
                self._used.clear()
                raise

    def _index(self, conn, network_id: str, v6: bool) -> set[int]:
        used = self._used.get((network_id, v6))
        if used is None:
            used = {_int(r["ip"]) for r in conn.execute(
                "SELECT ip FROM ip_allocations WHERE network_id = ?", (network_id,)) if (":" in r["ip"]) == v6}
            self._used[(network_id, v6)] = used
        return used

    def _unindex(self, conn, where: str, args: tuple) -> None:
        """Before deleting the allocations `where` selects (by container: indexed): out of the index."""
        for r in conn.execute(f"SELECT network_id, ip FROM ip_allocations WHERE {where}", args):
            used = self._used.get((r["network_id"], ":" in r["ip"]))
            if used is not None:
                used.discard(_int(r["ip"]))

    def allocate_ip6(self, network_id: str, subnet: str, gateway: str, container_id: str,
                     requested: str | None = None) -> str:
        """An IPv6 address of the network's IPv6 subnet: the one requested, else the lowest free one."""
        net = IPv6Network(subnet)
        with self._allocations() as conn:
            used = self._index(conn, network_id, True)
            gw = int(IPv6Address(gateway))
            if requested is not None:
                ip = IPv6Address(requested)
                if ip not in net:
                    raise InvalidParameter(f"invalid address {requested}: It does not belong to any of this "
                                           "network's subnets")
                if int(ip) in used or int(ip) == gw:
                    raise Conflict(f"Address already in use: {requested}")
            else:
                base = int(net.network_address)
                ip = next((IPv6Address(base + i) for i in range(1, min(net.num_addresses, 1 << 20))
                           if base + i not in used and base + i != gw), None)
                if ip is None:
                    raise Unavailable(f"no available IPv6 addresses on this network's address pools: {subnet}")
            conn.execute("INSERT INTO ip_allocations (network_id, ip, container_id) VALUES (?, ?, ?)",
                         (network_id, str(ip), container_id))
            used.add(int(ip))
            return str(ip)

    def release_ips(self, container_id: str) -> None:
        with self._allocations() as conn:
            self._unindex(conn, "container_id = ?", (container_id,))
            conn.execute("DELETE FROM ip_allocations WHERE container_id = ?", (container_id,))

    def allocation_owners(self) -> set[str]:
        return {r["container_id"] for r in self.db.query("SELECT DISTINCT container_id FROM ip_allocations")}

    # -- endpoints -------------------------------------------------------
    def save_endpoint(self, ep: Endpoint) -> None:
        row = ep.as_row()
        cols = ", ".join(row)
        self.db.execute(f"INSERT INTO attachments ({cols}) VALUES ({', '.join('?' * len(row))})",
                        tuple(row.values()))

    def endpoint(self, container_id: str, network_id: str | None = None) -> Endpoint | None:
        """The container's endpoint on network_id, or its first one (eth0)."""
        if network_id is not None:
            row = self.db.one("SELECT * FROM attachments WHERE container_id = ? AND network_id = ?",
                              (container_id, network_id))
        else:
            row = self.db.one("SELECT * FROM attachments WHERE container_id = ? ORDER BY ifname LIMIT 1",
                              (container_id,))
        return Endpoint.from_row(row) if row is not None else None

    def endpoints(self, container_id: str | None = None, network_id: str | None = None) -> list[Endpoint]:
        sql, args = "SELECT * FROM attachments", []
        where = []
        if container_id is not None:
            where.append("container_id = ?")
            args.append(container_id)
        if network_id is not None:
            where.append("network_id = ?")
            args.append(network_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [Endpoint.from_row(r) for r in self.db.query(sql + " ORDER BY ifname", tuple(args))]

    def forget(self, container_id: str, network_id: str | None = None) -> None:
        """Drop endpoint(s) and their addresses together (all of the container's when network_id is None)."""
        with self._allocations() as conn:
            if network_id is None:
                self._unindex(conn, "container_id = ?", (container_id,))
                conn.execute("DELETE FROM ip_allocations WHERE container_id = ?", (container_id,))
                conn.execute("DELETE FROM attachments WHERE container_id = ?", (container_id,))
                conn.execute("DELETE FROM published_ports WHERE container_id = ?", (container_id,))
            else:
                self._unindex(conn, "container_id = ? AND network_id = ?", (container_id, network_id))
                conn.execute("DELETE FROM ip_allocations WHERE container_id = ? AND network_id = ?",
                             (container_id, network_id))
                conn.execute("DELETE FROM attachments WHERE container_id = ? AND network_id = ?",
                             (container_id, network_id))

    def release_ip(self, container_id: str, network_id: str) -> None:
        with self._allocations() as conn:
            self._unindex(conn, "container_id = ? AND network_id = ?", (container_id, network_id))
            conn.execute("DELETE FROM ip_allocations WHERE container_id = ? AND network_id = ?",
                         (container_id, network_id))

    # -- published ports -------------------------------------------------
    def save_ports(self, container_id: str, rows: list[tuple]) -> None:
        """rows: (proto, host_ip, host_port, container_ip, container_port); all or nothing."""
        with self.db.transaction() as conn:
            for r in rows:
                conn.execute("INSERT INTO published_ports (container_id, proto, host_ip, host_port,"
                             " container_ip, container_port) VALUES (?, ?, ?, ?, ?, ?)", (container_id, *r))

    def taken_ports(self, proto: str, lo: int, hi: int) -> set[int]:
        """The host ports from lo to hi published for proto (on any address)."""
        return {r["host_port"] for r in self.db.query(
            "SELECT host_port FROM published_ports WHERE proto = ? AND host_port BETWEEN ? AND ?", (proto, lo, hi))}

    def ports(self, container_id: str | None = None) -> list:
        if container_id is None:
            return self.db.query("SELECT * FROM published_ports")
        return self.db.query("SELECT * FROM published_ports WHERE container_id = ?", (container_id,))

    def forget_ports(self, container_id: str) -> None:
        self.db.execute("DELETE FROM published_ports WHERE container_id = ?", (container_id,))

"""SQLite tables for networks, endpoints and IP allocations.

Kept in the daemon's database so a restarted daemon knows which addresses
are taken and which namespaces and veths are its own.
"""
from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone

from dockyard.errors import Conflict
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


class NetworkStore:
    def __init__(self, db: Database):
        self.db = db
        db.ensure_schema(SCHEMA)
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

    def networks(self) -> list[NetworkRecord]:
        configs = {r["network_id"]: json.loads(r["config"])
                   for r in self.db.query("SELECT network_id, config FROM network_config")}
        return [NetworkRecord.from_row(r, configs.get(r["id"], {}))
                for r in self.db.query("SELECT * FROM networks ORDER BY created")]

    def _record(self, row) -> NetworkRecord | None:
        return NetworkRecord.from_row(row, self.network_config(row["id"])) if row is not None else None

    def network_config(self, network_id: str) -> dict:
        row = self.db.one("SELECT config FROM network_config WHERE network_id = ?", (network_id,))
        return json.loads(row["config"]) if row is not None else {}

    def create_network(self, network_id: str, name: str, bridge: str, subnet: str, gateway: str,
                       config: dict) -> str:
        """Insert a user-defined network; the name must be free (Conflict otherwise)."""
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
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM ip_allocations WHERE network_id = ?", (network_id,))
            conn.execute("DELETE FROM network_config WHERE network_id = ?", (network_id,))
            conn.execute("DELETE FROM networks WHERE id = ?", (network_id,))

    # -- addresses -------------------------------------------------------
    def allocate_ip(self, network_id: str, subnet: str, gateway: str, container_id: str,
                    requested: str | None = None, ip_range: str | None = None,
                    reserved: list[str] | tuple = ()) -> str:
        """Pick and record an address in one transaction, so concurrent callers never collide;
        `reserved` (IPAM auxiliary addresses) are never handed out."""
        with self.db.transaction() as conn:
            used = [r["ip"] for r in conn.execute(
                "SELECT ip FROM ip_allocations WHERE network_id = ?", (network_id,))] + list(reserved)
            ip = str(AddressPool(subnet, gateway, used, ip_range).allocate(requested))
            conn.execute("INSERT INTO ip_allocations (network_id, ip, container_id) VALUES (?, ?, ?)",
                         (network_id, ip, container_id))
            return ip

    def release_ips(self, container_id: str) -> None:
        self.db.execute("DELETE FROM ip_allocations WHERE container_id = ?", (container_id,))

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
        with self.db.transaction() as conn:
            if network_id is None:
                conn.execute("DELETE FROM ip_allocations WHERE container_id = ?", (container_id,))
                conn.execute("DELETE FROM attachments WHERE container_id = ?", (container_id,))
                conn.execute("DELETE FROM published_ports WHERE container_id = ?", (container_id,))
            else:
                conn.execute("DELETE FROM ip_allocations WHERE container_id = ? AND network_id = ?",
                             (container_id, network_id))
                conn.execute("DELETE FROM attachments WHERE container_id = ? AND network_id = ?",
                             (container_id, network_id))

    def release_ip(self, container_id: str, network_id: str) -> None:
        self.db.execute("DELETE FROM ip_allocations WHERE container_id = ? AND network_id = ?",
                        (container_id, network_id))

    # -- published ports -------------------------------------------------
    def save_ports(self, container_id: str, rows: list[tuple]) -> None:
        """rows: (proto, host_ip, host_port, container_ip, container_port); all or nothing."""
        with self.db.transaction() as conn:
            for r in rows:
                conn.execute("INSERT INTO published_ports (container_id, proto, host_ip, host_port,"
                             " container_ip, container_port) VALUES (?, ?, ?, ?, ?, ?)", (container_id, *r))

    def ports(self, container_id: str | None = None) -> list:
        if container_id is None:
            return self.db.query("SELECT * FROM published_ports")
        return self.db.query("SELECT * FROM published_ports WHERE container_id = ?", (container_id,))

    def forget_ports(self, container_id: str) -> None:
        self.db.execute("DELETE FROM published_ports WHERE container_id = ?", (container_id,))

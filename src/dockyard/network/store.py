"""SQLite tables for networks, endpoints and IP allocations.

Kept in the daemon's database so a restarted daemon knows which addresses
are taken and which namespaces and veths are its own.
"""
from __future__ import annotations

import secrets
from datetime import datetime, timezone

from dockyard.network.endpoint import Endpoint
from dockyard.network.ipam import AddressPool
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
CREATE TABLE IF NOT EXISTS endpoints (
    container_id  TEXT PRIMARY KEY,
    network       TEXT NOT NULL,
    network_id    TEXT NOT NULL,
    netns_path    TEXT NOT NULL,
    ip            TEXT,
    prefixlen     INTEGER,
    gateway       TEXT,
    mac           TEXT,
    host_veth     TEXT,
    subnet        TEXT,
    hostname      TEXT
);
"""


class NetworkStore:
    def __init__(self, db: Database):
        self.db = db
        db.ensure_schema(SCHEMA)

    # -- networks --------------------------------------------------------
    def network(self, name: str):
        return self.db.one("SELECT * FROM networks WHERE name = ?", (name,))

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

    # -- addresses -------------------------------------------------------
    def allocate_ip(self, network_id: str, subnet: str, gateway: str, container_id: str,
                    requested: str | None = None) -> str:
        """Pick and record an address in one transaction, so concurrent callers never collide."""
        with self.db.transaction() as conn:
            used = [r["ip"] for r in conn.execute(
                "SELECT ip FROM ip_allocations WHERE network_id = ?", (network_id,))]
            ip = str(AddressPool(subnet, gateway, used).allocate(requested))
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
        self.db.execute(f"INSERT INTO endpoints ({cols}) VALUES ({', '.join('?' * len(row))})",
                        tuple(row.values()))

    def endpoint(self, container_id: str) -> Endpoint | None:
        row = self.db.one("SELECT * FROM endpoints WHERE container_id = ?", (container_id,))
        return Endpoint.from_row(row) if row is not None else None

    def endpoints(self) -> list[Endpoint]:
        return [Endpoint.from_row(r) for r in self.db.query("SELECT * FROM endpoints")]

    def forget(self, container_id: str) -> None:
        """Drop the endpoint and its addresses together."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM ip_allocations WHERE container_id = ?", (container_id,))
            conn.execute("DELETE FROM endpoints WHERE container_id = ?", (container_id,))

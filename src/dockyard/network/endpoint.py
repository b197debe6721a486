"""What a container's network attachment is, as the daemon sees and stores it."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class Endpoint:
    container_id: str
    network: str                   # "bridge" | "none" | a user-defined network's name
    network_id: str
    netns_path: str                # the runtime joins the namespace by this path
    ip: str | None = None          # the rest is None for "none"
    prefixlen: int | None = None
    gateway: str | None = None
    mac: str | None = None
    host_veth: str | None = None
    subnet: str | None = None
    hostname: str | None = None
    ifname: str = "eth0"           # eth0 for the first network, eth1... for those connected later
    aliases: str = "[]"            # JSON list of extra DNS names on this network
    name: str | None = None        # the container's name, answered by the network's DNS
    links: str = "[]"              # JSON list of [alias, target]: legacy links only this container resolves

    @property
    def link_list(self) -> list[tuple[str, str]]:
        return [(a, t) for a, t in json.loads(self.links or "[]")]

    @property
    def alias_list(self) -> list[str]:
        return json.loads(self.aliases or "[]")

    def as_row(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row) -> "Endpoint":
        return cls(**{f.name: row[f.name] for f in fields(cls)})

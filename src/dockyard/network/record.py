"""What a network is, as the manager hands it out (never a database row)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NetworkRecord:
    id: str
    name: str                      # "bridge", "host", "none" or a user-defined network's
    driver: str                    # "bridge" | "host" | "null"
    bridge: str | None             # the host bridge; None for host and none
    subnet: str | None
    gateway: str | None
    created: str                   # RFC 3339
    config: dict = field(default_factory=dict)   # Internal, Attachable, Labels, Options, EnableICC, IPAM

    @property
    def internal(self) -> bool:
        return bool(self.config.get("Internal"))

    @classmethod
    def from_row(cls, row, config: dict) -> "NetworkRecord":
        return cls(row["id"], row["name"], row["driver"], row["bridge"], row["subnet"], row["gateway"],
                   row["created"], config)

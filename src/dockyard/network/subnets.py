"""Choosing the default bridge subnet when the operator gave no --bip."""
from __future__ import annotations

import ipaddress
from ipaddress import IPv4Network
from typing import Iterable

from dockyard.errors import Unavailable

# Ranges other engines on the same host claim even before they start:
# docker0 and podman's default network.
RESERVED = (IPv4Network("172.17.0.0/16"), IPv4Network("10.88.0.0/16"))

# Docker's default address pools (172.17-31/16 and 192.168/16), in its order,
# with 192.168 cut into /24s so a home LAN there only costs one candidate.
CANDIDATES = tuple(
    [IPv4Network(f"172.{n}.0.0/16") for n in range(18, 32)]
    + [IPv4Network(f"192.168.{n}.0/24") for n in range(256)]
)


def pick_free_subnet(in_use: Iterable[IPv4Network | str],
                     candidates: Iterable[IPv4Network] = CANDIDATES) -> IPv4Network:
    """The first candidate overlapping nothing in use and nothing reserved."""
    taken = [ipaddress.IPv4Network(n, strict=False) for n in in_use]
    taken = [n for n in taken if n.prefixlen > 0] + list(RESERVED)   # a default route overlaps everything
    for candidate in candidates:
        if not any(candidate.overlaps(n) for n in taken):
            return candidate
    raise Unavailable("could not find a free subnet for the default bridge network; set --bip")

"""IPv4 address management as pure arithmetic: no I/O, no database.

The manager loads the addresses in use from SQLite inside a transaction,
asks an `AddressPool` for one, and stores the answer in the same
transaction, so two concurrent connects can never get the same address.
"""
from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network
from typing import Iterable

from dockyard.errors import Forbidden, InvalidParameter, Unavailable


class AddressPool:
    """The usable host addresses of one subnet, minus the gateway and those in use.

    Hands out the lowest free address, like libnetwork's default IPAM.
    """

    def __init__(self, subnet: IPv4Network | str, gateway: IPv4Address | str | None,
                 used: Iterable[IPv4Address | str] = (), ip_range: IPv4Network | str | None = None,
                 used_ints: set[int] | None = None):
        """used_ints: addresses in use as integers (the store's index), in addition to `used`; the set
        itself is kept, not copied, and allocate adds its pick to it."""
        self.subnet = ipaddress.IPv4Network(subnet)
        # IPAM's IPRange: automatic picks come from it; explicit requests may use the whole subnet.
        self.range = ipaddress.IPv4Network(ip_range) if ip_range else self.subnet
        if not self.range.subnet_of(self.subnet):
            raise InvalidParameter(f"ip range {self.range} is not within subnet {self.subnet}")
        if self.subnet.prefixlen > 30:
            # /31 and /32 leave no room for a gateway plus a container
            raise InvalidParameter(f"subnet {self.subnet} is too small")
        self.gateway = IPv4Address(gateway) if gateway is not None else None
        if self.gateway is not None and not self._is_host(self.gateway):
            raise InvalidParameter(f"gateway {self.gateway} is not a host address of {self.subnet}")
        self._used = used_ints if used_ints is not None else set()
        self._used.update(int(IPv4Address(ip)) for ip in used)

    def _is_host(self, ip: IPv4Address) -> bool:
        return ip in self.subnet and ip not in (self.subnet.network_address,
                                                self.subnet.broadcast_address)

    def _taken(self, ip: IPv4Address) -> bool:
        return int(ip) in self._used or ip == self.gateway

    def allocate(self, requested: IPv4Address | str | None = None) -> IPv4Address:
        if requested is not None:
            ip = IPv4Address(requested)
            if not self._is_host(ip):
                raise InvalidParameter(f"requested address {ip} is out of range of {self.subnet}")
            if self._taken(ip):
                raise Forbidden(f"Address already in use: {ip}")   # libnetwork's ErrIPAlreadyAllocated
            self._used.add(int(ip))
            return ip
        first = max(int(self.range.network_address), int(self.subnet.network_address) + 1)
        last = min(int(self.range.broadcast_address), int(self.subnet.broadcast_address) - 1)
        gateway = int(self.gateway) if self.gateway is not None else None
        for candidate in range(first, last + 1):
            if candidate not in self._used and candidate != gateway:
                self._used.add(candidate)
                return IPv4Address(candidate)
        raise Unavailable(f"no available IPv4 addresses on this network's address pools: {self.range}")

    def release(self, ip: IPv4Address | str) -> None:
        """Give an address back; releasing a free address is not an error."""
        self._used.discard(int(IPv4Address(ip)))

    def in_use(self) -> set[IPv4Address]:
        return {IPv4Address(i) for i in self._used}


def reserved_aux(pool: dict) -> list[str]:
    """A network's IPAM AuxiliaryAddresses that its containers never get: those in the range
    addresses are picked from (libnetwork reserves them there and ignores the rest)."""
    aux = pool.get("AuxiliaryAddresses") or {}
    within = ipaddress.IPv4Network(pool.get("IPRange") or pool["Subnet"]) if aux else None
    return [ip for ip in aux.values() if within is not None and IPv4Address(ip) in within]


def mac_for(ip: IPv4Address | str) -> str:
    """02:42 followed by the four address bytes, as Docker derives container MACs."""
    return "02:42:" + ":".join(f"{b:02x}" for b in IPv4Address(ip).packed)


def parse_bip(bip: str) -> tuple[IPv4Network, IPv4Address]:
    """dockerd's --bip: "10.99.0.1/24" is gateway 10.99.0.1 on 10.99.0.0/24."""
    try:
        iface = ipaddress.IPv4Interface(bip)
    except ValueError as e:
        raise InvalidParameter(f"invalid bip {bip!r}: {e}") from None
    if "/" not in bip:
        raise InvalidParameter(f"invalid bip {bip!r}: needs a prefix length, e.g. 10.99.0.1/24")
    pool = AddressPool(iface.network, iface.ip)   # validates size and gateway position
    return pool.subnet, iface.ip

"""Planning a user-defined network from a `POST /networks/create` body: pure
validation and address choice, no host state (the manager makes that).

Docker's wording for what it refuses; one IPv4 pool per network.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Callable

from dockyard.errors import Forbidden, InvalidParameter
from dockyard.network.ipam import AddressPool

PREDEFINED = ("bridge", "host", "none")
IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
BRIDGE_NAME_OPT = "com.docker.network.bridge.name"
ICC_OPT = "com.docker.network.bridge.enable_icc"


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    bridge: str
    subnet: IPv4Network
    gateway: IPv4Address
    config: dict          # what network_config stores: Internal, Attachable, Labels, Options, EnableICC, IPAM


def _aux_addresses(pool: dict, subnet: IPv4Network) -> dict[str, str]:
    """IPAM AuxiliaryAddresses (name -> address the network's IPAM keeps from containers), checked
    with moby's wording."""
    aux = pool.get("AuxiliaryAddresses") or {}
    if not isinstance(aux, dict):
        raise InvalidParameter("invalid AuxiliaryAddresses: must be an object")
    out = {}
    for name, addr in aux.items():
        try:
            ip = IPv4Address(addr)
        except ValueError:
            raise InvalidParameter(f"invalid network config:\ninvalid auxiliary address {name}: "
                                   f"ParseAddr({addr!r}): unable to parse IP") from None
        if ip not in subnet:
            raise InvalidParameter(f"invalid network config:\ninvalid auxiliary address {name}: "
                                   f"parent subnet {subnet} doesn't contain this address")
        out[str(name)] = str(ip)
    return out


def _pool(pool: dict, taken: list[IPv4Network],
          pick_subnet: Callable[[], IPv4Network]) -> tuple[IPv4Network, IPv4Address, str | None]:
    if pool.get("Subnet"):
        try:
            subnet = IPv4Network(pool["Subnet"], strict=False)
        except ValueError as e:
            raise InvalidParameter(f"invalid subnet {pool['Subnet']}: {e}") from None
        if str(subnet) != pool["Subnet"] and "/" in pool["Subnet"]:
            raise InvalidParameter(f"invalid subnet {pool['Subnet']}: host bits set (did you mean {subnet}?)")
        if any(subnet.overlaps(t) for t in taken):
            raise Forbidden("Pool overlaps with other one on this address space")
    else:
        if pool.get("IPRange") or pool.get("Gateway"):
            raise InvalidParameter("gateway and ip-range need a subnet")
        subnet = pick_subnet()
    try:
        gateway = IPv4Address(pool["Gateway"]) if pool.get("Gateway") else subnet.network_address + 1
        ip_range = str(IPv4Network(pool["IPRange"], strict=False)) if pool.get("IPRange") else None
    except ValueError as e:
        raise InvalidParameter(f"invalid IPAM config: {e}") from None
    AddressPool(subnet, gateway, (), ip_range)   # validates size, gateway and range positions
    return subnet, gateway, ip_range


def plan(name: str, *, taken: list[IPv4Network], pick_subnet: Callable[[], IPv4Network],
         internal: bool = False, attachable: bool = False, labels: dict | None = None,
         options: dict | None = None, ipam: dict | None = None, enable_ipv6: bool = False) -> Plan:
    """taken: subnets of the daemon's networks; pick_subnet: a free one when none is asked for."""
    options = {str(k): str(v) for k, v in (options or {}).items()}
    if enable_ipv6:
        raise InvalidParameter("IPv6 networks are not supported by this daemon")
    if name in PREDEFINED:
        raise Forbidden(f"{name} is a pre-defined network and cannot be created")
    pools = list((ipam or {}).get("Config") or [])
    if len(pools) > 1:
        raise InvalidParameter("only one IPv4 pool (IPAM Config entry) per network is supported")
    network_id = secrets.token_hex(32)
    bridge = options.get(BRIDGE_NAME_OPT) or f"br-{network_id[:12]}"
    if not IFNAME.match(bridge):
        raise InvalidParameter(f"invalid bridge name {bridge!r}: 1-15 of [A-Za-z0-9_.-]")
    subnet, gateway, ip_range = _pool(pools[0] if pools else {}, taken, pick_subnet)
    aux = _aux_addresses(pools[0] if pools else {}, subnet)
    config = {"Internal": bool(internal), "Attachable": bool(attachable), "Labels": labels or {},
              "Options": options, "EnableICC": options.get(ICC_OPT, "true").lower() not in ("false", "0"),
              "IPAM": {"Driver": (ipam or {}).get("Driver") or "default",
                       "Options": (ipam or {}).get("Options"),   # as given: {} stays {}
                       "Config": [{k: v for k, v in (("Subnet", str(subnet)), ("IPRange", ip_range),
                                                      ("Gateway", str(gateway)), ("AuxiliaryAddresses", aux))
                                   if v}]}}
    return Plan(network_id, name, bridge, subnet, gateway, config)

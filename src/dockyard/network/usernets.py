"""Planning a user-defined network from a `POST /networks/create` body: pure
validation and address choice, no host state (the manager makes that).

Docker's wording for what it refuses; one IPv4 pool per network.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Callable

from dockyard.errors import Forbidden, InvalidParameter
from dockyard.network.ipam import AddressPool

PREDEFINED = ("bridge", "host", "none")
IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
BRIDGE_NAME_OPT = "com.docker.network.bridge.name"
ICC_OPT = "com.docker.network.bridge.enable_icc"
MTU_OPT = "com.docker.network.driver.mtu"
MASQUERADE_OPT = "com.docker.network.bridge.enable_ip_masquerade"
HOST_BINDING_OPT = "com.docker.network.bridge.host_binding_ipv4"
ENABLE_IPV4_OPT = "com.docker.network.enable_ipv4"   # libnetwork's netlabel.EnableIPv4, a driver-opt
_TRUE, _FALSE = ("1", "t", "T", "TRUE", "true", "True"), ("0", "f", "F", "FALSE", "false", "False")   # Go's ParseBool


def _parse_bool(opt: str, value: str) -> bool:
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise InvalidParameter(f'failed to parse {opt}: strconv.ParseBool: parsing "{value}": invalid syntax')


def mtu(config: dict) -> int | None:
    """The network's MTU option (bridge and veths), None for the kernel's default."""
    value = (config.get("Options") or {}).get(MTU_OPT)
    return int(value) or None if value else None


def masquerade(config: dict) -> bool:
    """Whether traffic leaving the network is masqueraded (enable_ip_masquerade, default true)."""
    value = (config.get("Options") or {}).get(MASQUERADE_OPT)
    return True if value is None else value in _TRUE


def host_binding_ipv4(config: dict) -> str:
    """The host address -p binds to on this network when it names none ("": all)."""
    value = (config.get("Options") or {}).get(HOST_BINDING_OPT, "")
    return "" if value == "0.0.0.0" else value


def _check_options(options: dict) -> None:
    """Docker's checks of the bridge driver's options, before anything is made."""
    if MTU_OPT in options:
        try:
            value = int(options[MTU_OPT])
        except ValueError:
            raise InvalidParameter(f'strconv.Atoi: parsing "{options[MTU_OPT]}": invalid syntax') from None
        if value < 0 or 0 < value < 68 or value > 65535:
            raise InvalidParameter(f"invalid MTU number: {value}")
    for opt in (ICC_OPT, MASQUERADE_OPT):
        if opt in options:
            _parse_bool(opt, options[opt])
    if options.get(HOST_BINDING_OPT):
        try:
            IPv4Address(options[HOST_BINDING_OPT])
        except ValueError:
            raise InvalidParameter(f"failed to parse {HOST_BINDING_OPT} value: "
                                   f"{options[HOST_BINDING_OPT]}") from None


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    bridge: str
    subnet: IPv4Network | None      # None on an IPv6-only network (EnableIPv4 false)
    gateway: IPv4Address | None
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


def _is_v6(pool: dict) -> bool:
    return ":" in str(pool.get("Subnet") or "")


def _pool6(pool: dict, taken6: list[IPv6Network],
           pick_subnet6: Callable[[], IPv6Network] | None = None) -> tuple[IPv6Network, IPv6Address]:
    """The network's IPv6 subnet and gateway: as asked, else pick_subnet6's (the daemon's IPv6
    default address pools), else a /64 of a random ULA prefix (fd00::/8), as Docker's default pool."""
    if pool.get("Subnet"):
        try:
            subnet = IPv6Network(pool["Subnet"], strict=False)
        except ValueError as e:
            raise InvalidParameter(f"invalid subnet {pool['Subnet']}: {e}") from None
        if any(subnet.overlaps(t) for t in taken6):
            raise Forbidden("Pool overlaps with other one on this address space")
    else:
        subnet = pick_subnet6() if pick_subnet6 is not None else pick_ula(taken6)[0]
    try:
        gateway = IPv6Address(pool["Gateway"]) if pool.get("Gateway") else subnet.network_address + 1
    except ValueError as e:
        raise InvalidParameter(f"invalid IPAM config: {e}") from None
    if gateway not in subnet:
        raise InvalidParameter("default gateway ip must be part of the network")
    if subnet.prefixlen > 126:
        raise InvalidParameter(f"invalid subnet {subnet}: too small for a network")
    return subnet, gateway


def pick_ula(taken6: list[IPv6Network]) -> tuple[IPv6Network, IPv6Address]:
    """A /64 of a random ULA prefix (fd00::/8) that overlaps none of taken6, and its gateway (::1)."""
    while True:
        subnet = IPv6Network(((0xFD << 120) | (secrets.randbits(56) << 64), 64))
        if not any(subnet.overlaps(t) for t in taken6):
            return subnet, subnet.network_address + 1


def ipv4_enabled(config: dict) -> bool:
    """Whether the network has IPv4 (EnableIPv4; networks made before it existed do)."""
    return config.get("EnableIPv4", True) is not False


def ipv6(config: dict) -> tuple[IPv6Network, IPv6Address] | None:
    """The network's IPv6 subnet and gateway when it has IPv6 (EnableIPv6)."""
    if not config.get("EnableIPv6"):
        return None
    for pool in (config.get("IPAM") or {}).get("Config") or []:
        if _is_v6(pool):
            return IPv6Network(pool["Subnet"]), IPv6Address(pool["Gateway"])
    return None


def plan(name: str, *, taken: list[IPv4Network], pick_subnet: Callable[[], IPv4Network],
         internal: bool = False, attachable: bool = False, labels: dict | None = None,
         options: dict | None = None, ipam: dict | None = None, enable_ipv6: bool = False,
         taken6: list[IPv6Network] | tuple = (), enable_ipv4: bool | None = None,
         pick_subnet6: Callable[[], IPv6Network] | None = None) -> Plan:
    """taken: subnets of the daemon's networks; pick_subnet: a free one when none is asked for;
    taken6: the IPv6 subnets of its IPv6 networks; pick_subnet6: a free one of the daemon's IPv6
    default address pools when it has some (else a random ULA /64). enable_ipv4=False (API 1.48's EnableIPv4, docker
    network create --ipv4=false): an IPv6-only network; an IPv4 pool given anyway is kept in its
    IPAM config but gives no address, as moby 28's (libnetwork ipamAllocate skips IPv4). None: not
    given, then the driver-opt com.docker.network.enable_ipv4 decides (default true), as moby's
    createNetwork; given, that option is dropped."""
    options = {str(k): str(v) for k, v in (options or {}).items()}
    if enable_ipv4 is not None:
        options.pop(ENABLE_IPV4_OPT, None)
    elif ENABLE_IPV4_OPT in options:
        if options[ENABLE_IPV4_OPT] not in _TRUE + _FALSE:
            raise InvalidParameter(f'driver-opt "{ENABLE_IPV4_OPT}" is not a valid bool')
        enable_ipv4 = options[ENABLE_IPV4_OPT] in _TRUE
    else:
        enable_ipv4 = True
    if name in PREDEFINED:
        raise Forbidden(f"{name} is a pre-defined network and cannot be created")
    if not enable_ipv4 and not enable_ipv6:   # moby 28 libnetwork/drivers/bridge CreateNetwork
        raise InvalidParameter("IPv4 or IPv6 must be enabled")
    _check_options(options)
    all_pools = list((ipam or {}).get("Config") or [])
    pools = [p for p in all_pools if not _is_v6(p)]
    pools6 = [p for p in all_pools if _is_v6(p)]
    if len(pools) > 1 or len(pools6) > 1:
        raise InvalidParameter("only one IPv4 and one IPv6 pool (IPAM Config entry) per network are supported")
    if pools6 and not enable_ipv6:
        raise InvalidParameter("IPv6 subnet given without --ipv6 (EnableIPv6)")
    v6 = _pool6(pools6[0] if pools6 else {}, list(taken6), pick_subnet6) if enable_ipv6 else None
    network_id = secrets.token_hex(32)
    bridge = options.get(BRIDGE_NAME_OPT) or f"br-{network_id[:12]}"
    if not IFNAME.match(bridge):
        raise InvalidParameter(f"invalid bridge name {bridge!r}: 1-15 of [A-Za-z0-9_.-]")
    if enable_ipv4:
        subnet, gateway, ip_range = _pool(pools[0] if pools else {}, taken, pick_subnet)
        aux = _aux_addresses(pools[0] if pools else {}, subnet)
        v4_config = [{k: v for k, v in (("Subnet", str(subnet)), ("IPRange", ip_range),
                                         ("Gateway", str(gateway)), ("AuxiliaryAddresses", aux)) if v}]
    else:   # validated as moby's ValidateIPAM does, never allocated (nor checked for overlaps)
        v4_config = []
        if pools and pools[0].get("Subnet"):
            given, _gw, given_range = _pool(pools[0], [], pick_subnet)
            given_aux = _aux_addresses(pools[0], given)
            v4_config = [{k: v for k, v in (("Subnet", str(given)), ("IPRange", given_range),
                                             ("Gateway", pools[0].get("Gateway")),
                                             ("AuxiliaryAddresses", given_aux)) if v}]
        subnet = gateway = None
    config = {"Internal": bool(internal), "Attachable": bool(attachable), "Labels": labels or {},
              "Options": options, "EnableICC": options.get(ICC_OPT, "true").lower() not in ("false", "0"),
              "IPAM": {"Driver": (ipam or {}).get("Driver") or "default",
                       "Options": (ipam or {}).get("Options"),   # as given: {} stays {}
                       "Config": v4_config}}
    if not enable_ipv4:
        config["EnableIPv4"] = False
    if v6 is not None:
        config["EnableIPv6"] = True
        config["IPAM"]["Config"].append({"Subnet": str(v6[0]), "Gateway": str(v6[1])})
    return Plan(network_id, name, bridge, subnet, gateway, config)

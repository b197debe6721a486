"""Host link state for daemon start, reconcile and purge, through pyroute2's IPRoute.

These dump and compare, so they are not on the per-container path (that
is `rtnl.Rtnl`). Each function takes an open IPRoute so a caller can share
one socket across several calls.
"""
from __future__ import annotations

import errno
import hashlib
import socket
from ipaddress import IPv4Interface, IPv4Network

from pyroute2 import IPRoute, NetlinkError

from dockyard.errors import SystemError_
from dockyard.network.ipam import mac_for


def _kind(link) -> str | None:
    return link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")


def index_of(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def ensure_bridge(ipr: IPRoute, name: str, gateway: IPv4Interface | None) -> int:
    """Bridge `name` exists, is up, and carries exactly the gateway address (none: no IPv4 at all,
    an IPv6-only network).

    Other IPv4 addresses on it are removed: the bridge is ours, and a stale
    address from an earlier --bip would otherwise keep routing the old subnet.
    """
    # A bridge without a set MAC takes the lowest of its ports' MACs, so it
    # would change whenever a container leaves, and containers' ARP caches
    # would point the gateway at a MAC no one answers for (Docker fixes it too).
    mac = mac_for(gateway.ip) if gateway is not None else stable_mac(name)
    idx = index_of(ipr, name)
    if idx is None:
        ipr.link("add", ifname=name, kind="bridge", address=mac)
        idx = index_of(ipr, name)
    else:
        link = ipr.get_links(idx)[0]
        if _kind(link) != "bridge":
            raise SystemError_(f"{name} exists on the host and is not a bridge")
        if link.get("address") != mac:
            ipr.link("set", index=idx, address=mac)
    have = {(a.get("address"), a["prefixlen"]) for a in ipr.get_addr(family=socket.AF_INET, index=idx)}
    want = (str(gateway.ip), gateway.network.prefixlen) if gateway is not None else None
    for address, prefixlen in have - {want}:
        ipr.addr("del", index=idx, address=address, prefixlen=prefixlen)
    if gateway is not None and want not in have:
        ipr.addr("add", index=idx, address=want[0], prefixlen=want[1],
                 broadcast=str(gateway.network.broadcast_address))
    ipr.link("set", index=idx, state="up")
    return idx


def stable_mac(name: str) -> str:
    """A locally administered MAC that stays the same for one interface name (a bridge or endpoint
    without IPv4, whose MAC cannot come from its address)."""
    digest = hashlib.sha256(name.encode()).digest()
    return "02:42:" + ":".join(f"{b:02x}" for b in digest[:4])


def bridge_address(ipr: IPRoute, name: str) -> IPv4Interface | None:
    """The first IPv4 address on an existing bridge, to adopt a pre-existing setup."""
    idx = index_of(ipr, name)
    if idx is None:
        return None
    for a in ipr.get_addr(family=socket.AF_INET, index=idx):
        return IPv4Interface(f"{a.get('address')}/{a['prefixlen']}")
    return None


def host_ipv4_networks(ipr: IPRoute, ignore_link: str | None = None) -> list[IPv4Network]:
    """Every IPv4 network the host routes or has an address in (all tables)."""
    ignore = index_of(ipr, ignore_link) if ignore_link else None
    nets = []
    for r in ipr.get_routes(family=socket.AF_INET):
        if ignore is not None and r.get("oif") == ignore:
            continue
        dst = r.get("dst")
        if dst and r["dst_len"] > 0:
            nets.append(IPv4Network(f"{dst}/{r['dst_len']}", strict=False))
    for a in ipr.get_addr(family=socket.AF_INET):
        if ignore is not None and a["index"] == ignore:
            continue
        nets.append(IPv4Network(f"{a.get('address')}/{a['prefixlen']}", strict=False))
    return nets


def delete_link(ipr: IPRoute, name: str) -> bool:
    """Delete a link by name; False if it was already gone."""
    try:
        ipr.link("del", ifname=name)
        return True
    except NetlinkError as e:
        if e.code in (errno.ENODEV, errno.ENOENT):
            return False
        raise


def stale_alias(bridge: str) -> str:
    """Alias disconnect puts on a veth it detached and left for the kernel to delete."""
    return f"dockyard-stale:{bridge}"


def stale_veths(ipr: IPRoute, bridge: str) -> list[str]:
    """Veths detached from this bridge by disconnect that the kernel has not deleted yet."""
    tag = stale_alias(bridge)
    return [link.get("ifname") for link in ipr.get_links() if link.get("ifalias") == tag]


def ports_of(ipr: IPRoute, bridge: str) -> list[str]:
    """Names of the links enslaved to a bridge."""
    idx = index_of(ipr, bridge)
    if idx is None:
        return []
    return [link.get("ifname") for link in ipr.get_links() if link.get("master") == idx]

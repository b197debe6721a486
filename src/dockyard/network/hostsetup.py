"""Host state: the default bridge with its NAT and forwarding (once per
daemon start), and each user network's bridge and rules.
Idempotent, so a restarted daemon just runs it again."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from typing import Iterator

from pyroute2 import IPRoute, NetlinkError

from dockyard.network import firewall, links, nft, ports, usernets
from dockyard.network.rtnl import Rtnl
from dockyard.network.store import NetworkStore
from dockyard.network.subnets import Pool, pick_free_subnet, pick_from_pools

log = logging.getLogger(__name__)

VETH_PREFIX = "dy"
# Serialises subnet choice between daemons on one host (e.g. parallel tests):
# the first creates its bridge, so the next one sees that route and moves on.
HOST_LOCK = "/run/lock/dockyard-network.lock"


@contextlib.contextmanager
def host_lock() -> Iterator[None]:
    os.makedirs(os.path.dirname(HOST_LOCK), exist_ok=True)
    with open(HOST_LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def user_bridge_alias(daemon_bridge: str) -> str:
    """IFLA_IFALIAS on every user-network bridge of a daemon, so purge and reconcile find them."""
    return f"dockyard-net:{daemon_bridge}"


def _set_sysctl(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        log.warning("could not set %s: %s", path, e)


def _route_localnet(bridge: str) -> None:
    # 127.0.0.1-published ports: DNATed loopback packets may leave through this bridge (see ports.py)
    _set_sysctl(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "1")


def setup_default_bridge(store: NetworkStore, bridge: str, bip: tuple[IPv4Network, IPv4Address] | None,
                         ports_table: str, ipv6: bool = False, fixed_cidr_v6: str | None = None,
                         pools: tuple[Pool, ...] = ()) -> None:
    """The default bridge network: bridge, NAT, forwarding, the ports table; with `ipv6` (dockerd's
    --ipv6, --fixed-cidr-v6) its IPv6 too. Without --bip (--fixed-cidr-v6) a new one takes its
    subnet from `pools`, dockerd's default address pools, when they have that family.
    Call under host_lock()."""
    with IPRoute() as ipr:
        subnet, gateway = _choose_subnet(ipr, store, bridge, bip, pools)
        links.ensure_bridge(ipr, bridge, IPv4Interface(f"{gateway}/{subnet.prefixlen}"))
    firewall.enable_ip_forward()
    firewall.install_nat(bridge, subnet)
    if firewall.install_forward_accept(bridge):
        log.info("iptables FORWARD policy is DROP; accepted traffic for %s", bridge)
    _route_localnet(bridge)
    network_id = store.save_network("bridge", "bridge", bridge, str(subnet), str(gateway))
    nft.run(ports.ruleset(ports_table))
    saved = store.network_config(network_id)
    config = {k: v for k, v in saved.items() if k not in ("EnableIPv6", "IPAM")}
    if ipv6:
        old = usernets.ipv6(store.network_config(network_id))
        if fixed_cidr_v6:
            subnet6 = IPv6Network(fixed_cidr_v6, strict=False)
            v6 = (subnet6, subnet6.network_address + 1)
        elif old:   # the same across restarts
            v6 = old
        elif any(p.base is not None and p.base.version == 6 for p in pools):
            subnet6 = pick_from_pools(pools, _other_subnets(store, 6), 6)
            v6 = (subnet6, subnet6.network_address + 1)
        else:   # a ULA /64 of its own
            v6 = usernets.pick_ula([])
        config["EnableIPv6"] = True
        config["IPAM"] = {"Config": [{"Subnet": str(v6[0]), "Gateway": str(v6[1])}]}
        ensure_ipv6(bridge, v6, internal=False)
        firewall.install_network(firewall.table_name(bridge), bridge, v6[0], False)
    else:
        nft.delete_table(firewall.table_name(bridge), "ip6")
    if config != saved:      # no write when nothing changed: the daemon must start on a full disk
        store.set_network_config(network_id, config)


def _other_subnets(store: NetworkStore, version: int) -> list:
    """The subnets of the user networks of one family (their bridges may not exist yet)."""
    recs = [r for r in store.networks() if r.name not in usernets.PREDEFINED]
    if version == 4:
        return [IPv4Network(r.subnet) for r in recs if r.subnet]
    return [v6[0] for v6 in (usernets.ipv6(r.config) for r in recs) if v6]


def _choose_subnet(ipr: IPRoute, store: NetworkStore, bridge: str,
                   bip: tuple[IPv4Network, IPv4Address] | None,
                   pools: tuple[Pool, ...] = ()) -> tuple[IPv4Network, IPv4Address]:
    if bip is not None:
        return bip
    rec = store.network("bridge")
    if rec is not None and rec.subnet:
        return IPv4Network(rec.subnet), IPv4Address(rec.gateway)   # stable across restarts
    existing = links.bridge_address(ipr, bridge)
    if existing is not None:   # our bridge survived a lost database: keep its addressing
        return existing.network, existing.ip
    host = links.host_ipv4_networks(ipr, ignore_link=bridge)
    if any(p.base is not None and p.base.version == 4 for p in pools):
        subnet = pick_from_pools(pools, host + _other_subnets(store, 4), 4)
    else:
        subnet = pick_free_subnet(host)
    return subnet, subnet.network_address + 1


def ensure_user_network(daemon_bridge: str, bridge: str, subnet: str | None, gateway: str | None,
                        config: dict) -> None:
    """Host state of one user network: bridge with our alias, rules (idempotent). Its DNS is in each
    container (resolver.py). subnet None: an IPv6-only network, a bridge without IPv4."""
    mtu = usernets.mtu(config)
    with IPRoute() as ipr:
        address = IPv4Interface(f"{gateway}/{IPv4Network(subnet).prefixlen}") if subnet else None
        idx = links.ensure_bridge(ipr, bridge, address)
        ipr.link("set", index=idx, ifalias=user_bridge_alias(daemon_bridge), **({"mtu": mtu} if mtu else {}))
    internal = bool(config.get("Internal"))
    table = firewall.network_table(daemon_bridge, bridge)
    if subnet:
        firewall.install_network(table, bridge, IPv4Network(subnet), internal,
                                 isolate_from=(daemon_bridge, "br-*"), masquerade=usernets.masquerade(config))
        if not internal:
            firewall.install_forward_accept(bridge)
            _route_localnet(bridge)
    v6 = usernets.ipv6(config)
    if v6 is not None:
        ensure_ipv6(bridge, v6, internal)
        firewall.install_network(table, bridge, v6[0], internal, isolate_from=(daemon_bridge, "br-*"),
                                 masquerade=usernets.masquerade(config))


def ensure_ipv6(bridge: str, v6: tuple[IPv6Network, IPv6Address], internal: bool) -> None:
    """A bridge's IPv6: the gateway's address (no DAD: usable at once), forwarding, ip6tables accepts
    where its FORWARD drops. The ip6 table is the caller's."""
    _set_sysctl(f"/proc/sys/net/ipv6/conf/{bridge}/disable_ipv6", "0")
    with Rtnl() as host:
        try:
            host.add_address6(host.link_index(bridge), IPv6Interface(f"{v6[1]}/{v6[0].prefixlen}"))
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise
    _set_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1")
    if not internal:
        firewall.install_forward_accept(bridge, "ip6tables")


def remove_host_state(daemon_bridge: str, bridge: str) -> None:
    """Undo ensure_user_network, with the veths still on the bridge."""
    with IPRoute() as ipr:
        for name in [p for p in links.ports_of(ipr, bridge) if p.startswith(VETH_PREFIX)]:
            links.delete_link(ipr, name)
        for name in links.stale_veths(ipr, bridge):
            links.delete_link(ipr, name)
        idx = links.index_of(ipr, bridge)
        if idx is not None and ipr.get_links(idx)[0].get("ifalias") == user_bridge_alias(daemon_bridge):
            links.delete_link(ipr, bridge)
    firewall.remove_network(firewall.network_table(daemon_bridge, bridge))
    firewall.remove_forward_accept(bridge)

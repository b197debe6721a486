"""A container's endpoints: its network namespace and, per network, a veth
from the network's bridge into it (eth0, eth1, ...) with its address and
route. Netlink and syscalls only; every step of `connect` registers its
own rollback."""
from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import secrets
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, ip_address
from typing import Callable

from pyroute2 import IPRoute, NetlinkError

from dockyard.errors import DockyardError, Forbidden, InvalidParameter, SystemError_, Unavailable
from dockyard.network import links, netns, usernets
from dockyard.network.endpoint import Endpoint
from dockyard.network.hostsetup import VETH_PREFIX
from dockyard.network.ipam import mac_for, reserved_aux
from dockyard.network.record import NetworkRecord
from dockyard.network.rtnl import Rtnl
from dockyard.network.store import NetworkStore

log = logging.getLogger(__name__)


IN6_ADDR_GEN_MODE_NONE = 1


def _quietly(fn: Callable, *args) -> None:
    """Rollback step: log a failure instead of hiding the error that caused the rollback."""
    try:
        fn(*args)
    except Exception:
        log.exception("network rollback step %s%r failed", getattr(fn, "__name__", fn), args)


def plumb_extra(ifname: str, address: IPv4Interface | None, gateway: IPv4Address | None) -> None:
    """Inside the namespace: a further interface (eth1...) up, and the default route if it is the first;
    no IPv4 address on an IPv6-only network."""
    with Rtnl() as ns:
        idx = ns.link_index(ifname)
        if address is not None:
            ns.add_address(idx, address)
        ns.set_link(idx, up=True)
        if gateway is not None:
            ns.add_default_route(gateway, idx)


def plumb_inside(address: IPv4Interface | None, gateway: IPv4Address | None) -> None:
    """Run inside the container namespace: lo up, then eth0's address, link and default route."""
    with Rtnl() as ns:
        ns.set_link(name="lo", up=True)
        if address is None:
            return
        eth0 = ns.link_index("eth0")
        ns.add_address(eth0, address)
        ns.set_link(eth0, up=True)
        ns.add_default_route(gateway, eth0)


def plumb_v6(ifname: str, address: IPv6Interface | None, gateway: IPv6Address | None) -> None:
    """Inside the namespace, on an IPv6 network: the interface's IPv6 address and, when this network
    gives the container its IPv6 default route, that route."""
    if address is None:
        return
    with Rtnl() as ns:
        idx = ns.link_index(ifname)
        ns.add_address6(idx, address)
        if gateway is not None:
            ns.add_default_route6(gateway, idx)


def link_local_interfaces(addresses: list[str] | tuple) -> list[IPv4Interface | IPv6Interface]:
    """EndpointIPAMConfig.LinkLocalIPs as libnetwork adds them: /16 for IPv4, /64 for IPv6."""
    return [IPv4Interface(f"{a}/16") if ip_address(a).version == 4 else IPv6Interface(f"{a}/64")
            for a in addresses]


def has_no_ipv6(address6: object | None, link_local: list | tuple) -> bool:
    """Whether a container's interface on a network stays without IPv6: no
    IPv6 address from the network (address6 None) and no IPv6 among its
    --link-local-ip (addresses or their strings). The one rule for both
    sides: the plumbing (no link-local address) and the spec (disable_ipv6)."""
    return address6 is None and not any(":" in str(a) for a in link_local)


def plumb_link_local(ifname: str, addresses: list[IPv4Interface | IPv6Interface]) -> None:
    """Inside the namespace: the endpoint's --link-local-ip addresses on its interface."""
    if not addresses:
        return
    with Rtnl() as ns:
        idx = ns.link_index(ifname)
        for a in addresses:
            (ns.add_address if a.version == 4 else ns.add_address6)(idx, a)


def delete_link(name: str) -> None:
    with IPRoute() as ipr:
        links.delete_link(ipr, name)   # takes the peer inside the namespace with it


class Plumbing:
    def __init__(self, store: NetworkStore, netns_dir: str, daemon_bridge: str):
        self.store = store
        self.netns_dir = netns_dir
        self.daemon_bridge = daemon_bridge

    def netns_path(self, container_id: str) -> str:
        if not container_id or "/" in container_id or container_id in (".", ".."):
            raise InvalidParameter(f"invalid container id {container_id!r}")
        return os.path.join(self.netns_dir, container_id)

    def connect(self, container_id: str, net: NetworkRecord, hostname: str | None, ip: str | None,
                aliases: list[str] | tuple, mac: str | None, name: str | None,
                links: list[tuple[str, str]] | tuple = (), ip6: str | None = None,
                link_local: list[str] | tuple = (), live: bool = False) -> Endpoint:
        """See NetworkManager.connect; `net` is resolved already."""
        path = self.netns_path(container_id)
        existing = self.store.endpoints(container_id=container_id)
        if any(ep.network_id == net.id for ep in existing):
            raise Forbidden(f"endpoint with name {name or container_id[:12]} already exists in network "
                            f"{net.name}")
        if existing and (net.name == "none" or any(ep.network == "none" for ep in existing)):
            raise Forbidden("container cannot be connected to multiple networks with one of the networks in "
                            "private (none) mode")
        try:
            with contextlib.ExitStack() as undo:
                ep = self._connect(container_id, net, path, hostname, ip, existing, mac, undo, ip6,
                                   link_local_interfaces(link_local), live=live)
                ep = Endpoint(**{**ep.as_row(), "aliases": json.dumps(list(aliases or [])), "name": name,
                                 "links": json.dumps([list(link) for link in links])})
                self.store.save_endpoint(ep)
                undo.pop_all()
        except DockyardError:
            raise
        except (NetlinkError, OSError) as e:
            # a netlink error's str is a tuple; say it as Go's errno text (e.g. a bridge's
            # 1024-port limit: "exchange full")
            why = os.strerror(e.code).lower() if isinstance(e, NetlinkError) and isinstance(e.code, int) else e
            raise SystemError_(f"connecting {container_id[:12]} to {net.name}: {why}") from e
        return ep

    def _connect(self, container_id: str, net: NetworkRecord, path: str, hostname: str | None,
                 requested_ip: str | None, existing: list[Endpoint], mac: str | None,
                 undo: contextlib.ExitStack, requested_ip6: str | None = None,
                 link_local: list[IPv4Interface | IPv6Interface] | tuple = (), *,
                 live: bool = False) -> Endpoint:
        first = not existing
        if first:
            # Without an endpoint record a namespace file here is a leftover of a crash mid-connect.
            netns.remove(path)
            # Registered before create: remove() copes with a half-made namespace.
            undo.callback(_quietly, netns.remove, path)
        if net.name == "none":
            netns.create(path, then=lambda: plumb_inside(None, None))
            return Endpoint(container_id, "none", net.id, path, hostname=hostname)

        config = net.config
        undo.callback(_quietly, self.store.release_ip, container_id, net.id)   # both families
        if net.subnet:
            subnet, gateway = IPv4Network(net.subnet), IPv4Address(net.gateway)
            pool = (config.get("IPAM", {}).get("Config") or [{}])[0]
            if requested_ip is not None:
                try:
                    IPv4Address(requested_ip)
                except ValueError:
                    raise InvalidParameter(f"invalid IPv4 address: {requested_ip}") from None
            ip = self.store.allocate_ip(net.id, str(subnet), str(gateway), container_id, requested_ip,
                                        pool.get("IPRange"), reserved=reserved_aux(pool))
            address = IPv4Interface(f"{ip}/{subnet.prefixlen}")
        else:   # an IPv6-only network: no IPv4 address, route or gateway
            if requested_ip is not None:   # moby's validateEndpointIPAddress without an IPv4 subnet
                raise InvalidParameter("user specified IP address is supported only when connecting to "
                                       "networks with user configured subnets")
            subnet = gateway = ip = address = None
        v6 = usernets.ipv6(config)
        if requested_ip6 is not None and v6 is None:
            raise InvalidParameter(f"invalid address {requested_ip6}: It does not belong to any of this "
                                   "network's subnets")
        ip6 = self.store.allocate_ip6(net.id, str(v6[0]), str(v6[1]), container_id, requested_ip6) if v6 else None
        address6 = IPv6Interface(f"{ip6}/{v6[0].prefixlen}") if v6 else None
        if mac:
            if not re.match(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$", mac):
                raise InvalidParameter(f"invalid MAC address: {mac}")
            mac = mac.lower()
        host_veth = VETH_PREFIX + secrets.token_hex(4)
        if not mac:
            mac = mac_for(ip) if ip else links.stable_mac(host_veth)
        internal = net.internal
        isolate = config.get("EnableICC") is False
        used = {ep.ifname for ep in existing}
        ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
        # each family's default route: the first non-internal network that has that family gives it
        has_route = any(not self._internal(ep.network_id) for ep in existing if ep.ip)
        has_route6 = any(not self._internal(ep.network_id) for ep in existing if ep.ip6)
        route_via = None if (internal or has_route) else gateway
        route6_via = v6[1] if v6 and not (internal or has_route6) else None

        # as dockerd: on a network without IPv6 the container's interface has none either (Docker 26+
        # turns it off on that interface, 20.10 in the whole namespace): no link-local address, so none
        # of the DAD, router solicitations and MLD reports each start would flood to every port of the
        # bridge. At start by netlink (no_link_local6), the runtime then sets the sysctl (the spec's);
        # a network connected to a running container (live) by the sysctl itself (without_ipv6)
        no_ipv6 = has_no_ipv6(address6, link_local)
        with Rtnl() as host:   # opened here, so bound to the host namespace for good
            bridge_index = host.link_index(net.bridge)
            if bridge_index is None:
                raise Unavailable(f"bridge {net.bridge} is missing; NetworkManager.setup() must run first")

            def add_veth(ns_fd: int) -> None:
                # created down: its IPv6 is turned off (up_port) before it comes up
                host.add_veth(host_veth, bridge_index, ifname, ns_fd, mac, usernets.mtu(config), up=False)
                undo.callback(_quietly, delete_link, host_veth)

            def up_port() -> None:
                """On this thread, in the host's namespace (/proc/sys/net is the
                namespace of the thread that opens it)."""
                without_ipv6(host_veth)
                if isolate:
                    host.set_bridge_port(name=host_veth, isolated=True)
                host.set_link(name=host_veth, up=True)

            if first:
                def plumb() -> None:   # runs in the new namespace's own thread
                    fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                    try:
                        add_veth(fd)
                    finally:
                        os.close(fd)
                    if no_ipv6:
                        no_link_local6(ifname)
                    if route_via is None:
                        plumb_extra(ifname, address, None)
                        with Rtnl() as ns:
                            ns.set_link(name="lo", up=True)
                    else:
                        plumb_inside(address, route_via)
                    plumb_v6(ifname, address6, route6_via)
                    plumb_link_local(ifname, list(link_local))

                netns.create(path, then=plumb)
                up_port()
            else:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    add_veth(fd)
                finally:
                    os.close(fd)
                up_port()
                def plumb_more() -> None:
                    if no_ipv6:
                        (without_ipv6 if live else no_link_local6)(ifname)
                    plumb_extra(ifname, address, route_via)
                    plumb_v6(ifname, address6, route6_via)
                    plumb_link_local(ifname, list(link_local))

                netns.run_in(path, plumb_more)
        return Endpoint(container_id, net.name, net.id, path, ip=ip, prefixlen=subnet.prefixlen if subnet else None,
                        gateway=str(gateway) if gateway else None, mac=mac, host_veth=host_veth,
                        subnet=str(subnet) if subnet else None,
                        hostname=hostname, ifname=ifname, ip6=ip6,
                        ip6_prefixlen=v6[0].prefixlen if v6 else None, gateway6=str(v6[1]) if v6 else None)

    def _internal(self, network_id: str) -> bool:
        rec = self.store.network_by_id(network_id)
        return rec is not None and rec.internal

    def disconnect_one(self, container_id: str, net: NetworkRecord) -> None:
        """Live: take the container off one network (its interface leaves now)."""
        ep = self.store.endpoint(container_id, net.id)
        if ep is None:
            raise Forbidden(f"container {container_id} is not connected to network {net.name}")
        if self.store.ports(container_id) and ep.ifname == "eth0":
            raise Forbidden("cannot disconnect the network its published ports go to; stop the container")
        try:
            if ep.host_veth:
                delete_link(ep.host_veth)   # live: the interface must leave the container now
        except (NetlinkError, OSError) as e:
            raise SystemError_(f"disconnecting {container_id[:12]} from {net.name}: {e}") from e
        self.store.forget(container_id, net.id)

    def disconnect_all(self, container_id: str) -> list[Endpoint]:
        """Every endpoint and the namespace (published ports are the caller's); returns the endpoints."""
        eps = self.store.endpoints(container_id=container_id)
        try:
            for ep in eps:
                if ep.host_veth:
                    self.retire_veth(ep.host_veth)
            netns.remove(eps[0].netns_path if eps else self.netns_path(container_id))
        except (NetlinkError, OSError) as e:
            raise SystemError_(f"disconnecting {container_id[:12]}: {e}") from e
        self.store.forget(container_id)
        return eps

    def retire_veth(self, name: str) -> None:
        """Take the veth off the bridge and down instead of deleting it.

        Deleting a veth costs the kernel tens of milliseconds of RCU grace
        periods; detaching costs well under one, and makes the address safe
        to reuse at once. When the namespace is unmounted right after, the
        kernel deletes the pair by itself; the alias lets reconcile and purge
        find it should something still hold the namespace.
        """
        with Rtnl() as host:
            try:
                host.set_link(name=name, up=False, IFLA_MASTER=0,
                              IFLA_IFALIAS=links.stale_alias(self.daemon_bridge))
            except NetlinkError as e:
                if e.code != errno.ENODEV:
                    raise


def no_link_local6(ifname: str) -> None:
    """Inside the namespace, before the interface goes up: no IPv6 address
    generation on it (IFLA_INET6_ADDR_GEN_MODE none), so it comes up with no
    link-local address and sends nothing. By netlink, not the disable_ipv6
    sysctl: /proc/sys/net/ipv6 is one directory of the host's procfs for
    every namespace, and a namespace's first lookup there walks a dcache
    hash chain with an entry for each namespace that looked before (~1-2 ms
    with 1000 containers); the runtime writes the sysctl through the
    container's own procfs instead (runtime/spec.py)."""
    with Rtnl() as ns:
        ns.set_link(ns.link_index(ifname),
                    IFLA_AF_SPEC={"attrs": [("AF_INET6", {"attrs": [("IFLA_INET6_ADDR_GEN_MODE", IN6_ADDR_GEN_MODE_NONE)]})]})


def without_ipv6(ifname: str) -> None:
    """No IPv6 on an interface of the calling thread's network namespace, set
    before it goes up: a container's on a network without IPv6, and every
    host-side veth. A bridge port
    forwards IPv6 frames without an IPv6 stack of its own; with one, each
    port adds a link-local address and three routes to the host's IPv6
    table, and every interface that goes up or down walks that whole table
    (fib6_ifup/fib6_ifdown): with 1000 containers running, a start and a
    removal spent milliseconds there. A kernel without IPv6 has no file."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "w") as f:
            f.write("1")
    except OSError:
        pass

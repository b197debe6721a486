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
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Callable

from pyroute2 import IPRoute, NetlinkError

from dockyard.errors import DockyardError, Forbidden, InvalidParameter, SystemError_, Unavailable
from dockyard.network import links, netns
from dockyard.network.endpoint import Endpoint
from dockyard.network.hostsetup import VETH_PREFIX
from dockyard.network.ipam import mac_for, reserved_aux
from dockyard.network.record import NetworkRecord
from dockyard.network.rtnl import Rtnl
from dockyard.network.store import NetworkStore

log = logging.getLogger(__name__)


def _quietly(fn: Callable, *args) -> None:
    """Rollback step: log a failure instead of hiding the error that caused the rollback."""
    try:
        fn(*args)
    except Exception:
        log.exception("network rollback step %s%r failed", getattr(fn, "__name__", fn), args)


def plumb_extra(ifname: str, address: IPv4Interface, gateway: IPv4Address | None) -> None:
    """Inside the namespace: a further interface (eth1...) up, and the default route if it is the first."""
    with Rtnl() as ns:
        idx = ns.link_index(ifname)
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
                links: list[tuple[str, str]] | tuple = ()) -> Endpoint:
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
                ep = self._connect(container_id, net, path, hostname, ip, existing, mac, undo)
                ep = Endpoint(**{**ep.as_row(), "aliases": json.dumps(list(aliases or [])), "name": name,
                                 "links": json.dumps([list(link) for link in links])})
                self.store.save_endpoint(ep)
                undo.pop_all()
        except DockyardError:
            raise
        except (NetlinkError, OSError) as e:
            raise SystemError_(f"connecting {container_id[:12]} to {net.name}: {e}") from e
        return ep

    def _connect(self, container_id: str, net: NetworkRecord, path: str, hostname: str | None,
                 requested_ip: str | None, existing: list[Endpoint], mac: str | None,
                 undo: contextlib.ExitStack) -> Endpoint:
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
        subnet = IPv4Network(net.subnet)
        gateway = IPv4Address(net.gateway)
        pool = (config.get("IPAM", {}).get("Config") or [{}])[0]
        ip_range = pool.get("IPRange")
        if requested_ip is not None:
            try:
                IPv4Address(requested_ip)
            except ValueError:
                raise InvalidParameter(f"invalid IPv4 address: {requested_ip}") from None
        ip = self.store.allocate_ip(net.id, str(subnet), str(gateway), container_id, requested_ip, ip_range,
                                    reserved=reserved_aux(pool))
        undo.callback(_quietly, self.store.release_ip, container_id, net.id)
        address = IPv4Interface(f"{ip}/{subnet.prefixlen}")
        if mac:
            if not re.match(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$", mac):
                raise InvalidParameter(f"invalid MAC address: {mac}")
            mac = mac.lower()
        else:
            mac = mac_for(ip)
        host_veth = VETH_PREFIX + secrets.token_hex(4)
        internal = net.internal
        isolate = config.get("EnableICC") is False
        used = {ep.ifname for ep in existing}
        ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
        has_route = any(not self._internal(ep.network_id) for ep in existing if ep.ip)
        route_via = None if (internal or has_route) else gateway

        with Rtnl() as host:   # opened here, so bound to the host namespace for good
            bridge_index = host.link_index(net.bridge)
            if bridge_index is None:
                raise Unavailable(f"bridge {net.bridge} is missing; NetworkManager.setup() must run first")

            def add_veth(ns_fd: int) -> None:
                host.add_veth(host_veth, bridge_index, ifname, ns_fd, mac)
                undo.callback(_quietly, delete_link, host_veth)
                if isolate:
                    host.set_bridge_port(name=host_veth, isolated=True)

            if first:
                def plumb() -> None:   # runs in the new namespace's own thread
                    fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                    try:
                        add_veth(fd)
                    finally:
                        os.close(fd)
                    if route_via is None:
                        plumb_extra(ifname, address, None)
                        with Rtnl() as ns:
                            ns.set_link(name="lo", up=True)
                    else:
                        plumb_inside(address, route_via)

                netns.create(path, then=plumb)
            else:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    add_veth(fd)
                finally:
                    os.close(fd)
                netns.run_in(path, lambda: plumb_extra(ifname, address, route_via))
        return Endpoint(container_id, net.name, net.id, path, ip=ip, prefixlen=subnet.prefixlen,
                        gateway=str(gateway), mac=mac, host_veth=host_veth, subnet=str(subnet),
                        hostname=hostname, ifname=ifname)

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

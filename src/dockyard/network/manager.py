"""The daemon's one entry point to container networking.

`setup` prepares the host once per daemon start (bridge, NAT, forwarding),
`connect`/`disconnect` give each container its own network namespace and,
in bridge mode, a veth into the bridge. The per-container path is netlink
and syscalls only; every step of `connect` registers its own rollback.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import secrets
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Callable, Iterator

from pyroute2 import IPRoute, NetlinkError

from dockyard.errors import Conflict, DockyardError, InvalidParameter, SystemError_, Unavailable
from dockyard.network import firewall, links, netns
from dockyard.network.endpoint import Endpoint
from dockyard.network.ipam import mac_for, parse_bip
from dockyard.network.rtnl import Rtnl
from dockyard.network.store import NetworkStore
from dockyard.network.subnets import pick_free_subnet

__all__ = ["NetworkManager", "Endpoint"]

log = logging.getLogger(__name__)

MODES = ("bridge", "none")
VETH_PREFIX = "dy"
# Serialises subnet choice between daemons on one host (e.g. parallel tests):
# the first creates its bridge, so the next one sees that route and moves on.
HOST_LOCK = "/run/lock/dockyard-network.lock"
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


@contextlib.contextmanager
def _host_lock() -> Iterator[None]:
    os.makedirs(os.path.dirname(HOST_LOCK), exist_ok=True)
    with open(HOST_LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _quietly(fn: Callable, *args) -> None:
    """Rollback step: log a failure instead of hiding the error that caused the rollback."""
    try:
        fn(*args)
    except Exception:
        log.exception("network rollback step %s%r failed", getattr(fn, "__name__", fn), args)


def _plumb_inside(address: IPv4Interface | None, gateway: IPv4Address | None) -> None:
    """Run inside the container namespace: lo up, then eth0's address, link and default route."""
    with Rtnl() as ns:
        ns.set_link(name="lo", up=True)
        if address is None:
            return
        eth0 = ns.link_index("eth0")
        ns.add_address(eth0, address)
        ns.set_link(eth0, up=True)
        ns.add_default_route(gateway, eth0)


def _delete_link(name: str) -> None:
    with IPRoute() as ipr:
        links.delete_link(ipr, name)   # takes the peer inside the namespace with it


class NetworkManager:
    def __init__(self, db, exec_root: str, bridge: str = "dockyard0", bip: str | None = None):
        if not _IFNAME.match(bridge):
            raise InvalidParameter(f"invalid bridge name {bridge!r}: 1-15 of [A-Za-z0-9_.-]")
        self.bridge = bridge
        self.bip = parse_bip(bip) if bip else None
        self.netns_dir = os.path.join(exec_root, "netns")
        self.store = NetworkStore(db)
        # Docker's predefined networks without host state, so their ids exist from the start.
        self.store.save_network("none", "null")
        self.store.save_network("host", "host")

    # -- daemon start ----------------------------------------------------
    def setup(self) -> None:
        """Idempotently prepare the default bridge network on the host."""
        with _host_lock():
            with IPRoute() as ipr:
                subnet, gateway = self._choose_subnet(ipr)
                links.ensure_bridge(ipr, self.bridge, IPv4Interface(f"{gateway}/{subnet.prefixlen}"))
            firewall.enable_ip_forward()
            firewall.install_nat(self.bridge, subnet)
            if firewall.install_forward_accept(self.bridge):
                log.info("iptables FORWARD policy is DROP; accepted traffic for %s", self.bridge)
            self.store.save_network("bridge", "bridge", self.bridge, str(subnet), str(gateway))
        os.makedirs(self.netns_dir, exist_ok=True)

    def _choose_subnet(self, ipr: IPRoute) -> tuple[IPv4Network, IPv4Address]:
        if self.bip is not None:
            return self.bip
        row = self.store.network("bridge")
        if row is not None and row["subnet"]:
            return IPv4Network(row["subnet"]), IPv4Address(row["gateway"])   # stable across restarts
        existing = links.bridge_address(ipr, self.bridge)
        if existing is not None:   # our bridge survived a lost database: keep its addressing
            return existing.network, existing.ip
        subnet = pick_free_subnet(links.host_ipv4_networks(ipr, ignore_link=self.bridge))
        return subnet, subnet.network_address + 1

    # -- per container ---------------------------------------------------
    def netns_path(self, container_id: str) -> str:
        if not container_id or "/" in container_id or container_id in (".", ".."):
            raise InvalidParameter(f"invalid container id {container_id!r}")
        return os.path.join(self.netns_dir, container_id)

    def connect(self, container_id: str, mode: str = "bridge", hostname: str | None = None,
                ip: str | None = None) -> Endpoint:
        """Give the container a fresh network namespace; in bridge mode also eth0 on the bridge.

        `ip` requests a specific address. Raises Conflict if the container
        already has an endpoint: call `disconnect` first.
        """
        if mode not in MODES:
            raise InvalidParameter(f"unsupported network mode {mode!r}")
        path = self.netns_path(container_id)
        if self.store.endpoint(container_id) is not None:
            raise Conflict(f"container {container_id} is already connected to a network")
        net = self.store.network(mode)
        if net is None:
            raise Unavailable(f"network {mode!r} is not set up; NetworkManager.setup() must run first")
        try:
            with contextlib.ExitStack() as undo:
                ep = self._connect(container_id, mode, net, path, hostname, ip, undo)
                self.store.save_endpoint(ep)
                undo.pop_all()
                return ep
        except DockyardError:
            raise
        except (NetlinkError, OSError) as e:
            raise SystemError_(f"connecting {container_id[:12]} to {mode}: {e}") from e

    def _connect(self, container_id, mode, net, path, hostname, requested_ip, undo) -> Endpoint:
        # Without an endpoint record a namespace file here is a leftover of a crash mid-connect.
        netns.remove(path)
        # Registered before create: remove() copes with a half-made namespace.
        undo.callback(_quietly, netns.remove, path)
        if mode == "none":
            netns.create(path, then=lambda: _plumb_inside(None, None))
            return Endpoint(container_id, "none", net["id"], path, hostname=hostname)

        subnet = IPv4Network(net["subnet"])
        gateway = IPv4Address(net["gateway"])
        ip = self.store.allocate_ip(net["id"], str(subnet), str(gateway), container_id, requested_ip)
        undo.callback(_quietly, self.store.release_ips, container_id)
        address = IPv4Interface(f"{ip}/{subnet.prefixlen}")
        mac = mac_for(ip)
        host_veth = VETH_PREFIX + secrets.token_hex(4)

        with Rtnl() as host:   # opened here, so bound to the host namespace for good
            bridge_index = host.link_index(self.bridge)
            if bridge_index is None:
                raise Unavailable(f"bridge {self.bridge} is missing; NetworkManager.setup() must run first")

            def plumb() -> None:   # runs in the new namespace's own thread
                fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    host.add_veth(host_veth, bridge_index, "eth0", fd, mac)
                finally:
                    os.close(fd)
                undo.callback(_quietly, _delete_link, host_veth)
                _plumb_inside(address, gateway)

            netns.create(path, then=plumb)
        return Endpoint(container_id, "bridge", net["id"], path, ip=ip, prefixlen=subnet.prefixlen,
                        gateway=str(gateway), mac=mac, host_veth=host_veth, subnet=str(subnet),
                        hostname=hostname)

    def disconnect(self, container_id: str) -> None:
        """Undo `connect`; safe to repeat and for containers that have nothing."""
        ep = self.store.endpoint(container_id)
        try:
            if ep is not None and ep.host_veth:
                self._retire_veth(ep.host_veth)
            netns.remove(ep.netns_path if ep is not None else self.netns_path(container_id))
        except (NetlinkError, OSError) as e:
            raise SystemError_(f"disconnecting {container_id[:12]}: {e}") from e
        self.store.forget(container_id)

    def _retire_veth(self, name: str) -> None:
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
                              IFLA_IFALIAS=links.stale_alias(self.bridge))
            except NetlinkError as e:
                if e.code != errno.ENODEV:
                    raise

    def endpoint(self, container_id: str) -> Endpoint | None:
        return self.store.endpoint(container_id)

    def reconcile(self, live_container_ids: set[str]) -> None:
        """After a crash: drop every namespace, veth and address not owned by a live container.

        Call at daemon start, before containers are started or connected.
        """
        live = set(live_container_ids)
        endpoints = self.store.endpoints()
        for ep in endpoints:
            if ep.container_id not in live:
                self.disconnect(ep.container_id)
        for owner in self.store.allocation_owners() - live:
            self.store.release_ips(owner)
        if os.path.isdir(self.netns_dir):
            for name in os.listdir(self.netns_dir):
                if name not in live:
                    netns.remove(os.path.join(self.netns_dir, name))
        live_veths = {ep.host_veth for ep in endpoints if ep.container_id in live}
        with IPRoute() as ipr:
            leftovers = [p for p in links.ports_of(ipr, self.bridge)
                         if p.startswith(VETH_PREFIX) and p not in live_veths]
            for name in leftovers + links.stale_veths(ipr, self.bridge):
                links.delete_link(ipr, name)

    # -- inspect ---------------------------------------------------------
    def default_network_info(self) -> dict:
        row = self.store.network("bridge")
        if row is None:
            raise Unavailable("the default bridge network is not set up yet")
        return {"Name": "bridge", "Id": row["id"], "Subnet": row["subnet"],
                "Gateway": row["gateway"], "Bridge": row["bridge"]}

    def network_id(self, name: str) -> str | None:
        """Id of a predefined network ("bridge", "host", "none"), for container inspect."""
        row = self.store.network(name)
        return row["id"] if row is not None else None

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
import json
import logging
import os
import re
import secrets
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Callable, Iterator

from pyroute2 import IPRoute, NetlinkError

from dockyard.errors import (Conflict, DockyardError, Forbidden, InvalidParameter, NotFound, SystemError_,
                             Unavailable)
from dockyard.network import firewall, links, netns, ports, usernets
from dockyard.network.endpoint import Endpoint
from dockyard.network.ipam import mac_for, parse_bip
from dockyard.network.publisher import Publisher
from dockyard.network.rtnl import Rtnl
from dockyard.network.store import NetworkStore
from dockyard.network.subnets import pick_free_subnet

__all__ = ["NetworkManager", "Endpoint"]

log = logging.getLogger(__name__)

MODES = ("bridge", "none")
PREDEFINED = usernets.PREDEFINED
VETH_PREFIX = "dy"
# Serialises subnet choice between daemons on one host (e.g. parallel tests):
# the first creates its bridge, so the next one sees that route and moves on.
HOST_LOCK = "/run/lock/dockyard-network.lock"
_IFNAME = usernets.IFNAME


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


def _set_sysctl(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        log.warning("could not set %s: %s", path, e)


def _route_localnet(bridge: str) -> None:
    # 127.0.0.1-published ports: DNATed loopback packets may leave through this bridge (see ports.py)
    _set_sysctl(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "1")


def _plumb_extra(ifname: str, address: IPv4Interface, gateway: IPv4Address | None) -> None:
    """Inside the namespace: a further interface (eth1...) up, and the default route if it is the first."""
    with Rtnl() as ns:
        idx = ns.link_index(ifname)
        ns.add_address(idx, address)
        ns.set_link(idx, up=True)
        if gateway is not None:
            ns.add_default_route(gateway, idx)


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


def user_bridge_alias(daemon_bridge: str) -> str:
    """IFLA_IFALIAS on every user-network bridge of a daemon, so purge and reconcile find them."""
    return f"dockyard-net:{daemon_bridge}"


def _net_config(row, store: NetworkStore) -> dict:
    return store.network_config(row["id"]) if row is not None else {}


class NetworkManager:
    def __init__(self, db, exec_root: str, bridge: str = "dockyard0", bip: str | None = None):
        if not _IFNAME.match(bridge):
            raise InvalidParameter(f"invalid bridge name {bridge!r}: 1-15 of [A-Za-z0-9_.-]")
        self.bridge = bridge
        self.bip = parse_bip(bip) if bip else None
        self.netns_dir = os.path.join(exec_root, "netns")
        self.store = NetworkStore(db)
        self.ports_table = firewall.table_name(bridge) + "-ports"
        self.dns = None            # network.dns.DnsService, set by the daemon once its loop runs
        self.publisher = Publisher(self.store, self.ports_table)
        self._names: dict[str, list] = {}   # DNS entries per network id
        self.container_name: Callable[[str], str | None] | None = None   # set by the daemon
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
            _route_localnet(self.bridge)
            self.store.save_network("bridge", "bridge", self.bridge, str(subnet), str(gateway))
            from dockyard.network import nft
            nft.run(ports.ruleset(self.ports_table))
            for row in self.user_networks():
                try:
                    self._ensure_user_network(row)
                except (DockyardError, NetlinkError, OSError) as e:   # one broken network must not stop the daemon
                    log.error("could not restore network %s (%s): %s", row["name"], row["bridge"], e)
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

    # -- user-defined networks -------------------------------------------
    def bridge_alias(self) -> str:
        return user_bridge_alias(self.bridge)

    def user_networks(self) -> list:
        return [r for r in self.store.networks() if r["name"] not in PREDEFINED]

    def networks(self) -> list:
        return self.store.networks()

    def config(self, row) -> dict:
        return _net_config(row, self.store)

    def find(self, ref: str):
        """A network by full id, exact name, or unique id prefix (as containers are found)."""
        if not ref:
            raise NotFound("network  not found")
        if ref == "default":   # NetworkMode "default" (and the CLI's EndpointsConfig key) means bridge
            ref = "bridge"
        rows = self.store.networks()
        for r in rows:
            if r["id"] == ref:
                return r
        for r in rows:
            if r["name"] == ref:
                return r
        hits = [r for r in rows if r["id"].startswith(ref)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise NotFound(f"network {ref} is ambiguous ({len(hits)} matches found based on ID prefix)")
        raise NotFound(f"network {ref} not found")

    def create_network(self, name: str, **body) -> str:
        """Make a bridge network (usernets.plan's keywords): bridge, rules, DNS listener; all or nothing."""
        if self.store.network(name) is not None:
            raise Conflict(f"network with name {name} already exists")
        with _host_lock():   # subnet choice sees every other daemon's bridges
            with IPRoute() as ipr:
                taken = [IPv4Network(r["subnet"]) for r in self.store.networks() if r["subnet"]]
                p = usernets.plan(name, taken=taken,
                                  pick_subnet=lambda: pick_free_subnet(links.host_ipv4_networks(ipr) + taken),
                                  **body)
                if links.index_of(ipr, p.bridge) is not None:
                    raise Conflict(f"bridge {p.bridge} already exists on the host")
            row = {"id": p.id, "name": name, "bridge": p.bridge, "subnet": str(p.subnet), "gateway": str(p.gateway)}
            try:
                with contextlib.ExitStack() as undo:
                    undo.callback(_quietly, self._remove_host_state, p.bridge, p.id)
                    self._ensure_user_network(row, p.config)
                    self.store.create_network(p.id, name, p.bridge, str(p.subnet), str(p.gateway), p.config)
                    undo.pop_all()
            except (NetlinkError, OSError) as e:
                raise SystemError_(f"creating network {name}: {e}") from e
        return p.id

    def _ensure_user_network(self, row, config: dict | None = None) -> None:
        """Host state of one user network: bridge with our alias, rules, DNS listener (idempotent)."""
        config = config if config is not None else self.config(row)
        subnet, gateway, bridge = IPv4Network(row["subnet"]), IPv4Address(row["gateway"]), row["bridge"]
        with IPRoute() as ipr:
            idx = links.ensure_bridge(ipr, bridge, IPv4Interface(f"{gateway}/{subnet.prefixlen}"))
            ipr.link("set", index=idx, ifalias=self.bridge_alias())
        internal = bool(config.get("Internal"))
        firewall.install_network(firewall.network_table(self.bridge, bridge), bridge, subnet, internal,
                                 isolate_from=(self.bridge, "br-*"))
        if not internal:
            firewall.install_forward_accept(bridge)
            _route_localnet(bridge)
        if self.dns is not None:
            firewall.install_dns_accept(bridge)
            self.dns.listen(row["id"], str(gateway))

    def _remove_host_state(self, bridge: str, network_id: str | None) -> None:
        if network_id is not None and self.dns is not None:
            self.dns.close(network_id)
        with IPRoute() as ipr:
            for name in [p for p in links.ports_of(ipr, bridge) if p.startswith(VETH_PREFIX)]:
                links.delete_link(ipr, name)
            for name in links.stale_veths(ipr, bridge):
                links.delete_link(ipr, name)
            idx = links.index_of(ipr, bridge)
            if idx is not None and ipr.get_links(idx)[0].get("ifalias") == self.bridge_alias():
                links.delete_link(ipr, bridge)
        firewall.remove_network(firewall.network_table(self.bridge, bridge))
        firewall.remove_forward_accept(bridge)

    def remove_network(self, ref: str) -> None:
        row = self.find(ref)
        if row["name"] in PREDEFINED:
            raise Forbidden(f"{row['name']} is a pre-defined network and cannot be removed")
        if self.store.endpoints(network_id=row["id"]):
            raise Forbidden(f"error while removing network: network {row['name']} id {row['id']} "
                            "has active endpoints")
        try:
            self._remove_host_state(row["bridge"], row["id"])
        except (NetlinkError, OSError) as e:
            raise SystemError_(f"removing network {row['name']}: {e}") from e
        self.store.delete_network(row["id"])
        self._names.pop(row["id"], None)

    # -- DNS -------------------------------------------------------------
    def _dns_entries(self, network_id: str) -> list[tuple[str, str, list[str]]]:
        """(ip, container id, aliases) of the network's endpoints, cached until connect/disconnect."""
        entries = self._names.get(network_id)
        if entries is None:
            entries = [(ep.ip, ep.container_id, [ep.name or "", *ep.alias_list])
                       for ep in self.store.endpoints(network_id=network_id) if ep.ip]
            self._names[network_id] = entries
        return entries

    def _current_name(self, container_id: str, recorded: str) -> str:
        # the container's name now (a rename shows at once), else the one recorded at connect
        name = self.container_name(container_id) if self.container_name is not None else None
        return name or recorded

    def dns_names(self, network_id: str) -> dict[str, list[str]]:
        """lower-case name -> addresses: container names, short ids and aliases, for the network's DNS."""
        names: dict[str, list[str]] = {}
        for ip, cid, (recorded, *aliases) in self._dns_entries(network_id):
            for n in (self._current_name(cid, recorded), cid[:12], *aliases):
                if n:
                    names.setdefault(n.lower().rstrip("."), []).append(ip)
        return names

    def dns_forwards(self, network_id: str) -> bool:
        """Whether other names are forwarded to the host's resolvers: not from Internal networks."""
        row = self.store.network_by_id(network_id)
        return row is not None and not self.config(row).get("Internal")

    def dns_reverse(self, network_id: str, ip: str) -> str | None:
        for addr, cid, (recorded, *_aliases) in self._dns_entries(network_id):
            if addr == ip:
                return self._current_name(cid, recorded) or cid[:12]
        return None

    # -- per container ---------------------------------------------------
    def netns_path(self, container_id: str) -> str:
        if not container_id or "/" in container_id or container_id in (".", ".."):
            raise InvalidParameter(f"invalid container id {container_id!r}")
        return os.path.join(self.netns_dir, container_id)

    def _row_for(self, mode: str):
        if mode in MODES:
            net = self.store.network(mode)
            if net is None:
                raise Unavailable(f"network {mode!r} is not set up; NetworkManager.setup() must run first")
            return net
        net = self.find(mode)
        if net["name"] == "host":
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        return net

    def connect(self, container_id: str, mode: str = "bridge", hostname: str | None = None,
                ip: str | None = None, aliases: list[str] | tuple = (), mac: str | None = None,
                name: str | None = None) -> Endpoint:
        """Attach the container to a network (a name, id or "bridge"/"none").

        The first network creates the container's namespace (its interface is
        eth0); later ones add eth1, eth2... to the live namespace. `ip`
        requests a specific address. Raises Forbidden if the container is
        already on that network.
        """
        path = self.netns_path(container_id)
        net = self._row_for(mode)
        existing = self.store.endpoints(container_id=container_id)
        if any(ep.network_id == net["id"] for ep in existing):
            raise Forbidden(f"endpoint with name {name or container_id[:12]} already exists in network "
                            f"{net['name']}")
        if existing and (net["name"] == "none" or any(ep.network == "none" for ep in existing)):
            raise Forbidden("container cannot be connected to multiple networks with one of the networks in "
                            "private (none) mode")
        config = self.config(net)
        try:
            with contextlib.ExitStack() as undo:
                ep = self._connect(container_id, net, config, path, hostname, ip, existing, mac, undo)
                ep = Endpoint(**{**ep.as_row(), "aliases": json.dumps(list(aliases or [])), "name": name})
                self.store.save_endpoint(ep)
                undo.pop_all()
        except DockyardError:
            raise
        except (NetlinkError, OSError) as e:
            raise SystemError_(f"connecting {container_id[:12]} to {net['name']}: {e}") from e
        self._names.pop(net["id"], None)
        return ep

    def _connect(self, container_id, net, config, path, hostname, requested_ip, existing, mac,
                 undo) -> Endpoint:
        first = not existing
        if first:
            # Without an endpoint record a namespace file here is a leftover of a crash mid-connect.
            netns.remove(path)
            # Registered before create: remove() copes with a half-made namespace.
            undo.callback(_quietly, netns.remove, path)
        if net["name"] == "none":
            netns.create(path, then=lambda: _plumb_inside(None, None))
            return Endpoint(container_id, "none", net["id"], path, hostname=hostname)

        subnet = IPv4Network(net["subnet"])
        gateway = IPv4Address(net["gateway"])
        ip_range = (config.get("IPAM", {}).get("Config") or [{}])[0].get("IPRange")
        if requested_ip is not None:
            try:
                IPv4Address(requested_ip)
            except ValueError:
                raise InvalidParameter(f"invalid IPv4 address: {requested_ip}") from None
        ip = self.store.allocate_ip(net["id"], str(subnet), str(gateway), container_id, requested_ip, ip_range)
        undo.callback(_quietly, self.store.release_ip, container_id, net["id"])
        address = IPv4Interface(f"{ip}/{subnet.prefixlen}")
        if mac:
            if not re.match(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$", mac):
                raise InvalidParameter(f"invalid MAC address: {mac}")
            mac = mac.lower()
        else:
            mac = mac_for(ip)
        host_veth = VETH_PREFIX + secrets.token_hex(4)
        internal = bool(config.get("Internal"))
        isolate = config.get("EnableICC") is False
        used = {ep.ifname for ep in existing}
        ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
        has_route = any(not ep_internal for ep_internal in
                        (bool(self.config(self.store.network_by_id(ep.network_id)).get("Internal"))
                         for ep in existing if ep.ip))
        route_via = None if (internal or has_route) else gateway

        with Rtnl() as host:   # opened here, so bound to the host namespace for good
            bridge_index = host.link_index(net["bridge"])
            if bridge_index is None:
                raise Unavailable(f"bridge {net['bridge']} is missing; NetworkManager.setup() must run first")

            def add_veth(ns_fd: int) -> None:
                host.add_veth(host_veth, bridge_index, ifname, ns_fd, mac)
                undo.callback(_quietly, _delete_link, host_veth)
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
                        _plumb_extra(ifname, address, None)
                        with Rtnl() as ns:
                            ns.set_link(name="lo", up=True)
                    else:
                        _plumb_inside(address, route_via)

                netns.create(path, then=plumb)
            else:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    add_veth(fd)
                finally:
                    os.close(fd)
                netns.run_in(path, lambda: _plumb_extra(ifname, address, route_via))
        return Endpoint(container_id, net["name"], net["id"], path, ip=ip, prefixlen=subnet.prefixlen,
                        gateway=str(gateway), mac=mac, host_veth=host_veth, subnet=str(subnet),
                        hostname=hostname, ifname=ifname)

    def disconnect(self, container_id: str, network: str | None = None) -> None:
        """Undo `connect`: every network (and the namespace) when network is None, else just that one.

        Safe to repeat and for containers that have nothing.
        """
        if network is not None:
            net = self.find(network)
            ep = self.store.endpoint(container_id, net["id"])
            if ep is None:
                raise Forbidden(f"container {container_id} is not connected to network {net['name']}")
            if self.store.ports(container_id) and ep.ifname == "eth0":
                raise Forbidden("cannot disconnect the network its published ports go to; stop the container")
            try:
                if ep.host_veth:
                    _delete_link(ep.host_veth)   # live: the interface must leave the container now
            except (NetlinkError, OSError) as e:
                raise SystemError_(f"disconnecting {container_id[:12]} from {net['name']}: {e}") from e
            self.store.forget(container_id, net["id"])
            self._names.pop(net["id"], None)
            return
        eps = self.store.endpoints(container_id=container_id)
        self.unpublish(container_id)
        try:
            for ep in eps:
                if ep.host_veth:
                    self._retire_veth(ep.host_veth)
            netns.remove(eps[0].netns_path if eps else self.netns_path(container_id))
        except (NetlinkError, OSError) as e:
            raise SystemError_(f"disconnecting {container_id[:12]}: {e}") from e
        self.store.forget(container_id)
        for ep in eps:
            self._names.pop(ep.network_id, None)

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

    def endpoint(self, container_id: str, network_id: str | None = None) -> Endpoint | None:
        return self.store.endpoint(container_id, network_id)

    def endpoints(self, container_id: str) -> list[Endpoint]:
        return self.store.endpoints(container_id=container_id)

    # -- published ports (network/publisher.py) ---------------------------
    def publish(self, container_id: str, container_ip: str, bindings: list) -> list[tuple]:
        """Hold the host ports and add the DNAT elements; all or nothing."""
        ep = self.store.endpoint(container_id)
        return self.publisher.publish(container_id, container_ip, bindings, ep.host_veth if ep else None)

    def published(self, container_id: str) -> list[tuple]:
        return self.publisher.published(container_id)

    def unpublish(self, container_id: str) -> None:
        self.publisher.unpublish(container_id)

    def reconcile(self, live_container_ids: set[str]) -> None:
        """After a crash: drop every namespace, veth and address not owned by a live container.

        Call at daemon start, before containers are started or connected.
        """
        live = set(live_container_ids)
        endpoints = self.store.endpoints()
        for cid in {ep.container_id for ep in endpoints} - live:
            self.disconnect(cid)
        for owner in self.store.allocation_owners() - live:
            self.store.release_ips(owner)
        if os.path.isdir(self.netns_dir):
            for name in os.listdir(self.netns_dir):
                if name not in live:
                    netns.remove(os.path.join(self.netns_dir, name))
        self.publisher.restore(live)
        live_veths = {ep.host_veth for ep in endpoints if ep.container_id in live}
        known = {r["bridge"] for r in self.store.networks() if r["bridge"]}
        with IPRoute() as ipr:
            bridges = [self.bridge] + [r["bridge"] for r in self.user_networks()]
            leftovers = [p for b in bridges for p in links.ports_of(ipr, b)
                         if p.startswith(VETH_PREFIX) and p not in live_veths]
            for name in leftovers + links.stale_veths(ipr, self.bridge):
                links.delete_link(ipr, name)
            orphans = [link.get("ifname") for link in ipr.get_links()
                       if link.get("ifalias") == self.bridge_alias() and link.get("ifname") not in known]
        for bridge in orphans:   # networks removed while their host state survived (crash mid-remove)
            self._remove_host_state(bridge, None)

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

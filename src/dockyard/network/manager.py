"""The daemon's one entry point to container networking.

`NetworkManager` is a facade over the parts that each do one job, and it
tells `docker events` about networks as a resource:

  hostsetup.py  the host: default bridge, NAT, forwarding; user networks' host state
  catalog.py    networks as a resource: find, create, remove, prune
  names.py      the DNS name registry of user networks (for resolver.py)
  plumbing.py   per container: namespace, veths, addresses, routes
  publisher.py  published ports

`setup` prepares the host once per daemon start; `connect`/`disconnect`
give each container its own network namespace and, in bridge mode, a veth
into the bridge. Networks are handed out as `NetworkRecord`s.

Collaborators come in through the constructor (`container_name`, the event
sink `emit`) and `setup(dns)`; the attributes `dns` and `container_name`
stay assignable while the daemon still sets them after construction.
"""
from __future__ import annotations

import logging
import os
from typing import Protocol

from pyroute2 import IPRoute

from dockyard import linux
from dockyard.errors import Forbidden, InvalidParameter, NoSpace, Unavailable
from dockyard.network import firewall, links, netns, usernets
from dockyard.network.catalog import NetworkCatalog, PruneFilter
from dockyard.network.endpoint import Endpoint
from dockyard.network.hostsetup import (VETH_PREFIX, host_lock, remove_host_state, setup_default_bridge,
                                        user_bridge_alias)
from dockyard.network.ipam import parse_bip
from dockyard.network.names import ContainerName, NameRegistry
from dockyard.network.plumbing import Plumbing
from dockyard.network.publisher import PortRelay, Publisher
from dockyard.network.record import NetworkRecord
from dockyard.network.store import NetworkStore

log = logging.getLogger("dockyard.network")

__all__ = ["NetworkManager", "NetworkRecord", "Endpoint", "EventSink", "user_bridge_alias"]

MODES = ("bridge", "none")
PREDEFINED = usernets.PREDEFINED
_IFNAME = usernets.IFNAME


class DnsListener(Protocol):
    """network.resolver.DnsService as the manager uses it: the embedded DNS server of each container
    on a user network."""

    def listen(self, container_id: str, netns_path: str, servers: list[str] | tuple = (),
               replace: bool = False) -> None: ...

    def close(self, container_id: str) -> None: ...

    def listening(self, container_id: str) -> bool: ...

    def close_all(self) -> None: ...


class EventSink(Protocol):
    """Where events go: `daemon.events.Events.emit`."""

    def __call__(self, type: str, action: str, actor_id: str, attributes: dict | None = None) -> object: ...


class NetworkManager:
    def __init__(self, db, exec_root: str, bridge: str = "dockyard0", bip: str | None = None, *,
                 ipv6: bool = False, fixed_cidr_v6: str | None = None, address_pools: tuple = (),
                 container_name: ContainerName | None = None, emit: EventSink | None = None):
        if not _IFNAME.match(bridge):
            raise InvalidParameter(f"invalid bridge name {bridge!r}: 1-15 of [A-Za-z0-9_.-]")
        self.bridge = bridge
        self.bip = parse_bip(bip) if bip else None
        self.ipv6, self.fixed_cidr_v6 = ipv6, fixed_cidr_v6   # the default bridge's IPv6 (dockerd's flags)
        self.address_pools = tuple(address_pools)   # dockerd's default address pools (subnets.Pool)
        self.netns_dir = os.path.join(exec_root, "netns")
        self.store = NetworkStore(db)
        self.ports_table = firewall.table_name(bridge) + "-ports"
        self.dns: DnsListener | None = None      # the containers' DNS (network.resolver.DnsService), from setup()
        self.emit: EventSink | None = emit
        self.publisher = Publisher(self.store, self.ports_table)
        self._catalog = NetworkCatalog(self.store, bridge, self.address_pools)
        self._names = NameRegistry(self.store, container_name)
        self._plumbing = Plumbing(self.store, self.netns_dir, bridge)
        # Docker's predefined networks without host state, so their ids exist from the start.
        self.store.save_network("none", "null")
        self.store.save_network("host", "host")

    @property
    def container_name(self) -> ContainerName | None:
        return self._names.container_name

    @container_name.setter
    def container_name(self, fn: ContainerName | None) -> None:   # transitional: the daemon sets it late
        self._names.container_name = fn

    # -- daemon start ----------------------------------------------------
    def setup(self, dns: DnsListener | None = None, proxy: PortRelay | None = None) -> None:
        """Idempotently prepare the default bridge network and the user networks on the host;
        `dns` serves the containers' names (it needs this manager, hence not a constructor arg),
        `proxy` relays published ports' IPv6 binds (both run on the daemon's loop)."""
        if dns is not None:
            self.dns = dns
        if proxy is not None:
            self.publisher.proxy = proxy
        with host_lock():
            setup_default_bridge(self.store, self.bridge, self.bip, self.ports_table,
                                 ipv6=self.ipv6, fixed_cidr_v6=self.fixed_cidr_v6, pools=self.address_pools)
            self._catalog.restore()
        # a mount of its own: the pins hang off it, not off the exec root's filesystem (linux.mount_dir)
        linux.mount_dir(self.netns_dir, mode=0o755)

    # -- networks as a resource (catalog.py) -------------------------------
    def bridge_alias(self) -> str:
        return user_bridge_alias(self.bridge)

    def user_networks(self) -> list[NetworkRecord]:
        return self._catalog.user_networks()

    def networks(self) -> list[NetworkRecord]:
        return self._catalog.all()

    @property
    def generation(self) -> int:
        """Moves whenever a network is made or removed (NetworkStore.generation)."""
        return self.store.generation

    def config(self, rec: NetworkRecord | None) -> dict:
        return dict(rec.config) if rec is not None else {}

    def find(self, ref: str) -> NetworkRecord:
        """A network by full id, exact name, or unique id prefix (as containers are found)."""
        return self._catalog.find(ref)

    def network_endpoints(self, network_id: str) -> list[Endpoint]:
        return self.store.endpoints(network_id=network_id)

    def create_network(self, name: str, **body) -> str:
        """Make a bridge network (usernets.plan's keywords): bridge, rules; all or nothing."""
        rec = self._catalog.create(name, **body)
        self._event("create", rec)
        return rec.id

    def remove_network(self, ref: str) -> None:
        rec = self.find(ref)
        self._catalog.remove(rec)
        self._names.forget(rec.id)
        self._event("destroy", rec)

    def prune(self, keep: PruneFilter) -> list[str]:
        """Remove user networks without endpoints that `keep(network, config)` selects;
        returns their names."""
        removed = self._catalog.prune(keep)
        for rec in removed:
            self._names.forget(rec.id)
            self._event("destroy", rec)
        if self.emit is not None:
            self.emit("network", "prune", "", {"reclaimed": 0})     # as dockerd: nothing to count
        return [rec.name for rec in removed]

    def _event(self, action: str, rec: NetworkRecord) -> None:
        if self.emit is not None:
            self.emit("network", action, rec.id, {"name": rec.name, "type": rec.driver})

    # -- DNS (names.py, resolver.py) ------------------------------------------
    def dns_names(self, container_id: str) -> dict[str, list[str]]:
        """lower-case name -> addresses on the container's user networks, for its resolver (its
        legacy links' aliases included: dockerd answers those only to the linking container)."""
        return self._names.container_names(container_id)

    def dns_forwards(self, container_id: str) -> bool:
        return self._names.forwards(container_id)

    def dns_reverse(self, container_id: str, ip: str) -> str | None:
        return self._names.reverse(container_id, ip)

    def dns_listening(self, container_id: str) -> bool:
        return self.dns is not None and self.dns.listening(container_id)

    def start_resolver(self, container_id: str, servers: list[str] | tuple = (), replace: bool = False) -> bool:
        """The embedded DNS server (127.0.0.11) in the namespace of a container on a user network,
        forwarding to `servers` (its --dns) or the host's resolvers; again after a daemon restart
        (`replace`: the namespace has the last daemon's rules). False when the container is on no
        user network (or there is no DNS service)."""
        eps = self.store.endpoints(container_id=container_id)
        if self.dns is None or not any(ep.network not in MODES for ep in eps):
            return False
        self.dns.listen(container_id, eps[0].netns_path, servers, replace)
        return True

    # -- per container (plumbing.py) -----------------------------------------
    def netns_path(self, container_id: str) -> str:
        return self._plumbing.netns_path(container_id)

    def _network_for(self, mode: str) -> NetworkRecord:
        if mode in MODES:
            net = self.store.network(mode)
            if net is None:
                raise Unavailable(f"network {mode!r} is not set up; NetworkManager.setup() must run first")
            return net
        net = self.find(mode)
        if net.name == "host":
            raise Forbidden("container cannot be disconnected from host network or connected to host network")
        return net

    def connect(self, container_id: str, mode: str = "bridge", hostname: str | None = None,
                ip: str | None = None, aliases: list[str] | tuple = (), mac: str | None = None,
                name: str | None = None, links: list[tuple[str, str]] | tuple = (),
                ip6: str | None = None, link_local: list[str] | tuple = (), live: bool = False) -> Endpoint:
        """Attach the container to a network (a name, id or "bridge"/"none").

        The first network creates the container's namespace (its interface is
        eth0); later ones add eth1, eth2... to the live namespace. `ip`
        requests a specific address; `links` are (alias, target) names only
        this container resolves there; `link_local` (--link-local-ip) are added to its interface
        there; `live`: the container runs (a network connected to it, not a
        start: no runtime will set its interface's sysctls). Raises Forbidden
        if the container is already on that network.
        """
        self.netns_path(container_id)
        net = self._network_for(mode)
        ep = self._plumbing.connect(container_id, net, hostname, ip, aliases, mac, name, links, ip6, link_local,
                                    live=live)
        self._names.connected(ep)
        return ep

    def disconnect(self, container_id: str, network: str | None = None) -> None:
        """Undo `connect`: every network (and the namespace) when network is None, else just that one.

        Safe to repeat and for containers that have nothing.
        """
        if network is not None:
            net = self.find(network)
            self._plumbing.disconnect_one(container_id, net)
            self._names.disconnected(container_id, net.id)
            return
        self.unpublish(container_id)
        if self.dns is not None:
            self.dns.close(container_id)   # its rules go with the namespace
        for ep in self._plumbing.disconnect_all(container_id):
            self._names.disconnected(container_id, ep.network_id)

    def endpoint(self, container_id: str, network_id: str | None = None) -> Endpoint | None:
        return self.store.endpoint(container_id, network_id)

    def endpoints(self, container_id: str) -> list[Endpoint]:
        return self.store.endpoints(container_id=container_id)

    # -- published ports (publisher.py) ---------------------------------------
    def publish(self, container_id: str, container_ip: str | None, bindings: list,
                container_ip6: str | None = None) -> list[tuple]:
        """Hold the host ports and add the DNAT elements (both families); all or nothing."""
        ep = self.store.endpoint(container_id)
        return self.publisher.publish(container_id, container_ip, bindings, ep.host_veth if ep else None,
                                      container_ip6)

    def release_mounts(self) -> None:
        """Daemon shutdown: the pins' directory is unmounted once no pin is left in it."""
        try:
            linux.unmount_dir(self.netns_dir)
        except OSError:     # busy: the next daemon adopts it
            pass

    def close_proxy(self) -> None:
        """Daemon shutdown: the IPv6 relays stop (they come back with the next start's restore)."""
        if self.publisher.proxy is not None:
            self.publisher.proxy.close_all()

    def published(self, container_id: str) -> list[tuple]:
        return self.publisher.published(container_id)

    def unpublish(self, container_id: str) -> None:
        self.publisher.unpublish(container_id)

    # -- after a crash ---------------------------------------------------------
    def reconcile(self, live_container_ids: set[str]) -> None:
        """After a crash: drop every namespace, veth and address not owned by a live container.

        Call at daemon start, before containers are started or connected.
        """
        live = set(live_container_ids)
        endpoints = self.store.endpoints()
        try:
            for cid in {ep.container_id for ep in endpoints} - live:
                self.disconnect(cid)
            for owner in self.store.allocation_owners() - live:
                self.store.release_ips(owner)
        except NoSpace as e:     # the records stay until a start has space; the host state goes now
            log.warning("network records of gone containers kept: %s", e)
        if os.path.isdir(self.netns_dir):
            for name in os.listdir(self.netns_dir):
                if name not in live:
                    netns.remove(os.path.join(self.netns_dir, name))
        self.publisher.restore(live)
        live_veths = {ep.host_veth for ep in endpoints if ep.container_id in live}
        known = {r.bridge for r in self.store.networks() if r.bridge}
        with IPRoute() as ipr:
            bridges = [self.bridge] + [r.bridge for r in self.user_networks()]
            leftovers = [p for b in bridges for p in links.ports_of(ipr, b)
                         if p.startswith(VETH_PREFIX) and p not in live_veths]
            for name in leftovers + links.stale_veths(ipr, self.bridge):
                links.delete_link(ipr, name)
            orphans = [link.get("ifname") for link in ipr.get_links()
                       if link.get("ifalias") == self.bridge_alias() and link.get("ifname") not in known]
        for bridge in orphans:   # networks removed while their host state survived (crash mid-remove)
            remove_host_state(self.bridge, bridge)

    # -- inspect ---------------------------------------------------------
    def default_network_info(self) -> dict:
        rec = self.store.network("bridge")
        if rec is None:
            raise Unavailable("the default bridge network is not set up yet")
        return {"Name": "bridge", "Id": rec.id, "Subnet": rec.subnet,
                "Gateway": rec.gateway, "Bridge": rec.bridge}

    def network_id(self, name: str) -> str | None:
        """Id of a predefined network ("bridge", "host", "none"), for container inspect."""
        rec = self.store.network(name)
        return rec.id if rec is not None else None

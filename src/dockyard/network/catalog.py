"""The networks as a resource: find, create, remove, prune. Creating and
removing a user network makes and undoes its host state (hostsetup.py),
all or nothing."""
from __future__ import annotations

import contextlib
import logging
from ipaddress import IPv4Network
from typing import Callable

from pyroute2 import IPRoute, NetlinkError

from dockyard.errors import (Conflict, DockyardError, Forbidden, InvalidParameter, NotFound, SystemError_,
                             Unavailable)
from dockyard.network import links, usernets
from dockyard.network.hostsetup import ensure_user_network, host_lock, remove_host_state
from dockyard.network.record import NetworkRecord
from dockyard.network.store import NetworkStore
from dockyard.network.subnets import EXHAUSTED, Pool, pick_free_subnet, pick_from_pools

log = logging.getLogger(__name__)

PREDEFINED = usernets.PREDEFINED

# keep(network, its config): whether prune removes it
PruneFilter = Callable[[NetworkRecord, dict], bool]


def _quietly(fn: Callable, *args) -> None:
    """Rollback step: log a failure instead of hiding the error that caused the rollback."""
    try:
        fn(*args)
    except Exception:
        log.exception("network rollback step %s%r failed", getattr(fn, "__name__", fn), args)


class NetworkCatalog:
    def __init__(self, store: NetworkStore, daemon_bridge: str, pools: tuple[Pool, ...] = ()):
        self.store = store
        self.daemon_bridge = daemon_bridge
        # dockerd's default address pools: user networks' subnets when none is asked for
        self.pools4 = tuple(p for p in pools if p.base is not None and p.base.version == 4)
        self.pools6 = tuple(p for p in pools if p.base is not None and p.base.version == 6)

    def all(self) -> list[NetworkRecord]:
        return self.store.networks()

    def user_networks(self) -> list[NetworkRecord]:
        return [r for r in self.store.networks() if r.name not in PREDEFINED]

    def find(self, ref: str) -> NetworkRecord:
        """A network by full id, exact name, or unique id prefix (as containers are found)."""
        if not ref:
            raise NotFound("network  not found")
        if ref == "default":   # NetworkMode "default" (and the CLI's EndpointsConfig key) means bridge
            ref = "bridge"
        # indexed lookups, not every network read and its config parsed: a start asks several times
        rec = self.store.network_by_id(ref) or self.store.network(ref)
        if rec is not None:
            return rec
        hits = self.store.networks_by_id_prefix(ref)
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise NotFound(f"network {ref} is ambiguous ({len(hits)} matches found based on ID prefix)")
        raise NotFound(f"network {ref} not found")

    def restore(self) -> None:
        """At daemon start: the host state of every user network."""
        for rec in self.user_networks():
            try:
                self.ensure(rec)
            except (DockyardError, NetlinkError, OSError) as e:   # one broken network must not stop the daemon
                log.error("could not restore network %s (%s): %s", rec.name, rec.bridge, e)

    def ensure(self, rec: NetworkRecord) -> None:
        ensure_user_network(self.daemon_bridge, rec.bridge, rec.subnet, rec.gateway, rec.config)

    def create(self, name: str, **body) -> NetworkRecord:
        """Make a bridge network (usernets.plan's keywords): bridge, rules; all or nothing."""
        if self.store.network(name) is not None:
            raise Conflict(f"network with name {name} already exists")
        with host_lock():   # subnet choice sees every other daemon's bridges
            with IPRoute() as ipr:
                taken = [IPv4Network(r.subnet) for r in self.store.networks() if r.subnet]
                taken6 = [v6[0] for v6 in (usernets.ipv6(r.config) for r in self.store.networks()) if v6]
                p = usernets.plan(name, taken=taken, taken6=taken6,
                                  pick_subnet=lambda: self._pick_subnet(links.host_ipv4_networks(ipr) + taken),
                                  pick_subnet6=(lambda: pick_from_pools(self.pools6, taken6, 6))
                                  if self.pools6 else None,
                                  **body)
                if links.index_of(ipr, p.bridge) is not None:
                    raise Conflict(f"bridge {p.bridge} already exists on the host")
            try:
                with contextlib.ExitStack() as undo:
                    undo.callback(_quietly, remove_host_state, self.daemon_bridge, p.bridge)
                    subnet, gateway = (str(p.subnet), str(p.gateway)) if p.subnet else (None, None)
                    ensure_user_network(self.daemon_bridge, p.bridge, subnet, gateway, p.config)
                    self.store.create_network(p.id, name, p.bridge, subnet, gateway, p.config)
                    undo.pop_all()
            except (NetlinkError, OSError) as e:
                raise SystemError_(f"creating network {name}: {e}") from e
        return self.store.network_by_id(p.id)

    def _pick_subnet(self, in_use: list[IPv4Network]) -> IPv4Network:
        """A free IPv4 subnet for a user network: from the default address pools when the
        daemon has some, else Docker's default candidates; none left: moby 28's error."""
        if self.pools4:
            return pick_from_pools(self.pools4, in_use, 4)
        try:
            return pick_free_subnet(in_use)
        except Unavailable:
            raise InvalidParameter(EXHAUSTED) from None

    def remove(self, rec: NetworkRecord) -> None:
        if rec.name in PREDEFINED:
            raise Forbidden(f"{rec.name} is a pre-defined network and cannot be removed")
        if self.store.endpoints(network_id=rec.id):
            raise Forbidden(f"error while removing network: network {rec.name} id {rec.id} "
                            "has active endpoints")
        try:
            remove_host_state(self.daemon_bridge, rec.bridge)
        except (NetlinkError, OSError) as e:
            raise SystemError_(f"removing network {rec.name}: {e}") from e
        self.store.delete_network(rec.id)

    def prune(self, keep: PruneFilter) -> list[NetworkRecord]:
        """Remove the user networks without endpoints that `keep` selects; returns them."""
        removed = []
        for rec in self.user_networks():
            if self.store.endpoints(network_id=rec.id) or not keep(rec, rec.config):
                continue
            try:
                self.remove(rec)
            except Forbidden:   # a container connected meanwhile
                continue
            removed.append(rec)
        return removed

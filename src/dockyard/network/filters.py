"""`GET /networks` and `POST /networks/prune` filters (moby's
daemon/network/filter.go and prune.go): predicates over the network
manager's records; the query itself is parsed by dockyard.filters."""
from __future__ import annotations

from .. import filters, timestamps
from .record import NetworkRecord

PREDEFINED_DRIVERS = {"bridge": "bridge", "host": "host", "none": "null"}   # built-in name -> driver
LIST_FILTERS = {"name", "id", "driver", "label", "scope", "type", "dangling"}
PRUNE_FILTERS = {"until", "label", "label!"}


def driver(net: NetworkRecord) -> str:
    """The driver Docker shows: the built-in networks' own, else the record's."""
    return PREDEFINED_DRIVERS.get(net.name, net.driver)


def list_keep(nm, f: filters.Filters):
    """The predicate `GET /networks` lists by; `nm` is the network manager."""
    dangling = any(v.lower() in ("true", "1") for v in f["dangling"]) if "dangling" in f else None

    def keep(net: NetworkRecord) -> bool:
        if "name" in f and not any(x in net.name for x in f["name"]):
            return False
        if "id" in f and not any(net.id.startswith(x) for x in f["id"]):
            return False
        if "driver" in f and driver(net) not in f["driver"]:
            return False
        if "label" in f and not filters.labels_match(f, nm.config(net).get("Labels")):
            return False
        if "scope" in f and "local" not in f["scope"]:
            return False
        builtin = net.name in PREDEFINED_DRIVERS
        if "type" in f and not any((t == "builtin") == builtin for t in f["type"]):
            return False
        if dangling is not None:
            used = builtin or bool(nm.store.endpoints(network_id=net.id))
            if dangling == used:
                return False
        return True
    return keep


def prune_keep(f: filters.Filters):
    """The predicate `POST /networks/prune` removes by, `keep(network, config)`:
    labels (`label`, `label!`) and `until` (created before it; a network
    created after stays, as in moby). A bad until is a 400 now."""
    limits = filters.until_limits(f)

    def keep(net: NetworkRecord, cfg: dict) -> bool:
        created = timestamps.parse_ns(net.created)
        if any(created > limit for limit in limits):
            return False
        return filters.prune_labels_match(f, cfg.get("Labels"))
    return keep

"""`GET /containers/json` and `POST /containers/prune` filters: which
containers a list shows and a prune may remove (moby's daemon/list.go and
prune.go). The routes parse the query (dockyard.filters) and render; the
predicates are here."""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .. import filters, timestamps
from ..errors import DockyardError
from . import networking
from .health import status as health_status

if TYPE_CHECKING:
    from ..images.service import ImageService
    from ..network.manager import NetworkManager
    from ..volumes.service import VolumeService
    from .container import Container
    from .events import Events
    from .lookup import ContainerStore

LIST_FILTERS = {"id", "name", "status", "label", "ancestor", "exited", "before", "since", "network",
                "health", "isolation", "is-task", "volume", "publish", "expose"}
PRUNE_FILTERS = {"until", "label", "label!"}


class _Daemon(Protocol):
    containers: ContainerStore
    images: ImageService
    volumes: VolumeService
    networks: NetworkManager      # this and the rest: what networking.py asks of it
    events: Events
    def save(self, c: Container) -> None: ...


def select(d: _Daemon, f: filters.Filters, show_all: bool = False, limit: int = -1) -> list:
    """The containers `GET /containers/json` lists, newest first: running
    ones unless `show_all`, a limit, or a status/exited filter."""
    out = []
    for c in sorted(d.containers, key=lambda c: c.created, reverse=True):
        if not show_all and not c.state.running and limit <= 0 and "status" not in f and "exited" not in f:
            continue
        if not matches(d, c, f):
            continue
        out.append(c)
        if limit and limit > 0 and len(out) >= limit:
            break
    return out


def matches(d: _Daemon, c, f: filters.Filters) -> bool:
    """Every given list filter holds for container c."""
    if "id" in f and not any(c.id.startswith(x) for x in f["id"]):
        return False
    if "network" in f and not networking.on_network(d, c, f["network"]):
        return False
    for key in ("publish", "expose"):
        if key in f and not networking.has_port(c, d.images.config(c.image) or {}, f[key], key == "publish"):
            return False
    if "name" in f and not any(x.lstrip("/") in c.name for x in f["name"]):
        return False
    if "volume" in f and not d.volumes.uses(c.id, f["volume"]):
        return False
    if "status" in f and c.state.status not in f["status"]:
        return False
    if "exited" in f and (c.state.status != "exited" or str(c.state.exit_code) not in f["exited"]):
        return False
    if not filters.labels_match(f, c.config.get("Labels")):
        return False
    if "health" in f and health_status(c) not in f["health"]:
        return False
    if "ancestor" in f and not any(_image_id(d, a) == c.image for a in f["ancestor"]):
        return False
    return True


def _image_id(d: _Daemon, ref: str) -> str | None:
    try:
        return d.images.resolve(ref).id
    except (DockyardError, ValueError):       # an unknown or malformed image matches no container
        return None


def prune_keep(f: filters.Filters):
    """The predicate `POST /containers/prune` removes by: labels (`label`,
    `label!`) and `until` (created before it); a bad until is a 400 now."""
    limits = filters.until_limits(f)

    def keep(c) -> bool:
        if not filters.prune_labels_match(f, c.config.get("Labels")):
            return False
        created = timestamps.parse_ns(c.created)
        return all(created <= limit for limit in limits)
    return keep

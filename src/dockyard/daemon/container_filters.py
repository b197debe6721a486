"""`GET /containers/json` and `POST /containers/prune` filters: which
containers a list shows and a prune may remove (moby's daemon/list.go and
prune.go). The routes parse the query (dockyard.filters) and render; the
predicates are here."""
from __future__ import annotations

from operator import attrgetter
from typing import TYPE_CHECKING, Any, Protocol

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


class Lookups:
    """What a listing looks up for every container, memoized for one request:
    networks by name or id, image configs and image references each cost a
    database read (and a network lookup a scan of every network), once per
    distinct key instead of once per container. Results are shared: read them,
    never change them."""

    def __init__(self, d: _Daemon):
        self.d = d
        self._networks: dict[str, Any] = {}
        self._configs: dict[str, dict] = {}
        self._images: dict[str, str | None] = {}

    def network(self, ref: str):
        """d.networks.find(ref), raising its NotFound the same way."""
        hit = self._networks.get(ref)
        if hit is None:
            try:
                hit = self.d.networks.find(ref)
            except DockyardError as e:
                hit = e
            self._networks[ref] = hit
        if isinstance(hit, DockyardError):
            raise hit
        return hit

    def image_config(self, image_id: str) -> dict:
        cfg = self._configs.get(image_id)
        if cfg is None:
            cfg = self._configs[image_id] = self.d.images.config(image_id) or {}
        return cfg

    def image_id(self, ref: str) -> str | None:
        if ref not in self._images:
            self._images[ref] = _image_id(self.d, ref)
        return self._images[ref]


_CREATED = attrgetter("created")


def select(d: _Daemon, f: filters.Filters, show_all: bool = False, limit: int = -1,
           lookups: Lookups | None = None) -> list:
    """The containers `GET /containers/json` lists, newest first: running
    ones unless `show_all`, a limit, or a status/exited filter."""
    out = []
    lookups = lookups or Lookups(d)
    # iter(): sorted() of the store itself first asks its len(), a second pass over every container
    for c in sorted(iter(d.containers), key=_CREATED, reverse=True):
        if not show_all and not c.state.running and limit <= 0 and "status" not in f and "exited" not in f:
            continue
        if f and not matches(d, c, f, lookups):
            continue
        out.append(c)
        if limit and limit > 0 and len(out) >= limit:
            break
    return out


def matches(d: _Daemon, c, f: filters.Filters, lookups: Lookups | None = None) -> bool:
    """Every given list filter holds for container c."""
    lookups = lookups or Lookups(d)
    if "id" in f and not any(c.id.startswith(x) for x in f["id"]):
        return False
    if "network" in f and not networking.on_network(d, c, f["network"], lookups.network):
        return False
    for key in ("publish", "expose"):
        if key in f and not networking.has_port(c, lookups.image_config(c.image), f[key], key == "publish"):
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
    if "ancestor" in f and not any(lookups.image_id(a) == c.image for a in f["ancestor"]):
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

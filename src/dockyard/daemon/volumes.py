"""Volume verbs with their events: the volume service does the work, this
emits what Docker emits (create, destroy, prune), so the routes only parse
and render."""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from . import resource_events

if TYPE_CHECKING:
    from ..volumes.service import VolumeService
    from .events import Events


class _Daemon(Protocol):
    events: Events
    volumes: VolumeService


def create(d: _Daemon, name: str | None, driver: str | None, options: dict, labels: dict) -> dict:
    vol = d.volumes.create(name, driver, options, labels)
    resource_events.volume(d, vol["Name"], "create", driver=vol.get("Driver", "local"))
    return vol


def remove(d: _Daemon, name: str, force: bool = False) -> None:
    """Blocks on the removal of the data: call it off the event loop."""
    d.volumes.remove(name, force)
    resource_events.volume(d, name, "destroy")


def prune(d: _Daemon, f: dict[str, list[str]]) -> dict:
    """`POST /volumes/prune`: a destroy event per removed volume, then
    Docker's `prune` event with the space reclaimed. Blocks: call it off
    the event loop (events may be emitted from threads)."""
    report = d.volumes.prune(f)
    for name in report.get("VolumesDeleted") or []:
        resource_events.volume(d, name, "destroy")
    d.events.emit("volume", "prune", "", {"reclaimed": report.get("SpaceReclaimed") or 0})
    return report

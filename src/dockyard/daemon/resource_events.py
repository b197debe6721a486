"""Volume events in Docker's shapes (Actor.ID is the volume name), so the
routes and the start path each emit in one line. (Network events are emitted
by daemon/networking.py.)"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..volumes.service import VolumeService
    from .events import Events


class _Daemon(Protocol):
    events: Events
    volumes: VolumeService


def volume(d: _Daemon, name: str, action: str, **attrs) -> None:
    attrs.setdefault("driver", "local")
    d.events.emit("volume", action, name, attrs)


def volume_mounts(d: _Daemon, c, action: str) -> None:
    """`mount` at start / `unmount` at exit, for each named or anonymous volume of c."""
    try:
        points = d.volumes.mounts(c.id)
    except Exception:          # events must never break a start or an exit
        return
    for p in points:
        if p.get("Type") != "volume" or not p.get("Name"):
            continue
        if action == "mount":
            volume(d, p["Name"], "mount", container=c.id, destination=p.get("Destination", ""),
                   propagation=p.get("Propagation", ""), **{"read/write": str(bool(p.get("RW", True))).lower()})
        else:
            volume(d, p["Name"], "unmount", container=c.id)

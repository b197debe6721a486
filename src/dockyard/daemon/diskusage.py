"""What `GET /system/df` reports: images with their container counts and
shared bytes, containers with their writable-layer size, volumes, build
cache (the classic builder's cached step images). Walking container upper dirs is
blocking work: callers run `collect` in a thread."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from ..images.usage import layer_usage
from ..fsutil import dir_size as _dir_size

if TYPE_CHECKING:
    from ..images.service import ImageService
    from ..store.db import Database
    from ..volumes.service import VolumeService
    from .build.service import BuildService
    from .container import Container
    from .lookup import ContainerStore
    from .paths import ContainerPaths

TYPES = ("container", "image", "volume", "build-cache")


class _Daemon(Protocol):
    db: Database
    containers: ContainerStore
    images: ImageService
    volumes: VolumeService
    builder: BuildService
    def paths(self, c: Container) -> ContainerPaths: ...


def collect(d: _Daemon, types: list[str] | None = None) -> dict:
    want = set(types or TYPES)
    out: dict = {}
    if "image" in want:
        layers_size, shared = layer_usage(d.db)
        counts: dict[str, int] = {}
        for c in d.containers:
            counts[c.image] = counts.get(c.image, 0) + 1
        images = d.images.list(all=True)
        for img in images:
            img["Containers"] = counts.get(img["Id"], 0)
            img["SharedSize"] = shared.get(img["Id"], 0)
        out["LayersSize"] = layers_size
        out["Images"] = images
    if "container" in want:
        out["Containers"] = {c.id: container_size(d, c) for c in d.containers}
    if "volume" in want:
        out["Volumes"] = volumes(d)
    if "build-cache" in want:
        out["BuildCache"] = d.builder.usage()
    return out


def container_size(d: _Daemon, c) -> tuple[int, int]:
    """(SizeRw, SizeRootFs): the writable layer, and that plus the image."""
    rw = _dir_size(d.paths(c).rootfs.upper)
    try:
        image_size = d.images.resolve(c.image).size if c.image else 0
    except Exception:           # the image was removed under the container
        image_size = 0
    return rw, rw + image_size


def volumes(d: _Daemon) -> list[dict]:
    """Volumes with UsageData: bytes under the mountpoint, containers using it."""
    svc = d.volumes
    out = []
    for v in svc.list():
        v = dict(v)
        mp = v.get("Mountpoint") or ""
        size = _dir_size(mp) if mp and os.path.isdir(mp) else -1
        v["UsageData"] = {"Size": size, "RefCount": len(svc.users(v["Name"]))}
        out.append(v)
    return out

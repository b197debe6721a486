"""The service behind `docker cp` (both ways), `docker export` and `docker
diff`: it finds the container's root (fsview.container_root: the running
overlay, or one mounted for the operation under the lock), holds it as an fd
(inroot.Root, with the container's volumes and binds), does the work of
archive.py on it, and emits moby's events (`archive-path`, `extract-to-dir`,
`export`). The API handlers only parse, call one of these, and render.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Awaitable, BinaryIO, Callable

from ..errors import DockyardError
from ..inroot import Root
from . import archive, users
from .container import Container
from .fsview import container_root, mount_sources, read_only_mounts


@dataclass
class TarOut:
    """A tar to stream: `produce(out)` writes it (in a worker thread);
    `close()` releases the root (and a stopped container's overlay mounted
    for it). `stat` is the path's X-Docker-Container-Path-Stat document."""
    produce: Callable[[BinaryIO], None]
    close: Callable[[], Awaitable[None]]
    stat: dict | None = None


async def _enter(d, c: Container) -> tuple[str, Callable[[], Awaitable[None]]]:
    cm = container_root(d, c)
    root_dir = await cm.__aenter__()
    return root_dir, lambda: cm.__aexit__(None, None, None)


async def archive_path(d, c: Container, path: str, ref: str, head: bool = False) -> TarOut:
    """GET/HEAD /containers/{id}/archive: the path's stat, and (GET) its tar."""
    mounts = mount_sources(d, c)
    root_dir, leave = await _enter(d, c)
    root = None
    try:
        root = Root(root_dir, mounts)
        doc = await asyncio.to_thread(archive.stat_path, root, path, ref)
    except BaseException:
        if root is not None:
            root.close()
        await leave()
        raise

    async def close() -> None:
        root.close()
        await leave()
    if head:
        await close()
        return TarOut(lambda out: None, _nothing, doc)
    d.event(c, "archive-path")       # moby's event for a copy out (`docker cp CTR:path`)
    return TarOut(lambda out: archive.get_tar(root, path, ref, out), close, doc)


async def _nothing() -> None:
    return None


def _cp_owner(d, c: Container, root_dir: str) -> tuple[int, int] | None:
    """cp -a into a container with a user: its files become that user's, as in
    moby (tarCopyOptions). moby looks the name up on the host; we use the
    container's /etc/passwd and /etc/group, as its processes do."""
    user = c.config.get("User")
    if not user:
        try:
            user = d.images.config(c.image).get("User")
        except DockyardError:   # the image may be gone: no user then
            user = ""
    if not user:
        return None
    uid, gid, _ = users.resolve(user, root_dir)
    return uid, gid


async def extract(d, c: Container, path: str, ref: str, tar_path: str, no_overwrite_dir_non_dir: bool,
                  copy_uid_gid: bool) -> None:
    """PUT /containers/{id}/archive: the tar at `tar_path` extracted at `path`."""
    mounts = mount_sources(d, c)
    read_only = read_only_mounts(d, c)
    async with container_root(d, c) as root_dir:
        owner = _cp_owner(d, c, root_dir) if copy_uid_gid else None
        await asyncio.to_thread(archive.put_path, root_dir, mounts, path, ref, read_only,
                                bool(c.host_config.get("ReadonlyRootfs")), tar_path,
                                no_overwrite_dir_non_dir, copy_uid_gid, owner)
    d.event(c, "extract-to-dir")


async def export(d, c: Container) -> TarOut:
    """GET /containers/{id}/export: the whole root filesystem."""
    root_dir, leave = await _enter(d, c)
    d.event(c, "export")
    return TarOut(lambda out: archive.export_tar(root_dir, out), leave)


async def changes(d, c: Container) -> list[dict[str, Any]]:
    """GET /containers/{id}/changes."""
    upper = d.paths(c).rootfs.upper
    lowers = d.images.lower_dirs(c.image)
    return await asyncio.to_thread(archive.changes, upper, lowers)


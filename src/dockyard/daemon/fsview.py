"""A container's root filesystem as a host path, for cp, export and diff.

A running (or paused) container's overlay is mounted at
rootfs/<id> already; we read and write through it, and writes land
in its upper dir like the container's own. A stopped container's overlay
is mounted for the operation, under the container's lock (so a start
cannot race us and have its rootfs unmounted under it), and unmounted
afterwards. Paths inside are resolved on file descriptors by
`inroot.Root`, which follows symlinks as the container would see them: `/`
is the container's root, never the host's.
"""
from __future__ import annotations

import asyncio
import contextlib
import posixpath
from typing import AsyncIterator

from .. import linux


@contextlib.asynccontextmanager
async def container_root(daemon, c) -> AsyncIterator[str]:
    rootfs = daemon.paths(c).rootfs
    if c.state.running and linux.is_mountpoint(rootfs.merged):
        yield rootfs.merged
        return
    async with c.lock:
        if linux.is_mountpoint(rootfs.merged):   # running, or left by a crash: use, don't unmount
            yield rootfs.merged
            return
        lowers = daemon.images.lower_dirs(c.image)
        await asyncio.to_thread(rootfs.mount, lowers)
        try:
            yield rootfs.merged
        finally:
            await asyncio.to_thread(rootfs.unmount)


def mount_sources(daemon, c) -> dict[str, str]:
    """Container path -> host path of its bind mounts and volumes: what cp
    reads and writes there (the rootfs only has the empty mount point)."""
    out = {}
    for m in daemon.volumes.inspect_mounts(c.id):
        if m.get("Type") in ("bind", "volume") and m.get("Source") and m.get("Destination"):
            out["/" + m["Destination"].strip("/")] = m["Source"]
    return out


def read_only_mounts(daemon, c) -> set[str]:
    """Destinations of the container's read-only mounts (cp must not write there)."""
    return {"/" + m["Destination"].strip("/") for m in daemon.volumes.inspect_mounts(c.id)
            if m.get("Destination") and m.get("RW") is False}


def mount_of(cpath: str, dests) -> str | None:
    """The deepest of `dests` that contains container path `cpath`."""
    best = None
    for d in dests:
        if cpath == d or cpath.startswith(d.rstrip("/") + "/"):
            if best is None or len(d) > len(best):
                best = d
    return best


def clean(path: str) -> str:
    """filepath.Clean of an absolute container path, keeping a trailing "/." or "/"
    (they change what cp means)."""
    p = "/" + posixpath.normpath("/" + path).lstrip("/")     # normpath keeps a leading "//"
    if path.endswith("/."):
        return p.rstrip("/") + "/."
    if path.endswith("/") and p != "/":
        return p + "/"
    return p

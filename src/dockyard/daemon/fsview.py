"""A container's root filesystem as a host path, for cp, export and diff.

A running (or paused) container's overlay is mounted at
overlay/<id>/merged already; we read and write through it, and writes land
in its upper dir like the container's own. A stopped container's overlay
is mounted for the operation, under the container's lock (so a start
cannot race us and have its rootfs unmounted under it), and unmounted
afterwards. Paths inside are resolved by `scoped`, which follows symlinks
as the container would see them: `/` is the container's root, never the
host's.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import posixpath
from typing import AsyncIterator

from .. import linux
from .rootfs import RootFS

_MAX_HOPS = 40


@contextlib.asynccontextmanager
async def container_root(daemon, c) -> AsyncIterator[str]:
    rootfs = RootFS(daemon.config.data_root, c.id)
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
    volumes = getattr(daemon, "volumes", None)
    if volumes is None:
        return {}
    out = {}
    for m in volumes.inspect_mounts(c.id):
        if m.get("Type") in ("bind", "volume") and m.get("Source") and m.get("Destination"):
            out["/" + m["Destination"].strip("/")] = m["Source"]
    return out


def read_only_mounts(daemon, c) -> set[str]:
    """Destinations of the container's read-only mounts (cp must not write there)."""
    volumes = getattr(daemon, "volumes", None)
    if volumes is None:
        return set()
    return {"/" + m["Destination"].strip("/") for m in volumes.inspect_mounts(c.id)
            if m.get("Destination") and m.get("RW") is False}


def mount_of(cpath: str, dests) -> str | None:
    """The deepest of `dests` that contains container path `cpath`."""
    best = None
    for d in dests:
        if cpath == d or cpath.startswith(d.rstrip("/") + "/"):
            if best is None or len(d) > len(best):
                best = d
    return best


def resolve(root: str, path: str, follow_last: bool = True,
            mounts: dict[str, str] | None = None) -> tuple[str, str]:
    """(host path, container path) of container path `path` under `root`,
    every symlink resolved as the container sees it: an absolute target
    restarts at the container's `/`, `..` never climbs above it, and a
    mount point in `mounts` continues in that mount's host source. With
    follow_last=False the last component is not followed. The result may
    not exist."""
    mounts = mounts or {}
    todo = [p for p in path.split("/") if p not in ("", ".")]
    base, prefix, done = root, [], []        # prefix: container components where `base` sits
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            elif prefix:                     # out of a mount: on from its parent, in the rootfs
                todo[:0] = prefix[:-1]
                base, prefix = root, []
            continue
        cur = os.path.join(base, *done, part)
        if (todo or follow_last) and os.path.islink(cur):
            hops += 1
            if hops > _MAX_HOPS:
                raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
            target = os.readlink(cur)
            if target.startswith("/"):
                base, prefix, done = root, [], []
            todo[:0] = [p for p in target.split("/") if p not in ("", ".")]
            continue
        done.append(part)
        src = mounts.get("/" + "/".join(prefix + done))
        if src is not None:
            base, prefix, done = src, prefix + done, []
    host = os.path.join(base, *done) if done else base
    return host, "/" + "/".join(prefix + done)


def scoped(root: str, path: str, follow_last: bool = True, mounts: dict[str, str] | None = None) -> str:
    """The host path of `resolve`."""
    return resolve(root, path, follow_last, mounts)[0]


def container_path(root: str, host_path: str) -> str:
    """Back from a host path under `root` to the container's view."""
    rel = os.path.relpath(host_path, root)
    return "/" if rel == "." else "/" + rel


def clean(path: str) -> str:
    """filepath.Clean of an absolute container path, keeping a trailing "/." or "/"
    (they change what cp means)."""
    p = "/" + posixpath.normpath("/" + path).lstrip("/")     # normpath keeps a leading "//"
    if path.endswith("/."):
        return p.rstrip("/") + "/."
    if path.endswith("/") and p != "/":
        return p + "/"
    return p

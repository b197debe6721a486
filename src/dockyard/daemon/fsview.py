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


def scoped(root: str, path: str, follow_last: bool = True) -> str:
    """The host path of container path `path` under `root`, every symlink
    resolved inside `root` (an absolute link target restarts at `root`, `..`
    stops at it). With follow_last=False the last component is not followed.
    The result may not exist (its parent does, or ENOENT is raised later)."""
    todo = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        cur = os.path.join(root, *done, part)
        if (todo or follow_last) and os.path.islink(cur):
            hops += 1
            if hops > _MAX_HOPS:
                raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
            target = os.readlink(cur)
            if target.startswith("/"):
                done = []
            todo[:0] = [p for p in target.split("/") if p not in ("", ".")]
            continue
        done.append(part)
    return os.path.join(root, *done) if done else root


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

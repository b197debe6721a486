"""Step 2: mount the root filesystem (overlayfs over the image layers)."""
from __future__ import annotations

import asyncio
import os

from ...runtime import userns
from .context import StartContext

NAME = "mount"


async def run(ctx: StartContext) -> None:
    d, c = ctx.daemon, ctx.container
    lowers = d.images.lower_dirs(c.image)
    paths = d.layout.container(c.id)
    rootfs = paths.rootfs
    remap = userns.for_container(d.remap, c.host_config)
    if remap is not None:     # idmapped layers; the upper dir (the rootfs's /) owned by the remapped root
        lowers = await asyncio.to_thread(remap.layers, lowers)
        rootfs.create()
        os.chown(rootfs.upper, *remap.owner)
        os.chmod(paths.dir, 0o711)
    ctx.rootfs = rootfs.mount(lowers)


async def undo(ctx: StartContext) -> None:
    ctx.daemon.teardown.rootfs(ctx.container)

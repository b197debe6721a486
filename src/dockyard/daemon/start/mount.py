"""Step 2: mount the root filesystem (overlayfs over the image layers)."""
from __future__ import annotations

import asyncio
import os

from ...runtime import userns
from ..rootfs import RootFS
from .context import StartContext

NAME = "mount"


async def run(ctx: StartContext) -> None:
    d, c = ctx.daemon, ctx.container
    lowers = d.images.lower_dirs(c.image)
    rootfs = RootFS(d.config.data_root, c.id)
    remap = userns.for_container(d, c)
    if remap is not None:     # idmapped layers; the upper dir (the rootfs's /) owned by the remapped root
        lowers = await asyncio.to_thread(remap.layers, lowers)
        rootfs.create()
        os.chown(rootfs.upper, *remap.owner)
        os.chmod(os.path.join(d.config.data_root, "containers", c.id), 0o711)
    ctx.rootfs = rootfs.mount(lowers)


async def undo(ctx: StartContext) -> None:
    RootFS(ctx.daemon.config.data_root, ctx.container.id).unmount()

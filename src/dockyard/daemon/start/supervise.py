"""Step 6: create the container under conmon (its supervisor), or restore
it from a checkpoint; hand any waiting attach clients the attach socket;
then start it and record the container as running."""
from __future__ import annotations

import os
import time

from ...errors import SystemError_
from ...runtime import cgroups, conmon, mntns
from ...runtime.devices import drop_dev_core
from .context import StartContext

NAME = "supervise"


class RuntimeFailed(SystemError_):
    def __init__(self, message: str):
        super().__init__(f"failed to create task for container: OCI runtime create failed: {message}: unknown")


async def run(ctx: StartContext) -> None:
    d, c = ctx.daemon, ctx.container
    os.makedirs(os.path.dirname(ctx.paths.log_path), exist_ok=True)
    opts = dict(tty=c.tty, stdin=bool(c.config.get("OpenStdin")), no_pivot=d.facts.ramdisk,
                stdin_once=bool(c.config.get("StdinOnce")) and not c.tty,
                keep_log=(c.host_config.get("LogConfig") or {}).get("Type") != "none",
                log_level="debug" if d.config.debug else "info",
                # conmon and the runtime start in a namespace without the other containers' mounts
                carry=mntns.carried_paths(ctx.spec))
    t0 = time.perf_counter()
    try:
        if ctx.restore:   # from a checkpoint: fresh stdio pipes, the same log
            r = ctx.restore
            ctx.pid, ctx.conmon_pid = await ctx.runtime.restore(
                c.id, c.name, ctx.paths, r.criu, r.image_dir, r.make_work_dir(ctx.paths.bundle), **opts)
        else:
            ctx.pid, ctx.conmon_pid = await ctx.runtime.create(c.id, c.name, ctx.paths, **opts)
    except conmon.CreateFailed as e:
        if ctx.restore:
            # a failed restore may leave the runtime's state and cgroups (crun does): gone, so a
            # retry or a plain start can run
            await ctx.runtime.delete(c.id, force=True, check=False)
            cgroups.remove_container(d.teardown.cgroup_parent, c.id)
            raise ctx.restore.failed(ctx.paths.bundle, str(e)) from None
        raise RuntimeFailed(str(e)) from None
    # attach clients that came before start get the stream from the first byte
    d.attach.connect_waiters(c, ctx.paths)
    if ctx.restore:
        return      # restored: it runs already
    drop_dev_core(ctx.pid)      # crun's extra /dev/core: the container's /dev as dockerd's
    t1 = time.perf_counter()
    await ctx.runtime.start(c.id)
    ctx.trace.detail("supervise", {"conmon+create ms": round((t1 - t0) * 1000, 3),
                                   "start ms": round((time.perf_counter() - t1) * 1000, 3)})


async def undo(ctx: StartContext) -> None:
    await ctx.daemon.teardown.supervisor(ctx.container, ctx.conmon_pid)

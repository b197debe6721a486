"""Step 5: write the bundle (0700 dir, config.json) under the exec root."""
from __future__ import annotations

import os

from ...runtime import bundle
from ...runtime.conmon import Paths
from .context import StartContext

NAME = "bundle"


def paths_for(daemon, cid: str) -> Paths:
    er = daemon.config.exec_root
    return Paths(bundle=os.path.join(er, "c", cid), exit_dir=os.path.join(er, "exits"),
                 socket_dir=os.path.join(er, "s"),
                 log_path=os.path.join(daemon.config.data_root, "containers", cid, "ctr.log"))


async def run(ctx: StartContext) -> None:
    ctx.paths = paths_for(ctx.daemon, ctx.container.id)
    bundle.write(ctx.paths.bundle, ctx.spec)


async def undo(ctx: StartContext) -> None:
    bundle.remove(ctx.paths.bundle)

"""Step 1: check the container's settings against this host before
anything is touched. A failure here leaves nothing to undo."""
from __future__ import annotations

import os

from ...errors import InvalidParameter
from ..networking import wanted_networks
from .context import StartContext

NAME = "verify"

# HostConfig field -> cgroup v1 controller it needs
_CONTROLLERS = {"Memory": "memory", "MemorySwap": "memory", "MemoryReservation": "memory",
                "CpuShares": "cpu", "CpuQuota": "cpu", "NanoCpus": "cpu", "CpuPeriod": "cpu",
                "CpusetCpus": "cpuset", "CpusetMems": "cpuset", "PidsLimit": "pids", "BlkioWeight": "blkio"}


def _v2_controllers() -> set[str]:
    try:
        with open("/sys/fs/cgroup/cgroup.controllers") as f:
            return set(f.read().split())
    except OSError:
        return set()


async def run(ctx: StartContext) -> None:
    d, c = ctx.daemon, ctx.container
    ctx.runtime = d.runtimes.get(c.runtime or c.host_config.get("Runtime") or None)
    ctx.image_config = d.images.config(c.image) or {}
    hc = c.host_config
    facts = d.facts
    v2 = facts.cgroup_version == "v2"
    have = _v2_controllers() if v2 else None
    for key, ctrl in _CONTROLLERS.items():
        val = hc.get(key)
        if not val or (key == "PidsLimit" and val < 0):
            continue
        present = (ctrl in have) if v2 else os.path.isdir(f"/sys/fs/cgroup/{ctrl}")
        if not present:
            raise InvalidParameter(f"{key} requires the {ctrl} cgroup controller, which this host does not have")
    mode = c.network_mode
    if mode.startswith("container:"):
        target = d.containers.get(mode.split(":", 1)[1])
        if not target.state.running:
            raise InvalidParameter(f"cannot join network of a non running container: {target.id}")
        if target.id == c.id:
            raise InvalidParameter("cannot join own network")
    elif mode != "host":
        wanted_networks(d, c)   # NotFound if a network was removed since create


async def undo(ctx: StartContext) -> None:
    pass

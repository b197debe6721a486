"""`POST /containers/{id}/update`: restart policy and resource limits, live.

Checks and merge rules are moby's (daemon/update.go, container.UpdateContainer):
only the fields given (non-zero) change; NanoCpus and CpuPeriod/CpuQuota
exclude each other across updates; a memory limit above the swap limit
already set needs the swap limit too. The new limits are checked as at
create (runtime/spec.py), applied to a running container with the runtime's
`update --resources` (it writes the cgroup v1 or v2 files in the right
order), and saved only once applied — a failed update changes nothing.
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Protocol

from ..errors import Conflict, InvalidParameter
from ..runtime.spec import update_resources
from . import restart
from .container import PAUSED, RUNNING

if TYPE_CHECKING:
    from ..runtime.hostfacts import HostFacts
    from ..runtime.runtimes import Runtimes
    from .container import Container

RESOURCE_KEYS = ("BlkioWeight", "CpuShares", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod", "CpuRealtimeRuntime",
                 "CpusetCpus", "CpusetMems", "Memory", "MemorySwap", "MemoryReservation", "KernelMemory",
                 "NanoCpus", "PidsLimit")


class _Daemon(Protocol):
    facts: HostFacts
    runtimes: Runtimes
    def save(self, c: Container) -> None: ...
    def event(self, c: Container, action: str, **extra) -> None: ...


def _conflict(c, msg: str) -> Conflict:
    return Conflict(f"Cannot update container {c.id}: {msg}")


def merge(c, body: dict, swap_limit: bool = True) -> dict:
    """The container's HostConfig with the update applied (not saved).
    `swap_limit`: whether the host can limit swap (HostFacts.swap_limit)."""
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: expected an object")
    hc = copy.deepcopy(c.host_config)
    cur = c.host_config
    new = {k: body.get(k) for k in RESOURCE_KEYS if body.get(k) not in (None, 0, "")}
    for k, v in new.items():
        if k not in ("CpusetCpus", "CpusetMems") and not isinstance(v, int):
            raise InvalidParameter(f"invalid {k}: must be an integer")
    if new.get("NanoCpus") and cur.get("CpuPeriod"):
        raise _conflict(c, "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set")
    if new.get("NanoCpus") and cur.get("CpuQuota"):
        raise _conflict(c, "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set")
    if new.get("CpuPeriod") and cur.get("NanoCpus"):
        raise _conflict(c, "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set")
    if new.get("CpuQuota") and cur.get("NanoCpus"):
        raise _conflict(c, "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
    if "Memory" in new and not swap_limit and new.get("MemorySwap") != -1:
        new["MemorySwap"] = -1      # moby's verifyPlatformContainerResources: memory limited without swap
    cur_swap = int(cur.get("MemorySwap") or 0)
    if not cur_swap and int(cur.get("Memory") or 0) > 0 and swap_limit:
        # A memory limit created without a swap limit has the implicit one moby's
        # adaptContainerSettings stores at create (twice the memory): an update
        # keeps it, as dockerd's does, so a lower memory limit needs no new swap limit.
        cur_swap = 2 * int(cur["Memory"])
        hc["MemorySwap"] = cur_swap
    if "Memory" in new and new["Memory"] > cur_swap and "MemorySwap" not in new:
        raise _conflict(c, "Memory limit should be smaller than already set memoryswap limit, "
                           "update the memoryswap at the same time")
    hc.update(new)
    policy = body.get("RestartPolicy")
    if policy and policy.get("Name"):
        if hc.get("AutoRemove") and policy["Name"] != "no":
            raise InvalidParameter("Restart policy cannot be updated because AutoRemove is enabled for the container")
        hc["RestartPolicy"] = restart.validate(policy)
    return hc


async def update(d: _Daemon, c, body: dict) -> list[str]:
    async with c.lock:
        hc = merge(c, body, d.facts.swap_limit)
        notes: list[str] = []
        res = update_resources(hc, d.facts, notes)
        if c.state.status in (RUNNING, PAUSED) and any(k in body for k in RESOURCE_KEYS):
            await d.runtimes.for_name(c.runtime).update(c.id, res)
        c.host_config = hc
        d.save(c)
    d.event(c, "update")
    return notes


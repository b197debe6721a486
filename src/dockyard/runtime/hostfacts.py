"""What the host allows a container to have, read once per daemon.

Spec generation is a pure function of the request plus these facts, so a
spec never asks for something the runtime cannot grant (a capability the
daemon lacks, an rlimit above our own hard limit) and tests can describe
any host by building a HostFacts directly.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass, field
from typing import Mapping

# Bit number -> name, from linux/capability.h. The order of this tuple is
# the kernel's, which is also the order Docker lists "ALL" in.
CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
    "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
    "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
    "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

# Docker's ulimit names (go-units) -> the resource module's constants.
RLIMITS: dict[str, int] = {
    name: getattr(resource, "RLIMIT_" + name.upper())
    for name in ("core", "cpu", "data", "fsize", "locks", "memlock",
                 "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio",
                 "rttime", "sigpending", "stack")
    if hasattr(resource, "RLIMIT_" + name.upper())
}


@dataclass(frozen=True)
class HostFacts:
    # Capabilities we may hand out: the daemon's bounding set.
    bounding: frozenset[str] = frozenset(CAPABILITIES)
    # Docker ulimit name ("nofile") -> our hard limit; None = unlimited.
    # A name missing here is treated as unlimited.
    hard_rlimits: Mapping[str, int | None] = field(default_factory=dict)
    cgroup_version: str = "v1"          # "v1" (legacy or hybrid) or "v2"
    ncpus: int = 1
    # The rootfs lives on a ramdisk where pivot_root fails: the caller runs
    # the runtime with --no-pivot. The spec itself does not change.
    ramdisk: bool = False
    # Whether the memory controller can limit swap (memsw / swap.max).
    swap_limit: bool = True
    # Whether the io/blkio controller takes a weight (CFQ/BFQ): without it
    # --blkio-weight is dropped with Docker's warning.
    blkio_weight: bool = True
    # /sys/devices/system/cpu/cpuN/thermal_throttle of the possible CPUs that
    # have one: moby (28.0.2+, GHSA-6fw5-f8r9-fgfm) masks them after its list.
    thermal_throttle: tuple[str, ...] = ()
    # The cgroup root's cpuset.cpus / cpuset.mems ("0-1"): what --cpuset-cpus
    # and --cpuset-mems may ask for (moby's sysinfo); "" = not known, no check.
    cpuset_cpus: str = ""
    cpuset_mems: str = ""

    @classmethod
    def detect(cls) -> "HostFacts":
        version = "v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "v1"
        return cls(
            bounding=_read_bounding_set(),
            hard_rlimits=_read_hard_rlimits(),
            cgroup_version=version,
            ncpus=len(os.sched_getaffinity(0)) or os.cpu_count() or 1,
            ramdisk=bool(os.environ.get("DOCKYARD_RAMDISK")),
            swap_limit=_has_swap_limit(version),
            blkio_weight=_has_blkio_weight(version),
            thermal_throttle=_thermal_throttle_dirs(),
            cpuset_cpus=_cpuset(version, "cpus"),
            cpuset_mems=_cpuset(version, "mems"),
        )


def capabilities_from_mask(mask: int) -> frozenset[str]:
    return frozenset(name for bit, name in enumerate(CAPABILITIES) if mask >> bit & 1)


def _read_bounding_set() -> frozenset[str]:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapBnd:"):
                return capabilities_from_mask(int(line.split()[1], 16))
    return frozenset(CAPABILITIES)


def _read_hard_rlimits() -> dict[str, int | None]:
    limits: dict[str, int | None] = {}
    for name, which in RLIMITS.items():
        hard = resource.getrlimit(which)[1]
        limits[name] = None if hard == resource.RLIM_INFINITY else hard
    return limits


def possible_cpus(text: str) -> list[int]:
    """`/sys/devices/system/cpu/possible` ("0-3,5") -> [0, 1, 2, 3, 5], as
    moby's platform.PossibleCPU (nothing for what it cannot parse)."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        lo, _, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            return []
        cpus.extend(range(first, last + 1))
    return cpus


def _cpuset(version: str, what: str) -> str:
    path = f"/sys/fs/cgroup/cpuset.{what}.effective" if version == "v2" else f"/sys/fs/cgroup/cpuset/cpuset.{what}"
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _thermal_throttle_dirs() -> tuple[str, ...]:
    try:
        with open("/sys/devices/system/cpu/possible") as f:
            cpus = possible_cpus(f.read())
    except OSError:
        return ()
    paths = (f"/sys/devices/system/cpu/cpu{n}/thermal_throttle" for n in cpus)
    return tuple(p for p in paths if os.path.exists(p))


def _has_blkio_weight(version: str) -> bool:
    if version == "v2":
        return any(os.path.exists(os.path.join("/sys/fs/cgroup/init.scope", f))
                   for f in ("io.weight", "io.bfq.weight")) or os.path.exists("/sys/fs/cgroup/io.bfq.weight")
    return any(os.path.exists(os.path.join("/sys/fs/cgroup/blkio", f))
               for f in ("blkio.weight", "blkio.bfq.weight"))


def _has_swap_limit(version: str) -> bool:
    if version == "v2":
        # Any child cgroup would show memory.swap.max; the controller being
        # enabled is the closest top-level signal.
        try:
            with open("/sys/fs/cgroup/cgroup.controllers") as f:
                return "memory" in f.read().split()
        except OSError:
            return False
    return os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")

"""What one start carries from step to step, and the trace of it."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..container import Container, now_rfc3339

if TYPE_CHECKING:
    from ...images.service import ImageService
    from ...network.manager import NetworkManager
    from ...runtime.conmon import Paths
    from ...runtime.hostfacts import HostFacts
    from ...runtime.oci import OCIRuntime
    from ...runtime.runtimes import Runtimes
    from ...runtime.userns import Remap
    from ...volumes.service import VolumeService
    from ..attach import AttachManager
    from ..daemon import DaemonConfig
    from ..events import Events
    from ..lookup import ContainerStore
    from ..paths import Layout
    from ..teardown import Teardown


class _Daemon(Protocol):
    """What the start steps use of the daemon (and hand on to networking.py)."""
    config: DaemonConfig
    facts: HostFacts
    layout: Layout
    containers: ContainerStore
    images: ImageService
    runtimes: Runtimes
    volumes: VolumeService
    networks: NetworkManager
    events: Events
    attach: AttachManager
    remap: Remap | None
    teardown: Teardown
    def save(self, c: Container) -> None: ...


class Trace:
    """Per-step wall time of one start, and which step failed and why.

    Shown in inspect as `StartTrace` (a dockyard key; Docker clients ignore
    unknown keys) and by `dockyard trace CONTAINER`."""

    def __init__(self) -> None:
        self.started = now_rfc3339()
        self._t0 = time.perf_counter()
        self.steps: list[dict[str, Any]] = []
        self.failed_step = ""
        self.error = ""
        self._details: dict[str, dict] = {}

    def detail(self, step: str, parts: dict) -> None:
        """Finer timings inside a step (shown as the step's `Parts`)."""
        self._details[step] = parts

    def record(self, name: str, seconds: float, error: str = "") -> None:
        entry = {"Step": name, "Ms": round(seconds * 1000, 3), "Ok": not error, "Error": error}
        if name in self._details:
            entry["Parts"] = self._details.pop(name)
        self.steps.append(entry)
        if error and not self.failed_step:
            self.failed_step, self.error = name, error

    def to_api(self) -> dict[str, Any]:
        return {"Started": self.started, "TotalMs": round((time.perf_counter() - self._t0) * 1000, 3),
                "Ok": not self.failed_step, "FailedStep": self.failed_step, "Error": self.error,
                "Steps": self.steps}


@dataclass
class StartContext:
    daemon: _Daemon
    container: Container
    trace: Trace
    runtime: OCIRuntime | None = None   # set by the verify step
    image_config: dict = field(default_factory=dict)
    rootfs: str = ""              # the mounted overlay
    netns: str | None = None      # "host", or a path to join
    etc_files: dict = field(default_factory=dict)
    mounts: list = field(default_factory=list)    # OCI mounts from volumes/binds/tmpfs
    endpoint: Any = None
    ipv6_off: list = field(default_factory=list)   # interfaces the spec turns IPv6 off on (network step)
    link_env: list = field(default_factory=list)   # legacy links' variables, set by the network step
    spec: dict = field(default_factory=dict)
    paths: Paths | None = None    # set by the bundle step
    pid: int = 0
    conmon_pid: int = 0
    restore: Any = None           # daemon.checkpoint.Restore: start from a checkpoint

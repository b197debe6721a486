"""The OCI runtime interface: every runtime verb the daemon uses, as a
method. runtimes.Runtime implements it for crun and runc (what differs
between the two stays inside it); the daemon names no runtime verb as a
string and builds no runtime or conmon command line.

Containers and execs run under conmon (conmon.py), which holds their
stdio, writes the log and records the exit status, so `create`, `restore`
and `exec` go through it; the other verbs run the runtime binary (or, for
start and delete of an exited container, do its work without a process).
Failures raise dockyard.errors (SystemError_ with Docker's message,
NotImplementedYet) or conmon.CreateFailed with the runtime's own message.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .conmon import ExecProcess, Paths
    from .criu import Criu


@dataclass
class ExecResult:
    """What exec_sync saw: the process's wait status (>= 0 its exit code,
    < 0 the signal that ended it), the first bytes of its output, whether
    more was said, whether it outlived its timeout (and was killed)."""
    status: int
    output: bytes
    truncated: bool
    timed_out: bool


class OCIRuntime(Protocol):
    name: str            # "crun" | "runc"
    binary: str          # the runtime's binary (docker info shows it)

    async def create(self, cid: str, name: str, paths: Paths, *, tty: bool, stdin: bool,
                     no_pivot: bool, stdin_once: bool = False, keep_log: bool = True,
                     log_level: str = "info", carry: list[str] | None = None) -> tuple[int, int]:
        """Create under a new conmon; (container pid, conmon pid)."""

    async def start(self, cid: str) -> None:
        """Run the created container's process."""

    async def kill(self, cid: str, sig: int, *, all_processes: bool = False) -> None: ...

    async def pause(self, cid: str) -> None:
        """Freeze; SystemError_ "Cannot pause container ID: ..."."""

    async def resume(self, cid: str, *, check: bool = True) -> None:
        """Thaw; SystemError_ "Cannot unpause container ID: ..." if check."""

    async def update(self, cid: str, resources: dict) -> None:
        """Apply OCI linux.resources live; SystemError_ "Cannot update container ID: ..."."""

    async def exec(self, cid: str, exec_id: str, name: str, *, exec_dir: str, socket_dir: str,
                   spec: dict, tty: bool, stdin: bool,
                   on_attach: Callable[[str], None] | None = None) -> ExecProcess:
        """Run a process spec in the container under its own conmon."""

    async def exec_sync(self, cid: str, argv: Sequence[str], *, timeout: float, cwd: str | None = None,
                        user: str | None = None, max_output: int = 4096) -> ExecResult:
        """Run argv in the container and wait for it (healthcheck probes)."""

    async def checkpoint(self, cid: str, criu: Criu, image_dir: str, work_dir: str, *,
                         leave_running: bool, freeze_pid: int | None = None, timeout: float = 120) -> None: ...

    async def restore(self, cid: str, name: str, paths: Paths, criu: Criu, image_dir: str,
                      work_dir: str, *, tty: bool, stdin: bool, no_pivot: bool, stdin_once: bool = False,
                      keep_log: bool = True, log_level: str = "info",
                      carry: list[str] | None = None) -> tuple[int, int]:
        """Restore a checkpoint under a new conmon; as create, but it runs."""

    async def state(self, cid: str) -> dict: ...

    async def delete(self, cid: str, *, force: bool = False, check: bool = True) -> None: ...

    async def delete_exited(self, cid: str, remove_cgroups: Callable[[], bool]) -> None:
        """delete, for a container whose processes are all gone (cheap path)."""

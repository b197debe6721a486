"""The exec_* container events in Docker's wording, in one place: user execs
(exec.py) and health probes (health.py, which Docker also runs as execs) both
emit them, so `docker events --filter event=exec_die` sees every one.

moby: daemon/exec.go (create, start) and daemon/monitor.go (die). The action
of create and start is `<kind>: <entrypoint> <args joined>`, so a one-word
command keeps a trailing space ("exec_create: true "), as Docker sends it.
Every event carries `execID`; exec_die adds `exitCode`; `event` (Daemon.event)
adds the container's name, image and labels.
"""
from __future__ import annotations

from typing import Protocol


class EventFn(Protocol):
    """`Daemon.event`: a container event with Docker's attributes."""
    def __call__(self, c, action: str, **extra) -> None: ...


def cmdline(cmd: list[str]) -> str:
    return cmd[0] + " " + " ".join(cmd[1:])


def created(event: EventFn, c, exec_id: str, cmd: list[str]) -> None:
    event(c, "exec_create: " + cmdline(cmd), execID=exec_id)


def started(event: EventFn, c, exec_id: str, cmd: list[str]) -> None:
    event(c, "exec_start: " + cmdline(cmd), execID=exec_id)


def died(event: EventFn, c, exec_id: str, exit_code: int) -> None:
    event(c, "exec_die", execID=exec_id, exitCode=exit_code)

"""The exec_* container events in Docker's wording, in one place: user execs
(exec.py) and health probes (health.py, which Docker also runs as execs) both
emit them, so `docker events --filter event=exec_die` sees every one.

moby: daemon/exec.go (create, start) and daemon/monitor.go (die). The action
of create and start is `<kind>: <entrypoint> <args joined>`, so a one-word
command keeps a trailing space ("exec_create: true "), as Docker sends it.
Every event carries `execID`; exec_die adds `exitCode`; `Daemon.event` adds
the container's name, image and labels.
"""
from __future__ import annotations


def cmdline(cmd: list[str]) -> str:
    return cmd[0] + " " + " ".join(cmd[1:])


def created(d, c, exec_id: str, cmd: list[str]) -> None:
    d.event(c, "exec_create: " + cmdline(cmd), execID=exec_id)


def started(d, c, exec_id: str, cmd: list[str]) -> None:
    d.event(c, "exec_start: " + cmdline(cmd), execID=exec_id)


def died(d, c, exec_id: str, exit_code: int) -> None:
    d.event(c, "exec_die", execID=exec_id, exitCode=exit_code)

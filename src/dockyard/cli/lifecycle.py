"""stop, kill, restart, rm, wait, rename and `container prune`.

Multi-container verbs act on each name in turn, print the names that
succeeded, then the errors; any error makes the exit status 1 (docker).
"""
from __future__ import annotations

from .filters import filters_param
from .flags import INT, LIST, STRING, Command, Flag
from .prune import confirm, print_deleted, print_reclaimed

_MANY = "[OPTIONS] CONTAINER [CONTAINER...]"

STOP = Command(_MANY, "Stop one or more running containers", [
    Flag("signal", "s", STRING, help="Signal to send to the container"),
    Flag("timeout", "t", INT, help="Seconds to wait before killing the container"),
    Flag("time", kind=INT, hidden=True),
], min_args=1, aliases="dockyard container stop, dockyard stop")
KILL = Command(_MANY, "Kill one or more running containers", [
    Flag("signal", "s", STRING, help="Signal to send to the container"),
], min_args=1, aliases="dockyard container kill, dockyard kill")
RESTART = Command(_MANY, "Restart one or more containers", [
    Flag("signal", "s", STRING, help="Signal to send to the container"),
    Flag("timeout", "t", INT, help="Seconds to wait before killing the container"),
    Flag("time", kind=INT, hidden=True),
], min_args=1, aliases="dockyard container restart, dockyard restart")
RM = Command(_MANY, "Remove one or more containers", [
    Flag("force", "f", help="Force the removal of a running container (uses SIGKILL)"),
    Flag("volumes", "v", help="Remove anonymous volumes associated with the container"),
    Flag("link", "l", help="Remove the specified link"),
], min_args=1, aliases="dockyard container rm, dockyard container remove, dockyard rm")
WAIT = Command("CONTAINER [CONTAINER...]", "Block until one or more containers stop, then print their exit codes",
               min_args=1, aliases="dockyard container wait, dockyard wait")
RENAME = Command("CONTAINER NEW_NAME", "Rename a container", min_args=2, max_args=2,
                 aliases="dockyard container rename, dockyard rename")
PRUNE = Command("[OPTIONS]", "Remove all stopped containers", [
    Flag("force", "f", help="Do not prompt for confirmation"),
    Flag("filter", kind=LIST, help="Provide filter values (e.g. \"until=<timestamp>\")"),
], max_args=0)


def _post(cli, path: str, query: dict | None = None) -> None:
    cli.client.call("POST", path, query).close()


def _timeout(opts) -> int | None:
    return opts.timeout if opts.timeout is not None else opts.time


def stop(cli, argv: list[str]) -> int:
    opts, names = STOP.parse(argv, cli.command_path)
    query = {"signal": opts.signal, "t": _timeout(opts)}
    return cli.each(names, lambda n: _post(cli, f"/containers/{n}/stop", query))


def kill(cli, argv: list[str]) -> int:
    opts, names = KILL.parse(argv, cli.command_path)
    query = {"signal": opts.signal}
    return cli.each(names, lambda n: _post(cli, f"/containers/{n}/kill", query))


def restart(cli, argv: list[str]) -> int:
    opts, names = RESTART.parse(argv, cli.command_path)
    query = {"signal": opts.signal, "t": _timeout(opts)}
    return cli.each(names, lambda n: _post(cli, f"/containers/{n}/restart", query))


def rm(cli, argv: list[str]) -> int:
    opts, names = RM.parse(argv, cli.command_path)
    query = {"force": opts.force or None, "v": opts.volumes or None, "link": opts.link or None}
    return cli.each(names,
                 lambda n: cli.client.call("DELETE", f"/containers/{n.strip('/')}", query).close())


def wait(cli, argv: list[str]) -> int:
    _, names = WAIT.parse(argv, cli.command_path)
    return cli.each(names,
                 lambda n: str((cli.client.post(f"/containers/{n}/wait") or {}).get("StatusCode", "")))


def rename(cli, argv: list[str]) -> int:
    _, (old, new) = RENAME.parse(argv, cli.command_path)
    new = new.strip()
    if not new:
        cli.err("Error: neither old nor new names may be empty")
        return 1
    _post(cli, f"/containers/{old}/rename", {"name": new})
    return 0


def prune(cli, argv: list[str]) -> int:
    opts, _ = PRUNE.parse(argv, cli.command_path)
    if not opts.force and not confirm("WARNING! This will remove all stopped containers."):
        return 0
    query = {"filters": filters_param(opts.filter)}
    report = cli.client.post("/containers/prune", query) or {}
    print_deleted(cli, "Containers", report.get("ContainersDeleted") or [])
    print_reclaimed(cli, report.get("SpaceReclaimed"))
    return 0

"""`run`, `create` and `start`: docker's exit-code rules included.

run/create failures exit 125; a failed start exits 127 when the command
was not found, 126 when it could not be executed, else 125 (docker's
runStartContainerErr), so scripts can tell "not found" from "crashed".
"""
from __future__ import annotations

from ..client import DaemonError
from . import runconfig
from .attach import attach_and_wait
from .flags import Command, Flag, UsageError
from .pumps import terminal_size

_RUN_USAGE = "[OPTIONS] IMAGE [COMMAND] [ARG...]"

RUN = Command(_RUN_USAGE, "Create and run a new container from an image", runconfig.RUN_FLAGS,
              min_args=1, interspersed=False, aliases="dockyard container run, dockyard run")
CREATE = Command(_RUN_USAGE, "Create a new container",
                 [f for f in runconfig.RUN_FLAGS if f.long not in ("detach", "sig-proxy", "detach-keys")],
                 min_args=1, interspersed=False, aliases="dockyard container create, dockyard create")
START = Command("[OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers", [
    Flag("attach", "a", help="Attach STDOUT/STDERR and forward signals"),
    Flag("interactive", "i", help="Attach container's STDIN"),
    Flag("detach-keys", kind="string", help="Override the key sequence for detaching a container"),
    Flag("checkpoint", kind="string", help="Restore from this checkpoint"),
    Flag("checkpoint-dir", kind="string", help="Use a custom checkpoint storage directory"),
], min_args=1, aliases="dockyard container start, dockyard start")


class RunFailed(Exception):
    """Printed as `dockyard: <message>` plus the --help hint; `code` is the exit status."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.message = message
        self.code = code


def start_error_code(message: str) -> int:
    """docker's runStartContainerErr."""
    text = message.removeprefix("Error response from daemon: ")
    if ("executable file not found" in text or "no such file or directory" in text
            or "system cannot find the file specified" in text):
        return 127
    if "permission denied" in text or "is a directory" in text:
        return 126
    return 125


def _fail(cli, err: RunFailed) -> int:
    cli.err(f"dockyard: {err.message}\n\nRun '{cli.command_path} --help' for more information")
    return err.code


def _create(cli, opts, args: list[str], keep_alive: bool = False) -> str:
    """The new container's ID; `keep_alive` leaves the connection for the
    next call (run's attach, or start with -d)."""
    try:
        body = runconfig.build_create_body(opts, args, console_size=terminal_size())
    except UsageError as err:
        raise RunFailed(err.message, 125) from None
    query = {"name": opts.name or None, "platform": opts.platform or None}
    try:
        created = cli.client.post("/containers/create", query, body, keep_alive=keep_alive)
    except DaemonError as err:
        if err.status == 404 and "image" in err.message.lower():
            cli.err(f"Unable to find image '{runconfig.familiar_image(args[0])}' locally")
        raise RunFailed(f"Error response from daemon: {err.message}", 125) from None
    for warning in created.get("Warnings") or ():
        cli.err(f"WARNING: {warning}")
    return created["Id"]


def _start(cli, container_id: str, checkpoint: dict | None = None) -> None:
    cli.client.call("POST", f"/containers/{container_id}/start", checkpoint or None, reuse=True).close()


def run(cli, argv: list[str]) -> int:
    if argv[:1] == ["--restore"] or argv[:1] and argv[0].startswith("--restore="):
        from .checkpoint import run_restore   # a container moved from another daemon
        return run_restore(cli, argv)
    opts, args = RUN.parse(argv, cli.command_path)
    try:
        container_id = _create(cli, opts, args, keep_alive=True)
        if opts.detach:
            try:
                _start(cli, container_id)
            except DaemonError as err:
                raise RunFailed(f"Error response from daemon: {err.message}",
                                start_error_code(err.message)) from None
            cli.out(container_id)
            return 0

        def start() -> None:
            try:
                _start(cli, container_id)
            except DaemonError as err:
                raise RunFailed(f"Error response from daemon: {err.message}",
                                start_error_code(err.message)) from None

        return attach_and_wait(cli, container_id, tty=opts.tty, stdin=opts.interactive,
                               auto_remove=opts.rm, sig_proxy=opts.sig_proxy, start=start)
    except RunFailed as err:
        return _fail(cli, err)


def create(cli, argv: list[str]) -> int:
    opts, args = CREATE.parse(argv, cli.command_path)
    opts.detach = False
    opts.sig_proxy = False
    try:
        cli.out(_create(cli, opts, args))
    except RunFailed as err:
        return _fail(cli, err)
    return 0


def start(cli, argv: list[str]) -> int:
    opts, args = START.parse(argv, cli.command_path)
    if opts.attach or opts.interactive:
        if len(args) > 1:
            cli.err("Error: you cannot start and attach multiple containers at once")
            return 1
        info = cli.client.get(f"/containers/{args[0]}/json")
        config = info.get("Config") or {}
        host_config = info.get("HostConfig") or {}
        return attach_and_wait(
            cli, info["Id"], tty=bool(config.get("Tty")),
            stdin=opts.interactive and bool(config.get("OpenStdin")),
            auto_remove=bool(host_config.get("AutoRemove")), sig_proxy=not config.get("Tty"),
            start=lambda: _start(cli, info["Id"]))
    failed = []
    restore = {k: v for k, v in (("checkpoint", opts.checkpoint), ("checkpoint-dir", opts.checkpoint_dir)) if v}
    for name in args:
        try:
            _start(cli, name, restore)
            cli.out(name)
        except DaemonError as err:
            cli.err(f"Error response from daemon: {err.message}")
            failed.append(name)
    if failed:
        cli.err("Error: failed to start containers: " + ", ".join(failed))
        return 1
    return 0

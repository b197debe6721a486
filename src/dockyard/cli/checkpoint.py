"""`dockyard checkpoint create|ls|rm|export|import`: docker's checkpoint
commands (served without an experimental switch), plus moving a
checkpointed container to another daemon: `export` writes one tar,
`import` creates the container there and restores it."""
from __future__ import annotations

import sys

from .flags import STRING, Command, Flag, UsageError
from .subcommands import Group

_DIR = Flag("checkpoint-dir", kind=STRING, help="Use a custom checkpoint storage directory")

CREATE = Command("[OPTIONS] CONTAINER CHECKPOINT", "Create a checkpoint from a running container", [
    Flag("leave-running", help="Leave the container running after checkpoint"), _DIR,
], min_args=2, max_args=2)
LS = Command("[OPTIONS] CONTAINER", "List checkpoints for a container", [_DIR], min_args=1, max_args=1)
RM = Command("[OPTIONS] CONTAINER CHECKPOINT", "Remove a checkpoint", [_DIR], min_args=2, max_args=2)
EXPORT = Command("[OPTIONS] CONTAINER CHECKPOINT", "Write a checkpoint, with the container's config and "
                 "filesystem changes, to a tar archive", [
                     Flag("output", "o", kind=STRING, help="Write to a file, instead of STDOUT"), _DIR,
                 ], min_args=2, max_args=2)
IMPORT = Command("[OPTIONS] FILE", "Create a container from an exported checkpoint and restore it", [
    Flag("name", kind=STRING, help="Name of the new container (default: the exported one's)"),
    Flag("no-start", help="Create the container and file the checkpoint, but do not restore it"),
], min_args=1, max_args=1)

RUN_RESTORE = Command("--restore FILE [--name NAME]", "Run a container exported with `checkpoint export`, "
                      "restored where it was checkpointed", [
                          Flag("restore", kind=STRING, help="The exported checkpoint (tar)"),
                          Flag("name", kind=STRING, help="Name of the new container (default: the exported one's)"),
                      ], max_args=0)


def _dir(opts) -> dict:
    return {"dir": opts.checkpoint_dir} if opts.checkpoint_dir else {}


def create(cli, argv: list[str]) -> int:
    opts, (ctr, name) = CREATE.parse(argv, cli.command_path)
    body = {"CheckpointID": name, "Exit": not opts.leave_running}
    if opts.checkpoint_dir:
        body["CheckpointDir"] = opts.checkpoint_dir
    cli.client.call("POST", f"/containers/{ctr}/checkpoints", body=body).close()
    cli.out(name)
    return 0


def ls(cli, argv: list[str]) -> int:
    opts, (ctr,) = LS.parse(argv, cli.command_path)
    cli.out("CHECKPOINT NAME")
    for cp in cli.client.get(f"/containers/{ctr}/checkpoints", _dir(opts)) or []:
        cli.out(cp.get("Name", ""))
    return 0


def rm(cli, argv: list[str]) -> int:
    opts, (ctr, name) = RM.parse(argv, cli.command_path)
    cli.client.call("DELETE", f"/containers/{ctr}/checkpoints/{name}", _dir(opts)).close()
    return 0


def export(cli, argv: list[str]) -> int:
    opts, (ctr, name) = EXPORT.parse(argv, cli.command_path)
    from . import archive_out
    if archive_out.refuse_terminal(cli, opts.output, "cowardly refusing to write a tar archive to a terminal: "
                                   "use -o FILE or redirect"):
        return 1
    archive_out.write(cli.client.call("GET", f"/containers/{ctr}/checkpoints/{name}/export", _dir(opts)),
                      opts.output)
    return 0


def import_(cli, argv: list[str]) -> int:
    opts, (path,) = IMPORT.parse(argv, cli.command_path)
    query = {"start": "0" if opts.no_start else "1"}
    if opts.name:
        query["name"] = opts.name
    with (sys.stdin.buffer if path == "-" else open(path, "rb")) as f:
        info = cli.client.json("POST", "/containers/restore", query, f)
    cli.out(info["Id"])
    return 0


main = Group("checkpoint", "Manage checkpoints", {
    "create": (create, CREATE), "ls": (ls, LS), "list": (ls, LS), "rm": (rm, RM), "remove": (rm, RM),
    "export": (export, EXPORT), "import": (import_, IMPORT),
}, listed=("create", "export", "import", "ls", "rm"))


def run_restore(cli, argv: list[str]) -> int:
    """`dockyard run --restore FILE [--name NAME]`: `checkpoint import` by another name."""
    opts, _ = RUN_RESTORE.parse(argv, "dockyard run")
    if not opts.restore:
        raise UsageError("flag needs an argument: --restore", code=125)
    return import_(cli, ([f"--name={opts.name}"] if opts.name else []) + [opts.restore])

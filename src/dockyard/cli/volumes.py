"""`dockyard volume create|ls|inspect|rm|prune`, worded and formatted as
docker's volume commands."""
from __future__ import annotations

from .flags import LIST, STRING, Command, Flag, UsageError, key_values
from .subcommands import Group

CREATE = Command("[OPTIONS] [VOLUME]", "Create a volume", [
    Flag("driver", "d", STRING, default="local", help="Specify volume driver name"),
    Flag("label", kind=LIST, help="Set metadata for a volume"),
    Flag("name", kind=STRING, hidden=True),
    Flag("opt", "o", LIST, help="Set driver specific options"),
], max_args=1)
LS = Command("[OPTIONS]", "List volumes", [
    Flag("filter", "f", LIST, help="Provide filter values (e.g. \"dangling=true\")"),
    Flag("format", kind=STRING, help="Format output using a custom template"),
    Flag("quiet", "q", help="Only display volume names"),
], max_args=0, aliases="dockyard volume ls, dockyard volume list")
INSPECT = Command("[OPTIONS] VOLUME [VOLUME...]", "Display detailed information on one or more volumes", [
    Flag("format", "f", STRING, help="Format output using a custom template"),
], min_args=1)
RM = Command("[OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes", [
    Flag("force", "f", help="Force the removal of one or more volumes"),
], min_args=1, aliases="dockyard volume rm, dockyard volume remove")
PRUNE = Command("[OPTIONS]", "Remove unused local volumes", [
    Flag("all", "a", help="Remove all unused volumes, not just anonymous ones"),
    Flag("filter", kind=LIST, help="Provide filter values (e.g. \"label=<label>\")"),
    Flag("force", "f", help="Do not prompt for confirmation"),
], max_args=0)


def create(cli, argv: list[str]) -> int:
    opts, args = CREATE.parse(argv, cli.command_path)
    if args and opts.name and args[0] != opts.name:
        raise UsageError("conflicting options: cannot specify a volume-name through both --name and "
                         "as a positional arg")
    body = {"Name": args[0] if args else (opts.name or ""), "Driver": opts.driver or "local",
            "DriverOpts": key_values(opts.opt), "Labels": key_values(opts.label)}
    vol = cli.client.post("/volumes/create", body=body)
    cli.out(vol["Name"])
    return 0


def ls(cli, argv: list[str]) -> int:
    opts, _ = LS.parse(argv, cli.command_path)
    from .filters import filters_param
    from .listing import Row, labels_text, print_rows
    listed = cli.client.get("/volumes", {"filters": filters_param(opts.filter)}) or {}
    vols = sorted(listed.get("Volumes") or [], key=lambda v: v["Name"])
    if opts.quiet:
        for v in vols:
            cli.out(v["Name"])
        return 0
    rows = [Row(Driver=v["Driver"], Name=v["Name"], Mountpoint=v["Mountpoint"], Scope=v.get("Scope", "local"),
                Labels=labels_text(v.get("Labels")))
            for v in vols]
    fmt = opts.format or "table {{.Driver}}\t{{.Name}}"
    print_rows(cli, fmt, rows, Row(Driver="DRIVER", Name="VOLUME NAME", Mountpoint="MOUNTPOINT",
                                   Scope="SCOPE", Labels="LABELS"))
    return 0


def inspect(cli, argv: list[str]) -> int:
    opts, names = INSPECT.parse(argv, cli.command_path)
    from .inspect import inspect_by_path
    return inspect_by_path(cli, "/volumes", names, opts.format)


def rm(cli, argv: list[str]) -> int:
    opts, names = RM.parse(argv, cli.command_path)
    query = {"force": 1} if opts.force else None
    return cli.each(names, lambda name: cli.client.call("DELETE", f"/volumes/{name}", query).close())


def prune(cli, argv: list[str]) -> int:
    opts, _ = PRUNE.parse(argv, cli.command_path)
    from .filters import filters_param
    from .prune import confirm, print_deleted, print_reclaimed
    if not opts.force and not confirm(
            "WARNING! This will remove all local volumes not used by at least one container." if opts.all
            else "WARNING! This will remove anonymous local volumes not used by at least one container."):
        return 0
    query = {"filters": filters_param(opts.filter, {"all": {"true": True}} if opts.all else None)}
    report = cli.client.post("/volumes/prune", query) or {}
    print_deleted(cli, "Volumes", report.get("VolumesDeleted") or [])
    print_reclaimed(cli, report.get("SpaceReclaimed"))
    return 0


main = Group("volume", "Manage volumes", {
    "create": (create, CREATE), "ls": (ls, LS), "list": (ls, LS), "inspect": (inspect, INSPECT),
    "rm": (rm, RM), "remove": (rm, RM), "prune": (prune, PRUNE),
}, listed=("create", "inspect", "ls", "prune", "rm"))

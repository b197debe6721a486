"""`dockyard network create|ls|inspect|rm|prune|connect|disconnect`, worded and
formatted as docker's network commands."""
from __future__ import annotations

from .flags import LIST, STRING, Command, Flag, UsageError, key_values
from .subcommands import Group

CREATE = Command("[OPTIONS] NETWORK", "Create a network", [
    Flag("driver", "d", STRING, default="bridge", help="Driver to manage the Network"),
    Flag("subnet", kind=LIST, help="Subnet in CIDR format that represents a network segment"),
    Flag("gateway", kind=LIST, help="IPv4 or IPv6 Gateway for the master subnet"),
    Flag("ip-range", kind=LIST, help="Allocate container ip from a sub-range"),
    Flag("internal", help="Restrict external access to the network"),
    Flag("attachable", help="Enable manual container attachment"),
    Flag("ipv6", help="Enable or disable IPv6 networking"),
    Flag("label", kind=LIST, help="Set metadata on a network"),
    Flag("opt", "o", LIST, help="Set driver specific options"),
], min_args=1, max_args=1)
LS = Command("[OPTIONS]", "List networks", [
    Flag("filter", "f", LIST, help="Provide filter values (e.g. \"driver=bridge\")"),
    Flag("format", kind=STRING, help="Format output using a custom template"),
    Flag("no-trunc", help="Do not truncate the output"),
    Flag("quiet", "q", help="Only display network IDs"),
], max_args=0, aliases="dockyard network ls, dockyard network list")
INSPECT = Command("[OPTIONS] NETWORK [NETWORK...]", "Display detailed information on one or more networks", [
    Flag("format", "f", STRING, help="Format output using a custom template"),
    Flag("verbose", "v", help="Verbose output for diagnostics"),
], min_args=1)
RM = Command("NETWORK [NETWORK...]", "Remove one or more networks", [
    Flag("force", "f", help="Do not error if the network does not exist"),
], min_args=1, aliases="dockyard network rm, dockyard network remove")
PRUNE = Command("[OPTIONS]", "Remove all unused networks", [
    Flag("filter", kind=LIST, help="Provide filter values (e.g. \"until=<timestamp>\")"),
    Flag("force", "f", help="Do not prompt for confirmation"),
], max_args=0)
CONNECT = Command("[OPTIONS] NETWORK CONTAINER", "Connect a container to a network", [
    Flag("alias", kind=LIST, help="Add network-scoped alias for the container"),
    Flag("ip", kind=STRING, help="IPv4 address (e.g., \"172.30.100.104\")"),
    Flag("link", kind=LIST, help="Add link to another container"),
    Flag("driver-opt", kind=LIST, help="driver options for the network"),
], min_args=2, max_args=2)
DISCONNECT = Command("[OPTIONS] NETWORK CONTAINER", "Disconnect a container from a network", [
    Flag("force", "f", help="Force the container to disconnect from a network"),
], min_args=2, max_args=2)


def create(cli, argv: list[str]) -> int:
    opts, args = CREATE.parse(argv, cli.command_path)
    if len(opts.gateway) > len(opts.subnet) or len(opts.ip_range) > len(opts.subnet):
        raise UsageError("every ip-range or gateway must have a corresponding subnet")
    pools = []
    for i, subnet in enumerate(opts.subnet):
        pool = {"Subnet": subnet}
        if i < len(opts.gateway):
            pool["Gateway"] = opts.gateway[i]
        if i < len(opts.ip_range):
            pool["IPRange"] = opts.ip_range[i]
        pools.append(pool)
    body = {"Name": args[0], "Driver": opts.driver or "bridge", "Internal": opts.internal,
            "Attachable": opts.attachable, "EnableIPv6": opts.ipv6, "Options": key_values(opts.opt),
            "Labels": key_values(opts.label), "IPAM": {"Driver": "default", "Config": pools}}
    out = cli.client.post("/networks/create", body=body)
    cli.out(out["Id"])
    return 0


def ls(cli, argv: list[str]) -> int:
    opts, _ = LS.parse(argv, cli.command_path)
    from .filters import filters_param
    from .listing import Row, labels_text, print_rows
    nets = sorted(cli.client.get("/networks", {"filters": filters_param(opts.filter)}) or [],
                  key=lambda n: n["Name"])
    ident = (lambda i: i) if opts.no_trunc else (lambda i: i[:12])
    if opts.quiet:
        for n in nets:
            cli.out(ident(n["Id"]))
        return 0
    rows = [Row(ID=ident(n["Id"]), Name=n["Name"], Driver=n["Driver"], Scope=n.get("Scope", "local"),
                IPv6=str(bool(n.get("EnableIPv6"))).lower(), Internal=str(bool(n.get("Internal"))).lower(),
                CreatedAt=n.get("Created", ""),
                Labels=labels_text(n.get("Labels")))
            for n in nets]
    fmt = opts.format or "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
    print_rows(cli, fmt, rows, Row(ID="NETWORK ID", Name="NAME", Driver="DRIVER", Scope="SCOPE", IPv6="IPV6",
                                   Internal="INTERNAL", CreatedAt="CREATED AT", Labels="LABELS"))
    return 0


def inspect(cli, argv: list[str]) -> int:
    opts, names = INSPECT.parse(argv, cli.command_path)
    from .inspect import inspect_by_path
    return inspect_by_path(cli, "/networks", names, opts.format)


def rm(cli, argv: list[str]) -> int:
    opts, names = RM.parse(argv, cli.command_path)
    return cli.each(names, lambda name: cli.client.call("DELETE", f"/networks/{name}").close(),
                    ignore=lambda err: opts.force and err.status == 404)


def prune(cli, argv: list[str]) -> int:
    opts, _ = PRUNE.parse(argv, cli.command_path)
    from .filters import filters_param
    from .prune import confirm, print_deleted
    if not opts.force and not confirm("WARNING! This will remove all custom networks not used by at least "
                                      "one container."):
        return 0
    report = cli.client.post("/networks/prune", {"filters": filters_param(opts.filter)}) or {}
    print_deleted(cli, "Networks", report.get("NetworksDeleted") or [])
    return 0


def connect(cli, argv: list[str]) -> int:
    opts, (network, container) = CONNECT.parse(argv, cli.command_path)
    cfg = {"Aliases": list(opts.alias) or None, "Links": list(opts.link) or None}
    if opts.ip:
        cfg["IPAMConfig"] = {"IPv4Address": opts.ip}
    if opts.driver_opt:
        cfg["DriverOpts"] = key_values(opts.driver_opt)
    cli.client.call("POST", f"/networks/{network}/connect",
                    body={"Container": container, "EndpointConfig": cfg}).close()
    return 0


def disconnect(cli, argv: list[str]) -> int:
    opts, (network, container) = DISCONNECT.parse(argv, cli.command_path)
    cli.client.call("POST", f"/networks/{network}/disconnect",
                    body={"Container": container, "Force": opts.force}).close()
    return 0


main = Group("network", "Manage networks", {
    "create": (create, CREATE), "ls": (ls, LS), "list": (ls, LS), "inspect": (inspect, INSPECT),
    "rm": (rm, RM), "remove": (rm, RM), "prune": (prune, PRUNE), "connect": (connect, CONNECT),
    "disconnect": (disconnect, DISCONNECT),
}, listed=("connect", "create", "disconnect", "inspect", "ls", "prune", "rm"))

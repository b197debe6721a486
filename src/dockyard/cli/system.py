"""`version` and `info`."""
from __future__ import annotations

import os
import sys

from .. import API_VERSION, __version__
from ..client import ConnectError, DaemonError
from .flags import STRING, Command, Flag
from .formatting import bytes_size, tabulate

VERSION = Command("[OPTIONS]", "Show the dockyard version information", [
    Flag("format", "f", STRING, help="Format output using a custom template"),
], max_args=0, aliases="dockyard system version, dockyard version")
INFO = Command("[OPTIONS]", "Display system-wide information", [
    Flag("format", "f", STRING, help="Format output using a custom template"),
], max_args=0, aliases="dockyard system info, dockyard info")

DIAL_STDIO = Command("", "Proxy the stdio stream to the daemon connection. Should not be invoked manually.",
                     [], max_args=0, aliases="dockyard system dial-stdio")

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


def client_version(host: str) -> dict:
    return {
        "Version": __version__,
        "ApiVersion": API_VERSION,
        "PythonVersion": "%d.%d.%d" % sys.version_info[:3],
        "Os": sys.platform,
        "Arch": _ARCH.get(os.uname().machine, os.uname().machine),
        "Host": host,
    }


def _section(pairs: list[tuple[str, object]], indent: str) -> list[str]:
    """`key:` cells padded so values start at column 20, as docker's version prints."""
    rows = [f"{indent}{key}:\t{value}" for key, value in pairs if value not in (None, "")]
    return tabulate(rows, min_width=20, padding=1) if rows else []


def _server_lines(server: dict) -> list[str]:
    name = (server.get("Platform") or {}).get("Name") or "Dockyard Engine"
    lines = [f"Server: {name}"]
    components = server.get("Components") or [{"Name": "Engine", "Version": server.get("Version"),
                                                "Details": {}}]
    for component in components:
        details = component.get("Details") or {}
        lines.append(f" {component.get('Name')}:")
        if component.get("Name") == "Engine":
            api = server.get("ApiVersion", "")
            if server.get("MinAPIVersion"):
                api += f" (minimum version {server['MinAPIVersion']})"
            pairs = [("Version", server.get("Version")), ("API version", api),
                     ("Go version", server.get("GoVersion")), ("Git commit", server.get("GitCommit")),
                     ("Built", server.get("BuildTime")),
                     ("OS/Arch", f"{server.get('Os', '')}/{server.get('Arch', '')}"),
                     ("Kernel version", server.get("KernelVersion")),
                     ("Experimental", str(bool(server.get("Experimental"))).lower())]
        else:
            pairs = [("Version", component.get("Version"))] + sorted(details.items())
        lines += _section(pairs, "  ")
    return lines


def version(cli, argv: list[str]) -> int:
    opts, _ = VERSION.parse(argv, cli.command_path)
    client = client_version(cli.client.host)
    server, error = None, None
    try:
        server = cli.client.get("/version")
    except (ConnectError, DaemonError) as err:
        error = err
    if opts.format:
        from . import template
        cli.out(template.render(opts.format, {"Client": client, "Server": server}))
    else:
        lines = ["Client:"] + _section([
            ("Version", client["Version"]), ("API version", client["ApiVersion"]),
            ("Python version", client["PythonVersion"]),
            ("OS/Arch", f"{client['Os']}/{client['Arch']}"), ("Host", client["Host"]),
        ], " ")
        if server is not None:
            lines += [""] + _server_lines(server)
        for line in lines:
            cli.out(line)
    if error is not None:
        raise error
    return 0


def info(cli, argv: list[str]) -> int:
    opts, _ = INFO.parse(argv, cli.command_path)
    data = cli.client.get("/info") or {}
    if opts.format:
        from . import template
        cli.out(template.render(opts.format, data))
        return 0
    runtimes = " ".join(sorted(data.get("Runtimes") or {}))
    pairs = [
        ("Containers", data.get("Containers", 0)),
        (" Running", data.get("ContainersRunning", 0)),
        (" Paused", data.get("ContainersPaused", 0)),
        (" Stopped", data.get("ContainersStopped", 0)),
        ("Images", data.get("Images", 0)),
        ("Server Version", data.get("ServerVersion")),
        ("Storage Driver", data.get("Driver")),
        ("Logging Driver", data.get("LoggingDriver")),
        ("Cgroup Driver", data.get("CgroupDriver")),
        ("Cgroup Version", data.get("CgroupVersion")),
        ("Runtimes", runtimes),
        ("Default Runtime", data.get("DefaultRuntime")),
        ("Security Options", " ".join(data.get("SecurityOptions") or [])),
        ("Kernel Version", data.get("KernelVersion")),
        ("Operating System", data.get("OperatingSystem")),
        ("OSType", data.get("OSType")),
        ("Architecture", data.get("Architecture")),
        ("CPUs", data.get("NCPU")),
        ("Total Memory", bytes_size(data["MemTotal"]) if data.get("MemTotal") else None),
        ("Name", data.get("Name")),
        ("ID", data.get("ID")),
        ("Docker Root Dir", data.get("DockerRootDir")),
        ("Debug Mode", str(bool(data.get("Debug"))).lower()),
        ("Experimental", str(bool(data.get("ExperimentalBuild"))).lower()),
        ("Live Restore Enabled", str(bool(data.get("LiveRestoreEnabled"))).lower()),
    ]
    cli.out("Server:")
    for key, value in pairs:
        if value not in (None, ""):
            cli.out(f" {key}: {value}")
    for warning in data.get("Warnings") or []:
        cli.err(warning)
    return 0


def dial_stdio(cli, argv: list[str]) -> int:
    """What `docker -H ssh://host` runs on the far end: our stdin to the
    daemon's socket and its answers to our stdout, each direction's end
    passed on (a half-close), until the daemon closes."""
    DIAL_STDIO.parse(argv, cli.command_path)
    import threading

    from .pumps import pump_stdin, write_all
    sock = _dial(cli)
    t = threading.Thread(target=pump_stdin, args=(sock,), daemon=True)
    t.start()
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            write_all(1, data)
    except OSError:
        pass
    finally:
        sock.close()
    return 0


def _dial(cli):
    from ..endpoints import EndpointError, connect
    try:
        return connect(cli.endpoint)
    except EndpointError as e:
        raise ConnectError(str(e)) from None

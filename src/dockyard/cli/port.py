"""`dockyard port CONTAINER [PRIVATE_PORT[/PROTO]]`: the published ports, as docker prints them."""
from __future__ import annotations

from .flags import Command, UsageError

PORT = Command("CONTAINER [PRIVATE_PORT[/PROTO]]", "List port mappings or a specific mapping for the container",
               [], min_args=1, max_args=2)


def _host(b: dict) -> str:
    ip = b["HostIp"]
    return f"[{ip}]:{b['HostPort']}" if ":" in ip else f"{ip}:{b['HostPort']}"


def mappings(ports: dict, wanted: str | None) -> list[str]:
    """Lines of `docker port`: "80/tcp -> 0.0.0.0:8080" ("[::]:8080" for IPv6), or "0.0.0.0:8080" for
    one asked-for port."""
    if wanted is not None:
        port, _, proto = wanted.partition("/")
        key = f"{port}/{proto or 'tcp'}"
        return [_host(b) for b in ports.get(key) or []]
    out = []
    for key in sorted(ports, key=lambda k: (int(k.split("/")[0]), k)):
        for b in ports[key] or []:
            out.append(f"{key} -> {_host(b)}")
    return out


def port(cli, argv: list[str]) -> int:
    _, args = PORT.parse(argv, cli.command_path)
    c = cli.client.get(f"/containers/{args[0]}/json")
    ports = (c.get("NetworkSettings") or {}).get("Ports") or {}
    lines = mappings(ports, args[1] if len(args) > 1 else None)
    if len(args) > 1 and not lines:
        port_, _, proto = args[1].partition("/")
        raise UsageError(f"Error: No public port '{port_}/{proto or 'tcp'}' published for {args[0]}", code=1)
    for line in lines:
        cli.out(line)
    return 0

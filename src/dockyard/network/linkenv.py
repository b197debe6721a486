"""Legacy links' environment (`--link target:alias` on the default bridge): the variables the
linking container gets for each linked one, as moby's daemon/links builds them
(ALIAS_NAME, ALIAS_PORT, ALIAS_PORT_<n>_<PROTO>[_ADDR|_PORT|_PROTO|_START|_END...], ALIAS_ENV_x)."""
from __future__ import annotations

from typing import Iterable


def _port(spec: str) -> tuple[int, str]:
    """An ExposedPorts key ("80/tcp", "53/udp", "80") as (number, protocol)."""
    num, _, proto = spec.partition("/")
    return int(num.split("-", 1)[0]), (proto or "tcp").lower()


def _order(port: tuple[int, str]) -> tuple[int, str, int]:
    """moby's withTCPPriority: tcp first, then the other protocols by name; by number within one."""
    num, proto = port
    return (0 if proto == "tcp" else 1, proto, num)


def env_vars(link_name: str, child_ip: str, child_env: Iterable[str], exposed: Iterable[str]) -> list[str]:
    """The variables for one link. link_name is Docker's "/linking/alias"; child_env the linked
    container's Config.Env (HOME and PATH are left out); exposed its ExposedPorts keys."""
    alias = link_name.rsplit("/", 1)[-1].upper().replace("-", "_")
    ports = sorted({_port(p) for p in exposed}, key=_order)
    env: list[str] = []
    if ports:
        num, proto = start = end = ports[0]
        env.append(f"{alias}_PORT={proto}://{child_ip}:{num}")
    for i, (num, proto) in enumerate(ports):
        prefix = f"{alias}_PORT_{num}_{proto.upper()}"
        env += [f"{prefix}={proto}://{child_ip}:{num}", f"{prefix}_ADDR={child_ip}", f"{prefix}_PORT={num}",
                f"{prefix}_PROTO={proto}"]
        # a run of consecutive ports of one protocol also gets _START/_END variables
        if num == end[0] + 1 and proto == start[1]:
            end = (num, proto)
            if i < len(ports) - 1:
                continue
        if end != start:
            prefix = f"{alias}_PORT_{start[0]}_{start[1].upper()}"
            env += [f"{prefix}_START={start[1]}://{child_ip}:{start[0]}", f"{prefix}_PORT_START={start[0]}",
                    f"{prefix}_END={end[1]}://{child_ip}:{end[0]}", f"{prefix}_PORT_END={end[0]}"]
        start = end = (num, proto)
    env.append(f"{alias}_NAME={link_name}")
    for e in child_env:
        name, sep, value = e.partition("=")
        if sep and name not in ("HOME", "PATH"):
            env.append(f"{alias}_ENV_{name}={value}")
    return env

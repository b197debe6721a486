"""Port publishing: DNAT in an nftables table dockyard owns, host ports held.

One table per daemon (`<nat table>-ports`) with two maps, filled per
container with `add element` / `delete element` (atomic, no rule handles):

- `any`:  (proto, host port) -> (container ip, port), for 0.0.0.0 binds;
- `byip`: (host ip, proto, host port) -> (container ip, port), for ip binds.

Both are consulted from prerouting (traffic from other hosts and from
containers) and from output (the host itself, including 127.0.0.1).
127.0.0.1 binds: a packet DNATed on output keeps source 127.0.0.1, which
the kernel will only route out of a bridge with route_localnet=1 on it (set
on dockyard's own bridges), and the postrouting masquerade of DNATed
loopback sources gives the container a source it can answer. Hairpin
(a container reaching a published port of its own bridge through a host
address): the network's NAT table masquerades DNATed traffic that leaves by
the bridge it came in by, and the container's port gets the hairpin flag.

Each published host port is also bound (not listened on) by the daemon, so
no other program can take it and a port already taken fails the start with
a clear error before any rule is made.

As Docker's, a bind without an address is on both families (0.0.0.0 and [::]);
`-p 0.0.0.0:…` is IPv4 only, `-p [::]:…` / `-p [::1]:…` IPv6 only. The `ip6`
table of the same name has the same maps for IPv6 binds of containers with an
IPv6 address, as Docker 28's ip6tables DNAT. What DNAT cannot do is relayed by
the daemon's port proxy (proxy.py), as Docker's docker-proxy: a bind of the
family the container lacks (nftables cannot NAT IPv6 to IPv4), and ::1 (IPv6
has no route_localnet: a packet from ::1 never leaves the host), so the proxy
serves every IPv6 bind's socket and DNAT takes what is not loopback first.
"""
from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from ipaddress import ip_address

from dockyard.errors import InvalidParameter, SystemError_
from dockyard.network import nft

EPHEMERAL_RANGE = "/proc/sys/net/ipv4/ip_local_port_range"


def ruleset(table: str) -> str:
    """Both families' tables, made afresh in one transaction (the IPv6 one as Docker 28's ip6tables
    DNAT: everything but ::1, which only the port proxy serves, IPv6 having no route_localnet)."""
    return _ruleset4(table) + _ruleset6(table)


def _ruleset6(table: str) -> str:
    return (
        f"table ip6 {table}\n"
        f"delete table ip6 {table}\n"
        f"table ip6 {table} {{\n"
        "  map any { type inet_proto . inet_service : ipv6_addr . inet_service; }\n"
        "  map byip { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; }\n"
        "  chain pub {\n"
        "    dnat ip6 to ip6 daddr . meta l4proto . th dport map @byip\n"
        "    dnat ip6 to meta l4proto . th dport map @any\n"
        "  }\n"
        "  chain prerouting {\n"
        "    type nat hook prerouting priority dstnat; policy accept;\n"
        "    fib daddr type local jump pub\n"
        "  }\n"
        "  chain output {\n"
        "    type nat hook output priority -100; policy accept;\n"
        "    ip6 daddr != ::1 fib daddr type local jump pub\n"
        "  }\n"
        "}\n"
    )


def _ruleset4(table: str) -> str:
    return (
        f"table ip {table}\n"
        f"delete table ip {table}\n"
        f"table ip {table} {{\n"
        "  map any { type inet_proto . inet_service : ipv4_addr . inet_service; }\n"
        "  map byip { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }\n"
        "  chain pub {\n"
        "    dnat ip to ip daddr . meta l4proto . th dport map @byip\n"
        "    dnat ip to meta l4proto . th dport map @any\n"
        "  }\n"
        "  chain prerouting {\n"
        "    type nat hook prerouting priority dstnat; policy accept;\n"
        "    fib daddr type local jump pub\n"
        "  }\n"
        "  chain output {\n"
        "    type nat hook output priority -100; policy accept;\n"
        "    fib daddr type local jump pub\n"
        "  }\n"
        "  chain postrouting {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n"
        "    ct status dnat ip saddr 127.0.0.0/8 masquerade\n"
        "  }\n"
        "}\n"
    )


@dataclass(frozen=True)
class Binding:
    """One requested publication: container port/proto to host ip and port (range)."""
    proto: str
    container_port: int
    host_ip: str          # "" = all addresses of both families, "0.0.0.0" / "::" = all of one
    host_port: int        # 0 = pick one
    host_port_end: int    # == host_port unless a range was asked for


def _port(text: str, what: str) -> int:
    try:
        n = int(text)
    except (TypeError, ValueError):
        raise InvalidParameter(f"invalid {what}: {text!r}") from None
    if not 0 < n < 65536:
        raise InvalidParameter(f"invalid {what}: {text!r} (must be 1-65535)")
    return n


def _port_key(key: str) -> tuple[int, str]:
    port, _, proto = key.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp"):
        raise InvalidParameter(f"invalid proto: {proto} (only tcp and udp can be published)")
    return _port(port, "containerPort"), proto


def parse(port_bindings: dict | None, exposed: dict | None, publish_all: bool) -> list[Binding]:
    """HostConfig.PortBindings (+ every exposed port when PublishAllPorts) -> bindings."""
    out: list[Binding] = []
    seen = set()
    for key, binds in (port_bindings or {}).items():
        cport, proto = _port_key(key)
        seen.add((cport, proto))
        for b in binds or [{}]:
            host_ip = ((b or {}).get("HostIp") or "").removeprefix("[").removesuffix("]")
            if host_ip:
                try:
                    host_ip = str(ip_address(host_ip))
                except ValueError:
                    raise InvalidParameter(f"invalid host IP {host_ip!r}") from None
            hp = str((b or {}).get("HostPort") or "")
            if hp in ("0", "0-0"):    # as go-connections parses it: 0, a port picked (`-p 127.0.0.1:0:80`)
                hp = ""
            lo, _, hi = hp.partition("-")
            start = _port(lo, "hostPort") if lo else 0
            end = _port(hi, "hostPort") if hi else start
            if end < start:
                raise InvalidParameter(f"invalid hostPort range: {hp}")
            out.append(Binding(proto, cport, host_ip, start, end))
    if publish_all:
        for key in sorted(exposed or {}):
            cport, proto = _port_key(key)
            if (cport, proto) not in seen:
                out.append(Binding(proto, cport, "", 0, 0))
    return out


def ephemeral_range() -> tuple[int, int]:
    try:
        with open(EPHEMERAL_RANGE) as f:
            lo, hi = f.read().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def is_v6(host_ip: str) -> bool:
    return ":" in host_ip


def families(host_ip: str) -> list[str]:
    """The rows' host addresses a binding's host_ip stands for: "" (all IPv4, the `any` map) and "::"
    for a bind without an address, else the one address ("0.0.0.0" is stored as "")."""
    if host_ip == "":
        return ["", "::"]
    return [""] if host_ip == "0.0.0.0" else [host_ip]


_ipv6: bool | None = None


def ipv6_enabled() -> bool:
    """Whether this host has IPv6 at all (else [::] binds are left out, as dockerd does)."""
    global _ipv6
    if _ipv6 is None:
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
                s.bind(("::1", 0))
            _ipv6 = True
        except OSError:
            _ipv6 = False
    return _ipv6


def hold(proto: str, host_ip: str, port: int) -> socket.socket | None:
    """Bind host_ip:port so nothing else takes it; None if it is taken. IPv6 sockets are v6-only."""
    family = socket.AF_INET6 if is_v6(host_ip) else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host_ip or "0.0.0.0", port))
        return s
    except OSError as e:
        s.close()
        if e.errno in (errno.EADDRINUSE, errno.EACCES):
            return None
        if e.errno == errno.EADDRNOTAVAIL:
            raise InvalidParameter(f"cannot publish on {host_ip}: not an address of this host") from None
        raise SystemError_(f"binding {host_ip or '0.0.0.0'}:{port}/{proto}: {e}") from e


def target_for(host_ip: str, ip: str | None, ip6: str | None) -> str | None:
    """The container address a row of host_ip goes to: the same family when the container has it
    (DNAT), else the other one (the port proxy translates, as docker-proxy does)."""
    return (ip6 or ip) if is_v6(host_ip) else (ip or ip6)


def dnat(row) -> bool:
    """Whether a row is a DNAT element: host and container address of one family, and not IPv6
    loopback (a DNATed packet from ::1 cannot leave the host: the proxy serves it)."""
    host_ip, cip = row[1], row[3]
    return is_v6(host_ip) == is_v6(cip) and host_ip != "::1"


def relayed(row) -> bool:
    """Whether the port proxy serves the row's socket: every IPv6 bind (its loopback at least) and a
    bind of the other family than the container's address."""
    return is_v6(row[1]) or is_v6(row[1]) != is_v6(row[3])


def _family(row) -> str:
    return "ip6" if is_v6(row[1]) else "ip"


def _key(row) -> tuple[str, str]:
    """(map, key) of a row: `any` for its family's wildcard ("" or "::"), else `byip`."""
    proto, host_ip, hport = row[0], row[1], row[2]
    return ("any", f"{proto} . {hport}") if host_ip in ("", "::") else ("byip", f"{host_ip} . {proto} . {hport}")


def _element(row) -> tuple[str, str]:
    m, k = _key(row)
    return m, f"{k} : {row[3]} . {row[4]}"


def add_elements(table: str, rows: list[tuple]) -> None:
    """rows: (proto, host_ip, host_port, container_ip, container_port), one nft transaction for
    both families; the rows the port proxy translates have no element."""
    lines = [f"add element {_family(r)} {table} {m} {{ {e} }}"
             for r, (m, e) in ((r, _element(r)) for r in rows if dnat(r))]
    if lines:
        nft.run("\n".join(lines))


def delete_elements(table: str, rows: list[tuple]) -> None:
    for row in filter(dnat, rows):   # one at a time: a missing element must not keep the others
        m, k = _key(row)
        nft.run(f"delete element {_family(row)} {table} {m} {{ {k} }}", check=False)

"""The /etc/hostname, /etc/hosts and /etc/resolv.conf a container gets, Docker's way.

The daemon bind-mounts the files written here over the image's own.
"""
from __future__ import annotations

import ipaddress
import os
from typing import Iterable

from dockyard.errors import InvalidParameter

HOST_RESOLV_CONF = "/etc/resolv.conf"
# systemd-resolved's real upstreams, used when /etc/resolv.conf only points at its stub.
RESOLVED_UPSTREAM_CONF = "/run/systemd/resolve/resolv.conf"
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")   # libnetwork's defaultIPv4Dns

DEFAULT_HOSTS = (
    ("127.0.0.1", "localhost"),
    ("::1", "localhost ip6-localhost ip6-loopback"),
    ("fe00::0", "ip6-localnet"),
    ("ff00::0", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
)


def parse_extra_host(entry: str) -> tuple[str, str]:
    """HostConfig.ExtraHosts entry "name:ip" (or "name=ip") -> (ip, name)."""
    sep = "=" if "=" in entry else ":"
    name, _, ip = entry.partition(sep)
    ip = ip.strip().removeprefix("[").removesuffix("]")   # --add-host=h:[::1]
    if not name or not ip:
        raise InvalidParameter(f"invalid extra host {entry!r}: want name:ip")
    return ip, name


def hosts_content(hostname: str, domainname: str, ip: str | None,
                  extra_hosts: Iterable[str] = (), ip6: str | None = None) -> str:
    """Defaults, then --add-host entries, then the container's own record, as Docker orders them."""
    lines = [f"{addr}\t{names}" for addr, names in DEFAULT_HOSTS]
    lines += ["%s\t%s" % parse_extra_host(e) for e in extra_hosts]
    if ip or ip6:
        fqdn = f"{hostname}.{domainname}" if domainname else hostname
        names = fqdn if "." not in fqdn else f"{fqdn} {fqdn.split('.', 1)[0]}"
        lines += [f"{addr}\t{names}" for addr in (ip, ip6) if addr]   # ip6 on an IPv6 network, as Docker lists it
    return "\n".join(lines) + "\n"


def _usable_from_container(nameserver: str) -> bool:
    # Loopback means the host's own resolver, unreachable from another netns;
    # IPv6 servers are unreachable because container networks are IPv4 only.
    try:
        addr = ipaddress.ip_address(nameserver.split("%", 1)[0])
    except ValueError:
        return False
    return addr.version == 4 and not addr.is_loopback


def parse_resolv_conf(text: str) -> tuple[list[str], list[str], list[str]]:
    nameservers, search, options = [], [], []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if not fields:
            continue
        key, values = fields[0], fields[1:]
        if key == "nameserver" and values:
            nameservers.append(values[0])
        elif key in ("search", "domain"):
            search = values          # the last search/domain line wins, as in glibc
        elif key == "options":
            options += values
    return nameservers, search, options


def resolv_conf_content(host_text: str, dns: Iterable[str] = (), dns_search: Iterable[str] = (),
                        dns_options: Iterable[str] = ()) -> str:
    host_ns, host_search, host_options = parse_resolv_conf(host_text)
    dns, dns_search, dns_options = list(dns), list(dns_search), list(dns_options)
    nameservers = dns or [ns for ns in host_ns if _usable_from_container(ns)]
    if not nameservers:
        nameservers = list(FALLBACK_NAMESERVERS)
    search = dns_search or host_search
    if search == ["."]:   # Docker's way to say "no search domains"
        search = []
    options = dns_options or host_options
    lines = [f"nameserver {ns}" for ns in nameservers]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def read_host_resolv_conf(path: str = HOST_RESOLV_CONF,
                          resolved_upstream: str = RESOLVED_UPSTREAM_CONF) -> str:
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return ""
    if parse_resolv_conf(text)[0] == ["127.0.0.53"] and os.path.exists(resolved_upstream):
        with open(resolved_upstream) as f:
            return f.read()
    return text


def _write(path: str, content: str) -> str:
    with open(path, "w") as f:
        f.write(content)
    os.chmod(path, 0o644)
    return path


def rewrite_resolv_conf(path: str, dns: Iterable[str] = (), dns_search: Iterable[str] = (),
                        dns_options: Iterable[str] = (), host_resolv_conf: str = HOST_RESOLV_CONF) -> None:
    """A running container's resolv.conf again, in place (the file is bind-mounted: same inode)."""
    _write(path, resolv_conf_content(read_host_resolv_conf(host_resolv_conf), dns, dns_search, dns_options))


def write_etc_files(directory: str, hostname: str, domainname: str, ip: str | None,
                    extra_hosts: Iterable[str] = (), dns: Iterable[str] = (),
                    dns_search: Iterable[str] = (), dns_options: Iterable[str] = (),
                    host_resolv_conf: str = HOST_RESOLV_CONF, ip6: str | None = None) -> dict[str, str]:
    """Write the three files into directory; return {path in container: path on host}."""
    os.makedirs(directory, exist_ok=True)
    resolv = resolv_conf_content(read_host_resolv_conf(host_resolv_conf), dns, dns_search, dns_options)
    return {
        "/etc/hostname": _write(os.path.join(directory, "hostname"), hostname + "\n"),
        "/etc/hosts": _write(os.path.join(directory, "hosts"),
                             hosts_content(hostname, domainname, ip, extra_hosts, ip6)),
        "/etc/resolv.conf": _write(os.path.join(directory, "resolv.conf"), resolv),
    }


def drop_hosts_entry(path: str, name: str) -> None:
    """Remove the lines whose first name is `name` (a legacy link that was removed) from a
    container's hosts file, in place: the container sees the file through a bind mount."""
    with open(path) as f:
        lines = f.read().splitlines(keepends=True)
    kept = [line for line in lines if line.split()[1:2] != [name] or line.lstrip().startswith("#")]
    if kept != lines:
        with open(path, "r+") as f:
            f.write("".join(kept))
            f.truncate()

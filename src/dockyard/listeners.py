"""Where the daemon listens: dockerd's -H forms and its TLS rules.

  unix:///path          a unix socket (0660, the -G group)
  tcp://host:port       TCP; with --tls/--tlsverify over TLS 1.2+ (mutual
                        TLS when verifying); plain only with an explicit
                        --tls=false (or --tlsverify=false), with dockerd's
                        warnings
  fd://  fd://NAME      sockets systemd passed (socket activation:
                        LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES)

`tcp://` alone is 127.0.0.1:2376 with TLS and :2375 without, as docker's
opts.ParseHost. Sockets are made here and handed to the API server, so a
failure (a port in use, a missing certificate) stops the start before
anything listens.
"""
from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass

SD_LISTEN_FDS_START = 3


class ListenError(Exception):
    pass


@dataclass(frozen=True)
class Host:
    proto: str          # unix | tcp | fd
    addr: str           # path, host:port, or the fd name ("" = all)

    def __str__(self) -> str:
        return f"{self.proto}://{self.addr}"


def parse_host(text: str, tls: bool) -> Host:
    if text.startswith("/"):
        text = "unix://" + text
    proto, sep, addr = text.partition("://")
    if not sep:
        raise ListenError(f"invalid bind address format: {text}")
    if proto == "unix":
        if not addr:
            raise ListenError(f"invalid bind address format: {text}")
        return Host("unix", os.path.abspath(addr))
    if proto == "fd":
        return Host("fd", addr)
    if proto == "tcp":
        addr = addr.rstrip("/")
        host, port = _split_host_port(addr, 2376 if tls else 2375, text)
        return Host("tcp", f"{_bracket(host)}:{port}")
    raise ListenError(f"invalid bind address ({text}): unsupported proto '{proto}'")


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _split_host_port(addr: str, default_port: int, text: str) -> tuple[str, int]:
    if addr.startswith("["):
        host, _, rest = addr[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif addr.count(":") == 1:
        host, _, port = addr.partition(":")
    else:
        host, port = addr, ""
    host = host or "127.0.0.1"
    if not port:
        return host, default_port
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ListenError(f"invalid bind address ({text}): invalid port")
    return host, int(port)


def tcp_address(h: Host) -> tuple[str, int]:
    host, port = _split_host_port(h.addr, 0, str(h))
    return host, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    import ipaddress
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class TLSOptions:
    tls: bool | None = None          # --tls; None = not given
    verify: bool | None = None       # --tlsverify; None = not given
    cacert: str = ""
    cert: str = ""
    key: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.tls) or bool(self.verify)

    @property
    def explicitly_off(self) -> bool:
        return self.tls is False or self.verify is False


def default_cert_dir() -> str:
    """docker's config dir: $DOCKER_CERT_PATH, else ~/.docker."""
    return os.environ.get("DOCKER_CERT_PATH") or os.path.join(os.path.expanduser("~"), ".docker")


def with_default_paths(t: TLSOptions) -> TLSOptions:
    d = default_cert_dir()
    return TLSOptions(t.tls, t.verify, t.cacert or os.path.join(d, "ca.pem"),
                      t.cert or os.path.join(d, "cert.pem"), t.key or os.path.join(d, "key.pem"))


def server_context(t: TLSOptions) -> ssl.SSLContext:
    """TLS 1.2+; with --tlsverify a client certificate signed by --tlscacert
    is required (refused during the handshake otherwise)."""
    t = with_default_paths(t)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    for what, path in (("certificate", t.cert), ("key", t.key)):
        if not os.path.exists(path):
            raise ListenError(f"could not load X509 key pair ({t.cert}, {t.key}): open {path}: "
                              f"no such file or directory ({what})")
    try:
        ctx.load_cert_chain(t.cert, t.key)
    except (ssl.SSLError, OSError, ValueError) as e:
        raise ListenError(f"could not load X509 key pair ({t.cert}, {t.key}): {e}") from None
    if t.verify:
        if not os.path.exists(t.cacert):
            raise ListenError(f"Could not read CA certificate \"{t.cacert}\": open {t.cacert}: "
                              "no such file or directory")
        try:
            ctx.load_verify_locations(cafile=t.cacert)
        except (ssl.SSLError, OSError) as e:
            raise ListenError(f"failed to append certificates from PEM file: \"{t.cacert}\": {e}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def insecure_tcp_warnings(h: Host) -> list[str]:
    """dockerd's warnings for a plain TCP listener."""
    host, _ = tcp_address(h)
    out = ["Binding to IP address without --tlsverify is insecure and gives root access on this machine "
           f"to everyone who has access to your network. host=\"{h}\""]
    if is_loopback(host):
        out.append(f"Binding to an IP address, even on localhost, can also give access to scripts run in a "
                   f"browser. Be safe out there! host=\"{h}\"")
    return out


def insecure_tcp_info_warning(h: Host) -> str:
    """What dockerd puts in /info's Warnings for a plain TCP listener."""
    return (f"WARNING: API is accessible on http://{h.addr} without encryption.\n"
            "         Access to the remote API is equivalent to root access on the host. Refer\n"
            "         to the 'Docker daemon attack surface' section in the documentation for\n"
            "         more information: https://docs.docker.com/go/attack-surface/")


def refuse_plain_tcp(h: Host) -> None:
    raise ListenError(
        f"API is accessible on http://{h.addr} without encryption: access to the remote API is "
        "equivalent to root access on the host; use --tlsverify with certificates, or state the intent "
        "to listen without authentication with '--tls=false' or '--tlsverify=false'")


def open_tcp(h: Host) -> socket.socket:
    host, port = tcp_address(h)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ListenError(f"listen tcp {h.addr}: lookup {host}: {e.strerror}") from None
    family, _, _, _, sockaddr = infos[0]
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(sockaddr)
        s.listen(socket.SOMAXCONN)
    except OSError as e:
        s.close()
        raise ListenError(f"listen tcp {h.addr}: bind: {e.strerror.lower() if e.strerror else e}") from None
    s.setblocking(False)
    return s


def systemd_fds(name: str = "") -> list[socket.socket]:
    """The sockets systemd passed this process (sd_listen_fds), those named
    `name` when given; the environment is cleared as sd_listen_fds(1)."""
    pid = os.environ.get("LISTEN_PID", "")
    count = os.environ.get("LISTEN_FDS", "")
    names = os.environ.get("LISTEN_FDNAMES", "")
    if pid != str(os.getpid()) or not count.isdigit() or int(count) < 1:
        raise ListenError("no sockets found via socket activation: make sure the service was started by systemd")
    listed = names.split(":") if names else []
    out = []
    for i in range(int(count)):
        fd = SD_LISTEN_FDS_START + i
        if name and (i >= len(listed) or listed[i] != name):
            continue
        os.set_inheritable(fd, False)
        s = socket.socket(fileno=fd)
        s.setblocking(False)
        out.append(s)
    if not out:
        raise ListenError(f"no sockets found via socket activation named {name!r}")
    return out


def clear_systemd_env() -> None:
    for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(k, None)


def sd_notify(state: str) -> bool:
    """Tell systemd (Type=notify) our state: READY=1, RELOADING=1, STOPPING=1."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(state.encode(), addr)
        return True
    except OSError:
        return False

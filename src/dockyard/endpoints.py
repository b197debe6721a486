"""Where the CLI talks to, as the docker CLI decides it, and the connection.

The daemon is named by, first to last: -H/--host; $DOCKYARD_HOST;
$DOCKER_HOST; a docker context (-c/--context, $DOCKER_CONTEXT, or the
config's currentContext), read from the docker CLI's own store
($DOCKER_CONFIG or ~/.docker: contexts/meta/<sha256 of name>/meta.json and
its TLS files under contexts/tls/); else dockyard's default socket.

Hosts: unix:///path, tcp://host:port (TLS with --tls/--tlsverify or
$DOCKER_TLS_VERIFY; certificates from --tlscacert/--tlscert/--tlskey, else
$DOCKER_CERT_PATH or the config dir's ca.pem, cert.pem, key.pem), and
ssh://[user@]host[:port], which runs `ssh ... -- HOST docker system
dial-stdio` as the docker CLI does and speaks HTTP over its stdio.

Every connection is a socket (an ssl.SSLSocket for TLS, one end of a
socketpair for ssh), so the client's raw-socket code (hijacked streams,
half-close) is the same for all of them. A unix socket is the C module's
`_socket.socket` (the base class of `socket.socket`, with the same methods):
`import socket` costs the CLI several ms (enum, selectors, collections),
more than all of `dockyard run`'s own modules; tcp:// and ssh:// import it.
"""
from __future__ import annotations

import _socket
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

DEFAULT_HOST = "unix:///run/dockyard/dockyard.sock"


class EndpointError(Exception):
    pass


class TLSClient(tuple):
    """(verify, cacert, cert, key): bool, str, str, str. A plain tuple class,
    not collections.namedtuple (collections costs the CLI's start ~1.5 ms)
    nor dataclasses or typing.NamedTuple (several ms)."""
    __slots__ = ()

    def __new__(cls, verify: bool, cacert: str, cert: str, key: str):
        return tuple.__new__(cls, (verify, cacert, cert, key))

    verify = property(lambda self: self[0])
    cacert = property(lambda self: self[1])
    cert = property(lambda self: self[2])
    key = property(lambda self: self[3])

    def __repr__(self) -> str:
        return f"TLSClient(verify={self[0]!r}, cacert={self[1]!r}, cert={self[2]!r}, key={self[3]!r})"


class Endpoint(tuple):
    """(host, tls): str, TLSClient | None."""
    __slots__ = ()

    def __new__(cls, host: str, tls: TLSClient | None = None):
        return tuple.__new__(cls, (host, tls))

    host = property(lambda self: self[0])
    tls = property(lambda self: self[1])

    def __repr__(self) -> str:
        return f"Endpoint(host={self[0]!r}, tls={self[1]!r})"


def config_dir() -> str:
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def _current_context(flag: str | None) -> str:
    if flag:
        return flag
    if os.environ.get("DOCKER_CONTEXT"):
        return os.environ["DOCKER_CONTEXT"]
    import json
    try:
        with open(os.path.join(config_dir(), "config.json")) as f:
            return json.load(f).get("currentContext") or "default"
    except (OSError, ValueError, AttributeError):
        return "default"


def context_endpoint(name: str) -> Endpoint | None:
    """A docker context's endpoint; None for "default"."""
    if name == "default":
        return None
    import hashlib
    import json
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = os.path.join(config_dir(), "contexts", "meta", digest, "meta.json")
    try:
        with open(meta) as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise EndpointError(f"context {name!r}: context not found: {meta}") from None
    except (OSError, ValueError) as e:
        raise EndpointError(f"context {name!r}: {e}") from None
    ep = ((doc.get("Endpoints") or {}).get("docker")) or {}
    host = ep.get("Host") or ""
    if not host:
        raise EndpointError(f"context {name!r} has no docker endpoint")
    tls_dir = os.path.join(config_dir(), "contexts", "tls", digest, "docker")
    tls = None
    if os.path.isdir(tls_dir) and host.startswith("tcp://"):
        tls = TLSClient(verify=not ep.get("SkipTLSVerify"), cacert=os.path.join(tls_dir, "ca.pem"),
                        cert=os.path.join(tls_dir, "cert.pem"), key=os.path.join(tls_dir, "key.pem"))
    return Endpoint(host, tls)


def resolve(host: str | None = None, *, context: str | None = None, tls: bool | None = None,
            tlsverify: bool | None = None, cacert: str = "", cert: str = "", key: str = "") -> Endpoint:
    env_verify = bool(os.environ.get("DOCKER_TLS_VERIFY"))
    verify = tlsverify if tlsverify is not None else env_verify
    use_tls = bool(tls) or verify
    if not host and not context:
        host = os.environ.get("DOCKYARD_HOST") or os.environ.get("DOCKER_HOST")
    if not host:
        ep = context_endpoint(_current_context(context))
        if ep is not None:
            return ep
        host = DEFAULT_HOST
    if use_tls and host.startswith("tcp://"):
        d = os.environ.get("DOCKER_CERT_PATH") or config_dir()
        return Endpoint(host, TLSClient(verify, cacert or os.path.join(d, "ca.pem"),
                                        cert or os.path.join(d, "cert.pem"), key or os.path.join(d, "key.pem")))
    return Endpoint(host)


# ---------------------------------------------------------------- connecting

def _tcp_address(host: str) -> tuple[str, int]:
    addr = host[len("tcp://"):].split("/", 1)[0]
    if addr.startswith("["):
        h, _, rest = addr[1:].partition("]")
        port = rest[1:]
    elif addr.count(":") == 1:
        h, _, port = addr.partition(":")
    else:
        h, port = addr, ""
    if not port.isdigit():
        raise EndpointError(f"invalid host {host!r}: a port is needed (tcp://HOST:PORT)")
    return h or "127.0.0.1", int(port)


def _tls_wrap(sock: socket.socket, tls: TLSClient, server: str) -> socket.socket:
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.verify:
        try:
            ctx.load_verify_locations(cafile=tls.cacert)
        except (OSError, ssl.SSLError) as e:
            raise EndpointError(f"could not read CA certificate {tls.cacert!r}: {e}") from None
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if os.path.exists(tls.cert) and os.path.exists(tls.key):
        try:
            ctx.load_cert_chain(tls.cert, tls.key)
        except (OSError, ssl.SSLError) as e:
            raise EndpointError(f"could not load X509 key pair: {e}") from None
    try:
        return ctx.wrap_socket(sock, server_hostname=server)
    except (ssl.SSLError, OSError) as e:
        sock.close()
        raise EndpointError(f"error during connect: TLS handshake with {server}: {e}") from None


_ssh_socket = None


def _ssh_socket_class() -> type:
    """socket.socket plus the ssh process at its other end, waited for at close
    (made on first use: the class needs the socket module)."""
    global _ssh_socket
    if _ssh_socket is not None:
        return _ssh_socket
    import socket

    class SshSocket(socket.socket):
        """One end of a socketpair whose other end is an ssh process's stdio."""
        proc = None     # the ssh process (subprocess.Popen)

        def close(self) -> None:
            super().close()
            p, self.proc = self.proc, None
            if p is not None:
                import subprocess
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    _ssh_socket = SshSocket
    return SshSocket


def _ssh(host: str) -> socket.socket:
    """ssh://[user@]host[:port] -> `ssh [-l user] [-p port] -- host docker system dial-stdio`."""
    rest = host[len("ssh://"):].split("/", 1)[0]
    user, _, hostport = rest.rpartition("@")
    h, port = hostport, ""
    if hostport.startswith("["):
        h, _, p = hostport[1:].partition("]")
        port = p[1:]
    elif hostport.count(":") == 1:
        h, _, port = hostport.partition(":")
    if not h:
        raise EndpointError(f"invalid ssh host {host!r}")
    argv = ["ssh", "-o", "ConnectTimeout=30", "-T"]
    if user:
        argv += ["-l", user]
    if port:
        argv += ["-p", port]
    argv += ["--", h, "docker", "system", "dial-stdio"]
    import socket
    import subprocess
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        proc = subprocess.Popen(argv, stdin=theirs, stdout=theirs, stderr=None, start_new_session=True)
    except FileNotFoundError:
        ours.close()
        theirs.close()
        raise EndpointError("ssh is not installed: it is needed for ssh:// hosts") from None
    theirs.close()
    s = _ssh_socket_class()(fileno=ours.detach())
    s.proc = proc
    return s


def connect(ep: Endpoint) -> socket.socket:
    """A connected socket to the endpoint; EndpointError with the reason."""
    host = ep.host
    if host.startswith("ssh://"):
        return _ssh(host)
    if host.startswith("tcp://"):
        import socket
        h, port = _tcp_address(host)
        try:
            sock = socket.create_connection((h, port), timeout=30)
        except OSError as e:
            raise EndpointError(f"Cannot connect to the dockyard daemon at {host}: {e.strerror or e}. "
                                "Is the dockyard daemon running?") from None
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _tls_wrap(sock, ep.tls, h) if ep.tls is not None else sock
    if host.startswith("unix://"):
        path = host[len("unix://"):]
    elif host.startswith("/"):
        path = host
    else:
        raise EndpointError(f"unsupported host {host!r}: use unix://PATH, tcp://HOST:PORT or ssh://[USER@]HOST")
    if not path:
        raise EndpointError(f"invalid host {host!r}: empty socket path")
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except PermissionError:
        sock.close()
        raise EndpointError("permission denied while trying to connect to the dockyard daemon socket at "
                            f"{host}") from None
    except OSError:
        sock.close()
        raise EndpointError(f"Cannot connect to the dockyard daemon at {host}. "
                            "Is the dockyard daemon running?") from None
    return sock

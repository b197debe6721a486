"""`dockyardd`: the composition root. Parses dockerd's flags into a complete
`DaemonConfig`, builds the `Daemon` (the services) and the API server over
it, and serves until SIGTERM/SIGINT (containers keep running)."""
from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import os
import signal
import sys

log = logging.getLogger("dockyard")
DEFAULT_SOCKET_GROUP = "docker"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="dockyardd", description="Docker-compatible container engine daemon")
    p.add_argument("-H", "--host", action="append", default=None,
                   help="daemon socket to listen on (unix://PATH)")
    p.add_argument("-G", "--group", default=DEFAULT_SOCKET_GROUP, help="group for the unix socket")
    p.add_argument("--data-root", default="/var/lib/dockyard")
    p.add_argument("--insecure-registry", action="append", default=[],
                   help="registry (host[:port] or CIDR) that may be reached over plain HTTP")
    p.add_argument("--exec-root", default="/run/dockyard")
    p.add_argument("-p", "--pidfile", default=None)
    p.add_argument("--default-runtime", default="crun", choices=("crun", "runc"))
    p.add_argument("-l", "--log-level", default="info", choices=("debug", "info", "warn", "error", "fatal"))
    p.add_argument("-D", "--debug", action="store_true")
    p.add_argument("-b", "--bridge", default="dockyard0", help="name of the default bridge")
    p.add_argument("--bip", default=None, help="gateway address and prefix of the default bridge (CIDR)")
    p.add_argument("--log-driver", default="json-file", help="default log driver (json-file, local, none)")
    p.add_argument("--log-opt", action="append", default=[], help="default log driver option (max-size=10m)")
    p.add_argument("--cgroup-parent", default="dockyard",
                   help="parent cgroup of containers (under each hierarchy; removed when empty)")
    p.add_argument("--criu-path", default=None, help="CRIU (>= 4.2) for checkpoint/restore (default: criu on PATH)")
    p.add_argument("--userns-remap", default="", help="user/group for user namespaces (default | user[:group])")
    # what one client may make the daemon hold (api/server.py's Limits)
    p.add_argument("--max-request-body", default="32m", type=_size_arg,
                   help="largest JSON request body, e.g. 32m (uploads of tars are not limited); larger: 413")
    p.add_argument("--header-timeout", default=30.0, type=_seconds_arg,
                   help="seconds a client has to finish a request head once begun")
    p.add_argument("--idle-timeout", default=60.0, type=_seconds_arg,
                   help="seconds a connection may send nothing while the daemon waits for it")
    p.add_argument("--max-connections", default=512, type=_count_arg,
                   help="connections served at once; past it /_ping still answers, other requests get 503")
    return p.parse_args(argv)


def _size_arg(text: str) -> int:
    from .units import SizeError, ram_in_bytes
    try:
        return ram_in_bytes(text)
    except SizeError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _seconds_arg(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return v


def _count_arg(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return v


def _socket_path(host: str) -> str:
    if host.startswith("unix://"):
        return host[len("unix://"):]
    if host.startswith("/"):
        return host
    raise SystemExit(f"dockyardd: only unix:// sockets are supported, got {host!r}")


def socket_gid(group: str) -> int:
    """-G/--group as dockerd's: a group name or number; the default "docker"
    may be missing (the socket stays the daemon's group), any other group
    must exist."""
    import grp
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        pass
    if group.isdigit():
        return int(group)
    if group and group != DEFAULT_SOCKET_GROUP:
        raise SystemExit(f"dockyardd: failed to load listeners: group {group} not found")
    if group:
        log.warning("could not change group of the socket to %s: group %s not found",
                    DEFAULT_SOCKET_GROUP, group)
    return os.getgid()


def _lock_data_root(data_root: str) -> int:
    """One daemon per data root: an flock held for the daemon's lifetime.
    The root is dockerd's 0710 (the daemon tightens it again in Daemon)."""
    os.makedirs(data_root, mode=0o710, exist_ok=True)
    fd = os.open(os.path.join(data_root, "dockyardd.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"dockyardd: another daemon is using data root {data_root} "
                         "(its lock file dockyardd.lock is held)") from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def _log_defaults(driver: str, opts: list[str]) -> tuple[str, dict]:
    """--log-driver/--log-opt, checked at start as Docker does."""
    from .daemon.logconfig import resolve
    from .errors import DockyardError
    parsed = {}
    for o in opts:
        k, eq, v = o.partition("=")
        if not eq:
            raise SystemExit(f"dockyardd: invalid --log-opt {o!r}: want key=value")
        parsed[k] = v
    try:
        resolve({"Type": driver, "Config": parsed})
    except DockyardError as e:
        raise SystemExit(f"dockyardd: {e.message}") from None
    return driver, parsed


async def _serve(args: argparse.Namespace) -> None:
    from .api import routes  # noqa: F401  (registers the routes)
    from .api.server import ApiServer, Limits
    from .daemon.daemon import Daemon, DaemonConfig

    hosts = args.host or ["unix:///run/dockyard/dockyard.sock"]
    log_driver, log_opts = _log_defaults(args.log_driver, args.log_opt)
    cfg = DaemonConfig(data_root=os.path.abspath(args.data_root), exec_root=os.path.abspath(args.exec_root),
                       host=hosts[0], pidfile=args.pidfile or "", default_runtime=args.default_runtime,
                       bridge=args.bridge, bip=args.bip, debug=args.debug or args.log_level == "debug",
                       log_level=args.log_level, criu_path=args.criu_path,
                       cgroup_parent=args.cgroup_parent.strip("/") or "dockyard", userns_remap=args.userns_remap,
                       insecure_registries=tuple(args.insecure_registry or ()),
                       log_driver=log_driver, log_opts=log_opts)
    daemon = Daemon(cfg)
    await daemon.setup()
    server = ApiServer(daemon, Limits(max_body=args.max_request_body, header_timeout=args.header_timeout,
                                      idle_timeout=args.idle_timeout, max_connections=args.max_connections))
    socks = [_socket_path(h) for h in hosts]
    for s in socks:
        await server.listen_unix(s, gid=args.socket_gid)
        if os.path.dirname(s) == cfg.exec_root:   # the default /run/dockyard/dockyard.sock
            os.chown(cfg.exec_root, -1, args.socket_gid)   # its group may pass the 0710 exec root
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write(str(os.getpid()))
    log.info("dockyardd listening on %s (runtime %s)", ", ".join(socks), daemon.runtimes.default)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down; containers keep running")
    await server.close()
    await daemon.shutdown()
    for s in socks:
        try:
            os.unlink(s)
        except OSError:
            pass
    if args.pidfile:
        try:
            os.unlink(args.pidfile)
        except OSError:
            pass


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    level = logging.DEBUG if args.debug or args.log_level == "debug" else getattr(
        logging, {"warn": "WARNING", "fatal": "CRITICAL"}.get(args.log_level.upper(), args.log_level.upper()))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    import pyroute2.config.log  # noqa: F401  (it sets its logger to level 0 on import)
    logging.getLogger("pyroute2").setLevel(logging.WARNING)   # its debug dumps every netlink message
    if os.geteuid() != 0:
        raise SystemExit("dockyardd: must run as root")
    args.data_root, args.exec_root = os.path.abspath(args.data_root), os.path.abspath(args.exec_root)
    if args.pidfile:
        args.pidfile = os.path.abspath(args.pidfile)
    if args.host:
        args.host = ["unix://" + os.path.abspath(_socket_path(h)) for h in args.host]
    args.socket_gid = socket_gid(args.group)   # before anything is made, as dockerd's listeners
    lock = _lock_data_root(args.data_root)
    os.chdir("/")   # a daemon holds no directory busy (conmon and runtimes inherit the cwd)
    try:
        asyncio.run(_serve(args))
    finally:
        os.close(lock)


if __name__ == "__main__":
    main()

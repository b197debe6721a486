"""`dockyardd`: the composition root. Parses dockerd's flags into a complete
`DaemonConfig`, builds the `Daemon` (the services) and the API server over
it, and serves until SIGTERM/SIGINT (containers keep running)."""
from __future__ import annotations

import argparse
import asyncio
import fcntl
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import sys

log = logging.getLogger("dockyard")
DEFAULT_SOCKET_GROUP = "docker"


DEFAULT_CONFIG_FILE = "/etc/dockyard/daemon.json"


def _bool_arg(text: str) -> bool:
    """A Go-style boolean flag value (--tls=false)."""
    v = text.strip().lower()
    if v in ("1", "t", "true"):
        return True
    if v in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


# glibc malloc (issue 16: the daemon's RSS). Every thread that mallocs gets its
# own arena by default (up to 8 per core), and each keeps what it once held; a
# daemon with worker pools and grpc's threads holds megabytes that way. Two
# arenas keep the loop and the workers from contending, and malloc_trim after a
# burst of starts/removes hands freed pages back. Not glibc (musl): nothing.
M_ARENA_MAX = -8
MALLOC_ARENAS = 2
TRIM_QUIET_S = 5.0      # the daemon trims once its events have been quiet this long


def _libc():
    import ctypes
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except (OSError, AttributeError):
        return None


def tune_malloc(arenas: int = MALLOC_ARENAS) -> bool:
    """mallopt(M_ARENA_MAX): before any thread starts. MALLOC_ARENA_MAX in the
    environment (the systemd unit, an operator) wins. True when applied."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, arenas) == 1)


def malloc_trim() -> None:
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


async def trim_after_bursts(events, quiet: float = TRIM_QUIET_S) -> None:
    """malloc_trim once the daemon's events (starts, removes, pulls) have been
    quiet for `quiet` seconds after a change: one cheap look at the last event
    per period, no subscriber (NEventsListener stays the clients' count)."""
    last = None
    dirty = False
    while True:
        await asyncio.sleep(quiet)
        hist = events.history()
        now = hist[-1]["timeNano"] if hist else None
        if now != last:
            last, dirty = now, True
        elif dirty:
            dirty = False
            await asyncio.to_thread(malloc_trim)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dockyardd", description="Docker-compatible container engine daemon")
    p.add_argument("--config-file", default=None,
                   help=f"daemon configuration file, dockerd's daemon.json keys (default {DEFAULT_CONFIG_FILE})")
    p.add_argument("-H", "--host", action="append", default=None,
                   help="daemon socket(s) to listen on: unix://PATH, tcp://HOST:PORT, fd://")
    p.add_argument("-G", "--group", default=DEFAULT_SOCKET_GROUP, help="group for the unix socket")
    p.add_argument("--data-root", default="/var/lib/dockyard")
    p.add_argument("--insecure-registry", action="append", default=[],
                   help="registry (host[:port] or CIDR) that may be reached over plain HTTP")
    p.add_argument("--registry-mirror", action="append", default=[],
                   help="registry mirror for Docker Hub images (URL)")
    p.add_argument("--exec-root", default="/run/dockyard")
    p.add_argument("-p", "--pidfile", default=None)
    p.add_argument("--default-runtime", default="crun", choices=("crun", "runc"))
    p.add_argument("-l", "--log-level", default="info", choices=("debug", "info", "warn", "error", "fatal"))
    p.add_argument("-D", "--debug", action="store_true")
    p.add_argument("-b", "--bridge", default="dockyard0", help="name of the default bridge")
    p.add_argument("--bip", default=None, help="gateway address and prefix of the default bridge (CIDR)")
    p.add_argument("--ipv6", action="store_true", default=False, help="IPv6 on the default bridge")
    p.add_argument("--fixed-cidr-v6", default="", help="the default bridge's IPv6 subnet (with --ipv6)")
    p.add_argument("--default-address-pool", action="append", default=[], metavar="base=CIDR,size=N",
                   help="default address pool for networks without a subnet (repeatable; IPv4 and IPv6)")
    p.add_argument("--log-driver", default="json-file", help="default log driver (json-file, local, none)")
    p.add_argument("--log-opt", action="append", default=[], help="default log driver option (max-size=10m)")
    p.add_argument("--label", action="append", default=[], help="key=value label of this daemon")
    p.add_argument("--default-ulimit", action="append", default=[],
                   help="default ulimit of containers (nofile=1024:2048)")
    p.add_argument("--max-concurrent-downloads", type=_count_arg, default=3,
                   help="layers pulled at once per pull")
    p.add_argument("--max-concurrent-uploads", type=_count_arg, default=5,
                   help="layers pushed at once per push")
    p.add_argument("--live-restore", nargs="?", const=True, default=True, type=_bool_arg,
                   help="accepted for dockerd's sake: containers always outlive the daemon here")
    p.add_argument("--cgroup-parent", default="dockyard",
                   help="parent cgroup of containers (under each hierarchy; removed when empty)")
    p.add_argument("--criu-path", default=None, help="CRIU (>= 4.2) for checkpoint/restore (default: criu on PATH)")
    p.add_argument("--userns-remap", default="", help="user/group for user namespaces (default | user[:group])")
    p.add_argument("--tls", nargs="?", const=True, default=None, type=_bool_arg,
                   help="serve TCP listeners over TLS (implied by --tlsverify)")
    p.add_argument("--tlsverify", nargs="?", const=True, default=None, type=_bool_arg,
                   help="TLS and require client certificates signed by --tlscacert")
    p.add_argument("--tlscacert", default="", help="trust certificates signed by this CA (~/.docker/ca.pem)")
    p.add_argument("--tlscert", default="", help="the server's certificate (~/.docker/cert.pem)")
    p.add_argument("--tlskey", default="", help="the server's key (~/.docker/key.pem)")
    # what one client may make the daemon hold (api/server.py's Limits)
    p.add_argument("--max-request-body", default="32m", type=_size_arg,
                   help="largest JSON request body, e.g. 32m (uploads of tars are not limited); larger: 413")
    p.add_argument("--header-timeout", default=30.0, type=_seconds_arg,
                   help="seconds a client has to finish a request head once begun")
    p.add_argument("--idle-timeout", default=60.0, type=_seconds_arg,
                   help="seconds a connection may send nothing while the daemon waits for it")
    p.add_argument("--max-connections", default=512, type=_count_arg,
                   help="connections served at once; past it /_ping still answers, other requests get 503")
    # the Kubernetes CRI server (cri/server.py)
    p.add_argument("--cri", nargs="?", const=True, default=True, type=_bool_arg,
                   help="serve the Kubernetes CRI (v1) on --cri-socket (--cri=false: off)")
    p.add_argument("--cri-socket", default=None,
                   help="the CRI's gRPC socket, unix://PATH (default <exec-root>/cri.sock: "
                        "unix:///run/dockyard/cri.sock)")
    p.add_argument("--streaming-address", default="",
                   help="HOST[:PORT] of the CRI's streaming server (exec, attach, port-forward URLs; "
                        "default: an ephemeral port on 127.0.0.1)")
    p.add_argument("--cri-registry-mirror", action="append", default=[],
                   help="HOST=URL[,URL...]: CRI pulls of HOST's images try these registries first "
                        "(containerd's registry.mirrors; HOST * for every registry)")
    p.add_argument("--cni-bin-dir", default="/usr/lib/cni:/opt/cni/bin",
                   help="directories of the CRI pods' CNI plugins, ':'-separated")
    p.add_argument("--cni-conf-dir", default="/etc/cni/net.d",
                   help="the CRI pods' CNI network config (the first valid *.conflist/*.conf/*.json by name)")
    p.add_argument("--cni-conf-template", default="",
                   help="a CNI config template (Go text/template fields .PodCIDR, .PodCIDRRanges, .Routes) that "
                        "the CRI's UpdateRuntimeConfig renders into --cni-conf-dir when it has no network "
                        "(containerd's cni.conf_template)")
    return p


class _Unset(list):
    """Marks a flag not given (a list, so `append` flags can grow it)."""


def explicit_flags(argv: list[str] | None) -> dict:
    """The flags given on the command line, by dest (daemon.json may not
    repeat them)."""
    p = _parser()
    dests = vars(p.parse_args([])).keys()
    unset = _Unset()
    p.set_defaults(**{d: unset for d in dests})
    ns = vars(p.parse_args(argv))
    return {k: (list(v) if isinstance(v, _Unset) else v) for k, v in ns.items()
            if not (isinstance(v, _Unset) and not v)}


def apply_file(args: argparse.Namespace, doc: dict) -> None:
    """daemon.json's values into the parsed flags (a key and its flag are
    never both given: daemonjson.conflicts refused that)."""
    from . import daemonjson
    for key, value in doc.items():
        dest = daemonjson.KEYS[key].dest
        if key == "log-opts":
            value = [f"{k}={v}" for k, v in value.items()]
        setattr(args, dest, value)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Flags, then the configuration file (--config-file, else the default
    one when it exists) with dockerd's rules."""
    from . import daemonjson
    args = _parser().parse_args(argv)
    explicit = explicit_flags(argv)
    path = args.config_file or DEFAULT_CONFIG_FILE
    try:
        doc = daemonjson.load(path, required=args.config_file is not None)
        daemonjson.conflicts(explicit, doc, path)
    except daemonjson.ConfigError as e:
        raise SystemExit(f"dockyardd: {e}") from None
    apply_file(args, doc)
    args.config_path = path
    args.config_doc = doc
    args.explicit = explicit
    return args


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


def _address_pools(values: list) -> tuple:
    """--default-address-pool flags (strings) or daemon.json's default-address-pools (objects),
    checked with dockerd's words: a flag's syntax as its PoolsOpt.Set (cobra's "invalid argument"),
    a pool libnetwork cannot cut as its controller's start failure."""
    from .network import subnets
    pools = []
    for v in values:
        try:
            pools.append(subnets.parse_flag(v) if isinstance(v, str) else subnets.parse_json(v))
        except subnets.PoolError as e:
            if isinstance(v, str):
                raise SystemExit(f'dockyardd: invalid argument "{v}" for "--default-address-pool" flag: '
                                 f"{e}") from None
            raise SystemExit(f"dockyardd: invalid default-address-pools entry {json.dumps(v)}: {e}") from None
    try:
        subnets.check(pools)
    except subnets.PoolError as e:
        raise SystemExit("dockyardd: Error initializing network controller: error obtaining controller "
                         f"instance: could not construct local address space: {e}") from None
    return tuple(pools)


def _cri_registry_mirrors(spec) -> dict:
    """--cri-registry-mirror HOST=URL[,URL] (repeated) or daemon.json's
    "cri-registry-mirrors": {HOST: [URL, ...]} -> {host: (url, ...)}; a URL
    is http:// or https:// and a host."""
    if isinstance(spec, dict):
        items = list(spec.items())
    else:
        items = []
        for text in spec:
            host, eq, urls = str(text).partition("=")
            if not eq:
                raise SystemExit(f"dockyardd: invalid --cri-registry-mirror {text!r}: want HOST=URL[,URL...]")
            items.append((host, [u for u in urls.split(",") if u]))
    out: dict = {}
    for host, urls in items:
        host = str(host).strip()
        if not host or not isinstance(urls, list) or not urls or \
                not all(isinstance(u, str) and re.match(r"^https?://[^/\s]+/?$", u) for u in urls):
            raise SystemExit(f"dockyardd: invalid cri-registry-mirrors entry {host!r}: {urls!r} "
                             "(want a registry host and a list of http(s)://host[:port] URLs)")
        out[host] = tuple(out.get(host, ())) + tuple(u.rstrip("/") for u in urls)
    return out


def daemon_config(args: argparse.Namespace):
    """The complete DaemonConfig from flags + file (both already merged)."""
    from . import daemonjson
    from .daemon.daemon import DaemonConfig
    log_driver, log_opts = _log_defaults(args.log_driver, args.log_opt)
    ulimits = {}
    try:
        if isinstance(args.default_ulimit, dict):        # from daemon.json
            ulimits = daemonjson.ulimits(args.default_ulimit)
        else:
            ulimits = dict(daemonjson.parse_ulimit_flag(u) for u in args.default_ulimit)
    except daemonjson.ConfigError as e:
        raise SystemExit(f"dockyardd: {e}") from None
    cri_mirrors = _cri_registry_mirrors(getattr(args, "cri_registry_mirror", None) or [])
    fixed_cidr_v6 = str(getattr(args, "fixed_cidr_v6", "") or "")
    if fixed_cidr_v6:
        try:
            if ipaddress.ip_network(fixed_cidr_v6, strict=False).version != 6:
                raise ValueError("not an IPv6 subnet")
        except ValueError as e:
            raise SystemExit(f"dockyardd: fixed-cidr-v6: invalid {fixed_cidr_v6!r}: {e}") from None
    pools = _address_pools(getattr(args, "default_address_pool", None) or [])
    runtime_paths = {}
    for name, rt in (getattr(args, "runtimes", None) or {}).items():
        if name not in ("crun", "runc") or not isinstance(rt, dict) or set(rt) - {"path"} or \
                os.path.basename(str(rt.get("path") or name)) != name:
            raise SystemExit(f"dockyardd: runtimes: {name!r}: only crun and runc, found on PATH, are "
                             "supported (no other binaries or runtimeArgs yet)")
        if os.path.isabs(str(rt.get("path") or "")):
            runtime_paths[name] = rt["path"]     # that binary (for crun: not the private prefix's)
    labels = tuple(args.label or ())
    for lb in labels:
        if "=" not in lb:
            raise SystemExit(f"dockyardd: bad attribute format: {lb}")
    return DaemonConfig(data_root=os.path.abspath(args.data_root), exec_root=os.path.abspath(args.exec_root),
                        host=args.host[0], hosts=tuple(args.host), pidfile=args.pidfile or "",
                        default_runtime=args.default_runtime, runtime_paths=runtime_paths,
                        bridge=args.bridge, bip=args.bip, ipv6=bool(getattr(args, "ipv6", False)),
                        fixed_cidr_v6=fixed_cidr_v6, default_address_pools=pools, debug=bool(args.debug) or args.log_level == "debug",
                        log_level=args.log_level, criu_path=args.criu_path,
                        cgroup_parent=args.cgroup_parent.strip("/") or "dockyard", userns_remap=args.userns_remap,
                        insecure_registries=tuple(args.insecure_registry or ()),
                        registry_mirrors=tuple(args.registry_mirror or ()),
                        log_driver=log_driver, log_opts=log_opts, labels=labels, default_ulimits=ulimits,
                        max_concurrent_downloads=args.max_concurrent_downloads,
                        max_concurrent_uploads=args.max_concurrent_uploads,
                        cni_bin_dirs=tuple(os.path.abspath(d) for d in
                                           getattr(args, "cni_bin_dir", "/usr/lib/cni:/opt/cni/bin").split(":") if d),
                        cni_conf_dir=os.path.abspath(getattr(args, "cni_conf_dir", "/etc/cni/net.d")),
                        cri_registry_mirrors=cri_mirrors,
                        live_restore=bool(args.live_restore), features=dict(getattr(args, "features", None) or {}),
                        config_file=args.config_path)


def _listen_plan(args: argparse.Namespace):
    """[(Host, ssl context or None, socket or None)] and /info's warnings:
    every listener's problem (an address, a certificate, a port in use, no
    socket from systemd) found, and the TCP and systemd sockets taken, before
    the daemon makes anything (a bridge, nft tables) that a failed start
    would leave behind."""
    from . import listeners as ls
    tls = ls.TLSOptions(args.tls, args.tlsverify, args.tlscacert, args.tlscert, args.tlskey)
    plan, warnings = [], []
    ctx = None
    try:
        for text in args.host:
            h = ls.parse_host(text, tls.enabled)
            if h.proto == "tcp":
                if tls.enabled:
                    ctx = ctx or ls.server_context(tls)
                    plan.append((h, ctx, ls.open_tcp(h)))
                    continue
                if not tls.explicitly_off:
                    ls.refuse_plain_tcp(h)
                warnings.append(ls.insecure_tcp_info_warning(h))
                for w in ls.insecure_tcp_warnings(h):
                    log.warning("%s", w)
                plan.append((h, None, ls.open_tcp(h)))
            elif h.proto == "fd":
                for sock in ls.systemd_fds(h.addr):
                    plan.append((h, None, sock))
            else:
                plan.append((h, None, None))
    except ls.ListenError:
        _close_sockets(plan)
        raise
    ls.clear_systemd_env()
    return plan, warnings


def _close_sockets(plan) -> None:
    for _h, _ctx, sock in plan:
        if sock is not None:
            sock.close()


async def _open_listeners(server, plan, socket_gid: int, exec_root: str) -> list[str]:
    opened: list[str] = []
    for h, ctx, sock in plan:
        if h.proto == "unix":
            await server.listen_unix(h.addr, gid=socket_gid)
            if os.path.dirname(h.addr) == exec_root:   # the default /run/dockyard/dockyard.sock
                os.chown(exec_root, -1, socket_gid)     # its group may pass the 0710 exec root
            opened.append(str(h))
        elif h.proto == "tcp":
            await server.serve_socket(sock, ctx)
            opened.append(f"{h} ({'TLS, client certificates required' if ctx is not None and ctx.verify_mode else 'TLS' if ctx is not None else 'plain HTTP'})")
        else:
            name = sock.getsockname() if sock.family == socket.AF_UNIX else ""
            if isinstance(name, str) and os.path.dirname(name) == exec_root:
                os.chown(exec_root, -1, os.stat(name).st_gid)   # the socket's group may pass the 0710 root
            await server.serve_socket(sock, None)
            opened.append(f"fd://{sock.fileno()} ({name or sock.getsockname()})")
    return opened


def reload_config(daemon, args: argparse.Namespace) -> dict:
    """SIGHUP: the file again; the reloadable keys take effect at once (a
    new frozen DaemonConfig), the rest wait for a restart, as dockerd.
    Returns {key: new value} of what changed; a bad file changes nothing."""
    import dataclasses

    from . import daemonjson
    path = args.config_path
    doc = daemonjson.load(path, required=args.config_file is not None)
    daemonjson.conflicts(args.explicit, doc, path)
    fresh = _parser().parse_args(args.argv)
    apply_file(fresh, doc)
    fresh.config_path = path
    new = daemon_config(fresh)
    old = daemon.config
    fields = {"debug": "debug", "log_level": "log-level", "labels": "labels",
              "insecure_registries": "insecure-registries", "registry_mirrors": "registry-mirrors",
              "max_concurrent_downloads": "max-concurrent-downloads",
              "max_concurrent_uploads": "max-concurrent-uploads", "default_ulimits": "default-ulimits",
              "live_restore": "live-restore", "features": "features"}
    changed = {key: getattr(new, f) for f, key in fields.items() if getattr(new, f) != getattr(old, f)}
    if changed:
        daemon.config = dataclasses.replace(old, **{f: getattr(new, f) for f in fields})
    ignored = sorted(k for k in doc if k not in daemonjson.RELOADABLE and
                     getattr(new, _field_of(k), None) != getattr(old, _field_of(k), None))
    for k in ignored:
        log.warning("reload: %s changed in %s; it takes effect at the next start", k, path)
    return changed


def _field_of(key: str) -> str:
    return {"hosts": "hosts", "data-root": "data_root", "exec-root": "exec_root", "pidfile": "pidfile",
            "bridge": "bridge", "bip": "bip", "cgroup-parent": "cgroup_parent",
            "default-address-pools": "default_address_pools",
            "userns-remap": "userns_remap", "log-driver": "log_driver", "log-opts": "log_opts"}.get(key, "")


async def _serve(args: argparse.Namespace) -> None:
    from . import daemonjson
    from . import listeners as ls
    from .api import routes  # noqa: F401  (registers the routes)
    from .api.server import ApiServer, Limits
    from .daemon.daemon import Daemon
    from .errors import DockyardError

    cfg = daemon_config(args)
    try:
        plan, warnings = _listen_plan(args)     # certificates and addresses checked before anything starts
    except ls.ListenError as e:
        raise SystemExit(f"dockyardd: failed to load listeners: {e}") from None
    import dataclasses
    daemon = Daemon(dataclasses.replace(cfg, listen_warnings=tuple(warnings)))
    try:
        await daemon.setup()
    except DockyardError as e:   # e.g. no subnet left in the default address pools for the default bridge
        raise SystemExit(f"dockyardd: failed to start daemon: {e.message}") from None
    server = ApiServer(daemon, Limits(max_body=args.max_request_body, header_timeout=args.header_timeout,
                                      idle_timeout=args.idle_timeout, max_connections=args.max_connections))
    try:
        opened = await _open_listeners(server, plan, args.socket_gid, cfg.exec_root)
    except OSError as e:       # a unix socket's directory or path (the rest was checked in the plan)
        await server.close()
        await daemon.shutdown()
        _remove_sockets(plan)
        _close_sockets(plan)
        raise SystemExit(f"dockyardd: failed to load listeners: {e}") from None
    cri = None
    if args.cri:
        from .cri.server import CriServer
        cri = CriServer(daemon, args.cri_socket, args.streaming_address,
                        os.path.abspath(args.cni_conf_template) if args.cni_conf_template else "")
        try:
            await cri.start()
        except OSError as e:
            await server.close()
            await daemon.shutdown()
            _remove_sockets(plan)
            raise SystemExit(f"dockyardd: failed to serve the CRI on {args.cri_socket}: {e}") from None
        opened.append(f"CRI {args.cri_socket}")
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write(str(os.getpid()))
    log.info("dockyardd listening on %s (runtime %s)", ", ".join(opened), daemon.runtimes.default)
    malloc_trim()        # what setup and the imports freed
    trimmer = asyncio.create_task(trim_after_bursts(daemon.events))
    ls.sd_notify("READY=1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def on_hup() -> None:
        ls.sd_notify("RELOADING=1")
        try:
            changed = reload_config(daemon, args)
        except (daemonjson.ConfigError, SystemExit) as e:
            log.error("reload of %s failed, configuration unchanged: %s", args.config_path, e)
        else:
            _set_log_level(daemon.config.log_level, daemon.config.debug)
            log.info("Reloaded configuration: %s", ", ".join(f"{k}={v}" for k, v in changed.items()) or
                     "nothing changed")
        ls.sd_notify("READY=1")
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    await stop.wait()
    ls.sd_notify("STOPPING=1")
    log.info("shutting down; containers keep running")
    trimmer.cancel()
    if cri is not None:
        await cri.stop()
    await server.close()
    await daemon.shutdown()
    _remove_sockets(plan)
    if args.pidfile:
        try:
            os.unlink(args.pidfile)
        except OSError:
            pass


def _remove_sockets(plan) -> None:
    for h, _ctx, _sock in plan:
        if h.proto == "unix":
            try:
                os.unlink(h.addr)
            except OSError:
                pass


def _set_log_level(level: str, debug: bool) -> None:
    lv = logging.DEBUG if debug or level == "debug" else getattr(
        logging, {"warn": "WARNING", "fatal": "CRITICAL"}.get(level.upper(), level.upper()))
    logging.getLogger().setLevel(lv)


def main(argv: list[str] | None = None) -> None:
    tune_malloc()        # first: before any thread (a pool, grpc) has made an arena
    args = parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    _set_log_level(args.log_level, bool(args.debug))
    import pyroute2.config.log  # noqa: F401  (it sets its logger to level 0 on import)
    logging.getLogger("pyroute2").setLevel(logging.WARNING)   # its debug dumps every netlink message
    logging.getLogger("grpc").setLevel(logging.WARNING)       # its debug logs every call's event loop
    if os.geteuid() != 0:
        raise SystemExit("dockyardd: must run as root")
    args.data_root, args.exec_root = os.path.abspath(args.data_root), os.path.abspath(args.exec_root)
    if args.pidfile:
        args.pidfile = os.path.abspath(args.pidfile)
    args.host = args.host or ["unix:///run/dockyard/dockyard.sock"]
    args.socket_gid = socket_gid(args.group)   # before anything is made, as dockerd's listeners
    if args.cri:
        from .cri.server import socket_path, streaming_address
        # beside the daemon's other live files: daemons on their own exec roots never share it
        args.cri_socket = args.cri_socket or "unix://" + os.path.join(args.exec_root, "cri.sock")
        try:
            socket_path(args.cri_socket)
            streaming_address(args.streaming_address)
        except ValueError as e:
            raise SystemExit(f"dockyardd: {e}") from None
    lock = _lock_data_root(args.data_root)
    os.chdir("/")   # a daemon holds no directory busy (conmon and runtimes inherit the cwd)
    try:
        asyncio.run(_serve(args))
    finally:
        os.close(lock)


if __name__ == "__main__":
    main()

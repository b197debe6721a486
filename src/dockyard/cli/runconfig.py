"""`run`/`create` flags → the POST /containers/create body.

The body mirrors what docker 28's CLI sends (captured from its requests):
Config fields at the top level with HostConfig and NetworkingConfig
nested, zero values included, so the daemon sees the same shape from us,
from docker and from docker-py.
"""
from __future__ import annotations

import os

from .flags import INT, LIST, STRING, Flag, UsageError, key_values
from .isolation_flags import ISOLATION_FLAGS
from .isolation_flags import apply as apply_isolation_flags

RUN_FLAGS = [
    Flag("detach", "d", help="Run container in background and print container ID"),
    Flag("rm", help="Automatically remove the container and its associated anonymous volumes when it exits"),
    Flag("name", kind=STRING, help="Assign a name to the container"),
    Flag("env", "e", LIST, help="Set environment variables"),
    Flag("env-file", kind=LIST, help="Read in a file of environment variables"),
    Flag("workdir", "w", STRING, help="Working directory inside the container"),
    Flag("user", "u", STRING, help="Username or UID (format: <name|uid>[:<group|gid>])"),
    Flag("entrypoint", kind=STRING, help="Overwrite the default ENTRYPOINT of the image"),
    Flag("network", kind=STRING, help="Connect a container to a network"),
    Flag("net", kind=STRING, hidden=True),
    Flag("restart", kind=STRING, default="no", help="Restart policy to apply when a container exits"),
    Flag("runtime", kind=STRING, help="Runtime to use for this container"),
    Flag("label", "l", LIST, help="Set meta data on a container"),
    Flag("hostname", "h", STRING, help="Container host name"),
    Flag("tty", "t", help="Allocate a pseudo-TTY"),
    Flag("interactive", "i", help="Keep STDIN open even if not attached"),
    Flag("publish", "p", LIST, help="Publish a container's port(s) to the host"),
    Flag("publish-all", "P", help="Publish all exposed ports to random ports"),
    Flag("volume", "v", LIST, help="Bind mount a volume"),
    Flag("tmpfs", kind=LIST, help="Mount a tmpfs directory"),
    Flag("privileged", help="Give extended privileges to this container"),
    Flag("read-only", help="Mount the container's root filesystem as read only"),
    Flag("init", help="Run an init inside the container that forwards signals and reaps processes"),
    Flag("cap-add", kind=LIST, help="Add Linux capabilities"),
    Flag("cap-drop", kind=LIST, help="Drop Linux capabilities"),
    Flag("add-host", kind=LIST, help="Add a custom host-to-IP mapping (host:ip)"),
    Flag("dns", kind=LIST, help="Set custom DNS servers"),
    Flag("dns-search", kind=LIST, help="Set custom DNS search domains"),
    Flag("dns-option", kind=LIST, help="Set DNS options"),
    Flag("domainname", kind=STRING, help="Container NIS domain name"),
    Flag("expose", kind=LIST, help="Expose a port or a range of ports"),
    Flag("ip", kind=STRING, help="IPv4 address (e.g., 172.30.100.104)"),
    Flag("link", kind=LIST, help="Add link to another container"),
    Flag("mac-address", kind=STRING, help="Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
    Flag("network-alias", kind=LIST, help="Add network-scoped alias for the container"),
    Flag("stop-signal", kind=STRING, help="Signal to stop the container"),
    Flag("stop-timeout", kind=INT, help="Timeout (in seconds) to stop a container"),
    Flag("sig-proxy", default=True, help="Proxy received signals to the process (default true)"),
    Flag("platform", kind=STRING, help="Set platform if server is multi-platform capable"),
    Flag("pull", kind=STRING, default="missing", help='Pull image before running ("always", "missing", "never")'),
    Flag("detach-keys", kind=STRING, help="Override the key sequence for detaching a container"),
] + ISOLATION_FLAGS   # security, resources, mounts: cli/isolation_flags.py

RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")


# ---------------------------------------------------------------- parsers

def parse_restart_policy(text: str) -> dict:
    """`on-failure:3` → {"Name": "on-failure", "MaximumRetryCount": 3}
    (docker's opts.ParseRestartPolicy plus the daemon's validation)."""
    if not text:
        return {"Name": "no", "MaximumRetryCount": 0}
    name, colon, count_text = text.partition(":")
    if colon and not name:
        raise UsageError("invalid restart policy format: no policy provided before colon")
    count = 0
    if count_text:
        try:
            count = int(count_text)
        except ValueError:
            raise UsageError("invalid restart policy format: maximum retry count must be an integer") from None
    if name not in RESTART_POLICIES:
        raise UsageError(f"invalid restart policy: unknown policy '{name}'; use one of "
                         "'no', 'always', 'on-failure', or 'unless-stopped'")
    if count and name != "on-failure":
        raise UsageError("invalid restart policy: maximum retry count can only be used with 'on-failure'")
    if count < 0:
        raise UsageError("invalid restart policy: maximum retry count cannot be negative")
    return {"Name": name, "MaximumRetryCount": count}


def parse_env_file(text: str, environ: dict[str, str], source: str = "env file") -> list[str]:
    """docker's env-file format: `KEY=VALUE` lines taken verbatim, `#`
    comments and blank lines skipped, a bare `KEY` copied from our own
    environment (and dropped when unset)."""
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.lstrip()
        if number == 1:
            line = line.removeprefix("\ufeff")
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if any(c.isspace() for c in key):
            raise UsageError(f"variable '{key}' contains whitespaces")
        if not key:
            raise UsageError(f"no variable name on line '{line}' of {source}")
        if eq:
            entries.append(f"{key}={value}")
        elif key in environ:
            entries.append(f"{key}={environ[key]}")
    return entries


def env_entry(text: str, environ: dict[str, str]) -> str:
    """`-e KEY` takes KEY's value from our environment (kept bare if unset)."""
    key, eq, _ = text.partition("=")
    if not key:
        raise UsageError(f"invalid environment variable: {text}")
    if not eq and key in environ:
        return f"{key}={environ[key]}"
    return text


def _port_range(text: str) -> list[int]:
    start, dash, end = text.partition("-")
    try:
        first = int(start)
        last = int(end) if dash else first
    except ValueError:
        raise UsageError(f"invalid containerPort: {text}") from None
    if not (0 < first <= last <= 65535):
        raise UsageError(f"invalid port range: {text}")
    return list(range(first, last + 1))


def parse_publish(specs: list[str]) -> tuple[dict, dict]:
    """`-p [ip:][hostPort:]containerPort[/proto]` → (ExposedPorts, PortBindings)."""
    exposed: dict[str, dict] = {}
    bindings: dict[str, list] = {}
    for spec in specs:
        rest, _, proto = spec.partition("/")
        proto = (proto or "tcp").lower()
        host_ip = ""
        if rest.startswith("["):  # [::1]:80:80
            close = rest.find("]")
            host_ip, rest = rest[1:close], rest[close + 2:]
            host_port, _, container = rest.rpartition(":")
        else:
            parts = rest.split(":")
            if len(parts) > 3:
                raise UsageError(f"invalid port format: {spec}")
            container = parts[-1]
            host_port = parts[-2] if len(parts) >= 2 else ""
            host_ip = parts[0] if len(parts) == 3 else ""
        if not container:
            raise UsageError(f"no port specified: {spec}<empty>")
        ports = _port_range(container)
        host_ports = _port_range(host_port) if host_port else []
        if host_ports and len(host_ports) != len(ports) and len(ports) != 1:
            raise UsageError(f"invalid ranges specified for container and host Ports: {container} and {host_port}")
        for i, port in enumerate(ports):
            key = f"{port}/{proto}"
            if len(ports) == len(host_ports):
                hp = str(host_ports[i])
            else:
                hp = host_port  # one container port, a host range to choose from
            exposed[key] = {}
            bindings.setdefault(key, []).append({"HostIp": host_ip, "HostPort": hp})
    return exposed, bindings


def normalize_capabilities(caps: list[str]) -> list[str] | None:
    if not caps:
        return None
    out = []
    for cap in caps:
        cap = cap.upper()
        if cap != "ALL" and not cap.startswith("CAP_"):
            cap = "CAP_" + cap
        if cap not in out:
            out.append(cap)
    return out


# ---------------------------------------------------------------- the body

def _endpoint_settings() -> dict:
    return {"IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "", "DriverOpts": None,
            "GwPriority": 0, "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
            "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "DNSNames": None}


def _host_config_defaults() -> dict:
    """Every HostConfig field docker 28 sends, at its zero value."""
    return {
        "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "", "Config": {}},
        "NetworkMode": "default", "PortBindings": {},
        "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False,
        "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0], "CapAdd": None,
        "CapDrop": None, "CgroupnsMode": "", "Dns": [], "DnsOptions": [], "DnsSearch": [],
        "ExtraHosts": None, "GroupAdd": None, "IpcMode": "", "Cgroup": "", "Links": None,
        "OomScoreAdj": 0, "PidMode": "", "Privileged": False, "PublishAllPorts": False,
        "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "", "UsernsMode": "",
        "ShmSize": 0, "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0,
        "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [],
        "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
        "CpusetCpus": "", "CpusetMems": "", "Devices": [], "DeviceCgroupRules": None,
        "DeviceRequests": None, "MemoryReservation": 0, "MemorySwap": 0,
        "MemorySwappiness": -1, "OomKillDisable": False, "PidsLimit": 0, "Ulimits": [],
        "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
        "MaskedPaths": None, "ReadonlyPaths": None,
    }


def _read_env_files(paths: list[str], environ: dict[str, str]) -> list[str]:
    entries = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as err:
            raise UsageError(f"open {path}: {err.strerror.lower() if err.strerror else err}") from None
        except UnicodeDecodeError:
            raise UsageError(f"env file {path} contains invalid utf8 bytes") from None
        entries += parse_env_file(text, environ, path)
    return entries


def build_create_body(opts, args: list[str], environ: dict[str, str] | None = None,
                      console_size: tuple[int, int] = (0, 0)) -> dict:
    """The JSON body for POST /containers/create from parsed run/create flags.

    `args` is [IMAGE, CMD...]; `opts.detach` is False for `create`."""
    environ = os.environ if environ is None else environ
    image, command = args[0], args[1:]
    restart = parse_restart_policy(opts.restart)
    if opts.rm and restart["Name"] != "no":
        raise UsageError("conflicting options: cannot specify both --restart and --rm")
    detached = getattr(opts, "detach", True)
    attach_stdin = opts.interactive and not detached
    env = _read_env_files(opts.env_file, environ) + [env_entry(e, environ) for e in opts.env]

    binds, volumes = [], {}
    for spec in opts.volume:
        # `/host:/ctr[:ro]` and `name:/ctr` are binds; a lone `/ctr` is an anonymous volume
        if ":" in spec:
            binds.append(spec)
        else:
            volumes[spec] = {}
    exposed, bindings = parse_publish(opts.publish)
    for spec in opts.expose:   # --expose 80, 7000-7002/udp
        port, _, proto = spec.partition("/")
        for p in _port_range(port):
            exposed[f"{p}/{(proto or 'tcp').lower()}"] = {}
    network = opts.network or opts.net or "default"

    config = {
        "Hostname": opts.hostname or "",
        "Domainname": opts.domainname or "",
        "User": opts.user or "",
        "AttachStdin": attach_stdin,
        "AttachStdout": not detached,
        "AttachStderr": not detached,
    }
    if exposed:
        config["ExposedPorts"] = exposed
    config.update({
        "Tty": opts.tty,
        "OpenStdin": opts.interactive,
        "StdinOnce": attach_stdin,
        "Env": env or None,
        "Cmd": command or None,
        "Image": image,
        "Volumes": volumes,
        "WorkingDir": opts.workdir or "",
        # `--entrypoint ""` means "no entrypoint", which docker sends as [""]
        "Entrypoint": [opts.entrypoint] if "entrypoint" in opts.given else None,
        "OnBuild": None,
        "Labels": key_values(opts.label),
    })
    if opts.stop_signal:
        config["StopSignal"] = opts.stop_signal
    if opts.stop_timeout is not None:
        config["StopTimeout"] = opts.stop_timeout

    host = _host_config_defaults()
    host.update({
        "Binds": binds or None,
        "NetworkMode": network,
        "PortBindings": bindings,
        "RestartPolicy": restart,
        "AutoRemove": opts.rm,
        "ConsoleSize": list(console_size) if opts.tty else [0, 0],
        "CapAdd": normalize_capabilities(opts.cap_add),
        "CapDrop": normalize_capabilities(opts.cap_drop),
        "Dns": list(opts.dns),
        "DnsSearch": list(opts.dns_search),
        "DnsOptions": list(opts.dns_option),
        "Links": list(opts.link) or None,
        "ExtraHosts": list(opts.add_host) or None,
        "Privileged": opts.privileged,
        "PublishAllPorts": opts.publish_all,
        "ReadonlyRootfs": opts.read_only,
    })
    if opts.runtime:
        host["Runtime"] = opts.runtime
    if opts.tmpfs:
        host["Tmpfs"] = {path: options for path, _, options in (t.partition(":") for t in opts.tmpfs)}
    if opts.init:
        host["Init"] = True
    apply_isolation_flags(opts, config, host)
    config["HostConfig"] = host

    # docker names an endpoint only for the default network; others go by NetworkMode
    endpoints = {"default": _endpoint_settings()} if network == "default" else {}
    if opts.network_alias or opts.ip or opts.mac_address:   # per-network settings go with its endpoint
        ep = endpoints.setdefault(network, _endpoint_settings())
        ep["Aliases"] = list(opts.network_alias) or None
        ep["IPAMConfig"] = {"IPv4Address": opts.ip} if opts.ip else None
        ep["MacAddress"] = opts.mac_address or ""
    config["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    return config


def familiar_image(ref: str) -> str:
    """`busybox` → `busybox:latest`, as docker prints it in "Unable to find image"."""
    if "@" in ref:
        return ref
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else ref + ":latest"

"""Turning a `POST /containers/create` body into a Container: validation
of what Docker validates, with Docker's status codes and wording."""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..errors import InvalidParameter
from . import ids, restart
from .container import Container, now_rfc3339

if TYPE_CHECKING:
    from ..images.service import ImageService
    from ..network.manager import NetworkManager
    from ..runtime.hostfacts import HostFacts
    from ..runtime.runtimes import Runtimes
    from .daemon import DaemonConfig
    from .events import Events
    from .lookup import ContainerStore

_LIST_OF_STR = ("Env", "Cmd", "Entrypoint", "Volumes", "OnBuild", "Shell")

# The fields Docker decodes from a create body (Engine API v1.50's
# ContainerConfig, HostConfig with Resources, NetworkingConfig and its
# EndpointSettings); anything else is dropped before it is stored, as Go's
# JSON decoding drops it — so junk keys cost nothing on disk.
CONFIG_FIELDS = frozenset((
    "Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts", "Tty",
    "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes", "WorkingDir",
    "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild", "Labels", "StopSignal", "StopTimeout", "Shell"))
HOST_CONFIG_FIELDS = frozenset((
    # Resources
    "CpuShares", "Memory", "CgroupParent", "BlkioWeight", "BlkioWeightDevice", "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "CpuPeriod", "CpuQuota",
    "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "Devices", "DeviceCgroupRules",
    "DeviceRequests", "KernelMemory", "KernelMemoryTCP", "MemoryReservation", "MemorySwap", "MemorySwappiness",
    "NanoCpus", "OomKillDisable", "Init", "PidsLimit", "Ulimits", "CpuCount", "CpuPercent", "IOMaximumIOps",
    "IOMaximumBandwidth",
    # HostConfig
    "Binds", "ContainerIDFile", "LogConfig", "NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove",
    "VolumeDriver", "VolumesFrom", "Mounts", "ConsoleSize", "Annotations", "CapAdd", "CapDrop", "CgroupnsMode",
    "Dns", "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd", "IpcMode", "Cgroup", "Links", "OomScoreAdj",
    "PidMode", "Privileged", "PublishAllPorts", "ReadonlyRootfs", "SecurityOpt", "StorageOpt", "Tmpfs",
    "UTSMode", "UsernsMode", "ShmSize", "Sysctls", "Runtime", "Isolation", "MaskedPaths", "ReadonlyPaths"))
ENDPOINT_FIELDS = frozenset((
    "IPAMConfig", "Links", "MacAddress", "Aliases", "DriverOpts", "GwPriority", "NetworkID", "EndpointID",
    "Gateway", "IPAddress", "IPPrefixLen", "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "DNSNames"))


def _known(obj: dict, fields: frozenset) -> dict:
    return {k: v for k, v in obj.items() if k in fields}


def _known_networking(nc: dict) -> dict:
    eps = nc.get("EndpointsConfig")
    if not isinstance(eps, dict):
        return {} if eps is None else {"EndpointsConfig": eps}   # a wrong type: validation says so
    return {"EndpointsConfig": {name: _known(ep, ENDPOINT_FIELDS) if isinstance(ep, dict) else ep
                                for name, ep in eps.items()}}


class _Daemon(Protocol):
    config: DaemonConfig
    containers: ContainerStore
    images: ImageService
    facts: HostFacts
    runtimes: Runtimes
    networks: NetworkManager      # this and the rest: what networking.validate asks of it
    events: Events
    def save(self, c: Container) -> None: ...


def _check_types(cfg: dict) -> None:
    for key in ("Env",):
        v = cfg.get(key)
        if v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
            raise InvalidParameter(f"invalid {key}: must be a list of strings")
    for key in ("Cmd", "Entrypoint"):
        v = cfg.get(key)
        if isinstance(v, str):
            cfg[key] = [v]   # Docker's StrSlice: a lone string is a one-element list
        elif v is not None and (not isinstance(v, list) or not all(isinstance(x, str) for x in v)):
            raise InvalidParameter(f"invalid {key}: must be a string or a list of strings")
    for key in ("Tty", "OpenStdin", "AttachStdin", "AttachStdout", "AttachStderr", "StdinOnce"):
        v = cfg.get(key)
        if v is not None and not isinstance(v, bool):
            raise InvalidParameter(f"invalid {key}: must be a boolean")
    for key in ("Labels",):
        v = cfg.get(key)
        if v is not None and not isinstance(v, dict):
            raise InvalidParameter(f"invalid {key}: must be an object")
    for e in cfg.get("Env") or []:
        if e.startswith("="):
            raise InvalidParameter(f"invalid environment variable: {e}")


# Go's zero values of the fields moby's Config and HostConfig always marshal
# (the omitempty ones aside): a create body without them (docker-py's, an old
# client's) gets them, as dockerd's inspect shows every one.
CONFIG_ZERO = {"Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
               "Tty": False, "OpenStdin": False, "StdinOnce": False, "Volumes": None, "WorkingDir": "",
               "OnBuild": None}
HOST_CONFIG_ZERO = {
    "Binds": None, "ContainerIDFile": "", "PortBindings": None, "AutoRemove": False, "VolumeDriver": "",
    "VolumesFrom": None, "ConsoleSize": (0, 0), "CapAdd": None, "CapDrop": None, "CgroupnsMode": "", "Dns": None,
    "DnsOptions": None, "DnsSearch": None, "ExtraHosts": None, "GroupAdd": None, "IpcMode": "", "Cgroup": "",
    "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False, "PublishAllPorts": False,
    "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "", "UsernsMode": "", "ShmSize": 0, "Isolation": "",
    "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": None,
    "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None, "BlkioDeviceReadIOps": None,
    "BlkioDeviceWriteIOps": None, "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
    "CpusetCpus": "", "CpusetMems": "", "Devices": None, "DeviceCgroupRules": None, "DeviceRequests": None,
    "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None,
    "Ulimits": None, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
    "MaskedPaths": None, "ReadonlyPaths": None}


def fill_daemon_defaults(hc: dict, facts: HostFacts) -> None:
    """What dockerd writes into a new container's HostConfig, so inspect shows
    it: PidsLimit <= 0 and MemorySwappiness -1 are "unset" (null; the router's
    create and fixMemorySwappiness), ShmSize 0 the default 64 MB, an empty
    IpcMode `private`, an empty CgroupnsMode the host's default (`host` on
    cgroup v1, `private` on v2: adaptContainerSettings), and a container that
    is not privileged gets the default MaskedPaths and ReadonlyPaths unless
    given (createContainerOSSpecificSettings; the spec then uses these)."""
    from ..runtime.spec import DEFAULT_SHM_SIZE, MASKED_PATHS, READONLY_PATHS
    for k, v in HOST_CONFIG_ZERO.items():
        hc.setdefault(k, list(v) if isinstance(v, tuple) else v)
    if hc.get("OomKillDisable") is None:     # adaptContainerSettings: false when not given
        hc["OomKillDisable"] = False
    if isinstance(hc.get("PidsLimit"), int) and hc["PidsLimit"] <= 0:
        hc["PidsLimit"] = None
    if hc.get("MemorySwappiness") == -1:
        hc["MemorySwappiness"] = None
    if not hc.get("ShmSize"):
        hc["ShmSize"] = DEFAULT_SHM_SIZE
    if not hc.get("IpcMode"):
        hc["IpcMode"] = "private"
    if not hc.get("CgroupnsMode"):
        hc["CgroupnsMode"] = "private" if facts.cgroup_version == "v2" else "host"
    if not hc.get("Privileged"):
        if hc.get("MaskedPaths") is None:
            hc["MaskedPaths"] = [*MASKED_PATHS, *facts.thermal_throttle]
        if hc.get("ReadonlyPaths") is None:
            hc["ReadonlyPaths"] = list(READONLY_PATHS)


# what moby (to Docker 26; dockerd 20.10) took from the top level when a
# HostConfig was given as well
_LEGACY_OVER_EMPTY = ("Memory", "MemorySwap", "CpuShares", "CpusetCpus", "VolumeDriver")


def _host_config(body: dict):
    """The create body's HostConfig, as moby's ContainerConfigWrapper read it
    (the API < 1.18 shape, still sent by old clients): HostConfig's fields at
    the top level are the HostConfig when none is given under `HostConfig`;
    with one given, they fill only its empty Memory, MemorySwap, CpuShares,
    CpusetCpus and VolumeDriver; a top-level `Cpuset` fills an empty
    CpusetCpus. (Docker 27 dropped this; nothing a current client sends
    changes meaning.)"""
    inner = body.pop("HostConfig", None)
    cpuset = body.pop("Cpuset", None)
    top = _known(body, HOST_CONFIG_FIELDS)
    if not top:
        hc = inner
    elif inner is None:
        hc = top
    else:
        hc = inner
        if isinstance(hc, dict):
            for k in _LEGACY_OVER_EMPTY:
                if top.get(k) and not hc.get(k):
                    hc[k] = top[k]
    if cpuset and isinstance(hc, dict) and not hc.get("CpusetCpus"):
        hc["CpusetCpus"] = cpuset
    return hc


def build_container(daemon: _Daemon, body: dict, name: str) -> Container:
    if not isinstance(body, dict):
        raise InvalidParameter("invalid JSON: expected an object")
    image_ref = body.get("Image")
    if not image_ref or not isinstance(image_ref, str):
        raise InvalidParameter("Config cannot be empty in order to create a container")
    hc = _host_config(body)
    nc = body.pop("NetworkingConfig", None)
    hc_given = hc is not None
    hc = {} if hc is None else hc    # null is "none given"; [] or "" is a wrong type, not an empty object
    nc = {} if nc is None else nc
    if not isinstance(hc, dict) or not isinstance(nc, dict):
        raise InvalidParameter("invalid JSON: HostConfig and NetworkingConfig must be objects")
    cfg = _known(body, CONFIG_FIELDS)
    hc = _known(hc, HOST_CONFIG_FIELDS)
    nc = _known_networking(nc)
    _check_types(cfg)
    from .health import validate as validate_healthcheck
    validate_healthcheck(cfg.get("Healthcheck"))
    img = daemon.images.resolve(image_ref)
    hc["RestartPolicy"] = restart.validate(hc.get("RestartPolicy"))
    if hc.get("AutoRemove") and hc["RestartPolicy"]["Name"] not in ("", "no"):
        raise InvalidParameter("can't create 'AutoRemove' container with restart policy")
    mode = hc.get("NetworkMode") or "default"
    if mode == "default":
        mode = "bridge"
    hc["NetworkMode"] = mode
    if mode.startswith("container:"):
        daemon.containers.get(mode.split(":", 1)[1])   # 404 now rather than at start
        if cfg.get("Hostname"):
            raise InvalidParameter("conflicting options: hostname and the network mode")
    from .networking import validate as validate_networks
    validate_networks(daemon, hc, nc, cfg)   # user networks exist, port specs parse
    from ..runtime.spec import validate as validate_host_config
    warnings = validate_host_config(hc, daemon.facts)   # Docker's create-time checks: 400 with nothing made
    from .rootfs import check_storage_opts
    check_storage_opts(hc.get("StorageOpt"))            # as the graph driver's, before anything is made
    fill_daemon_defaults(hc, daemon.facts)
    runtime = hc.get("Runtime") or daemon.runtimes.default
    daemon.runtimes.get(runtime)
    if hc_given:      # as moby's verifyContainerSettings, which sees no HostConfig when none was sent
        hc["Runtime"] = runtime
    # json-file/local are stored in conmon's k8s-file format and rotated by the daemon (daemon/logconfig.py)
    from .logconfig import resolve as resolve_log_config
    hc["LogConfig"] = resolve_log_config(hc.get("LogConfig"), daemon.config.log_driver,
                                         daemon.config.log_opts)
    cid = ids.new_id()
    if not cfg.get("Hostname") and not mode.startswith("container:"):
        cfg["Hostname"] = cid[:12]
    cfg["Image"] = image_ref
    for k in ("Env", "Cmd", "Entrypoint"):
        cfg.setdefault(k, None)
    for k, v in CONFIG_ZERO.items():
        cfg.setdefault(k, v)
    cfg.setdefault("Labels", {})
    image_cfg = daemon.images.config(img.id) or {}
    from .health import merge as merge_healthcheck
    if image_cfg.get("Healthcheck"):       # Docker shows the image's healthcheck in Config
        cfg["Healthcheck"] = merge_healthcheck(cfg.get("Healthcheck"), image_cfg["Healthcheck"])
    labels = dict(image_cfg.get("Labels") or {})
    labels.update(cfg.get("Labels") or {})
    cfg["Labels"] = labels
    c = Container(id=cid, name=name, created=now_rfc3339(), image=img.id, image_ref=image_ref,
                  config=cfg, host_config=hc, networking_config=nc, runtime=runtime)
    c.create_warnings = warnings      # for the create response only (not persisted)
    return c

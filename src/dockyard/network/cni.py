"""A CNI client: pod networking the way every Kubernetes runtime does it.

This is libcni's contract (containernetworking/cni) as containerd's go-cni
drives it for the CRI, in Python, for dockyard's CRI server:

- Config: the conf dir (default /etc/cni/net.d) holds `*.conflist`,
  `*.conf` and `*.json` files; sorted by file name, the first valid one is
  the pod network (a `.conf`/`.json` is one plugin, made a one-plugin list as
  libcni's ConfListFromConf does). A file that does not parse, names no
  plugin type, asks for a cniVersion this client does not speak, or names a
  plugin missing from the bin dirs or one that does not speak its version
  (the plugin's VERSION answer, asked once per binary) is skipped, and its
  reason is kept for `status()` and for the error that says the network is
  not ready. The dir is read again on every call, so a config dropped in
  later (by a network add-on's installer) is picked up.
- Plugins run as subprocesses: that is CNI's contract (SPEC.md "Execution
  Protocol"). Each plugin of the list is exec'd from the bin dirs with
  CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH in
  its environment and its own config on stdin, with the list's `name` and
  `cniVersion`, the previous plugin's result (`prevResult`) and the
  `runtimeConfig` keys its `capabilities` ask for injected (libcni's
  buildOneConfig/injectRuntimeConfig). Its stdout is the result, or on a
  non-zero exit the error (`code`, `msg`, `details`) raised as `PluginError`.
- ADD runs the list in order; its final result is cached as libcni does, in
  `<cache_dir>/results/<network>-<containerid>-<ifname>` (kind cniCacheV1,
  with the config and the args used), so that DEL and CHECK get `prevResult`
  and the same config after a daemon restart or a conf dir change. DEL runs
  the list in reverse, is tolerant of missing state (no cache: no
  prevResult; a second DEL succeeds) and drops the cache only when every
  plugin succeeded, so a failed teardown can be retried. CHECK needs spec
  0.4.0 or later, honours `disableCheck`, and passes the cached result.
- The loopback network: as containerd (go-cni's WithLoNetwork), a
  `cni-loopback` network with the `loopback` plugin on `lo` is set up before
  the pod network and torn down with it.

A failed `setup` tears down what it made (containerd's RunPodSandbox does
the same in its deferred cleanup), so nothing is left half-made.

Use (the CRI server):

    net = CNI(bin_dirs, conf_dir, cache_dir)
    net.status()                          # CRI Status: NetworkReady, reason
    res = net.setup(sandbox_id, netns_path, "eth0",
                    args={"K8S_POD_NAMESPACE": ns, "K8S_POD_NAME": name,
                          "K8S_POD_INFRA_CONTAINER_ID": sandbox_id, "K8S_POD_UID": uid},
                    port_mappings=[PortMapping(8080, 80, "tcp", "")], dns=DNSConfig(...))
    res.ips_of("eth0")                    # the pod IPs (IPConfig: address, gateway)
    net.cached_result(sandbox_id)         # the same after a daemon restart
    net.teardown(sandbox_id, netns_path)  # StopPodSandbox; safe to repeat

CNI_ARGS gets `IgnoreUnknown=1` unless the caller sets it, as containerd's
CRI passes it: host-local and others refuse K8S_* arguments without it.
Errors are `CNIError`s (a `SystemError_`, 500 on the Docker API): config and
argument problems, `NotInitialized` (no valid config), `PluginError` (a
plugin's own error, with its code, msg and details).
"""
from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from dockyard.errors import SystemError_

log = logging.getLogger(__name__)

DEFAULT_BIN_DIRS = ("/usr/lib/cni", "/opt/cni/bin")
DEFAULT_CONF_DIR = "/etc/cni/net.d"
DEFAULT_CACHE_DIR = "/var/lib/cni"
CONF_EXTENSIONS = (".conf", ".conflist", ".json")
CACHE_KIND = "cniCacheV1"

# The spec versions this client speaks, oldest first (the plugins of
# Debian's containernetworking-plugins 1.1 speak the same ones).
SPEC_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0")
CURRENT_VERSION = SPEC_VERSIONS[-1]

LOOPBACK_NETWORK = "cni-loopback"
LOOPBACK_IFNAME = "lo"

# CNI's well-known error codes (SPEC.md "Error")
ERR_INCOMPATIBLE_VERSION = 1
ERR_UNKNOWN_CONTAINER = 3
ERR_INVALID_ENVIRONMENT = 4
ERR_IO_FAILURE = 5
ERR_DECODING_FAILURE = 6
ERR_INVALID_NETWORK_CONFIG = 7

# plugins that make host-wide iptables chains shared by every pod check for a
# chain and then create it: two at once (pods set up side by side) can both
# find it missing, and one fails ("CHAIN_USER_ADD failed (File exists)"). They
# run one at a time; the rest of a pod's set-up stays concurrent.
SERIAL_PLUGIN_TYPES = frozenset({"portmap", "firewall"})
_serial = threading.Lock()

_VALID_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
_MAX_IFNAME = 15


# ------------------------------------------------------------------ errors

class CNIError(SystemError_):
    """A CNI failure, shaped as CNI's error object: `code`, `msg`,
    `details`; str() is libcni's ("msg; details")."""

    def __init__(self, code: int, msg: str, details: str = ""):
        self.code = code
        self.msg = msg
        self.details = details
        super().__init__(f"{msg}; {details}" if details else msg)


class PluginError(CNIError):
    """A plugin answered with an error (or died without one)."""

    def __init__(self, code: int, msg: str, details: str = "", *, plugin: str = "", command: str = ""):
        super().__init__(code, msg, details)
        self.plugin = plugin
        self.command = command
        if plugin:   # libcni: `plugin type="bridge" name="x" failed (add): msg`
            self.message = f"plugin {plugin} failed ({command.lower()}): {self.message}"
            self.args = (self.message,)


class NotInitialized(CNIError):
    """No valid network config (go-cni's ErrCNINotInitialized)."""

    def __init__(self, details: str = ""):
        super().__init__(ERR_INVALID_NETWORK_CONFIG, "cni plugin not initialized", details)


# ------------------------------------------------------------------ inputs

@dataclass(frozen=True)
class PortMapping:
    """One hostPort, as the portmap plugin's `portMappings` capability takes it."""
    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""

    def to_json(self) -> dict:
        out: dict[str, Any] = {"hostPort": self.host_port, "containerPort": self.container_port,
                               "protocol": self.protocol.lower()}
        if self.host_ip:
            out["hostIP"] = self.host_ip
        return out


@dataclass(frozen=True)
class Bandwidth:
    """The bandwidth plugin's capability: rates in bits/s, bursts in bits."""
    ingress_rate: int = 0
    ingress_burst: int = 0
    egress_rate: int = 0
    egress_burst: int = 0

    def to_json(self) -> dict:
        return {"ingressRate": self.ingress_rate, "ingressBurst": self.ingress_burst,
                "egressRate": self.egress_rate, "egressBurst": self.egress_burst}


@dataclass(frozen=True)
class DNSConfig:
    """The `dns` capability (the pod's DNS config)."""
    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"servers": list(self.servers), "searches": list(self.searches), "options": list(self.options)}


# ------------------------------------------------------------------ results

@dataclass(frozen=True)
class Interface:
    name: str
    mac: str = ""
    sandbox: str = ""    # the netns path for an interface inside the pod; "" on the host


@dataclass(frozen=True)
class IPConfig:
    address: str                   # CIDR, e.g. "10.88.0.5/16"
    gateway: str = ""
    interface: int | None = None   # index into Result.interfaces

    @property
    def ip(self) -> str:
        return self.address.split("/", 1)[0]


@dataclass(frozen=True)
class Route:
    dst: str
    gw: str = ""


@dataclass(frozen=True)
class DNS:
    nameservers: tuple[str, ...] = ()
    domain: str = ""
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Result:
    """A plugin chain's result, whatever spec version it came in."""
    cni_version: str
    interfaces: tuple[Interface, ...] = ()
    ips: tuple[IPConfig, ...] = ()
    routes: tuple[Route, ...] = ()
    dns: DNS = DNS()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def ips_of(self, ifname: str) -> list[IPConfig]:
        """The IPs on the pod's interface `ifname` (in the sandbox); IPs
        that name no interface count for it when it is the only one in the
        sandbox, as go-cni does."""
        idx = [i for i, itf in enumerate(self.interfaces) if itf.name == ifname and itf.sandbox]
        if not idx:
            return []
        out = [ip for ip in self.ips if ip.interface in idx]
        if not out and len([i for i in self.interfaces if i.sandbox]) == 1:
            out = [ip for ip in self.ips if ip.interface is None]
        return out


@dataclass(frozen=True)
class NetworkStatus:
    """For CRI's Status: NetworkReady and, when not, why (containerd's words)."""
    ready: bool
    reason: str = ""
    message: str = ""


# ------------------------------------------------------------------ config

@dataclass(frozen=True)
class NetworkConfigList:
    name: str
    cni_version: str
    plugins: tuple[Mapping[str, Any], ...]
    disable_check: bool = False
    source: str = ""             # the file it came from ("" for built-in/cached)
    raw: bytes = b""             # the list's bytes, as cached

    def describe(self, i: int) -> str:
        """libcni's pluginDescription: type="bridge" name="x"."""
        p = self.plugins[i]
        out = f'type="{p.get("type", "")}"'
        if p.get("name"):
            out += f' name="{p["name"]}"'
        return out


def version_key(v: str) -> tuple[int, ...]:
    parts = v.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise CNIError(ERR_INCOMPATIBLE_VERSION, f'invalid version "{v}": must be a semantic version')
    return tuple(int(p) for p in parts)


def _at_least(v: str, minimum: str) -> bool:
    return version_key(v or "0.1.0") >= version_key(minimum)


def _read_bool(raw: Mapping[str, Any], key: str) -> bool:
    val = raw.get(key, False)
    if isinstance(val, bool):
        return val
    if isinstance(val, str) and val.lower() in ("true", "false"):
        return val.lower() == "true"
    raise CNIError(ERR_INVALID_NETWORK_CONFIG,
                   f"error parsing configuration list: invalid value {json.dumps(val)} for {key}")


def _pick_version(raw: Mapping[str, Any]) -> str:
    """cniVersion, or the highest of `cniVersions` (and cniVersion) this
    client speaks, as libcni picks it."""
    version = raw.get("cniVersion", "")
    if not isinstance(version, str):
        raise CNIError(ERR_INVALID_NETWORK_CONFIG,
                       f"error parsing configuration list: invalid cniVersion type {type(version).__name__}")
    versions = raw.get("cniVersions")
    if versions is not None:
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise CNIError(ERR_INVALID_NETWORK_CONFIG, "error parsing configuration list: invalid type for cniVersions")
        known = [v for v in versions + ([version] if version else []) if v in SPEC_VERSIONS]
        if known:
            version = max(known, key=version_key)
    if not version:
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, "error parsing configuration list: no cniVersion")
    if version not in SPEC_VERSIONS:
        raise CNIError(ERR_INCOMPATIBLE_VERSION, f'unsupported cniVersion "{version}"',
                       f"this client speaks {', '.join(SPEC_VERSIONS)}")
    return version


def _check_plugin(i: int, conf: Any) -> dict:
    if not isinstance(conf, dict):
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, f"failed to parse plugin config {i}: not a JSON object")
    ptype = conf.get("type")
    if not isinstance(ptype, str) or not ptype:
        raise CNIError(ERR_INVALID_NETWORK_CONFIG,
                       f"failed to parse plugin config {i}: error parsing configuration: missing 'type'")
    if "/" in ptype or ptype in (".", ".."):
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, f"failed to parse plugin config {i}: invalid plugin type {ptype!r}")
    caps = conf.get("capabilities", {})
    if not isinstance(caps, dict) or not all(isinstance(v, bool) for v in caps.values()):
        raise CNIError(ERR_INVALID_NETWORK_CONFIG,
                       f"failed to parse plugin config {i}: capabilities must map names to true/false")
    return conf


def parse_conflist(data: bytes, source: str = "") -> NetworkConfigList:
    """A `.conflist`'s bytes as libcni's ConfListFromBytes reads them."""
    try:
        raw = json.loads(data)
    except ValueError as e:
        raise CNIError(ERR_DECODING_FAILURE, f"error parsing configuration list: {e}") from None
    if not isinstance(raw, dict):
        raise CNIError(ERR_DECODING_FAILURE, "error parsing configuration list: not a JSON object")
    if "name" not in raw:
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, "error parsing configuration list: no name")
    name = raw["name"]
    if not isinstance(name, str):
        raise CNIError(ERR_INVALID_NETWORK_CONFIG,
                       f"error parsing configuration list: invalid name type {type(name).__name__}")
    _validate_network_name(name)
    version = _pick_version(raw)
    disable_check = _read_bool(raw, "disableCheck")
    if "plugins" not in raw:
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, "error parsing configuration list: no 'plugins' key")
    plugins = raw["plugins"]
    if not isinstance(plugins, list):
        raise CNIError(ERR_INVALID_NETWORK_CONFIG,
                       f"error parsing configuration list: invalid 'plugins' type {type(plugins).__name__}")
    if not plugins:
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, "error parsing configuration list: no plugins in list")
    checked = tuple(_check_plugin(i, p) for i, p in enumerate(plugins))
    return NetworkConfigList(name=name, cni_version=version, plugins=checked,
                             disable_check=disable_check, source=source, raw=bytes(data))


def parse_conf(data: bytes, source: str = "") -> NetworkConfigList:
    """A single-plugin `.conf`/`.json` made a one-plugin list (libcni's
    ConfListFromConf; go-cni refuses one without a `type`)."""
    try:
        raw = json.loads(data)
    except ValueError as e:
        raise CNIError(ERR_DECODING_FAILURE, f"error parsing configuration: {e}") from None
    if not isinstance(raw, dict):
        raise CNIError(ERR_DECODING_FAILURE, "error parsing configuration: not a JSON object")
    if not raw.get("type"):
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, "network type not found",
                       "a .conf holds one plugin; a list belongs in a .conflist")
    lst = {"name": raw.get("name", ""), "cniVersion": raw.get("cniVersion", ""), "plugins": [raw]}
    return parse_conflist(json.dumps(lst).encode(), source)


def loopback_list() -> NetworkConfigList:
    """go-cni's loopback network."""
    return parse_conflist(json.dumps({"cniVersion": "0.3.1", "name": LOOPBACK_NETWORK,
                                      "plugins": [{"type": "loopback"}]}).encode())


def _validate_network_name(name: str) -> None:
    if not name:
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, "missing network name:")
    if not _VALID_NAME.match(name):
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, "invalid characters found in network name", name)


def validate_container_id(cid: str) -> None:
    if not cid:
        raise CNIError(ERR_UNKNOWN_CONTAINER, "missing containerID")
    if not _VALID_NAME.match(cid):
        raise CNIError(ERR_INVALID_ENVIRONMENT, "invalid characters in containerID", cid)


def validate_ifname(ifname: str) -> None:
    if not ifname:
        raise CNIError(ERR_INVALID_ENVIRONMENT, "interface name is empty")
    if len(ifname) > _MAX_IFNAME:
        raise CNIError(ERR_INVALID_ENVIRONMENT, "interface name is too long",
                       f"interface name should be less than {_MAX_IFNAME + 1} characters")
    if ifname in (".", ".."):
        raise CNIError(ERR_INVALID_ENVIRONMENT, "interface name is . or ..")
    if any(c in "/:" or c.isspace() for c in ifname):
        raise CNIError(ERR_INVALID_ENVIRONMENT, "interface name contains / or : or whitespace characters")


def conf_files(conf_dir: str) -> list[str]:
    """The conf dir's candidate files, sorted by name (a missing dir: none)."""
    try:
        entries = list(os.scandir(conf_dir))
    except FileNotFoundError:
        return []
    return sorted(e.path for e in entries
                  if os.path.splitext(e.name)[1] in CONF_EXTENSIONS and not e.is_dir())


# ------------------------------------------------------------------ results parsing

def _str_list(v: Any) -> tuple[str, ...]:
    return tuple(str(x) for x in v) if isinstance(v, list) else ()


def _dns(raw: Any) -> DNS:
    if not isinstance(raw, dict):
        return DNS()
    return DNS(nameservers=_str_list(raw.get("nameservers")), domain=str(raw.get("domain") or ""),
               search=_str_list(raw.get("search")), options=_str_list(raw.get("options")))


def _routes(raw: Any) -> tuple[Route, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(Route(dst=str(r.get("dst", "")), gw=str(r.get("gw") or "")) for r in raw if isinstance(r, dict))


def _upgrade_legacy(raw: Mapping[str, Any]) -> dict:
    """A 0.1.0/0.2.0 result (`ip4`/`ip6`) in the 0.3.x shape, as libcni's
    020 → 040 conversion makes it (no interfaces: the IPs name none)."""
    ips, routes = [], []
    for fam, ver in (("ip4", "4"), ("ip6", "6")):
        block = raw.get(fam)
        if isinstance(block, dict) and block.get("ip"):
            ip = {"version": ver, "address": block["ip"]}
            if block.get("gateway"):
                ip["gateway"] = block["gateway"]
            ips.append(ip)
            routes += [r for r in block.get("routes") or [] if isinstance(r, dict)]
    out: dict[str, Any] = {"cniVersion": "0.3.1", "ips": ips}
    if routes:
        out["routes"] = routes
    if raw.get("dns"):
        out["dns"] = raw["dns"]
    return out


def convert_result(raw: Mapping[str, Any], to_version: str) -> dict:
    """A result dict in `to_version`'s shape, for a plugin's prevResult:
    1.0.0 drops the IPs' `version`, 0.3.x/0.4.0 have it; 0.1.0/0.2.0
    results are raised to 0.3.1 first."""
    src = str(raw.get("cniVersion") or "0.1.0")
    data = dict(raw)
    if not _at_least(src, "0.3.0"):
        data = _upgrade_legacy(raw)
    if not _at_least(to_version, "0.3.0"):
        raise CNIError(ERR_INCOMPATIBLE_VERSION,
                       f'cannot convert a version "{src}" result to version "{to_version}"')
    ips = []
    for ip in data.get("ips") or []:
        ip = dict(ip)
        if _at_least(to_version, "1.0.0"):
            ip.pop("version", None)
        elif "version" not in ip:
            ip["version"] = "6" if ":" in str(ip.get("address", "")) else "4"
        ips.append(ip)
    data["ips"] = ips
    data["cniVersion"] = to_version
    return data


def parse_result(raw: Any) -> Result:
    """A plugin's result dict (any spec version) as a Result."""
    if not isinstance(raw, dict):
        raise CNIError(ERR_DECODING_FAILURE, "failed to parse the plugin's result: not a JSON object")
    version = str(raw.get("cniVersion") or "0.1.0")
    data = raw if _at_least(version, "0.3.0") else _upgrade_legacy(raw)
    interfaces = tuple(Interface(name=str(i.get("name", "")), mac=str(i.get("mac") or ""),
                                 sandbox=str(i.get("sandbox") or ""))
                       for i in data.get("interfaces") or [] if isinstance(i, dict))
    ips = tuple(IPConfig(address=str(ip.get("address", "")), gateway=str(ip.get("gateway") or ""),
                         interface=ip["interface"] if isinstance(ip.get("interface"), int) else None)
                for ip in data.get("ips") or [] if isinstance(ip, dict))
    return Result(cni_version=version, interfaces=interfaces, ips=ips, routes=_routes(data.get("routes")),
                  dns=_dns(data.get("dns")), raw=raw)


def plugin_error(returncode: int, stdout: bytes, stderr: bytes) -> tuple[int, str, str]:
    """(code, msg, details) of a failed plugin run, as libcni's pluginErr
    reads it: the error object on stdout; else stderr; else the exit."""
    if not stdout.strip():
        if stderr.strip():
            return ERR_IO_FAILURE, f"netplugin failed: {stderr.decode(errors='replace').strip()!r}", ""
        return ERR_IO_FAILURE, f"netplugin failed with no error message: exit status {returncode}", ""
    try:
        err = json.loads(stdout)
        if not isinstance(err, dict):
            raise ValueError("not a JSON object")
    except ValueError as e:
        text = stdout.decode(errors="replace")
        return ERR_DECODING_FAILURE, f"netplugin failed but error parsing its diagnostic message {text!r}: {e}", ""
    code = err.get("code")
    return (code if isinstance(code, int) else 0), str(err.get("msg") or ""), str(err.get("details") or "")


# ------------------------------------------------------------------ the client

@dataclass(frozen=True)
class RuntimeConf:
    """libcni's RuntimeConf: one attachment's identity and arguments."""
    container_id: str
    netns: str
    ifname: str
    args: tuple[tuple[str, str], ...] = ()
    capability_args: Mapping[str, Any] = field(default_factory=dict)


class CNI:
    """The CNI client dockyard's CRI server uses for pod networks."""

    def __init__(self, bin_dirs: Sequence[str] | None = None, conf_dir: str | None = None,
                 cache_dir: str | None = None, *, loopback: bool = True, timeout: float | None = None):
        self.bin_dirs = tuple(bin_dirs) if bin_dirs else DEFAULT_BIN_DIRS
        self.conf_dir = conf_dir or DEFAULT_CONF_DIR
        self.cache_dir = cache_dir or DEFAULT_CACHE_DIR
        self.loopback = loopback
        self.timeout = timeout
        # VERSION answers per plugin binary (path, inode, size, mtime): asked
        # once, not on every status() poll
        self._versions: dict[tuple, tuple[str, ...]] = {}

    # ---------------------------------------------------------- config

    def find_plugin(self, ptype: str) -> str:
        for d in self.bin_dirs:
            p = os.path.join(d, ptype)
            if os.path.isfile(p) and os.access(p, os.X_OK):
                return p
        raise CNIError(ERR_INVALID_NETWORK_CONFIG,
                       f'failed to find plugin "{ptype}" in path [{" ".join(self.bin_dirs)}]')

    def plugin_versions(self, ptype: str) -> tuple[str, ...]:
        """The spec versions a plugin speaks (its VERSION answer; one that
        answers nothing usable is a 0.1.0 plugin, as libcni takes it)."""
        path = self.find_plugin(ptype)
        st = os.stat(path)
        key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in self._versions:
            env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
            env.update({"CNI_COMMAND": "VERSION", "CNI_PATH": os.pathsep.join(self.bin_dirs)})
            versions: tuple[str, ...] = ("0.1.0",)
            try:
                proc = subprocess.run([path], input=json.dumps({"cniVersion": CURRENT_VERSION}).encode(), env=env,
                                      capture_output=True, timeout=self.timeout or 30, close_fds=True)
                info = json.loads(proc.stdout) if proc.returncode == 0 else None
                if isinstance(info, dict) and isinstance(info.get("supportedVersions"), list):
                    versions = tuple(str(v) for v in info["supportedVersions"])
            except (OSError, ValueError, subprocess.TimeoutExpired) as e:
                log.warning("cni: VERSION of %s: %s", path, e)
            self._versions[key] = versions
        return self._versions[key]

    def check_plugin_version(self, ptype: str, version: str) -> None:
        """libcni's ValidateNetworkList for one plugin: it is there and
        speaks the list's version."""
        if version not in self.plugin_versions(ptype):
            raise CNIError(ERR_INCOMPATIBLE_VERSION, f'plugin type="{ptype}" does not support config version "{version}"')

    def load(self) -> tuple[NetworkConfigList | None, list[str]]:
        """(the pod network or None, why each file before it was skipped)."""
        skipped: list[str] = []
        try:
            files = conf_files(self.conf_dir)
        except OSError as e:      # not a directory, not readable
            return None, [f"{self.conf_dir}: {e.strerror or e}"]
        for path in files:
            try:
                with open(path, "rb") as f:
                    data = f.read()
                lst = parse_conflist(data, path) if path.endswith(".conflist") else parse_conf(data, path)
                for p in lst.plugins:
                    self.check_plugin_version(p["type"], lst.cni_version)
            except CNIError as e:
                skipped.append(f"{os.path.basename(path)}: {e.message}")
                continue
            except OSError as e:
                skipped.append(f"{os.path.basename(path)}: {e.strerror or e}")
                continue
            return lst, skipped
        return None, skipped

    def network(self) -> NetworkConfigList:
        """The pod network, or NotInitialized saying why there is none."""
        lst, skipped = self.load()
        if lst is None:
            details = f"no valid network config in {self.conf_dir}"
            if skipped:
                details += ": " + "; ".join(skipped)
            raise NotInitialized(details)
        if self.loopback:
            self.check_plugin_version("loopback", "0.3.1")
        return lst

    def status(self) -> NetworkStatus:
        """NetworkReady iff a valid config exists (and its plugins)."""
        try:
            self.network()
        except CNIError as e:
            return NetworkStatus(False, "NetworkPluginNotReady", f"Network plugin returns error: {e.message}")
        return NetworkStatus(True)

    # ---------------------------------------------------------- verbs

    def setup(self, container_id: str, netns_path: str, ifname: str = "eth0", args: Mapping[str, str] | None = None,
              port_mappings: Iterable[PortMapping] = (), dns: DNSConfig | None = None,
              bandwidth: Bandwidth | None = None, ips: Iterable[str] = (), mac: str = "") -> Result:
        """ADD: loopback, then the pod network. Returns the pod network's
        result. On failure what was added is deleted again, then the error
        is raised."""
        net = self.network()
        rt = self._runtime_conf(container_id, netns_path, ifname, args, port_mappings, dns, bandwidth, ips, mac)
        lo = replace_ifname(rt, LOOPBACK_IFNAME)
        try:
            if self.loopback:
                self._add_list(loopback_list(), lo)
            return self._add_list(net, rt)
        except BaseException:
            self._teardown(net, rt, best_effort=True)
            raise

    def teardown(self, container_id: str, netns_path: str, ifname: str = "eth0",
                 args: Mapping[str, str] | None = None, port_mappings: Iterable[PortMapping] = (),
                 dns: DNSConfig | None = None, bandwidth: Bandwidth | None = None,
                 ips: Iterable[str] = (), mac: str = "") -> None:
        """DEL: the pod network (the config and args cached by its ADD when
        there is a cache, else today's), then loopback. Nothing set up, or
        torn down already, is not an error."""
        try:
            net: NetworkConfigList | None = self.network()
        except CNIError:
            net = None     # no usable config today: the cache may still say what to delete
        rt = self._runtime_conf(container_id, netns_path, ifname, args, port_mappings, dns, bandwidth, ips, mac)
        self._teardown(net, rt)

    def check(self, container_id: str, netns_path: str, ifname: str = "eth0",
              args: Mapping[str, str] | None = None, port_mappings: Iterable[PortMapping] = (),
              dns: DNSConfig | None = None, bandwidth: Bandwidth | None = None,
              ips: Iterable[str] = (), mac: str = "") -> None:
        """CHECK of the pod network with its cached result (spec >= 0.4.0)."""
        rt = self._runtime_conf(container_id, netns_path, ifname, args, port_mappings, dns, bandwidth, ips, mac)
        cached = self._cached_lists(rt)
        net, rt = cached[0] if cached else (self.network(), rt)
        if not _at_least(net.cni_version, "0.4.0"):
            raise CNIError(ERR_INCOMPATIBLE_VERSION,
                           f'configuration version "{net.cni_version}" does not support the CHECK command')
        if net.disable_check:
            return
        prev = self.cached_result_raw(net.name, rt)
        prev_conv = convert_result(prev, net.cni_version) if prev is not None else None
        for i in range(len(net.plugins)):
            self._exec(net, i, "CHECK", rt, prev_conv)

    def cached_result(self, container_id: str, ifname: str = "eth0") -> Result | None:
        """The pod network's result as its ADD cached it (after a restart too)."""
        validate_container_id(container_id)
        validate_ifname(ifname)
        for lst, rt in self._cached_lists(RuntimeConf(container_id, "", ifname)):
            raw = self.cached_result_raw(lst.name, rt)
            if raw is not None:
                return parse_result(raw)
        return None

    # ---------------------------------------------------------- internals

    def _runtime_conf(self, container_id: str, netns: str, ifname: str, args: Mapping[str, str] | None,
                      port_mappings: Iterable[PortMapping], dns: DNSConfig | None, bandwidth: Bandwidth | None,
                      ips: Iterable[str], mac: str) -> RuntimeConf:
        validate_container_id(container_id)
        validate_ifname(ifname)
        pairs = [("IgnoreUnknown", "1")] if not args or "IgnoreUnknown" not in args else []
        for k, v in (args or {}).items():
            if not k or any(c in str(k) for c in ";=") or ";" in str(v):
                raise CNIError(ERR_INVALID_ENVIRONMENT, "invalid CNI_ARGS", f"{k}={v}")
            pairs.append((str(k), str(v)))
        caps: dict[str, Any] = {}
        pm = [p.to_json() for p in port_mappings]
        if pm:
            caps["portMappings"] = pm
        if dns is not None:
            caps["dns"] = dns.to_json()
        if bandwidth is not None:
            caps["bandwidth"] = bandwidth.to_json()
        ip_list = list(ips)
        if ip_list:
            caps["ips"] = ip_list
        if mac:
            caps["mac"] = mac
        return RuntimeConf(container_id, netns, ifname, tuple(pairs), caps)

    def _add_list(self, net: NetworkConfigList, rt: RuntimeConf) -> Result:
        prev: dict | None = None
        for i in range(len(net.plugins)):
            prev = self._exec(net, i, "ADD", rt, prev)
        if prev is None:
            raise PluginError(ERR_DECODING_FAILURE, "the plugin returned no result",
                              plugin=net.describe(len(net.plugins) - 1), command="ADD")
        self._cache_add(net, rt, prev)
        return parse_result(prev)

    def _teardown(self, net: NetworkConfigList | None, rt: RuntimeConf, best_effort: bool = False) -> None:
        lists = self._cached_lists(rt)
        if not lists and net is not None:
            lists = [(net, rt)]
        for lst, lrt in lists:
            self._del_list(lst, lrt, best_effort)
        if self.loopback:
            self._del_list(loopback_list(), replace_ifname(rt, LOOPBACK_IFNAME), best_effort)

    def _del_list(self, net: NetworkConfigList, rt: RuntimeConf, best_effort: bool = False) -> None:
        """DEL of the list in reverse order. As libcni, the first failure
        stops it (the cache stays for a retry); `best_effort` (the undo of
        a failed ADD, whose plugins' state may be half there) runs every
        plugin's DEL and only logs what fails."""
        prev = None
        if _at_least(net.cni_version, "0.4.0"):
            cached = self.cached_result_raw(net.name, rt)
            if cached is not None:
                prev = convert_result(cached, net.cni_version)
        for i in reversed(range(len(net.plugins))):
            try:
                self._exec(net, i, "DEL", rt, prev)
            except CNIError as e:
                if not best_effort:
                    raise
                log.warning("cni: undoing a failed setup of %s: %s", rt.container_id, e.message)
        try:
            os.unlink(self._cache_path(net.name, rt))
        except FileNotFoundError:
            pass

    def _exec(self, net: NetworkConfigList, i: int, command: str, rt: RuntimeConf,
              prev: Mapping[str, Any] | None) -> dict | None:
        """Run plugin i of the list for `command`; its result dict (ADD)."""
        desc = net.describe(i)
        try:
            path = self.find_plugin(net.plugins[i]["type"])
        except CNIError as e:
            raise PluginError(e.code, e.msg, e.details, plugin=desc, command=command) from None
        stdin = json.dumps(build_config(net, i, prev, rt.capability_args)).encode()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
        env.update(plugin_env(command, rt, self.bin_dirs))
        serial = _serial if net.plugins[i]["type"] in SERIAL_PLUGIN_TYPES else contextlib.nullcontext()
        try:
            with serial:
                proc = subprocess.run([path], input=stdin, env=env, capture_output=True,
                                      timeout=self.timeout, close_fds=True)
        except subprocess.TimeoutExpired:
            raise PluginError(ERR_IO_FAILURE, f"netplugin timed out after {self.timeout}s",
                              plugin=desc, command=command) from None
        except OSError as e:
            raise PluginError(ERR_IO_FAILURE, f"netplugin failed to start: {e.strerror or e}",
                              plugin=desc, command=command) from None
        if proc.stderr:
            log.debug("cni %s %s stderr: %s", command, desc, proc.stderr.decode(errors="replace").strip())
        if proc.returncode != 0:
            code, msg, details = plugin_error(proc.returncode, proc.stdout, proc.stderr)
            raise PluginError(code, msg, details, plugin=desc, command=command)
        if command != "ADD":
            return None
        try:
            out = json.loads(proc.stdout)
        except ValueError as e:
            raise PluginError(ERR_DECODING_FAILURE, f"failed to parse the plugin's result: {e}",
                              plugin=desc, command=command) from None
        if not isinstance(out, dict):
            raise PluginError(ERR_DECODING_FAILURE, "failed to parse the plugin's result: not a JSON object",
                              plugin=desc, command=command)
        return out

    # ---------------------------------------------------------- the result cache

    def _cache_path(self, network: str, rt: RuntimeConf) -> str:
        return os.path.join(self.cache_dir, "results", f"{network}-{rt.container_id}-{rt.ifname}")

    def _cache_add(self, net: NetworkConfigList, rt: RuntimeConf, result: Mapping[str, Any]) -> None:
        entry = {"kind": CACHE_KIND, "containerId": rt.container_id,
                 "config": base64.b64encode(net.raw).decode(), "ifName": rt.ifname,
                 "networkName": net.name, "netns": rt.netns}
        if rt.args:
            entry["cniArgs"] = [list(a) for a in rt.args]
        if rt.capability_args:
            entry["capabilityArgs"] = dict(rt.capability_args)
        entry["result"] = dict(result)
        path = self._cache_path(net.name, rt)
        tmp = f"{path}.tmp{os.getpid()}"    # written whole, then renamed: a crash leaves the old or the new
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(entry, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise CNIError(ERR_IO_FAILURE, f'failed to set network "{net.name}" cached result: {e.strerror or e}') from None

    def _read_cache(self, path: str) -> dict | None:
        try:
            with open(path, "rb") as f:
                entry = json.loads(f.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            log.warning("cni: unreadable cache %s: %s", path, e)
            return None
        return entry if isinstance(entry, dict) else None

    def cached_result_raw(self, network: str, rt: RuntimeConf) -> dict | None:
        entry = self._read_cache(self._cache_path(network, rt))
        if entry is None:
            return None
        if entry.get("kind") != CACHE_KIND:   # libcni's legacy cache: the bare result
            return entry if "cniVersion" in entry else None
        res = entry.get("result")
        return res if isinstance(res, dict) else None

    def _cached_lists(self, rt: RuntimeConf) -> list[tuple[NetworkConfigList, RuntimeConf]]:
        """The (config, runtime conf) of every network cached for this
        container and interface (the loopback network apart): what its ADD
        used, whatever the conf dir says now."""
        d = os.path.join(self.cache_dir, "results")
        suffix = f"-{rt.container_id}-{rt.ifname}"
        try:
            names = sorted(n for n in os.listdir(d) if n.endswith(suffix))
        except FileNotFoundError:
            return []
        out = []
        for n in names:
            entry = self._read_cache(os.path.join(d, n))
            if (entry is None or entry.get("kind") != CACHE_KIND or entry.get("containerId") != rt.container_id
                    or entry.get("ifName") != rt.ifname or entry.get("networkName") == LOOPBACK_NETWORK):
                continue
            try:
                lst = parse_conflist(base64.b64decode(str(entry.get("config") or "")))
            except (CNIError, ValueError) as e:
                log.warning("cni: cached config %s unusable: %s", n, e)
                continue
            if lst.name != entry.get("networkName"):
                continue
            args = entry.get("cniArgs")
            if isinstance(args, list) and all(isinstance(a, list) and len(a) == 2 for a in args):
                pairs = tuple((str(a[0]), str(a[1])) for a in args)
            else:
                pairs = rt.args
            caps = entry.get("capabilityArgs")
            out.append((lst, RuntimeConf(rt.container_id, rt.netns, rt.ifname, pairs,
                                         caps if isinstance(caps, dict) else {})))
        return out


def replace_ifname(rt: RuntimeConf, ifname: str) -> RuntimeConf:
    return RuntimeConf(rt.container_id, rt.netns, ifname, rt.args, rt.capability_args)


def build_config(net: NetworkConfigList, i: int, prev: Mapping[str, Any] | None,
                 capability_args: Mapping[str, Any]) -> dict:
    """Plugin i's stdin: its config with the list's name and cniVersion, the
    previous result, and the runtimeConfig keys its capabilities ask for."""
    conf = dict(net.plugins[i])
    conf["name"] = net.name
    conf["cniVersion"] = net.cni_version
    if prev is not None:
        conf["prevResult"] = dict(prev)
    rc = {cap: capability_args[cap] for cap, on in (conf.get("capabilities") or {}).items()
          if on and cap in capability_args}
    if rc:
        conf["runtimeConfig"] = rc
    return conf


def plugin_env(command: str, rt: RuntimeConf, bin_dirs: Sequence[str]) -> dict[str, str]:
    return {"CNI_COMMAND": command, "CNI_CONTAINERID": rt.container_id, "CNI_NETNS": rt.netns,
            "CNI_IFNAME": rt.ifname, "CNI_ARGS": ";".join(f"{k}={v}" for k, v in rt.args),
            "CNI_PATH": os.pathsep.join(bin_dirs)}
